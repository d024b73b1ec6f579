// Resource accounting for one render. The interpreter and the builtins charge the same budget,
// so filters and methods that build strings or lists are bounded like the statements calling them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "jinja/limits.h"

namespace qvl::jinja {

class Budget {
 public:
  explicit Budget(const Limits& limits) : limits_(limits) {}

  const Limits& limits() const { return limits_; }
  // Evaluation steps plus bytes/items copied; fails (kLimitExceeded) past max_work.
  void charge(uint64_t units);
  // Fail (kLimitExceeded) before a string or list beyond its limit is built.
  void check_string_size(size_t bytes) const;
  void check_collection_size(size_t items) const;
  // One for-loop iteration, also charged as one step; fails past max_loop_iterations.
  void count_iteration();

 private:
  const Limits& limits_;
  uint64_t iterations_ = 0;
  uint64_t work_ = 0;
};

}  // namespace qvl::jinja
