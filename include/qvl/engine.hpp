// qvl::Engine: many sequences decoded together, one pass over the weights per step
// (continuous batching). Requests are admitted and retired at any step; long prompts are
// prefilled in chunks beside the running sequences' decode rows so that those keep producing
// tokens; KV memory is one budget shared by all sequences; a prompt that begins with what
// another sequence (running or recently finished) already evaluated reuses those KV rows, and an
// image seen before is not encoded again.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "qvl/qvl.hpp"

namespace qvl {

struct EngineOptions {
  int max_sequences = 8;            // sequences decoded together
  int64_t max_step_tokens = 256;    // rows per step: one per decoding sequence, the rest prefill
  // KV positions shared by all sequences (each reserves prompt + max_new_tokens when admitted);
  // 0 = max_sequences × the model's context length.
  int64_t kv_budget_tokens = 0;
  int64_t vision_cache_bytes = int64_t{256} << 20;  // encoded images kept for reuse
  int keep_finished = 4;            // finished sequences kept (within the budget) for prefix reuse
  // true: a thread owned by the engine runs the steps; false: the caller calls step().
  bool background_thread = true;
};

using RequestId = uint64_t;

struct RequestStats {
  double queue_seconds = 0;     // submit → admitted
  double ttft_seconds = 0;      // submit → first token
  double total_seconds = 0;     // submit → finished
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;    // prompt tokens whose KV rows were reused, not evaluated
  int64_t generated_tokens = 0;
  int64_t images = 0;
  int64_t cached_images = 0;    // images taken from the vision cache, not encoded
  double vision_seconds = 0;    // spent in the vision tower on this request's images
};

// Per-request reporting options beside the sampling parameters.
struct RequestOptions {
  // >= 0: each token event carries the token's log-probability under the model (log-softmax of
  // the raw logits, before penalties and temperature) and the `top_logprobs` most likely tokens.
  // -1: none (no extra work per step).
  int top_logprobs = -1;
};

struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0;
};

// What the engine reports for a request, on the engine's thread, in order: pieces of text as
// they are generated (never a stop string, never half a UTF-8 character), then exactly one
// event with `finished` set.
struct RequestEvent {
  RequestId id = 0;
  std::string text;             // new text (may be empty)
  int32_t token = -1;           // the token this event follows, -1 for none
  // With RequestOptions::top_logprobs >= 0 and a token: its log-probability and the most likely
  // alternatives (highest first).
  float logprob = 0;
  std::vector<TokenLogprob> top_logprobs;
  bool finished = false;
  // With finished: "stop" (a stop string), "eos", "length" (max_new_tokens or a full
  // context: see context_full), "cancelled" or "error" (see error).
  std::string finish_reason;
  bool context_full = false;
  std::string error;
  RequestStats stats;           // filled in the finished event
};

using RequestCallback = std::function<void(const RequestEvent&)>;

struct EngineStats {
  int64_t steps = 0;
  int64_t running = 0, queued = 0;
  int64_t kv_budget_tokens = 0, kv_reserved_tokens = 0;  // reserved by running + kept sequences
  uint64_t kv_bytes_per_token = 0;
  int64_t vision_cache_bytes = 0;
  double last_step_seconds = 0;
};

class Engine {
 public:
  Engine(std::shared_ptr<const Model> model, const EngineOptions& options = {});
  ~Engine();  // cancels what is left and joins the thread
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request (from any thread). A request that can never fit (its prompt + max_new_tokens
  // exceeds the context or the whole KV budget, bad params, no vision tower for images) finishes
  // with "error" through the callback.
  RequestId submit(ProcessedInputs inputs, const GeneratorParams& params, RequestCallback callback,
                   const RequestOptions& options = {});
  // Takes effect by the next step: the request finishes with "cancelled" and its KV memory is
  // freed. Unknown or finished ids are ignored.
  void cancel(RequestId id);

  // One step: admits what fits, runs one batch, samples, reports. Returns false when there was
  // nothing to do. Only without a background thread.
  bool step();
  // Blocks until every request submitted so far has finished (either mode).
  void wait_idle();

  EngineStats stats() const;
  const std::shared_ptr<const Model>& model() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace qvl
