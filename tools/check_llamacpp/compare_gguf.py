#!/usr/bin/env python3
"""Reads GGUF files with the `gguf` Python package (llama.cpp's gguf-py) and compares them.

    compare_gguf.py OURS.gguf [OTHER.gguf]

Prints every key of OURS with its GGUF value type and every tensor with its ne and type (the read-back
check of our writer by an independent reader). With OTHER (e.g. convert_hf_to_gguf.py's file for the
same student), lists keys that differ or are missing on either side and, per tensor, differences in
ne, type and values (max |a - b| after dequantising). Exit status 1 when a tensor differs.
"""
import sys

import numpy as np
import gguf
from gguf import GGUFReader, GGUFValueType


def key_values(reader):
    out = {}
    for name, field in reader.fields.items():
        if name.startswith("GGUF."):
            continue
        types = [GGUFValueType(t).name for t in field.types]
        if field.types[0] == GGUFValueType.ARRAY:
            n = len(field.data)
            value = f"[{n} items]" if n > 8 else [field.contents(i) for i in range(n)]
        else:
            value = field.contents()
        out[name] = ("/".join(types), value)
    return out


def tensors(reader):
    out = {}
    for t in reader.tensors:
        data = gguf.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        out[t.name] = (tuple(int(x) for x in t.shape), t.tensor_type.name, data)
    return out


def main():
    ours = GGUFReader(sys.argv[1])
    kv, ts = key_values(ours), tensors(ours)
    for k, (typ, v) in kv.items():
        print(f"key    {k:50s} {typ:14s} {v}")
    for n, (ne, typ, _) in ts.items():
        print(f"tensor {n:40s} ne={list(ne)} {typ}")
    if len(sys.argv) < 3:
        return 0
    other = GGUFReader(sys.argv[2])
    kv2, ts2 = key_values(other), tensors(other)
    for k in sorted(set(kv) | set(kv2)):
        a, b = kv.get(k), kv2.get(k)
        if a is None or b is None or a[0] != b[0] or (str(a[1]) != str(b[1])):
            print(f"key differs: {k}: ours {a} / other {b}")
    bad = 0
    for n in sorted(set(ts) | set(ts2)):
        a, b = ts.get(n), ts2.get(n)
        if a is None or b is None:
            print(f"tensor only in {'other' if a is None else 'ours'}: {n}")
            bad += 1
            continue
        if a[0] != b[0]:
            print(f"tensor {n}: ne ours {list(a[0])} other {list(b[0])}")
            bad += 1
            continue
        diff = float(np.max(np.abs(a[2] - b[2]))) if a[2].size else 0.0
        if a[1] != b[1] or diff > 0:
            print(f"tensor {n}: type ours {a[1]} other {b[1]}, max |diff| {diff:.3g}")
            bad += diff > 0
    print(f"{len(ts)} tensors in ours, {len(ts2)} in other, {bad} differ in shape or values")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
