"""Fixtures: the bundled tiny random-weight Qwen3-VL (real tokenizer, template and layout) and the
golden cases dumped from the reference implementation (tests/data/golden)."""
import json
import os
import pathlib

import pytest

import qvl

DATA = pathlib.Path(os.environ.get("QVL_TEST_DATA_DIR", pathlib.Path(__file__).resolve().parents[2] / "tests" / "data"))
TINY = DATA / "tiny-qwen3-vl"
GOLDEN = DATA / "golden"
IMAGE = GOLDEN / "images" / "b_320x256.png"


@pytest.fixture(scope="session")
def model():
    # The reference arithmetic throughout (fp32 KV cache and vision attention): the goldens' greedy
    # tokens hold exactly.
    return qvl.Model(TINY, threads=2, kv_type="f32", context=8192, vision_attention="f32")


@pytest.fixture(scope="session")
def golden_cases():
    manifest = json.loads((GOLDEN / "manifest.json").read_text())
    return [json.loads((GOLDEN / f"{name}.json").read_text()) for name in manifest["cases"]]


def greedy_tokens(model, inputs, n, stop_at_eos=False):
    """The first n greedy tokens after `inputs` (a ProcessedInputs), through the low-level loop."""
    g = qvl.Generator(model, model.params(max_tokens=n, temperature=0, stop_at_eos=stop_at_eos))
    g.append_inputs(inputs)
    return list(g)


def image_messages(image, text="Describe this image."):
    return [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": text}]}]
