"""Tokens and text through Python: the golden cases, streaming vs not, the image forms, threads."""
import base64
import json
import threading

import numpy as np
import PIL.Image
import pytest

import qvl
from conftest import GOLDEN, IMAGE, greedy_tokens, image_messages


def test_golden_greedy_tokens_equal_cpp(model, golden_cases):
    assert len(golden_cases) == 3
    for case in golden_cases:
        inputs = model.processor.process(case["messages"], base_dir=GOLDEN)
        ids = case["input_ids"]
        assert inputs.input_ids == (json.loads(ids) if isinstance(ids, str) else ids), case["name"]
        assert inputs.prompt_text == case["prompt_text"], case["name"]
        assert [list(t) for t in inputs.image_grid_thw] == case.get("image_grid_thw", []), case["name"]
        assert greedy_tokens(model, inputs, len(case["greedy_tokens"])) == case["greedy_tokens"], case["name"]


@pytest.mark.parametrize("name", ["d_video_short", "e_video_and_image"])
def test_golden_video_cases_equal_cpp(model, name):
    # Video items (a path in the message) go through the same processor and engine as in C++.
    case = json.loads((GOLDEN / f"{name}.json").read_text())
    inputs = model.processor.process(case["messages"], base_dir=GOLDEN)
    assert inputs.input_ids == case["input_ids"]
    assert [list(t) for t in inputs.video_grid_thw] == case["video_grid_thw"]
    assert sum(inputs.video_tokens) == sum(t * h * w for t, h, w in case["video_grid_thw"]) // 4
    assert greedy_tokens(model, inputs, len(case["greedy_tokens"])) == case["greedy_tokens"]


def test_golden_text_through_chat(model, golden_cases):
    case = next(c for c in golden_cases if c["name"] == "b_one_image")
    tokens = case["greedy_tokens"]
    assert not set(tokens) & set(model.info.eos_token_ids)
    messages = image_messages(str(GOLDEN / case["messages"][0]["content"][0]["image"]))
    want = model.tokenizer.decode(tokens, skip_special_tokens=True)
    assert model.chat(messages, max_tokens=len(tokens), temperature=0) == want
    assert "".join(model.chat(messages, max_tokens=len(tokens), temperature=0, stream=True)) == want


def test_tokenizer_matches_golden_template(model, golden_cases):
    case = golden_cases[0]
    assert model.tokenizer.apply_chat_template(case["messages"]) == case["prompt_text"]
    ids = model.tokenizer.encode(case["prompt_text"])
    assert model.tokenizer.decode(ids) == case["prompt_text"]
    assert model.tokenizer.token_to_id("<|im_start|>") == ids[0]


@pytest.mark.parametrize("sampling", [dict(temperature=0), dict(temperature=0.9, top_k=50, seed=7),
                                      dict(temperature=1.2, top_p=0.9, min_p=0.01, seed=3, presence_penalty=0.5)])
def test_streaming_equals_non_streaming(model, sampling):
    messages = image_messages(str(IMAGE), "What is in the picture?")
    text = model.chat(messages, max_tokens=24, **sampling)
    pieces = list(model.chat(messages, max_tokens=24, stream=True, **sampling))
    assert len(pieces) > 1 and all(pieces)
    assert "".join(pieces) == text
    chunks = list(model.create_chat_completion(messages=messages, stream=True, max_tokens=24, **sampling))
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == text
    assert model.create_chat_completion(messages=messages, max_tokens=24, **sampling)["choices"][0]["message"][
        "content"] == text


def test_stop_string_ends_the_answer(model):
    text = model.chat("Hello there", max_tokens=16, temperature=0)
    # A stop string whose first occurrence is inside the text, not at its start.
    stop = next(text[i:i + 3] for i in range(1, len(text) - 3) if text.index(text[i:i + 3]) == i)
    cut = model.create_chat_completion(messages=[{"role": "user", "content": "Hello there"}], max_tokens=16,
                                       temperature=0, stop=[stop])
    assert cut["choices"][0]["message"]["content"] == text[: text.index(stop)]
    assert cut["choices"][0]["finish_reason"] == "stop"
    assert "".join(model.chat("Hello there", max_tokens=16, temperature=0, stop=stop, stream=True)) == \
        text[: text.index(stop)]


