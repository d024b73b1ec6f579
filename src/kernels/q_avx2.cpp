// int8 matmul kernels for AVX2 (vpmaddubsw + vpmaddwd), for CPUs without AVX-512 VNNI.
// Same packed layout as the AVX-512 kernels: a 64-byte step [16 rows][4 columns] is read as
// two 32-byte halves (rows 0-7 and 8-15).
//   Q4_0 / Q4_K: u4 codes × s8 activations; the 16-bit pair sums of a whole block stay below
//     8 · 2 · 15 · 127 = 30480, so they are added in 16 bits and widened once per block.
//   Q8_0: signed codes via the sign trick (|w| × sign(x, w)); pairs ≤ 2 · 127 · 127 = 32258.
#include "kernels/q_common.h"

#include <vector>

namespace qvl::kernels::detail {

#if QVL_X86_KERNELS
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,bmi,bmi2")
#ifdef __clang__  // clang ignores #pragma GCC target
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,bmi,bmi2"))), apply_to = function)
#endif

namespace {

inline __m256 load_f16x8(const uint8_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 load_bf16x8(const uint8_t* p) {
  const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}
inline __m256 load_u8x8(const uint8_t* p) {
  int64_t v;
  std::memcpy(&v, p, 8);
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(v)));
}
inline __m256 load_i8x8(const uint8_t* p) {
  int64_t v;
  std::memcpy(&v, p, 8);
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(v)));
}
inline __m256i bcast32(const int8_t* p) { return _mm256_set1_epi32(load_i32(p)); }

// An empty asm that the compiler must assume reads and rewrites v: a running sum stays one chain
// in a register. Without it GCC 12 reassociates a block's 16 products into a tree, keeps them
// all alive and spills a sixth of the loop to the stack.
inline void keep_in_register(__m256i& v) { asm("" : "+x"(v)); }

// Super-block scales: bf16 in qvl's Q4_K, fp16 in ggml's formats.
template <WeightFormat F>
inline __m256 load_super(const uint8_t* p) {
  if constexpr (F == WeightFormat::kQ4_K) return load_bf16x8(p);
  else return load_f16x8(p);
}

// GGML_Q5_K: the fifth bit of step s (bit s of each byte) moved to bit 4; the caller masks.
inline __m256i q5_fifth(__m256i h, int s) {
  switch (s) {
    case 0: return _mm256_slli_epi16(h, 4);
    case 1: return _mm256_slli_epi16(h, 3);
    case 2: return _mm256_slli_epi16(h, 2);
    case 3: return _mm256_slli_epi16(h, 1);
    case 4: return h;
    case 5: return _mm256_srli_epi16(h, 1);
    case 6: return _mm256_srli_epi16(h, 2);
    default: return _mm256_srli_epi16(h, 3);
  }
}

// GGML_Q6_K: bits 2j..2j+1 of each byte of a high-bit vector moved to bits 4..5 (what crosses a
// byte in the 16-bit shift is masked off by the caller).
inline __m256i q6_high(__m256i h, int j) {
  return j == 0 ? _mm256_slli_epi16(h, 4) : j == 1 ? _mm256_slli_epi16(h, 2) : j == 2 ? h : _mm256_srli_epi16(h, 2);
}

// The codes of steps j (lo) and j + 4 (hi) of one row half as bytes: the nibbles of v, plus
// GGML_Q5_K's fifth bit (from high_lo, one vector for all steps) or GGML_Q6_K's two high bits
// (high_lo for steps 0-3, high_hi for 4-7). The streaming tile and unpack_group both use it.
template <WeightFormat F>
inline void step_codes(__m256i v, [[maybe_unused]] __m256i high_lo, [[maybe_unused]] __m256i high_hi, int j,
                       __m256i& lo, __m256i& hi) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  lo = _mm256_and_si256(v, m4);
  hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
  if constexpr (F == WeightFormat::kGgmlQ5_K) {
    const __m256i m10 = _mm256_set1_epi8(0x10);
    lo = _mm256_or_si256(lo, _mm256_and_si256(q5_fifth(high_lo, j), m10));
    hi = _mm256_or_si256(hi, _mm256_and_si256(q5_fifth(high_lo, j + 4), m10));
  } else if constexpr (F == WeightFormat::kGgmlQ6_K) {
    const __m256i m30 = _mm256_set1_epi8(0x30);
    lo = _mm256_or_si256(lo, _mm256_and_si256(q6_high(high_lo, j), m30));
    hi = _mm256_or_si256(hi, _mm256_and_si256(q6_high(high_hi, j), m30));
  }
}

