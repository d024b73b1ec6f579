// qvl error type: every failure the library reports to callers is a qvl::Error.
#pragma once

#include <stdexcept>
#include <string>

namespace qvl {

// Coarse class of an error, stable for programs (and the C API) to branch on.
enum class ErrorKind {
  kInvalidArgument = 1,  // caller passed something unusable (empty prompt, bad option)
  kInvalidFile = 2,      // a file exists but is malformed (corrupt header, bad JSON, truncated)
  kNotFound = 3,         // a file, tensor or token that must exist does not
  kUnsupported = 4,      // valid input that qvl does not handle (yet)
  kLimitExceeded = 5,    // input exceeds a configured resource limit (pixels, context, bytes)
  kIo = 6,               // the operating system failed us (open, mmap, read)
  kInternal = 7,         // a bug in qvl
  kCancelled = 8,        // the caller stopped the work (a progress callback returned false)
};

const char* error_kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace qvl
