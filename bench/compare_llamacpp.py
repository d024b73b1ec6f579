#!/usr/bin/env python3
"""qvl beside llama.cpp on the same machine, in the same run, the runs interleaved.

Each round runs every test once with qvl, then once with llama.cpp (qvl, llama.cpp, qvl, llama.cpp,
...), so that a shared machine's changing load hurts both engines alike. Reported per test: the best
and the median of the rounds for each engine, and the ratios qvl / llama.cpp of both. qvl's bench
also measures the machine's read bandwidth in every text run; the best of them is printed with the
share of the decode roofline (bytes read per token / bandwidth) that each engine reached.

    bench/compare_llamacpp.py --llama-bin ~/llama.cpp/build/bin \\
        --text q4_0=synth-4b-Q4_0.gguf --text q4_k_m=synth-4b-Q4_K_M.gguf \\
        --text q4_k:qvl=synth-4b-q4k.gguf:llama=synth-4b-Q4_0.gguf \\
        --image 448x448 --mmproj mmproj-F16.gguf --image-model synth-4b-Q4_0.gguf \\
        --rounds 3 --threads 2 [--busy nice19|normal] [--json out.json]

--text NAME=FILE runs the same GGUF in both engines (a llama.cpp file; qvl loads it as is);
--text NAME:qvl=A:llama=B runs A in qvl and B in llama.cpp (e.g. qvl's own q4_k file against
llama.cpp's Q4_0). Text tests: prefill of -p tokens (pp) and decode of -n tokens (tg), llama-bench
against `qvl bench` (both report tokens/s of the same work: a pp-token prompt from an empty
context; tg tokens after a 1-token context for llama-bench, after the pp prompt's for qvl).
Image tests: time to first token of an image + a 17-token question — qvl bench's ttft_ms against
llama-mtmd-cli's prompt eval time, which runs from the prompt's first text chunk through the image
encode to the prompt's logits (its load time excluded, as qvl's is).
--busy starts one single-thread busy loop (at nice 19, or at normal priority) during every run of
both engines: how each holds up beside a browser or an indexer.
"""
import argparse
import atexit
import json
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import zlib

QUESTION = "Describe this picture in detail, listing every object you can see and its color."


def run(cmd, busy):
    """Runs cmd (list), returns (stdout, stderr); with busy, a spinning process runs alongside."""
    spinner = None
    if busy:
        prefix = ["nice", "-n", "19"] if busy == "nice19" else []
        spinner = subprocess.Popen(prefix + ["sh", "-c", "while :; do :; done"])
    try:
        p = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        if spinner:
            spinner.kill()
            spinner.wait()
    if p.returncode != 0:
        sys.exit(f"compare_llamacpp: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return p.stdout, p.stderr


def qvl_text(a, model):
    out, _ = run([a.qvl, "bench", "-m", model, "-t", str(a.threads), "-p", str(a.pp), "-n", str(a.tg),
                  "--skip-depth", "--image", "none", "-r", "1", "--json"], a.busy)
    j = json.loads(out)
    return {"pp": j["pp_tok_s"], "tg": j["tg_tok_s"], "bandwidth": j.get("bandwidth_gb_s"),
            "bytes_per_token": j.get("decode_bytes_per_token")}


def llama_text(a, model):
    out, _ = run([os.path.join(a.llama_bin, "llama-bench"), "-m", model, "-t", str(a.threads), "-p", str(a.pp),
                  "-n", str(a.tg), "-r", "1", "-o", "json"], a.busy)
    res = {}
    for e in json.loads(out):
        res["pp" if e["n_prompt"] > 0 else "tg"] = e["avg_ts"]
    return res


def write_noise_png(path, w, h):
    """An RGB noise image (deterministic), written without any imaging library."""
    state = 12345
    rows = bytearray()
    for _ in range(h):
        rows.append(0)  # filter: none
        for _ in range(w * 3):
            state = (state * 1103515245 + 12345) & 0x7FFFFFFF
            rows.append(state >> 23)

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(bytes(rows), 6)) + chunk(b"IEND", b""))


