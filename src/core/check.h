// Error helpers: `fail(...)` for bad input at the boundary, QVL_ASSERT for internal invariants.
#pragma once

#include <sstream>
#include <string>
#include <utility>

#include "qvl/error.hpp"

namespace qvl {

// Concatenates any streamable values into one string (std::format is not in GCC 12).
template <typename... Args>
std::string cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

template <typename... Args>
[[noreturn]] void fail(ErrorKind kind, Args&&... args) {
  throw Error(kind, cat(std::forward<Args>(args)...));
}

}  // namespace qvl

#define QVL_ASSERT(cond)                                                                    \
  do {                                                                                      \
    if (!(cond))                                                                            \
      ::qvl::fail(::qvl::ErrorKind::kInternal, "internal error: ", #cond, " (", __FILE__, ":", \
                  __LINE__, ")");                                                           \
  } while (0)
