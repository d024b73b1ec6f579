// bf16 attention on AVX2 + FMA, for CPUs without AVX512_BF16: the same roundings as the AVX-512
// kernel (kernels/attention_bf16.h), its bf16 products formed in fp32 FMAs (a bf16 value widened
// to fp32 is exact, and so is the product of two). The packed K̂ and V̂ are read as they are: a
// 32-bit lane holds a pair, its low half widened by a shift, its high half by a mask. Compiled
// with target attributes, selected at run time by kernels.cpp.
//
// Per chunk of up to 32 queries, for each tile of 64 keys, for each group of 4 queries:
//   S = Q̂·K̂ᵀ block by block (4 × 2 accumulators of 8 keys), softmax in fp32 with p rounded to
//   bf16 in place, O += P·V̂ line by line (4 × 2 accumulators of 8 dimensions).
#include <cmath>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "kernels/attention_bf16.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define QVL_X86_KERNELS 1
#endif

namespace qvl::kernels::detail {

namespace {

// Thread-local buffers, grown outside the target region. `floats` fp32 values, 64-byte aligned.
float* grow_scratch(size_t floats) {
  thread_local std::vector<float> f;
  if (f.size() < floats + 16) f.resize(floats + 16);
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(f.data()) + 63) & ~uintptr_t{63});
}

}  // namespace

#if QVL_X86_KERNELS
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,bmi,bmi2")
#ifdef __clang__  // clang ignores #pragma GCC target
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,bmi,bmi2"))), apply_to = function)
#endif

namespace {

constexpr int kR = 4;             // queries per group
constexpr int kChunk = 8 * kR;    // queries per chunk
constexpr int64_t kTile = kBf16KeyTile;

// 2^x for x <= 0; x <= -127 (the -1e30 of masked keys) gives exactly 0.
inline __m256 exp2_avx2(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-127.0f));
  const __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(x, n);
  __m256 p = _mm256_set1_ps(kExp2C5);
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExp2C4));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExp2C3));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExp2C2));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExp2C1));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExp2C0));
  // 2^n from its exponent bits; n = -127 gives the bits of +0.
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// x (finite, >= 0) rounded to bf16, nearest even, kept as fp32.
inline __m256 round_bf16(__m256 x) {
  __m256i b = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1));
  b = _mm256_add_epi32(b, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), lsb));
  return _mm256_castsi256_ps(_mm256_and_si256(b, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

inline __m256 low_half(__m256i w) { return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)); }
inline __m256 high_half(__m256i w, __m256i mask) { return _mm256_castsi256_ps(_mm256_and_si256(w, mask)); }

// S[r][0..16) = q̂_r · k̂ for the 16 keys of one packed block (qf: kR rows qw floats apart).
inline void score_block(const float* qf, int64_t qw, int64_t pairs, const uint16_t* kb, float* S) {
  const __m256i mask = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  __m256 acc[kR][2];
  for (int r = 0; r < kR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t p = 0; p < pairs; ++p) {
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kb + p * 32));
    const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kb + p * 32 + 16));
    const __m256 k0e = low_half(w0), k0o = high_half(w0, mask), k1e = low_half(w1), k1o = high_half(w1, mask);
    for (int r = 0; r < kR; ++r) {
      const __m256 qe = _mm256_broadcast_ss(qf + r * qw + 2 * p);
      const __m256 qo = _mm256_broadcast_ss(qf + r * qw + 2 * p + 1);
      acc[r][0] = _mm256_fmadd_ps(qo, k0o, _mm256_fmadd_ps(qe, k0e, acc[r][0]));
      acc[r][1] = _mm256_fmadd_ps(qo, k1o, _mm256_fmadd_ps(qe, k1e, acc[r][1]));
    }
  }
  for (int r = 0; r < kR; ++r) {
    _mm256_store_ps(S + r * kTile, acc[r][0]);
    _mm256_store_ps(S + r * kTile + 8, acc[r][1]);
  }
}

// O[r][16x .. 16x+16) += Σ_pairs P[r][2i] v̂[2i] + P[r][2i+1] v̂[2i+1] for every line x.
inline void pv_group(float* O, int64_t lines, const float* P, const uint16_t* vt, int64_t npairs) {
  const __m256i mask = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  for (int64_t x = 0; x < lines; ++x) {
    __m256 acc[kR][2];
    for (int r = 0; r < kR; ++r) {
      acc[r][0] = _mm256_load_ps(O + (r * lines + x) * 16);
      acc[r][1] = _mm256_load_ps(O + (r * lines + x) * 16 + 8);
    }
    for (int64_t jp = 0; jp < npairs; ++jp) {
      const uint16_t* line = vt + (jp * lines + x) * 32;
      const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(line));
      const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(line + 16));
      const __m256 v0e = low_half(w0), v0o = high_half(w0, mask), v1e = low_half(w1), v1o = high_half(w1, mask);
      for (int r = 0; r < kR; ++r) {
        const __m256 pe = _mm256_broadcast_ss(P + r * kTile + 2 * jp);
        const __m256 po = _mm256_broadcast_ss(P + r * kTile + 2 * jp + 1);
        acc[r][0] = _mm256_fmadd_ps(po, v0o, _mm256_fmadd_ps(pe, v0e, acc[r][0]));
        acc[r][1] = _mm256_fmadd_ps(po, v1o, _mm256_fmadd_ps(pe, v1e, acc[r][1]));
      }
    }
    for (int r = 0; r < kR; ++r) {
      _mm256_store_ps(O + (r * lines + x) * 16, acc[r][0]);
      _mm256_store_ps(O + (r * lines + x) * 16 + 8, acc[r][1]);
    }
  }
}

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

