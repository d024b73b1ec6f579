// qvl._qvl: a thin pybind11 layer over the public C++ API (qvl.hpp, engine.hpp, image.hpp,
// error.hpp). Message shaping, image normalization and the chat helpers live in python/qvl/.
//
// Every call that computes (load, image decode, processing, prefill, decode, engine waits) runs
// with the GIL released. Long calls (append_inputs, set_inputs, append_tokens, engine waits)
// reacquire it between units of work to run Python's signal handlers, so Ctrl-C stops them within
// a step: the handler's exception (KeyboardInterrupt) is what the call raises.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "qvl/engine.hpp"
#include "qvl/error.hpp"
#include "qvl/image.hpp"
#include "qvl/qvl.hpp"

namespace py = pybind11;
using namespace pybind11::literals;

namespace qvl {
namespace {

// ---- errors ------------------------------------------------------------------------------------

constexpr int kKinds = 9;  // ErrorKind values are 1..8; slot 0 is the base class
PyObject* g_error_classes[kKinds] = {};

void make_error_classes(py::module_& m) {
  struct Spec {
    ErrorKind kind;
    const char* name;
    PyObject* extra_base;
    const char* doc;
  };
  PyObject* base = PyErr_NewExceptionWithDoc("qvl.Error", "Any failure qvl reports; `kind` names its class.",
                                             PyExc_RuntimeError, nullptr);
  PyObject_SetAttrString(base, "kind", py::str("error").ptr());
  g_error_classes[0] = base;
  m.attr("Error") = py::handle(base);
  const Spec specs[] = {
      {ErrorKind::kInvalidArgument, "InvalidArgumentError", PyExc_ValueError,
       "The caller passed something unusable (empty messages, a bad parameter value)."},
      {ErrorKind::kInvalidFile, "InvalidFileError", nullptr,
       "A file or buffer exists but is malformed (corrupt image, bad JSON, truncated weights)."},
      {ErrorKind::kNotFound, "NotFoundError", PyExc_FileNotFoundError,
       "A file, tensor or token that must exist does not."},
      {ErrorKind::kUnsupported, "UnsupportedError", nullptr, "Valid input that qvl does not handle (yet)."},
      {ErrorKind::kLimitExceeded, "LimitExceededError", nullptr,
       "Input exceeds a configured limit (pixels, context length, bytes)."},
      {ErrorKind::kIo, "IoError", PyExc_OSError, "The operating system failed (open, mmap, read)."},
      {ErrorKind::kInternal, "InternalError", nullptr, "A bug in qvl."},
      {ErrorKind::kCancelled, "CancelledError", nullptr, "The work was cancelled."},
  };
  for (const Spec& s : specs) {
    py::tuple bases = s.extra_base ? py::make_tuple(py::handle(base), py::handle(s.extra_base))
                                   : py::make_tuple(py::handle(base));
    const std::string full = std::string("qvl.") + s.name;
    PyObject* cls = PyErr_NewExceptionWithDoc(full.c_str(), s.doc, bases.ptr(), nullptr);
    if (!cls) throw py::error_already_set();
    PyObject_SetAttrString(cls, "kind", py::str(error_kind_name(s.kind)).ptr());
    g_error_classes[static_cast<int>(s.kind)] = cls;
    m.attr(s.name) = py::handle(cls);
  }
}

void set_python_error(const Error& e) {
  const int k = static_cast<int>(e.kind());
  PyObject* cls = k > 0 && k < kKinds && g_error_classes[k] ? g_error_classes[k] : g_error_classes[0];
  PyErr_SetString(cls, e.what());
}

[[noreturn]] void invalid(const std::string& message) { throw Error(ErrorKind::kInvalidArgument, message); }

// ---- Ctrl-C --------------------------------------------------------------------------------------

// Runs `fn` without the GIL; `set_callback(cb)` installs a progress callback that reacquires the
// GIL between units of work and runs Python's signal handlers. When a handler raises (Ctrl-C's
// KeyboardInterrupt), the callback cancels the call and that exception is raised instead of
// qvl's kCancelled.
template <typename SetCallback, typename Fn>
void run_interruptible(SetCallback set_callback, Fn fn) {
  PyObject *type = nullptr, *value = nullptr, *trace = nullptr;
  set_callback([&](const Progress&) {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() == 0) return true;
    PyErr_Fetch(&type, &value, &trace);
    return false;
  });
  try {
    py::gil_scoped_release release;
    fn();
  } catch (const Error&) {
    set_callback(nullptr);
    if (!type) throw;
  } catch (...) {
    set_callback(nullptr);
    throw;
  }
  set_callback(nullptr);
  if (type) {
    PyErr_Restore(type, value, trace);
    throw py::error_already_set();
  }
}

// ---- images --------------------------------------------------------------------------------------

// An HxWx3 uint8 array (numpy) or a flat RGB buffer of width*height*3 bytes (PIL's tobytes()).
Image image_from_rgb(const py::buffer& data, int width, int height) {
  py::buffer_info b = data.request();
  if (b.itemsize != 1 || (b.format != "B" && b.format != "b" && b.format != "c"))
    invalid("image pixels must be uint8 (got buffer format '" + b.format + "')");
  if (b.ndim == 3) {
    if (b.shape[2] != 3)
      invalid("an image array must be HxWx3 (RGB); got a last dimension of " + std::to_string(b.shape[2]));
    if (b.strides[2] != 1 || b.strides[1] != 3 || b.strides[0] != 3 * b.shape[1])
      invalid("an image array must be C-contiguous (numpy.ascontiguousarray)");
    height = static_cast<int>(b.shape[0]);
    width = static_cast<int>(b.shape[1]);
  } else if (b.ndim == 1) {
    if (width <= 0 || height <= 0) invalid("a flat RGB buffer needs width and height");
    if (b.shape[0] != int64_t{width} * height * 3)
      invalid("a " + std::to_string(width) + "x" + std::to_string(height) + " RGB buffer holds " +
              std::to_string(int64_t{width} * height * 3) + " bytes; got " + std::to_string(b.shape[0]));
  } else {
    invalid("an image array must be HxWx3 uint8; got " + std::to_string(b.ndim) + " dimensions");
  }
  if (width <= 0 || height <= 0) invalid("an image must have at least one pixel");
  Image img;
  img.width = width;
  img.height = height;
  const auto* p = static_cast<const uint8_t*>(b.ptr);
  py::gil_scoped_release release;
  img.rgb.assign(p, p + size_t(width) * height * 3);
  return img;
}

py::dict info_dict(const ModelInfo& i) {
  return py::dict("model_type"_a = i.model_type, "vocab_size"_a = i.vocab_size, "hidden_size"_a = i.hidden_size,
                  "num_layers"_a = i.num_layers, "context_length"_a = i.context_length,
                  "max_context_length"_a = i.max_context_length, "has_vision"_a = i.has_vision,
                  "eos_token_ids"_a = i.eos_token_ids, "weight_bytes"_a = i.weight_bytes,
                  "decode_weight_bytes"_a = i.decode_weight_bytes, "kv_bytes_per_token"_a = i.kv_bytes_per_token,
                  "kv_cache_type"_a = i.kv_cache_type, "weights_type"_a = i.weights_type,
                  "vision_attention"_a = i.vision_attention, "threads"_a = i.threads,
                  "notes"_a = i.notes);
}

py::dict generator_stats_dict(const GeneratorStats& s) {
  return py::dict("prompt_tokens"_a = s.prompt_tokens, "evaluated_tokens"_a = s.evaluated_tokens,
                  "generated_tokens"_a = s.generated_tokens, "images"_a = s.images,
                  "vision_seconds"_a = s.vision_seconds, "prefill_seconds"_a = s.prefill_seconds,
                  "decode_seconds"_a = s.decode_seconds);
}

py::dict request_stats_dict(const RequestStats& s) {
  return py::dict("queue_seconds"_a = s.queue_seconds, "ttft_seconds"_a = s.ttft_seconds,
                  "total_seconds"_a = s.total_seconds, "prompt_tokens"_a = s.prompt_tokens,
                  "cached_tokens"_a = s.cached_tokens, "generated_tokens"_a = s.generated_tokens,
                  "images"_a = s.images, "cached_images"_a = s.cached_images, "vision_seconds"_a = s.vision_seconds);
}

// ---- engine requests -----------------------------------------------------------------------------

// Events of one engine request, filled on the engine's thread (no GIL there) and drained by the
// Python iterator.
struct RequestState {
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<RequestEvent> events;
};

class Request {
 public:
  Request(std::shared_ptr<Engine> engine, std::shared_ptr<RequestState> state, RequestId id)
      : engine_(std::move(engine)), state_(std::move(state)), id_(id) {}
  // A request dropped before it finished stops using the engine.
  ~Request() {
    if (!finished_) engine_->cancel(id_);
  }
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  RequestId id() const { return id_; }
  bool finished() const { return finished_; }
  const std::string& finish_reason() const { return finish_reason_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  const RequestStats& stats() const { return stats_; }
  bool context_full() const { return context_full_; }
  void cancel() { engine_->cancel(id_); }

  // The next non-empty piece of text; StopIteration after the finished event. Ctrl-C cancels the
  // request and raises KeyboardInterrupt.
  py::str next() {
    while (!finished_) {
      RequestEvent event;
      const bool got = wait_event(event);
      if (got) {
        if (event.token >= 0) tokens_.push_back(event.token);
        if (event.finished) {
          finished_ = true;
          finish_reason_ = event.finish_reason;
          context_full_ = event.context_full;
          stats_ = event.stats;
        }
      }
      if (PyErr_CheckSignals() != 0) {
        if (!finished_) engine_->cancel(id_);
        throw py::error_already_set();
      }
      if (!got) continue;
      if (event.finished && event.finish_reason == "error") {
        PyErr_SetString(g_error_classes[0], event.error.c_str());
        throw py::error_already_set();
      }
      if (!event.text.empty()) return py::str(event.text);
    }
    throw py::stop_iteration();
  }

 private:
  // Waits up to a short while for an event (the caller runs the signal handlers between waits).
  bool wait_event(RequestEvent& out) {
    bool got = false;
    {
      py::gil_scoped_release release;
      std::unique_lock lock(state_->mutex);
      got = state_->ready.wait_for(lock, std::chrono::milliseconds(50), [&] { return !state_->events.empty(); });
      if (got) {
        out = std::move(state_->events.front());
        state_->events.pop_front();
      }
    }
    return got;
  }

  std::shared_ptr<Engine> engine_;
  std::shared_ptr<RequestState> state_;
  RequestId id_;
  bool finished_ = false;
  bool context_full_ = false;
  std::string finish_reason_;
  std::vector<int32_t> tokens_;
  RequestStats stats_;
};

// Objects whose destructor joins threads or frees much memory let other Python threads run.
template <typename T>
void delete_without_gil(T* p) {
  if (PyGILState_Check()) {
    py::gil_scoped_release release;
    delete p;
  } else {
    delete p;
  }
}

}  // namespace
}  // namespace qvl

