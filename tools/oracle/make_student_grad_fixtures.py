#!/usr/bin/env python3
"""Reference gradients for the student's backward pass and the distillation objectives (SPEC §3, §4).

An independent oracle: a tiny teacher (Llama-style decoder) and two tiny students written from the
equations of SPEC §2/§3 as plain per-token loops in float64, differentiated by torch autograd. It
shares no code with the C++ (nor with make_student_fixtures.py). One fixed packed batch of B = 2
rows of T = 11 tokens with a document boundary inside row 0 and an assistant mask on row 1:
  - resets: where a document starts inside a row, every time-mix layer's S and x_prev restart
    from zero; the teacher attends only within a document, positions from its start;
  - a target (b, t) counts when tokens t and t+1 share a document and mask[t+1] is 1.
Losses (means over what counts):
  align:    mean over time-mix layers and all B·T input tokens of ||A_teacher - A_student||^2 / C,
            each student time-mix layer on the teacher's normed input of its layer, v_first from
            the student's layer 0 on the teacher's layer-0 input; only time-mix parameters.
  kd_full:  tau^2·KL(softmax(t/tau) || softmax(s/tau)) + alpha·CE, full vocabulary.
  kd_topk:  the same with the teacher renormalised over its top k logits.
  sft:      CE of the counted targets.
  dpo:      row 0 the chosen and row 1 the rejected reply, REF the reference log-probability of
            every token (the student's own, shifted a little per token): z = beta·[(logp_0 − ref_0) − (logp_1 − ref_1)], each sum over the row's
            counted targets; loss = −log σ(z) (one pair).
Writes tests/data/student_grad/:
  teacher/        config.json, model.safetensors (F32)
  <student>/      config.json (our student format), model.safetensors (F32), oracle.json (the batch,
                  and per loss its options, value and the tensor order of grads_<loss>.f32), and
                  grads_<loss>.f32: every gradient in that order, HF shapes, little-endian float32.
Students: gate_tied (gate, tied head, no group norm): align, kd_full (tau 2, alpha 0.5), sft, dpo (beta 0.5);
          gn_untied (group norm, no gate, untied head): align, kd_topk (k 5, tau 1.5, alpha 0.3).

Run: /tmp/venv/py/bin/python tools/oracle/make_student_grad_fixtures.py [--out tests/data/student_grad]
"""
import argparse
import json
import math
import os

import numpy as np
import torch
from safetensors.torch import save_file

SEED = 4242
C, N, V, FFN, L = 32, 16, 48, 32, 2
H = C // N
T_HEADS, T_KV, T_HD = 2, 1, 16
EPS = 1e-5
B, T = 2, 11
TOKENS = [[3, 17, 40, 8, 8, 21, 1, 30, 45, 2, 11, 7],
          [9, 33, 12, 47, 5, 0, 26, 19, 38, 4, 14, 22]]
DOCS = [[5] * 6 + [6] * 6,
        [6] * 12]
MASK = [[1] * 12,
        [1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 1]]
# The dpo reference: each student's own log-probability of every token, shifted by up to ±0.3 per
# token (reference_logprobs), so that the margin is moderate and sigma(-z) is far from 0 and 1.
SHIFT = [[0.1 * ((r * 5 + t * 3) % 7) - 0.3 for t in range(12)] for r in range(2)]


def rng_tensors(g):
    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * scale

    def unif(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=torch.float64)
    return randn, unif


def teacher_config():
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": False,
            "hidden_size": C, "intermediate_size": FFN, "num_hidden_layers": L, "num_attention_heads": T_HEADS,
            "num_key_value_heads": T_KV, "head_dim": T_HD, "rms_norm_eps": EPS, "rope_theta": 10000.0,
            "max_position_embeddings": 64, "vocab_size": V, "tie_word_embeddings": True, "hidden_act": "silu",
            "bos_token_id": 1, "eos_token_id": 2}


