// The server's life cycle and what every request goes through before and after its handler:
// authentication, CORS, readiness, the body limit, errors in OpenAI's shape, one log line.
#include "server/server.h"

#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "server/api_error.h"
#include "server/server_state.h"

namespace qvl::server {

namespace {

using Clock = std::chrono::steady_clock;

thread_local RequestLogDetails log_details;
thread_local Clock::time_point request_start = Clock::now();

// Equal strings in time that depends only on the length of the expected one.
bool constant_time_equal(const std::string& given, const std::string& expected) {
  unsigned char difference = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i)
    difference |= static_cast<unsigned char>(expected[i] ^ (i < given.size() ? given[i] : 0));
  return difference == 0;
}

bool authorized(const httplib::Request& req, const std::string& key) {
  const std::string header = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  if (header.size() < prefix.size() || header.compare(0, prefix.size(), prefix) != 0) return false;
  return constant_time_equal(header.substr(prefix.size()), key);
}

bool is_known_route(const std::string& path) {
  static const char* routes[] = {"/",         "/health",     "/metrics",        "/v1/models", "/v1/chat/completions",
                                 "/v1/completions", "/tokenize", "/detokenize", "/apply-template"};
  for (const char* r : routes)
    if (path == r) return true;
  return false;
}

// Routes that need the model (503 while it loads).
bool needs_model(const std::string& path) {
  return path.rfind("/v1/", 0) == 0 || path == "/tokenize" || path == "/detokenize" || path == "/apply-template";
}

bool is_generation(const std::string& path) { return path == "/v1/chat/completions" || path == "/v1/completions"; }

std::string model_id_for(const ServerOptions& o) {
  if (!o.alias.empty()) return o.alias;
  std::filesystem::path p(o.model_path);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();  // "dir/" → "dir"
  return p.filename().string();
}

MediaOptions media_options(const ServerOptions& o) {
  MediaOptions m;
  if (!o.media_path.empty()) {
    std::error_code ec;
    const auto root = std::filesystem::canonical(o.media_path, ec);
    if (ec || !std::filesystem::is_directory(root, ec))
      throw Error(ErrorKind::kInvalidArgument, "--media-path '" + o.media_path + "' is not a folder");
    m.media_root = root.string();
  }
  m.allow_remote = o.remote_media;
  m.max_image_bytes = static_cast<size_t>(o.max_image_bytes);
  m.limits.max_file_bytes = static_cast<size_t>(o.max_image_bytes);
  return m;
}

void install_middleware(ServerState& st) {
  httplib::Server& http = st.http;
  const ServerOptions& o = st.options;
  http.set_payload_max_length(static_cast<size_t>(o.max_body_bytes));
  http.set_keep_alive_timeout(2);
  http.set_read_timeout(30);
  http.set_write_timeout(30);
  http.set_tcp_nodelay(true);
  // A worker per connection: every slot and queue place can hold a connection, with room left
  // for /health, /metrics and the refusals of a full queue.
  const size_t workers = static_cast<size_t>(o.slots + st.effective_queue() + 8);
  http.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };

  http.set_pre_routing_handler([&st](const httplib::Request& req, httplib::Response& res) {
    request_start = Clock::now();
    log_details = {};
    const ServerOptions& o = st.options;
    if (!o.cors_origin.empty()) {
      res.set_header("Access-Control-Allow-Origin", o.cors_origin);
      res.set_header("Vary", "Origin");
      if (req.method == "OPTIONS") {  // preflight: no credentials are sent with it
        res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
        res.set_header("Access-Control-Max-Age", "600");
        res.status = 204;
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    // The page at / holds no data and must load in a browser before the key is typed into it.
    const bool public_route = req.path == "/health" || (req.path == "/" && req.method == "GET");
    if (!o.api_key.empty() && !public_route && !authorized(req, o.api_key)) {
      res.set_header("WWW-Authenticate", "Bearer");
      send_error(res, ApiError(401, "missing or invalid API key: send 'Authorization: Bearer KEY'", "",
                               "invalid_api_key"));
      return httplib::Server::HandlerResponse::Handled;
    }
    if (needs_model(req.path) && !st.ready) {
      send_error(res, ApiError(503, "Loading model", "", "model_loading"));
      res.set_header("Retry-After", "1");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (is_generation(req.path) && st.draining) {
      send_error(res, ApiError(503, "the server is shutting down", "", "shutting_down"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const ApiError& e) {
      send_error(res, e);
    } catch (const Error& e) {
      send_error(res, ApiError(status_for(e.kind()), e.what()));
    } catch (const std::exception& e) {
      send_error(res, ApiError(500, std::string("internal error: ") + e.what()));
    } catch (...) {
      send_error(res, ApiError(500, "internal error"));
    }
  });

  // Statuses httplib sets itself (404, 413, 400 for a malformed request line) get a JSON body too.
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty() || res.is_chunked_content_provider_) return httplib::Server::HandlerResponse::Unhandled;
    std::string message;
    // cpp-httplib parses form-encoded bodies (curl -d's default type) and caps them at 8 KiB.
    const bool form = req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0;
    if (res.status == 413 && form)
      message = "the body is sent as application/x-www-form-urlencoded, which is limited to 8 KiB; send JSON with "
                "'Content-Type: application/json'";
    else if (res.status == 413) message = "the request body exceeds the server's limit (--max-body-mb)";
    else if (res.status == 404) message = "no route for " + req.method + " " + req.path;
    else message = "the request could not be handled (HTTP " + std::to_string(res.status) + ")";
    send_error(res, ApiError(res.status, message, "", res.status == 413 ? "request_too_large" : ""));
    return httplib::Server::HandlerResponse::Handled;
  }));

  http.set_logger([&st](const httplib::Request& req, const httplib::Response& res) {
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - request_start).count();
    const std::string endpoint = is_known_route(req.path) ? req.path : "other";
    st.metrics.count_request(endpoint, res.status);
    std::string line = req.method + " " + req.path + " " + std::to_string(res.status);
    const RequestLogDetails& d = log_details;
    if (d.prompt_tokens >= 0) line += " prompt=" + std::to_string(d.prompt_tokens);
    if (d.cached_tokens >= 0) line += " cached=" + std::to_string(d.cached_tokens);
    if (d.generated_tokens >= 0) line += " generated=" + std::to_string(d.generated_tokens);
    char timing[32];
    std::snprintf(timing, sizeof timing, " %.1f ms", ms);
    line += timing;
    if (!d.prompt.empty()) line += " prompt_text=" + nlohmann::json(d.prompt).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::fprintf(stderr, "%s\n", line.c_str());
    log_details = {};
  });
}

}  // namespace

