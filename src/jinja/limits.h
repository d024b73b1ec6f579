// Resource limits for parsing and rendering chat templates.
//
// Templates and messages come from outside (a downloaded checkpoint, an API request), so every
// way a template can consume time or memory is bounded and fails with qvl::Error
// (kLimitExceeded) instead of hanging or exhausting memory. The defaults are far above what
// real chat templates need (they nest ~10 deep and loop once over the messages).
#pragma once

#include <cstddef>
#include <cstdint>

namespace qvl::jinja {

struct Limits {
  size_t max_output_bytes = size_t(32) << 20;  // rendered text, and any one string built on the way
  uint64_t max_loop_iterations = 1'000'000;    // all for-loop iterations of one render together
  uint64_t max_work = 200'000'000;             // evaluation steps plus bytes/items copied, per render
  int max_parse_depth = 128;                   // nesting of blocks and expressions in the source
  int max_call_depth = 512;                    // runtime recursion: statements, expressions, macro calls
  int64_t max_range = 100'000;                 // range() length (jinja2's sandbox uses the same bound)
  size_t max_collection_items = 1'000'000;     // items in any one list or dict built while rendering
};

}  // namespace qvl::jinja
