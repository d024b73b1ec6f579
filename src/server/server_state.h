// What the route handlers share: options, the loaded model, the slots, the metrics. Internal to
// src/server/.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "qvl/engine.hpp"
#include "server/chat_request.h"
#include "server/media.h"
#include "server/metrics.h"
#include "server/server_options.h"
#include "server/slots.h"

namespace qvl::server {

struct ServerState {
  explicit ServerState(const ServerOptions& o);

  ServerOptions options;
  RequestLimits limits;
  MediaOptions media;
  Metrics metrics;
  httplib::Server http;

  // Set once by the loading thread; read by handlers after `ready` is true.
  std::shared_ptr<const Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Slots> slots;
  std::string model_id;
  std::atomic<bool> ready{false};
  std::atomic<bool> draining{false};
  std::thread loader;

  std::mutex stop_mutex;
  std::thread drain_watchdog;
  std::condition_variable stopped;
  bool serve_returned = false;

  int effective_queue() const { return options.queue >= 0 ? options.queue : 4 * options.slots; }
};

// Route registration, one file per concern.
void add_generation_routes(ServerState& state);  // /v1/chat/completions, /v1/completions
void add_info_routes(ServerState& state);        // /health, /metrics, /v1/models, tokenize, templates, /

// The per-request log line's details that only a handler knows, for the logger running after it
// on the same thread.
struct RequestLogDetails {
  int64_t prompt_tokens = -1, generated_tokens = -1, cached_tokens = -1;
  std::string prompt;  // only with --log-prompts
};
RequestLogDetails& current_log_details();

// The JSON error response for `error`, with the status.
void send_error(httplib::Response& res, const ApiError& error);

}  // namespace qvl::server
