#include "model/text/text_attention.h"

#include <cmath>
#include <vector>

namespace qvl {

void text_attention_forward(const TextAttentionWeights& w, const TextConfig& c, const TextRotary& rotary,
                            const float* x, int64_t n, const Position3* positions, KvCache& cache,
                            int64_t layer, int64_t start, float* out, float* scratch, ThreadPool* pool) {
  const int64_t d = c.head_dim, n_heads = c.num_attention_heads, n_kv = c.num_key_value_heads;
  const int64_t q_dim = n_heads * d, kv_dim = n_kv * d, half = d / 2;
  const float eps = static_cast<float>(c.rms_norm_eps);
  float* q = scratch;
  float* k = q + n * q_dim;
  float* v = k + n * kv_dim;
  float* attn = v + n * kv_dim;

  kernels::matmul(x, n, w.q_proj, nullptr, q, pool);
  kernels::matmul(x, n, w.k_proj, nullptr, k, pool);
  kernels::matmul(x, n, w.v_proj, nullptr, v, pool);

  // Per-head norm and rotary, then K/V into the cache.
  std::vector<float> cos(static_cast<size_t>(half)), sin(static_cast<size_t>(half));
  for (int64_t i = 0; i < n; ++i) {
    rotary.angles(positions[i], cos.data(), sin.data());
    for (int64_t h = 0; h < n_heads; ++h) {
      float* qh = q + i * q_dim + h * d;
      kernels::rms_norm(qh, w.q_norm.data(), d, eps, qh);
      kernels::rope_rotate_half(qh, cos.data(), sin.data(), half);
    }
    float* ki = k + i * kv_dim;
    for (int64_t h = 0; h < n_kv; ++h) {
      float* kh = ki + h * d;
      kernels::rms_norm(kh, w.k_norm.data(), d, eps, kh);
      kernels::rope_rotate_half(kh, cos.data(), sin.data(), half);
    }
    kernels::store_kv_row(ki, kv_dim, cache.type(), cache.keys(layer, start + i));
    kernels::store_kv_row(v + i * kv_dim, kv_dim, cache.type(), cache.values(layer, start + i));
  }

  const int64_t group = n_heads / n_kv;
  kernels::AttentionShape s;
  s.q_len = n;
  s.kv_len = start + n;
  s.head_dim = d;
  s.q_stride = q_dim;
  s.k_stride = s.v_stride = kv_dim;  // elements
  s.kv_type = cache.type();
  s.out_stride = q_dim;
  s.scale = 1.0f / std::sqrt(static_cast<float>(d));
  s.causal = true;
  s.causal_offset = start;
  // One call per KV head covers its whole query group: each K/V row is read once for all of them.
  s.q_heads = group;
  s.q_head_stride = d;
  s.out_head_stride = d;
  auto kv_heads = [&](int64_t h0, int64_t h1, int) {
    for (int64_t kvh = h0; kvh < h1; ++kvh)
      kernels::attention(q + kvh * group * d, cache.keys(layer, 0) + cache.head_offset(kvh),
                         cache.values(layer, 0) + cache.head_offset(kvh),
                         attn + kvh * group * d, s);
  };
  if (pool) pool->parallel_for(n_kv, kv_heads);
  else kv_heads(0, n_kv, 0);

  kernels::matmul(attn, n, w.o_proj, nullptr, out, pool);
}

}  // namespace qvl
