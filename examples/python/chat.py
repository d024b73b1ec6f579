#!/usr/bin/env python3
"""A streaming chat in the terminal. `/image PATH` attaches an image to your next message; an empty
line or Ctrl-D ends. Ctrl-C stops the answer being written and keeps the chat going.

    python3 examples/python/chat.py MODEL_DIR [--max-tokens 512] [--temperature 0.7]
"""
import argparse

import qvl


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--max-tokens", type=int, default=512)
    ap.add_argument("--temperature", type=float, default=None, help="0 = greedy; default: the model's")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()

    model = qvl.Model(a.model, threads=a.threads)
    messages, images = [], []
    while True:
        try:
            line = input("> ").strip()
        except EOFError:
            break
        if not line:
            break
        if line.startswith("/image "):
            images.append(line[len("/image "):].strip())
            continue
        content = [{"type": "image", "image": p} for p in images] + [{"type": "text", "text": line}]
        messages.append({"role": "user", "content": content})
        images = []
        answer = []
        try:
            for piece in model.chat(messages, stream=True, max_tokens=a.max_tokens, temperature=a.temperature):
                print(piece, end="", flush=True)
                answer.append(piece)
        except KeyboardInterrupt:
            print(" [stopped]", end="")
        except qvl.Error as e:
            print(f"error ({e.kind}): {e}")
            messages.pop()
            continue
        print()
        messages.append({"role": "assistant", "content": "".join(answer)})


if __name__ == "__main__":
    main()
