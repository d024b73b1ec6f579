"""qvl: Qwen3-VL inference on the CPU, from Python.

    import qvl
    m = qvl.Model("path/to/Qwen3-VL-2B-Instruct")
    print(m.chat([{"role": "user", "content": [
        {"type": "image", "image": "photo.jpg"},
        {"type": "text", "text": "Describe this image."}]}]))

Everything that computes runs in C++ with the GIL released; Ctrl-C stops a generation within a
step. Failures raise qvl.Error subclasses (one per error kind; the message is the engine's).
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import os
import threading
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

from . import _qvl
from ._qvl import (  # noqa: F401  (re-exported)
    CancelledError,
    Error,
    GeneratorParams,
    Image,
    InternalError,
    InvalidArgumentError,
    InvalidFileError,
    IoError,
    LimitExceededError,
    NotFoundError,
    ProcessedInputs,
    Request,
    TokenizerStream,
    UnsupportedError,
)

__all__ = [
    "Model", "ModelInfo", "Tokenizer", "Processor", "Generator", "GeneratorParams", "Engine", "Request",
    "Image", "ProcessedInputs", "TokenizerStream", "to_image",
    "Error", "InvalidArgumentError", "InvalidFileError", "NotFoundError", "UnsupportedError",
    "LimitExceededError", "IoError", "InternalError", "CancelledError",
]
__version__ = "0.1.0"


# ---- images ------------------------------------------------------------------------------------

def to_image(x: Any, base_dir: Union[str, os.PathLike] = ".") -> Image:
    """An image as qvl.Image from a path (str, file:// URL or os.PathLike; relative ones from
    base_dir), a base64 data: URL, encoded file bytes, a PIL.Image, an HxWx3 uint8 numpy array (any object with the
    buffer protocol) or a qvl.Image."""
    if isinstance(x, Image):
        return x
    if isinstance(x, (str, os.PathLike)):
        path = os.fspath(x)
        if path.startswith("data:"):  # data:image/png;base64,... as OpenAI clients send images
            header, _, payload = path.partition(",")
            if not header.endswith(";base64"):
                raise InvalidArgumentError("an image data URL must be base64 (data:image/...;base64,...)")
            try:
                return Image.decode(base64.b64decode(payload, validate=True))
            except binascii.Error as e:
                raise InvalidArgumentError(f"an image data URL holds invalid base64: {e}") from None
        if path.startswith("file://"):
            path = path[len("file://"):]
        elif "://" in path:
            raise UnsupportedError(f"image {path!r}: only local paths and file:// URLs are read; "
                                   "pass the downloaded bytes instead")
        return Image.load(os.path.join(os.fspath(base_dir), path))
    if isinstance(x, (bytes, bytearray, memoryview)):
        return Image.decode(bytes(x))
    if hasattr(x, "convert") and hasattr(x, "tobytes") and hasattr(x, "size"):  # PIL.Image.Image
        rgb = x if x.mode == "RGB" else x.convert("RGB")
        width, height = rgb.size
        return Image.from_rgb(rgb.tobytes(), width, height)
    if hasattr(x, "__array_interface__"):  # numpy: a strided view (a crop, x[::-1]) is made contiguous
        import numpy
        return Image.from_rgb(numpy.ascontiguousarray(x))
    try:
        return Image.from_rgb(x)  # any other HxWx3 uint8 buffer
    except TypeError:
        pass
    raise InvalidArgumentError(
        f"an image must be a path, encoded bytes, a PIL.Image or an HxWx3 uint8 array; got {type(x).__name__}")


def _normalize_messages(messages: Any, images: Optional[Sequence[Any]], base_dir: Union[str, os.PathLike] = "."):
    """Messages as JSON for the engine plus the images they use, in order. Image items carry
    their image under "image" (or "image_url"/"url" as a path); an image item without one takes
    the next entry of `images`; images left over go first into the last user message."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if not isinstance(messages, (list, tuple)) or not messages:
        raise InvalidArgumentError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    pending = list(images or [])
    out_messages: List[Dict[str, Any]] = []
    out_images: List[Image] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise InvalidArgumentError(f"messages[{i}] must be a dict, got {type(msg).__name__}")
        msg = dict(msg)
        content = msg.get("content")
        if isinstance(content, (list, tuple)):
            items = []
            for item in content:
                if isinstance(item, dict) and item.get("type") in ("image", "image_url"):
                    src = item.get("image")
                    if src is None and item.get("type") == "image_url":
                        url = item.get("image_url")
                        src = url.get("url") if isinstance(url, dict) else url
                    if src is None:
                        if not pending:
                            raise InvalidArgumentError(f"messages[{i}] has an image item with no image and "
                                                       "the images list has no more entries")
                        src = pending.pop(0)
                    out_images.append(to_image(src, base_dir))
                    items.append({"type": "image"})
                else:
                    items.append(item)
            msg["content"] = items
        out_messages.append(msg)
    if pending:
        users = [i for i, m in enumerate(out_messages) if m.get("role") == "user"]
        if not users:
            raise InvalidArgumentError("images were given but the messages have no user turn to hold them")
        last = out_messages[users[-1]]
        content = last.get("content")
        text_items = content if isinstance(content, list) else ([{"type": "text", "text": content}] if content else [])
        # The list's images go first in that turn: after the image items of the turns before it.
        n_before = sum(1 for m in out_messages[: users[-1]]
                       for it in (m.get("content") if isinstance(m.get("content"), list) else [])
                       if isinstance(it, dict) and it.get("type") == "image")
        new_images = [to_image(p, base_dir) for p in pending]
        out_images[n_before:n_before] = new_images
        last["content"] = [{"type": "image"} for _ in new_images] + list(text_items)
    return json.dumps(out_messages, ensure_ascii=False), out_images


