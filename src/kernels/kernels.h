// Numeric kernels. They know nothing about models: plain arrays, sizes and a thread pool.
// Every kernel has a scalar reference (kernels/reference.h) that tests compare against.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace qvl {
class ThreadPool;
}

namespace qvl::kernels {

// A weight matrix W[rows, cols] as stored (row-major; rows = output features, cols = input
// features, the nn.Linear layout). The data is not owned: it points into the mapped file or
// into a buffer owned by whoever built the matrix.
struct WeightMatrix {
  DType dtype = DType::kF32;  // F32, F16 or BF16
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;
};

// y[m, rows] = x[m, cols] · Wᵀ (+ bias[rows] if given). pool may be null (single thread).
void matmul(const float* x, int64_t m, const WeightMatrix& w, const float* bias, float* y,
            ThreadPool* pool);

// Copies row `row` of w into out[cols] as fp32 (embedding lookup).
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

// Scaled dot-product attention for one head, streaming over keys with an online softmax
// (no [q_len, kv_len] buffer). q: [q_len, d] with row stride q_stride; k, v: [kv_len, d] with
// row strides; out: [q_len, d] with row stride out_stride. If causal, query i attends to keys
// 0..(causal_offset + i) inclusive.
struct AttentionShape {
  int64_t q_len = 0, kv_len = 0, head_dim = 0;
  int64_t q_stride = 0, k_stride = 0, v_stride = 0, out_stride = 0;
  float scale = 1.0f;
  bool causal = false;
  int64_t causal_offset = 0;
};
void attention(const float* q, const float* k, const float* v, float* out, const AttentionShape& s);

}  // namespace qvl::kernels
