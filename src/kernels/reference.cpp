// Portable scalar implementations: the references the SIMD kernels are tested against, and the
// code that runs when no SIMD level is available (Isa::kScalar).
#include "kernels/reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "kernels/attention_bf16.h"
#include "kernels/quant.h"
#include "kernels/simd.h"

namespace qvl::kernels {

namespace detail {

void dense_matmul_scalar(const WeightMatrix& w, const float* x, int64_t m, const float* bias, float* y,
                         int64_t r0, int64_t r1) {
  const int64_t n = w.rows, k = w.cols;
  const size_t es = dtype_size(w.dtype);
  std::vector<float> wrow(static_cast<size_t>(k));
  for (int64_t r = r0; r < r1; ++r) {
    convert_to_f32(w.dtype, static_cast<const char*>(w.data) + static_cast<size_t>(r * k) * es, wrow.data(),
                   static_cast<size_t>(k));
    const float b = bias ? bias[r] : 0.0f;
    for (int64_t i = 0; i < m; ++i) {
      const float* xi = x + i * k;
      float acc = 0.0f;
      for (int64_t c = 0; c < k; ++c) acc += xi[c] * wrow[c];
      y[i * n + r] = acc + b;
    }
  }
}

void quantize_acts_scalar(const float* x, int64_t m, int64_t k, int32_t zero_point, int8_t* q, float* d,
                          int32_t* init, float* ds) {
  const int64_t nb = k / kBlock;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t b = 0; b < nb; ++b) {
      const float* xb = x + i * k + b * kBlock;
      int8_t* qb = q + i * k + b * kBlock;
      float amax = 0.0f;
      for (int64_t c = 0; c < kBlock; ++c) amax = std::max(amax, std::fabs(xb[c]));
      const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
      int32_t sum = 0;
      for (int64_t c = 0; c < kBlock; ++c) {
        float r = std::nearbyint(xb[c] * id);
        r = std::min(127.0f, std::max(-127.0f, r));
        qb[c] = static_cast<int8_t>(r);
        sum += qb[c];
      }
      const float db = amax / 127.0f;
      d[i * nb + b] = db;
      init[i * nb + b] = -zero_point * sum;
      ds[i * nb + b] = db * static_cast<float>(sum);
    }
  }
}

namespace {

inline float bf16_at(const uint8_t* p, int64_t i) {
  uint16_t h;
  std::memcpy(&h, p + 2 * i, 2);
  return bf16_to_f32(h);
}
inline float f16_at(const uint8_t* p, int64_t i) {
  uint16_t h;
  std::memcpy(&h, p + 2 * i, 2);
  return f16_to_f32(h);
}

}  // namespace

