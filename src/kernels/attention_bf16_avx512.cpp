// bf16 attention on AVX512_BF16 (vdpbf16ps: 16 lanes, each += a pair of bf16 products, in fp32).
// Compiled with target attributes (no -m flags), selected at run time by kernels.cpp; nothing
// here runs unless the CPU reports AVX-512 F/BW/VL/DQ + BF16. The algorithm and the packed
// layout are in kernels/attention_bf16.h.
//
// Per chunk of up to 8·R queries, for each tile of 64 keys, for each group of R queries:
//   S = Q̂·K̂ᵀ: R × 4 accumulators (16 keys each), per head-dimension pair 4 loads of K̂ and R
//              broadcasts of the queries' pairs, 4·R vdpbf16ps;
//   softmax:   per query the tile maximum, a rescale of its output row when the maximum grew,
//              p = exp2(s - m) in fp32, rounded to bf16 in pairs of keys (vcvtne2ps2bf16),
//              l += p by one vdpbf16ps against ones per 32 keys;
//   O += P·V̂:  R × lines accumulators, per key pair `lines` loads of V̂ and R broadcasts of P.
// The chunk's queries, their running outputs and one tile of K̂ and V̂ (16 KB at head_dim 64)
// stay in L1 while all groups of the chunk pass over the tile.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "kernels/attention_bf16.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define QVL_X86_KERNELS 1
#endif

namespace qvl::kernels::detail {

bool cpu_has_avx512_bf16() {
#if QVL_X86_KERNELS
  unsigned a = 0, b = 0, c = 0, d = 0;
  // CPUID.(EAX=7, ECX=1):EAX bit 5 = AVX512_BF16; the rest of AVX-512 (and the OS's saving of
  // the zmm state) as kernels.cpp requires for Isa::kAVX512.
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
  const bool bf16 = (a >> 5) & 1u;
  __builtin_cpu_init();
  return bf16 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
  return false;
#endif
}

namespace {

// Thread-local buffers, grown outside the target region (no std::vector code compiled for AVX-512).
struct Scratch {
  std::vector<uint32_t> qb;
  std::vector<float> f;
};

// q̂ for `rows` × `pairs` and `floats` fp32 values, the latter 64-byte aligned.
void grow_scratch(size_t q_pairs, size_t floats, uint32_t** qb, float** f) {
  thread_local Scratch s;
  if (s.qb.size() < q_pairs) s.qb.resize(q_pairs);
  if (s.f.size() < floats + 16) s.f.resize(floats + 16);
  *qb = s.qb.data();
  *f = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(s.f.data()) + 63) & ~uintptr_t{63});
}

}  // namespace

#if QVL_X86_KERNELS
#pragma GCC push_options
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c,bmi,bmi2")
#ifdef __clang__  // clang ignores #pragma GCC target
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c,bmi,bmi2"))), apply_to = function)
#endif

namespace {

// 2^x for x <= 0; very negative x (the -1e30 of masked keys) gives exactly 0 (vscalefps).
inline __m512 exp2_avx512(__m512 x) {
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(kExp2C5);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2C4));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2C3));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2C2));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2C1));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2C0));
  return _mm512_scalef_ps(p, n);
}

inline __m512bh as_bh(__m512i v) { return (__m512bh)v; }
inline __m512bh load_bh(const uint16_t* p) { return as_bh(_mm512_loadu_si512(p)); }
inline __m512bh bcast_pair(const uint32_t* p) { return as_bh(_mm512_set1_epi32(static_cast<int>(*p))); }

// S[r][16c + i] = q̂_r · k̂_(block c, key i) for R queries (qb: R rows of `pairs` bf16 pairs) and
// KC blocks of the tile (kt: the tile's first block; blocks `pairs` lines apart).
template <int R, int KC>
inline void score_group(const uint32_t* qb, int64_t pairs, const uint16_t* kt, float* S) {
  __m512 acc[R][KC];
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 8
    for (int c = 0; c < KC; ++c) acc[r][c] = _mm512_setzero_ps();
  const size_t bstride = static_cast<size_t>(pairs) * 32;
  for (int64_t p = 0; p < pairs; ++p) {
    __m512bh kv[KC];
    #pragma GCC unroll 8
    for (int c = 0; c < KC; ++c) kv[c] = load_bh(kt + c * bstride + static_cast<size_t>(p) * 32);
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512bh qv = bcast_pair(qb + r * pairs + p);
      #pragma GCC unroll 8
      for (int c = 0; c < KC; ++c) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], kv[c], qv);
    }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 8
    for (int c = 0; c < KC; ++c) _mm512_store_ps(S + r * kBf16KeyTile + c * 16, acc[r][c]);
}

