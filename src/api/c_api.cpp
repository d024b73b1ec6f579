// The C API: each function catches every exception at the boundary and turns it into a
// status code plus a thread-local message. The C++ API already reports every failure as a
// qvl::Error with a message meant for users; anything else is a bug, reported without the
// internals of whatever threw it.
#include "qvl/qvl.h"

#include <new>
#include <string>

#include "qvl/engine.hpp"
#include "qvl/qvl.hpp"

struct qvl_model {
  std::shared_ptr<qvl::Model> model;
};
struct qvl_inputs {
  qvl::ProcessedInputs inputs;
};
struct qvl_generator {
  std::unique_ptr<qvl::Generator> generator;
};
struct qvl_engine {
  std::unique_ptr<qvl::Engine> engine;
};
struct qvl_stream {
  qvl::TokenizerStream stream;
  std::string text;
};

namespace {

// Status codes are the ErrorKind values.
static_assert(static_cast<int>(qvl::ErrorKind::kInternal) == QVL_ERR_INTERNAL);
static_assert(static_cast<int>(qvl::ErrorKind::kCancelled) == QVL_ERR_CANCELLED);

thread_local std::string g_last_error;

template <typename Fn>
qvl_status guarded(Fn&& fn) {
  try {
    fn();
    g_last_error.clear();
    return QVL_OK;
  } catch (const qvl::Error& e) {
    g_last_error = e.what();
    return static_cast<qvl_status>(static_cast<int>(e.kind()));
  } catch (const std::bad_alloc&) {
    g_last_error = "out of memory";
    return QVL_ERR_LIMIT_EXCEEDED;
  } catch (...) {
    g_last_error = "internal error in qvl (an unexpected exception; please report it)";
    return QVL_ERR_INTERNAL;
  }
}

qvl_status null_argument(const char* name) {
  g_last_error = std::string("argument '") + name + "' is null";
  return QVL_ERR_INVALID_ARGUMENT;
}

qvl::GeneratorParams to_params(const qvl_generator_params& p) {
  qvl::GeneratorParams g;
  g.max_new_tokens = p.max_new_tokens;
  g.do_sample = p.do_sample != 0;
  g.temperature = p.temperature;
  g.top_k = p.top_k;
  g.top_p = p.top_p;
  g.min_p = p.min_p;
  g.repetition_penalty = p.repetition_penalty;
  g.presence_penalty = p.presence_penalty;
  g.frequency_penalty = p.frequency_penalty;
  g.seed = p.seed;
  return g;
}

}  // namespace

