// Weights of the Qwen3 text decoder, named after the checkpoint tensors
// (`model.language_model.layers.N.self_attn.q_proj.weight`, ...). Matrices are used in place
// from the memory-mapped checkpoint; the small vectors (norm weights) are converted to fp32.
#pragma once

#include <string>
#include <vector>

#include "formats/model_config.h"
#include "kernels/kernels.h"

namespace qvl {

using kernels::WeightMatrix;

struct TextAttentionWeights {
  WeightMatrix q_proj, k_proj, v_proj, o_proj;
  std::vector<float> q_norm, k_norm;  // [head_dim], applied per head
};

struct TextMlpWeights {
  WeightMatrix gate_proj, up_proj, down_proj;
};

struct TextLayerWeights {
  std::vector<float> input_layernorm;
  TextAttentionWeights self_attn;
  std::vector<float> post_attention_layernorm;
  TextMlpWeights mlp;
};

struct TextWeights {
  WeightMatrix embed_tokens;  // [vocab, hidden]
  std::vector<TextLayerWeights> layers;
  std::vector<float> norm;
  WeightMatrix lm_head;  // [vocab, hidden]; aliases embed_tokens when tied

  std::vector<kernels::QuantizedMatrix> owned;  // storage of matrices quantized at load
};

// How the decoder's matrices are held after loading: `layers` for the attention and MLP
// projections, `head` for embed_tokens and lm_head (kDense keeps them as stored).
struct TextWeightFormats {
  kernels::WeightFormat layers = kernels::WeightFormat::kDense;
  kernels::WeightFormat head = kernels::WeightFormat::kDense;
};

}  // namespace qvl
