// The vocabulary of the numeric kernels: weight storage formats, weight matrices, KV row types,
// attention shapes and instruction-set levels, with their names and size rules. Plain data and
// small pure functions only, so the kernel internals (quant.h, reference.h, simd.h) can use them
// without including kernels.h, which re-exports this header for everyone else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/dtype.h"

namespace qvl::kernels {

// How a WeightMatrix stores its elements.
//   kDense: rows × cols elements of `dtype` (F32, F16 or BF16), row-major.
//   kQ8_0:  blocks of 32 weights along a row, int8 + one fp16 scale per block (8.5 bits/weight).
//   kQ4_0:  blocks of 32, 4-bit codes with an implicit zero point of 8 + one fp16 scale (4.5 b/w).
//   kQ4_K:  blocks of 32 with their own scale AND offset (w = scale·q - min, q in 0..15), the
//           per-block scale/min stored as 8-bit multiples of two fp16 values shared by a
//           super-block of 8 blocks (4.625 bits/weight); better quality than kQ4_0.
//   Two formats hold llama.cpp's k-quant blocks exactly as ggml stores their values (made only by
//   pack_ggml_k_blocks from a GGUF file; there is no quantizer for them):
//   kGgmlQ4_K: kQ4_K with the super-block scale and min in fp16 (ggml's Q4_K; sub-block
//           scale/min 0..63), so every weight equals ggml's dequantization (4.625 bits/weight).
//   kGgmlQ6_K: ggml's Q6_K: 6-bit codes q, w = d·sc·(q - 32) with an int8 scale sc per 16
//           columns and an fp16 d per 256 (6.5625 bits/weight).
//   kGgmlQ5_K: ggml's Q5_K: kGgmlQ4_K with 5-bit codes (q in 0..31; 5.625 bits/weight).
//   kGgmlIQ4_XS: ggml's IQ4_XS: 4-bit indices into 16 fixed levels (-127..113), w = d·(ls - 32)·level
//           with a 6-bit ls per 32 columns and an fp16 d per 256 (4.625 bits/weight).
// The quantized formats are repacked for the int8 dot-product kernels (16 rows interleaved; see
// kernels/quant.h) and require cols % 32 == 0. They are made by quantize_matrix().
enum class WeightFormat : uint8_t {
  kDense = 0,
  kQ8_0 = 1,
  kQ4_0 = 2,
  kQ4_K = 3,
  kGgmlQ4_K = 4,
  kGgmlQ6_K = 5,
  kGgmlQ5_K = 6,
  kGgmlIQ4_XS = 7,
};

// "dense", "q8_0", "q4_0", "q4_k", "ggml_q4_k", "ggml_q5_k", "ggml_q6_k", "ggml_iq4_xs"
std::string_view weight_format_name(WeightFormat f);
// A matrix's element type as the library prints it: the format name if quantized ("ggml_q4_k"),
// else its dtype in lower case ("bf16").
std::string weight_type_name(WeightFormat format, DType dtype);
// Parses "q8_0", "q4_0", "q4_k" (case-insensitive) or "dense" (the formats qvl quantizes to);
// throws qvl::Error otherwise.
WeightFormat parse_weight_format(std::string_view name);

// Columns per block of every quantized format: a quantized matrix needs cols % kQuantBlock == 0.
constexpr int64_t kQuantBlock = 32;

// A weight matrix W[rows, cols] as stored (rows = output features, cols = input features, the
// nn.Linear layout). The data is not owned: it points into the mapped file or into a buffer
// owned by whoever built the matrix (e.g. a QuantizedMatrix).
struct WeightMatrix {
  DType dtype = DType::kF32;  // kDense: F32, F16 or BF16. Quantized formats: ignored (kU8).
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;
  WeightFormat format = WeightFormat::kDense;

