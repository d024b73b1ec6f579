// Scalar reference implementations of every kernel in kernels.h: plain loops, no SIMD, no
// threads. They define the semantics the dispatched SIMD kernels are tested against, and they
// are what runs when the active ISA is Isa::kScalar.
#pragma once

#include "kernels/types.h"

namespace qvl::kernels::ref {

// Quantized W: the activations are rounded exactly as the SIMD kernels round them
// (detail::quantize_acts_scalar) and the int8 dot products are exact.
void matmul(const float* x, int64_t m, const WeightMatrix& w, const float* bias, float* y);
void gather_row(const WeightMatrix& w, int64_t row, float* out);
void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out);
void layer_norm(const float* x, const float* weight, const float* bias, int64_t n, float eps, float* out);
void silu_mul(float* gate, const float* up, int64_t n);
void gelu_tanh(float* x, int64_t n);
void gelu_erf(float* x, int64_t n);
void add(float* x, const float* y, int64_t n);
void rope_rotate_half(float* x, const float* cos, const float* sin, int64_t half);
void attention(const float* q, const void* k, const void* v, float* out, const AttentionShape& s);
void store_kv_row(const float* src, int64_t n, KvType t, void* dst);
// kernels.h's pack_attention_kv_bf16 (the one packing every level reads) and attention_bf16.
void pack_attention_kv_bf16(const float* k, int64_t k_stride, const float* v, int64_t v_stride, int64_t kv_len,
                            int64_t head_dim, uint16_t* packed);
void attention_bf16(const float* q, const uint16_t* packed, float* out, const AttentionShape& s);
void load_kv_row(const void* src, int64_t n, KvType t, float* dst);

}  // namespace qvl::kernels::ref
