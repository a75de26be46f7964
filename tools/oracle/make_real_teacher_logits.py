#!/usr/bin/env python3
"""Reference next-token logits of the real teachers, from transformers.

transformers loads a GGUF of models/ by dequantising it to fp32 (with the gguf package) and runs its
own implementation of the family in fp32: models/SmolLM2-135M-Instruct.Q4_1.gguf (Llama, the
default teacher) into tests/data/real/smollm2_logits.json, models/gemma-3-270m.Q4_K_M.gguf (Gemma 3)
into tests/data/real/gemma3_logits.json. For each prompt we store the token ids its tokenizer gives
(with the BOS token where the tokenizer adds one, as Gemma's does) and the top-k (id, logit) of the
last position, plus the whole-sequence logits' mean and standard deviation. The C++ test checks ours.
Gemma's ids come from HF's fast tokenizer converted from the sentencepiece model the GGUF holds
(make_tokenizer_goldens.py), since transformers' GGUF route builds a different (Unigram) one.

Run: python tools/oracle/make_real_teacher_logits.py [smollm2|gemma3 ...]  (needs torch, transformers,
gguf, numpy, accelerate)
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL_DIR = os.path.join(ROOT, "models")
TOP_K = 10

PLAIN = [
    "The capital of France is",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "Water boils at a temperature of 100 degrees",
    "In 1969, Neil Armstrong became the first person to",
]
# name: (GGUF, output, prompts, whether the tokenizer's own special tokens (BOS) are added)
MODELS = {
    "smollm2": ("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2_logits.json",
                PLAIN[:3] + ["<|im_start|>user\nName three primary colours.<|im_end|>\n<|im_start|>assistant\n"]
                + PLAIN[3:], False),
    "gemma3": ("gemma-3-270m.Q4_K_M.gguf", "gemma3_logits.json",
               PLAIN + ["<start_of_turn>user\nName three primary colours.<end_of_turn>\n<start_of_turn>model\n"], True),
}


def main():
    for name in sys.argv[1:] or ["smollm2"]:
        make(*MODELS[name])


def make(gguf_name, out_name, prompts, add_special):
    out = os.path.join(ROOT, "tests", "data", "real", out_name)
    if not os.path.exists(os.path.join(MODEL_DIR, gguf_name)):
        sys.exit(f"missing {gguf_name}: run scripts/fetch_models.sh first")
    torch.manual_seed(0)
    if gguf_name.startswith("gemma"):  # transformers' GGUF route gets Gemma's tokenizer wrong (a Unigram model)
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from make_tokenizer_goldens import gemma3_hf_tokenizer
        tok = gemma3_hf_tokenizer(os.path.join(MODEL_DIR, gguf_name))[2]
    else:
        tok = AutoTokenizer.from_pretrained(MODEL_DIR, gguf_file=gguf_name)
    model = AutoModelForCausalLM.from_pretrained(MODEL_DIR, gguf_file=gguf_name, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    cases = []
    with torch.no_grad():
        for text in prompts:
            ids = tok(text, add_special_tokens=add_special)["input_ids"]
            logits = model(torch.tensor([ids])).logits[0].double()
            last = logits[-1]
            top = torch.topk(last, TOP_K)
            cases.append({
                "prompt": text,
                "ids": ids,
                "top_ids": top.indices.tolist(),
                "top_logits": [round(v, 6) for v in top.values.tolist()],
                "last_mean": last.mean().item(),
                "last_std": last.std().item(),
                "all_mean": logits.mean().item(),
            })
    with open(out, "w") as f:
        json.dump({"model": gguf_name, "torch": torch.__version__, "cases": cases}, f, indent=1)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
