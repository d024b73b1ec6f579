// Qwen3 self-attention: q/k/v projections, per-head RMSNorm of q and k, rotary, grouped-query
// causal attention over the KV cache, output projection.
#pragma once

#include "core/thread_pool.h"
#include "model/text/kv_cache.h"
#include "model/text/text_rotary.h"
#include "model/text/text_weights.h"

namespace qvl {

// x: [n, hidden] (already normed); new tokens occupy cache positions start..start+n-1.
// out: [n, hidden]. scratch must hold n * (q_dim + 2 * kv_dim + q_dim) floats.
void text_attention_forward(const TextAttentionWeights& w, const TextConfig& c, const TextRotary& rotary,
                            const float* x, int64_t n, const Position3* positions, KvCache& cache,
                            int64_t layer, int64_t start, float* out, float* scratch, ThreadPool* pool);

}  // namespace qvl