RequestLogDetails& current_log_details() { return log_details; }

void send_error(httplib::Response& res, const ApiError& error) {
  res.status = error.status();
  res.set_content(error_body(error).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

ServerState::ServerState(const ServerOptions& o) : options(o), media(media_options(o)) {
  if (options.slots < 1) throw Error(ErrorKind::kInvalidArgument, "the server needs at least one slot");
  model_id = model_id_for(options);
}

Server::Server(const ServerOptions& options) : state_(std::make_unique<ServerState>(options)) {
  install_middleware(*state_);
  add_info_routes(*state_);
  add_generation_routes(*state_);
}

Server::~Server() {
  stop();
  ServerState& st = *state_;
  if (st.loader.joinable()) st.loader.join();
  {
    std::lock_guard<std::mutex> lock(st.stop_mutex);
    st.serve_returned = true;
  }
  st.stopped.notify_all();
  if (st.drain_watchdog.joinable()) st.drain_watchdog.join();
}

int Server::bind() {
  ServerState& st = *state_;
  const ServerOptions& o = st.options;
  const int port = o.port == 0 ? st.http.bind_to_any_port(o.host) : (st.http.bind_to_port(o.host, o.port) ? o.port : -1);
  if (port <= 0)
    throw Error(ErrorKind::kIo, "cannot listen on " + o.host + ":" + std::to_string(o.port) +
                                    " (address in use, or not an address of this machine)");
  return port;
}

void Server::start_loading(std::function<void(const std::string&)> on_failure) {
  ServerState& st = *state_;
  st.loader = std::thread([&st, on_failure] {
    try {
      if (st.options.test_load_delay_ms > 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(st.options.test_load_delay_ms));
      auto model = Model::load(st.options.model_path, st.options.model);
      st.tokenizer = std::make_unique<Tokenizer>(model);
      st.slots = std::make_unique<Slots>(model, st.options.slots, st.effective_queue(), st.metrics);
      st.model = std::move(model);
      st.ready = true;
    } catch (const std::exception& e) {
      if (on_failure) on_failure(e.what());
    }
  });
}

void Server::serve() { state_->http.listen_after_bind(); }

bool Server::ready() const { return state_->ready; }

void Server::stop() {
  ServerState& st = *state_;
  if (st.draining.exchange(true)) {  // asked again (a second Ctrl-C): no more grace
    if (st.ready) st.slots->cancel_all();
    return;
  }
  // Requests still running when the grace period ends are cancelled (their streams end then).
  st.drain_watchdog = std::thread([&st] {
    std::unique_lock<std::mutex> lock(st.stop_mutex);
    const auto grace = std::chrono::duration<double>(st.options.grace_seconds);
    if (!st.stopped.wait_for(lock, grace, [&] { return st.serve_returned; }) && st.ready) st.slots->cancel_all();
  });
  // listen_after_bind may not have started yet (a signal right after bind): wait for it briefly.
  for (int i = 0; i < 200 && !st.http.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  st.http.stop();
}

int run_server(const ServerOptions& options) {
  // Signals are taken by one thread with sigwait; every other thread (created below) blocks them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not end the process

  Server server(options);
  const int port = server.bind();
  std::printf("qvl serve: listening on http://%s:%d\n", options.host.c_str(), port);
  std::fflush(stdout);

  std::atomic<bool> failed{false}, done{false};
  server.start_loading([&](const std::string& message) {
    std::fprintf(stderr, "qvl serve: cannot load the model: %s\n", message.c_str());
    failed = true;
    server.stop();
  });
  std::thread watcher([&] {
    bool stopping = false;
    const timespec tick{0, 100 * 1000 * 1000};
    while (!done) {
      const int sig = sigtimedwait(&signals, nullptr, &tick);
      if (sig == SIGINT || sig == SIGTERM) {
        if (!stopping)
          std::fprintf(stderr, "qvl serve: %s received; finishing the requests in flight (up to %.0f s; again: now)\n",
                       sig == SIGINT ? "SIGINT" : "SIGTERM", options.grace_seconds);
        else
          std::fprintf(stderr, "qvl serve: cancelling the requests in flight\n");
        stopping = true;
        server.stop();
      }
    }
  });
  server.serve();
  done = true;
  watcher.join();
  std::fprintf(stderr, "qvl serve: stopped\n");
  return failed ? 1 : 0;
}

}  // namespace qvl::server
