// int8 matmul kernels for AVX-512 VNNI (vpdpbusd: u8 weights × s8 activations → s32).
// Compiled with target attributes (no -m flags), selected at run time by kernels.cpp; nothing
// here runs unless the CPU reports AVX-512 F/BW/VL/DQ + VNNI.
//
// Tile: MR activation rows × NG row groups (16 weight rows each). Per block of 32 columns the
// int32 dot products of all MR × NG × 16 pairs are formed with 8 vpdpbusd each (weights in
// registers, activations broadcast), then scaled into fp32 accumulators.
#include "kernels/q_common.h"

namespace qvl::kernels::detail {

#if QVL_X86_KERNELS
#pragma GCC push_options
// GCC 12 reports its own _mm512_undefined_* placeholders inside the intrinsic headers as
// "may be used uninitialized" (a known false positive); silence it for this file only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c,bmi,bmi2")
#ifdef __clang__  // clang ignores #pragma GCC target
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c,bmi,bmi2"))), apply_to = function)
#endif

namespace {

inline __m512 load_f16x16(const uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline __m512 load_bf16x16(const uint8_t* p) {
  const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}
inline __m512 load_u8x16(const uint8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}
inline __m512 load_i8x16(const uint8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}
inline __m512i bcast32(const int8_t* p) { return _mm512_set1_epi32(load_i32(p)); }

// Super-block scales: bf16 in qvl's Q4_K, fp16 in ggml's formats.
template <WeightFormat F>
inline __m512 load_super(const uint8_t* p) {
  if constexpr (F == WeightFormat::kQ4_K) return load_bf16x16(p);
  else return load_f16x16(p);
}

// GGML_Q5_K: the fifth bit of step s (bit s of each byte) moved to bit 4; the caller masks.
inline __m512i q5_fifth(__m512i h, int s) {
  switch (s) {
    case 0: return _mm512_slli_epi16(h, 4);
    case 1: return _mm512_slli_epi16(h, 3);
    case 2: return _mm512_slli_epi16(h, 2);
    case 3: return _mm512_slli_epi16(h, 1);
    case 4: return h;
    case 5: return _mm512_srli_epi16(h, 1);
    case 6: return _mm512_srli_epi16(h, 2);
    default: return _mm512_srli_epi16(h, 3);
  }
}

// GGML_Q6_K: bits 2j..2j+1 of each byte of a high-bit vector moved to bits 4..5 (what crosses a
// byte in the 16-bit shift is masked off by the caller).
inline __m512i q6_high(__m512i h, int j) {
  return j == 0 ? _mm512_slli_epi16(h, 4) : j == 1 ? _mm512_slli_epi16(h, 2) : j == 2 ? h : _mm512_srli_epi16(h, 2);
}

// Decode: the codes of the block 2 KB ahead into L1 (4-bit matvec from DRAM, one AVX-512 core: 21
// -> 27 GB/s); q8_0 measured no gain.
constexpr size_t kDecodePrefetchBytes = 2048;

struct TileArgs {
  const QLayout* L;
  const uint8_t* grp[2];  // row groups of the tile
  __mmask16 mask[2];      // valid rows of each group
  const QActs* a;
  int64_t i0;             // first activation row
  int64_t row0;           // first weight row of grp[0]
  const float* bias;
  float* y;
  // A few activation rows (decode rows of several sequences): the weights stream from memory once
  // for all of them, so the codes are prefetched ahead as in the one-row case.
  bool stream_weights = false;
};

template <WeightFormat F, int MR, int NG>
inline void tile(const TileArgs& t) {
  const QLayout& L = *t.L;
  const QActs& a = *t.a;
  const int64_t nb = L.nb, n = L.rows;
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  __m512 acc[MR][NG];
  for (int i = 0; i < MR; ++i)
    for (int g = 0; g < NG; ++g) acc[i][g] = _mm512_setzero_ps();

  const ActRows<MR> x(a, t.i0, nb);
  // Q4_K / Q5_K: the super-block scales, converted once per 8 blocks rather than in every block.
  [[maybe_unused]] __m512 super_d[NG] = {}, super_dmin[NG] = {};

  // A single activation row (decode) leaves only NG dependency chains of 8 vpdpbusd per block,
  // so its sums are split over kP partial accumulators (added once per block). GGML_Q6_K needs
  // its two 16-column halves apart (each has its own scale): partials [0, kH) and [kH, kP).
  constexpr bool kQ6 = F == WeightFormat::kGgmlQ6_K, kQ5 = F == WeightFormat::kGgmlQ5_K;
  constexpr bool kIq4 = F == WeightFormat::kGgmlIQ4_XS;
  constexpr int kP = MR == 1 ? 4 : kQ6 ? 2 : 1;
  constexpr int kH = kP > 1 ? kP / 2 : 0;
  const __m512i m30 = _mm512_set1_epi8(0x30), m10 = _mm512_set1_epi8(0x10);
  for (int64_t b = 0; b < nb; ++b) {
    if (F != WeightFormat::kQ8_0 && (MR == 1 || t.stream_weights)) {
      // Codes 2 KB ahead into L1; past the end of a group's codes, the same place in the group of
      // the next tile (the thread's next NG groups), and that tile's scales (the bytes after its
      // codes) into L2, spread over this tile's blocks. Without the last two the next tile began
      // with cold streams: 2560-column matrices were read 5-15 % slower than long rows.
      const size_t codes_end = static_cast<size_t>(nb) * kCodeBytes<F>;
      const size_t off = static_cast<size_t>(b) * kCodeBytes<F> + kDecodePrefetchBytes;
      const int64_t meta_lines = static_cast<int64_t>((L.group_bytes - codes_end + 63) / 64);
      for (int g = 0; g < NG; ++g) {
        const uint8_t* next = t.grp[g] + NG * L.group_bytes;
        const uint8_t* p = off < codes_end ? t.grp[g] + off : next + (off - codes_end);
        for (size_t line = 0; line < kCodeBytes<F>; line += 64)
          _mm_prefetch(reinterpret_cast<const char*>(p + line), _MM_HINT_T0);
        for (int64_t li = b * meta_lines / nb; li < (b + 1) * meta_lines / nb; ++li)
          _mm_prefetch(reinterpret_cast<const char*>(next + codes_end + 64 * li), _MM_HINT_T1);
      }
    }
    __m512i part[MR][NG][kP];
    for (int i = 0; i < MR; ++i) {
      if constexpr (kQ6) {
        const __m512i lo_init = _mm512_set1_epi32(x.half_init[i][2 * b]);
        const __m512i hi_init = _mm512_set1_epi32(x.half_init[i][2 * b + 1]);
        for (int g = 0; g < NG; ++g) {
          for (int p = 0; p < kP; ++p) part[i][g][p] = _mm512_setzero_si512();
          part[i][g][0] = lo_init;
          part[i][g][kH] = hi_init;
        }
      } else {
        const __m512i init = _mm512_set1_epi32(x.init[i][b]);
        for (int g = 0; g < NG; ++g) {
          part[i][g][0] = init;
          for (int p = 1; p < kP; ++p) part[i][g][p] = _mm512_setzero_si512();
        }
      }
    }
    if constexpr (F == WeightFormat::kQ8_0) {
      for (int s = 0; s < 8; ++s) {
        __m512i w[NG];
        for (int g = 0; g < NG; ++g)
          w[g] = _mm512_loadu_si512(t.grp[g] + static_cast<size_t>(b) * 512 + 64 * s);
        for (int i = 0; i < MR; ++i) {
          const __m512i xv = bcast32(x.q[i] + b * 32 + 4 * s);
          for (int g = 0; g < NG; ++g) part[i][g][s % kP] = _mm512_dpbusd_epi32(part[i][g][s % kP], w[g], xv);
        }
      }
    } else {
      __m512i high_lo[NG], high_hi[NG];  // GGML_Q6_K: the 2 high bits of every code; Q5_K: the fifth
      if constexpr (kQ6 || kQ5) {
        for (int g = 0; g < NG; ++g) {
          high_lo[g] = _mm512_loadu_si512(t.grp[g] + static_cast<size_t>(b) * kCodeBytes<F> + 256);
          if constexpr (kQ6) high_hi[g] = _mm512_loadu_si512(t.grp[g] + static_cast<size_t>(b) * 384 + 320);
        }
      }
      // GGML_IQ4_XS: the 16 levels + 128 (u8 for vpdpbusd; init removes the 128) in each 128-bit lane.
      [[maybe_unused]] __m512i levels;
      if constexpr (kIq4) levels = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4LevelsU8)));
      for (int j = 0; j < 4; ++j) {
        __m512i lo[NG], hi[NG];
        for (int g = 0; g < NG; ++g) {
          const __m512i v = _mm512_loadu_si512(t.grp[g] + static_cast<size_t>(b) * kCodeBytes<F> + 64 * j);
          lo[g] = _mm512_and_si512(v, m4);
          hi[g] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
          if constexpr (kQ6) {  // nibble | (high bits & 0x30): ternary-logic 0xF8 = A | (B & C)
            lo[g] = _mm512_ternarylogic_epi32(lo[g], q6_high(high_lo[g], j), m30, 0xF8);
            hi[g] = _mm512_ternarylogic_epi32(hi[g], q6_high(high_hi[g], j), m30, 0xF8);
          } else if constexpr (kQ5) {
            lo[g] = _mm512_ternarylogic_epi32(lo[g], q5_fifth(high_lo[g], j), m10, 0xF8);
            hi[g] = _mm512_ternarylogic_epi32(hi[g], q5_fifth(high_lo[g], j + 4), m10, 0xF8);
          } else if constexpr (kIq4) {
            lo[g] = _mm512_shuffle_epi8(levels, lo[g]);
            hi[g] = _mm512_shuffle_epi8(levels, hi[g]);
          }
        }
        for (int i = 0; i < MR; ++i) {
          const __m512i xl = bcast32(x.q[i] + b * 32 + 4 * j);
          const __m512i xh = bcast32(x.q[i] + b * 32 + 4 * (j + 4));
          for (int g = 0; g < NG; ++g) {
            const int q = kP > 1 ? (j % (kP / 2)) : 0;
            part[i][g][q] = _mm512_dpbusd_epi32(part[i][g][q], lo[g], xl);
            part[i][g][kH + q] = _mm512_dpbusd_epi32(part[i][g][kH + q], hi[g], xh);
          }
        }
      }
    }
    if constexpr (kQ6) {
      const int64_t sb = b / kSuperBlocks;
      __m512 dlo[NG], dhi[NG];
      for (int g = 0; g < NG; ++g) {
        const __m512 d = load_f16x16(t.grp[g] + L.scales_off + sb * 32);
        dlo[g] = _mm512_mul_ps(d, load_i8x16(t.grp[g] + L.sc_off + (2 * b) * 16));
        dhi[g] = _mm512_mul_ps(d, load_i8x16(t.grp[g] + L.sc_off + (2 * b + 1) * 16));
      }
      for (int i = 0; i < MR; ++i) {
        const __m512 dx = _mm512_set1_ps(x.d[i][b]);
        for (int g = 0; g < NG; ++g) {
          __m512i lo_sum = part[i][g][0], hi_sum = part[i][g][kH];
          if constexpr (kP == 4) {
            lo_sum = _mm512_add_epi32(lo_sum, part[i][g][1]);
            hi_sum = _mm512_add_epi32(hi_sum, part[i][g][3]);
          }
          acc[i][g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lo_sum), _mm512_mul_ps(dlo[g], dx), acc[i][g]);
          acc[i][g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi_sum), _mm512_mul_ps(dhi[g], dx), acc[i][g]);
        }
      }
      continue;
    }
    __m512i is[MR][NG];
    for (int i = 0; i < MR; ++i) {
      for (int g = 0; g < NG; ++g) {
        if constexpr (kP == 4) {
          is[i][g] = _mm512_add_epi32(_mm512_add_epi32(part[i][g][0], part[i][g][1]),
                                      _mm512_add_epi32(part[i][g][2], part[i][g][3]));
        } else {
          is[i][g] = part[i][g][0];
        }
      }
    }
    if constexpr (kScaleMin<F>) {
      if (b % kSuperBlocks == 0) {
        const int64_t sb = b / kSuperBlocks;
        for (int g = 0; g < NG; ++g) {
          super_d[g] = load_super<F>(t.grp[g] + L.scales_off + sb * 32);
          super_dmin[g] = load_super<F>(t.grp[g] + L.dmin_off + sb * 32);
        }
      }
      __m512 dsc[NG], mmn[NG];
      for (int g = 0; g < NG; ++g) {
        dsc[g] = _mm512_mul_ps(super_d[g], load_u8x16(t.grp[g] + L.sc_off + b * 16));
        mmn[g] = _mm512_mul_ps(super_dmin[g], load_u8x16(t.grp[g] + L.mn_off + b * 16));
      }
      for (int i = 0; i < MR; ++i) {
        const __m512 dx = _mm512_set1_ps(x.d[i][b]);
        const __m512 dsx = _mm512_set1_ps(x.ds[i][b]);
        for (int g = 0; g < NG; ++g) {
          acc[i][g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[i][g]), _mm512_mul_ps(dsc[g], dx), acc[i][g]);
          acc[i][g] = _mm512_fnmadd_ps(mmn[g], dsx, acc[i][g]);
        }
      }
    } else if constexpr (kIq4) {
      const int64_t sb = b / kSuperBlocks;
      __m512 dl[NG];  // d * (ls - 32)
      for (int g = 0; g < NG; ++g)
        dl[g] = _mm512_mul_ps(load_f16x16(t.grp[g] + L.scales_off + sb * 32),
                              _mm512_sub_ps(load_u8x16(t.grp[g] + L.sc_off + b * 16), _mm512_set1_ps(32.0f)));
      for (int i = 0; i < MR; ++i) {
        const __m512 dx = _mm512_set1_ps(x.d[i][b]);
        for (int g = 0; g < NG; ++g)
          acc[i][g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[i][g]), _mm512_mul_ps(dl[g], dx), acc[i][g]);
      }
    } else {
      __m512 sc[NG];
      for (int g = 0; g < NG; ++g) sc[g] = load_f16x16(t.grp[g] + L.scales_off + b * 32);
      for (int i = 0; i < MR; ++i) {
        const __m512 dx = _mm512_set1_ps(x.d[i][b]);
        for (int g = 0; g < NG; ++g)
          acc[i][g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[i][g]), _mm512_mul_ps(sc[g], dx), acc[i][g]);
      }
    }
  }

  for (int g = 0; g < NG; ++g) {
    const int64_t row = t.row0 + 16 * g;
    const __m512 bv = t.bias ? _mm512_maskz_loadu_ps(t.mask[g], t.bias + row) : _mm512_setzero_ps();
    for (int i = 0; i < MR; ++i)
      _mm512_mask_storeu_ps(t.y + (t.i0 + i) * n + row, t.mask[g], _mm512_add_ps(acc[i][g], bv));
  }
}

