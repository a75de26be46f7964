#!/usr/bin/env python3
"""The PyTorch baseline of bench_train: one align step and one kd step, in PyTorch, on the CPU or a GPU.

What a researcher without arwkv would run: the teacher is transformers' LlamaForCausalLM with
SmolLM2-135M's configuration, and the student is SPEC §3 written in PyTorch (whole-sequence token
shift, LoRAs and projections; the WKV-7 recurrence as a loop over tokens, batched over rows and
heads, which is how RWKV-7's own reference code runs it where it has no CUDA kernel). Autograd does
the backward. Weights are random (the shapes set the cost): 30 layers, C 576, 9 student heads of
64, LoRA ranks 32/32/32/96, MLP 1536, vocabulary 49152, tied head.

Timed like bench_train: forward + backward of the objective (the frozen teacher's forward
included, the optimiser step not), median of --reps after one warm-up, tokens = B x T.
  align: teacher forward with every layer's attention input and output captured (hooks); each
         student time-mix block maps the teacher's normed input to an output, loss = mean over
         layers and tokens of ||A_t - A_s||^2 / C; time-mix parameters train.
  kd:    the whole student (embedding, time mix, MLP, norms, head); loss = KL(p_t || p_s) at
         temperature 2 over the full vocabulary; time mix, MLP, norms and head train.

Run (same thread count as bench_train): python bench/torch_train.py --threads 2 --batch 4 --seq-len 256

On a GPU, the pipeline bench_train --backend cuda is compared with (kd only, bf16, the WKV-7
recurrence through flash-linear-attention's chunk_rwkv7, the teacher transformers' Qwen2 with
Qwen2.5-0.5B's shapes: 24 layers, C 896, 14 heads / 2 KV heads, MLP 4864, vocabulary 151936):
  python bench/torch_train.py --device cuda --shape qwen2.5-0.5b --wkv fla --dtype bf16 --kd-only \
      --batch 4 --seq-len 2048 --reps 3
"""
import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

SHAPES = {  # C, layers, MLP, vocabulary, query heads, KV heads, LoRA ranks
    "smollm2-135m": (576, 30, 1536, 49152, 9, 3, {"w": 32, "a": 32, "v": 32, "g": 96}),
    "qwen2.5-0.5b": (896, 24, 4864, 151936, 14, 2, {"w": 64, "a": 64, "v": 32, "g": 128}),
}
N = 64
C, L, FFN, V, HQ, HKV, RANKS = SHAPES["smollm2-135m"]
H = C // N
WKV = "loop"


class TimeMix(torch.nn.Module):
    """SPEC §3 time mixing for a [B, T, C] normed input (no document resets: rows are documents)."""

    def __init__(self, layer):
        super().__init__()
        p = lambda *s, scale=0.02: torch.nn.Parameter(torch.randn(*s) * scale)
        self.layer = layer
        for s in "rwkvag":
            setattr(self, "x_" + s, torch.nn.Parameter(torch.rand(1, 1, C)))
        self.receptance, self.key, self.value, self.output = (torch.nn.Linear(C, C, bias=False) for _ in range(4))
        self.w0 = torch.nn.Parameter(torch.linspace(-6.5, 4.0, C).reshape(1, 1, C))
        self.w1, self.w2 = p(C, RANKS["w"]), p(RANKS["w"], C)
        self.a0, self.a1, self.a2 = p(1, 1, C), p(C, RANKS["a"]), p(RANKS["a"], C)
        if layer > 0:
            self.v0, self.v1, self.v2 = p(1, 1, C), p(C, RANKS["v"]), p(RANKS["v"], C)
        self.g1, self.g2 = p(C, RANKS["g"]), p(RANKS["g"], C)
        self.k_k = torch.nn.Parameter(torch.full((1, 1, C), 0.85))
        self.k_a = torch.nn.Parameter(torch.ones(1, 1, C))
        self.r_k = p(H, N)

    def forward(self, x, v_first):
        B, T, _ = x.shape
        xx = F.pad(x, (0, 0, 1, -1)) - x  # x_prev - x, x_prev = 0 before the first token
        xr, xw, xk, xv, xa, xg = (x + xx * getattr(self, "x_" + s) for s in "rwkvag")
        r, k, v = self.receptance(xr), self.key(xk), self.value(xv)
        z = self.w0 + torch.tanh(xw @ self.w1) @ self.w2
        log_d = -0.606531 * torch.sigmoid(z)
        if self.layer == 0:
            v_first = v
        else:
            v = v + (v_first - v) * torch.sigmoid(self.v0 + (xv @ self.v1) @ self.v2)
        a = torch.sigmoid(self.a0 + (xa @ self.a1) @ self.a2)
        g = torch.sigmoid(xg @ self.g1) @ self.g2
        kk = F.normalize((k * self.k_k).view(B, T, H, N), dim=-1, eps=1e-12).view(B, T, C)
        k = k * (1 + (a - 1) * self.k_a)
        if WKV == "fla":
            hv = lambda t: t.reshape(B, T, H, N)
            y, _ = chunk_rwkv7(hv(r), hv(log_d), hv(k), hv(v), hv(-kk), hv(kk * a), scale=1.0)
            y = y.reshape(B, T, C)
        else:
            y = wkv7_loop(r, torch.exp(log_d), k, v, -kk, kk * a, B, T)
        bonus = (r * k * self.r_k.view(1, 1, C)).view(B, T, H, N).sum(-1, keepdim=True)
        y = y + (bonus * v.view(B, T, H, N)).view(B, T, C)
        return self.output(y * g), v_first