// A 32-byte vector of a block's extra code bits (GGML_Q5_K's fifth bits, GGML_Q6_K's high bits).
inline __m256i load_code_bits(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Decode prefetches the weight stream 32 KB ahead into L2, not 2 KB into L1 as on AVX-512: synthetic
// 4B Q4_K_M, 2 AVX2 cores, tg64 in 10 interleaved pairs: faster in 8, most when memory was slow
// (7.5-7.9 -> 9.3-11.6 tok/s), within the noise when it was fast (12.6 vs 12.1, 13.9 vs 14.3).
// 8-16 KB ahead, or into L1 at 16-32 KB, was slower; 64 KB no better.
constexpr size_t kDecodePrefetchBytes = 32 * 1024;
// Q8_0 (the sign trick makes its tile the slowest per byte) is the exception: its codes 2 KB ahead
// into L1. Synthetic 4B Q8_0 file, tg32, interleaved: with this 5.9-7.0 tok/s against 4.9-6.1 with no
// prefetch (6 pairs) and 6.7-8.7 with the far L2 prefetch against 8.8-9.0 (3 pairs).
constexpr size_t kQ8DecodePrefetchBytes = 2048;

// Q4_0 stores its codes offset by 8 and seeds each block's int32 sums with the activations'
// -8·Σq (QActs::init); the k-quants' codes carry no offset on AVX2 (act_zero_point 0: init is 0),
// so their tiles skip that add.
template <WeightFormat F>
constexpr bool kCodeOffset = F == WeightFormat::kQ4_0;

struct TileArgs {
  const QLayout* L;
  const uint8_t* grp;
  int valid;  // valid rows of the group (1..16)
  const QActs* a;
  int64_t i0;
  int64_t row0;
  const float* bias;
  float* y;
  // A few activation rows (decode rows of several sequences): the weights stream from memory once
  // for all of them, so the codes are prefetched ahead as in the one-row case.
  bool stream_weights = false;
};

// The tile's sums (plus bias) to y: rows i0.., the valid rows of the group.
template <int MR>
inline void store_tile(const TileArgs& t, const __m256 (&acc)[MR][2]) {
  const int64_t n = t.L->rows;
  alignas(32) float buf[16];
  for (int i = 0; i < MR; ++i) {
    _mm256_store_ps(buf, acc[i][0]);
    _mm256_store_ps(buf + 8, acc[i][1]);
    float* yr = t.y + (t.i0 + i) * n + t.row0;
    for (int r = 0; r < t.valid; ++r) yr[r] = buf[r] + (t.bias ? t.bias[t.row0 + r] : 0.0f);
  }
}

// Block b's int32 dot products (per activation row i and row half h) scaled into the fp32 sums:
// one definition for the streaming and the unpacked tiles, so both round alike. is_hi is GGML_Q6_K's
// second 16-column half (each half has its own scale); other formats pass is twice.
template <WeightFormat F, int MR>
inline void scale_block(const TileArgs& t, const ActRows<MR>& x, int64_t b, const __m256i (&is)[MR][2],
                        [[maybe_unused]] const __m256i (&is_hi)[MR][2], __m256 (&acc)[MR][2],
                        [[maybe_unused]] __m256 (&super_d)[2], [[maybe_unused]] __m256 (&super_dmin)[2]) {
  const QLayout& L = *t.L;
  if constexpr (F == WeightFormat::kGgmlQ6_K) {
    const int64_t sb = b / kSuperBlocks;
    for (int h = 0; h < 2; ++h) {
      const __m256 d = load_f16x8(t.grp + L.scales_off + sb * 32 + 16 * h);
      const __m256 dlo = _mm256_mul_ps(d, load_i8x8(t.grp + L.sc_off + (2 * b) * 16 + 8 * h));
      const __m256 dhi = _mm256_mul_ps(d, load_i8x8(t.grp + L.sc_off + (2 * b + 1) * 16 + 8 * h));
      for (int i = 0; i < MR; ++i) {
        const __m256 dx = _mm256_set1_ps(x.d[i][b]);
        acc[i][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[i][h]), _mm256_mul_ps(dlo, dx), acc[i][h]);
        acc[i][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is_hi[i][h]), _mm256_mul_ps(dhi, dx), acc[i][h]);
      }
    }
  } else if constexpr (kScaleMin<F>) {
    if (b % kSuperBlocks == 0) {
      const int64_t sb = b / kSuperBlocks;
      for (int h = 0; h < 2; ++h) {
        super_d[h] = load_super<F>(t.grp + L.scales_off + sb * 32 + 16 * h);
        super_dmin[h] = load_super<F>(t.grp + L.dmin_off + sb * 32 + 16 * h);
      }
    }
    __m256 dsc[2], mmn[2];
    for (int h = 0; h < 2; ++h) {
      dsc[h] = _mm256_mul_ps(super_d[h], load_u8x8(t.grp + L.sc_off + b * 16 + 8 * h));
      mmn[h] = _mm256_mul_ps(super_dmin[h], load_u8x8(t.grp + L.mn_off + b * 16 + 8 * h));
    }
    for (int i = 0; i < MR; ++i) {
      const __m256 dx = _mm256_set1_ps(x.d[i][b]);
      const __m256 dsx = _mm256_set1_ps(x.ds[i][b]);
      for (int h = 0; h < 2; ++h) {
        acc[i][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[i][h]), _mm256_mul_ps(dsc[h], dx), acc[i][h]);
        acc[i][h] = _mm256_fnmadd_ps(mmn[h], dsx, acc[i][h]);
      }
    }
  } else if constexpr (F == WeightFormat::kGgmlIQ4_XS) {
    const int64_t sb = b / kSuperBlocks;
    for (int h = 0; h < 2; ++h) {
      const __m256 dl = _mm256_mul_ps(load_f16x8(t.grp + L.scales_off + sb * 32 + 16 * h),
                                      _mm256_sub_ps(load_u8x8(t.grp + L.sc_off + b * 16 + 8 * h), _mm256_set1_ps(32.0f)));
      for (int i = 0; i < MR; ++i)
        acc[i][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[i][h]), _mm256_mul_ps(dl, _mm256_set1_ps(x.d[i][b])), acc[i][h]);
    }
  } else {
    __m256 sc[2];
    for (int h = 0; h < 2; ++h) sc[h] = load_f16x8(t.grp + L.scales_off + b * 32 + 16 * h);
    for (int i = 0; i < MR; ++i) {
      const __m256 dx = _mm256_set1_ps(x.d[i][b]);
      for (int h = 0; h < 2; ++h)
        acc[i][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[i][h]), _mm256_mul_ps(sc[h], dx), acc[i][h]);
    }
  }
}

