#include "server/api_error.h"

namespace qvl::server {

namespace {

const char* type_for(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 503: return "unavailable_error";
    case 504: return "timeout_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

}  // namespace

ApiError::ApiError(int status, const std::string& message, std::string param, std::string code)
    : std::runtime_error(message), status_(status), param_(std::move(param)), code_(std::move(code)) {}

const char* ApiError::type() const { return type_for(status_); }

void bad_request(const std::string& param, const std::string& message) { throw ApiError(400, message, param); }

int status_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInternal:
    case ErrorKind::kIo: return 500;
    case ErrorKind::kCancelled: return 499;
    default: return 400;
  }
}

nlohmann::json error_body(int status, const std::string& message, const std::string& param, const std::string& code) {
  using nlohmann::json;
  return {{"error",
           {{"message", message},
            {"type", type_for(status)},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", code.empty() ? json(status) : json(code)}}}};
}

nlohmann::json error_body(const ApiError& error) {
  return error_body(error.status(), error.what(), error.param(), error.code());
}

}  // namespace qvl::server