# ---- model ---------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What was loaded (qvl::ModelInfo)."""
    model_type: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    context_length: int
    max_context_length: int
    has_vision: bool
    eos_token_ids: List[int]
    weight_bytes: int
    decode_weight_bytes: int
    kv_bytes_per_token: int
    kv_cache_type: str
    weights_type: str
    vision_attention: str
    threads: int
    notes: List[str]


class Tokenizer(_qvl.Tokenizer):
    """The checkpoint's tokenizer and chat template."""

    def apply_chat_template(self, messages: Any, add_generation_prompt: bool = True, **template_variables) -> str:
        """The chat template rendered over OpenAI/HF-style messages (a list of dicts or a JSON
        string); keyword arguments become template variables (e.g. enable_thinking=False)."""
        text = messages if isinstance(messages, str) else json.dumps(messages, ensure_ascii=False)
        return self._apply_chat_template(text, add_generation_prompt, json.dumps(template_variables))


class Processor(_qvl.Processor):
    """Messages (+ images) to token ids and pixel tensors (qvl::Processor)."""

    def process(self, messages: Any, images: Optional[Sequence[Any]] = None, add_generation_prompt: bool = True,
                base_dir: str = ".", **template_variables) -> ProcessedInputs:
        """Renders the chat template and processes the images. Images as in Model.chat; an image
        item with a relative path resolves against base_dir."""
        messages_json, imgs = _normalize_messages(messages, images, base_dir)
        return self._process(messages_json, imgs, add_generation_prompt, os.fspath(base_dir),
                             json.dumps(template_variables))


class Generator(_qvl.Generator):
    """One sequence with its own KV cache: append_inputs, then generate_next_token until is_done.
    The Model may be shared by many Generators and threads."""

    def __init__(self, model: "Model", params: Optional[GeneratorParams] = None, **sampling):
        if params is not None and sampling:
            raise TypeError("pass either params or sampling keywords, not both")
        super().__init__(model, params if params is not None else model.params(**sampling))

    def __iter__(self) -> Iterator[int]:
        """Generates and yields the tokens (the EOS token that ends it included)."""
        while not self.is_done():
            self.generate_next_token()
            yield self.next_token()


_SAMPLING_KEYS = ("max_tokens", "temperature", "top_p", "top_k", "min_p", "presence_penalty",
                  "frequency_penalty", "repetition_penalty", "seed", "stop")


