// The vision tower's components as plain functions over fp32 row buffers, one per source file
// (patch_embed.cpp, pos_embed_interp.cpp, rotary2d.cpp, vision_block.cpp, patch_merger.cpp).
// VisionEncoder wires them; tests may call them alone.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/function_ref.h"
#include "model/vision/vision_types.h"
#include "model/vision/vision_weights.h"

namespace qvl {
class ThreadPool;
}

namespace qvl::vision {

// Applies `act` to x[n] in place (the block MLP's activation).
void apply_activation(Activation act, float* x, int64_t n);

// Calls fn(begin, end) over [0, n) on the pool (inline when pool is null).
void parallel_rows(ThreadPool* pool, int64_t n, FunctionRef<void(int64_t, int64_t)> fn, int64_t grain = 1);

// ---- patch_embed.cpp ----
// out[rows, D] = pixels[rows, C*T*P*P] · projᵀ + bias (Conv3d with stride == kernel).
void patch_embed(const VisionPatchEmbedWeights& w, const float* pixels, int64_t rows, float* out, ThreadPool* pool);

// ---- pos_embed_interp.cpp ----
// x[S, D] += the learned side x side position table bilinearly resampled to each grid's h x w
// (as HF fast_pos_embed_interpolate), repeated over t and laid out in merge-block row order.
void add_interpolated_pos_embed(const kernels::WeightMatrix& table, const std::vector<GridTHW>& grids, int64_t merge,
                                float* x, ThreadPool* pool);

// ---- rotary2d.cpp ----
// Per patch (merge-block order) cos/sin of the 2-D rotary angles: half = head_dim/2 values,
// the first head_dim/4 from the patch row, the next head_dim/4 from the patch column. The
// full head_dim embedding is this duplicated, so rotate_half pairs (i, i+half) share angle i.
struct VisionRotary {
  int64_t half = 0;
  std::vector<float> cos, sin;  // [S, half]
};
VisionRotary build_vision_rotary(const std::vector<GridTHW>& grids, int64_t merge, int64_t head_dim, double theta);
// Rotates every head of x[rows] (row stride `stride`, heads of head_dim at column offsets
// h*head_dim) in place.
void apply_vision_rotary(const VisionRotary& rot, float* x, int64_t rows, int64_t stride, int64_t heads,
                         ThreadPool* pool);

// ---- vision_block.cpp ----
struct VisionBlockDims {
  int64_t hidden = 0, heads = 0, head_dim = 0, intermediate = 0;
  float eps = 1e-6f;
  Activation act = Activation::kGeluTanh;
  kernels::AttentionPrecision attention = kernels::AttentionPrecision::kF32;
};
// Reusable per-call buffers; sized by VisionBlockScratch::resize for S patches.
struct VisionBlockScratch {
  std::vector<float> a;    // [S, D]
  std::vector<float> big;  // [S, max(3D, I)]
  std::vector<uint16_t> packed_kv;  // bf16 attention: packed K/V (kernels::segmented_attention)
  void resize(int64_t patches, const VisionBlockDims& dims);
};
// x[S, D] += attn(norm1(x)); x += mlp(norm2(x)). Attention is bidirectional within each span
// [cu_seqlens[i], cu_seqlens[i+1]) and never crosses spans.
void vision_block_forward(const VisionBlockWeights& w, const VisionBlockDims& dims, float* x, int64_t patches,
                          const std::vector<int64_t>& cu_seqlens, const VisionRotary& rot, VisionBlockScratch& scratch,
                          ThreadPool* pool);

// ---- patch_merger.cpp ----
// out[S/unit, out_hidden] from x[S, D] (unit = merge^2 consecutive rows form one token).
// norm_buf and hidden_buf each hold at least S*D floats.
void patch_merger_forward(const VisionPatchMergerWeights& w, int64_t hidden, int64_t unit, float eps, const float* x,
                          int64_t patches, float* out, float* norm_buf, float* hidden_buf, ThreadPool* pool);

}  // namespace qvl::vision