inline float hsum(__m256 v) {
  __m128 m = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_add_ps(m, _mm_movehl_ps(m, m));
  m = _mm_add_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

}  // namespace

void attention_bf16_avx2(const float* q, const uint16_t* packed, float* out, const AttentionShape& s) {
  const Bf16KvLayout L = bf16_kv_layout(s.kv_len, s.head_dim);
  const int64_t d = s.head_dim, pairs = L.pairs, lines = L.lines, n = s.kv_len;
  const uint16_t* K = packed;
  const uint16_t* V = packed + L.k_elems();
  // Scratch (each array a multiple of 16 floats, so all 64-byte aligned): q̂ [chunk][2·pairs
  // padded], O [chunk][lines·16], lv [chunk][8] (padded to 16), M [chunk], S [kR][64], P [kR][64].
  const int64_t qw = (2 * pairs + 15) / 16 * 16;
  float* qf = grow_scratch(static_cast<size_t>(kChunk * qw + kChunk * lines * 16 + kChunk * 16 + kChunk + 2 * kR * kTile));
  float* O = qf + kChunk * qw;
  float* lv = O + kChunk * lines * 16;
  float* M = lv + kChunk * 16;
  float* S = M + kChunk;
  float* P = S + kR * kTile;
  const float qscale = s.scale * kLog2e;

  for (int64_t c0 = 0; c0 < s.q_len; c0 += kChunk) {
    const int64_t rows = s.q_len - c0 < kChunk ? s.q_len - c0 : kChunk;
    const int64_t groups = (rows + kR - 1) / kR;
    for (int64_t i = 0; i < groups * kR; ++i) {
      float* row = qf + i * qw;
      for (int64_t c = 0; c < 2 * pairs; ++c)
        row[c] = i < rows && c < d ? bf16_to_f32(f32_to_bf16(q[(c0 + i) * s.q_stride + c] * qscale)) : 0.0f;
    }
    for (int64_t i = 0; i < groups * kR * lines * 16; ++i) O[i] = 0.0f;
    for (int64_t i = 0; i < groups * kR * 16; ++i) lv[i] = 0.0f;
    for (int64_t i = 0; i < groups * kR; ++i) M[i] = -INFINITY;

    for (int64_t b0 = 0; b0 < L.blocks; b0 += kBf16TileBlocks) {
      const int64_t kc = L.blocks - b0 < kBf16TileBlocks ? L.blocks - b0 : kBf16TileBlocks;
      const int64_t valid = n - b0 * kBf16KeyBlock;  // real keys from the tile's start (>= 1)
      const uint16_t* kt = K + b0 * pairs * 32;
      const uint16_t* vt = V + b0 * 8 * lines * 32;
      for (int64_t g = 0; g < groups; ++g) {
        for (int64_t c = 0; c < kc; ++c) score_block(qf + g * kR * qw, qw, pairs, kt + c * pairs * 32, S + c * 16);
        if (valid < kc * kBf16KeyBlock)  // padding keys of the last block: weight exactly 0
          for (int r = 0; r < kR; ++r)
            for (int64_t j = valid; j < kc * kBf16KeyBlock; ++j) S[r * kTile + j] = -1e30f;
        for (int r = 0; r < kR; ++r) {
          const int64_t i = g * kR + r;
          const float* sr = S + r * kTile;
          __m256 mx = _mm256_load_ps(sr);
          for (int64_t c = 1; c < 2 * kc; ++c) mx = _mm256_max_ps(mx, _mm256_load_ps(sr + 8 * c));
          const float tmax = hmax(mx);
          float* orow = O + i * lines * 16;
          __m256 l = _mm256_load_ps(lv + i * 16);
          if (tmax > M[i]) {
            if (M[i] > -INFINITY) {
              const __m256 corr = _mm256_set1_ps(std::exp2(M[i] - tmax));
              for (int64_t x = 0; x < 2 * lines; ++x)
                _mm256_store_ps(orow + 8 * x, _mm256_mul_ps(_mm256_load_ps(orow + 8 * x), corr));
              l = _mm256_mul_ps(l, corr);
            }
            M[i] = tmax;
          }
          const __m256 vm = _mm256_set1_ps(M[i]);
          float* pr = P + r * kTile;
          for (int64_t c = 0; c < 2 * kc; ++c) {
            const __m256 e = round_bf16(exp2_avx2(_mm256_sub_ps(_mm256_load_ps(sr + 8 * c), vm)));
            _mm256_store_ps(pr + 8 * c, e);
            l = _mm256_add_ps(l, e);
          }
          _mm256_store_ps(lv + i * 16, l);
        }
        pv_group(O + g * kR * lines * 16, lines, P, vt, kc * 8);
      }
    }
    for (int64_t i = 0; i < rows; ++i) {
      const float l = hsum(_mm256_load_ps(lv + i * 16));
      const float inv = l > 0.0f ? 1.0f / l : 0.0f;
      float* oi = out + (c0 + i) * s.out_stride;
      const float* acc = O + i * lines * 16;
      for (int64_t c = 0; c < d; ++c) oi[c] = acc[c] * inv;
    }
  }
}

#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC pop_options
#else
void attention_bf16_avx2(const float*, const uint16_t*, float*, const AttentionShape&) {}
#endif

}  // namespace qvl::kernels::detail