class Model(_qvl.Model):
    """A loaded checkpoint: a Qwen3-VL / Qwen3 folder (safetensors), a qvl GGUF, or a llama.cpp
    GGUF (with mmproj= for images). Immutable once loaded and safe to share between threads."""

    def __init__(self, path: Union[str, os.PathLike], mmproj: Optional[str] = None, threads: int = 0,
                 weights_type: Optional[str] = None, kv_type: Optional[str] = None, context: int = 0,
                 head_weights_type: Optional[str] = None, vision_weights_type: Optional[str] = None,
                 vision_attention: Optional[str] = None):
        super().__init__(os.fspath(path), mmproj or "", threads, weights_type or "", kv_type or "", context,
                         head_weights_type or "", vision_weights_type or "", vision_attention or "")
        self.info = ModelInfo(**self._info())
        self.tokenizer = Tokenizer(self)
        self.processor = Processor(self)
        self._engine: Optional[Engine] = None
        self._engine_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<qvl.Model {self.dir!r} {self.info.model_type} {self.info.weights_type}>"

    @property
    def engine(self) -> "Engine":
        """A batching Engine over this model with default options, made on first use."""
        with self._engine_lock:
            if self._engine is None:
                self._engine = Engine(self)
            return self._engine

    def params(self, max_tokens: Optional[int] = None, temperature: Optional[float] = None,
               top_p: Optional[float] = None, top_k: Optional[int] = None, min_p: Optional[float] = None,
               presence_penalty: Optional[float] = None, frequency_penalty: Optional[float] = None,
               repetition_penalty: Optional[float] = None, seed: Optional[int] = None,
               stop: Union[None, str, Sequence[str]] = None, stop_at_eos: bool = True) -> GeneratorParams:
        """GeneratorParams from the checkpoint's generation_config.json with these overrides
        (OpenAI meanings: temperature 0 is greedy; max_tokens None = the whole context). Values out
        of range raise InvalidArgumentError when a Generator takes them."""
        p = GeneratorParams.from_model(self)
        p.max_new_tokens = self.info.context_length if max_tokens is None else _int("max_tokens", max_tokens)
        if temperature is not None:
            t = float(temperature)
            if not t >= 0:
                raise InvalidArgumentError(f"temperature must be a number >= 0; got {temperature!r}")
            p.do_sample = t > 0
            p.temperature = t if t > 0 else 1.0
        if top_p is not None:
            p.top_p = float(top_p)
        if top_k is not None:
            k = _int("top_k", top_k)
            p.top_k = max(0, k) if k >= -1 else k
        if min_p is not None:
            p.min_p = float(min_p)
        if presence_penalty is not None:
            p.presence_penalty = float(presence_penalty)
        if frequency_penalty is not None:
            p.frequency_penalty = float(frequency_penalty)
        if repetition_penalty is not None:
            p.repetition_penalty = float(repetition_penalty)
        p.seed = int.from_bytes(os.urandom(8), "little") if seed is None else _int("seed", seed) % (1 << 64)
        if stop is not None:
            p.stop = [stop] if isinstance(stop, str) else list(stop)
        p.stop_at_eos = stop_at_eos
        return p

    def _start(self, messages, images, sampling) -> "_Completion":
        _check_keys(sampling)
        inputs = self.processor.process(messages, images)
        return _Completion(self, inputs, self._params_for(inputs, sampling))

    def _params_for(self, inputs: ProcessedInputs, sampling: Dict[str, Any]) -> GeneratorParams:
        """max_tokens None: what is left of the context after the prompt."""
        if sampling.get("max_tokens") is None:
            sampling = dict(sampling, max_tokens=max(1, self.info.context_length - len(inputs.input_ids)))
        return self.params(**sampling)

    def chat(self, messages: Any, images: Optional[Sequence[Any]] = None, stream: bool = False,
             **sampling) -> Union[str, Iterator[str]]:
        """The assistant's answer to `messages` (OpenAI/HF-style dicts, or one string as a user
        turn): a str, or with stream=True an iterator of text pieces. Images may be paths, bytes,
        PIL images or HxWx3 uint8 arrays, in image items or in `images` (they fill image items
        without an image, the rest go first in the last user turn). Sampling keywords: max_tokens,
        temperature, top_p, top_k, min_p, presence_penalty, frequency_penalty,
        repetition_penalty, seed, stop."""
        completion = self._start(messages, images, sampling)
        return iter(completion) if stream else "".join(completion)

    def create_chat_completion(self, messages: Any, stream: bool = False, images: Optional[Sequence[Any]] = None,
                               **sampling) -> Union[Dict[str, Any], Iterator[Dict[str, Any]]]:
        """An OpenAI chat.completion dict, or with stream=True an iterator of
        chat.completion.chunk dicts (as llama-cpp-python returns them)."""
        completion = self._start(messages, images, sampling)
        cid = "chatcmpl-" + uuid.uuid4().hex
        created = int(time.time())
        model_name = os.path.basename(os.path.normpath(self.dir))
        if stream:
            return _chunks(completion, cid, created, model_name)
        text = "".join(completion)
        return {
            "id": cid, "object": "chat.completion", "created": created, "model": model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "logprobs": None, "finish_reason": completion.finish_reason}],
            "usage": completion.usage(),
        }


