#!/usr/bin/env python3
"""Reference next-token logits of the real default teacher, from transformers.

transformers loads models/SmolLM2-135M-Instruct.Q4_1.gguf by dequantising it to fp32 (with the gguf
package) and runs its own Llama implementation in fp32. For each prompt we store the token ids its
tokenizer gives and the top-k (id, logit) of the last position, plus the whole-sequence logits'
mean and standard deviation, in tests/data/real/smollm2_logits.json. The C++ test checks ours.

Run: python tools/oracle/make_real_teacher_logits.py   (needs torch, transformers, gguf, numpy)
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL_DIR = os.path.join(ROOT, "models")
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = os.path.join(ROOT, "tests", "data", "real", "smollm2_logits.json")
TOP_K = 10

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "Water boils at a temperature of 100 degrees",
    "<|im_start|>user\nName three primary colours.<|im_end|>\n<|im_start|>assistant\n",
    "In 1969, Neil Armstrong became the first person to",
]


def main():
    if not os.path.exists(os.path.join(MODEL_DIR, GGUF)):
        sys.exit(f"missing {GGUF}: run scripts/fetch_models.sh first")
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(MODEL_DIR, gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(MODEL_DIR, gguf_file=GGUF, torch_dtype=torch.float32)
    model.eval()
    cases = []
    with torch.no_grad():
        for text in PROMPTS:
            ids = tok(text, add_special_tokens=False)["input_ids"]
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
    with open(OUT, "w") as f:
        json.dump({"model": GGUF, "torch": torch.__version__, "cases": cases}, f, indent=1)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
