"""A bounded load test of arwkv serve on loopback: N concurrent clients send completion requests
(mixed prompts, some streamed, some chat with a shared system prompt) for a fixed time, then prints
requests/s, generated tokens/s, failures, latency, and the server's RSS before and after.

Usage: load_test.py BASE_URL SERVER_PID [--clients 32] [--seconds 60] [--max-tokens 16]
Exits non-zero when any request failed (429 counts as a failure: size --max-queue for the clients).
"""
import argparse
import json
import threading
import time

import requests

PROMPTS = ["The capital of France is", "Once upon a time", "def add(a, b):", "The three primary colours are",
           "In the beginning", "Water is made of", "My favourite season is", "The quick brown fox"]


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def one_request(session: requests.Session, base: str, i: int, max_tokens: int) -> int:
    """Sends request number i; returns the completion tokens it got."""
    kind = i % 4
    if kind == 3:
        body = {"messages": [{"role": "system", "content": "You are a terse assistant."},
                             {"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
                "max_tokens": max_tokens, "temperature": 0.7, "seed": i}
        r = session.post(f"{base}/chat/completions", json=body, timeout=600)
        r.raise_for_status()
        return r.json()["usage"]["completion_tokens"]
    body = {"prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": max_tokens, "temperature": 0.8, "seed": i,
            "stream": kind == 1}
    r = session.post(f"{base}/completions", json=body, timeout=600, stream=kind == 1)
    r.raise_for_status()
    if kind != 1:
        return r.json()["usage"]["completion_tokens"]
    chunks = 0
    done = False
    for line in r.iter_lines():
        if line == b"data: [DONE]":
            done = True
        elif line.startswith(b"data: "):
            chunks += bool(json.loads(line[6:])["choices"][0]["text"])
    if not done:
        raise RuntimeError("stream ended without [DONE]")
    return chunks  # pieces of text, about one per token


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("pid", type=int)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--max-tokens", type=int, default=16)
    a = ap.parse_args()

    rss_before = rss_mib(a.pid)
    lock = threading.Lock()
    stats = {"ok": 0, "failed": 0, "tokens": 0, "latency": [], "errors": []}
    deadline = time.monotonic() + a.seconds
    counter = iter(range(10**9))

    def client() -> None:
        session = requests.Session()
        while time.monotonic() < deadline:
            with lock:
                i = next(counter)
            t0 = time.monotonic()
            try:
                n = one_request(session, a.base, i, a.max_tokens)
                with lock:
                    stats["ok"] += 1
                    stats["tokens"] += n
                    stats["latency"].append(time.monotonic() - t0)
            except Exception as e:  # noqa: BLE001 - every failure is counted and reported
                with lock:
                    stats["failed"] += 1
                    stats["errors"].append(repr(e)[:200])

    t0 = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    rss_after = rss_mib(a.pid)
    lat = sorted(stats["latency"]) or [float("nan")]
    metrics = requests.get(a.base.replace("/v1", "") + "/metrics", timeout=10).json()
    print(f"clients {a.clients}, {elapsed:.1f} s, max_tokens {a.max_tokens}")
    print(f"requests ok {stats['ok']}, failed {stats['failed']}, {stats['ok'] / elapsed:.2f} requests/s")
    print(f"generated tokens {stats['tokens']}, {stats['tokens'] / elapsed:.1f} tokens/s")
    print(f"latency p50 {lat[len(lat) // 2]:.2f} s, p95 {lat[int(len(lat) * 0.95)]:.2f} s")
    print(f"server RSS before {rss_before:.1f} MiB, after {rss_after:.1f} MiB")
    print(f"prefix cache: {json.dumps(metrics['prefix_cache'])}")
    for e in stats["errors"][:5]:
        print(f"error: {e}")
    if stats["failed"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
