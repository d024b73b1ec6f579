#include "jinja/budget.h"

#include "core/check.h"

namespace qvl::jinja {

void Budget::charge(uint64_t units) {
  work_ += units;
  if (work_ > limits_.max_work)
    fail(ErrorKind::kLimitExceeded, "rendering exceeded its budget of ", limits_.max_work,
         " evaluation steps (runaway template?)");
}

void Budget::check_string_size(size_t bytes) const {
  if (bytes > limits_.max_output_bytes)
    fail(ErrorKind::kLimitExceeded, "a string of ", bytes, " bytes exceeds the ", limits_.max_output_bytes,
         "-byte limit");
}

void Budget::check_collection_size(size_t items) const {
  if (items > limits_.max_collection_items)
    fail(ErrorKind::kLimitExceeded, "a list of ", items, " items exceeds the ", limits_.max_collection_items,
         "-item limit");
}

void Budget::count_iteration() {
  if (++iterations_ > limits_.max_loop_iterations)
    fail(ErrorKind::kLimitExceeded, "more than ", limits_.max_loop_iterations, " loop iterations (runaway loop?)");
  charge(1);
}

}  // namespace qvl::jinja
