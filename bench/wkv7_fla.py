"""WKV-7 forward + backward in flash-linear-attention's chunk_rwkv7 (Triton), the baseline that
bench_cuda's WKV-7 line is compared with: same B, T, C, N = 64, bf16 inputs shaped as the student
makes them (log-decays in (-e^-0.5, 0), a = -kk, b = kk * iclr). Prints the median milliseconds of
forward, backward and both over --reps repetitions after warm-ups, timed with CUDA events, and the
device. Needs PyTorch with a GPU and the fla-core package (pure Python, carried as a wheel)."""
import argparse

import torch
from fla.ops.rwkv7 import chunk_rwkv7


def main():
    p = argparse.ArgumentParser()
    p.add_argument("-B", type=int, default=8)
    p.add_argument("-T", type=int, default=4096)
    p.add_argument("-C", type=int, default=4096)
    p.add_argument("--reps", type=int, default=10)
    a = p.parse_args()
    N, H = 64, a.C // 64
    dev, dt = "cuda", torch.bfloat16
    g = torch.Generator(device=dev).manual_seed(0)

    def rnd(*s):
        return torch.rand(*s, device=dev, generator=g) * 2 - 1

    shape = (a.B, a.T, H, N)
    r, k, v = rnd(*shape), rnd(*shape), rnd(*shape)
    w = -0.6065306597 * torch.sigmoid(rnd(*shape) * 3)          # log of the decay
    kk = torch.nn.functional.normalize(rnd(*shape), dim=-1)
    iclr = torch.rand(*shape, device=dev, generator=g)
    aa, bb = -kk, kk * iclr
    leaves = [x.to(dt).requires_grad_() for x in (r, w, k, v, aa, bb)]
    dy = rnd(a.B, a.T, H, N).to(dt)

    def fwd():
        o, _ = chunk_rwkv7(*leaves, scale=1.0)
        return o

    def step():
        for x in leaves:
            x.grad = None
        fwd().backward(dy)

    for _ in range(3):
        step()
    torch.cuda.synchronize()

    def timed(f):
        ts = []
        for _ in range(a.reps):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            f()
            e.record()
            torch.cuda.synchronize()
            ts.append(s.elapsed_time(e))
        return sorted(ts)[len(ts) // 2]

    with torch.no_grad():
        t_fwd = timed(fwd)
    t_both = timed(step)
    print(f"device: {torch.cuda.get_device_name()}")
    print(f"| fla chunk_rwkv7 B={a.B} T={a.T} C={a.C} N={N} bf16 | ms |\n|---|---|")
    print(f"| forward | {t_fwd:.3f} |\n| backward | {t_both - t_fwd:.3f} |\n| forward + backward | {t_both:.3f} |")


if __name__ == "__main__":
    main()
