// Qwen3 self-attention: q/k/v projections, per-head RMSNorm of q and k, rotary, grouped-query
// causal attention over the KV cache, output projection.
#pragma once

#include <span>

#include "core/thread_pool.h"
#include "model/text/kv_cache.h"
#include "model/text/text_rotary.h"
#include "model/text/text_weights.h"

namespace qvl {

// The rows of one sequence inside a forward call: rows [first_row, first_row + rows) of the
// batch, at cache positions cache->size() .. cache->size() + rows - 1.
struct AttentionSegment {
  KvCache* cache = nullptr;
  int64_t first_row = 0, rows = 0;
};

// Floats of scratch text_attention_forward needs for n rows.
int64_t text_attention_scratch(const TextConfig& c, int64_t n);

// x: [n, hidden] (already normed), the rows of every segment; out: [n, hidden]. The projections
// run once over all n rows; each segment attends over its own cache, whose size is not advanced
// here. scratch: text_attention_scratch(c, n) floats.
void text_attention_forward(const TextAttentionWeights& w, const TextConfig& c, const TextRotary& rotary,
                            const float* x, int64_t n, const Position3* positions,
                            std::span<const AttentionSegment> segments, int64_t layer, float* out, float* scratch,
                            ThreadPool* pool);

}  // namespace qvl