def qvl_image(a, size):
    cmd = [a.qvl, "bench", "-m", a.image_model, "-t", str(a.threads), "-p", "16", "-n", "1", "--skip-depth",
           "--image", size, "-r", "1", "--json"] + (["--mmproj", a.mmproj] if a.mmproj else []) + a.qvl_image_args
    j = json.loads(run(cmd, a.busy)[0])
    return {"ttft_ms": j["ttft_ms"], "encode_ms": j["image_encode_ms"][size]}


def llama_image(a, png):
    _, err = run([os.path.join(a.llama_bin, "llama-mtmd-cli"), "-m", a.llama_image_model or a.image_model,
                  "--mmproj", a.llama_mmproj or a.mmproj, "--image", png, "-p", QUESTION, "-n", "1", "-c", "4096", "-t",
                  str(a.threads), "--temp", "0", "-v"], a.busy)
    enc = re.search(r"batch encoding done in (\d+) ms", err)
    pe = re.search(r"prompt eval time =\s+([\d.]+) ms", err)
    if not enc or not pe:
        sys.exit("compare_llamacpp: could not read llama-mtmd-cli's timings:\n" + err[-2000:])
    encode_ms, prompt_ms = float(enc.group(1)), float(pe.group(1))
    # llama.cpp's prompt timer starts at the first decode of the prompt (the text chunk before the
    # image) and stops when the prompt's logits are read: it spans the image encode. Its prompt eval
    # time is the time to first token; adding the encode to it would count the encode twice.
    if prompt_ms < encode_ms:
        sys.exit(f"compare_llamacpp: llama-mtmd-cli's prompt eval time ({prompt_ms} ms) does not span its image "
                 f"encode ({encode_ms} ms); the time to first token cannot be read from its log")
    return {"ttft_ms": prompt_ms, "encode_ms": encode_ms}


def parse_text(spec):
    if ":" in spec:
        name, *parts = spec.split(":")
        files = dict(p.split("=", 1) for p in parts)
        return name, files["qvl"], files["llama"]
    name, path = spec.split("=", 1)
    return name, path, path