// MR activation rows × one row group (two halves of 8 rows).
template <WeightFormat F, int MR>
inline void tile(const TileArgs& t) {
  const QLayout& L = *t.L;
  const QActs& a = *t.a;
  const int64_t nb = L.nb;
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i ones16 = _mm256_set1_epi16(1);
  __m256 acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  const ActRows<MR> x(a, t.i0, nb);
  // Q4_K / Q5_K: the super-block scales, converted once per 8 blocks rather than in every block.
  [[maybe_unused]] __m256 super_d[2] = {}, super_dmin[2] = {};

  // The group's bytes (codes and scales) per block: the prefetch walks the thread's whole stream.
  const size_t block_stride = L.group_bytes / static_cast<size_t>(nb);
  for (int64_t b = 0; b < nb; ++b) {
    if (MR == 1 || t.stream_weights) {
      if constexpr (F == WeightFormat::kQ8_0)
        prefetch_ahead<kQ8DecodePrefetchBytes, _MM_HINT_T0>(t.grp + static_cast<size_t>(b) * kCodeBytes<F>, kCodeBytes<F>);
      else
        prefetch_ahead<kDecodePrefetchBytes, _MM_HINT_T1>(t.grp + static_cast<size_t>(b) * block_stride, block_stride);
    }
    if constexpr (F == WeightFormat::kGgmlQ6_K) {
      // Codes 0..63: a maddubs pair is at most 2 · 63 · 128 = 16128 in size, so two steps are
      // added in 16 bits before widening. The two 16-column halves (lo / hi nibbles) keep
      // separate sums: each has its own scale.
      __m256i lo32[MR][2], hi32[MR][2];
      for (int i = 0; i < MR; ++i) {
        for (int h = 0; h < 2; ++h) {
          lo32[i][h] = _mm256_set1_epi32(x.half_init[i][2 * b]);
          hi32[i][h] = _mm256_set1_epi32(x.half_init[i][2 * b + 1]);
        }
      }
      const uint8_t* codes = t.grp + static_cast<size_t>(b) * 384;
      __m256i high_lo[2], high_hi[2];
      for (int h = 0; h < 2; ++h) {
        high_lo[h] = load_code_bits(codes + 256 + 32 * h);
        high_hi[h] = load_code_bits(codes + 320 + 32 * h);
      }
      __m256i lo16[MR][2] = {}, hi16[MR][2] = {};  // set at even j, used at odd j
      // Unrolled so that q6_high's shift and the even/odd choice are constants and lo16/hi16 stay
      // in registers: GCC 12 kept this loop rolled, and the kernel ran 2x slower (kernel_bench).
      #pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        __m256i lo[2], hi[2];
        for (int h = 0; h < 2; ++h) {
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + 64 * j + 32 * h));
          step_codes<F>(v, high_lo[h], high_hi[h], j, lo[h], hi[h]);
        }
        for (int i = 0; i < MR; ++i) {
          const __m256i xl = bcast32(x.q[i] + b * 32 + 4 * j);
          const __m256i xh = bcast32(x.q[i] + b * 32 + 4 * (j + 4));
          for (int h = 0; h < 2; ++h) {
            const __m256i pl = _mm256_maddubs_epi16(lo[h], xl), ph = _mm256_maddubs_epi16(hi[h], xh);
            if (j % 2 == 0) {
              lo16[i][h] = pl;
              hi16[i][h] = ph;
            } else {
              lo32[i][h] = _mm256_add_epi32(lo32[i][h], _mm256_madd_epi16(_mm256_add_epi16(lo16[i][h], pl), ones16));
              hi32[i][h] = _mm256_add_epi32(hi32[i][h], _mm256_madd_epi16(_mm256_add_epi16(hi16[i][h], ph), ones16));
            }
          }
        }
      }
      scale_block<F, MR>(t, x, b, lo32, hi32, acc, super_d, super_dmin);
      continue;
    }
    __m256i is[MR][2];
    if constexpr (F == WeightFormat::kQ8_0) {
      for (int i = 0; i < MR; ++i) is[i][0] = is[i][1] = _mm256_setzero_si256();
      for (int s = 0; s < 8; ++s) {
        __m256i aw[2], sw[2];
        for (int h = 0; h < 2; ++h) {
          const __m256i u = _mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(t.grp + static_cast<size_t>(b) * 512 + 64 * s + 32 * h));
          sw[h] = _mm256_xor_si256(u, _mm256_set1_epi8(static_cast<char>(0x80)));  // signed code
          aw[h] = _mm256_abs_epi8(sw[h]);
        }
        for (int i = 0; i < MR; ++i) {
          const __m256i xv = bcast32(x.q[i] + b * 32 + 4 * s);
          for (int h = 0; h < 2; ++h) {
            const __m256i p16 = _mm256_maddubs_epi16(aw[h], _mm256_sign_epi8(xv, sw[h]));
            is[i][h] = _mm256_add_epi32(is[i][h], _mm256_madd_epi16(p16, ones16));
            keep_in_register(is[i][h]);
          }
        }
      }
    } else if constexpr (F == WeightFormat::kGgmlIQ4_XS) {
      // Signed levels (up to 127 in size) through the sign trick, as Q8_0: pairs <= 32258.
      const __m256i levels = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4Levels)));
      for (int i = 0; i < MR; ++i) is[i][0] = is[i][1] = _mm256_setzero_si256();
      for (int j = 0; j < 4; ++j) {
        __m256i w[2][2];  // [lo/hi nibble][row half]
        for (int h = 0; h < 2; ++h) {
          const __m256i v = _mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(t.grp + static_cast<size_t>(b) * 256 + 64 * j + 32 * h));
          w[0][h] = _mm256_shuffle_epi8(levels, _mm256_and_si256(v, m4));
          w[1][h] = _mm256_shuffle_epi8(levels, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
        }
        for (int i = 0; i < MR; ++i) {
          const __m256i xs[2] = {bcast32(x.q[i] + b * 32 + 4 * j), bcast32(x.q[i] + b * 32 + 4 * (j + 4))};
          for (int n = 0; n < 2; ++n) {
            for (int h = 0; h < 2; ++h) {
              const __m256i p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(w[n][h]), _mm256_sign_epi8(xs[n], w[n][h]));
              is[i][h] = _mm256_add_epi32(is[i][h], _mm256_madd_epi16(p16, ones16));
              keep_in_register(is[i][h]);
            }
          }
        }
      }
    } else {
      // Q5_K codes reach 31: its low- and high-nibble halves are summed in 16 bits apart
      // (4 · 2 · 31 · 128 = 31744 each).
      constexpr bool kQ5 = F == WeightFormat::kGgmlQ5_K;
      __m256i fifth[2] = {};
      if constexpr (kQ5)
        for (int h = 0; h < 2; ++h) fifth[h] = load_code_bits(t.grp + static_cast<size_t>(b) * 320 + 256 + 32 * h);
      __m256i s16[MR][2], s16_hi[MR][2];
      for (int i = 0; i < MR; ++i) s16[i][0] = s16[i][1] = s16_hi[i][0] = s16_hi[i][1] = _mm256_setzero_si256();
      for (int j = 0; j < 4; ++j) {
        __m256i lo[2], hi[2];
        for (int h = 0; h < 2; ++h) {
          const __m256i v = _mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(t.grp + static_cast<size_t>(b) * kCodeBytes<F> + 64 * j + 32 * h));
          step_codes<F>(v, fifth[h], fifth[h], j, lo[h], hi[h]);
        }
        for (int i = 0; i < MR; ++i) {
          const __m256i xl = bcast32(x.q[i] + b * 32 + 4 * j);
          const __m256i xh = bcast32(x.q[i] + b * 32 + 4 * (j + 4));
          for (int h = 0; h < 2; ++h) {
            s16[i][h] = _mm256_add_epi16(s16[i][h], _mm256_maddubs_epi16(lo[h], xl));
            __m256i& high_sum = kQ5 ? s16_hi[i][h] : s16[i][h];
            high_sum = _mm256_add_epi16(high_sum, _mm256_maddubs_epi16(hi[h], xh));
            keep_in_register(s16[i][h]);
            if constexpr (kQ5) keep_in_register(s16_hi[i][h]);
          }
        }
      }
      for (int i = 0; i < MR; ++i) {
        for (int h = 0; h < 2; ++h) {
          is[i][h] = _mm256_madd_epi16(s16[i][h], ones16);
          if constexpr (kCodeOffset<F>) is[i][h] = _mm256_add_epi32(is[i][h], _mm256_set1_epi32(x.init[i][b]));
          if constexpr (kQ5) is[i][h] = _mm256_add_epi32(is[i][h], _mm256_madd_epi16(s16_hi[i][h], ones16));
        }
      }
    }
    scale_block<F, MR>(t, x, b, is, is, acc, super_d, super_dmin);
  }

  store_tile<MR>(t, acc);
}