def wkv7_loop(r, d, k, v, a, b, B, T):
    """S_t = S_{t-1} diag(d_t) + (S_{t-1} a_t) b_t^T + v_t k_t^T; y_t = S_t r_t (per head)."""
    hv = lambda t: t.view(B, T, H, N)
    r, d, k, v, a, b = map(hv, (r, d, k, v, a, b))
    S = torch.zeros(B, H, N, N, dtype=r.dtype, device=r.device)
    ys = []
    for t in range(T):
        sa = torch.einsum("bhij,bhj->bhi", S, a[:, t])
        S = S * d[:, t, :, None, :] + sa[..., None] * b[:, t, :, None, :] + v[:, t, :, :, None] * k[:, t, :, None, :]
        ys.append(torch.einsum("bhij,bhj->bhi", S, r[:, t]))
    return torch.stack(ys, dim=1).reshape(B, T, C)


class Student(torch.nn.Module):
    def __init__(self, teacher):
        super().__init__()
        self.mixers = torch.nn.ModuleList(TimeMix(l) for l in range(L))
        self.teacher = teacher  # its embedding, norms, MLPs and head are the student's (copied in ARWKV)

    def forward(self, ids):
        m = self.teacher.model
        x = m.embed_tokens(ids)
        v_first = None
        for layer, mix in zip(m.layers, self.mixers):
            o, v_first = mix(layer.input_layernorm(x), v_first)
            x = x + o
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return self.teacher.lm_head(m.norm(x))


def make_teacher(shape):
    kw = dict(vocab_size=V, hidden_size=C, intermediate_size=FFN, num_hidden_layers=L, num_attention_heads=HQ,
              num_key_value_heads=HKV, tie_word_embeddings=True, max_position_embeddings=32768)
    if shape.startswith("qwen"):
        cfg, cls = Qwen2Config(rms_norm_eps=1e-6, rope_theta=1e6, **kw), Qwen2ForCausalLM
    else:
        cfg, cls = LlamaConfig(rms_norm_eps=1e-5, rope_theta=1e5, **kw), LlamaForCausalLM
    cfg._attn_implementation = "sdpa"
    return cls(cfg).eval()


def median_seconds(reps, f):
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    f()
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=lambda s: [int(x) for x in s.split(",")], default=[4])
    ap.add_argument("--seq-len", type=lambda s: [int(x) for x in s.split(",")], default=[256])
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--shape", default="smollm2-135m", choices=sorted(SHAPES))
    ap.add_argument("--wkv", default="loop", choices=["loop", "fla"], help="WKV-7 as a token loop or fla's chunk_rwkv7")
    ap.add_argument("--kd-only", action="store_true", help="time the kd step only")
    args = ap.parse_args()
    global C, L, FFN, V, HQ, HKV, RANKS, H, WKV, chunk_rwkv7
    C, L, FFN, V, HQ, HKV, RANKS = SHAPES[args.shape]
    H, WKV = C // N, args.wkv
    if WKV == "fla":
        from fla.ops.rwkv7 import chunk_rwkv7
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    teacher = make_teacher(args.shape)
    student = Student(teacher).to(args.device, dtype)
    # kd trains the student's MLP, norms and head (tied to the embedding), which it shares with the
    # teacher; the rest of the teacher is frozen. The teacher itself always runs under no_grad, and
    # align reaches only the time-mix blocks (its inputs are captured without a graph).
    kd_params = [p for n, p in teacher.named_parameters()
                 if ".mlp." in n or "norm" in n or n == "model.embed_tokens.weight"]
    for p in teacher.parameters():
        p.requires_grad_(False)
    for p in kd_params:
        p.requires_grad_(True)
    mix_params = list(student.mixers.parameters())

    captured = {}

    def capture(layer_index):
        def hook(module, args_, kwargs, output):
            captured[layer_index] = (kwargs["hidden_states"], output[0])
        return hook

    for i, layer in enumerate(teacher.model.layers):
        layer.self_attn.register_forward_hook(capture(i), with_kwargs=True)

    def align_step(ids):
        with torch.no_grad():
            teacher(ids)
        v_first, loss = None, 0.0
        for l, mix in enumerate(student.mixers):
            x_in, a_t = captured[l]
            a_s, v_first = mix(x_in, v_first)
            loss = loss + ((a_s - a_t) ** 2).sum(-1).mean() / C
        (loss / L).backward()
        for p in mix_params:
            p.grad = None

    def kd_step(ids, tau=2.0):
        with torch.no_grad():
            logits_t = teacher(ids).logits
        logits_s = student(ids)
        lp_s = F.log_softmax(logits_s / tau, -1)
        lp_t = F.log_softmax(logits_t / tau, -1)
        loss = (lp_t.exp() * (lp_t - lp_s)).sum(-1).mean() * tau * tau
        loss.backward()
        for p in mix_params + kd_params:
            p.grad = None

    where = torch.cuda.get_device_name() if args.device == "cuda" else f"the CPU, {torch.get_num_threads()} threads"
    print(f"PyTorch {torch.__version__} on {where}, {args.dtype}, WKV-7 {WKV}; random weights with {args.shape} "
          f"shapes; kd trains time mix, MLP, norms, head\n")
    print("| B | T | tokens | teacher forward tok/s | align step tok/s | kd step tok/s |\n|---|---|---|---|---|---|")
    for B in args.batch:
        for T in args.seq_len:
            ids = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(B * 7919 + T)).to(args.device)
            with torch.no_grad():
                t_teacher = median_seconds(args.reps, lambda: teacher(ids))
            t_align = float("nan") if args.kd_only else median_seconds(args.reps, lambda: align_step(ids))
            t_kd = median_seconds(args.reps, lambda: kd_step(ids))
            n = B * T
            print(f"| {B} | {T} | {n} | {n / t_teacher:.0f} | {n / t_align:.0f} | {n / t_kd:.0f} |", flush=True)


if __name__ == "__main__":
    main()
