// Views of checkpoint tensors as the kernels' types, shared by the weight loaders of every
// model component (text decoder, vision tower).
#pragma once

#include <vector>

#include "formats/checkpoint.h"
#include "kernels/kernels.h"

namespace qvl {

// A 2-D tensor as a weight matrix used in place: dense (bf16/f16/f32) or, for a tensor that a
// qvl GGUF stores pre-packed, the packed format after checking its byte size and alignment.
kernels::WeightMatrix as_matrix(const TensorView& t);

// A tensor converted to fp32 (norm weights, biases); packed tensors are refused.
std::vector<float> as_f32(const TensorView& t);

}  // namespace qvl