// Prefill (many activation rows) of the 5- and 6-bit k-quants: a row group's codes are unpacked
// to one byte each, a slice of blocks at a time, step s (4 columns) of block b at
// [b * 512 + 64 s + 32 h], and every row of the chunk reads them as they are. The streaming tile
// merges their high bits for every tile of rows (Q6_K: ~200 instructions per block and row); this
// cut kernel_bench matmul_m512 (2560 -> 9728, one AVX2 core) from 373-517 to 241-279 ms for Q5_K
// and from 371-430 to 260-316 ms for Q6_K. Q4_0 and Q4_K measured no gain (their unpacking is a
// mask and a shift, shared by four rows), Q8_0 and IQ4_XS need the sign trick per row anyway.
constexpr size_t kUnpackedBlockBytes = 512;

template <WeightFormat F>
constexpr bool kUnpackForPrefill = F == WeightFormat::kGgmlQ5_K || F == WeightFormat::kGgmlQ6_K;

template <WeightFormat F>
inline void unpack_group(const uint8_t* grp, int64_t b0, int64_t b1, uint8_t* out) {
  constexpr size_t kHighOff = 256, kHighHiOff = F == WeightFormat::kGgmlQ6_K ? 320 : 256;
  for (int64_t b = b0; b < b1; ++b) {
    const uint8_t* codes = grp + static_cast<size_t>(b) * kCodeBytes<F>;
    uint8_t* o = out + static_cast<size_t>(b - b0) * kUnpackedBlockBytes;
    for (int h = 0; h < 2; ++h) {
      const __m256i high_lo = load_code_bits(codes + kHighOff + 32 * h);
      const __m256i high_hi = load_code_bits(codes + kHighHiOff + 32 * h);
      #pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        __m256i lo, hi;
        step_codes<F>(load_code_bits(codes + 64 * j + 32 * h), high_lo, high_hi, j, lo, hi);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 64 * j + 32 * h), lo);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 64 * (j + 4) + 32 * h), hi);
      }
    }
  }
}