def test_image_forms_give_identical_tokens(model):
    encoded = IMAGE.read_bytes()
    pil = PIL.Image.open(IMAGE)
    array = np.asarray(pil.convert("RGB"))
    forms = {
        "path": str(IMAGE), "pathlib": IMAGE, "bytes": encoded, "bytearray": bytearray(encoded), "pil": pil,
        "pil_rgba": pil.convert("RGBA"), "numpy": array, "qvl_image": qvl.Image.decode(encoded),
        "numpy_strided": np.pad(array, ((0, 0), (0, 0), (0, 1)))[:, :, :3],
    }
    reference = model.processor.process(image_messages(str(IMAGE)))
    ref_tokens = greedy_tokens(model, reference, 8)
    for name, form in forms.items():
        inputs = model.processor.process(image_messages(form))
        assert inputs.input_ids == reference.input_ids, name
        assert np.array_equal(inputs.pixel_values, reference.pixel_values), name
        assert greedy_tokens(model, inputs, 8) == ref_tokens, name
    # The images= list fills image items without an image, or goes first in the last user turn.
    bare = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe this image."}]}]
    assert model.processor.process(bare, images=[array]).input_ids == reference.input_ids
    assert model.processor.process([{"role": "user", "content": "Describe this image."}],
                                   images=[pil]).input_ids == reference.input_ids
    assert model.chat(bare, images=[encoded], max_tokens=8, temperature=0) == \
        model.tokenizer.decode(ref_tokens, skip_special_tokens=True)


def test_images_list_and_items_keep_their_order(model):
    other = GOLDEN / "images" / "c1_256x192.png"
    data_url = "data:image/png;base64," + base64.b64encode(other.read_bytes()).decode()
    explicit = [{"role": "user", "content": [{"type": "image", "image": str(other)},
                                             {"type": "image", "image": str(IMAGE)},
                                             {"type": "text", "text": "Compare."}]}]
    want = model.processor.process(explicit)
    assert len(want.image_grid_thw) == 2
    mixed = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": str(IMAGE)}},
                                          {"type": "text", "text": "Compare."}]}]
    for first in (other, data_url, PIL.Image.open(other)):
        got = model.processor.process(mixed, images=[first])
        assert got.input_ids == want.input_ids
        assert np.array_equal(got.pixel_values, want.pixel_values)


def test_two_threads_on_one_model_match_sequential(model):
    prompts = [(image_messages(str(IMAGE), "Describe it."), dict(temperature=0)),
               ([{"role": "user", "content": "Tell me a story."}], dict(temperature=0.8, seed=11))]
    sequential = [model.chat(m, max_tokens=32, **s) for m, s in prompts]
    for _ in range(3):
        results = [None, None]
        errors = []

        def run(i):
            try:
                results[i] = model.chat(prompts[i][0], max_tokens=32, **prompts[i][1])
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert results == sequential


def test_engine_requests(model):
    engine = qvl.Engine(model, max_sequences=4)
    messages = image_messages(str(IMAGE))
    want = greedy_tokens(model, model.processor.process(messages), 12, stop_at_eos=True)
    requests = [engine.submit(messages, max_tokens=12, temperature=0) for _ in range(3)]
    texts = ["".join(r) for r in requests]
    for r, text in zip(requests, texts):
        assert r.finished and r.finish_reason in ("length", "eos")
        assert r.tokens == want
        assert text == model.tokenizer.decode(want, skip_special_tokens=True)
        assert r.stats["generated_tokens"] == len(want)
    # cancel(): the request ends early with "cancelled".
    long = engine.submit("Count to a million.", max_tokens=5000, temperature=0)
    next(iter(long))
    long.cancel()
    rest = list(long)
    assert long.finish_reason == "cancelled" and len(long.tokens) < 5000, (len(rest), long.finish_reason)
    assert model.engine is model.engine
