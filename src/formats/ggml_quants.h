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

// One row of Q8_0 or Q4_0 blocks (cols / 32 of them) as scales and codes, unchanged: the fp16
// scale bits of each block into scales[cols / 32], and per element Q8_0's int8 value + 128 or
// Q4_0's 4-bit code (0..15) into codes[cols]. The weights are exactly the stored ones (what
// kernels::pack_quantized_blocks takes).
void ggml_blocks_to_codes(GgmlType type, const void* row_blocks, int64_t cols, uint16_t* scales, uint8_t* codes);

}  // namespace qvl
