// One vision transformer block (pre-norm): x += proj(attn(rope(qkv(norm1(x))))); x +=
// fc2(act(fc1(norm2(x)))). LayerNorms carry a bias; qkv is one fused [3D, D] matrix whose
// output row is [q | k | v], each split head-major; attention is bidirectional within each
// span of the packed sequence (one span per image frame).
#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "core/thread_pool.h"
#include "formats/model_config.h"
#include "kernels/kernels.h"
#include "model/vision/span_attention.h"
#include "model/vision/vision_internal.h"

namespace qvl::vision {

Activation parse_block_activation(const std::string& name) {
  return vision_activation(name) == VisionActivation::kGeluErf ? Activation::kGeluErf : Activation::kGeluTanh;
}

void apply_activation(Activation act, float* x, int64_t n) {
  if (act == Activation::kGeluTanh)
    kernels::gelu_tanh(x, n);
  else
    kernels::gelu_erf(x, n);
}

void parallel_rows(ThreadPool* pool, int64_t n, FunctionRef<void(int64_t, int64_t)> fn, int64_t grain) {
  if (n <= 0) return;
  if (pool == nullptr || pool->size() <= 1 || n <= grain) {
    fn(0, n);
    return;
  }
  pool->parallel_for(
      n, [&](int64_t b, int64_t e, int) { fn(b, e); }, grain);
}

void VisionBlockScratch::resize(int64_t patches, const VisionBlockDims& dims) {
  a.resize(static_cast<size_t>(patches * dims.hidden));
  big.resize(static_cast<size_t>(patches * std::max(3 * dims.hidden, dims.intermediate)));
}

namespace {

void layer_norm_rows(const float* x, const std::vector<float>& weight, const std::vector<float>& bias, int64_t rows,
                     int64_t n, float eps, float* out, ThreadPool* pool) {
  parallel_rows(
      pool, rows,
      [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
          kernels::layer_norm(x + r * n, weight.data(), bias.data(), n, eps, out + r * n);
      },
      16);
}

// Elementwise work split in cache-friendly chunks.
void parallel_elems(ThreadPool* pool, int64_t n, FunctionRef<void(int64_t, int64_t)> fn) {
  parallel_rows(pool, n, fn, 4096);
}

}  // namespace

void vision_block_forward(const VisionBlockWeights& w, const VisionBlockDims& dims, float* x, int64_t patches,
                          const std::vector<int64_t>& cu_seqlens, const VisionRotary& rot, VisionBlockScratch& scratch,
                          ThreadPool* pool) {
  const int64_t d = dims.hidden, s = patches;
  QVL_ASSERT(dims.heads * dims.head_dim == d);
  QVL_ASSERT(static_cast<int64_t>(scratch.a.size()) >= s * d);
  QVL_ASSERT(static_cast<int64_t>(scratch.big.size()) >= s * std::max(3 * d, dims.intermediate));
  float* a = scratch.a.data();
  float* big = scratch.big.data();

  // --- attention ---
  layer_norm_rows(x, w.norm1_weight, w.norm1_bias, s, d, dims.eps, a, pool);
  kernels::matmul(a, s, w.attn_qkv, w.attn_qkv_bias.data(), big, pool);  // big = [S, 3D]
  apply_vision_rotary(rot, big, s, 3 * d, 2 * dims.heads, pool);         // q and k heads are adjacent
  kernels::SegmentedAttentionShape shape;
  shape.heads = dims.heads;
  shape.head_dim = dims.head_dim;
  shape.q_stride = shape.k_stride = shape.v_stride = 3 * d;
  shape.out_stride = d;
  shape.scale = 1.0f / std::sqrt(static_cast<float>(dims.head_dim));
  shape.precision = dims.attention;
  kernels::segmented_attention(big, big + d, big + 2 * d, a, cu_seqlens, shape, pool, &scratch.packed_kv);  // a = [S, D]
  kernels::matmul(a, s, w.attn_proj, w.attn_proj_bias.data(), big, pool);               // big = [S, D]
  parallel_elems(pool, s * d, [&](int64_t b, int64_t e) { kernels::add(x + b, big + b, e - b); });

  // --- MLP ---
  layer_norm_rows(x, w.norm2_weight, w.norm2_bias, s, d, dims.eps, a, pool);
  kernels::matmul(a, s, w.mlp_fc1, w.mlp_fc1_bias.data(), big, pool);  // big = [S, I]
  parallel_elems(pool, s * dims.intermediate,
                 [&](int64_t b, int64_t e) { apply_activation(dims.act, big + b, e - b); });
  kernels::matmul(big, s, w.mlp_fc2, w.mlp_fc2_bias.data(), a, pool);  // a = [S, D]
  parallel_elems(pool, s * d, [&](int64_t b, int64_t e) { kernels::add(x + b, a + b, e - b); });
}

}  // namespace qvl::vision
