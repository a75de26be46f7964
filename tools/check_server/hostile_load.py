"""Normal clients beside hostile ones, against a running arwkv serve (Python standard library only).

Phase 1, for SECONDS: NORMAL clients send completions one after another; their latencies are the
baseline. Phase 2, as long again: the same normal clients, and beside them SLOW connections that
send half a request and then one header byte every few seconds (slowloris), a loop of malformed
requests (garbage bytes, broken JSON, a Content-Length larger than the body, a body over the
server's limit) and streaming clients that hang up after the first chunk. Prints the normal
clients' p50/p99 latency and failures in both phases, the malformed requests' statuses, and exits 1
if a normal request failed or phase 2's p99 exceeds 2x phase 1's.

usage: hostile_load.py HOST:PORT [--normal 4] [--slow 200] [--seconds 30] [--max-tokens 8]
"""
import argparse
import http.client
import json
import random
import socket
import sys
import threading
import time


def completion(host, port, max_tokens, timeout=120):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    body = json.dumps({"prompt": "The capital of France is", "max_tokens": max_tokens, "temperature": 0})
    c.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status != 200:
        raise RuntimeError(f"status {r.status}: {data[:200]!r}")
    json.loads(data)["choices"][0]["text"]


def normal_clients(host, port, n, seconds, max_tokens):
    latencies, failures, lock = [], [], threading.Lock()
    stop = time.time() + seconds

    def run():
        while time.time() < stop:
            t0 = time.time()
            try:
                completion(host, port, max_tokens)
                with lock:
                    latencies.append(time.time() - t0)
            except Exception as e:  # noqa: BLE001 - every failure is counted and shown
                with lock:
                    failures.append(repr(e))

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(latencies), failures


def pct(xs, p):
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


def slowloris(host, port, n, stop):
    socks = []
    for _ in range(n):
        try:
            s = socket.create_connection((host, port), timeout=5)
            s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        except OSError:
            pass
    reopened = 0
    while not stop.is_set():
        for i, s in enumerate(socks):
            try:
                s.sendall(b"X")
            except OSError:  # the server dropped it: open another one
                try:
                    socks[i] = socket.create_connection((host, port), timeout=5)
                    socks[i].sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
                    reopened += 1
                except OSError:
                    pass
        stop.wait(2.0)
    for s in socks:
        s.close()
    return reopened


MALFORMED = [
    b"\x00\xff garbage \r\n\r\n",
    b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"prompt\"",
    b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}",
    b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n{}",
    b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
]


def malformed(host, port, stop, statuses):
    while not stop.is_set():
        req = random.choice(MALFORMED)
        try:
            s = socket.create_connection((host, port), timeout=15)
            s.sendall(req)  # and no half-close: the server takes that for a client that went away
            line = s.makefile("rb").readline().decode("latin-1").split()
            statuses[line[1] if len(line) > 1 else "closed"] = statuses.get(line[1] if len(line) > 1 else "closed", 0) + 1
            s.close()
        except OSError as e:
            statuses[type(e).__name__] = statuses.get(type(e).__name__, 0) + 1
        stop.wait(0.05)


def hang_up_streams(host, port, stop, count):
    body = json.dumps({"prompt": "Once upon a time", "max_tokens": 64, "stream": True}).encode()
    while not stop.is_set():
        try:
            s = socket.create_connection((host, port), timeout=60)
            s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            s.recv(256)  # the headers and maybe the first chunk, then hang up
            s.close()
            count[0] += 1
        except OSError:
            pass
        stop.wait(0.5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("address")
    ap.add_argument("--normal", type=int, default=4)
    ap.add_argument("--slow", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--max-tokens", type=int, default=8)
    a = ap.parse_args()
    host, port = a.address.rsplit(":", 1)
    port = int(port)

    base, base_fail = normal_clients(host, port, a.normal, a.seconds, a.max_tokens)
    print(f"phase 1, {a.normal} normal clients alone: {len(base)} requests, {len(base_fail)} failed, "
          f"p50 {pct(base, 50):.2f} s, p99 {pct(base, 99):.2f} s", flush=True)

    stop, statuses, hung = threading.Event(), {}, [0]
    reopened = []
    side = [threading.Thread(target=lambda: reopened.append(slowloris(host, port, a.slow, stop))),
            threading.Thread(target=malformed, args=(host, port, stop, statuses)),
            threading.Thread(target=hang_up_streams, args=(host, port, stop, hung))]
    for t in side:
        t.start()
    time.sleep(2)  # the slow connections are open before the clocks start
    load, load_fail = normal_clients(host, port, a.normal, a.seconds, a.max_tokens)
    stop.set()
    for t in side:
        t.join()
    print(f"phase 2, the same beside {a.slow} slow connections, malformed requests and streams hung up: "
          f"{len(load)} requests, {len(load_fail)} failed, p50 {pct(load, 50):.2f} s, p99 {pct(load, 99):.2f} s")
    print(f"  malformed requests by first status: {dict(sorted(statuses.items()))}; streams hung up: {hung[0]}; "
          f"slow connections the server dropped and reopened: {reopened[0] if reopened else 0}")
    for f in (base_fail + load_fail)[:5]:
        print("  failure:", f)
    ok = not base_fail and not load_fail and load and pct(load, 99) <= 2 * pct(base, 99)
    print("hostile load:", "pass" if ok else "FAIL (target: no failures, p99 within 2x phase 1's)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
