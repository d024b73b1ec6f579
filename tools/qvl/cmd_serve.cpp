// qvl serve: the OpenAI-compatible HTTP server (src/server/). This file only maps flags to
// ServerOptions; values are checked by options.cpp's helpers like every other subcommand's.
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>

#include "commands.h"
#include "options.h"
#include "server/server.h"

namespace qvl::cli {

namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();

struct ServeArgs {
  server::ServerOptions server;
  std::string api_key_file;
  int64_t port = 8080, slots = 4, queue = -1, max_body_mb = 32, max_image_mb = 20;
  int64_t timeout_s = 600, grace_s = 10, load_delay_ms = 0;
  bool no_webui = false, no_remote_media = false;
};

std::string read_key_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) usage_error("--api-key-file: cannot open '" + path + "'");
  std::stringstream text;
  text << in.rdbuf();
  std::string key = text.str();
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' ')) key.pop_back();
  if (key.empty()) usage_error("--api-key-file: '" + path + "' holds no key");
  return key;
}

int serve(ServeArgs& a) {
  server::ServerOptions& o = a.server;
  o.port = static_cast<int>(a.port);
  o.slots = static_cast<int>(a.slots);
  o.queue = static_cast<int>(a.queue);
  o.max_body_bytes = a.max_body_mb << 20;
  o.max_image_bytes = a.max_image_mb << 20;
  o.request_timeout_seconds = static_cast<double>(a.timeout_s);
  o.grace_seconds = static_cast<double>(a.grace_s);
  o.test_load_delay_ms = static_cast<int>(a.load_delay_ms);
  o.webui = !a.no_webui;
  o.remote_media = !a.no_remote_media;
  if (!a.api_key_file.empty()) o.api_key = read_key_file(a.api_key_file);
  return server::run_server(o);
}

}  // namespace

Runner add_serve_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server with a chat page (continuous batching)");
  auto a = std::make_shared<ServeArgs>();
  server::ServerOptions& o = a->server;
  cmd->add_option("-m,--model", o.model_path, "Checkpoint folder (Hugging Face layout), qvl GGUF file, or llama.cpp GGUF (--mmproj for its projector)")
      ->required()
      ->type_name("PATH");
  cmd->add_option("--host", o.host, "Address to listen on (default 127.0.0.1: this machine only)");
  add_integer_option(*cmd, "--port", a->port, {0, 65535, "a port number from 0 to 65535"},
                     "Port (default 8080; 0: the system picks a free one, shown in the 'listening on' line)");
  add_integer_option(*cmd, "--parallel", a->slots, {1, 256, "a slot count from 1 to 256"},
                     "Slots: requests decoded together (-np; default 4)");
  add_integer_option(*cmd, "--queue", a->queue, {-1, 65536, "a request count from 0 to 65536, or -1 for 4 x slots"},
                     "Requests that may wait for a slot; more get 503 + Retry-After (default -1: 4 x slots)");
  add_max_tokens_option(*cmd, o.default_max_tokens);
  auto* key = cmd->add_option("--api-key", o.api_key, "Require 'Authorization: Bearer KEY' (every route but /health and /)");
  cmd->add_option("--api-key-file", a->api_key_file, "Read the API key from this file")->type_name("PATH")->excludes(key);
  cmd->add_option("--media-path", o.media_path, "Folder that file:// image URLs may read from (default: file:// refused)")
      ->type_name("DIR");
  cmd->add_flag("--no-remote-media", a->no_remote_media, "Refuse http(s):// image URLs");
  cmd->add_option("--alias", o.alias, "Model id reported by /v1/models (default: the model's folder or file name)");
  add_integer_option(*cmd, "--max-body-mb", a->max_body_mb, {1, 4096, "a size in MiB from 1 to 4096"},
                     "Largest request body in MiB; larger ones get 413 (default 32)");
  add_integer_option(*cmd, "--max-image-mb", a->max_image_mb, {1, 1024, "a size in MiB from 1 to 1024"},
                     "Largest encoded image in MiB (data URL, file or download; default 20)");
  add_integer_option(*cmd, "--timeout", a->timeout_s, {1, kMaxInt, "a positive number of seconds"},
                     "Per-request time limit in seconds; a request still running is cancelled (default 600)");
  add_integer_option(*cmd, "--grace", a->grace_s, {0, 3600, "a number of seconds from 0 to 3600"},
                     "On SIGINT/SIGTERM: seconds in-flight requests get to finish before they are cancelled (default 10)");
  cmd->add_option("--cors", o.cors_origin, "Send CORS headers allowing this origin (default: none)")->type_name("ORIGIN");
  cmd->add_flag("--no-webui", a->no_webui, "Do not serve the chat page at /");
  cmd->add_flag("--log-prompts", o.log_prompts, "Log each request's prompt text (default: counts only)");
  add_model_options(*cmd, o.model);
  add_image_options(*cmd, o.images);
  // Test-only hooks (hidden from --help): see ServerOptions.
  add_integer_option(*cmd, "--test-load-delay-ms", a->load_delay_ms, {0, 600000, "milliseconds from 0 to 600000"},
                     "")
      ->group("");
  cmd->add_option_function<std::string>("--test-reply", [a](const std::string& text) {
       a->server.test_reply = text;
       a->server.test_reply_set = true;
     }, "")
      ->group("");
  cmd->callback([a] { check_image_options(a->server.images); });
  return [a] { return serve(*a); };
}

}  // namespace qvl::cli
