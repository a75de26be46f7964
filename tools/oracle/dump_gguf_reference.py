#!/usr/bin/env python3
"""Reference fixtures for the model-file readers, produced by independent implementations.

Writes under tests/data/formats/ (small, committed):
  quant_types.gguf       one tensor per ggml type (written by the `gguf` package) plus metadata of
                         every value type; quantisable types are quantised by gguf.quants, the
                         K-quants (which gguf-py cannot quantise) are random blocks with sane scales.
  quant_types.f32        little-endian float32: for each tensor, its source values (when it was
                         quantised from floats) and gguf.quants.dequantize's output.
  quant_types.json       index into quant_types.f32 and the expected metadata values.
  py_safetensors.safetensors / .json
                         a file written by the `safetensors` package (F32, F16, BF16, a rank-0 and a
                         zero-size tensor) and the values it holds, as float32 lists.
With --model PATH (default models/SmolLM2-135M-Instruct.Q4_1.gguf, skipped when absent):
  smollm2_reference.json / .f32
                         gguf's reading of the real model: the config values, the tensor types, and
                         for a selection of tensors a few dequantised rows + full sum / sum of squares;
                         also rows of layer 0 q/k in HF order (reverse of llama.cpp's permutation,
                         computed here with numpy the way transformers does it).

Run: /tmp/venv/py/bin/python tools/oracle/dump_gguf_reference.py
"""
import argparse
import json
import os

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFValueType as V

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "formats")
RNG = np.random.default_rng(20261126)

# (type, rows, cols): odd row counts; cols a multiple of the block size.
TYPES = [
    (Q.F32, 3, 40), (Q.F16, 3, 40), (Q.BF16, 3, 40),
    (Q.Q8_0, 3, 96), (Q.Q4_0, 3, 64), (Q.Q4_1, 5, 64), (Q.Q5_0, 3, 96), (Q.Q5_1, 3, 64),
    (Q.Q2_K, 3, 256), (Q.Q3_K, 3, 256), (Q.Q4_K, 3, 512), (Q.Q5_K, 3, 256), (Q.Q6_K, 3, 256),
]
# Byte offsets of the f16 super-block scales of the K-quants (FORMATS.md §2.3), kept finite and small.
K_SCALE_FIELDS = {Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208]}

SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 65504.0, 65519.0, 65520.0, 1e6, 6.1e-5,
                     6.0e-8, 2.98e-8, 2.99e-8, 1e-10, -3.3e-7, 1.00048828125, 1.000732421875, 1.00146484375,
                     3.0e38, -1.17549435e-38, 1.401298e-45], dtype=np.float32)

METADATA = [  # key, value, gguf type, array element type
    ("test.u8", 200, V.UINT8, None), ("test.i8", -100, V.INT8, None),
    ("test.u16", 60000, V.UINT16, None), ("test.i16", -30000, V.INT16, None),
    ("test.u32", 4000000000, V.UINT32, None), ("test.i32", -2000000000, V.INT32, None),
    ("test.f32", 0.15625, V.FLOAT32, None), ("test.bool", True, V.BOOL, None),
    ("test.string", "héllo ĠGGUF ✓", V.STRING, None), ("test.u64", 1 << 60, V.UINT64, None),
    ("test.i64", -(1 << 62), V.INT64, None), ("test.f64", -2.5e-300, V.FLOAT64, None),
    ("test.empty_string", "", V.STRING, None),
    ("test.arr_str", ["a", "", "Ġthe", "<|im_end|>"], V.ARRAY, V.STRING),
    ("test.arr_i32", [1, -2, 3, 2147483647], V.ARRAY, V.INT32),
    ("test.arr_u8", [0, 255, 7], V.ARRAY, V.UINT8),
    ("test.arr_f32", [0.5, -1.25, 3.0], V.ARRAY, V.FLOAT32),
    ("test.arr_f64", [1e-300, 2.0], V.ARRAY, V.FLOAT64),
    ("test.arr_bool", [True, False, True], V.ARRAY, V.BOOL),
    ("test.arr_u64", [1 << 40, 3], V.ARRAY, V.UINT64),
]


def source_values(qtype, rows, cols):
    x = RNG.standard_normal((rows, cols)).astype(np.float32) * np.float32(0.7)
    x[1] *= 5.0  # rows of different magnitude
    if qtype in (Q.F16, Q.BF16, Q.F32):
        x[0, :len(SPECIALS)] = SPECIALS
    if qtype == Q.Q4_0:
        x[2, :32] = 0.0  # an all-zero block (d = 0)
    return x


