// Quantization of f32 values into ggml block types, giving the blocks ggml's own reference
// quantizer writes without an importance matrix (what `llama-quantize` and
// ggml_quantize_chunk produce) bit for bit: the same search for scales and minima, the same
// rounding (round-half-to-even through a float bias, fp16 scales rounded to nearest even), and
// the same order of fp32 operations (this file is compiled without FMA contraction).
#pragma once

#include <cstdint>

#include "formats/gguf.h"
#include "kernels/kernels.h"

namespace qvl {

class ThreadPool;

// True for the types quantize_ggml writes: Q8_0, Q4_0, Q5_0, Q4_K, Q6_K (Q4_K_M's mix is Q4_K +
// Q6_K, with Q5_0 and Q8_0 for rows too short for a 256-value super-block).
bool ggml_type_quantizable(GgmlType type);

// Quantizes `count` values (a whole number of the type's blocks) into `out`, which must hold
// count / block_elems * block_bytes bytes. Blocks are independent, so any split of a matrix
// into rows gives the same bytes. Throws kUnsupported for a type ggml_type_quantizable refuses.
void quantize_ggml(GgmlType type, const float* values, int64_t count, void* out);

// A rows × cols matrix (row-major, cols a multiple of the type's block), rows spread over the
// pool's threads; the bytes are those of quantize_ggml over the whole matrix.
void quantize_ggml_matrix(GgmlType type, const float* values, int64_t rows, int64_t cols, void* out,
                          ThreadPool* pool = nullptr);

// A matrix of any dtype or format (quantized ones are dequantized first) quantized to ggml's Q6_K
// by the reference quantizer above and packed for the kernels (format kGgmlQ6_K). A row whose
// width is not a multiple of 256 is padded with zeros to whole super-blocks; the padding rounds
// to 0 without changing the other values' scales, and is dropped.
kernels::QuantizedMatrix quantize_q6_k_matrix(const kernels::WeightMatrix& src, ThreadPool* pool = nullptr);

}  // namespace qvl
