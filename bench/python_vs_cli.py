#!/usr/bin/env python3
"""Decode tokens/s through the Python package vs the qvl CLI on the same model and settings.

Runs alternate (CLI, Python, CLI, Python, ...) so that a noisy shared machine hurts both alike.
CLI: `qvl run --json`'s decode_tok_s ((generated - 1) / decode seconds, timed inside the library).
Python: wall-clock over the Python loop a chat answer runs (generate_next_token + the streaming
detokenizer), from the first token to the last, so it includes every cost of the binding.

    PYTHONPATH=build/python python3 bench/python_vs_cli.py MODEL [--quant q4_k] [--threads 2] [-n 64] [--runs 3]
"""
import argparse
import json
import statistics
import subprocess
import time

import qvl

PROMPT = "Write a long story about a lighthouse keeper."


def cli_rate(a):
    out = subprocess.run([a.cli, "run", "-m", a.model, "-p", PROMPT, "-n", str(a.n), "--temp", "0", "-t",
                          str(a.threads), "-c", "4096", "--json"] + (["--quant", a.quant] if a.quant else []),
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["timings"]["decode_tok_s"]


def python_rate(model, a):
    inputs = model.processor.process(PROMPT)
    gen = qvl.Generator(model, model.params(max_tokens=a.n, temperature=0, stop_at_eos=False))
    stream = model.tokenizer.create_stream()
    gen.append_inputs(inputs)
    gen.generate_next_token()  # the first token comes from the prefill logits
    stream.decode(gen.next_token())
    t0 = time.perf_counter()
    steps = 0
    while not gen.is_done():
        gen.generate_next_token()
        stream.decode(gen.next_token())
        steps += 1
    wall = steps / (time.perf_counter() - t0)
    s = gen.stats  # the library's own decode timing, as the CLI reports it
    return wall, (s["generated_tokens"] - 1) / s["decode_seconds"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--cli", default="build/tools/qvl")
    ap.add_argument("--quant", default="q4_k")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    model = qvl.Model(a.model, threads=a.threads, weights_type=a.quant or None, context=4096)
    cli, py, inner = [], [], []
    for r in range(a.runs):
        cli.append(cli_rate(a))
        wall, lib = python_rate(model, a)
        py.append(wall)
        inner.append(lib)
        print(f"run {r + 1}: CLI {cli[-1]:.2f} tok/s, Python {wall:.2f} tok/s (library timing {lib:.2f})", flush=True)
    c, p, i = statistics.median(cli), statistics.median(py), statistics.median(inner)
    print(f"median: CLI {c:.2f} tok/s, Python {p:.2f} tok/s (library timing {i:.2f}), Python/CLI = {p / c:.3f}")


if __name__ == "__main__":
    main()
