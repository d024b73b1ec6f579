// The exception boundary: whatever goes wrong inside, callers see only qvl::Error. The public API
// wraps every entry point in it; lower layers (image files, golden dumps) use it for their own
// file and allocation work.
#pragma once

#include <string>
#include <string_view>

#include "qvl/error.hpp"

namespace qvl {

// Turns the exception being handled into a qvl::Error that says what failed in plain words:
// JSON errors → `json_kind` (kInvalidArgument for caller text, kInvalidFile for model files)
// without nlohmann's "[json.exception...]" prefix; filesystem errors → kIo with the OS reason and
// the path; std::bad_alloc → kLimitExceeded; anything else → kInternal. `operation` names the
// work ("loading the model in 'dir'") and starts each message. A qvl::Error passes unchanged.
[[noreturn]] void rethrow_as_error(std::string_view operation, ErrorKind json_kind);

// Runs `fn`, translating any exception as rethrow_as_error does.
template <class Fn>
decltype(auto) translate_exceptions(std::string_view operation, Fn&& fn,
                                    ErrorKind json_kind = ErrorKind::kInvalidArgument) {
  try {
    return fn();
  } catch (...) {
    rethrow_as_error(operation, json_kind);
  }
}

// Fails with kInvalidArgument "<what> is not valid UTF-8 (byte 0xFF at offset 3)" unless `text`
// is well-formed UTF-8.
void require_utf8(std::string_view text, std::string_view what);

}  // namespace qvl
