#include "model/text/text_attention.h"

#include <cmath>

#include "core/check.h"

namespace qvl {

int64_t text_attention_scratch(const TextConfig& c, int64_t n) {
  const int64_t q_dim = c.num_attention_heads * c.head_dim, kv_dim = c.num_key_value_heads * c.head_dim;
  return n * (2 * q_dim + 2 * kv_dim + c.head_dim);  // q, k, v, attention output; cos/sin of each row
}

void text_attention_forward(const TextAttentionWeights& w, const TextConfig& c, const TextRotary& rotary,
                            const float* x, int64_t n, const Position3* positions,
                            std::span<const AttentionSegment> segments, int64_t layer, float* out, float* scratch,
                            ThreadPool* pool) {
  const int64_t d = c.head_dim, n_heads = c.num_attention_heads, n_kv = c.num_key_value_heads;
  const int64_t q_dim = n_heads * d, kv_dim = n_kv * d, half = d / 2;
  const float eps = static_cast<float>(c.rms_norm_eps);
  float* q = scratch;
  float* k = q + n * q_dim;
  float* v = k + n * kv_dim;
  float* attn = v + n * kv_dim;
  float* cos = attn + n * q_dim;  // row i: cos at cos + i * d, sin right after

  const kernels::MatmulTarget qkv[] = {{&w.q_proj, nullptr, q}, {&w.k_proj, nullptr, k}, {&w.v_proj, nullptr, v}};
  kernels::matmul_fused(x, n, qkv, pool);

  // Per-head norm and rotary, then K/V into the row's segment's cache; rows are independent.
  for (const AttentionSegment& seg : segments) QVL_ASSERT(seg.cache->size() + seg.rows <= seg.cache->capacity());
  for_each_row(pool, n, 8 * (q_dim + kv_dim), [&](int64_t i0, int64_t i1, int) {
    size_t si = 0;
    for (int64_t i = i0; i < i1; ++i) {
      while (i >= segments[si].first_row + segments[si].rows) ++si;
      const AttentionSegment& seg = segments[si];
      float* cos_i = cos + i * d;
      float* sin_i = cos_i + half;
      rotary.angles(positions[i], cos_i, sin_i);
      for (int64_t h = 0; h < n_heads; ++h) {
        float* qh = q + i * q_dim + h * d;
        kernels::rms_norm(qh, w.q_norm.data(), d, eps, qh);
        kernels::rope_rotate_half(qh, cos_i, sin_i, half);
      }
      float* ki = k + i * kv_dim;
      for (int64_t h = 0; h < n_kv; ++h) {
        float* kh = ki + h * d;
        kernels::rms_norm(kh, w.k_norm.data(), d, eps, kh);
        kernels::rope_rotate_half(kh, cos_i, sin_i, half);
      }
      KvCache& cache = *seg.cache;
      const int64_t j = i - seg.first_row;
      kernels::store_kv_row(ki, kv_dim, cache.type(), cache.keys(layer, cache.size() + j));
      kernels::store_kv_row(v + i * kv_dim, kv_dim, cache.type(), cache.values(layer, cache.size() + j));
    }
  });

  // One attention call per (segment, KV head) covers the head's whole query group, so each K/V
  // row is read once for all of them; the pairs are spread over the threads together.
  const int64_t group = n_heads / n_kv;
  const int64_t n_segments = static_cast<int64_t>(segments.size());
  auto run = [&](int64_t p0, int64_t p1, int) {
    for (int64_t p = p0; p < p1; ++p) {
      const AttentionSegment& seg = segments[static_cast<size_t>(p / n_kv)];
      const int64_t kvh = p % n_kv;
      KvCache& cache = *seg.cache;
      kernels::AttentionShape s;
      s.q_len = seg.rows;
      s.kv_len = cache.size() + seg.rows;
      s.head_dim = d;
      s.q_stride = q_dim;
      s.k_stride = s.v_stride = kv_dim;  // elements
      s.kv_type = cache.type();
      s.out_stride = q_dim;
      s.scale = 1.0f / std::sqrt(static_cast<float>(d));
      s.causal = true;
      s.causal_offset = cache.size();
      s.q_heads = group;
      s.q_head_stride = d;
      s.out_head_stride = d;
      const int64_t row0 = seg.first_row * q_dim + kvh * group * d;
      kernels::attention(q + row0, cache.keys(layer, 0) + cache.head_offset(kvh),
                         cache.values(layer, 0) + cache.head_offset(kvh), attn + row0, s);
    }
  };
  // Chunked: each pair's result does not depend on the split, and a thread that another process
  // preempts holds up one pair, not half of them.
  if (pool) pool->parallel_for_chunked(n_segments * n_kv, run);
  else run(0, n_segments * n_kv, 0);

  kernels::matmul(attn, n, w.o_proj, nullptr, out, pool);
}

}  // namespace qvl