def student_config(name, gate, group_norm, tied, ranks):
    return {"architectures": ["RwkvHybridForCausalLM"], "model_type": "rwkv_hybrid", "teacher_model_type": "llama",
            "_name_or_path": name, "vocab_size": V, "hidden_size": C, "intermediate_size": FFN,
            "num_hidden_layers": L, "num_attention_heads": T_HEADS, "num_key_value_heads": T_KV, "head_dim": T_HD,
            "max_position_embeddings": 64, "rms_norm_eps": EPS, "rope_theta": 10000.0, "attention_bias": False,
            "tie_word_embeddings": tied, "bos_token_id": 1, "eos_token_id": 2, "head_size": N, "wkv_version": 7,
            "wkv_has_gate": gate, "wkv_has_group_norm": group_norm, "wkv_layers": list(range(L)),
            "decay_lora_rank": ranks[0], "iclr_lora_rank": ranks[1], "value_residual_lora_rank": ranks[2],
            "gate_lora_rank": ranks[3] if gate else 0}


def teacher_weights(g):
    randn, _ = rng_tensors(g)
    W = {"model.embed_tokens.weight": randn(V, C, scale=0.7), "model.norm.weight": 1 + randn(C, scale=0.2)}
    for l in range(L):
        p = f"model.layers.{l}."
        W[p + "input_layernorm.weight"] = 1 + randn(C, scale=0.2)
        W[p + "self_attn.q_proj.weight"] = randn(T_HEADS * T_HD, C, scale=1 / math.sqrt(C))
        W[p + "self_attn.k_proj.weight"] = randn(T_KV * T_HD, C, scale=1 / math.sqrt(C))
        W[p + "self_attn.v_proj.weight"] = randn(T_KV * T_HD, C, scale=1 / math.sqrt(C))
        W[p + "self_attn.o_proj.weight"] = randn(C, T_HEADS * T_HD, scale=1 / math.sqrt(C))
        W[p + "post_attention_layernorm.weight"] = 1 + randn(C, scale=0.2)
        W[p + "mlp.gate_proj.weight"] = randn(FFN, C, scale=1 / math.sqrt(C))
        W[p + "mlp.up_proj.weight"] = randn(FFN, C, scale=1 / math.sqrt(C))
        W[p + "mlp.down_proj.weight"] = randn(C, FFN, scale=1 / math.sqrt(FFN))
    return W


def student_weights(cfg, g):
    randn, unif = rng_tensors(g)
    dw, da, dv, dg = (cfg[k] for k in ("decay_lora_rank", "iclr_lora_rank", "value_residual_lora_rank", "gate_lora_rank"))
    W = {"model.embed_tokens.weight": randn(V, C, scale=0.7), "model.norm.weight": 1 + randn(C, scale=0.2)}
    if not cfg["tie_word_embeddings"]:
        W["lm_head.weight"] = randn(V, C, scale=1 / math.sqrt(C))
    for l in range(L):
        p = f"model.layers.{l}."
        t = p + "self_attn.time_mixer."
        W[p + "input_layernorm.weight"] = 1 + randn(C, scale=0.2)
        for x in ["x_r", "x_w", "x_k", "x_v", "x_a"] + (["x_g"] if cfg["wkv_has_gate"] else []):
            W[t + x] = unif(0, 1, 1, 1, C)
        for m in ("receptance", "key", "value", "output"):
            W[t + m + ".weight"] = randn(C, C, scale=1 / math.sqrt(C))
        W[t + "w0"] = unif(-5.0, 3.0, 1, 1, C)
        W[t + "w1"] = randn(C, dw, scale=1 / math.sqrt(C))
        W[t + "w2"] = randn(dw, C, scale=0.5 / math.sqrt(dw))
        W[t + "a0"] = randn(1, 1, C, scale=0.5)
        W[t + "a1"] = randn(C, da, scale=1 / math.sqrt(C))
        W[t + "a2"] = randn(da, C, scale=1 / math.sqrt(da))
        if l > 0:
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
        W[p + "post_attention_layernorm.weight"] = 1 + randn(C, scale=0.2)
        W[p + "mlp.gate_proj.weight"] = randn(FFN, C, scale=1 / math.sqrt(C))
        W[p + "mlp.up_proj.weight"] = randn(FFN, C, scale=1 / math.sqrt(C))
        W[p + "mlp.down_proj.weight"] = randn(C, FFN, scale=1 / math.sqrt(FFN))
    # stored as F32: the oracle runs on the float32-rounded values
    return {k: v.to(torch.float32).to(torch.float64) for k, v in W.items()}


