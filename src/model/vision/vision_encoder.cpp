#include "model/vision/vision_encoder.h"

#include <algorithm>

#include "core/check.h"
#include "model/vision/vision_internal.h"
#include "model/vision/vision_tensors.h"

namespace qvl {

VisionEncoder::VisionEncoder(const VisionConfig& cfg, Checkpoint& ckpt, kernels::WeightFormat format,
                             ThreadPool* pool)
    : cfg_(cfg), weights_(load_vision_weights(cfg, ckpt, kVisionTensorPrefix)) {
  for (const TensorSpec& spec : vision_tensor_specs(cfg))
    if (spec.quant == QuantClass::kVision) quantize_in_place(*vision_tensor_field(weights_, spec).matrix, format, owned_, pool);
}

uint64_t VisionEncoder::weight_bytes() const { return vision_weight_bytes(cfg_, weights_); }

VisionOutput VisionEncoder::encode(const float* pixel_values, int64_t rows, const std::vector<GridTHW>& grids,
                                   ThreadPool* pool, const BlockObserver& after_block) const {
  const int64_t merge = cfg_.spatial_merge_size, unit = merge * merge, d = cfg_.hidden_size;
  const int64_t row_width = cfg_.in_channels * cfg_.temporal_patch_size * cfg_.patch_size * cfg_.patch_size;

  // --- validate the request ---
  constexpr int64_t kMaxSide = int64_t(1) << 20;  // keeps every product below far from overflow
  if (rows < 0) fail(ErrorKind::kInvalidArgument, "vision encoder: negative pixel row count ", rows);
  int64_t expected = 0;
  for (size_t i = 0; i < grids.size(); ++i) {
    const GridTHW& g = grids[i];
    if (g.t < 1 || g.h < 1 || g.w < 1 || g.t > kMaxSide || g.h > kMaxSide || g.w > kMaxSide)
      fail(ErrorKind::kInvalidArgument, "vision encoder: image ", i, " has an invalid grid (t=", g.t, ", h=", g.h,
           ", w=", g.w, "); each must be in [1, ", kMaxSide, "]");
    if (g.h % merge != 0 || g.w % merge != 0)
      fail(ErrorKind::kInvalidArgument, "vision encoder: image ", i, " grid h=", g.h, ", w=", g.w,
           " is not a multiple of spatial_merge_size ", merge);
    const int64_t n = g.t * g.h * g.w;
    if (n > rows - expected)
      fail(ErrorKind::kInvalidArgument, "vision encoder: pixel_values has ", rows,
           " rows but the image grids need more: images 0..", i, " already cover ", expected, " + ", n,
           " patches (sum of t*h*w)");
    expected += n;
  }
  if (expected != rows)
    fail(ErrorKind::kInvalidArgument, "vision encoder: pixel_values has ", rows, " rows but the ", grids.size(),
         " image grid(s) cover ", expected, " patches (sum of t*h*w)");
  if (rows > 0 && pixel_values == nullptr)
    fail(ErrorKind::kInvalidArgument, "vision encoder: pixel_values is null for ", rows, " rows of ", row_width,
         " values");

  VisionOutput out;
  out.hidden = cfg_.out_hidden_size;
  out.tokens = rows / unit;
  out.deepstack.resize(cfg_.deepstack_visual_indexes.size());
  if (rows == 0) return out;

  // --- embeddings ---
  std::vector<float> x(static_cast<size_t>(rows * d));
  vision::patch_embed(weights_.patch_embed, pixel_values, rows, x.data(), pool);
  vision::add_interpolated_pos_embed(weights_.pos_embed, grids, merge, x.data(), pool);

  const int64_t head_dim = d / cfg_.num_heads;
  const vision::VisionRotary rot = vision::build_vision_rotary(grids, merge, head_dim, cfg_.rope_theta);

  // One attention span per image frame.
  std::vector<int64_t> cu_seqlens{0};
  for (const GridTHW& g : grids)
    for (int64_t f = 0; f < g.t; ++f) cu_seqlens.push_back(cu_seqlens.back() + g.h * g.w);

  vision::VisionBlockDims dims;
  dims.hidden = d;
  dims.heads = cfg_.num_heads;
  dims.head_dim = head_dim;
  dims.intermediate = cfg_.intermediate_size;
  dims.eps = static_cast<float>(cfg_.layer_norm_eps);
  dims.act = vision::parse_block_activation(cfg_.hidden_act);
  vision::VisionBlockScratch scratch;
  scratch.resize(rows, dims);

  // --- blocks, with DeepStack taps ---
  const auto& taps = cfg_.deepstack_visual_indexes;
  for (int64_t layer = 0; layer < cfg_.depth; ++layer) {
    vision::vision_block_forward(weights_.blocks[static_cast<size_t>(layer)], dims, x.data(), rows, cu_seqlens, rot,
                                 scratch, pool);
    const auto tap = std::find(taps.begin(), taps.end(), static_cast<int>(layer));
    if (tap != taps.end()) {
      const size_t j = static_cast<size_t>(tap - taps.begin());
      out.deepstack[j].resize(static_cast<size_t>(out.tokens * out.hidden));
      vision::patch_merger_forward(weights_.deepstack_merger_list[j], d, unit, dims.eps, x.data(), rows,
                                   out.deepstack[j].data(), scratch.a.data(), scratch.big.data(), pool);
    }
    if (after_block) after_block(layer + 1, cfg_.depth);
  }

  out.embeds.resize(static_cast<size_t>(out.tokens * out.hidden));
  vision::patch_merger_forward(weights_.merger, d, unit, dims.eps, x.data(), rows, out.embeds.data(), scratch.a.data(),
                               scratch.big.data(), pool);
  return out;
}

}  // namespace qvl
