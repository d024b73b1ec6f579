// Multi-head, non-causal attention over independent segments of one packed sequence
// (the "cu_seqlens" layout of variable-length attention): rows [cu[s], cu[s+1]) attend only to
// each other. Model-agnostic; it lives here until the kernels owner adopts it into src/kernels/.
// Built on kernels::attention (fp32: streaming online softmax, no [len x len] buffer) or
// kernels::attention_bf16 (bf16 products, fp32 softmax; each head's K/V packed once); parallel
// over (segment, head, query block).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/types.h"

namespace qvl {
class ThreadPool;
}

namespace qvl::kernels {

struct SegmentedAttentionShape {
  int64_t heads = 0, head_dim = 0;
  // Row strides (in floats); head h of row i is at row + h*head_dim.
  int64_t q_stride = 0, k_stride = 0, v_stride = 0, out_stride = 0;
  float scale = 1.0f;
  // kBF16 runs attention_bf16 (head_dim up to kMaxBf16AttentionHeadDim; larger heads run fp32).
  AttentionPrecision precision = AttentionPrecision::kF32;
  // bf16: K/V of as many (segment, head) pairs as fit in this many bytes are packed, then
  // attended, in turn (the default, 64 MB, holds all 16 heads of a 16384-patch image at
  // head_dim 64: one pass).
  int64_t pack_budget_bytes = int64_t{64} << 20;
};

// cu_seqlens: non-decreasing offsets, cu_seqlens.front() == 0, back() == total rows.
// packed: the bf16 mode's buffer for packed K/V (kept by the caller between calls; at most about
// s.pack_budget_bytes, or one head of the longest segment if that is more); null: a local one.
// Results are bit-identical for any thread count.
void segmented_attention(const float* q, const float* k, const float* v, float* out,
                         const std::vector<int64_t>& cu_seqlens, const SegmentedAttentionShape& s, ThreadPool* pool,
                         std::vector<uint16_t>* packed = nullptr);

}  // namespace qvl::kernels
