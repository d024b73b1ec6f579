// Qwen3-VL wired together: the text decoder, the vision tower, and what joins them. An image
// placeholder row of the prompt takes a row of the vision tower's output; the same rows receive
// the DeepStack features after the first decoder layers; 3-D MRoPE positions come from the
// image grids. A Qwen3 text checkpoint is the same without the vision tower. The Generator (one
// sequence) and the Engine (many at once) run every prompt through this class.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <vector>

#include "formats/checkpoint.h"
#include "formats/model_config.h"
#include "model/mrope_positions.h"
#include "model/text/text_decoder.h"
#include "model/text/text_tensors.h"
#include "model/vision/vision_tensors.h"
#include "model/vision/vision_encoder.h"

namespace qvl {

using ImageGrid = std::array<int64_t, 3>;  // (t, h, w) in patches, as ProcessedInputs holds them

class Qwen3VL {
 public:
  // Loads both towers (the vision tower only when the config has one) from the checkpoint.
  // vision_attention: the vision tower's attention arithmetic (VisionEncoder).
  Qwen3VL(const ModelConfig& config, Checkpoint& ckpt, const TextWeightFormats& text_formats,
          kernels::WeightFormat vision_format, ThreadPool* pool,
          kernels::AttentionPrecision vision_attention = kernels::AttentionPrecision::kF32);

  const TextDecoder& decoder() const { return *decoder_; }
  bool has_vision() const { return vision_ != nullptr; }
  const VisionEncoder& vision() const;  // kUnsupported on a text-only model
  const VisionTokenIds& vision_ids() const { return vision_ids_; }
  int64_t merge_size() const { return merge_; }
  int64_t hidden_size() const { return decoder_->config().hidden_size; }
  size_t deepstack_layers() const { return deepstack_layers_; }
  int64_t vision_depth() const;

  // The vision tower over several images (pixel rows in image order); after_block(done, total)
  // reports progress between blocks and may throw to stop.
  VisionOutput encode_images(const float* pixel_values, int64_t pixel_rows, const std::vector<ImageGrid>& grids,
                             ThreadPool* pool, const std::function<void(int64_t, int64_t)>& after_block = {}) const;
  // Positions of `ids` appended after a sequence whose next position is `start`.
  MropePositions positions(const std::vector<int32_t>& ids, const std::vector<ImageGrid>& grids, int64_t start) const;
  // Image placeholder tokens among ids.
  int64_t image_tokens(const std::vector<int32_t>& ids) const;  // <|image_pad|> and <|video_pad|> tokens

 private:
  std::unique_ptr<TextDecoder> decoder_;
  std::unique_ptr<VisionEncoder> vision_;
  VisionTokenIds vision_ids_;
  int64_t merge_ = 2;
  size_t deepstack_layers_ = 0;
};

// Every tensor of a checkpoint with this config, from the towers' tensor tables, in checkpoint
// order: the text decoder's, then the vision tower's when the config has one.
std::vector<TensorSpec> model_tensor_specs(const ModelConfig& config);

// The rows of one decoder call, gathered from text tokens and vision outputs: embeddings,
// positions, and the DeepStack features of the vision rows. Buffers are kept between calls
// (clear() keeps their capacity), so a steady decode step allocates nothing.
class DecoderInputs {
 public:
  void clear(const Qwen3VL& model);
  void add_token(const Qwen3VL& model, int32_t token, const Position3& position);
  // Row `row` of a vision output (an image placeholder's embedding and its DeepStack features).
  void add_vision_row(const VisionOutput& vision, int64_t row, const Position3& position);

  int64_t rows() const { return rows_; }
  const float* embeds() const { return embeds_.data(); }
  const Position3* positions() const { return positions_.data(); }
  const DeepstackInjection* deepstack();  // null when no row is a vision row

 private:
  int64_t hidden_ = 0, rows_ = 0;
  std::vector<float> embeds_;
  std::vector<Position3> positions_;
  std::vector<std::vector<float>> deepstack_features_;  // per DeepStack layer: [vision rows, hidden]
  DeepstackInjection deepstack_;
};

}  // namespace qvl
