#include "model/vision/vision_encoder.h"

#include <algorithm>

#include "core/check.h"
#include "model/vision/vision_internal.h"
#include "model/vision/vision_tensors.h"

namespace qvl {

VisionEncoder::VisionEncoder(const VisionConfig& cfg, Checkpoint& ckpt, kernels::WeightFormat format,
                             ThreadPool* pool, kernels::AttentionPrecision attention)
    : cfg_(cfg), weights_(load_vision_weights(cfg, ckpt, kVisionTensorPrefix)), attention_(attention) {
  for (const TensorSpec& spec : vision_tensor_specs(cfg))
    if (spec.quant == QuantClass::kVision) quantize_in_place(*vision_tensor_field(weights_, spec).matrix, format, owned_, pool);
}

uint64_t VisionEncoder::weight_bytes() const { return vision_weight_bytes(cfg_, weights_); }

struct VisionEncodeJob::State {
  const VisionEncoder* encoder = nullptr;
  int64_t rows = 0, layer = 0, depth = 0;
  std::vector<float> x;
  vision::VisionRotary rot;
  std::vector<int64_t> cu_seqlens;
  vision::VisionBlockDims dims;
  vision::VisionBlockScratch scratch;
  VisionOutput out;
};

VisionEncodeJob::VisionEncodeJob(const VisionEncoder& encoder, const float* pixel_values, int64_t rows,
                                 const std::vector<GridTHW>& grids, ThreadPool* pool)
    : state_(std::make_unique<State>()) {
  const VisionConfig& cfg_ = encoder.cfg_;
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

  State& st = *state_;
  st.encoder = &encoder;
  st.rows = rows;
  st.depth = cfg_.depth;
  VisionOutput& out = st.out;
  out.hidden = cfg_.out_hidden_size;
  out.tokens = rows / unit;
  out.deepstack.resize(cfg_.deepstack_visual_indexes.size());
  if (rows == 0) {
    st.layer = st.depth;  // nothing to run
    return;
  }

  // --- embeddings ---
  st.x.resize(static_cast<size_t>(rows * d));
  vision::patch_embed(encoder.weights_.patch_embed, pixel_values, rows, st.x.data(), pool);
  vision::add_interpolated_pos_embed(encoder.weights_.pos_embed, grids, merge, st.x.data(), pool);
  const int64_t head_dim = d / cfg_.num_heads;
  st.rot = vision::build_vision_rotary(grids, merge, head_dim, cfg_.rope_theta);
  // One attention span per image frame.
  st.cu_seqlens = {0};
  for (const GridTHW& g : grids)
    for (int64_t f = 0; f < g.t; ++f) st.cu_seqlens.push_back(st.cu_seqlens.back() + g.h * g.w);
  st.dims.hidden = d;
  st.dims.heads = cfg_.num_heads;
  st.dims.head_dim = head_dim;
  st.dims.intermediate = cfg_.intermediate_size;
  st.dims.eps = static_cast<float>(cfg_.layer_norm_eps);
  st.dims.act = vision::parse_block_activation(cfg_.hidden_act);
  st.dims.attention = encoder.attention_;
  st.scratch.resize(rows, st.dims);
}

VisionEncodeJob::~VisionEncodeJob() = default;
VisionEncodeJob::VisionEncodeJob(VisionEncodeJob&&) noexcept = default;

int64_t VisionEncodeJob::blocks() const { return state_->depth; }
int64_t VisionEncodeJob::blocks_done() const { return state_->layer; }

void VisionEncodeJob::run_block(ThreadPool* pool) {
  State& st = *state_;
  QVL_ASSERT(st.layer < st.depth);
  const VisionConfig& cfg = st.encoder->cfg_;
  const VisionWeights& w = st.encoder->weights_;
  const int64_t unit = cfg.spatial_merge_size * cfg.spatial_merge_size, d = cfg.hidden_size;
  VisionOutput& out = st.out;
  vision::vision_block_forward(w.blocks[static_cast<size_t>(st.layer)], st.dims, st.x.data(), st.rows, st.cu_seqlens,
                               st.rot, st.scratch, pool);
  // DeepStack taps: the merged features of some blocks' outputs.
  const auto& taps = cfg.deepstack_visual_indexes;
  const auto tap = std::find(taps.begin(), taps.end(), static_cast<int>(st.layer));
  if (tap != taps.end()) {
    const size_t j = static_cast<size_t>(tap - taps.begin());
    out.deepstack[j].resize(static_cast<size_t>(out.tokens * out.hidden));
    vision::patch_merger_forward(w.deepstack_merger_list[j], d, unit, st.dims.eps, st.x.data(), st.rows,
                                 out.deepstack[j].data(), st.scratch.a.data(), st.scratch.big.data(), pool);
  }
  if (++st.layer < st.depth) return;
  out.embeds.resize(static_cast<size_t>(out.tokens * out.hidden));
  vision::patch_merger_forward(w.merger, d, unit, st.dims.eps, st.x.data(), st.rows, out.embeds.data(),
                               st.scratch.a.data(), st.scratch.big.data(), pool);
  st.x = {};  // the activations are not needed any more
  st.scratch = {};
}

VisionOutput VisionEncodeJob::take_output() {
  QVL_ASSERT(done());
  return std::move(state_->out);
}

VisionOutput VisionEncoder::encode(const float* pixel_values, int64_t rows, const std::vector<GridTHW>& grids,
                                   ThreadPool* pool, const BlockObserver& after_block) const {
  VisionEncodeJob job(*this, pixel_values, rows, grids, pool);
  while (!job.done()) {
    job.run_block(pool);
    if (after_block) after_block(job.blocks_done(), job.blocks());
  }
  return job.take_output();
}

}  // namespace qvl
