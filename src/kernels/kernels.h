// Numeric kernels. They know nothing about models: plain arrays, sizes and a thread pool.
// Every kernel has a scalar reference (kernels/reference.h) that tests compare against; the
// public functions below pick a SIMD implementation at run time (AVX-512 VNNI, AVX2, SSE4 or
// the portable scalar code), so the binary never assumes the build machine's CPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "core/dtype.h"
#include "core/function_ref.h"
#include "kernels/types.h"  // re-exported: WeightFormat, WeightMatrix, KvType, AttentionShape, Isa

namespace qvl {
class ThreadPool;
}

namespace qvl::kernels {

// Bytes that `data` spans for a matrix of this format and shape (dtype used when kDense).
size_t weight_storage_bytes(WeightFormat format, DType dtype, int64_t rows, int64_t cols);
inline size_t weight_storage_bytes(const WeightMatrix& w) {
  return weight_storage_bytes(w.format, w.dtype, w.rows, w.cols);
}

class QuantizedMatrix;
// Quantizes src (any format; quantized sources are dequantized first) into `format`.
// Throws qvl::Error (kInvalidArgument) if !can_quantize(format, rows, cols) or format is kDense.
// Parallel over groups of 16 rows when pool is given. Deterministic (thread-count independent).
QuantizedMatrix quantize_matrix(const WeightMatrix& src, WeightFormat format, ThreadPool* pool = nullptr);

// Packs weights that are already quantized as blocks of 32 (one fp16 scale + 32 codes per block,
// as llama.cpp's Q8_0 and Q4_0 store them) without rounding anything: row_source(row, scales,
// codes) fills the row's cols/32 scales (fp16 bits) and cols codes — Q8_0: int8 value + 128
// (value = scale × (code − 128)); Q4_0: 0..15 (value = scale × (code − 8)). format is kQ8_0 or
// kQ4_0; the shape must satisfy can_quantize. row_source may be called from pool threads.
QuantizedMatrix pack_quantized_blocks(WeightFormat format, int64_t rows, int64_t cols,
                                      FunctionRef<void(int64_t, uint16_t*, uint8_t*)> row_source,
                                      ThreadPool* pool = nullptr);

// Packs ggml Q4_K or Q6_K super-blocks as they are (format kGgmlQ4_K / kGgmlQ6_K; ggml's rows hold
// whole super-blocks of 256, qvl's layout also takes a last partial one, cols % 32 == 0):
// row_source(row, out) fills out's arrays for that row (ceil(cols / 256) super-blocks). The packed matrix holds
// exactly ggml's weights (gather_row gives ggml's dequantization bit for bit). row_source may be
// called from pool threads.
QuantizedMatrix pack_ggml_k_blocks(WeightFormat format, int64_t rows, int64_t cols,
                                   FunctionRef<void(int64_t, const GgmlKRow&)> row_source,
                                   ThreadPool* pool = nullptr);

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
  friend QuantizedMatrix pack_quantized_blocks(WeightFormat, int64_t, int64_t,
                                               FunctionRef<void(int64_t, uint16_t*, uint8_t*)>, ThreadPool*);
  friend QuantizedMatrix pack_ggml_k_blocks(WeightFormat, int64_t, int64_t, FunctionRef<void(int64_t, const GgmlKRow&)>,
                                            ThreadPool*);
  // A 64-byte aligned buffer, not yet written: the packers zero each row group in the worker that
  // fills it, so the first touch of a 2.5 GB model's pages (faults, zeroing) runs on every thread.
  static QuantizedMatrix uninitialized(size_t bytes);
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

// matmul for several matrices over the same activations (q/k/v, gate/up), with the same bits as
// one matmul each; consecutive quantized matrices of one format and width share one rounding of
// x and one parallel region over all their row groups (fewer fork/joins, and one weight stream
// runs on into the next matrix instead of starting cold). An observer sees one record per such
// run, its rows the sum of the matrices'.
struct MatmulTarget {
  const WeightMatrix* w = nullptr;
  const float* bias = nullptr;
  float* y = nullptr;  // [m, w->rows]
};
void matmul_fused(const float* x, int64_t m, std::span<const MatmulTarget> targets, ThreadPool* pool);

// What matmul reports to an observer: the matrix, the activation rows and the call's wall time.
struct MatmulRecord {
  int64_t m = 0, rows = 0, cols = 0;
  WeightFormat format = WeightFormat::kDense;
  DType dtype = DType::kF32;  // dense matrices
  size_t weight_bytes = 0;    // the matrix as held (what one call streams)
  double seconds = 0;
};
// Sets the function that every matmul calls, on its calling thread, when it is done (nullptr:
// none, the default; then a matmul pays one atomic load). For profiling (qvl bench --profile):
// set it while no matmul runs.
using MatmulObserver = void (*)(const MatmulRecord& record, void* user);
void set_matmul_observer(MatmulObserver observer, void* user);

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
void attention(const float* q, const void* k, const void* v, float* out, const AttentionShape& s);

// ---- bf16 attention: long non-causal sequences (the vision tower) ---------------------------
// attention() for one head, not causal, with fp32 q/k/v rounded to bf16 (nearest even) and the
// products summed in fp32: scores tile by tile (flash-style, no [q_len, kv_len] buffer), an fp32
// online softmax, the probabilities rounded to bf16 for P·V. AVX512_BF16 runs it on vdpbf16ps;
// AVX2 and the scalar code (Isa::kScalar, kSSE4) compute the same roundings with fp32 FMAs.
// K and V of a head are packed once (pack_attention_kv_bf16) and read by every query block.
// Accuracy against attention(): the bound derived in tests/kernels_test.cpp (Bf16Attention).
constexpr int64_t kMaxBf16AttentionHeadDim = 128;
// bf16 elements of one head's packed K and V.
size_t attention_bf16_packed_elems(int64_t kv_len, int64_t head_dim);
// Packs rows k[j * k_stride + c], v[j * v_stride + c] (j < kv_len, c < head_dim, 1 <= head_dim
// <= kMaxBf16AttentionHeadDim) into packed[attention_bf16_packed_elems(kv_len, head_dim)].
void pack_attention_kv_bf16(const float* k, int64_t k_stride, const float* v, int64_t v_stride, int64_t kv_len,
                            int64_t head_dim, uint16_t* packed);
// q: [q_len, head_dim] rows (q_stride), out likewise (out_stride); s.kv_len and s.head_dim as
// packed; s.scale as attention(); s.causal must be false, s.q_heads 1, s.kv_type kF32 (the
// strides of k and v do not apply). Results do not depend on how a head's queries are split
// into calls or threads.
void attention_bf16(const float* q, const uint16_t* packed_kv, float* out, const AttentionShape& s);
// Whether attention_bf16 runs on bf16 dot-product instructions here (AVX512_BF16 and the active
// level avx512).
bool attention_bf16_native();
// Whether attention_bf16 is the faster vision attention at the active level: on vdpbf16ps, and on
// AVX2 (without AVX-512), where its packed-once K/V tiles in fp32 FMAs run ~2.3x the f32 kernel
// (kernel_bench vision_head/n3072: 41 vs 96 ms per head on one core). AVX-512 without
// AVX512_BF16 keeps f32 (not measured).
bool attention_bf16_preferred();

// ---- Instruction-set selection -------------------------------------------------------------
Isa detected_isa();  // the best level this CPU supports
Isa active_isa();    // the level in use: min(detected, QVL_MAX_ISA env var, set_max_isa)
// Caps the level used from now on (tests and benchmarks): min(isa, detected, QVL_MAX_ISA);
// returns the level now active. Not to be called while kernels run on other threads.
// QVL_MAX_ISA=scalar|sse4|avx2|avx512 caps the whole process (read once, at first use).
Isa set_max_isa(Isa isa);

}  // namespace qvl::kernels
