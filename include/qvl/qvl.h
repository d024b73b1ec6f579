/* qvl C API: opaque handles over the C++ library, for other languages.
 * Every function returning qvl_status sets a thread-local message readable with
 * qvl_last_error() when it fails. Strings returned by qvl are owned by the handle they came
 * from and stay valid until the next call on that handle, unless noted otherwise. */
#ifndef QVL_H_
#define QVL_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum qvl_status {
  QVL_OK = 0,
  QVL_ERR_INVALID_ARGUMENT = 1,
  QVL_ERR_INVALID_FILE = 2,
  QVL_ERR_NOT_FOUND = 3,
  QVL_ERR_UNSUPPORTED = 4,
  QVL_ERR_LIMIT_EXCEEDED = 5,
  QVL_ERR_IO = 6,
  QVL_ERR_INTERNAL = 7,
  QVL_ERR_CANCELLED = 8, /* a progress callback returned 0; the generator is as before the call */
} qvl_status;

typedef struct qvl_model qvl_model;
typedef struct qvl_inputs qvl_inputs;
typedef struct qvl_generator qvl_generator;
typedef struct qvl_stream qvl_stream;

typedef struct qvl_generator_params {
  int64_t max_new_tokens;
  int do_sample;
  float temperature, top_p, min_p, repetition_penalty, presence_penalty, frequency_penalty;
  int64_t top_k;
  uint64_t seed;
} qvl_generator_params;

/* Message of the last failed call on this thread ("" if none). */
const char* qvl_last_error(void);

qvl_status qvl_model_load(const char* dir, int threads, int64_t context_length, qvl_model** out);

/* Load options (qvl::ModelOptions). NULL or "" strings keep the default: weights as stored,
 * q8_0 head when the layers are quantized, vision as stored, f16 KV cache. */
typedef struct qvl_model_options {
  int threads;                     /* 0 = every core */
  int64_t context_length;          /* 0 = min(config max, 32768) */
  const char* weights_type;        /* "q4_k", "q4_0", "q8_0" or "bf16" */
  const char* head_weights_type;   /* embed_tokens / lm_head, same names or "q6_k" */
  const char* vision_weights_type; /* "q8_0" or "bf16" */
  const char* kv_cache_type;       /* "f16", "f32" or "q8_0" */
  const char* vision_attention;    /* "bf16" or "f32" (NULL / "": bf16 with AVX512_BF16 or AVX2) */
} qvl_model_options;
/* Every field zero / NULL. */
qvl_model_options qvl_model_options_default(void);
qvl_status qvl_model_load_with_options(const char* dir, const qvl_model_options* options, qvl_model** out);
void qvl_model_free(qvl_model* model);

/* Defaults from the checkpoint's generation_config.json. */
qvl_status qvl_generator_params_default(const qvl_model* model, qvl_generator_params* out);

/* One user turn: `n_images` image files (placed before the text unless the text marks them
 * with "<image>"), then the text. */
qvl_status qvl_inputs_from_prompt(const qvl_model* model, const char* text, const char* const* image_paths,
                                  size_t n_images, qvl_inputs** out);
/* Chat messages as JSON (OpenAI/HF form); image and video items name files relative to base_dir
 * (video items: {"type": "video", "video": PATH}, with optional fps / max_frames / max_pixels). */
qvl_status qvl_inputs_from_messages(const qvl_model* model, const char* messages_json, const char* base_dir,
                                    qvl_inputs** out);
size_t qvl_inputs_token_count(const qvl_inputs* inputs);
void qvl_inputs_free(qvl_inputs* inputs);

