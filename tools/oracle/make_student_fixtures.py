#!/usr/bin/env python3
"""Reference fixtures for the student (SPEC §3): RWKV-7 time mixing in place of attention.

An independent oracle: the student written from the equations of SPEC §3 as a plain per-token
recurrent loop in float64 (no chunking, no shared code with the C++), with the kept ("hybrid")
attention layers written out as well (GQA, HF rotate_half RoPE, causal softmax).

Builds two tiny random students with a fixed seed and writes, per model, under
tests/data/student/<name>/:
  - config.json (our student format, SPEC §5) and model.safetensors (BF16 weights; the oracle runs
    on the bf16-rounded values, so loading is checked exactly);
  - oracle.json describing the dumps, and raw little-endian float32 files:
      logits_<s>.f32       logits [T, V] of sequence s (s = 1 is two packed documents, run as
                           separate sequences from a zero state and concatenated)
      mix_out_<l>.f32      layer l's time-mix (or kept attention) output on sequence 0, [T, C]
      state_S_<l>.f32      time-mix layer l's WKV state after sequence s = 0, [H, N, N]
      state_xprev_<l>.f32  time-mix layer l's last normed input after sequence 0, [C]

  gate_llama:   Llama-style, tied embeddings, gate, no group norm, 2 layers, both time mix.
  hybrid_qwen2: Qwen2-style (q/k/v biases), untied head, no gate, group norm, 3 layers; layer 1 keeps
                attention (GQA 4 q / 2 kv heads of 32).

Run: /tmp/venv/py/bin/python tools/oracle/make_student_fixtures.py [--out tests/data/student]
"""
import argparse
import json
import math
import os

import numpy as np
import torch
from safetensors.torch import save_file

SEED = 20260127
C, N, VOCAB, FFN = 128, 64, 160, 64
H = C // N
SEQUENCES = [
    [1, 17, 150, 3, 99, 159, 0, 45, 45, 130, 7, 111, 64, 128, 9, 33, 100, 2],
    [5, 4, 3, 2, 1, 140, 128, 77, 12, 150, 6, 31, 100],
]
DOCS_1 = [7, 6]  # sequence 1 = a document of 7 tokens, then one of 6


def make_config(name, arch, gate, group_norm, wkv_layers, n_layers, tied, ranks):
    return {
        "architectures": ["RwkvHybridForCausalLM"], "model_type": "rwkv_hybrid",
        "teacher_model_type": arch, "_name_or_path": name,
        "vocab_size": VOCAB, "hidden_size": C, "intermediate_size": FFN, "num_hidden_layers": n_layers,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32,
        "max_position_embeddings": 256, "rms_norm_eps": 1e-5 if arch == "llama" else 1e-6,
        "rope_theta": 10000.0 if arch == "llama" else 1e6, "attention_bias": arch == "qwen2",
        "tie_word_embeddings": tied, "bos_token_id": 1, "eos_token_id": 2,
        "head_size": N, "wkv_version": 7, "wkv_has_gate": gate, "wkv_has_group_norm": group_norm,
        "wkv_layers": wkv_layers, "decay_lora_rank": ranks[0], "iclr_lora_rank": ranks[1],
        "value_residual_lora_rank": ranks[2], "gate_lora_rank": ranks[3] if gate else 0,
    }


