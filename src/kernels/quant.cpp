// Quantized weight formats: layout, quantization (load time) and dequantization.
#include "kernels/quant.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/reference.h"

namespace qvl::kernels {

std::string_view weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::kDense: return "dense";
    case WeightFormat::kQ8_0: return "q8_0";
    case WeightFormat::kQ4_0: return "q4_0";
    case WeightFormat::kQ4_K: return "q4_k";
  }
  return "?";
}

WeightFormat parse_weight_format(std::string_view name) {
  std::string s(name);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (WeightFormat f : {WeightFormat::kDense, WeightFormat::kQ8_0, WeightFormat::kQ4_0, WeightFormat::kQ4_K})
    if (s == weight_format_name(f)) return f;
  fail(ErrorKind::kInvalidArgument, "unknown weight format '", name, "' (expected q8_0, q4_0, q4_k or dense)");
}

bool can_quantize(WeightFormat format, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return false;
  if (format == WeightFormat::kDense) return false;
  return cols % detail::kBlock == 0;
}

size_t weight_storage_bytes(WeightFormat format, DType dtype, int64_t rows, int64_t cols) {
  if (format == WeightFormat::kDense) return static_cast<size_t>(rows * cols) * dtype_size(dtype);
  return detail::q_layout(format, rows, cols).total_bytes();
}

void QuantizedMatrix::Free::operator()(uint8_t* p) const { ::operator delete(p, std::align_val_t(64)); }

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
    case WeightFormat::kQ4_K: {
      L.codes_per_block = 256;
      L.nsb = (L.nb + kSuperBlocks - 1) / kSuperBlocks;
      const size_t nsb = static_cast<size_t>(L.nsb);
      L.scales_off = nb * 256;
      L.dmin_off = L.scales_off + nsb * 32;
      L.sc_off = L.dmin_off + nsb * 32;
      L.mn_off = L.sc_off + nb * 16;
      L.group_bytes = round_up(L.mn_off + nb * 16, 64);
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

// Position of column c (0..31) of row r inside a block's codes, and the nibble shift (Q4).
inline size_t q8_pos(int64_t r, int64_t c) { return static_cast<size_t>((c / 4) * 64 + r * 4 + (c % 4)); }
inline size_t q4_pos(int64_t r, int64_t c) { return static_cast<size_t>(((c / 4) % 4) * 64 + r * 4 + (c % 4)); }
inline int q4_shift(int64_t c) { return c / 4 < 4 ? 0 : 4; }

// Round to nearest even for |v| < 2^22 (all values rounded here are codes of at most 255, or
// garbage that the clamp removes) without a libm call, so the loops vectorize on any x86-64.
inline float round_ne(float v) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (v + kMagic) - kMagic;
}
inline float round_clamp(float v, float lo, float hi) { return std::min(hi, std::max(lo, round_ne(v))); }

// Best (scale, offset) for value ≈ scale * q + offset, q in 0..15, offset <= 0, minimising the
// squared error: start from the min/max fit, then alternate rounding and least squares.
void fit_scale_min(const float* x, float* scale, float* offset) {
  float lo = 0.0f, hi = x[0];
  for (int c = 0; c < kBlock; ++c) {
    lo = std::min(lo, x[c]);
    hi = std::max(hi, x[c]);
  }
  if (!(hi > lo)) {  // constant non-positive block (or all zero)
    *scale = 0.0f;
    *offset = lo;
    return;
  }
  auto error = [&](float s, float b) {
    const float is = 1.0f / s;
    float e = 0.0f;
    for (int c = 0; c < kBlock; ++c) {
      const float q = round_clamp((x[c] - b) * is, 0.0f, 15.0f);
      const float diff = s * q + b - x[c];
      e += diff * diff;
    }
    return e;
  };
  float best_s = (hi - lo) / 15.0f, best_b = lo;
  float best_e = error(best_s, best_b);
  float s = best_s, b = best_b;
  for (int iter = 0; iter < 3; ++iter) {
    const float is = 1.0f / s;
    float sq = 0, sqq = 0, sx = 0, sqx = 0;
    for (int c = 0; c < kBlock; ++c) {
      const float q = round_clamp((x[c] - b) * is, 0.0f, 15.0f);
      sq += q;
      sqq += q * q;
      sx += x[c];
      sqx += q * x[c];
    }
    const float n = static_cast<float>(kBlock);
    const float det = n * sqq - sq * sq;
    if (!(det > 0.0f)) break;
    float ns = (n * sqx - sq * sx) / det;
    float nb = (sqq * sx - sq * sqx) / det;
    if (nb > 0.0f) {
      nb = 0.0f;
      ns = sqx / sqq;
    }
    if (!(ns > 0.0f)) break;
    s = ns;
    b = nb;
    const float e = error(s, b);
    if (e < best_e) {
      best_e = e;
      best_s = s;
      best_b = b;
    }
  }
  *scale = best_s;
  *offset = best_b;
}

