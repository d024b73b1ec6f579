// Numeric kernels. They know nothing about models: plain arrays, sizes and a thread pool.
// Every kernel has a scalar reference (kernels/reference.h) that tests compare against; the
// public functions below pick a SIMD implementation at run time (AVX-512 VNNI, AVX2, SSE4 or
// the portable scalar code), so the binary never assumes the build machine's CPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "core/dtype.h"

namespace qvl {
class ThreadPool;
}

namespace qvl::kernels {

// How a WeightMatrix stores its elements.
//   kDense: rows × cols elements of `dtype` (F32, F16 or BF16), row-major.
//   kQ8_0:  blocks of 32 weights along a row, int8 + one fp16 scale per block (8.5 bits/weight).
//   kQ4_0:  blocks of 32, 4-bit codes with an implicit zero point of 8 + one fp16 scale (4.5 b/w).
//   kQ4_K:  blocks of 32 with their own scale AND offset (w = scale·q - min, q in 0..15), the
//           per-block scale/min stored as 8-bit multiples of two fp16 values shared by a
//           super-block of 8 blocks (4.625 bits/weight); better quality than kQ4_0.
// The quantized formats are repacked for the int8 dot-product kernels (16 rows interleaved; see
// kernels/quant.h) and require cols % 32 == 0. They are made by quantize_matrix().
enum class WeightFormat : uint8_t { kDense = 0, kQ8_0 = 1, kQ4_0 = 2, kQ4_K = 3 };

std::string_view weight_format_name(WeightFormat f);  // "dense", "q8_0", "q4_0", "q4_k"
// Parses "q8_0", "q4_0", "q4_k" (case-insensitive) or "dense"; throws qvl::Error otherwise.
WeightFormat parse_weight_format(std::string_view name);

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

// Bytes that `data` spans for a matrix of this format and shape (dtype used when kDense).
size_t weight_storage_bytes(WeightFormat format, DType dtype, int64_t rows, int64_t cols);
inline size_t weight_storage_bytes(const WeightMatrix& w) {
  return weight_storage_bytes(w.format, w.dtype, w.rows, w.cols);
}

// Whether a rows × cols matrix can be stored in `format` (quantized formats: cols % 32 == 0).
bool can_quantize(WeightFormat format, int64_t rows, int64_t cols);

class QuantizedMatrix;
// Quantizes src (any format; quantized sources are dequantized first) into `format`.
// Throws qvl::Error (kInvalidArgument) if !can_quantize(format, rows, cols) or format is kDense.
// Parallel over groups of 16 rows when pool is given. Deterministic (thread-count independent).
QuantizedMatrix quantize_matrix(const WeightMatrix& src, WeightFormat format, ThreadPool* pool = nullptr);

// Owns the bytes of a quantized matrix; view() is what matmul and gather_row take. Movable;
// moving keeps the data address (the buffer lives on the heap), so views stay valid.
class QuantizedMatrix {
 public:
  QuantizedMatrix() = default;
  const WeightMatrix& view() const { return view_; }
  operator const WeightMatrix&() const { return view_; }  // NOLINT: usable wherever a matrix is
  const uint8_t* bytes() const { return buffer_.get(); }
  size_t size_bytes() const { return size_; }

 private:
  friend QuantizedMatrix quantize_matrix(const WeightMatrix&, WeightFormat, ThreadPool*);
  struct Free {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, Free> buffer_;
  size_t size_ = 0;
  WeightMatrix view_;
};

// Writes W as fp32 into out[rows * cols] (any format).
void dequantize_matrix(const WeightMatrix& w, float* out, ThreadPool* pool = nullptr);

// y[m, rows] = x[m, cols] · Wᵀ (+ bias[rows] if given). pool may be null (single thread).
// For quantized W the activations are rounded once per call to int8 in blocks of 32 (one fp32
// scale per block, as in Q8_0) and the products are exact int8 dot products; fp32 otherwise.
// Results are bit-identical for any thread count.
void matmul(const float* x, int64_t m, const WeightMatrix& w, const float* bias, float* y,
            ThreadPool* pool);

// Copies row `row` of w into out[cols] as fp32 (embedding lookup). Any format.
void gather_row(const WeightMatrix& w, int64_t row, float* out);

// out[i] = x[i] / rms(x) * weight[i] over n elements (out may alias x).
void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out);
// out[i] = (x[i] - mean) / sqrt(var + eps) * weight[i] + bias[i] (out may alias x).
void layer_norm(const float* x, const float* weight, const float* bias, int64_t n, float eps, float* out);

// gate[i] = silu(gate[i]) * up[i]
void silu_mul(float* gate, const float* up, int64_t n);
// In-place GELU, tanh approximation (PyTorch gelu(approximate="tanh")).
void gelu_tanh(float* x, int64_t n);
// In-place exact GELU (erf).
void gelu_erf(float* x, int64_t n);

// x[i] += y[i]
void add(float* x, const float* y, int64_t n);

// Rotates pairs (x[i], x[i + half]) by angle (cos[i], sin[i]) for i < half: the
// "rotate_half" RoPE convention of Hugging Face models. x has 2*half elements.
void rope_rotate_half(float* x, const float* cos, const float* sin, int64_t half);

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

// Writes src[n] into dst as n elements of type t (the same bytes at every ISA level).
void store_kv_row(const float* src, int64_t n, KvType t, void* dst);
// Reads n elements of type t back as fp32 (exactly the values attention computes with).
void load_kv_row(const void* src, int64_t n, KvType t, float* dst);

// Scaled dot-product attention for one head, streaming over keys with an online softmax
// (no [q_len, kv_len] buffer). q: [q_len, d] with row stride q_stride; k, v: [kv_len, d] rows
// of kv_type elements starting at the given pointers (kF32: const float*), row strides
// k_stride/v_stride in ELEMENTS; out: [q_len, d] with row stride out_stride. If causal, query i
// attends to keys 0..(causal_offset + i) inclusive. K/V are converted to fp32 in registers.
//
// Grouped-query attention: with q_heads > 1 the call covers q_heads query heads that share
// these k/v (head h's queries start at q + h * q_head_stride and its output at
// out + h * out_head_stride; every head has the same positions). One pass over K/V then
// serves all of them, which is what makes decode attention cheap: prefer one call per KV head.
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
void attention(const float* q, const void* k, const void* v, float* out, const AttentionShape& s);

// ---- Instruction-set selection -------------------------------------------------------------
// kSSE4 uses 128-bit SIMD for the float kernels (the int8 ones run the scalar code);
// kAVX2 needs AVX2+FMA+F16C; kAVX512 needs AVX-512 F/BW/VL/DQ + VNNI.
enum class Isa : uint8_t { kScalar = 0, kSSE4 = 1, kAVX2 = 2, kAVX512 = 3 };
std::string_view isa_name(Isa isa);
Isa detected_isa();  // the best level this CPU supports
Isa active_isa();    // the level in use: min(detected, QVL_MAX_ISA env var, set_max_isa)
// Caps the level used from now on (tests and benchmarks): min(isa, detected, QVL_MAX_ISA);
// returns the level now active. Not to be called while kernels run on other threads.
// QVL_MAX_ISA=scalar|sse4|avx2|avx512 caps the whole process (read once, at first use).
Isa set_max_isa(Isa isa);

}  // namespace qvl::kernels