// MR activation rows × one row group whose codes unpack_group wrote to `codes`. Each block's int32
// sums equal the streaming tile's (integer arithmetic, no overflow: the same 16-bit groupings by
// code range) and go through the same scale_block, so a row's result does not depend on the path.
template <WeightFormat F, int MR>
inline void tile_unpacked(const TileArgs& t, const uint8_t* codes, int64_t b0, int64_t b1, float* partial) {
  const QLayout& L = *t.L;
  const QActs& a = *t.a;
  const int64_t nb = L.nb;
  const __m256i ones16 = _mm256_set1_epi16(1);
  // The fp32 sums live in `partial` (L1) between blocks: in registers they would push the 16-bit
  // sums out to the stack (GCC spilled those, the hot ones).
  if (b0 == 0) std::fill(partial, partial + 16 * MR, 0.0f);
  const ActRows<MR> x(a, t.i0, nb);
  // A slice starts on a super-block (kUnpackedBlocks is a multiple of kSuperBlocks), where
  // scale_block loads the super-block scales.
  [[maybe_unused]] __m256 super_d[2] = {}, super_dmin[2] = {};
  for (int64_t b = b0; b < b1; ++b) {
    const uint8_t* w = codes + static_cast<size_t>(b - b0) * kUnpackedBlockBytes;
    __m256i is[MR][2], is_hi[MR][2];
    if constexpr (F == WeightFormat::kGgmlQ6_K) {
      // Codes reach 63: two steps are added in 16 bits, then widened. Steps 0-3 are the block's
      // first 16 columns, 4-7 the second: separate sums, each with its own scale.
      for (int i = 0; i < MR; ++i) {
        for (int h = 0; h < 2; ++h) {
          is[i][h] = _mm256_set1_epi32(x.half_init[i][2 * b]);
          is_hi[i][h] = _mm256_set1_epi32(x.half_init[i][2 * b + 1]);
        }
      }
      #pragma GCC unroll 4
      for (int p = 0; p < 4; ++p) {
        __m256i wa[2], wb[2];
        for (int h = 0; h < 2; ++h) {
          wa[h] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 128 * p + 32 * h));
          wb[h] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 128 * p + 64 + 32 * h));
        }
        for (int i = 0; i < MR; ++i) {
          const __m256i xa = bcast32(x.q[i] + b * 32 + 8 * p), xb = bcast32(x.q[i] + b * 32 + 8 * p + 4);
          for (int h = 0; h < 2; ++h) {
            const __m256i pair = _mm256_add_epi16(_mm256_maddubs_epi16(wa[h], xa), _mm256_maddubs_epi16(wb[h], xb));
            __m256i& sum = p < 2 ? is[i][h] : is_hi[i][h];
            sum = _mm256_add_epi32(sum, _mm256_madd_epi16(pair, ones16));
            keep_in_register(sum);
          }
        }
      }
    } else {
      static_assert(F == WeightFormat::kGgmlQ5_K);
      // Codes reach 31: steps 0-3 and 4-7 keep separate 16-bit sums (4 · 2 · 31 · 128 = 31744
      // each), as in the streaming tile.
      __m256i s16[MR][2], s16_hi[MR][2];
      #pragma GCC unroll 8
      for (int s = 0; s < 8; ++s) {
        __m256i wv[2];
        for (int h = 0; h < 2; ++h) wv[h] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 64 * s + 32 * h));
        for (int i = 0; i < MR; ++i) {
          const __m256i xs = bcast32(x.q[i] + b * 32 + 4 * s);
          for (int h = 0; h < 2; ++h) {
            const __m256i prod = _mm256_maddubs_epi16(wv[h], xs);
            __m256i& sum = s >= 4 ? s16_hi[i][h] : s16[i][h];
            sum = s % 4 == 0 ? prod : _mm256_add_epi16(sum, prod);
            keep_in_register(sum);
          }
        }
      }
      for (int i = 0; i < MR; ++i) {
        for (int h = 0; h < 2; ++h) {
          is[i][h] = _mm256_add_epi32(_mm256_madd_epi16(s16[i][h], ones16), _mm256_madd_epi16(s16_hi[i][h], ones16));
          if constexpr (kCodeOffset<F>) is[i][h] = _mm256_add_epi32(is[i][h], _mm256_set1_epi32(x.init[i][b]));
        }
      }
    }
    __m256 acc[MR][2];
    for (int i = 0; i < MR; ++i)
      for (int h = 0; h < 2; ++h) acc[i][h] = _mm256_loadu_ps(partial + 16 * i + 8 * h);
    scale_block<F, MR>(t, x, b, is, F == WeightFormat::kGgmlQ6_K ? is_hi : is, acc, super_d, super_dmin);
    for (int i = 0; i < MR; ++i)
      for (int h = 0; h < 2; ++h) _mm256_storeu_ps(partial + 16 * i + 8 * h, acc[i][h]);
  }
  if (b1 == nb) {
    __m256 acc[MR][2];
    for (int i = 0; i < MR; ++i)
      for (int h = 0; h < 2; ++h) acc[i][h] = _mm256_loadu_ps(partial + 16 * i + 8 * h);
    store_tile<MR>(t, acc);
  }
}