void quantize_group(const QLayout& L, const float* rows /* [16][cols] */, uint8_t* grp) {
  const int64_t nb = L.nb, cols = L.cols;
  switch (L.format) {
    case WeightFormat::kQ8_0:
      for (int64_t b = 0; b < nb; ++b) {
        uint8_t* codes = grp + static_cast<size_t>(b) * L.codes_per_block;
        for (int64_t r = 0; r < kGroupRows; ++r) {
          const float* x = rows + r * cols + b * kBlock;
          float amax = 0.0f;
          for (int c = 0; c < kBlock; ++c) amax = std::max(amax, std::fabs(x[c]));
          const uint16_t h = f16_round_away(amax / 127.0f);
          const float d = f16_to_f32(h);
          const float id = d > 0.0f ? 1.0f / d : 0.0f;
          for (int c = 0; c < kBlock; ++c)
            codes[q8_pos(r, c)] = static_cast<uint8_t>(static_cast<int>(round_clamp(x[c] * id, -127.0f, 127.0f)) + 128);
          put_u16(grp + L.scales_off + static_cast<size_t>(b * kGroupRows + r) * 2, h);
        }
      }
      break;
    case WeightFormat::kQ4_0:
      for (int64_t b = 0; b < nb; ++b) {
        uint8_t* codes = grp + static_cast<size_t>(b) * L.codes_per_block;
        for (int64_t r = 0; r < kGroupRows; ++r) {
          const float* x = rows + r * cols + b * kBlock;
          float amax = 0.0f, extreme = 0.0f;
          for (int c = 0; c < kBlock; ++c) {
            if (std::fabs(x[c]) > amax) {
              amax = std::fabs(x[c]);
              extreme = x[c];
            }
          }
          const uint16_t h = f16_round_away(extreme / -8.0f);  // the extreme value maps to code 0
          const float d = f16_to_f32(h);
          const float id = d != 0.0f ? 1.0f / d : 0.0f;
          for (int c = 0; c < kBlock; ++c) {
            const auto q = static_cast<uint8_t>(round_clamp(x[c] * id + 8.0f, 0.0f, 15.0f));
            codes[q4_pos(r, c)] |= static_cast<uint8_t>(q << q4_shift(c));
          }
          put_u16(grp + L.scales_off + static_cast<size_t>(b * kGroupRows + r) * 2, h);
        }
      }
      break;
    case WeightFormat::kQ4_K: {
      float sc[kSuperBlocks], mn[kSuperBlocks];
      for (int64_t sb = 0; sb < L.nsb; ++sb) {
        const int64_t b0 = sb * kSuperBlocks, b1 = std::min(nb, b0 + kSuperBlocks);
        for (int64_t r = 0; r < kGroupRows; ++r) {
          float smax = 0.0f, mmax = 0.0f;
          for (int64_t b = b0; b < b1; ++b) {
            float s, off;
            fit_scale_min(rows + r * cols + b * kBlock, &s, &off);
            sc[b - b0] = s;
            mn[b - b0] = -off;
            smax = std::max(smax, s);
            mmax = std::max(mmax, -off);
          }
          const uint16_t hd = bf16_round_up(smax / 255.0f), hm = bf16_round_up(mmax / 255.0f);
          const float D = bf16_to_f32(hd), M = bf16_to_f32(hm);
          put_u16(grp + L.scales_off + static_cast<size_t>(sb * kGroupRows + r) * 2, hd);
          put_u16(grp + L.dmin_off + static_cast<size_t>(sb * kGroupRows + r) * 2, hm);
          for (int64_t b = b0; b < b1; ++b) {
            const auto isc = static_cast<uint8_t>(D > 0.0f ? round_clamp(sc[b - b0] / D, 0.0f, 255.0f) : 0.0f);
            const auto imn = static_cast<uint8_t>(M > 0.0f ? round_clamp(mn[b - b0] / M, 0.0f, 255.0f) : 0.0f);
            grp[L.sc_off + static_cast<size_t>(b * kGroupRows + r)] = isc;
            grp[L.mn_off + static_cast<size_t>(b * kGroupRows + r)] = imn;
            const float s = D * static_cast<float>(isc), m = M * static_cast<float>(imn);
            const float is = s > 0.0f ? 1.0f / s : 0.0f;
            const float* x = rows + r * cols + b * kBlock;
            uint8_t* codes = grp + static_cast<size_t>(b) * L.codes_per_block;
            for (int c = 0; c < kBlock; ++c) {
              const auto q = static_cast<uint8_t>(round_clamp((x[c] + m) * is, 0.0f, 15.0f));
              codes[q4_pos(r, c)] |= static_cast<uint8_t>(q << q4_shift(c));
            }
          }
        }
      }
      break;
    }
    default:
      QVL_ASSERT(false);
  }
}

}  // namespace

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
        for (int c = 0; c < kBlock; ++c) o[c] = d * static_cast<float>(static_cast<int>(codes[q8_pos(r, c)]) - 128);
        break;
      }
      case WeightFormat::kQ4_0: {
        const float d = f16_to_f32(u16(L.scales_off + static_cast<size_t>(b * kGroupRows + r) * 2));
        for (int c = 0; c < kBlock; ++c)
          o[c] = d * static_cast<float>(((codes[q4_pos(r, c)] >> q4_shift(c)) & 0x0f) - 8);
        break;
      }
      case WeightFormat::kQ4_K: {
        const int64_t sb = b / kSuperBlocks;
        const float s = bf16_to_f32(u16(L.scales_off + static_cast<size_t>(sb * kGroupRows + r) * 2)) *
                        static_cast<float>(grp[L.sc_off + static_cast<size_t>(b * kGroupRows + r)]);
        const float m = bf16_to_f32(u16(L.dmin_off + static_cast<size_t>(sb * kGroupRows + r) * 2)) *
                        static_cast<float>(grp[L.mn_off + static_cast<size_t>(b * kGroupRows + r)]);
        for (int c = 0; c < kBlock; ++c)
          o[c] = s * static_cast<float>((codes[q4_pos(r, c)] >> q4_shift(c)) & 0x0f) - m;
        break;
      }
      default:
        QVL_ASSERT(false);
    }
  }
}

}  // namespace detail

