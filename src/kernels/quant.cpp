// Quantized weight formats: layout, quantization (load time) and dequantization.
#include "kernels/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/check.h"

namespace qvl::kernels {

namespace detail {

namespace {
size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

inline void put_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
}  // namespace

QLayout q_layout(WeightFormat format, int64_t rows, int64_t cols) {
  if (format == WeightFormat::kDense)
    fail(ErrorKind::kInvalidArgument, "q_layout: the dense format has no quantized layout");
  if (!can_quantize(format, rows, cols))
    fail(ErrorKind::kInvalidArgument, "cannot store a ", rows, "x", cols, " matrix as ", weight_format_name(format),
         ": quantized formats need rows > 0 and cols a positive multiple of ", kBlock);
  QLayout L;
  L.format = format;
  L.rows = rows;
  L.cols = cols;
  L.nb = cols / kBlock;
  L.groups = (rows + kGroupRows - 1) / kGroupRows;
  const size_t nb = static_cast<size_t>(L.nb);
  switch (format) {
    case WeightFormat::kQ8_0:
      L.codes_per_block = 512;
      L.scales_off = nb * 512;
      L.group_bytes = round_up(L.scales_off + nb * 32, 64);
      break;
    case WeightFormat::kQ4_0:
      L.codes_per_block = 256;
      L.scales_off = nb * 256;
      L.group_bytes = round_up(L.scales_off + nb * 32, 64);
      break;
    case WeightFormat::kQ4_K:
    case WeightFormat::kGgmlQ4_K:
    case WeightFormat::kGgmlQ5_K: {
      L.codes_per_block = format == WeightFormat::kGgmlQ5_K ? 320 : 256;
      L.nsb = (L.nb + kSuperBlocks - 1) / kSuperBlocks;
      const size_t nsb = static_cast<size_t>(L.nsb);
      L.scales_off = nb * L.codes_per_block;
      L.dmin_off = L.scales_off + nsb * 32;
      L.sc_off = L.dmin_off + nsb * 32;
      L.mn_off = L.sc_off + nb * 16;
      L.group_bytes = round_up(L.mn_off + nb * 16, 64);
      break;
    }
    case WeightFormat::kGgmlIQ4_XS:
    case WeightFormat::kGgmlQ6_K: {  // fp16 d per super-block, then one (IQ4_XS) or two (Q6_K) sc per block
      const bool q6 = format == WeightFormat::kGgmlQ6_K;
      L.codes_per_block = q6 ? 384 : 256;
      L.nsb = (L.nb + kSuperBlocks - 1) / kSuperBlocks;
      L.scales_off = nb * L.codes_per_block;
      L.sc_off = L.scales_off + static_cast<size_t>(L.nsb) * 32;
      L.group_bytes = round_up(L.sc_off + nb * (q6 ? 32 : 16), 64);
      break;
    }
    default:
      QVL_ASSERT(false);
  }
  return L;
}

uint16_t f16_round_away(float v) {
  uint16_t h = f32_to_f16(v);
  const float back = f16_to_f32(h);
  if (std::isfinite(v) && std::fabs(back) < std::fabs(v) && (h & 0x7fffu) < 0x7bffu) ++h;  // same sign, next magnitude
  return h;
}

uint16_t bf16_round_up(float v) {
  uint16_t h = f32_to_bf16(v);
  if (std::isfinite(v) && v > 0.0f && bf16_to_f32(h) < v) ++h;
  return h;
}

namespace {


// Round to nearest even for |v| < 2^22 (all values rounded here are codes of at most 255, or
// garbage that the clamp removes) without a libm call, so the loops vectorize on any x86-64.
inline float round_ne(float v) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (v + kMagic) - kMagic;
}
inline float round_clamp(float v, float lo, float hi) { return std::min(hi, std::max(lo, round_ne(v))); }

// One pass of the Q4_K fit: for the fit value ≈ s*q + b, rounds q = clamp(round((x-b)/s), 0, 15)
// and returns the squared error and the sums Σq, Σq², Σqx of the least-squares refit. Four
// fixed partial sums (SSE2, the x86-64 baseline, or the same order in plain C++), so the result
// is the same on every machine.
struct FitSums {
  float e, sq, sqq, sqx;
};
#if defined(__SSE2__)
inline FitSums fit_pass(const float* x, float s, float b) {
  const __m128 vs = _mm_set1_ps(s), vb = _mm_set1_ps(b), vis = _mm_set1_ps(1.0f / s);
  const __m128 magic = _mm_set1_ps(12582912.0f), zero = _mm_setzero_ps(), fifteen = _mm_set1_ps(15.0f);
  __m128 e = zero, sq = zero, sqq = zero, sqx = zero;
  for (int c = 0; c < kBlock; c += 4) {
    const __m128 xv = _mm_loadu_ps(x + c);
    __m128 q = _mm_mul_ps(_mm_sub_ps(xv, vb), vis);
    q = _mm_sub_ps(_mm_add_ps(q, magic), magic);
    q = _mm_min_ps(_mm_max_ps(q, zero), fifteen);
    const __m128 diff = _mm_sub_ps(_mm_add_ps(_mm_mul_ps(vs, q), vb), xv);
    e = _mm_add_ps(e, _mm_mul_ps(diff, diff));
    sq = _mm_add_ps(sq, q);
    sqq = _mm_add_ps(sqq, _mm_mul_ps(q, q));
    sqx = _mm_add_ps(sqx, _mm_mul_ps(q, xv));
  }
  alignas(16) float t[4][4];
  _mm_store_ps(t[0], e);
  _mm_store_ps(t[1], sq);
  _mm_store_ps(t[2], sqq);
  _mm_store_ps(t[3], sqx);
  return {(t[0][0] + t[0][1]) + (t[0][2] + t[0][3]), (t[1][0] + t[1][1]) + (t[1][2] + t[1][3]),
          (t[2][0] + t[2][1]) + (t[2][2] + t[2][3]), (t[3][0] + t[3][1]) + (t[3][2] + t[3][3])};
}
#else
inline FitSums fit_pass(const float* x, float s, float b) {
  const float is = 1.0f / s;
  float t[4][4] = {};
  for (int c = 0; c < kBlock; c += 4) {
    for (int l = 0; l < 4; ++l) {
      const float xv = x[c + l];
      const float q = round_clamp((xv - b) * is, 0.0f, 15.0f);
      const float diff = (s * q + b) - xv;
      t[0][l] += diff * diff;
      t[1][l] += q;
      t[2][l] += q * q;
      t[3][l] += q * xv;
    }
  }
  return {(t[0][0] + t[0][1]) + (t[0][2] + t[0][3]), (t[1][0] + t[1][1]) + (t[1][2] + t[1][3]),
          (t[2][0] + t[2][1]) + (t[2][2] + t[2][3]), (t[3][0] + t[3][1]) + (t[3][2] + t[3][3])};
}
#endif

// Best (scale, offset) for value ≈ scale * q + offset, q in 0..15, offset <= 0, minimising the
// squared error: start from the min/max fit, then alternate rounding and least squares (each
// pass measures the error of the current fit and gathers the sums for the next one).
void fit_scale_min(const float* x, float* scale, float* offset) {
  float lo = 0.0f, hi = x[0], sx = 0.0f;
  for (int c = 0; c < kBlock; ++c) {
    lo = std::min(lo, x[c]);
    hi = std::max(hi, x[c]);
    sx += x[c];
  }
  if (!(hi > lo)) {  // constant non-positive block (or all zero)
    *scale = 0.0f;
    *offset = lo;
    return;
  }
  float s = (hi - lo) / 15.0f, b = lo;
  float best_s = s, best_b = b, best_e = HUGE_VALF;
  constexpr float n = static_cast<float>(kBlock);
  for (int pass = 0; pass < 4; ++pass) {
    const FitSums f = fit_pass(x, s, b);
    if (f.e < best_e) {
      best_e = f.e;
      best_s = s;
      best_b = b;
    }
    const float det = n * f.sqq - f.sq * f.sq;
    if (pass == 3 || !(det > 0.0f)) break;
    float ns = (n * f.sqx - f.sq * sx) / det;
    float nb = (f.sqq * sx - f.sq * f.sqx) / det;
    if (nb > 0.0f) {
      nb = 0.0f;
      ns = f.sqx / f.sqq;
    }
    if (!(ns > 0.0f)) break;
    s = ns;
    b = nb;
  }
  *scale = best_s;
  *offset = best_b;
}

// Writes the codes of one block (codes[r][c], 16 rows × 32 columns, row-major) in the packed
// order: Q8_0 as steps of [16 rows][4 columns]; Q4 with step j + 4 in the high nibbles.
void pack_codes(WeightFormat f, const uint8_t (*codes)[kBlock], uint8_t* dst) {
  for (int r = 0; r < kGroupRows; ++r) {
    if (f == WeightFormat::kQ8_0) {
      for (int s = 0; s < 8; ++s) std::memcpy(dst + s * 64 + r * 4, codes[r] + 4 * s, 4);
    } else {
      for (int j = 0; j < 4; ++j) {
        uint32_t lo, hi;
        std::memcpy(&lo, codes[r] + 4 * j, 4);
        std::memcpy(&hi, codes[r] + 4 * (j + 4), 4);
        const uint32_t v = lo | (hi << 4);  // every byte of lo and hi is <= 15
        std::memcpy(dst + j * 64 + r * 4, &v, 4);
      }
    }
  }
}

}  // namespace

void pack_group(const QLayout& L, const uint16_t* scales, const uint8_t* codes, uint8_t* grp) {
  QVL_ASSERT(L.format == WeightFormat::kQ8_0 || L.format == WeightFormat::kQ4_0);
  uint8_t block[kGroupRows][kBlock];
  for (int64_t b = 0; b < L.nb; ++b) {
    for (int64_t r = 0; r < kGroupRows; ++r) {
      std::memcpy(block[r], codes + r * L.cols + b * kBlock, kBlock);
      put_u16(grp + L.scales_off + static_cast<size_t>(b * kGroupRows + r) * 2, scales[r * L.nb + b]);
    }
    pack_codes(L.format, block, grp + static_cast<size_t>(b) * L.codes_per_block);
  }
}

void pack_k_group(const QLayout& L, const GgmlKRow* rows, uint8_t* grp) {
  QVL_ASSERT(is_ggml_k_format(L.format));
  const bool q6 = L.format == WeightFormat::kGgmlQ6_K, q5 = L.format == WeightFormat::kGgmlQ5_K;
  const bool with_min = L.format == WeightFormat::kGgmlQ4_K || q5;
  for (int64_t sb = 0; sb < L.nsb; ++sb) {
    for (int64_t r = 0; r < kGroupRows; ++r) {
      put_u16(grp + L.scales_off + static_cast<size_t>(sb * kGroupRows + r) * 2, rows[r].d[sb]);
      if (with_min) put_u16(grp + L.dmin_off + static_cast<size_t>(sb * kGroupRows + r) * 2, rows[r].dmin[sb]);
    }
  }
  uint8_t nibbles[kGroupRows][kBlock];
  for (int64_t b = 0; b < L.nb; ++b) {
    uint8_t* dst = grp + static_cast<size_t>(b) * L.codes_per_block;
    for (int64_t r = 0; r < kGroupRows; ++r) {
      const uint8_t* codes = rows[r].codes + b * kBlock;
      for (int c = 0; c < kBlock; ++c) nibbles[r][c] = codes[c] & 0x0f;
      // The bits above the nibble (GGML_Q5_K: one, GGML_Q6_K: two), four columns (one step) per
      // 32-bit word, one byte per column: no shift below carries across a byte.
      uint32_t high[8] = {};
      if (q5 || q6)
        for (int step = 0; step < 8; ++step) {
          std::memcpy(&high[step], codes + 4 * step, 4);
          high[step] = (high[step] >> 4) & 0x03030303u;
        }
      if (q6) {
        grp[L.sc_off + static_cast<size_t>((2 * b) * kGroupRows + r)] = rows[r].sc[2 * b];
        grp[L.sc_off + static_cast<size_t>((2 * b + 1) * kGroupRows + r)] = rows[r].sc[2 * b + 1];
        for (int half = 0; half < 2; ++half) {  // steps 0-3, then 4-7: step s % 4 at bits 2s..2s+1
          const uint32_t* h = high + 4 * half;
          const uint32_t v = h[0] | (h[1] << 2) | (h[2] << 4) | (h[3] << 6);
          std::memcpy(dst + 256 + 64 * half + r * 4, &v, 4);
        }
      } else {
        grp[L.sc_off + static_cast<size_t>(b * kGroupRows + r)] = rows[r].sc[b];
        if (with_min) grp[L.mn_off + static_cast<size_t>(b * kGroupRows + r)] = rows[r].mn[b];
        if (q5) {  // the fifth bit of step s at bit s
          uint32_t v = 0;
          for (int step = 0; step < 8; ++step) v |= (high[step] & 0x01010101u) << step;
          std::memcpy(dst + 256 + r * 4, &v, 4);
        }
      }
    }
    pack_codes(WeightFormat::kQ4_0, nibbles, dst);
  }
}

void q6_half_init(const int8_t* q, int64_t m, int64_t k, int32_t* half_init) {
  for (int64_t i = 0; i < m * (k / 16); ++i) {
    int32_t sum = 0;
    for (int c = 0; c < 16; ++c) sum += q[i * 16 + c];
    half_init[i] = -32 * sum;
  }
}

void quantize_group(const QLayout& L, const float* rows /* [16][cols] */, uint8_t* grp) {
  const int64_t nb = L.nb, cols = L.cols;
  uint8_t codes[kGroupRows][kBlock];
  auto put_scale = [&](size_t off, int64_t idx, uint16_t h) { put_u16(grp + off + static_cast<size_t>(idx) * 2, h); };
  switch (L.format) {
    case WeightFormat::kQ8_0:
      for (int64_t b = 0; b < nb; ++b) {
        for (int64_t r = 0; r < kGroupRows; ++r) {
          const float* x = rows + r * cols + b * kBlock;
          float amax = 0.0f;
          for (int c = 0; c < kBlock; ++c) amax = std::max(amax, std::fabs(x[c]));
          const uint16_t h = f16_round_away(amax / 127.0f);
          const float d = f16_to_f32(h);
          const float id = d > 0.0f ? 1.0f / d : 0.0f;
          for (int c = 0; c < kBlock; ++c)
            codes[r][c] = static_cast<uint8_t>(static_cast<int>(round_clamp(x[c] * id, -127.0f, 127.0f)) + 128);
          put_scale(L.scales_off, b * kGroupRows + r, h);
        }
        pack_codes(L.format, codes, grp + static_cast<size_t>(b) * L.codes_per_block);
      }
      break;
    case WeightFormat::kQ4_0:
      for (int64_t b = 0; b < nb; ++b) {
        for (int64_t r = 0; r < kGroupRows; ++r) {
          const float* x = rows + r * cols + b * kBlock;
          float lo = 0.0f, hi = 0.0f;
          for (int c = 0; c < kBlock; ++c) {
            lo = std::min(lo, x[c]);
            hi = std::max(hi, x[c]);
          }
          const float extreme = -lo > hi ? lo : hi;                 // the value of largest magnitude
          const uint16_t h = f16_round_away(extreme / -8.0f);  // ... maps to code 0
          const float d = f16_to_f32(h);
          const float id = d != 0.0f ? 1.0f / d : 0.0f;
          for (int c = 0; c < kBlock; ++c) codes[r][c] = static_cast<uint8_t>(round_clamp(x[c] * id + 8.0f, 0.0f, 15.0f));
          put_scale(L.scales_off, b * kGroupRows + r, h);
        }
        pack_codes(L.format, codes, grp + static_cast<size_t>(b) * L.codes_per_block);
      }
      break;
    case WeightFormat::kQ4_K: {
      float sc[kGroupRows][kSuperBlocks], mn[kGroupRows][kSuperBlocks];
      for (int64_t sb = 0; sb < L.nsb; ++sb) {
        const int64_t b0 = sb * kSuperBlocks, b1 = std::min(nb, b0 + kSuperBlocks);
        float D[kGroupRows], M[kGroupRows];
        for (int64_t r = 0; r < kGroupRows; ++r) {
          float smax = 0.0f, mmax = 0.0f;
          for (int64_t b = b0; b < b1; ++b) {
            float s, off;
            fit_scale_min(rows + r * cols + b * kBlock, &s, &off);
            sc[r][b - b0] = s;
            mn[r][b - b0] = -off;
            smax = std::max(smax, s);
            mmax = std::max(mmax, -off);
          }
          const uint16_t hd = bf16_round_up(smax / 255.0f), hm = bf16_round_up(mmax / 255.0f);
          D[r] = bf16_to_f32(hd);
          M[r] = bf16_to_f32(hm);
          put_scale(L.scales_off, sb * kGroupRows + r, hd);
          put_scale(L.dmin_off, sb * kGroupRows + r, hm);
        }
        for (int64_t b = b0; b < b1; ++b) {
          for (int64_t r = 0; r < kGroupRows; ++r) {
            const auto isc = static_cast<uint8_t>(D[r] > 0.0f ? round_clamp(sc[r][b - b0] / D[r], 0.0f, 255.0f) : 0.0f);
            const auto imn = static_cast<uint8_t>(M[r] > 0.0f ? round_clamp(mn[r][b - b0] / M[r], 0.0f, 255.0f) : 0.0f);
            grp[L.sc_off + static_cast<size_t>(b * kGroupRows + r)] = isc;
            grp[L.mn_off + static_cast<size_t>(b * kGroupRows + r)] = imn;
            // Codes against the stored (rounded) scale and offset.
            const float s = D[r] * static_cast<float>(isc), m = M[r] * static_cast<float>(imn);
            const float is = s > 0.0f ? 1.0f / s : 0.0f;
            const float* x = rows + r * cols + b * kBlock;
            for (int c = 0; c < kBlock; ++c) codes[r][c] = static_cast<uint8_t>(round_clamp((x[c] + m) * is, 0.0f, 15.0f));
          }
          pack_codes(L.format, codes, grp + static_cast<size_t>(b) * L.codes_per_block);
        }
      }
      break;
    }
    default:
      QVL_ASSERT(false);
  }
}

void dequantize_row(const QLayout& L, const uint8_t* data, int64_t row, float* out) {
  QVL_ASSERT(row >= 0 && row < L.rows);
  const int64_t g = row / kGroupRows, r = row % kGroupRows;
  const uint8_t* grp = data + static_cast<size_t>(g) * L.group_bytes;
  auto u16 = [&](size_t off) {
    uint16_t h;
    std::memcpy(&h, grp + off, 2);
    return h;
  };
  for (int64_t b = 0; b < L.nb; ++b) {
    const uint8_t* codes = grp + static_cast<size_t>(b) * L.codes_per_block;
    float* o = out + b * kBlock;
    switch (L.format) {
      case WeightFormat::kQ8_0: {
        const float d = f16_to_f32(u16(L.scales_off + static_cast<size_t>(b * kGroupRows + r) * 2));
        for (int c = 0; c < kBlock; ++c) o[c] = d * static_cast<float>(code_q8(codes, r, c) - 128);
        break;
      }
      case WeightFormat::kQ4_0: {
        const float d = f16_to_f32(u16(L.scales_off + static_cast<size_t>(b * kGroupRows + r) * 2));
        for (int c = 0; c < kBlock; ++c)
          o[c] = d * static_cast<float>(code_q4(codes, r, c) - 8);
        break;
      }
      case WeightFormat::kGgmlIQ4_XS: {
        // ggml's order: dl = d * (ls - 32), then dl * level.
        const float d = f16_to_f32(u16(L.scales_off + static_cast<size_t>((b / kSuperBlocks) * kGroupRows + r) * 2));
        const float dl = d * static_cast<float>(static_cast<int>(grp[L.sc_off + static_cast<size_t>(b * kGroupRows + r)]) - 32);
        for (int c = 0; c < kBlock; ++c) o[c] = dl * static_cast<float>(kIq4Levels[code_q4(codes, r, c)]);
        break;
      }
      case WeightFormat::kGgmlQ4_K:
      case WeightFormat::kGgmlQ5_K:
      case WeightFormat::kQ4_K: {
        // ggml's order of operations (d * sc) * q - dmin * mn, so the ggml formats decode bit for bit.
        const int64_t sb = b / kSuperBlocks;
        const auto super = [&](size_t off) {
          const uint16_t h = u16(off + static_cast<size_t>(sb * kGroupRows + r) * 2);
          return L.format == WeightFormat::kQ4_K ? bf16_to_f32(h) : f16_to_f32(h);
        };
        const float s = super(L.scales_off) * static_cast<float>(grp[L.sc_off + static_cast<size_t>(b * kGroupRows + r)]);
        const float m = super(L.dmin_off) * static_cast<float>(grp[L.mn_off + static_cast<size_t>(b * kGroupRows + r)]);
        const bool q5 = L.format == WeightFormat::kGgmlQ5_K;
        for (int c = 0; c < kBlock; ++c)
          o[c] = s * static_cast<float>(q5 ? code_q5(codes, r, c) : code_q4(codes, r, c)) - m;
        break;
      }
      case WeightFormat::kGgmlQ6_K: {
        const int64_t sb = b / kSuperBlocks;
        const float d = f16_to_f32(u16(L.scales_off + static_cast<size_t>(sb * kGroupRows + r) * 2));
        for (int c = 0; c < kBlock; ++c) {
          const int q = code_q6(codes, r, c);
          const auto sc = static_cast<int8_t>(grp[L.sc_off + static_cast<size_t>((2 * b + c / 16) * kGroupRows + r)]);
          o[c] = d * static_cast<float>(sc) * static_cast<float>(q - 32);
        }
        break;
      }
      default:
        QVL_ASSERT(false);
    }
  }
}

}  // namespace detail

}  // namespace qvl::kernels