extern "C" {

const char* qvl_last_error(void) { return g_last_error.c_str(); }

qvl_status qvl_model_load(const char* dir, int threads, int64_t context_length, qvl_model** out) {
  if (!dir) return null_argument("dir");
  if (!out) return null_argument("out");
  *out = nullptr;
  return guarded([&] {
    qvl::ModelOptions o;
    o.threads = threads;
    o.context_length = context_length;
    *out = new qvl_model{qvl::Model::load(dir, o)};
  });
}

qvl_model_options qvl_model_options_default(void) { return qvl_model_options{}; }

qvl_status qvl_model_load_with_options(const char* dir, const qvl_model_options* options, qvl_model** out) {
  if (!dir) return null_argument("dir");
  if (!options) return null_argument("options");
  if (!out) return null_argument("out");
  *out = nullptr;
  return guarded([&] {
    auto text = [](const char* s) { return std::string(s ? s : ""); };
    qvl::ModelOptions o;
    o.threads = options->threads;
    o.context_length = options->context_length;
    o.weights_type = text(options->weights_type);
    o.head_weights_type = text(options->head_weights_type);
    o.vision_weights_type = text(options->vision_weights_type);
    o.kv_cache_type = text(options->kv_cache_type);
    o.vision_attention = text(options->vision_attention);
    *out = new qvl_model{qvl::Model::load(dir, o)};
  });
}

void qvl_model_free(qvl_model* model) { delete model; }

qvl_status qvl_generator_params_default(const qvl_model* model, qvl_generator_params* out) {
  if (!model) return null_argument("model");
  if (!out) return null_argument("out");
  return guarded([&] {
    qvl::GeneratorParams g = qvl::GeneratorParams::from_model(*model->model);
    *out = {g.max_new_tokens, g.do_sample ? 1 : 0, g.temperature, g.top_p, g.min_p, g.repetition_penalty,
            g.presence_penalty, g.frequency_penalty, g.top_k, g.seed};
  });
}

qvl_status qvl_inputs_from_prompt(const qvl_model* model, const char* text, const char* const* image_paths,
                                  size_t n_images, qvl_inputs** out) {
  if (!model) return null_argument("model");
  if (!text) return null_argument("text");
  if (!out) return null_argument("out");
  if (n_images > 0 && !image_paths) return null_argument("image_paths");
  *out = nullptr;
  return guarded([&] {
    std::vector<qvl::Image> images;
    for (size_t i = 0; i < n_images; ++i) {
      if (!image_paths[i]) throw qvl::Error(qvl::ErrorKind::kInvalidArgument, "image path is null");
      images.push_back(qvl::load_image_file(image_paths[i]));
    }
    qvl::Processor processor(model->model);
    *out = new qvl_inputs{processor.process_prompt(text, images)};
  });
}

qvl_status qvl_inputs_from_messages(const qvl_model* model, const char* messages_json, const char* base_dir,
                                    qvl_inputs** out) {
  if (!model) return null_argument("model");
  if (!messages_json) return null_argument("messages_json");
  if (!out) return null_argument("out");
  *out = nullptr;
  return guarded([&] {
    qvl::Processor processor(model->model);
    *out = new qvl_inputs{processor.process(messages_json, {}, true, base_dir ? base_dir : ".")};
  });
}

size_t qvl_inputs_token_count(const qvl_inputs* inputs) { return inputs ? inputs->inputs.input_ids.size() : 0; }
void qvl_inputs_free(qvl_inputs* inputs) { delete inputs; }

qvl_status qvl_generator_create(const qvl_model* model, const qvl_generator_params* params, qvl_generator** out) {
  if (!model) return null_argument("model");
  if (!out) return null_argument("out");
  *out = nullptr;
  return guarded([&] {
    qvl::GeneratorParams p = params ? to_params(*params) : qvl::GeneratorParams::from_model(*model->model);
    *out = new qvl_generator{std::make_unique<qvl::Generator>(model->model, p)};
  });
}

void qvl_generator_free(qvl_generator* generator) { delete generator; }

qvl_status qvl_generator_append_inputs(qvl_generator* generator, const qvl_inputs* inputs) {
  if (!generator) return null_argument("generator");
  if (!inputs) return null_argument("inputs");
  return guarded([&] { generator->generator->append_inputs(inputs->inputs); });
}

qvl_status qvl_generator_append_tokens(qvl_generator* generator, const int32_t* ids, size_t n) {
  if (!generator) return null_argument("generator");
  if (!ids && n > 0) return null_argument("ids");
  return guarded([&] { generator->generator->append_tokens(std::vector<int32_t>(ids, ids + n)); });
}

qvl_status qvl_generator_generate_next_token(qvl_generator* generator) {
  if (!generator) return null_argument("generator");
  return guarded([&] { generator->generator->generate_next_token(); });
}

int qvl_generator_is_done(const qvl_generator* generator) {
  return generator == nullptr || generator->generator->is_done();
}

int32_t qvl_generator_next_token(const qvl_generator* generator) {
  if (!generator) return -1;
  int32_t token = -1;
  if (guarded([&] { token = generator->generator->next_token(); }) != QVL_OK) return -1;
  return token;
}

const char* qvl_generator_stop_reason(const qvl_generator* generator) {
  if (!generator) return "";
  const std::string reason = generator->generator->stop_reason();
  for (const char* known : {"eos", "stop", "length"})
    if (reason == known) return known;
  return "";
}

int qvl_generator_context_full(const qvl_generator* generator) {
  return generator != nullptr && generator->generator->context_full();
}

qvl_status qvl_generator_set_progress(qvl_generator* generator, qvl_progress_fn fn, void* user_data) {
  if (!generator) return null_argument("generator");
  return guarded([&] {
    if (!fn) return generator->generator->set_progress_callback({});
    generator->generator->set_progress_callback([fn, user_data](const qvl::Progress& p) {
      return fn(p.stage == qvl::Progress::Stage::kImageEncode ? 0 : 1, p.done, p.total, user_data) != 0;
    });
  });
}

qvl_status qvl_stream_create(const qvl_model* model, qvl_stream** out) {
  if (!model) return null_argument("model");
  if (!out) return null_argument("out");
  *out = nullptr;
  return guarded([&] { *out = new qvl_stream{qvl::Tokenizer(model->model).create_stream(), {}}; });
}

const char* qvl_stream_decode(qvl_stream* stream, int32_t token) {
  if (!stream) return "";
  if (guarded([&] { stream->text = stream->stream.decode(token); }) != QVL_OK) stream->text.clear();
  return stream->text.c_str();
}

const char* qvl_stream_flush(qvl_stream* stream) {
  if (!stream) return "";
  if (guarded([&] { stream->text = stream->stream.flush(); }) != QVL_OK) stream->text.clear();
  return stream->text.c_str();
}

void qvl_stream_free(qvl_stream* stream) { delete stream; }


qvl_engine_options qvl_engine_options_default(void) {
  const qvl::EngineOptions d;
  return {d.max_sequences, d.max_step_tokens, d.kv_budget_tokens, d.vision_cache_bytes, d.keep_finished,
          d.background_thread ? 1 : 0};
}

qvl_status qvl_engine_create(const qvl_model* model, const qvl_engine_options* options, qvl_engine** out) {
  if (!model) return null_argument("model");
  if (!out) return null_argument("out");
  *out = nullptr;
  return guarded([&] {
    qvl::EngineOptions o;
    if (options) {
      o.max_sequences = options->max_sequences;
      o.max_step_tokens = options->max_step_tokens;
      o.kv_budget_tokens = options->kv_budget_tokens;
      o.vision_cache_bytes = options->vision_cache_bytes;
      o.keep_finished = options->keep_finished;
      o.background_thread = options->background_thread != 0;
    }
    *out = new qvl_engine{std::make_unique<qvl::Engine>(model->model, o)};
  });
}

void qvl_engine_free(qvl_engine* engine) { delete engine; }

qvl_status qvl_engine_submit(qvl_engine* engine, const qvl_inputs* inputs, const qvl_generator_params* params,
                             const char* const* stop, size_t n_stop, qvl_request_fn callback, void* user_data,
                             uint64_t* id_out) {
  if (!engine) return null_argument("engine");
  if (!inputs) return null_argument("inputs");
  if (n_stop > 0 && !stop) return null_argument("stop");
  return guarded([&] {
    qvl::GeneratorParams p = params ? to_params(*params) : qvl::GeneratorParams::from_model(*engine->engine->model());
    for (size_t i = 0; i < n_stop; ++i) {
      if (!stop[i]) throw qvl::Error(qvl::ErrorKind::kInvalidArgument, "stop string " + std::to_string(i) + " is null");
      p.stop.emplace_back(stop[i]);
    }
    qvl::RequestCallback cb;
    if (callback)
      cb = [callback, user_data](const qvl::RequestEvent& e) {
        const std::string text(e.text);  // NUL-terminated for C
        qvl_request_event c{};
        c.id = e.id;
        c.text = text.c_str();
        c.token = e.token;
        c.finished = e.finished ? 1 : 0;
        c.finish_reason = e.finish_reason.c_str();
        c.context_full = e.context_full ? 1 : 0;
        c.error = e.error.c_str();
        c.prompt_tokens = e.stats.prompt_tokens;
        c.cached_tokens = e.stats.cached_tokens;
        c.generated_tokens = e.stats.generated_tokens;
        c.images = e.stats.images;
        c.cached_images = e.stats.cached_images;
        c.queue_seconds = e.stats.queue_seconds;
        c.ttft_seconds = e.stats.ttft_seconds;
        c.total_seconds = e.stats.total_seconds;
        callback(&c, user_data);
      };
    const uint64_t id = engine->engine->submit(inputs->inputs, p, std::move(cb));
    if (id_out) *id_out = id;
  });
}

qvl_status qvl_engine_cancel(qvl_engine* engine, uint64_t id) {
  if (!engine) return null_argument("engine");
  return guarded([&] { engine->engine->cancel(id); });
}

qvl_status qvl_engine_step(qvl_engine* engine, int* did_work) {
  if (!engine) return null_argument("engine");
  return guarded([&] {
    const bool worked = engine->engine->step();
    if (did_work) *did_work = worked ? 1 : 0;
  });
}

qvl_status qvl_engine_wait_idle(qvl_engine* engine) {
  if (!engine) return null_argument("engine");
  return guarded([&] { engine->engine->wait_idle(); });
}

}  // extern "C"