def summary(values, higher_is_better):
    best = max(values) if higher_is_better else min(values)
    return best, statistics.median(values)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-bin", required=True, help="llama.cpp build's bin folder (llama-bench, llama-mtmd-cli)")
    ap.add_argument("--qvl", default=os.path.join(os.path.dirname(__file__), "..", "build", "tools", "qvl"))
    ap.add_argument("--text", action="append", default=[], help="NAME=FILE or NAME:qvl=A:llama=B")
    ap.add_argument("--image", action="append", default=[], help="image size WxH for the TTFT test")
    ap.add_argument("--image-model", help="text GGUF (or qvl model) for the image tests")
    ap.add_argument("--mmproj", help="mmproj GGUF for the image tests")
    ap.add_argument("--llama-image-model", help="llama.cpp's text GGUF if not --image-model")
    ap.add_argument("--llama-mmproj", help="llama.cpp's mmproj if not --mmproj")
    ap.add_argument("--qvl-image-args", default="", help="extra qvl bench arguments for the image tests")
    ap.add_argument("-p", "--pp", type=int, default=512)
    ap.add_argument("-n", "--tg", type=int, default=64)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--busy", choices=["nice19", "normal"])
    ap.add_argument("--json", help="also write the raw results here")
    a = ap.parse_args()
    a.qvl_image_args = a.qvl_image_args.split()
    if a.image and not a.image_model:
        ap.error("--image needs --image-model (and --mmproj unless the model folder has the vision tower)")

    texts = [parse_text(s) for s in a.text]
    results = {}  # (test, engine) -> list of values

    def add(test, engine, value):
        results.setdefault((test, engine), []).append(value)

    tmp = tempfile.mkdtemp(prefix="qvl_compare_")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    pngs = {}
    for size in a.image:
        w, h = (int(v) for v in size.split("x"))
        pngs[size] = os.path.join(tmp, f"noise_{size}.png")
        write_noise_png(pngs[size], w, h)

    bandwidth = []
    for r in range(a.rounds):
        for name, qfile, lfile in texts:
            q = qvl_text(a, qfile)
            l = llama_text(a, lfile)
            print(f"round {r + 1} {name}: qvl pp{a.pp} {q['pp']:.1f} tg{a.tg} {q['tg']:.2f} | "
                  f"llama.cpp pp{a.pp} {l['pp']:.1f} tg{a.tg} {l['tg']:.2f} tok/s", file=sys.stderr, flush=True)
            for k in ("pp", "tg"):
                add(f"{name} {k}{a.pp if k == 'pp' else a.tg} (tok/s)", "qvl", q[k])
                add(f"{name} {k}{a.pp if k == 'pp' else a.tg} (tok/s)", "llama.cpp", l[k])
            if q["bandwidth"]:
                bandwidth.append(q["bandwidth"])
                add(f"{name} bytes/token", "qvl", q["bytes_per_token"])
        for size in a.image:
            q = qvl_image(a, size)
            l = llama_image(a, pngs[size])
            print(f"round {r + 1} image {size}: qvl TTFT {q['ttft_ms']:.0f} ms (encode {q['encode_ms']:.0f}) | "
                  f"llama.cpp TTFT {l['ttft_ms']:.0f} ms (encode {l['encode_ms']:.0f})", file=sys.stderr, flush=True)
            for k in ("ttft_ms", "encode_ms"):
                add(f"image {size} {k.replace('_ms', '')} (ms)", "qvl", q[k])
                add(f"image {size} {k.replace('_ms', '')} (ms)", "llama.cpp", l[k])

    bw = max(bandwidth) if bandwidth else None
    load = {"nice19": "one nice-19 busy loop running", "normal": "one normal-priority busy loop running"}.get(a.busy,
                                                                                                             "no extra load")
    print(f"\n{a.rounds} rounds, {a.threads} threads, {load}; qvl {a.qvl}, llama.cpp {a.llama_bin}")
    if bw:
        print(f"read bandwidth measured by qvl bench in this run: best {bw:.1f} GB/s")
    print("\n| test | qvl best / median | llama.cpp best / median | ratio best | ratio median |")
    print("|---|---|---|---|---|")
    tests = sorted({t for t, _ in results if not t.endswith("bytes/token")}, key=lambda t: (t.startswith("image"), t))
    for t in tests:
        hib = "(tok/s)" in t
        qb, qm = summary(results[(t, "qvl")], hib)
        lb, lm = summary(results[(t, "llama.cpp")], hib)
        rb, rm = (qb / lb, qm / lm) if hib else (lb / qb, lm / qm)
        print(f"| {t} | {qb:.1f} / {qm:.1f} | {lb:.1f} / {lm:.1f} | {rb:.2f}x | {rm:.2f}x |")
    if bw:
        for name, _, _ in texts:
            key = (f"{name} bytes/token", "qvl")
            if key not in results:
                continue
            roof = bw * 1e9 / statistics.median(results[key])
            tg = f"{name} tg{a.tg} (tok/s)"
            print(f"{name}: decode roofline {roof:.1f} tok/s (qvl's bytes/token at {bw:.1f} GB/s): qvl best "
                  f"{100 * max(results[(tg, 'qvl')]) / roof:.0f} %, llama.cpp best "
                  f"{100 * max(results[(tg, 'llama.cpp')]) / roof:.0f} %")
    print("(ratios: qvl's speed over llama.cpp's; for times, llama.cpp's time over qvl's)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rounds": a.rounds, "threads": a.threads, "busy": a.busy, "bandwidth_gb_s": bw,
                       "results": {f"{t} [{e}]": v for (t, e), v in results.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
