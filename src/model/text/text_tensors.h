// The text decoder's tensor table: every checkpoint tensor of the Qwen3 decoder, once.
// Loading, quantize-at-load, byte accounting, `qvl quantize` and `qvl synth`
// all enumerate it; a new text architecture is new rows here plus its forward code.
#pragma once

#include <string>
#include <vector>

#include "formats/checkpoint.h"
#include "formats/model_config.h"
#include "model/tensor_table.h"
#include "model/text/text_weights.h"

namespace qvl {

class ThreadPool;

// Prefix of the text tensors: "model.language_model." for qwen3_vl, "model." for qwen3.
std::string text_tensor_prefix(const ModelConfig& config);

enum class TextRepeat {
  kOnce,
  kPerLayer,     // "{i}" is the layer index
  kUnlessTied,   // absent when tie_word_embeddings (lm_head is embed_tokens then)
};

struct TextTensorRow {
  const char* name;  // "{p}" is text_tensor_prefix(config), "{i}" the layer index
  TensorRole role;
  QuantClass quant;
  TextRepeat repeat;
  std::vector<int64_t> (*shape)(const TextConfig&);
  TensorField (*field)(TextWeights&, size_t layer);
};

const std::vector<TextTensorRow>& text_tensor_rows();

// The config's text tensors with their checkpoint names and shapes, in checkpoint order.
std::vector<TensorSpec> text_tensor_specs(const ModelConfig& config);

// The weights-struct field a spec of text_tensor_specs() loads into (w.layers must be sized).
TensorField text_tensor_field(TextWeights& w, const TensorSpec& spec);

struct TextWeightBytes {
  uint64_t all = 0;        // every text tensor as held now (a tied lm_head counted once)
  uint64_t per_token = 0;  // what decoding one token reads whole: the layer matrices and lm_head
};
TextWeightBytes text_weight_bytes(const ModelConfig& config, const TextWeights& w);

// Loads and shape-checks every text tensor of the table. A checkpoint with tied embeddings may
// still store an lm_head.weight copy; it is accepted (and must match embed_tokens' shape).
// Tensors under the text prefix that no row names are refused.
TextWeights load_text_weights(const ModelConfig& config, Checkpoint& ckpt);

// Quantizes the dense matrices of w in place, each in the format of its quantization class
// (views switch to owned buffers). Matrices that are already quantized, or whose shape the
// format cannot hold, stay as they are.
void quantize_text_weights(TextWeights& w, const ModelConfig& config, const TextWeightFormats& formats,
                           ThreadPool* pool);

}  // namespace qvl