void qmatmul_scalar(const QLayout& L, const uint8_t* data, const QActs& a, const float* bias, float* y,
                    int64_t g0, int64_t g1) {
  const int64_t nb = L.nb, n = L.rows;
  for (int64_t g = g0; g < g1; ++g) {
    const uint8_t* grp = data + static_cast<size_t>(g) * L.group_bytes;
    for (int64_t r = 0; r < kGroupRows; ++r) {
      const int64_t row = g * kGroupRows + r;
      if (row >= n) break;
      for (int64_t i = 0; i < a.m; ++i) {
        const int8_t* xq = a.q + i * a.k;
        float acc = 0.0f;
        for (int64_t b = 0; b < nb; ++b) {
          const uint8_t* codes = grp + static_cast<size_t>(b) * L.codes_per_block;
          const int8_t* xb = xq + b * kBlock;
          const float dx = a.d[i * nb + b];
          int32_t isum = 0;
          switch (L.format) {
            case WeightFormat::kQ8_0:
              for (int64_t c = 0; c < kBlock; ++c) isum += (code_q8(codes, r, c) - 128) * xb[c];
              acc += static_cast<float>(isum) * (f16_at(grp + L.scales_off, b * kGroupRows + r) * dx);
              break;
            case WeightFormat::kQ4_0:
              for (int64_t c = 0; c < kBlock; ++c) isum += (code_q4(codes, r, c) - 8) * xb[c];
              acc += static_cast<float>(isum) * (f16_at(grp + L.scales_off, b * kGroupRows + r) * dx);
              break;
            case WeightFormat::kGgmlIQ4_XS: {
              for (int64_t c = 0; c < kBlock; ++c) isum += kIq4Levels[code_q4(codes, r, c)] * xb[c];
              const float d = f16_at(grp + L.scales_off, (b / kSuperBlocks) * kGroupRows + r);
              const int ls = grp[L.sc_off + b * kGroupRows + r];
              acc += static_cast<float>(isum) * (d * static_cast<float>(ls - 32) * dx);
              break;
            }
            case WeightFormat::kQ4_K:
            case WeightFormat::kGgmlQ4_K:
            case WeightFormat::kGgmlQ5_K: {
              for (int64_t c = 0; c < kBlock; ++c)
                isum += (L.format == WeightFormat::kGgmlQ5_K ? code_q5(codes, r, c) : code_q4(codes, r, c)) * xb[c];
              const int64_t sb = b / kSuperBlocks;
              const bool bf16 = L.format == WeightFormat::kQ4_K;
              const float dsc = (bf16 ? bf16_at(grp + L.scales_off, sb * kGroupRows + r)
                                      : f16_at(grp + L.scales_off, sb * kGroupRows + r)) *
                                static_cast<float>(grp[L.sc_off + b * kGroupRows + r]);
              const float mmn = (bf16 ? bf16_at(grp + L.dmin_off, sb * kGroupRows + r)
                                      : f16_at(grp + L.dmin_off, sb * kGroupRows + r)) *
                                static_cast<float>(grp[L.mn_off + b * kGroupRows + r]);
              acc += static_cast<float>(isum) * (dsc * dx);
              acc -= mmn * a.ds[i * nb + b];
              break;
            }
            case WeightFormat::kGgmlQ6_K: {
              const float d = f16_at(grp + L.scales_off, (b / kSuperBlocks) * kGroupRows + r);
              for (int h = 0; h < 2; ++h) {
                int32_t half = 0;
                for (int64_t c = 16 * h; c < 16 * h + 16; ++c) half += (code_q6(codes, r, c) - 32) * xb[c];
                const auto sc = static_cast<int8_t>(grp[L.sc_off + (2 * b + h) * kGroupRows + r]);
                acc += static_cast<float>(half) * (d * static_cast<float>(sc) * dx);
              }
              break;
            }
            default:
              QVL_ASSERT(false);
          }
        }
        y[i * n + row] = acc + (bias ? bias[row] : 0.0f);
      }
    }
  }
}

}  // namespace detail

