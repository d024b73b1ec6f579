#!/usr/bin/env python3
"""Load figures for an OpenAI-compatible server (qvl serve, llama-server): aggregate decode speed of
N concurrent streaming clients, and the HTTP + JSON + template overhead on time to first token.

usage: tools/serve_bench.py URL [--clients 1,4] [--max-tokens 48] [--rounds 1] [--overhead 20]

For each client count: every client streams one answer of --max-tokens tokens at temperature 0
(each with its own prompt, so no prefix is shared) and the aggregate is generated tokens / wall
time of the round. The overhead: --overhead sequential one-token-budget streams; the client's time
to the first content chunk minus the server's own TTFT (queue_ms + prompt_ms of the llama.cpp-style
`timings` in the usage chunk; qvl serve sends them). Standard library only; a benchmark, not a test.
"""
import argparse
import http.client
import json
import statistics
import threading
import time
import urllib.parse


def stream(url, prompt, max_tokens):
    """(seconds to the first content chunk, completion tokens, server timings) of one streamed answer."""
    u = urllib.parse.urlparse(url)
    body = json.dumps({"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
                       "temperature": 0, "stream": True, "stream_options": {"include_usage": True}})
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    start = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    first, tokens, timings = None, 0, None
    for line in response:
        if line.startswith(b"data: [DONE]"):
            break
        if not line.startswith(b"data: {"):
            continue
        chunk = json.loads(line[6:])
        if first is None and chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
            first = time.perf_counter() - start
        if chunk.get("usage"):
            tokens = chunk["usage"]["completion_tokens"]
            timings = chunk.get("timings")
    conn.close()
    return first, tokens, timings


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url")
    p.add_argument("--clients", default="1,4")
    p.add_argument("--max-tokens", type=int, default=48)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--overhead", type=int, default=20)
    a = p.parse_args()
    rates = {}
    for n in [int(x) for x in a.clients.split(",")]:
        for r in range(a.rounds):
            results = [None] * n

            def client(i):
                results[i] = stream(a.url, f"Round {r}, client {i}: tell a long story about the sea.", a.max_tokens)

            threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - start
            tokens = sum(res[1] for res in results)
            rates.setdefault(n, []).append(tokens / wall)
            print(f"{n} client(s), round {r + 1}: {tokens} tokens in {wall:.2f} s = {tokens / wall:.2f} tok/s")
    if 1 in rates:
        for n, values in rates.items():
            print(f"{n} client(s): {statistics.mean(values):.2f} tok/s = {statistics.mean(values) / statistics.mean(rates[1]):.2f}x one client")
    overheads = []
    for i in range(a.overhead):
        first, _, timings = stream(a.url, f"Overhead probe {i}.", 1)
        if first is not None and timings:
            overheads.append(first * 1e3 - timings["queue_ms"] - timings["prompt_ms"])
    if overheads:
        print(f"TTFT overhead (client minus server, ms): median {statistics.median(overheads):.2f}, "
              f"min {min(overheads):.2f}, max {max(overheads):.2f} over {len(overheads)} requests")


if __name__ == "__main__":
    main()