def rmsnorm(x, w):
    return x / torch.sqrt((x * x).mean() + EPS) * w


def sigmoid(x):
    return 1 / (1 + torch.exp(-x))


def starts(row):
    """Whether a document starts at each input position t > 0 of a row."""
    return [t > 0 and DOCS[row][t] != DOCS[row][t - 1] for t in range(T)]


# ---- teacher -------------------------------------------------------------------------------------

def rope(x, pos, heads):
    half = T_HD // 2
    inv = 1.0 / (10000.0 ** (torch.arange(half, dtype=torch.float64) * 2 / T_HD))
    ang = pos * inv
    xh = x.reshape(heads, T_HD)
    a, b = xh[:, :half], xh[:, half:]
    return torch.cat([a * torch.cos(ang) - b * torch.sin(ang), a * torch.sin(ang) + b * torch.cos(ang)], 1).reshape(-1)


def teacher_row(W, row):
    """Logits [T, V], normed attention inputs and attention outputs per layer ([T, C] each)."""
    ids, st = TOKENS[row][:T], starts(row)
    doc_start, pos = [], 0
    for t in range(T):
        if st[t]:
            pos = t
        doc_start.append(pos)
    x = [W["model.embed_tokens.weight"][i] for i in ids]
    att_in, att_out = [], []
    for l in range(L):
        p = f"model.layers.{l}."
        xn = [rmsnorm(xt, W[p + "input_layernorm.weight"]) for xt in x]
        q = [rope(W[p + "self_attn.q_proj.weight"] @ h, t - doc_start[t], T_HEADS) for t, h in enumerate(xn)]
        k = [rope(W[p + "self_attn.k_proj.weight"] @ h, t - doc_start[t], T_KV) for t, h in enumerate(xn)]
        v = [W[p + "self_attn.v_proj.weight"] @ h for h in xn]
        outs = []
        for t in range(T):
            keys = range(doc_start[t], t + 1)
            o = []
            for h in range(T_HEADS):
                kh = h // (T_HEADS // T_KV)
                qs = q[t][h * T_HD:(h + 1) * T_HD]
                s = torch.stack([k[j][kh * T_HD:(kh + 1) * T_HD] @ qs for j in keys]) / math.sqrt(T_HD)
                pr = torch.softmax(s, 0)
                o.append(sum(pr[i] * v[j][kh * T_HD:(kh + 1) * T_HD] for i, j in enumerate(keys)))
            outs.append(W[p + "self_attn.o_proj.weight"] @ torch.cat(o))
        att_in.append(torch.stack(xn))
        att_out.append(torch.stack(outs))
        x = [xt + o for xt, o in zip(x, outs)]
        x = [mlp(W, p, xt) for xt in x]
    logits = torch.stack([W["model.embed_tokens.weight"] @ rmsnorm(xt, W["model.norm.weight"]) for xt in x])
    return logits, att_in, att_out


def mlp(W, p, x):
    h = rmsnorm(x, W[p + "post_attention_layernorm.weight"])
    g = W[p + "mlp.gate_proj.weight"] @ h
    return x + W[p + "mlp.down_proj.weight"] @ (torch.nn.functional.silu(g) * (W[p + "mlp.up_proj.weight"] @ h))


# ---- student -------------------------------------------------------------------------------------

