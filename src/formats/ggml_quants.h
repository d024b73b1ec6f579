// Dequantization of ggml's tensor block types (the files llama.cpp users download), bit for bit
// what ggml's own to_float gives: the same fp16 scales, integer unpacking and the same order of
// fp32 operations (this file is compiled without FMA contraction so that d * sc * q is rounded
// twice, as ggml does).
#pragma once

#include <cstddef>
#include <cstdint>

#include "formats/gguf.h"

namespace qvl {

// True for every type dequantize_ggml accepts: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS.
bool ggml_type_dequantizable(GgmlType type);

// Decodes `count` elements (a whole number of the type's blocks) from `blocks` into out.
// The caller has checked that `blocks` holds count / block_elems * block_bytes bytes.
// Throws qvl::Error (kUnsupported) for a type it does not know.
void dequantize_ggml(GgmlType type, const void* blocks, int64_t count, float* out);

}  // namespace qvl
