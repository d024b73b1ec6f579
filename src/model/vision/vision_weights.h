// Weights of the Qwen3-VL vision tower, one struct per module, named after the checkpoint
// tensors under `model.visual.` (`blocks.N.attn.qkv.weight`, `merger.linear_fc1.bias`, ...).
// Matrices are used in place from the memory-mapped checkpoint (no copy); the small vectors
// (biases, LayerNorm weights) are converted to fp32 at load.
#pragma once

#include <string>
#include <vector>

#include "formats/checkpoint.h"
#include "formats/model_config.h"
#include "kernels/kernels.h"

namespace qvl {

// `patch_embed.proj`: Conv3d [D, C, T, P, P] with stride == kernel, used as a matrix
// [D, C*T*P*P] over the flattened patch rows.
struct VisionPatchEmbedWeights {
  kernels::WeightMatrix proj;
  std::vector<float> proj_bias;  // [D]
};

// `blocks.N.*`
struct VisionBlockWeights {
  std::vector<float> norm1_weight, norm1_bias;  // [D]
  kernels::WeightMatrix attn_qkv;               // [3D, D]: rows q | k | v, each head-major
  std::vector<float> attn_qkv_bias;             // [3D]
  kernels::WeightMatrix attn_proj;              // [D, D]
  std::vector<float> attn_proj_bias;            // [D]
  std::vector<float> norm2_weight, norm2_bias;  // [D]
  kernels::WeightMatrix mlp_fc1;                // [I, D]
  std::vector<float> mlp_fc1_bias;              // [I]
  kernels::WeightMatrix mlp_fc2;                // [D, I]
  std::vector<float> mlp_fc2_bias;              // [D]
};

// `merger.*` and `deepstack_merger_list.N.*`. The final merger normalizes each patch (over D)
// before the 2x2 shuffle; the DeepStack mergers normalize after it (over 4D).
struct VisionPatchMergerWeights {
  bool postshuffle_norm = false;
  std::vector<float> norm_weight, norm_bias;  // [D] or [4D]
  kernels::WeightMatrix fc1;                  // [4D, 4D]
  std::vector<float> fc1_bias;                // [4D]
  kernels::WeightMatrix fc2;                  // [out_hidden, 4D]
  std::vector<float> fc2_bias;                // [out_hidden]
};

struct VisionWeights {
  VisionPatchEmbedWeights patch_embed;
  kernels::WeightMatrix pos_embed;  // `pos_embed.weight` [num_position_embeddings, D]
  std::vector<VisionBlockWeights> blocks;
  VisionPatchMergerWeights merger;
  std::vector<VisionPatchMergerWeights> deepstack_merger_list;
};

}  // namespace qvl