// Activation rows per tile: four for the k-quants with a scale and a min per block (their
// unpacked codes serve twice the rows: the Q4_K loop does 218 instructions per 2048 products
// instead of 141 per 1024), two elsewhere: four rows' sums spill with Q6_K's high bits and with
// the sign trick of Q8_0 and IQ4_XS, and Q4_0 measured no gain.
template <WeightFormat F>
constexpr int kMR = kScaleMin<F> ? 4 : 2;

// Rows per unpacked tile: four rows' two pairs of 16-bit sums fit the 16 registers with the codes
// and a broadcast (Q5_K); GGML_Q6_K's int32 halves and 16-bit pairs per row leave room for two.
template <WeightFormat F>
constexpr int kPrefillMR = F == WeightFormat::kGgmlQ6_K ? 2 : 4;
// Below this many activation rows the streaming tile's shared unpacking costs less than writing
// and reading the unpacked copy.
constexpr int64_t kUnpackMinRows = 16;
// Blocks unpacked at a time: 16 KB of codes, half of a 32 KB L1.
constexpr int64_t kUnpackedBlocks = 32;
static_assert(kUnpackedBlocks % kSuperBlocks == 0);

template <WeightFormat F>
void run(const QLayout& L, const uint8_t* data, const QActs& a, const float* bias, float* y, int64_t g0, int64_t g1) {
  TileArgs t;
  t.L = &L;
  t.a = &a;
  t.bias = bias;
  t.y = y;
  t.stream_weights = a.m <= 8;
  const bool unpack = kUnpackForPrefill<F> && a.m >= kUnpackMinRows;
  thread_local std::vector<uint8_t> unpacked;
  thread_local std::vector<float> partial;
  const int64_t chunk = chunk_rows(a.k, kMR<F>, 128 * 1024);
  if (unpack) {
    if (unpacked.size() < static_cast<size_t>(kUnpackedBlocks) * kUnpackedBlockBytes)
      unpacked.resize(static_cast<size_t>(kUnpackedBlocks) * kUnpackedBlockBytes);
    if (partial.size() < static_cast<size_t>(chunk) * 16) partial.resize(static_cast<size_t>(chunk) * 16);
  }
  for (int64_t c0 = 0; c0 < a.m; c0 += chunk) {
    const int64_t c1 = std::min(a.m, c0 + chunk);
    for (int64_t g = g0; g < g1; ++g) {
      t.grp = data + static_cast<size_t>(g) * L.group_bytes;
      t.valid = static_cast<int>(std::min<int64_t>(16, L.rows - g * 16));
      t.row0 = g * 16;
      if constexpr (kUnpackForPrefill<F>) {
        if (unpack) {
          // A slice of the group's blocks at a time, so its unpacked codes stay in L1 while every
          // row of the chunk reads them; each row's sums carry over between slices in block order.
          for (int64_t b0 = 0; b0 < L.nb; b0 += kUnpackedBlocks) {
            const int64_t b1 = std::min(L.nb, b0 + kUnpackedBlocks);
            unpack_group<F>(t.grp, b0, b1, unpacked.data());
            for (int64_t i0 = c0; i0 < c1;) {
              t.i0 = i0;
              float* const p = partial.data() + (i0 - c0) * 16;
              if (c1 - i0 >= kPrefillMR<F>) {
                tile_unpacked<F, kPrefillMR<F>>(t, unpacked.data(), b0, b1, p);
                i0 += kPrefillMR<F>;
              } else {
                tile_unpacked<F, 1>(t, unpacked.data(), b0, b1, p);
                i0 += 1;
              }
            }
          }
          continue;
        }
      }
      for (int64_t i0 = c0; i0 < c1;) {
        t.i0 = i0;
        const int64_t left = c1 - i0;
        if (left >= kMR<F>) {
          tile<F, kMR<F>>(t);
          i0 += kMR<F>;
        } else if (left >= 2) {
          tile<F, 2>(t);
          i0 += 2;
        } else {
          tile<F, 1>(t);
          i0 += 1;
        }
      }
    }
  }
}

}  // namespace

void qmatmul_avx2(const QLayout& L, const uint8_t* data, const QActs& a, const float* bias, float* y, int64_t g0,
                  int64_t g1) {
  with_quantized_format(L.format, [&](auto f) { run<decltype(f)::value>(L, data, a, bias, y, g0, g1); });
}

#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC pop_options
#else
void qmatmul_avx2(const QLayout& L, const uint8_t* data, const QActs& a, const float* bias, float* y, int64_t g0,
                  int64_t g1) {
  qmatmul_scalar(L, data, a, bias, y, g0, g1);
}
#endif

}  // namespace qvl::kernels::detail
