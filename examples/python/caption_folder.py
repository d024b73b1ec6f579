#!/usr/bin/env python3
"""Captions every image in a folder with qvl's batching engine: all prompts are submitted at once
and decoded together (continuous batching), and captions print as each finishes.

    python3 examples/python/caption_folder.py MODEL_DIR IMAGE_DIR [--max-tokens 64] [--threads 0]
"""
import argparse
import pathlib
import sys

import qvl

EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("images", type=pathlib.Path)
    ap.add_argument("--prompt", default="Write a one-sentence caption for this image.")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--parallel", type=int, default=4, help="sequences decoded together")
    a = ap.parse_args()

    files = sorted(p for p in a.images.iterdir() if p.suffix.lower() in EXTENSIONS)
    if not files:
        sys.exit(f"no images in {a.images}")
    model = qvl.Model(a.model, threads=a.threads)
    engine = qvl.Engine(model, max_sequences=a.parallel)
    requests = []
    for path in files:
        messages = [{"role": "user", "content": [{"type": "image", "image": str(path)},
                                                 {"type": "text", "text": a.prompt}]}]
        requests.append((path, engine.submit(messages, max_tokens=a.max_tokens, temperature=0)))
    for path, request in requests:  # in order; the engine runs them all meanwhile
        caption = " ".join("".join(request).split())  # one line per image
        print(f"{path.name}\t{caption}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