def time_mix_seq(W, t, cfg, xs, row, v_first):
    """SPEC §3 over one row: xs [T] list of normed inputs; v_first: list (layer > 0) or None (layer 0)."""
    S = [torch.zeros(N, N, dtype=torch.float64) for _ in range(H)]
    x_prev = torch.zeros(C, dtype=torch.float64)
    first = v_first is None
    if first:
        v_first = []
    outs = []
    for i, x in enumerate(xs):
        if starts(row)[i]:
            S = [torch.zeros(N, N, dtype=torch.float64) for _ in range(H)]
            x_prev = torch.zeros(C, dtype=torch.float64)
        xx = x_prev - x
        m = {s: x + xx * W[t + "x_" + s].reshape(C) for s in "rwkvag" if t + "x_" + s in W}
        r = W[t + "receptance.weight"] @ m["r"]
        k = W[t + "key.weight"] @ m["k"]
        v = W[t + "value.weight"] @ m["v"]
        z = W[t + "w0"].reshape(C) + torch.tanh(m["w"] @ W[t + "w1"]) @ W[t + "w2"]
        d = torch.exp(-torch.exp(-torch.nn.functional.softplus(-z) - 0.5))
        if first:
            v_first.append(v)
        else:
            v = v + (v_first[i] - v) * sigmoid(W[t + "v0"].reshape(C) + (m["v"] @ W[t + "v1"]) @ W[t + "v2"])
        a = sigmoid(W[t + "a0"].reshape(C) + (m["a"] @ W[t + "a1"]) @ W[t + "a2"])
        kk = (k * W[t + "k_k"].reshape(C)).reshape(H, N)
        kk = (kk / torch.clamp(kk.norm(dim=1, keepdim=True), min=1e-12)).reshape(C)
        k = k * (1 + (a - 1) * W[t + "k_a"].reshape(C))
        ys = []
        for h in range(H):
            sl = slice(h * N, (h + 1) * N)
            sa = S[h] @ (-kk[sl])
            S[h] = S[h] * d[sl][None, :] + torch.outer(sa, kk[sl] * a[sl]) + torch.outer(v[sl], k[sl])
            ys.append(S[h] @ r[sl])
        y = torch.cat(ys)
        if cfg["wkv_has_group_norm"]:
            yh = y.reshape(H, N)
            mu = yh.mean(1, keepdim=True)
            var = ((yh - mu) ** 2).mean(1, keepdim=True)
            y = ((yh - mu) / torch.sqrt(var + 64e-5)).reshape(C) * W[t + "ln_x.weight"] + W[t + "ln_x.bias"]
        bonus = (r * k * W[t + "r_k"].reshape(C)).reshape(H, N).sum(1, keepdim=True)
        y = y + (bonus * v.reshape(H, N)).reshape(C)
        if cfg["wkv_has_gate"]:
            y = y * (sigmoid(m["g"] @ W[t + "g1"]) @ W[t + "g2"])
        outs.append(W[t + "output.weight"] @ y)
        x_prev = x
    return outs, v_first