// O[r][line] += Σ_pairs P[r][pair] · V̂[pair][line] for R queries over `npairs` key pairs.
template <int R, int DV>
inline void pv_group(float* O, const uint32_t* P, const uint16_t* vt, int64_t npairs) {
  __m512 acc[R][DV];
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 8
    for (int x = 0; x < DV; ++x) acc[r][x] = _mm512_load_ps(O + (r * DV + x) * 16);
  for (int64_t jp = 0; jp < npairs; ++jp) {
    __m512bh vv[DV];
    #pragma GCC unroll 8
    for (int x = 0; x < DV; ++x) vv[x] = load_bh(vt + static_cast<size_t>(jp * DV + x) * 32);
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512bh pr = bcast_pair(P + r * (kBf16KeyTile / 2) + jp);
      #pragma GCC unroll 8
      for (int x = 0; x < DV; ++x) acc[r][x] = _mm512_dpbf16_ps(acc[r][x], vv[x], pr);
    }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 8
    for (int x = 0; x < DV; ++x) _mm512_store_ps(O + (r * DV + x) * 16, acc[r][x]);
}

template <int R, int DV>
void attend(const float* q, const uint16_t* packed, float* out, const AttentionShape& s) {
  constexpr int kChunk = 8 * R;  // queries per chunk
  constexpr int64_t kTilePairs = kBf16KeyTile / 2;
  const Bf16KvLayout L = bf16_kv_layout(s.kv_len, s.head_dim);
  const int64_t d = s.head_dim, pairs = L.pairs, n = s.kv_len;
  const uint16_t* K = packed;
  const uint16_t* V = packed + L.k_elems();
  // Scratch: O [chunk][DV·16], lv [chunk][16], M [chunk] (padded to 16), S [R][64], P [R][32
  // pairs]; every array but M a multiple of 16 floats long, so all start 64-byte aligned.
  constexpr int64_t kMPad = (kChunk + 15) / 16 * 16;
  constexpr int64_t kFloats = kChunk * DV * 16 + kChunk * 16 + kMPad + R * kBf16KeyTile + R * kTilePairs;
  uint32_t* qb = nullptr;
  float* O = nullptr;
  grow_scratch(static_cast<size_t>(kChunk * pairs), static_cast<size_t>(kFloats), &qb, &O);
  float* lv = O + kChunk * DV * 16;
  float* M = lv + kChunk * 16;
  float* S = M + kMPad;
  uint32_t* P = reinterpret_cast<uint32_t*>(S + R * kBf16KeyTile);
  const float qscale = s.scale * kLog2e;
  const __m512bh ones = as_bh(_mm512_set1_epi32(0x3F803F80));  // bf16 1.0 pairs

  for (int64_t c0 = 0; c0 < s.q_len; c0 += kChunk) {
    const int64_t rows = s.q_len - c0 < kChunk ? s.q_len - c0 : kChunk;
    const int64_t groups = (rows + R - 1) / R;
    // q̂: the chunk's queries (and zero rows up to whole groups) as bf16 pairs.
    for (int64_t i = 0; i < groups * R; ++i) {
      uint32_t* row = qb + i * pairs;
      if (i >= rows) {
        for (int64_t p = 0; p < pairs; ++p) row[p] = 0;
        continue;
      }
      const float* qi = q + (c0 + i) * s.q_stride;
      for (int64_t p = 0; p < pairs; ++p) {
        const uint32_t lo = f32_to_bf16(qi[2 * p] * qscale);
        const uint32_t hi = 2 * p + 1 < d ? f32_to_bf16(qi[2 * p + 1] * qscale) : 0u;
        row[p] = lo | (hi << 16);
      }
    }
    for (int64_t i = 0; i < groups * R * DV * 16; ++i) O[i] = 0.0f;
    for (int64_t i = 0; i < groups * R * 16; ++i) lv[i] = 0.0f;
    for (int64_t i = 0; i < groups * R; ++i) M[i] = -INFINITY;

    for (int64_t b0 = 0; b0 < L.blocks; b0 += kBf16TileBlocks) {
      const int kc = static_cast<int>(L.blocks - b0 < kBf16TileBlocks ? L.blocks - b0 : kBf16TileBlocks);
      const int64_t valid = n - b0 * kBf16KeyBlock;  // real keys from the tile's start (>= 1)
      const uint16_t* kt = K + static_cast<size_t>(b0 * pairs) * 32;
      const uint16_t* vt = V + static_cast<size_t>(b0 * 8 * DV) * 32;
      for (int64_t g = 0; g < groups; ++g) {
        const uint32_t* qg = qb + g * R * pairs;
        switch (kc) {
          case 4: score_group<R, 4>(qg, pairs, kt, S); break;
          case 3: score_group<R, 3>(qg, pairs, kt, S); break;
          case 2: score_group<R, 2>(qg, pairs, kt, S); break;
          default: score_group<R, 1>(qg, pairs, kt, S); break;
        }
        if (valid < kc * kBf16KeyBlock)  // padding keys of the last block: weight exactly 0
          for (int r = 0; r < R; ++r)
            for (int64_t j = valid; j < kc * kBf16KeyBlock; ++j) S[r * kBf16KeyTile + j] = -1e30f;
        for (int r = 0; r < R; ++r) {
          const int64_t i = g * R + r;
          const float* sr = S + r * kBf16KeyTile;
          __m512 mx = _mm512_load_ps(sr);
          for (int c = 1; c < kc; ++c) mx = _mm512_max_ps(mx, _mm512_load_ps(sr + 16 * c));
          const float tmax = _mm512_reduce_max_ps(mx);
          float* orow = O + i * DV * 16;
          __m512 l = _mm512_load_ps(lv + i * 16);
          if (tmax > M[i]) {
            if (M[i] > -INFINITY) {
              const __m512 corr = _mm512_set1_ps(std::exp2(M[i] - tmax));
              for (int x = 0; x < DV; ++x) _mm512_store_ps(orow + 16 * x, _mm512_mul_ps(_mm512_load_ps(orow + 16 * x), corr));
              l = _mm512_mul_ps(l, corr);
            }
            M[i] = tmax;
          }
          const __m512 vm = _mm512_set1_ps(M[i]);
          uint32_t* pr = P + r * kTilePairs;
          for (int c = 0; c < kc; c += 2) {
            const __m512 e0 = exp2_avx512(_mm512_sub_ps(_mm512_load_ps(sr + 16 * c), vm));
            const __m512 e1 =
                c + 1 < kc ? exp2_avx512(_mm512_sub_ps(_mm512_load_ps(sr + 16 * c + 16), vm)) : _mm512_setzero_ps();
            const __m512bh pb = _mm512_cvtne2ps_pbh(e1, e0);  // keys 16c .. 16c+31 in order
            _mm512_storeu_si512(pr + 8 * c, (__m512i)pb);
            l = _mm512_dpbf16_ps(l, pb, ones);
          }
          _mm512_store_ps(lv + i * 16, l);
        }
        pv_group<R, DV>(O + g * R * DV * 16, P, vt, kc * 8);
      }
    }
    for (int64_t i = 0; i < rows; ++i) {
      const float l = _mm512_reduce_add_ps(_mm512_load_ps(lv + i * 16));
      const float inv = l > 0.0f ? 1.0f / l : 0.0f;
      float* oi = out + (c0 + i) * s.out_stride;
      const float* acc = O + i * DV * 16;
      for (int64_t c = 0; c < d; ++c) oi[c] = acc[c] * inv;
    }
  }
}

}  // namespace

void attention_bf16_avx512(const float* q, const uint16_t* packed, float* out, const AttentionShape& s) {
  switch (bf16_kv_layout(s.kv_len, s.head_dim).lines) {
    case 1: return attend<6, 1>(q, packed, out, s);
    case 2: return attend<6, 2>(q, packed, out, s);
    case 3: return attend<6, 3>(q, packed, out, s);
    case 4: return attend<6, 4>(q, packed, out, s);
    case 5: return attend<5, 5>(q, packed, out, s);
    case 6: return attend<4, 6>(q, packed, out, s);
    case 7: return attend<3, 7>(q, packed, out, s);
    default: return attend<3, 8>(q, packed, out, s);
  }
}

#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC diagnostic pop
#pragma GCC pop_options
#else
void attention_bf16_avx512(const float*, const uint16_t*, float*, const AttentionShape&) {}
#endif

}  // namespace qvl::kernels::detail