qvl_status qvl_generator_create(const qvl_model* model, const qvl_generator_params* params, qvl_generator** out);
void qvl_generator_free(qvl_generator* generator);
qvl_status qvl_generator_append_inputs(qvl_generator* generator, const qvl_inputs* inputs);
qvl_status qvl_generator_append_tokens(qvl_generator* generator, const int32_t* ids, size_t n);
qvl_status qvl_generator_generate_next_token(qvl_generator* generator);
int qvl_generator_is_done(const qvl_generator* generator);
int32_t qvl_generator_next_token(const qvl_generator* generator);
/* Why generation stopped: "eos", "stop", "length" or "" (still going); a static string. */
const char* qvl_generator_stop_reason(const qvl_generator* generator);
/* 1 when generation stopped ("length") because the context is full, not at max_new_tokens. The
 * last token (qvl_generator_next_token) is still valid then. */
int qvl_generator_context_full(const qvl_generator* generator);

/* Progress of long work in qvl_generator_append_inputs / _append_tokens: stage 0 = vision-tower
 * blocks while encoding images, 1 = prompt tokens while prefilling. Return 0 to cancel: the call
 * then fails with QVL_ERR_CANCELLED and leaves the generator as it was. NULL removes it. */
typedef int (*qvl_progress_fn)(int stage, int64_t done, int64_t total, void* user_data);
qvl_status qvl_generator_set_progress(qvl_generator* generator, qvl_progress_fn fn, void* user_data);

/* Streaming detokenizer: returns the newly completed UTF-8 text for a token (may be ""). */
qvl_status qvl_stream_create(const qvl_model* model, qvl_stream** out);
const char* qvl_stream_decode(qvl_stream* stream, int32_t token);
const char* qvl_stream_flush(qvl_stream* stream);
void qvl_stream_free(qvl_stream* stream);

/* ---- Engine: many sequences decoded together (continuous batching; qvl::Engine) ---- */
typedef struct qvl_engine qvl_engine;
typedef struct qvl_engine_options {
  int max_sequences;           /* sequences decoded together (8) */
  int64_t max_step_tokens;     /* rows per step: decode rows + prefill chunks (256) */
  int64_t kv_budget_tokens;    /* KV positions shared by all sequences; 0 = max_sequences x context */
  int64_t vision_cache_bytes;  /* encoded images kept for reuse (256 MiB) */
  int keep_finished;           /* finished sequences kept for prefix reuse (4) */
  int background_thread;       /* 1: the engine's own thread runs the steps; 0: call qvl_engine_step */
} qvl_engine_options;
qvl_engine_options qvl_engine_options_default(void);

/* What the engine reports for a request, on the engine's thread: text pieces as they are
 * generated (never a stop string), then one event with finished = 1. Pointers are valid during
 * the callback only. */
typedef struct qvl_request_event {
  uint64_t id;
  const char* text; /* NUL-terminated new text, may be "" */
  int32_t token;    /* the token this event follows, -1 for none */
  int finished;
  const char* finish_reason; /* with finished: "stop", "eos", "length", "cancelled" or "error" */
  int context_full;
  const char* error; /* with finish_reason "error" */
  int64_t prompt_tokens, cached_tokens, generated_tokens, images, cached_images;
  double queue_seconds, ttft_seconds, total_seconds;
} qvl_request_event;
typedef void (*qvl_request_fn)(const qvl_request_event* event, void* user_data);

qvl_status qvl_engine_create(const qvl_model* model, const qvl_engine_options* options, qvl_engine** out);
/* Cancels what is left (each request still gets its finished event) and frees the engine. */
void qvl_engine_free(qvl_engine* engine);
/* params NULL: generation_config.json defaults; stop: n_stop stop strings (may be NULL). */
qvl_status qvl_engine_submit(qvl_engine* engine, const qvl_inputs* inputs, const qvl_generator_params* params,
                             const char* const* stop, size_t n_stop, qvl_request_fn callback, void* user_data,
                             uint64_t* id_out);
qvl_status qvl_engine_cancel(qvl_engine* engine, uint64_t id);
/* Without a background thread: one step; *did_work = 0 when there was nothing to do. */
qvl_status qvl_engine_step(qvl_engine* engine, int* did_work);
/* Until every submitted request has finished. */
qvl_status qvl_engine_wait_idle(qvl_engine* engine);

#ifdef __cplusplus
}
#endif

#endif /* QVL_H_ */
