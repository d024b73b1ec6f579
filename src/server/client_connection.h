// Telling that an HTTP client has gone while its answer is still being generated. cpp-httplib
// 0.11 hands handlers neither the socket nor a "closed" check (and a write to a closed peer
// succeeds once), so the request's socket is found among the process's descriptors by its two
// addresses and polled for a hang-up. The socket stays open for as long as the handler runs.
#pragma once

#include <string>

namespace qvl::server {

class ClientConnection {
 public:
  // -1 when the socket cannot be found: closed() then always says false.
  ClientConnection(const std::string& local_addr, int local_port, const std::string& remote_addr, int remote_port);
  // True once the client has closed its end (or reset the connection).
  bool closed() const;

 private:
  int fd_ = -1;
};

}  // namespace qvl::server
