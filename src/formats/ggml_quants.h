// Dequantization of ggml's tensor block types (the files llama.cpp users download), bit for bit
// what ggml's own to_float gives: the same fp16 scales, integer unpacking and the same order of
// fp32 operations (this file is compiled without FMA contraction so that d * sc * q is rounded
// twice, as ggml does).
#pragma once

#include <cstddef>
#include <cstdint>

#include "formats/gguf.h"
#include "kernels/kernels.h"

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

// One row of Q4_K, Q5_K, Q6_K or IQ4_XS super-blocks (cols / 256 of them) taken apart, values unchanged, into
// out's arrays (what kernels::pack_ggml_k_blocks takes).
void ggml_k_blocks_to_row(GgmlType type, const void* row_blocks, int64_t cols, const kernels::GgmlKRow& out);

// Whether qvl's int8 kernels run a 2-D tensor of this type as it is stored (no rounding): Q8_0,
// Q4_0, Q4_K, Q5_K, Q6_K and IQ4_XS.
bool ggml_type_packable(GgmlType type);

// Packs a rows × cols matrix of a packable type (row-major ggml blocks, checked by the caller to
// hold rows × cols elements, cols a multiple of the type's block) for the kernels: it holds
// exactly the file's weights (gather_row gives ggml's dequantization bit for bit).
kernels::QuantizedMatrix pack_ggml_matrix(GgmlType type, const void* data, int64_t rows, int64_t cols,
                                          ThreadPool* pool = nullptr);

}  // namespace qvl
