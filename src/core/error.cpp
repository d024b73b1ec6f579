#include "qvl/error.hpp"

namespace qvl {

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument: return "invalid argument";
    case ErrorKind::kInvalidFile: return "invalid file";
    case ErrorKind::kNotFound: return "not found";
    case ErrorKind::kUnsupported: return "unsupported";
    case ErrorKind::kLimitExceeded: return "limit exceeded";
    case ErrorKind::kIo: return "i/o error";
    case ErrorKind::kInternal: return "internal error";
    case ErrorKind::kCancelled: return "cancelled";
  }
  return "unknown error";
}

}  // namespace qvl