def random_weights(cfg, g):
    """Every tensor of the student, random and non-trivial; decays spread over ~0.55 .. 0.999."""
    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * scale

    def unif(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=torch.float64)

    dw, da, dv, dg = (cfg[k] for k in ("decay_lora_rank", "iclr_lora_rank", "value_residual_lora_rank", "gate_lora_rank"))
    W = {"model.embed_tokens.weight": randn(VOCAB, C, scale=0.5)}
    first_wkv = cfg["wkv_layers"][0]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        W[p + "input_layernorm.weight"] = 1 + randn(C, scale=0.2)
        if l in cfg["wkv_layers"]:
            t = p + "self_attn.time_mixer."
            for x in ["x_r", "x_w", "x_k", "x_v", "x_a"] + (["x_g"] if cfg["wkv_has_gate"] else []):
                W[t + x] = unif(0, 1, 1, 1, C)
            for m in ("receptance", "key", "value", "output"):
                W[t + m + ".weight"] = randn(C, C, scale=1 / math.sqrt(C))
            W[t + "w0"] = unif(-6.5, 4.0, 1, 1, C)
            W[t + "w1"] = randn(C, dw, scale=1 / math.sqrt(C))
            W[t + "w2"] = randn(dw, C, scale=0.5 / math.sqrt(dw))
            W[t + "a0"] = randn(1, 1, C, scale=0.5)
            W[t + "a1"] = randn(C, da, scale=1 / math.sqrt(C))
            W[t + "a2"] = randn(da, C, scale=1 / math.sqrt(da))
            if l != first_wkv:
                W[t + "v0"] = randn(1, 1, C, scale=0.5)
                W[t + "v1"] = randn(C, dv, scale=1 / math.sqrt(C))
                W[t + "v2"] = randn(dv, C, scale=1 / math.sqrt(dv))
            if cfg["wkv_has_gate"]:
                W[t + "g1"] = randn(C, dg, scale=1 / math.sqrt(C))
                W[t + "g2"] = randn(dg, C, scale=1 / math.sqrt(dg))
            W[t + "k_k"] = unif(0.5, 1.2, 1, 1, C)
            W[t + "k_a"] = unif(0.2, 1.0, 1, 1, C)
            W[t + "r_k"] = randn(H, N, scale=0.3)
            if cfg["wkv_has_group_norm"]:
                W[t + "ln_x.weight"] = 1 + randn(C, scale=0.2)
                W[t + "ln_x.bias"] = randn(C, scale=0.1)
        else:
            q, kv = cfg["num_attention_heads"] * cfg["head_dim"], cfg["num_key_value_heads"] * cfg["head_dim"]
            a = p + "self_attn."
            W[a + "q_proj.weight"] = randn(q, C, scale=1 / math.sqrt(C))
            W[a + "k_proj.weight"] = randn(kv, C, scale=1 / math.sqrt(C))
            W[a + "v_proj.weight"] = randn(kv, C, scale=1 / math.sqrt(C))
            if cfg["attention_bias"]:
                W[a + "q_proj.bias"] = randn(q, scale=0.1)
                W[a + "k_proj.bias"] = randn(kv, scale=0.1)
                W[a + "v_proj.bias"] = randn(kv, scale=0.1)
            W[a + "o_proj.weight"] = randn(C, q, scale=1 / math.sqrt(q))
        W[p + "post_attention_layernorm.weight"] = 1 + randn(C, scale=0.2)
        W[p + "mlp.gate_proj.weight"] = randn(FFN, C, scale=1 / math.sqrt(C))
        W[p + "mlp.up_proj.weight"] = randn(FFN, C, scale=1 / math.sqrt(C))
        W[p + "mlp.down_proj.weight"] = randn(C, FFN, scale=1 / math.sqrt(FFN))
    W["model.norm.weight"] = 1 + randn(C, scale=0.2)
    if not cfg["tie_word_embeddings"]:
        W["lm_head.weight"] = randn(VOCAB, C, scale=1 / math.sqrt(C))
    # Round through bf16 (what is stored); the oracle computes on the rounded values.
    return {k: v.to(torch.bfloat16).to(torch.float64) for k, v in W.items()}


def rmsnorm(x, w, eps):
    return x / torch.sqrt((x * x).mean() + eps) * w


def sigmoid(x):
    return 1 / (1 + torch.exp(-x))