constexpr int kMR = 4;  // activation rows per tile (4 × 2 groups: 8 int32 + 8 fp32 accumulators)

template <WeightFormat F, int NG>
inline void tile_rows(int mr, const TileArgs& t) {
  switch (mr) {
    case 4: tile<F, 4, NG>(t); break;
    case 3: tile<F, 3, NG>(t); break;
    case 2: tile<F, 2, NG>(t); break;
    default: tile<F, 1, NG>(t); break;
  }
}

template <WeightFormat F>
void run(const QLayout& L, const uint8_t* data, const QActs& a, const float* bias, float* y, int64_t g0, int64_t g1) {
  TileArgs t;
  t.L = &L;
  t.a = &a;
  t.bias = bias;
  t.y = y;
  t.stream_weights = a.m <= 8;
  auto mask_of = [&](int64_t g) -> __mmask16 {
    const int64_t valid = std::min<int64_t>(16, L.rows - g * 16);
    return static_cast<__mmask16>(valid >= 16 ? 0xffff : (1u << valid) - 1);
  };
  // Activation rows are taken in chunks that stay in L2 while a chunk sweeps the thread's rows.
  const int64_t chunk = chunk_rows(a.k, kMR, 256 * 1024);
  for (int64_t c0 = 0; c0 < a.m; c0 += chunk) {
    const int64_t c1 = std::min(a.m, c0 + chunk);
    for (int64_t g = g0; g < g1; g += 2) {
      const int ng = g + 1 < g1 ? 2 : 1;
      t.grp[0] = data + static_cast<size_t>(g) * L.group_bytes;
      t.grp[1] = t.grp[0] + L.group_bytes;
      t.mask[0] = mask_of(g);
      t.mask[1] = ng == 2 ? mask_of(g + 1) : 0;
      t.row0 = g * 16;
      for (int64_t i0 = c0; i0 < c1; i0 += kMR) {
        t.i0 = i0;
        const int mr = static_cast<int>(std::min<int64_t>(kMR, c1 - i0));
        if (ng == 2) tile_rows<F, 2>(mr, t);
        else tile_rows<F, 1>(mr, t);
      }
    }
  }
}

}  // namespace

void qmatmul_avx512(const QLayout& L, const uint8_t* data, const QActs& a, const float* bias, float* y, int64_t g0,
                    int64_t g1) {
  with_quantized_format(L.format, [&](auto f) { run<decltype(f)::value>(L, data, a, bias, y, g0, g1); });
}

#pragma GCC diagnostic pop
#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC pop_options
#else
void qmatmul_avx512(const QLayout& L, const uint8_t* data, const QActs& a, const float* bias, float* y, int64_t g0,
                    int64_t g1) {
  qmatmul_scalar(L, data, a, bias, y, g0, g1);
}
#endif

}  // namespace qvl::kernels::detail
