// The Qwen3-VL vision tower (fp32 compute): patch embedding + interpolated learned position
// embedding, `depth` ViT blocks with 2-D rotary attention restricted to each image (each video
// frame), DeepStack mergers after the blocks listed in deepstack_visual_indexes, and the final
// 2x2 patch merger. Several images of any (merge-aligned) grid are encoded in one call.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "formats/checkpoint.h"
#include "formats/model_config.h"
#include "model/vision/vision_types.h"  // re-exported: GridTHW
#include "model/vision/vision_weights.h"

namespace qvl {

class ThreadPool;

struct VisionOutput {
  int64_t tokens = 0;                         // sum over images of t*h*w / merge^2
  int64_t hidden = 0;                         // out_hidden_size
  std::vector<float> embeds;                  // [tokens, hidden], merger output
  std::vector<std::vector<float>> deepstack;  // one [tokens, hidden] per deepstack_visual_indexes entry
};

class VisionEncoder;

// One encode run a block at a time, so that a caller can interleave it with other work (the
// engine runs a block per step between decode batches, so that running streams never wait for
// a whole image). VisionEncoder::encode runs one to the end.
class VisionEncodeJob {
 public:
  // Validates the request and embeds the patches (see VisionEncoder::encode for the arguments).
  VisionEncodeJob(const VisionEncoder& encoder, const float* pixel_values, int64_t rows,
                  const std::vector<GridTHW>& grids, ThreadPool* pool);
  ~VisionEncodeJob();
  VisionEncodeJob(VisionEncodeJob&&) noexcept;

  int64_t blocks() const;       // the tower's depth
  int64_t blocks_done() const;
  bool done() const { return blocks_done() == blocks(); }
  // Runs the next block (and its DeepStack merger); after the last one, the final merger too.
  void run_block(ThreadPool* pool);
  VisionOutput take_output();   // once done

 private:
  struct State;
  std::unique_ptr<State> state_;
};

class VisionEncoder {
 public:
  // Loads and validates the weights under "model.visual." (every tensor there is consumed).
  // `format` other than kDense quantizes the blocks' and mergers' matrices at load (the patch
  // embedding and position table stay as stored). `attention`: the arithmetic of the blocks'
  // attention (kernels::AttentionPrecision; kF32, the default, is the reference).
  VisionEncoder(const VisionConfig& cfg, Checkpoint& ckpt,
                kernels::WeightFormat format = kernels::WeightFormat::kDense, ThreadPool* pool = nullptr,
                kernels::AttentionPrecision attention = kernels::AttentionPrecision::kF32);

  // pixel_values: [sum t*h*w, C*T*P*P] rows in the HF processor order (per image: frames, then
  // 2x2 merge blocks row-major, then row-major within a block); grids in image order.
  // Fails (kInvalidArgument) unless rows == sum of grid sizes and h, w are positive multiples
  // of spatial_merge_size. Thread-safe: all activations are allocated per call.
  // `after_block(done, depth)` runs on the calling thread after each of the `depth` blocks (every
  // image goes through a block together); it may throw to abandon the encode, which changes nothing.
  using BlockObserver = std::function<void(int64_t done, int64_t depth)>;
  VisionOutput encode(const float* pixel_values, int64_t rows, const std::vector<GridTHW>& grids, ThreadPool* pool,
                      const BlockObserver& after_block = {}) const;

  const VisionConfig& config() const { return cfg_; }
  kernels::AttentionPrecision attention_precision() const { return attention_; }
  const VisionWeights& weights() const { return weights_; }
  // Bytes of the weights as held: matrices as stored or quantized, vectors as fp32.
  uint64_t weight_bytes() const;

 private:
  friend class VisionEncodeJob;
  VisionConfig cfg_;
  VisionWeights weights_;
  kernels::AttentionPrecision attention_ = kernels::AttentionPrecision::kF32;
  std::vector<kernels::QuantizedMatrix> owned_;  // storage of matrices quantized at load
};

}  // namespace qvl