def time_mix_token(W, t, cfg, x, st, v_first):
    """One token of SPEC §3 for one layer. x: [C] (normed input); st: dict with S [H,N,N], x_prev [C]."""
    xx = st["x_prev"] - x
    mixed = {s: x + xx * W[t + "x_" + s].reshape(C) for s in "rwkvag" if t + "x_" + s in W}
    r = W[t + "receptance.weight"] @ mixed["r"]
    k = W[t + "key.weight"] @ mixed["k"]
    v = W[t + "value.weight"] @ mixed["v"]
    z = W[t + "w0"].reshape(C) + torch.tanh(mixed["w"] @ W[t + "w1"]) @ W[t + "w2"]
    d = torch.exp(-torch.exp(-torch.nn.functional.softplus(-z) - 0.5))
    if v_first is None:
        v_first = v
    else:
        v = v + (v_first - v) * sigmoid(W[t + "v0"].reshape(C) + (mixed["v"] @ W[t + "v1"]) @ W[t + "v2"])
    a = sigmoid(W[t + "a0"].reshape(C) + (mixed["a"] @ W[t + "a1"]) @ W[t + "a2"])
    g = sigmoid(mixed["g"] @ W[t + "g1"]) @ W[t + "g2"] if cfg["wkv_has_gate"] else None
    kk = (k * W[t + "k_k"].reshape(C)).reshape(H, N)
    kk = (kk / torch.clamp(kk.norm(dim=1, keepdim=True), min=1e-12)).reshape(C)
    k = k * (1 + (a - 1) * W[t + "k_a"].reshape(C))
    y = torch.zeros(C, dtype=torch.float64)
    for h in range(H):
        sl = slice(h * N, (h + 1) * N)
        S = st["S"][h]
        sa = S @ (-kk[sl])                                   # before decay
        S = S * d[sl][None, :] + torch.outer(sa, kk[sl] * a[sl]) + torch.outer(v[sl], k[sl])
        st["S"][h] = S
        y[sl] = S @ r[sl]
    if cfg["wkv_has_group_norm"]:
        yh = y.reshape(H, N)
        mean = yh.mean(dim=1, keepdim=True)
        var = ((yh - mean) ** 2).mean(dim=1, keepdim=True)
        y = ((yh - mean) / torch.sqrt(var + 64e-5)).reshape(C) * W[t + "ln_x.weight"] + W[t + "ln_x.bias"]
    bonus = (r * k * W[t + "r_k"].reshape(C)).reshape(H, N).sum(dim=1, keepdim=True)
    y = y + (bonus * v.reshape(H, N)).reshape(C)
    if g is not None:
        y = y * g
    st["x_prev"] = x
    return W[t + "output.weight"] @ y, v_first


def rope(x, pos, n_heads, d, theta):
    half = d // 2
    inv = 1.0 / (theta ** (torch.arange(half, dtype=torch.float64) * 2 / d))
    ang = pos * inv
    cos, sin = torch.cos(ang), torch.sin(ang)
    xh = x.reshape(n_heads, d)
    a, b = xh[:, :half], xh[:, half:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=1).reshape(-1)


def attention_token(W, a, cfg, x, cache, pos):
    """The teacher's attention for one token, with a per-layer cache of (k, v) of earlier tokens."""
    nh, nkv, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    bias = lambda n: W[a + n + "_proj.bias"] if cfg["attention_bias"] else 0
    q = rope(W[a + "q_proj.weight"] @ x + bias("q"), pos, nh, d, cfg["rope_theta"])
    k = rope(W[a + "k_proj.weight"] @ x + bias("k"), pos, nkv, d, cfg["rope_theta"])
    v = W[a + "v_proj.weight"] @ x + bias("v")
    cache.append((k, v))
    K = torch.stack([c[0] for c in cache]).reshape(len(cache), nkv, d)
    V = torch.stack([c[1] for c in cache]).reshape(len(cache), nkv, d)
    out = torch.zeros(nh * d, dtype=torch.float64)
    for h in range(nh):
        kh = h // (nh // nkv)
        s = K[:, kh, :] @ q[h * d:(h + 1) * d] / math.sqrt(d)
        out[h * d:(h + 1) * d] = torch.softmax(s, dim=0) @ V[:, kh, :]
    return W[a + "o_proj.weight"] @ out