def random_k_blocks(qtype, rows, cols):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = rows * cols // block
    raw = RNG.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for off in K_SCALE_FIELDS[qtype]:
        scale = RNG.uniform(0.001, 0.05, size=n_blocks).astype(np.float16)
        raw[:, off:off + 2] = scale.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(rows, cols // block * size)


def write_quant_fixture():
    path = os.path.join(OUT, "quant_types.gguf")
    w = gguf.GGUFWriter(path, arch="test")
    for key, value, vtype, sub in METADATA:
        w.add_key_value(key, value, vtype, sub_type=sub)
    floats, index = [], []
    for qtype, rows, cols in TYPES:
        name = f"t.{qtype.name.lower()}"
        entry = {"name": name, "type": qtype.name, "shape": [rows, cols]}
        if qtype in K_SCALE_FIELDS:
            data = random_k_blocks(qtype, rows, cols)
        else:
            src = source_values(qtype, rows, cols)
            data = gguf.quants.quantize(src, qtype)
            entry["source_offset"] = sum(len(f) for f in floats)
            floats.append(src.ravel())
        raw_dtype = None if qtype in (Q.F32, Q.F16) else qtype
        w.add_tensor(name, data, raw_dtype=raw_dtype)
        expected = gguf.quants.dequantize(data, qtype).astype(np.float32).reshape(rows, cols)
        entry["expected_offset"] = sum(len(f) for f in floats)
        floats.append(expected.ravel())
        index.append(entry)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    np.concatenate(floats).astype("<f4").tofile(os.path.join(OUT, "quant_types.f32"))
    meta = {k: {"type": t.name, "elem_type": s.name if s is not None else None, "value": v} for k, v, t, s in METADATA}
    meta["general.architecture"] = {"type": "STRING", "elem_type": None, "value": "test"}
    with open(os.path.join(OUT, "quant_types.json"), "w") as f:
        json.dump({"tensors": index, "metadata": meta}, f, indent=1, ensure_ascii=False)


def write_safetensors_fixture():
    import torch
    from safetensors.torch import save_file
    g = torch.Generator().manual_seed(7)
    tensors = {
        "a.f32": torch.randn(3, 5, generator=g),
        "b.f16": (torch.randn(2, 3, 4, generator=g) * 100).half(),
        "c.bf16": (torch.randn(7, generator=g) * 1e-3).bfloat16(),
        "d.scalar": torch.tensor(3.25),
        "e.empty": torch.zeros(0, 4),
    }
    save_file(tensors, os.path.join(OUT, "py_safetensors.safetensors"), metadata={"format": "pt"})
    ref = {k: {"shape": list(v.shape), "values": v.float().ravel().tolist()} for k, v in tensors.items()}
    with open(os.path.join(OUT, "py_safetensors.json"), "w") as f:
        json.dump(ref, f, indent=1)


def hf_rows_from_gguf(w, n_head):
    """transformers' reverse_permute_weights: GGUF row order -> HF row order."""
    rows, cols = w.shape
    d = rows // n_head
    return w.reshape(n_head, d // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def write_model_reference(model):
    r = gguf.GGUFReader(model)
    kv = {f.name: f.contents() for f in r.fields.values()}
    arch = kv["general.architecture"]
    tensors = {t.name: t for t in r.tensors}
    emb = tensors["token_embd.weight"]
    config = {
        "arch": arch, "n_layers": kv[f"{arch}.block_count"], "hidden_size": kv[f"{arch}.embedding_length"],
        "intermediate_size": kv[f"{arch}.feed_forward_length"], "n_heads": kv[f"{arch}.attention.head_count"],
        "n_kv_heads": kv[f"{arch}.attention.head_count_kv"], "max_position": kv[f"{arch}.context_length"],
        "rms_eps": kv[f"{arch}.attention.layer_norm_rms_epsilon"], "rope_theta": kv.get(f"{arch}.rope.freq_base", 10000.0),
        "vocab_size": int(emb.shape[1]), "tie_embeddings": "output.weight" not in tensors,
        "bos_token_id": kv.get("tokenizer.ggml.bos_token_id", -1), "eos_token_id": kv.get("tokenizer.ggml.eos_token_id", -1),
        "n_tokens": len(kv["tokenizer.ggml.tokens"]),
    }
    config["head_dim"] = kv.get(f"{arch}.attention.key_length", config["hidden_size"] // config["n_heads"])
    types = sorted({t.tensor_type.name for t in r.tensors})
    # One tensor per type present, plus the layer-0 q/k used for the permutation check.
    chosen, seen = [], set()
    for t in r.tensors:
        if t.tensor_type.name not in seen:
            seen.add(t.tensor_type.name)
            chosen.append(t.name)
    for name in ["blk.0.attn_q.weight", "blk.0.attn_k.weight", "output_norm.weight"]:
        if name in tensors and name not in chosen:
            chosen.append(name)
    floats, entries = [], []
    for name in chosen:
        t = tensors[name]
        full = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        full = full.reshape(-1, int(t.shape[0]))
        pick = sorted({0, full.shape[0] - 1})
        entries.append({"name": name, "type": t.tensor_type.name, "ne": [int(x) for x in t.shape],
                        "rows": pick, "offset": sum(len(f) for f in floats),
                        "sum": float(full.astype(np.float64).sum()),
                        "sum_sq": float((full.astype(np.float64) ** 2).sum())})
        floats.append(full[pick].ravel())
    hf = []
    for name, heads in [("blk.0.attn_q.weight", config["n_heads"]), ("blk.0.attn_k.weight", config["n_kv_heads"])]:
        t = tensors[name]
        full = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1, int(t.shape[0]))
        hf_full = hf_rows_from_gguf(full, heads)
        pick = [0, 1, 33, hf_full.shape[0] - 1]
        hf.append({"gguf_name": name, "rows": pick, "offset": sum(len(f) for f in floats)})
        floats.append(hf_full[pick].ravel())
    np.concatenate(floats).astype("<f4").tofile(os.path.join(OUT, "smollm2_reference.f32"))
    with open(os.path.join(OUT, "smollm2_reference.json"), "w") as f:
        json.dump({"model": os.path.basename(model), "config": config, "types": types,
                   "n_tensors": len(r.tensors), "tensors": entries, "hf_rows": hf}, f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(os.path.dirname(__file__), "..", "..", "models",
                                                    "SmolLM2-135M-Instruct.Q4_1.gguf"))
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    write_quant_fixture()
    write_safetensors_fixture()
    if os.path.exists(args.model):
        write_model_reference(args.model)
    else:
        print(f"skipping the model reference: {args.model} not found")


if __name__ == "__main__":
    main()
