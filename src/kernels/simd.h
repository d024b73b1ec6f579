// Internal: entry points of the Highway-dispatched float kernels (simd_hwy.cpp) and of the
// scalar row-range helpers. Each *_simd function runs the best Highway target allowed by the
// active ISA level (see set_max_isa); callers handle Isa::kScalar themselves.
#pragma once

#include <cstdint>

#include "kernels/types.h"

namespace qvl::kernels::detail {

// Restricts Highway's dynamic dispatch to targets at or below `isa` (and supported here).
void hwy_limit_targets(Isa isa);

// Dense W (F32/F16/BF16): y rows [r0, r1) of y[m, rows] = x · Wᵀ + bias.
void dense_matmul_scalar(const WeightMatrix& w, const float* x, int64_t m, const float* bias, float* y,
                         int64_t r0, int64_t r1);
void dense_matvec_simd(const WeightMatrix& w, const float* x, const float* bias, float* y, int64_t r0, int64_t r1);
// m > 1: blocked (packs panels of W to fp32 in thread-local scratch). r0 must be a multiple of
// dense_gemm_panel_rows() unless it is the start.
void dense_gemm_simd(const WeightMatrix& w, const float* x, int64_t m, const float* bias, float* y, int64_t r0,
                     int64_t r1);
int64_t dense_gemm_panel_rows();

// Same bytes as quantize_acts_scalar.
void quantize_acts_simd(const float* x, int64_t m, int64_t k, int32_t zero_point, int8_t* q, float* d,
                        int32_t* init, float* ds);

void convert_row_simd(DType t, const void* src, float* dst, int64_t n);
void rms_norm_simd(const float* x, const float* weight, int64_t n, float eps, float* out);
void layer_norm_simd(const float* x, const float* weight, const float* bias, int64_t n, float eps, float* out);
void silu_mul_simd(float* gate, const float* up, int64_t n);
void gelu_tanh_simd(float* x, int64_t n);
void gelu_erf_simd(float* x, int64_t n);
void add_simd(float* x, const float* y, int64_t n);
void rope_rotate_half_simd(float* x, const float* cos, const float* sin, int64_t half);
void attention_simd(const float* q, const void* k, const void* v, float* out, const AttentionShape& s);
// Same bytes as ref::store_kv_row.
void store_kv_row_simd(const float* src, int64_t n, KvType t, void* dst);

}  // namespace qvl::kernels::detail