def run(W, cfg, ids):
    """Per-token recurrent loop from a zero state. Returns logits [T,V], mix outputs {l: [T,C]}, state."""
    L, eps = cfg["num_hidden_layers"], cfg["rms_norm_eps"]
    state = {l: {"S": torch.zeros(H, N, N, dtype=torch.float64), "x_prev": torch.zeros(C, dtype=torch.float64)}
             for l in cfg["wkv_layers"]}
    caches = {l: [] for l in range(L) if l not in cfg["wkv_layers"]}
    head = W["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else W["lm_head.weight"]
    logits, mix = [], {l: [] for l in range(L)}
    for pos, tok in enumerate(ids):
        x = W["model.embed_tokens.weight"][tok].clone()
        v_first = None
        for l in range(L):
            p = f"model.layers.{l}."
            xn = rmsnorm(x, W[p + "input_layernorm.weight"], eps)
            if l in state:
                o, v_first = time_mix_token(W, p + "self_attn.time_mixer.", cfg, xn, state[l], v_first)
            else:
                o = attention_token(W, p + "self_attn.", cfg, xn, caches[l], pos)
            mix[l].append(o)
            x = x + o
            xn = rmsnorm(x, W[p + "post_attention_layernorm.weight"], eps)
            gate = W[p + "mlp.gate_proj.weight"] @ xn
            x = x + W[p + "mlp.down_proj.weight"] @ (torch.nn.functional.silu(gate) * (W[p + "mlp.up_proj.weight"] @ xn))
        logits.append(head @ rmsnorm(x, W["model.norm.weight"], eps))
    return torch.stack(logits), {l: torch.stack(m) for l, m in mix.items()}, state


def write_f32(path, t):
    np.ascontiguousarray(t.detach().cpu().numpy(), dtype="<f4").tofile(path)


def make(out_dir, name, cfg, g):
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    W = random_weights(cfg, g)
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in W.items()}, os.path.join(d, "model.safetensors"),
              metadata={"format": "pt"})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    logits0, mix0, state0 = run(W, cfg, SEQUENCES[0])
    write_f32(os.path.join(d, "logits_0.f32"), logits0)
    for l, m in mix0.items():
        write_f32(os.path.join(d, f"mix_out_{l}.f32"), m)
    for l, st in state0.items():
        write_f32(os.path.join(d, f"state_S_{l}.f32"), st["S"])
        write_f32(os.path.join(d, f"state_xprev_{l}.f32"), st["x_prev"])
    seq1, parts, start = SEQUENCES[1], [], 0
    for n in DOCS_1:
        parts.append(run(W, cfg, seq1[start:start + n])[0])
        start += n
    write_f32(os.path.join(d, "logits_1.f32"), torch.cat(parts))
    doc_ids = sum([[i] * n for i, n in enumerate(DOCS_1)], [])
    with open(os.path.join(d, "oracle.json"), "w") as f:
        json.dump({"sequences": SEQUENCES, "doc_ids_1": doc_ids, "vocab_size": VOCAB, "hidden_size": C,
                   "n_layers": cfg["num_hidden_layers"], "wkv_layers": cfg["wkv_layers"], "heads": H,
                   "head_size": N, "capture_sequence": 0}, f, indent=1)
    print(f"{name}: {sum(v.numel() for v in W.values())} parameters, logits |max| {logits0.abs().max():.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "student"))
    args = ap.parse_args()
    g = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    make(args.out, "gate_llama",
         make_config("gate_llama", "llama", True, False, [0, 1], 2, True, (16, 16, 8, 32)), g)
    make(args.out, "hybrid_qwen2",
         make_config("hybrid_qwen2", "qwen2", False, True, [0, 2], 3, False, (16, 16, 8, 32)), g)


if __name__ == "__main__":
    main()
