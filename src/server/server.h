// qvl serve: an OpenAI-compatible HTTP server over qvl::Engine. The socket listens first, the
// model loads behind it (/health says 503 "Loading model" until it is ready), and stop() drains:
// no new connections, in-flight requests get the grace period to finish, then are cancelled.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "server/server_options.h"

namespace qvl::server {

struct ServerState;  // server_state.h

class Server {
 public:
  explicit Server(const ServerOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket; returns the port (the OS's choice for port 0). Throws
  // qvl::Error when the address cannot be bound.
  int bind();
  // Loads the model on a background thread; `on_failure` gets the message if that fails.
  void start_loading(std::function<void(const std::string&)> on_failure = {});
  // Serves until stop(); returns when every connection has ended.
  void serve();
  // From any thread (a signal watcher, a test): graceful drain as described above. Called again
  // while draining, it cancels the requests in flight at once.
  void stop();
  bool ready() const;

 private:
  std::unique_ptr<ServerState> state_;
};

// The CLI's entry: binds, prints "qvl serve: listening on http://HOST:PORT" to stdout, loads,
// serves until SIGINT/SIGTERM, drains, and returns the exit status (0, or 1 when the model fails
// to load or the address cannot be bound).
int run_server(const ServerOptions& options);

}  // namespace qvl::server
