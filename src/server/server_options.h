// Everything `qvl serve` is started with (the CLI fills it; tests build it directly).
#pragma once

#include <cstdint>
#include <string>

#include "qvl/qvl.hpp"

namespace qvl::server {

struct ServerOptions {
  std::string model_path;
  ModelOptions model;
  ProcessorOptions images;        // server-wide min/max pixels (requests may override)
  std::string host = "127.0.0.1";
  int port = 8080;                // 0: the OS picks a free port
  int slots = 4;                  // -np: sequences decoded together
  int queue = -1;                 // requests waiting for a slot; -1: 4 × slots
  std::string api_key;            // empty: no authentication
  std::string media_path;         // folder file:// URLs may read from; empty: file:// refused
  std::string alias;              // the model id /v1/models reports; empty: the model's folder/file name
  int64_t max_body_bytes = int64_t{32} << 20;
  int64_t max_image_bytes = int64_t{20} << 20;
  bool webui = true;
  bool remote_media = true;
  std::string cors_origin;        // empty: no CORS headers
  bool log_prompts = false;
  double request_timeout_seconds = 600;  // per request, from arrival
  double grace_seconds = 10;      // on SIGINT/SIGTERM: in-flight requests get this long to finish
  int64_t default_max_tokens = -1;  // a request without max_tokens: -1 = until EOS or the context is full

  // Test-only hooks (hidden CLI flags): delay the model load so tests can see /health say
  // "Loading model"; replace every answer's text (the model still runs), so that tests can
  // drive tool-call parsing end to end with a model that never writes a call.
  int test_load_delay_ms = 0;
  std::string test_reply;
  bool test_reply_set = false;
};

}  // namespace qvl::server