  bool quantized() const { return format != WeightFormat::kDense; }
};

// One row of ggml k-quant super-blocks (256 columns each) taken apart, values unchanged: what
// pack_ggml_k_blocks takes for the kGgml* formats.
struct GgmlKRow {
  uint16_t* d = nullptr;     // [cols / 256] fp16 bits: ggml's d
  uint16_t* dmin = nullptr;  // [cols / 256] fp16 bits: ggml's dmin (Q4_K, Q5_K)
  // Q4_K, Q5_K: [cols / 32] scales 0..63; IQ4_XS: [cols / 32] ls 0..63; Q6_K: [cols / 16] int8
  uint8_t* sc = nullptr;
  uint8_t* mn = nullptr;     // Q4_K, Q5_K: [cols / 32] mins 0..63
  uint8_t* codes = nullptr;  // [cols] Q4_K: 0..15; Q5_K: 0..31; Q6_K: 0..63; IQ4_XS: level index 0..15
};

// The 16 levels of ggml's IQ4_NL / IQ4_XS blocks.
inline constexpr int8_t kIq4Levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// Whether a rows × cols matrix can be stored in `format` (quantized formats: cols % 32 == 0).
bool can_quantize(WeightFormat format, int64_t rows, int64_t cols);

// How attention's K and V rows are stored (the text decoder's KV cache). Element offsets and
// strides into such rows are counted in ELEMENTS; kv_bytes() turns them into bytes.
//   kF32:  fp32.
//   kF16:  IEEE half, rounded to nearest even on store; read back exactly as fp32.
//   kQ8_0: blocks of 32 consecutive elements, 36 bytes each: the fp32 scale d, then 32 int8
//          codes q in -127..127; element = d * q (one fp32 multiply, as the kernels read it).
//          Stored with amax = max |x| over the block, d = amax / 127, q = round(x * 127 / amax)
//          (nearest, ties to even; 0 when amax = 0), the rounding of the int8 activations.
//          Rows hold whole blocks: every element count, offset and stride must be a multiple
//          of 32 (so a KV head starts on a block when head_dim % 32 == 0). An fp32 scale
//          (not fp16) keeps the kernel's inner loop free of conversions for 6 % more bytes.
enum class KvType : uint8_t { kF32 = 0, kF16 = 1, kQ8_0 = 2 };
constexpr int64_t kKvBlock = 32;  // elements per kQ8_0 block

std::string_view kv_type_name(KvType t);  // "f32", "f16", "q8_0"
// Parses "f32", "f16" or "q8_0" (case-insensitive); throws qvl::Error (kInvalidArgument) naming
// the value otherwise.
KvType parse_kv_type(std::string_view name);
// Whether rows of head_dim elements per head can be stored as t (kQ8_0: head_dim % 32 == 0).
bool kv_type_fits(KvType t, int64_t head_dim);
// Bytes of n consecutive elements, i.e. the byte offset of element n from a row's start.
// Throws qvl::Error (kInvalidArgument) for kQ8_0 when n % 32 != 0.
size_t kv_bytes(KvType t, int64_t n);

// The shape of one attention() call (see kernels.h for what each field means).
struct AttentionShape {
  int64_t q_len = 0, kv_len = 0, head_dim = 0;
  int64_t q_stride = 0, k_stride = 0, v_stride = 0, out_stride = 0;
  float scale = 1.0f;
  bool causal = false;
  int64_t causal_offset = 0;
  int64_t q_heads = 1;  // query heads sharing k/v (GQA group); 1 = a single head
  int64_t q_head_stride = 0, out_head_stride = 0;
  KvType kv_type = KvType::kF32;  // element type of k and v (kQ8_0: head_dim, strides % 32 == 0)
};

// Arithmetic of the long non-causal attention (the vision tower; see attention_bf16 in kernels.h):
//   kF32:  fp32 throughout (attention(); the reference mode).
//   kBF16: q, k, v and the softmax probabilities rounded to bf16, products summed in fp32,
//          softmax in fp32 (bf16 dot products: twice the fp32 FMA's flops per instruction).
enum class AttentionPrecision : uint8_t { kF32 = 0, kBF16 = 1 };
std::string_view attention_precision_name(AttentionPrecision p);  // "f32", "bf16"
// Parses "f32" or "bf16" (case-insensitive); throws qvl::Error (kInvalidArgument) otherwise.
AttentionPrecision parse_attention_precision(std::string_view name);

// Instruction-set levels the kernels dispatch on (see active_isa() in kernels.h).
// kSSE4 uses 128-bit SIMD for the float kernels (the int8 ones run the scalar code);
// kAVX2 needs AVX2+FMA+F16C; kAVX512 needs AVX-512 F/BW/VL/DQ + VNNI.
enum class Isa : uint8_t { kScalar = 0, kSSE4 = 1, kAVX2 = 2, kAVX512 = 3 };
std::string_view isa_name(Isa isa);

}  // namespace qvl::kernels
