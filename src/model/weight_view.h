// Views of checkpoint tensors as the kernels' types, shared by the weight loaders of every
// model component (text decoder, vision tower).
#pragma once

#include <string>
#include <vector>

#include "formats/checkpoint.h"
#include "kernels/kernels.h"

namespace qvl {

// A 2-D tensor as a weight matrix used in place: dense (bf16/f16/f32) or, for a tensor that a
// qvl GGUF stores pre-packed, the packed format after checking its byte size and alignment.
kernels::WeightMatrix as_matrix(const TensorView& t);

// A tensor converted to fp32 (norm weights, biases); packed tensors are refused.
std::vector<float> as_f32(const TensorView& t);

// A weight-type option as users give it: "", "bf16" or "dense" keep the matrices as stored;
// "q8_0", "q4_0" or "q4_k" name a quantized format, "q6_k" ggml's Q6_K (anything else is
// kInvalidArgument).
kernels::WeightFormat weight_format_option(const std::string& name);

// src quantized to `format`: qvl's formats by the kernels' quantizer, ggml's Q6_K by ggml's
// reference quantizer (formats/ggml_quantize.h).
kernels::QuantizedMatrix quantize_weights(const kernels::WeightMatrix& src, kernels::WeightFormat format,
                                          ThreadPool* pool);
// The policy for matrices kept at 8 bits beside quantized text layers (embed_tokens/lm_head;
// the vision tower in a quantized file): the option when given, else q8_0 when `layers` is
// quantized, else as stored.
kernels::WeightFormat eight_bit_companion_format(const std::string& name, kernels::WeightFormat layers);

}  // namespace qvl
