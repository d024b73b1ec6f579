"""examples/python/ run against the tiny model."""
import os
import pathlib
import subprocess
import sys

from conftest import GOLDEN, TINY

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples" / "python"


def run(args, stdin=None):
    return subprocess.run([sys.executable, *map(str, args)], input=stdin, capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)


def test_caption_folder_captions_every_image():
    r = run([EXAMPLES / "caption_folder.py", TINY, GOLDEN / "images", "--max-tokens", "6", "--threads", "2"])
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in (GOLDEN / "images").iterdir())
    lines = r.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == names
    assert all(line.split("\t", 1)[1] for line in lines)


def test_chat_streams_answers_and_reports_errors():
    r = run([EXAMPLES / "chat.py", TINY, "--max-tokens", "6", "--temperature", "0", "--threads", "2"],
            stdin=f"Hello\n/image {GOLDEN / 'images' / 'b_320x256.png'}\nWhat is this?\n/image /no/such.png\nAnd?\n\n")
    assert r.returncode == 0, r.stderr
    out = r.stdout.split("> ")
    assert len(out) >= 5 and out[1].strip() and out[3].strip()
    assert "error (not found): cannot open image '/no/such.png'" in r.stdout
