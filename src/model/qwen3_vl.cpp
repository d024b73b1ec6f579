#include "model/qwen3_vl.h"

#include <algorithm>

#include "core/check.h"

namespace qvl {

Qwen3VL::Qwen3VL(const ModelConfig& config, Checkpoint& ckpt, const TextWeightFormats& text_formats,
                 kernels::WeightFormat vision_format, ThreadPool* pool, kernels::AttentionPrecision vision_attention)
    : decoder_(std::make_unique<TextDecoder>(config, ckpt, text_formats, pool)),
      vision_ids_{static_cast<int32_t>(config.image_token_id), static_cast<int32_t>(config.video_token_id)} {
  if (config.vision) {
    vision_ = std::make_unique<VisionEncoder>(*config.vision, ckpt, vision_format, pool, vision_attention);
    merge_ = config.vision->spatial_merge_size;
    deepstack_layers_ = config.vision->deepstack_visual_indexes.size();
  }
}

const VisionEncoder& Qwen3VL::vision() const {
  if (!vision_) fail(ErrorKind::kUnsupported, "this model has no vision encoder");
  return *vision_;
}

int64_t Qwen3VL::vision_depth() const { return vision_ ? vision_->config().depth : 0; }

VisionOutput Qwen3VL::encode_images(const float* pixel_values, int64_t pixel_rows, const std::vector<ImageGrid>& grids,
                                    ThreadPool* pool, const std::function<void(int64_t, int64_t)>& after_block) const {
  std::vector<GridTHW> g;
  g.reserve(grids.size());
  for (const auto& t : grids) g.push_back({t[0], t[1], t[2]});
  return vision().encode(pixel_values, pixel_rows, g, pool, after_block);
}

MropePositions Qwen3VL::positions(const std::vector<int32_t>& ids, const std::vector<ImageGrid>& grids,
                                  int64_t start) const {
  return compute_mrope_positions(ids, grids, vision_ids_, merge_, start);
}

int64_t Qwen3VL::image_tokens(const std::vector<int32_t>& ids) const {
  return std::count_if(ids.begin(), ids.end(),
                       [&](int32_t id) { return id == vision_ids_.image_pad || id == vision_ids_.video_pad; });
}

std::vector<TensorSpec> model_tensor_specs(const ModelConfig& config) {
  std::vector<TensorSpec> specs = text_tensor_specs(config);
  if (config.vision)
    for (TensorSpec& s : vision_tensor_specs(*config.vision)) specs.push_back(std::move(s));
  return specs;
}

void DecoderInputs::clear(const Qwen3VL& model) {
  hidden_ = model.hidden_size();
  rows_ = 0;
  positions_.clear();
  deepstack_.rows.clear();
  deepstack_features_.resize(model.deepstack_layers());
  for (auto& f : deepstack_features_) f.clear();
}

void DecoderInputs::add_token(const Qwen3VL& model, int32_t token, const Position3& position) {
  embeds_.resize(static_cast<size_t>((rows_ + 1) * hidden_));
  model.decoder().embed(token, embeds_.data() + rows_ * hidden_);
  positions_.push_back(position);
  ++rows_;
}

void DecoderInputs::add_vision_row(const VisionOutput& vision, int64_t row, const Position3& position) {
  QVL_ASSERT(vision.hidden == hidden_ && row >= 0 && row < vision.tokens);
  QVL_ASSERT(vision.deepstack.size() == deepstack_features_.size());
  embeds_.resize(static_cast<size_t>((rows_ + 1) * hidden_));
  std::copy_n(vision.embeds.data() + row * hidden_, hidden_, embeds_.data() + rows_ * hidden_);
  deepstack_.rows.push_back(rows_);
  for (size_t l = 0; l < deepstack_features_.size(); ++l)
    deepstack_features_[l].insert(deepstack_features_[l].end(), vision.deepstack[l].begin() + row * hidden_,
                                  vision.deepstack[l].begin() + (row + 1) * hidden_);
  positions_.push_back(position);
  ++rows_;
}

const DeepstackInjection* DecoderInputs::deepstack() {
  if (deepstack_.rows.empty()) return nullptr;
  deepstack_.per_layer.clear();
  for (const auto& f : deepstack_features_) deepstack_.per_layer.push_back(f.data());
  return &deepstack_;
}

}  // namespace qvl