namespace ref {

void matmul(const float* x, int64_t m, const WeightMatrix& w, const float* bias, float* y) {
  if (!w.quantized()) {
    detail::dense_matmul_scalar(w, x, m, bias, y, 0, w.rows);
    return;
  }
  const detail::QLayout L = detail::q_layout(w.format, w.rows, w.cols);
  const int64_t k = w.cols, nb = L.nb;
  std::vector<int8_t> q(static_cast<size_t>(m * k));
  std::vector<float> d(static_cast<size_t>(m * nb)), ds(static_cast<size_t>(m * nb));
  std::vector<int32_t> init(static_cast<size_t>(m * nb));
  detail::quantize_acts_scalar(x, m, k, 0, q.data(), d.data(), init.data(), ds.data());
  detail::QActs a{q.data(), d.data(), init.data(), ds.data(), nullptr, m, k, nb};
  detail::qmatmul_scalar(L, static_cast<const uint8_t*>(w.data), a, bias, y, 0, L.groups);
}

void gather_row(const WeightMatrix& w, int64_t row, float* out) {
  QVL_ASSERT(row >= 0 && row < w.rows);
  if (w.quantized()) {
    detail::dequantize_row(detail::q_layout(w.format, w.rows, w.cols), static_cast<const uint8_t*>(w.data), row, out);
    return;
  }
  const size_t es = dtype_size(w.dtype);
  convert_to_f32(w.dtype, static_cast<const char*>(w.data) + static_cast<size_t>(row * w.cols) * es, out,
                 static_cast<size_t>(w.cols));
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

void store_kv_row(const float* src, int64_t n, KvType t, void* dst) {
  switch (t) {
    case KvType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case KvType::kF16: {
      auto* out = static_cast<uint8_t*>(dst);
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_f16(src[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      return;
    }
    case KvType::kQ8_0: {
      QVL_ASSERT(n % kKvBlock == 0);
      auto* blk = static_cast<uint8_t*>(dst);
      for (int64_t b = 0; b < n; b += kKvBlock, blk += kv_bytes(KvType::kQ8_0, kKvBlock)) {
        float amax = 0.0f;
        for (int64_t c = 0; c < kKvBlock; ++c) amax = std::max(amax, std::fabs(src[b + c]));
        const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        const float d = amax / 127.0f;
        std::memcpy(blk, &d, 4);
        for (int64_t c = 0; c < kKvBlock; ++c) {
          const float r = std::min(127.0f, std::max(-127.0f, std::nearbyint(src[b + c] * id)));
          blk[4 + c] = static_cast<uint8_t>(static_cast<int8_t>(r));
        }
      }
      return;
    }
  }
  QVL_ASSERT(false);
}

void load_kv_row(const void* src, int64_t n, KvType t, float* dst) {
  switch (t) {
    case KvType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case KvType::kF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = detail::f16_at(static_cast<const uint8_t*>(src), i);
      return;
    case KvType::kQ8_0: {
      QVL_ASSERT(n % kKvBlock == 0);
      const auto* blk = static_cast<const uint8_t*>(src);
      for (int64_t b = 0; b < n; b += kKvBlock, blk += kv_bytes(KvType::kQ8_0, kKvBlock)) {
        float d;
        std::memcpy(&d, blk, 4);
        for (int64_t c = 0; c < kKvBlock; ++c) dst[b + c] = static_cast<float>(static_cast<int8_t>(blk[4 + c])) * d;
      }
      return;
    }
  }
  QVL_ASSERT(false);
}

void attention(const float* q, const void* k, const void* v, float* out, const AttentionShape& s) {
  const int64_t d = s.head_dim;
  const size_t k_row_bytes = kv_bytes(s.kv_type, s.k_stride), v_row_bytes = kv_bytes(s.kv_type, s.v_stride);
  std::vector<float> acc(static_cast<size_t>(d)), kj(static_cast<size_t>(d)), vj(static_cast<size_t>(d));
  for (int64_t h = 0; h < std::max<int64_t>(1, s.q_heads); ++h) {
    for (int64_t i = 0; i < s.q_len; ++i) {
      const float* qi = q + h * s.q_head_stride + i * s.q_stride;
      const int64_t last = s.causal ? std::min(s.kv_len - 1, s.causal_offset + i) : s.kv_len - 1;
      float running_max = -INFINITY, denom = 0.0f;
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t j = 0; j <= last; ++j) {
        ref::load_kv_row(static_cast<const uint8_t*>(k) + static_cast<size_t>(j) * k_row_bytes, d, s.kv_type, kj.data());
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
        ref::load_kv_row(static_cast<const uint8_t*>(v) + static_cast<size_t>(j) * v_row_bytes, d, s.kv_type, vj.data());
        for (int64_t c = 0; c < d; ++c) acc[c] += p * vj[c];
      }
      float* oi = out + h * s.out_head_stride + i * s.out_stride;
      const float inv = denom > 0.0f ? 1.0f / denom : 0.0f;
      for (int64_t c = 0; c < d; ++c) oi[c] = acc[c] * inv;
    }
  }
}


void pack_attention_kv_bf16(const float* k, int64_t k_stride, const float* v, int64_t v_stride, int64_t kv_len,
                            int64_t head_dim, uint16_t* packed) {
  // Written as 32-bit words (a bf16 pair: low half first); keys, dimensions past the ends are 0.
  const detail::Bf16KvLayout L = detail::bf16_kv_layout(kv_len, head_dim);
  const int64_t d = head_dim;
  auto pair = [](float lo, float hi) {
    return static_cast<uint32_t>(f32_to_bf16(lo)) | static_cast<uint32_t>(f32_to_bf16(hi)) << 16;
  };
  // K: line (block, p), lane j % 16 = key j's pair (2p, 2p + 1).
  uint32_t* kw = reinterpret_cast<uint32_t*>(packed);
  for (int64_t j = 0; j < L.blocks * 16; ++j) {
    uint32_t* out = kw + (j / 16) * L.pairs * 16 + j % 16;
    if (j >= kv_len) {
      for (int64_t p = 0; p < L.pairs; ++p) out[p * 16] = 0;
      continue;
    }
    const float* kj = k + j * k_stride;
    for (int64_t p = 0; p < d / 2; ++p) out[p * 16] = pair(kj[2 * p], kj[2 * p + 1]);
    if (d % 2) out[(d / 2) * 16] = pair(kj[d - 1], 0.0f);
  }
  // V: line (key pair i, x), lane c % 16 = (v[2i][c], v[2i + 1][c]) with c = 16x + lane.
  uint32_t* vw = reinterpret_cast<uint32_t*>(packed + L.k_elems());
  for (int64_t i = 0; i < L.blocks * 8; ++i) {
    uint32_t* out = vw + i * L.lines * 16;
    const float* a = 2 * i < kv_len ? v + 2 * i * v_stride : nullptr;
    const float* b = 2 * i + 1 < kv_len ? v + (2 * i + 1) * v_stride : nullptr;
    int64_t c = 0;
    if (a && b)
      for (; c < d; ++c) out[c] = pair(a[c], b[c]);
    else if (a)
      for (; c < d; ++c) out[c] = pair(a[c], 0.0f);
    for (; c < L.lines * 16; ++c) out[c] = 0;
  }
}

// The algorithm of kernels/attention_bf16.h in plain loops, one query at a time, sums in index
// order; exp2 is the C library's.
void attention_bf16(const float* q, const uint16_t* packed, float* out, const AttentionShape& s) {
  const int64_t d = s.head_dim, n = s.kv_len;
  const detail::Bf16KvLayout L = detail::bf16_kv_layout(n, d);
  const uint16_t* pk = packed;
  const uint16_t* pv = packed + L.k_elems();
  auto round_bf16 = [](float x) { return bf16_to_f32(f32_to_bf16(x)); };
  std::vector<float> qh(static_cast<size_t>(d)), acc(static_cast<size_t>(d)), p(detail::kBf16KeyTile);
  const float qscale = s.scale * detail::kLog2e;
  for (int64_t i = 0; i < s.q_len; ++i) {
    for (int64_t c = 0; c < d; ++c) qh[static_cast<size_t>(c)] = round_bf16(q[i * s.q_stride + c] * qscale);
    std::fill(acc.begin(), acc.end(), 0.0f);
    float m = -INFINITY, l = 0.0f;
    for (int64_t j0 = 0; j0 < n; j0 += detail::kBf16KeyTile) {
      const int64_t tk = std::min(detail::kBf16KeyTile, n - j0);
      float tmax = -INFINITY;
      for (int64_t jj = 0; jj < tk; ++jj) {
        const int64_t j = j0 + jj;
        float sj = 0.0f;
        for (int64_t c = 0; c < d; ++c)
          sj += qh[static_cast<size_t>(c)] * bf16_to_f32(pk[((j / 16) * L.pairs + c / 2) * 32 + 2 * (j % 16) + c % 2]);
        p[static_cast<size_t>(jj)] = sj;
        tmax = std::max(tmax, sj);
      }
      if (tmax > m) {  // rescale what was summed under the old maximum
        if (m > -INFINITY) {
          const float corr = std::exp2(m - tmax);
          l *= corr;
          for (float& a : acc) a *= corr;
        }
        m = tmax;
      }
      for (int64_t jj = 0; jj < tk; ++jj) {
        const int64_t j = j0 + jj;
        const float pj = round_bf16(std::exp2(p[static_cast<size_t>(jj)] - m));
        l += pj;
        for (int64_t c = 0; c < d; ++c)
          acc[static_cast<size_t>(c)] += pj * bf16_to_f32(pv[((j / 2) * L.lines + c / 16) * 32 + 2 * (c % 16) + j % 2]);
      }
    }
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    for (int64_t c = 0; c < d; ++c) out[i * s.out_stride + c] = acc[static_cast<size_t>(c)] * inv;
  }
}

}  // namespace ref
}  // namespace qvl::kernels
