// Portable implementations. The SIMD paths (runtime-dispatched) replace these where they
// exist; these remain the references that tests compare against.
#include "kernels/kernels.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"

namespace qvl::kernels {

namespace {

// Converts a run of stored weights to fp32.
inline void load_row(const WeightMatrix& w, int64_t row, int64_t col0, int64_t n, float* out) {
  const size_t es = dtype_size(w.dtype);
  convert_to_f32(w.dtype, static_cast<const char*>(w.data) + (row * w.cols + col0) * es, out, static_cast<size_t>(n));
}

}  // namespace

void matmul(const float* x, int64_t m, const WeightMatrix& w, const float* bias, float* y, ThreadPool* pool) {
  const int64_t n = w.rows, k = w.cols;
  auto work = [&](int64_t r0, int64_t r1, int) {
    std::vector<float> wrow(static_cast<size_t>(k));
    for (int64_t r = r0; r < r1; ++r) {
      load_row(w, r, 0, k, wrow.data());
      const float b = bias ? bias[r] : 0.0f;
      for (int64_t i = 0; i < m; ++i) {
        const float* xi = x + i * k;
        float acc = 0.0f;
        for (int64_t c = 0; c < k; ++c) acc += xi[c] * wrow[c];
        y[i * n + r] = acc + b;
      }
    }
  };
  if (pool) pool->parallel_for(n, work, 16);
  else work(0, n, 0);
}

void gather_row(const WeightMatrix& w, int64_t row, float* out) {
  QVL_ASSERT(row >= 0 && row < w.rows);
  load_row(w, row, 0, w.cols, out);
}

void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float inv = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = weight[i] * (x[i] * inv);
}

void layer_norm(const float* x, const float* weight, const float* bias, int64_t n, float eps, float* out) {
  double mean = 0.0;
  for (int64_t i = 0; i < n; ++i) mean += x[i];
  mean /= static_cast<double>(n);
  double var = 0.0;
  for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= static_cast<double>(n);
  const float inv = 1.0f / std::sqrt(static_cast<float>(var) + eps);
  const float mu = static_cast<float>(mean);
  for (int64_t i = 0; i < n; ++i) out[i] = (x[i] - mu) * inv * weight[i] + bias[i];
}

void silu_mul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void gelu_tanh(float* x, int64_t n) {
  constexpr float kC = 0.7978845608028654f;  // sqrt(2/pi)
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    x[i] = 0.5f * v * (1.0f + std::tanh(kC * (v + 0.044715f * v * v * v)));
  }
}

void gelu_erf(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.7071067811865476f));
}

void add(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void rope_rotate_half(float* x, const float* cos, const float* sin, int64_t half) {
  for (int64_t i = 0; i < half; ++i) {
    const float a = x[i], b = x[i + half];
    x[i] = a * cos[i] - b * sin[i];
    x[i + half] = b * cos[i] + a * sin[i];
  }
}

void attention(const float* q, const float* k, const float* v, float* out, const AttentionShape& s) {
  const int64_t d = s.head_dim;
  std::vector<float> acc(static_cast<size_t>(d));
  for (int64_t i = 0; i < s.q_len; ++i) {
    const float* qi = q + i * s.q_stride;
    const int64_t last = s.causal ? std::min(s.kv_len - 1, s.causal_offset + i) : s.kv_len - 1;
    float running_max = -INFINITY, denom = 0.0f;
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t j = 0; j <= last; ++j) {
      const float* kj = k + j * s.k_stride;
      float score = 0.0f;
      for (int64_t c = 0; c < d; ++c) score += qi[c] * kj[c];
      score *= s.scale;
      if (score > running_max) {  // rescale what was accumulated under the old maximum
        const float correction = std::exp(running_max - score);
        denom *= correction;
        for (int64_t c = 0; c < d; ++c) acc[c] *= correction;
        running_max = score;
      }
      const float p = std::exp(score - running_max);
      denom += p;
      const float* vj = v + j * s.v_stride;
      for (int64_t c = 0; c < d; ++c) acc[c] += p * vj[c];
    }
    float* oi = out + i * s.out_stride;
    const float inv = denom > 0.0f ? 1.0f / denom : 0.0f;
    for (int64_t c = 0; c < d; ++c) oi[c] = acc[c] * inv;
  }
}

}  // namespace qvl::kernels