PYBIND11_MODULE(_qvl, m) {
  using namespace qvl;
  m.doc() = "qvl's C++ engine (thin bindings; use the `qvl` package).";
  make_error_classes(m);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      set_python_error(e);
    }
  });

  // ---- Image ----
  py::class_<Image>(m, "Image", "Decoded 8-bit RGB pixels (HWC).")
      .def_readonly("width", &Image::width)
      .def_readonly("height", &Image::height)
      .def_property_readonly("rgb", [](const Image& i) {
        return py::bytes(reinterpret_cast<const char*>(i.rgb.data()), i.rgb.size());
      }, "The pixels as bytes, row by row, 3 per pixel.")
      .def_static("decode", [](const py::bytes& data) {
        std::string_view v = data;  // the bytes object stays alive (and immutable) during the call
        py::gil_scoped_release release;
        return decode_image(reinterpret_cast<const uint8_t*>(v.data()), v.size());
      }, "data"_a, "Decodes an encoded image file (JPEG, PNG, WebP, BMP, GIF).")
      .def_static("load", [](const std::string& path) {
        py::gil_scoped_release release;
        return load_image_file(path);
      }, "path"_a, "Loads and decodes an image file.")
      .def_static("from_rgb", &image_from_rgb, "data"_a, "width"_a = 0, "height"_a = 0,
                  "From an HxWx3 uint8 array, or a flat RGB buffer with width and height.")
      .def("__repr__", [](const Image& i) {
        return "<qvl.Image " + std::to_string(i.width) + "x" + std::to_string(i.height) + ">";
      });

  // ---- Model ----
  py::class_<Model, std::shared_ptr<Model>>(m, "Model")
      .def(py::init([](const std::string& path, const std::string& mmproj, int threads, const std::string& weights_type,
                       const std::string& kv_type, int64_t context, const std::string& head_weights_type,
                       const std::string& vision_weights_type, const std::string& vision_attention) {
             ModelOptions o;
             o.mmproj = mmproj;
             o.threads = threads;
             o.weights_type = weights_type;
             o.kv_cache_type = kv_type;
             o.context_length = context;
             o.head_weights_type = head_weights_type;
             o.vision_weights_type = vision_weights_type;
             o.vision_attention = vision_attention;
             py::gil_scoped_release release;
             return Model::load(path, o);
           }),
           "path"_a, "mmproj"_a = "", "threads"_a = 0, "weights_type"_a = "", "kv_type"_a = "", "context"_a = 0,
           "head_weights_type"_a = "", "vision_weights_type"_a = "", "vision_attention"_a = "")
      .def_property_readonly("dir", &Model::dir)
      .def("_info", [](const Model& model) { return info_dict(model.info()); });

  // ---- Tokenizer ----
  py::class_<TokenizerStream>(m, "TokenizerStream", "Incremental detokenizer (complete UTF-8 only).")
      .def("decode", &TokenizerStream::decode, "token"_a)
      .def("flush", &TokenizerStream::flush)
      .def_property_readonly("stopped", &TokenizerStream::stopped);

  py::class_<Tokenizer>(m, "Tokenizer")
      .def(py::init([](std::shared_ptr<Model> model) { return Tokenizer(std::move(model)); }), "model"_a)
      .def("encode", [](const Tokenizer& t, const std::string& text) {
        py::gil_scoped_release release;
        return t.encode(text);
      }, "text"_a, "Token ids of `text` (special tokens in it are matched).")
      .def("decode", [](const Tokenizer& t, const std::vector<int32_t>& ids, bool skip) {
        py::gil_scoped_release release;
        return t.decode(ids, skip);
      }, "ids"_a, "skip_special_tokens"_a = false, "The text of token ids.")
      .def("token_to_id", &Tokenizer::token_to_id, "token"_a, "A token's id, -1 if unknown.")
      .def("_apply_chat_template", &Tokenizer::apply_chat_template, "messages_json"_a, "add_generation_prompt"_a,
           "extra_json"_a, py::call_guard<py::gil_scoped_release>())
      .def("create_stream", [](const Tokenizer& t, const std::vector<std::string>& stop, bool skip) {
        return t.create_stream(stop, skip);
      }, "stop"_a = std::vector<std::string>{}, "skip_special_tokens"_a = true,
         "An incremental detokenizer; with stop strings it never returns one.");

  // ---- Processor ----
  py::class_<ProcessedInputs>(m, "ProcessedInputs", "Token ids and vision tensors for one prompt.")
      .def_readonly("prompt_text", &ProcessedInputs::prompt_text)
      .def_readonly("input_ids", &ProcessedInputs::input_ids)
      .def_readonly("image_grid_thw", &ProcessedInputs::image_grid_thw)
      .def_readonly("image_tokens", &ProcessedInputs::image_tokens)
      .def_readonly("video_grid_thw", &ProcessedInputs::video_grid_thw)
      .def_readonly("video_tokens", &ProcessedInputs::video_tokens)
      .def_readonly("warnings", &ProcessedInputs::warnings)
      .def_property_readonly("pixel_values", [](const ProcessedInputs& p) {
        return py::array_t<float>({p.pixel_rows, p.pixel_cols}, p.pixel_values.data());
      }, "A copy of the patch rows, float32 [rows, cols].")
      .def("__len__", [](const ProcessedInputs& p) { return p.input_ids.size(); });

  py::class_<Processor>(m, "Processor")
      .def(py::init([](std::shared_ptr<Model> model, std::optional<int64_t> min_pixels,
                       std::optional<int64_t> max_pixels) {
             ProcessorOptions o;
             o.min_pixels = min_pixels;
             o.max_pixels = max_pixels;
             return Processor(std::move(model), o);
           }),
           "model"_a, "min_pixels"_a = py::none(), "max_pixels"_a = py::none())
      .def("_process", &Processor::process, "messages_json"_a, "images"_a, "add_generation_prompt"_a, "base_dir"_a,
           "extra_json"_a, py::call_guard<py::gil_scoped_release>());

  // ---- Generator ----
  py::class_<GeneratorParams>(m, "GeneratorParams", "Sampling parameters (checked when a Generator uses them).")
      .def(py::init<>())
      .def_static("from_model", &GeneratorParams::from_model, "model"_a,
                  "Defaults from the checkpoint's generation_config.json.")
      .def_readwrite("max_new_tokens", &GeneratorParams::max_new_tokens)
      .def_readwrite("do_sample", &GeneratorParams::do_sample)
      .def_readwrite("temperature", &GeneratorParams::temperature)
      .def_readwrite("top_k", &GeneratorParams::top_k)
      .def_readwrite("top_p", &GeneratorParams::top_p)
      .def_readwrite("min_p", &GeneratorParams::min_p)
      .def_readwrite("repetition_penalty", &GeneratorParams::repetition_penalty)
      .def_readwrite("presence_penalty", &GeneratorParams::presence_penalty)
      .def_readwrite("frequency_penalty", &GeneratorParams::frequency_penalty)
      .def_readwrite("seed", &GeneratorParams::seed)
      .def_readwrite("stop", &GeneratorParams::stop)
      .def_readwrite("stop_at_eos", &GeneratorParams::stop_at_eos);

  py::class_<Generator, std::shared_ptr<Generator>>(m, "Generator", "One sequence with its own KV cache.")
      .def(py::init([](std::shared_ptr<Model> model, const GeneratorParams& params) {
             py::gil_scoped_release release;
             return std::shared_ptr<Generator>(new Generator(std::move(model), params), delete_without_gil<Generator>);
           }),
           "model"_a, "params"_a)
      .def("set_params", &Generator::set_params, "params"_a, "Replaces the sampling parameters (checked).")
      .def("append_tokens", [](Generator& g, const std::vector<int32_t>& ids) {
        run_interruptible([&](ProgressCallback cb) { g.set_progress_callback(std::move(cb)); },
                          [&] { g.append_tokens(ids); });
      }, "ids"_a, "Prefills text tokens (no image pads).")
      .def("append_inputs", [](Generator& g, const ProcessedInputs& inputs) {
        run_interruptible([&](ProgressCallback cb) { g.set_progress_callback(std::move(cb)); },
                          [&] { g.append_inputs(inputs); });
      }, "inputs"_a, "Encodes the images, then prefills the prompt.")
      .def("set_inputs", [](Generator& g, const ProcessedInputs& inputs) {
        run_interruptible([&](ProgressCallback cb) { g.set_progress_callback(std::move(cb)); },
                          [&] { g.set_inputs(inputs); });
      }, "inputs"_a, "Makes the sequence hold exactly `inputs`, evaluating only what the cache lacks.")
      .def("generate_next_token", &Generator::generate_next_token, py::call_guard<py::gil_scoped_release>(),
           "Chooses the next token (one decode step); read it with next_token().")
      .def("is_done", &Generator::is_done, "True once EOS, a stop string or the token limit was reached.")
      .def("next_token", &Generator::next_token, "The token chosen by the last step.")
      .def_property_readonly("sequence", &Generator::sequence)
      .def("rewind_to", &Generator::rewind_to, "length"_a, "Keeps the first `length` tokens.")
      .def_property_readonly("last_logits", [](const Generator& g) {
        const std::vector<float>& l = g.last_logits();
        return py::array_t<float>(static_cast<py::ssize_t>(l.size()), l.data());
      })
      .def_property_readonly("stats", [](const Generator& g) { return generator_stats_dict(g.stats()); })
      .def_property_readonly("stop_reason", &Generator::stop_reason)
      .def_property_readonly("context_full", &Generator::context_full);

  // ---- Engine ----
  py::class_<Request, std::shared_ptr<Request>>(m, "Request", "A request running in an Engine.")
      .def_property_readonly("id", &Request::id)
      .def_property_readonly("finished", &Request::finished)
      .def_property_readonly("finish_reason", &Request::finish_reason)
      .def_property_readonly("tokens", &Request::tokens)
      .def_property_readonly("context_full", &Request::context_full)
      .def_property_readonly("stats", [](const Request& r) { return request_stats_dict(r.stats()); })
      .def("cancel", &Request::cancel, "Stops the request by the engine's next step.")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", &Request::next);

  py::class_<Engine, std::shared_ptr<Engine>>(m, "Engine")
      .def(py::init([](std::shared_ptr<Model> model, int max_sequences, int64_t max_step_tokens,
                       int64_t kv_budget_tokens, int64_t vision_cache_bytes, int keep_finished) {
             EngineOptions o;
             o.max_sequences = max_sequences;
             o.max_step_tokens = max_step_tokens;
             o.kv_budget_tokens = kv_budget_tokens;
             o.vision_cache_bytes = vision_cache_bytes;
             o.keep_finished = keep_finished;
             py::gil_scoped_release release;
             return std::shared_ptr<Engine>(new Engine(std::move(model), o), delete_without_gil<Engine>);
           }),
           "model"_a, "max_sequences"_a = 8, "max_step_tokens"_a = 256, "kv_budget_tokens"_a = 0,
           "vision_cache_bytes"_a = int64_t{256} << 20, "keep_finished"_a = 4)
      .def("_submit", [](const std::shared_ptr<Engine>& engine, ProcessedInputs inputs, const GeneratorParams& params,
                         int top_logprobs) {
        auto state = std::make_shared<RequestState>();
        RequestOptions options;
        options.top_logprobs = top_logprobs;
        RequestId id;
        {
          py::gil_scoped_release release;
          id = engine->submit(std::move(inputs), params, [state](const RequestEvent& e) {
            {
              std::lock_guard lock(state->mutex);
              state->events.push_back(e);
            }
            state->ready.notify_one();
          }, options);
        }
        return std::make_shared<Request>(engine, state, id);
      }, "inputs"_a, "params"_a, "top_logprobs"_a = -1)
      .def("cancel", &Engine::cancel, "id"_a, "Cancels a request by id (by the next step).")
      .def("wait_idle", &Engine::wait_idle, py::call_guard<py::gil_scoped_release>(),
           "Blocks until every request submitted so far has finished.")
      .def_property_readonly("stats", [](const Engine& e) {
        const EngineStats s = e.stats();
        return py::dict("steps"_a = s.steps, "running"_a = s.running, "queued"_a = s.queued,
                        "kv_budget_tokens"_a = s.kv_budget_tokens, "kv_reserved_tokens"_a = s.kv_reserved_tokens,
                        "kv_bytes_per_token"_a = s.kv_bytes_per_token, "vision_cache_bytes"_a = s.vision_cache_bytes,
                        "last_step_seconds"_a = s.last_step_seconds);
      });
}
