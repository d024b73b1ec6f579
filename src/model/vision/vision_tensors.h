// The Qwen3-VL vision tower's tensor table: every checkpoint tensor under `model.visual.`, once.
// Loading, quantize-at-load, byte accounting, `qvl quantize` and
// `qvl synth` all enumerate it; another vision tower is new rows here plus its forward code.
#pragma once

#include <string>
#include <vector>

#include "formats/checkpoint.h"
#include "formats/model_config.h"
#include "model/tensor_table.h"
#include "model/vision/vision_weights.h"

namespace qvl {

inline constexpr const char* kVisionTensorPrefix = "model.visual.";

enum class VisionRepeat {
  kOnce,
  kPerBlock,   // "{i}" is the block index
  kPerMerger,  // "{m}" is "merger." (index 0), then "deepstack_merger_list.N." (index N+1)
};

struct VisionTensorRow {
  const char* name;  // "{p}" is the tower prefix; "{i}" and "{m}" as VisionRepeat says
  TensorRole role;
  QuantClass quant;
  VisionRepeat repeat;
  std::vector<int64_t> (*shape)(const VisionConfig&, size_t index);
  TensorField (*field)(VisionWeights&, size_t index);
};

const std::vector<VisionTensorRow>& vision_tensor_rows();

// The config's vision tensors with their checkpoint names and shapes, in checkpoint order.
std::vector<TensorSpec> vision_tensor_specs(const VisionConfig& config, const std::string& prefix = kVisionTensorPrefix);

// The weights-struct field a spec of vision_tensor_specs() loads into (blocks and
// deepstack_merger_list must be sized).
TensorField vision_tensor_field(VisionWeights& w, const TensorSpec& spec);

// Every vision tensor as held now: matrices in their storage format, vectors as fp32.
uint64_t vision_weight_bytes(const VisionConfig& config, const VisionWeights& w);

// Loads and shape-checks every vision tensor of the table (config validated first by
// validate_vision_config). Fails if the checkpoint holds tensors under `prefix` that no row
// names (e.g. more blocks than `depth`), so that nothing there is silently ignored.
VisionWeights load_vision_weights(const VisionConfig& config, Checkpoint& ckpt,
                                  const std::string& prefix = kVisionTensorPrefix);

}  // namespace qvl
