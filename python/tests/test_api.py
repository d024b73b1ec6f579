"""The OpenAI shapes, errors, Ctrl-C and memory over many loads."""
import gc
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

import qvl
from conftest import IMAGE, TINY, image_messages


def check_usage(usage):
    assert set(usage) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert all(type(v) is int for v in usage.values())
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_chat_completion_matches_openai_schema(model):
    before = int(time.time())
    r = model.create_chat_completion(messages=image_messages(str(IMAGE)), max_tokens=6, temperature=0)
    assert set(r) == {"id", "object", "created", "model", "choices", "usage"}
    assert isinstance(r["id"], str) and r["id"].startswith("chatcmpl-")
    assert r["object"] == "chat.completion"
    assert type(r["created"]) is int and before <= r["created"] <= int(time.time())
    assert r["model"] == "tiny-qwen3-vl"
    assert isinstance(r["choices"], list) and len(r["choices"]) == 1
    choice = r["choices"][0]
    assert set(choice) == {"index", "message", "logprobs", "finish_reason"}
    assert choice["index"] == 0 and choice["logprobs"] is None
    assert set(choice["message"]) == {"role", "content"}
    assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] == "length"
    check_usage(r["usage"])
    assert r["usage"]["completion_tokens"] == 6
    assert r["usage"]["prompt_tokens"] == len(model.processor.process(image_messages(str(IMAGE))).input_ids)


def test_chat_completion_chunks_match_openai_schema(model):
    chunks = list(model.create_chat_completion(messages=[{"role": "user", "content": "Hi"}], stream=True,
                                               max_tokens=5, temperature=0))
    assert len(chunks) >= 3
    for c in chunks:
        assert set(c) == {"id", "object", "created", "model", "choices"}
        assert c["object"] == "chat.completion.chunk"
        assert (c["id"], c["created"], c["model"]) == (chunks[0]["id"], chunks[0]["created"], chunks[0]["model"])
        assert len(c["choices"]) == 1 and set(c["choices"][0]) == {"index", "delta", "logprobs", "finish_reason"}
        assert c["choices"][0]["index"] == 0
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    for c in chunks[1:-1]:
        assert set(c["choices"][0]["delta"]) == {"content"} and c["choices"][0]["finish_reason"] is None
    assert chunks[-1]["choices"][0]["delta"] == {} and chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_errors_map_to_qvl_error_kinds(model, tmp_path):
    with pytest.raises(qvl.NotFoundError, match="config.json") as e:
        qvl.Model(tmp_path / "missing")
    assert isinstance(e.value, qvl.Error) and isinstance(e.value, FileNotFoundError)
    assert e.value.kind == "not found"
    # Image bytes: a truncated PNG is a malformed file; bytes of no image format are unsupported.
    png = IMAGE.read_bytes()
    with pytest.raises(qvl.InvalidFileError, match="corrupt PNG"):
        model.chat(image_messages(png[:300]))
    with pytest.raises(qvl.UnsupportedError, match="not in a recognized format"):
        model.chat(image_messages(b"not an image at all"))
    with pytest.raises(qvl.NotFoundError, match="nope.png"):
        model.chat(image_messages(str(tmp_path / "nope.png")))
    with pytest.raises(qvl.InvalidArgumentError, match="HxWx3"):
        model.chat(image_messages(np.zeros((4, 4), np.uint8)))
    with pytest.raises(qvl.InvalidArgumentError, match="uint8"):
        model.chat(image_messages(np.zeros((4, 4, 3), np.float32)))
    with pytest.raises(qvl.InvalidArgumentError, match="non-empty"):
        model.chat([])
    with pytest.raises(qvl.InvalidArgumentError, match="images list has no more"):
        model.chat([{"role": "user", "content": [{"type": "image"}]}])
    bad = {"top_p": 2, "max_tokens": 0, "top_k": -5, "min_p": 1.5, "repetition_penalty": 0, "temperature": -1,
           "presence_penalty": float("nan")}
    for name, value in bad.items():
        with pytest.raises(qvl.InvalidArgumentError) as e:
            model.chat("Hi", **{name: value})
        assert isinstance(e.value, ValueError)
        assert name.replace("max_tokens", "max_new_tokens") in str(e.value), (name, str(e.value))
    with pytest.raises(TypeError, match="top_q"):
        model.chat("Hi", top_q=0.5)
    # The model still works after all that.
    assert model.chat("Hi", max_tokens=2, temperature=0)


def interrupt_main_when(predicate):
    """A thread that sends SIGINT to the main thread once predicate() holds."""
    main = threading.main_thread().ident

    def run():
        while not predicate():
            time.sleep(0.001)
        signal.pthread_kill(main, signal.SIGINT)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_keyboard_interrupt_stops_decoding_within_a_step(model):
    assert threading.current_thread() is threading.main_thread()
    produced = []
    at_signal = []

    def ready():
        if len(produced) >= 5:
            at_signal.append(len(produced))
            return True
        return False

    t = interrupt_main_when(ready)
    with pytest.raises(KeyboardInterrupt):
        for piece in model.chat("Write forever.", max_tokens=7000, temperature=0, stream=True):
            produced.append(piece)
    t.join()
    # The signal came while a step ran (or between steps): at most that step's piece followed it.
    assert len(produced) - at_signal[0] <= 1
    assert model.chat("Hi", max_tokens=2, temperature=0)


def test_keyboard_interrupt_stops_an_engine_request(model):
    engine = qvl.Engine(model, max_sequences=2)
    produced, at_signal = [], []

    def ready():
        if len(produced) >= 3:
            at_signal.append(len(produced))
            return True
        return False

    request = engine.submit("Write forever.", max_tokens=5000, temperature=0)
    t = interrupt_main_when(ready)
    with pytest.raises(KeyboardInterrupt):
        for piece in request:
            produced.append(piece)
    t.join()
    assert len(produced) - at_signal[0] <= 1
    # The interrupted request is cancelled (at the latest when dropped): the engine goes idle
    # long before 5000 steps.
    del request
    gc.collect()
    engine.wait_idle()
    assert engine.stats["steps"] < 1000


def test_keyboard_interrupt_stops_prefill(model):
    frames = sys._current_frames
    main = threading.main_thread().ident
    gen = qvl.Generator(model, max_tokens=1)
    prompt = model.tokenizer.encode("hello world " * 3000)

    def in_prefill():
        frame = frames().get(main)
        return frame is not None and frame.f_code.co_name == "test_keyboard_interrupt_stops_prefill" and \
            frame.f_lineno == prefill_line

    prefill_line = sys._getframe().f_lineno + 3
    t = interrupt_main_when(in_prefill)
    with pytest.raises(KeyboardInterrupt):
        gen.append_tokens(prompt)
    t.join()
    # Cancelled inside the call: the sequence is as it was, and works.
    assert gen.sequence == [] and gen.stats["prompt_tokens"] == 0
    gen.append_tokens(prompt[:10])
    gen.generate_next_token()
    assert len(gen.sequence) == 11


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_load_generate_unload_cycles_keep_rss_flat():
    def cycle(i):
        m = qvl.Model(TINY, threads=1, context=1024)
        text = m.chat(image_messages(str(IMAGE)) if i % 2 else "Hello", max_tokens=3, temperature=0)
        assert text
        del m  # no reference cycles: freed here

    for i in range(20):  # warm-up: allocator arenas, the tokenizer's caches, imports
        cycle(i)
    gc.collect()
    baseline = rss_bytes()
    for i in range(180):
        cycle(i)
    gc.collect()
    grown = rss_bytes()
    assert grown <= baseline * 1.10, (baseline, grown)