QuantizedMatrix quantize_matrix(const WeightMatrix& src, WeightFormat format, ThreadPool* pool) {
  if (format == WeightFormat::kDense)
    fail(ErrorKind::kInvalidArgument, "quantize_matrix: the target format must be a quantized one");
  if (!src.data) fail(ErrorKind::kInvalidArgument, "quantize_matrix: matrix has no data");
  if (!src.quantized() && src.dtype != DType::kF32 && src.dtype != DType::kF16 && src.dtype != DType::kBF16)
    fail(ErrorKind::kUnsupported, "quantize_matrix: cannot quantize ", dtype_name(src.dtype), " weights");
  const detail::QLayout L = detail::q_layout(format, src.rows, src.cols);  // validates the shape

  QuantizedMatrix out;
  out.size_ = L.total_bytes();
  out.buffer_.reset(static_cast<uint8_t*>(::operator new(out.size_, std::align_val_t(64))));
  uint8_t* data = out.buffer_.get();
  std::memset(data, 0, out.size_);

  auto work = [&](int64_t g0, int64_t g1, int) {
    std::vector<float> rows(static_cast<size_t>(detail::kGroupRows * L.cols));
    for (int64_t g = g0; g < g1; ++g) {
      std::fill(rows.begin(), rows.end(), 0.0f);
      for (int64_t r = 0; r < detail::kGroupRows; ++r) {
        const int64_t row = g * detail::kGroupRows + r;
        if (row < L.rows) gather_row(src, row, rows.data() + r * L.cols);
      }
      detail::quantize_group(L, rows.data(), data + static_cast<size_t>(g) * L.group_bytes);
    }
  };
  if (pool) pool->parallel_for(L.groups, work);
  else work(0, L.groups, 0);

  out.view_ = WeightMatrix{DType::kU8, src.rows, src.cols, data, format};
  return out;
}

void dequantize_matrix(const WeightMatrix& w, float* out, ThreadPool* pool) {
  auto work = [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) ref::gather_row(w, r, out + r * w.cols);
  };
  if (pool) pool->parallel_for(w.rows, work, 16);
  else work(0, w.rows, 0);
}

}  // namespace qvl::kernels