def student_row(W, cfg, row):
    x = [W["model.embed_tokens.weight"][i] for i in TOKENS[row][:T]]
    v_first = None
    for l in range(L):
        p = f"model.layers.{l}."
        xn = [rmsnorm(xt, W[p + "input_layernorm.weight"]) for xt in x]
        o, v_first = time_mix_seq(W, p + "self_attn.time_mixer.", cfg, xn, row, v_first)
        x = [mlp(W, p, xt + ot) for xt, ot in zip(x, o)]
    head = W["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else W["lm_head.weight"]
    return torch.stack([head @ rmsnorm(xt, W["model.norm.weight"]) for xt in x])


def counted(row, t):
    return DOCS[row][t] == DOCS[row][t + 1] and MASK[row][t + 1] == 1


def align_loss(W, cfg, teacher):
    total = 0.0
    for row in range(B):
        _, ins, outs = teacher[row]
        v_first = None
        for l in range(L):
            xs = [ins[l][t] for t in range(T)]
            o, v_first = time_mix_seq(W, f"model.layers.{l}.self_attn.time_mixer.", cfg, xs, row, v_first)
            total = total + ((torch.stack(o) - outs[l]) ** 2).sum() / C
    return total / (L * B * T)


def kd_loss(W, cfg, teacher, tau, alpha, top_k):
    total, n = 0.0, 0
    for row in range(B):
        s_logits = student_row(W, cfg, row)
        t_logits = teacher[row][0]
        for t in range(T):
            if not counted(row, t):
                continue
            ls = torch.log_softmax(s_logits[t] / tau, 0)
            if top_k:
                ids = sorted(range(V), key=lambda i: (-float(t_logits[t][i]), i))[:top_k]
                lt = torch.log_softmax(t_logits[t][ids] / tau, 0)
                kl = (lt.exp() * (lt - ls[ids])).sum()
            else:
                lt = torch.log_softmax(t_logits[t] / tau, 0)
                kl = (lt.exp() * (lt - ls)).sum()
            ce = -torch.log_softmax(s_logits[t], 0)[TOKENS[row][t + 1]]
            total = total + tau * tau * kl + alpha * ce
            n += 1
    return total / n


def sft_loss(W, cfg):
    total, n = 0.0, 0
    for row in range(B):
        s_logits = student_row(W, cfg, row)
        for t in range(T):
            if counted(row, t):
                total = total - torch.log_softmax(s_logits[t], 0)[TOKENS[row][t + 1]]
                n += 1
    return total / n


def reference_logprobs(W, cfg):
    ref = []
    with torch.no_grad():
        for row in range(B):
            lp = torch.log_softmax(student_row(W, cfg, row), 1)
            ref.append([0.0] + [float(lp[t][TOKENS[row][t + 1]]) + SHIFT[row][t + 1] for t in range(T)])
    return ref


def dpo_loss(W, cfg, beta, REF):
    margin = []
    for row in range(B):
        s_logits = student_row(W, cfg, row)
        lp, ref = 0.0, 0.0
        for t in range(T):
            if counted(row, t):
                lp = lp + torch.log_softmax(s_logits[t], 0)[TOKENS[row][t + 1]]
                ref += REF[row][t + 1]
        margin.append(lp - ref)
    z = beta * (margin[0] - margin[1])
    return -torch.nn.functional.logsigmoid(z)


def write_model(d, cfg, W):
    os.makedirs(d, exist_ok=True)
    save_file({k: v.to(torch.float32).contiguous() for k, v in W.items()}, os.path.join(d, "model.safetensors"),
              metadata={"format": "pt"})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


def make_student(out, name, cfg, g, teacher, losses):
    d = os.path.join(out, name)
    W0 = student_weights(cfg, g)
    write_model(d, cfg, W0)
    REF = [[float(np.float32(x)) for x in row] for row in reference_logprobs(W0, cfg)]
    oracle = {"tokens": TOKENS, "doc_ids": DOCS, "mask": MASK, "ref": REF, "B": B, "T": T, "losses": {}}
    for loss_name, opts in losses:
        W = {k: v.clone().requires_grad_(True) for k, v in W0.items()}
        if loss_name == "align":
            loss = align_loss(W, cfg, teacher)
        elif loss_name.startswith("kd"):
            loss = kd_loss(W, cfg, teacher, opts["temperature"], opts["ce_weight"], opts["top_k"])
        elif loss_name == "dpo":
            loss = dpo_loss(W, cfg, opts["beta"], REF)
        else:
            loss = sft_loss(W, cfg)
        loss.backward()
        names = [k for k in W if W[k].grad is not None and (loss_name != "align" or ".time_mixer." in k)]
        grads = np.concatenate([W[k].grad.detach().numpy().astype("<f4").ravel() for k in names])
        grads.tofile(os.path.join(d, f"grads_{loss_name}.f32"))
        oracle["losses"][loss_name] = {"options": opts, "loss": float(loss.detach()),
                                       "tensors": [[k, list(W[k].shape)] for k in names]}
        print(f"{name} {loss_name}: loss {float(loss):.6f}, {len(names)} gradients, |g|max {np.abs(grads).max():.4f}")
    with open(os.path.join(d, "oracle.json"), "w") as f:
        json.dump(oracle, f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "student_grad"))
    args = ap.parse_args()
    g = torch.Generator().manual_seed(SEED)
    TW = {k: v.to(torch.float32).to(torch.float64) for k, v in teacher_weights(g).items()}
    write_model(os.path.join(args.out, "teacher"), teacher_config(), TW)
    with torch.no_grad():
        teacher = [teacher_row(TW, row) for row in range(B)]
    make_student(args.out, "gate_tied", student_config("gate_tied", True, False, True, (8, 8, 4, 8)), g, teacher,
                 [("align", {}), ("kd_full", {"temperature": 2.0, "top_k": 0, "ce_weight": 0.5}), ("sft", {}), ("dpo", {"beta": 0.5})])
    make_student(args.out, "gn_untied", student_config("gn_untied", False, True, False, (4, 8, 4, 0)), g, teacher,
                 [("align", {}), ("kd_topk", {"temperature": 1.5, "top_k": 5, "ce_weight": 0.3})])


if __name__ == "__main__":
    main()
