// Multi-head, non-causal attention over independent segments of one packed sequence
// (the "cu_seqlens" layout of variable-length attention): rows [cu[s], cu[s+1]) attend only to
// each other. Model-agnostic; it lives here until the kernels owner adopts it into src/kernels/.
// Built on kernels::attention (streaming online softmax, no [len x len] buffer); parallel over
// (segment, head, query block).
#pragma once

#include <cstdint>
#include <vector>

namespace qvl {
class ThreadPool;
}

namespace qvl::kernels {

struct SegmentedAttentionShape {
  int64_t heads = 0, head_dim = 0;
  // Row strides (in floats); head h of row i is at row + h*head_dim.
  int64_t q_stride = 0, k_stride = 0, v_stride = 0, out_stride = 0;
  float scale = 1.0f;
};

// cu_seqlens: non-decreasing offsets, cu_seqlens.front() == 0, back() == total rows.
void segmented_attention(const float* q, const float* k, const float* v, float* out,
                         const std::vector<int64_t>& cu_seqlens, const SegmentedAttentionShape& s, ThreadPool* pool);

}  // namespace qvl::kernels