def _check_keys(sampling: Dict[str, Any]) -> None:
    unknown = set(sampling) - set(_SAMPLING_KEYS)
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")


def _int(name: str, v: Any) -> int:
    if isinstance(v, bool) or int(v) != v:
        raise InvalidArgumentError(f"{name} must be an integer; got {v!r}")
    return int(v)


class _Completion:
    """One chat answer being generated: iterating yields text pieces (never half a character,
    never a stop string)."""

    def __init__(self, model: Model, inputs: ProcessedInputs, params: GeneratorParams):
        self.generator = Generator(model, params)
        self.prompt_tokens = len(inputs.input_ids)
        self._inputs = inputs
        self._stream = model.tokenizer.create_stream(list(params.stop))
        self.finish_reason: Optional[str] = None

    def __iter__(self) -> Iterator[str]:
        g, stream = self.generator, self._stream
        g.append_inputs(self._inputs)
        self._inputs = None
        while not g.is_done():
            g.generate_next_token()
            if g.stop_reason == "eos":
                break
            piece = stream.decode(g.next_token())
            if piece:
                yield piece
        rest = "" if stream.stopped else stream.flush()
        if rest:
            yield rest
        self.finish_reason = "stop" if g.stop_reason in ("eos", "stop") else "length"

    def usage(self) -> Dict[str, int]:
        completion = self.generator.stats["generated_tokens"]
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
                "total_tokens": self.prompt_tokens + completion}


def _chunks(completion: _Completion, cid: str, created: int, model_name: str) -> Iterator[Dict[str, Any]]:
    def chunk(delta: Dict[str, Any], finish_reason: Optional[str]) -> Dict[str, Any]:
        return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model_name,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}

    yield chunk({"role": "assistant", "content": ""}, None)
    for piece in completion:
        yield chunk({"content": piece}, None)
    yield chunk({}, completion.finish_reason)


# ---- engine --------------------------------------------------------------------------------------

class Engine(_qvl.Engine):
    """Continuous batching over one Model: submit() many prompts from any thread; each returns a
    Request to iterate for text pieces (or .cancel()). A background thread runs the steps."""

    def __init__(self, model: Model, max_sequences: int = 8, max_step_tokens: int = 256, kv_budget_tokens: int = 0,
                 vision_cache_bytes: int = 256 << 20, keep_finished: int = 4):
        super().__init__(model, max_sequences, max_step_tokens, kv_budget_tokens, vision_cache_bytes, keep_finished)
        self.model = model

    def submit(self, messages: Any, images: Optional[Sequence[Any]] = None, top_logprobs: int = -1,
               **sampling) -> Request:
        """Queues a chat request (arguments as Model.chat). Iterate the Request for its text;
        request.tokens, .finish_reason and .stats fill in as it runs."""
        _check_keys(sampling)
        inputs = self.model.processor.process(messages, images)
        return self._submit(inputs, self.model._params_for(inputs, sampling), top_logprobs)
