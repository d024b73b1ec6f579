// Errors a request gets back, in OpenAI's shape: {"error":{"message","type","param","code"}}.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "qvl/error.hpp"

namespace qvl::server {

// Thrown by request handling; the HTTP layer turns it into the status and the error object.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message, std::string param = {}, std::string code = {});
  int status() const { return status_; }
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }
  const char* type() const;  // "invalid_request_error", "authentication_error", ...

 private:
  int status_;
  std::string param_, code_;
};

// A 400 naming the request field at fault (`param`, e.g. "messages[2].role").
[[noreturn]] void bad_request(const std::string& param, const std::string& message);

// The HTTP status a library error about a request's content maps to (4xx for what the client
// sent, 500 for kInternal/kIo).
int status_for(ErrorKind kind);

// The JSON error object for a status and message.
nlohmann::json error_body(int status, const std::string& message, const std::string& param = {},
                          const std::string& code = {});
nlohmann::json error_body(const ApiError& error);

}  // namespace qvl::server
