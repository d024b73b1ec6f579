#include "formats/ggml_quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "core/dtype.h"
#include "core/thread_pool.h"
#include "formats/ggml_quants.h"

namespace qvl {

namespace {

// Every expression below keeps ggml's operand order: float arithmetic is not associative, and
// one differently rounded sum can move a scale by an ulp and with it a whole block of codes.

// Round half to even for |v| < 2^22: adding 1.5 * 2^23 leaves round(v) in the low mantissa bits
// (ggml's rounding for the k-quants; it differs from std::round on halves).
int round_even(float v) {
  const float shifted = v + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &shifted, 4);
  return (bits & 0x007fffff) - 0x00400000;
}

void put_f16(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}

float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// Q8_0: 32 values → fp16 scale amax / 127, int8 codes round(x / scale) (half away from zero).
void block_q8_0(const float* x, uint8_t* out) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float inv = d != 0.0f ? 1.0f / d : 0.0f;
  put_f16(out, d);
  for (int j = 0; j < 32; ++j) out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::round(x[j] * inv)));
}

// The first of a block's 32 values with the largest magnitude, sign kept (Q4_0's and Q5_0's
// scale maps it to code 0).
float signed_extreme(const float* x) {
  float amax = 0.0f, extreme = 0.0f;
  for (int j = 0; j < 32; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      extreme = x[j];
    }
  }
  return extreme;
}

// Q4_0: the scale is the signed value of largest magnitude (the first one) over -8, so it maps to
// code 0; codes are truncated after a +8.5 offset, capped at 15. Element j and j + 16 share a byte.
void block_q4_0(const float* x, uint8_t* out) {
  const float d = signed_extreme(x) / -8.0f;
  const float inv = d != 0.0f ? 1.0f / d : 0.0f;
  put_f16(out, d);
  auto code = [&](float v) {
    return static_cast<uint8_t>(std::min<int>(15, static_cast<int8_t>(v * inv + 8.5f)));
  };
  for (int j = 0; j < 16; ++j) out[2 + j] = static_cast<uint8_t>(code(x[j]) | (code(x[j + 16]) << 4));
}

// Q5_0: as Q4_0 with 5-bit codes (the scale maps the extreme value to code 0 of 32); the fifth
// bits of all 32 codes form the 32-bit qh. Layout: d, qh, qs[16].
void block_q5_0(const float* x, uint8_t* out) {
  const float d = signed_extreme(x) / -16.0f;
  const float inv = d != 0.0f ? 1.0f / d : 0.0f;
  put_f16(out, d);
  auto code = [&](float v) { return std::min<int>(31, static_cast<int8_t>(v * inv + 16.5f)); };
  uint32_t high_bits = 0;
  for (int j = 0; j < 16; ++j) {
    const int lo = code(x[j]), hi = code(x[j + 16]);
    out[6 + j] = static_cast<uint8_t>((lo & 0x0F) | ((hi & 0x0F) << 4));
    high_bits |= static_cast<uint32_t>((lo >> 4) & 1) << j;
    high_bits |= static_cast<uint32_t>((hi >> 4) & 1) << (j + 16);
  }
  std::memcpy(out + 2, &high_bits, 4);
}

// Scale and minimum of one 32-value Q4_K group with weights w: codes in [0, nmax] for
// x ≈ scale * code - min_out. Starts from the plain min/max fit, then tries 21 scales around it
// (the code range stretched by -1 .. +1 in steps of 0.1), each refit by weighted least squares,
// and keeps the one with the smallest weighted squared error.
float fit_scale_min(const float* x, const float* w, int nmax, uint8_t* codes, float* min_out) {
  constexpr int kN = 32, kSteps = 20;
  constexpr float kFirstStretch = -1.0f, kStretchStep = 0.1f;
  float lo = x[0], hi = x[0];
  float sum_w = w[0], sum_x = sum_w * x[0];
  for (int i = 1; i < kN; ++i) {
    if (x[i] < lo) lo = x[i];
    if (x[i] > hi) hi = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (lo > 0) lo = 0;
  if (hi == lo) {
    std::fill(codes, codes + kN, uint8_t{0});
    *min_out = -lo;
    return 0.0f;
  }
  float inv = static_cast<float>(nmax) / (hi - lo);
  float scale = 1.0f / inv;
  float best_error = 0.0f;
  for (int i = 0; i < kN; ++i) {
    codes[i] = static_cast<uint8_t>(std::clamp(round_even(inv * (x[i] - lo)), 0, nmax));
    float diff = scale * codes[i] + lo - x[i];
    diff = diff * diff;
    best_error += w[i] * diff;
  }
  uint8_t trial[kN];
  for (int step = 0; step <= kSteps; ++step) {
    inv = (kFirstStretch + kStretchStep * static_cast<float>(step) + static_cast<float>(nmax)) / (hi - lo);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < kN; ++i) {
      const int l = std::clamp(round_even(inv * (x[i] - lo)), 0, nmax);
      trial[i] = static_cast<uint8_t>(l);
      const float fl = static_cast<float>(l);
      sum_l += w[i] * fl;
      sum_l2 += w[i] * fl * fl;
      sum_xl += w[i] * fl * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (!(det > 0)) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    float error = 0;
    for (int i = 0; i < kN; ++i) {
      float diff = this_scale * trial[i] + this_min - x[i];
      diff = diff * diff;
      error += w[i] * diff;
    }
    if (error < best_error) {
      std::copy(trial, trial + kN, codes);
      best_error = error;
      scale = this_scale;
      lo = this_min;
    }
  }
  *min_out = -lo;
  return scale;
}

// Q4_K: 8 groups of 32 values, each with a 6-bit scale and 6-bit minimum relative to the
// super-block's fp16 d and dmin; 4-bit codes. Layout: d, dmin, scales[12], qs[128].
void block_q4_k(const float* x, uint8_t* out) {
  uint8_t codes[256];
  float scales[8], mins[8], weights[32];
  float max_scale = 0, max_min = 0;
  for (int g = 0; g < 8; ++g) {
    const float* xg = x + 32 * g;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xg[l] * xg[l];
    const float rms = std::sqrt(sum_x2 / 32.0f);
    for (int l = 0; l < 32; ++l) weights[l] = rms + std::fabs(xg[l]);
    scales[g] = fit_scale_min(xg, weights, 15, codes + 32 * g, &mins[g]);
    if (scales[g] > max_scale) max_scale = scales[g];
    if (mins[g] > max_min) max_min = mins[g];
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  uint8_t* packed = out + 4;  // 12 bytes: 8 six-bit scales and 8 six-bit minima
  uint8_t sc6[8], mn6[8];
  for (int g = 0; g < 8; ++g) {
    // ggml stores the rounded value in a byte before capping it (a negative one wraps).
    sc6[g] = std::min<uint8_t>(63, static_cast<uint8_t>(round_even(inv_scale * scales[g])));
    mn6[g] = std::min<uint8_t>(63, static_cast<uint8_t>(round_even(inv_min * mins[g])));
  }
  for (int g = 0; g < 4; ++g) {
    packed[g] = static_cast<uint8_t>(sc6[g] | ((sc6[g + 4] >> 4) << 6));
    packed[g + 4] = static_cast<uint8_t>(mn6[g] | ((mn6[g + 4] >> 4) << 6));
    packed[g + 8] = static_cast<uint8_t>((sc6[g + 4] & 0x0F) | ((mn6[g + 4] & 0x0F) << 4));
  }
  put_f16(out, max_scale / 63.0f);
  put_f16(out + 2, max_min / 63.0f);
  // Codes are recomputed against the rounded scales; a group whose scale rounded to 0 keeps the
  // codes of its fit.
  const float d = f16_at(out), dmin = f16_at(out + 2);
  for (int g = 0; g < 8; ++g) {
    const float dg = d * static_cast<float>(sc6[g]);
    if (dg == 0.0f) continue;
    const float mg = dmin * static_cast<float>(mn6[g]);
    for (int l = 0; l < 32; ++l) codes[32 * g + l] = static_cast<uint8_t>(std::clamp(round_even((x[32 * g + l] + mg) / dg), 0, 15));
  }
  uint8_t* qs = out + 16;
  for (int chunk = 0; chunk < 4; ++chunk)  // 64 values: the low nibbles hold the first 32
    for (int l = 0; l < 32; ++l)
      qs[32 * chunk + l] = static_cast<uint8_t>(codes[64 * chunk + l] | (codes[64 * chunk + 32 + l] << 4));
}

// The symmetric scale of one 16-value Q6_K group: codes l in [-nmax, nmax - 1] (stored + nmax)
// for x ≈ scale * l. The first fit maps the value of largest magnitude to -nmax; 18 nearby
// scales (-nmax ± 0.1 .. 0.9) are tried, each refit by least squares weighted by x², and the one
// that explains the most weighted energy is kept.
float fit_symmetric_scale(const float* x, int nmax, int8_t* codes) {
  constexpr int kN = 16;
  constexpr float kTinyGroup = 1e-15f;
  float amax = 0, extreme = 0;
  for (int i = 0; i < kN; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      extreme = x[i];
    }
  }
  if (amax < kTinyGroup) {
    std::fill(codes, codes + kN, int8_t{0});
    return 0.0f;
  }
  auto code_of = [nmax](float v) { return std::clamp(round_even(v), -nmax, nmax - 1); };
  auto sums = [&](float inv, float* sum_lx, float* sum_l2) {
    *sum_lx = *sum_l2 = 0;
    for (int i = 0; i < kN; ++i) {
      const float l = static_cast<float>(code_of(inv * x[i]));
      const float w = x[i] * x[i];
      *sum_lx += w * x[i] * l;
      *sum_l2 += w * l * l;
    }
  };
  float inv = static_cast<float>(-nmax) / extreme;
  for (int i = 0; i < kN; ++i) codes[i] = static_cast<int8_t>(code_of(inv * x[i]) + nmax);
  float sum_lx, sum_l2;
  sums(inv, &sum_lx, &sum_l2);
  float scale = sum_l2 != 0 ? sum_lx / sum_l2 : 0.0f;
  float best = scale * sum_lx;
  for (int step = -9; step <= 9; ++step) {
    if (step == 0) continue;
    inv = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(step)) / extreme;
    sums(inv, &sum_lx, &sum_l2);
    if (sum_l2 > 0 && sum_lx * sum_lx > best * sum_l2) {
      for (int i = 0; i < kN; ++i) codes[i] = static_cast<int8_t>(code_of(inv * x[i]) + nmax);
      scale = sum_lx / sum_l2;
      best = scale * sum_lx;
    }
  }
  return scale;
}

// Q6_K: 16 groups of 16 values with int8 scales relative to the super-block's fp16 d; 6-bit
// codes split into low nibbles (ql) and high bit pairs (qh). Layout: ql[128], qh[64],
// scales[16], d.
void block_q6_k(const float* x, uint8_t* out) {
  int8_t codes[256];
  float scales[16];
  float max_scale = 0, max_abs_scale = 0;
  for (int g = 0; g < 16; ++g) {
    scales[g] = fit_symmetric_scale(x + 16 * g, 32, codes + 16 * g);
    if (std::fabs(scales[g]) > max_abs_scale) {
      max_abs_scale = std::fabs(scales[g]);
      max_scale = scales[g];
    }
  }
  std::memset(out, 0, 210);
  if (max_abs_scale < 1e-15f) return;  // an all-zero block: d = 0 and every code 0
  uint8_t* ql = out;
  uint8_t* qh = out + 128;
  auto* sc = reinterpret_cast<int8_t*>(out + 192);
  const float inv = -128.0f / max_scale;
  put_f16(out + 208, 1.0f / inv);
  for (int g = 0; g < 16; ++g) sc[g] = static_cast<int8_t>(std::min(127, round_even(inv * scales[g])));
  const float d = f16_at(out + 208);
  for (int g = 0; g < 16; ++g) {
    const float dg = d * static_cast<float>(sc[g]);
    if (dg == 0.0f) continue;  // keeps the codes of the group's fit
    for (int l = 0; l < 16; ++l)
      codes[16 * g + l] = static_cast<int8_t>(std::clamp(round_even(x[16 * g + l] / dg), -32, 31) + 32);
  }
  for (int half = 0; half < 2; ++half) {  // 128 values: four runs of 32 share ql / qh bytes
    const int8_t* c = codes + 128 * half;
    for (int l = 0; l < 32; ++l) {
      ql[l] = static_cast<uint8_t>((c[l] & 0x0F) | ((c[l + 64] & 0x0F) << 4));
      ql[l + 32] = static_cast<uint8_t>((c[l + 32] & 0x0F) | ((c[l + 96] & 0x0F) << 4));
      qh[l] = static_cast<uint8_t>((c[l] >> 4) | ((c[l + 32] >> 4) << 2) | ((c[l + 64] >> 4) << 4) | ((c[l + 96] >> 4) << 6));
    }
    ql += 64;
    qh += 32;
  }
}

using BlockQuantizer = void (*)(const float*, uint8_t*);

BlockQuantizer block_quantizer(GgmlType type) {
  switch (type) {
    case GgmlType::kQ8_0: return block_q8_0;
    case GgmlType::kQ4_0: return block_q4_0;
    case GgmlType::kQ5_0: return block_q5_0;
    case GgmlType::kQ4_K: return block_q4_k;
    case GgmlType::kQ6_K: return block_q6_k;
    default: return nullptr;
  }
}

}  // namespace

bool ggml_type_quantizable(GgmlType type) { return block_quantizer(type) != nullptr; }

void quantize_ggml(GgmlType type, const float* values, int64_t count, void* out) {
  const BlockQuantizer quantize = block_quantizer(type);
  const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(type));
  if (quantize == nullptr)
    fail(ErrorKind::kUnsupported, "qvl cannot quantize to ggml type ", info ? info->name : "?", " (",
         static_cast<uint32_t>(type), "); it writes Q8_0, Q4_0, Q5_0, Q4_K and Q6_K");
  QVL_ASSERT(count % info->block_elems == 0);
  auto* dst = static_cast<uint8_t*>(out);
  for (int64_t b = 0; b < count / info->block_elems; ++b)
    quantize(values + b * info->block_elems, dst + static_cast<size_t>(b * info->block_bytes));
}

void quantize_ggml_matrix(GgmlType type, const float* values, int64_t rows, int64_t cols, void* out, ThreadPool* pool) {
  const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(type));
  QVL_ASSERT(info != nullptr && cols % info->block_elems == 0);
  const int64_t row_bytes = cols / info->block_elems * info->block_bytes;
  auto run = [&](int64_t begin, int64_t end, int) {
    for (int64_t r = begin; r < end; ++r)
      quantize_ggml(type, values + r * cols, cols, static_cast<uint8_t*>(out) + static_cast<size_t>(r * row_bytes));
  };
  if (pool != nullptr) {
    pool->parallel_for_chunked(rows, run);
  } else {
    run(0, rows, 0);
  }
}

kernels::QuantizedMatrix quantize_q6_k_matrix(const kernels::WeightMatrix& src, ThreadPool* pool) {
  if (!kernels::can_quantize(kernels::WeightFormat::kGgmlQ6_K, src.rows, src.cols))
    fail(ErrorKind::kInvalidArgument, "quantize_q6_k_matrix: a ", src.rows, " x ", src.cols,
         " matrix cannot be stored as q6_k (columns must be a multiple of 32)");
  constexpr int64_t kSuper = 256;  // values per Q6_K super-block
  const int64_t padded = (src.cols + kSuper - 1) / kSuper * kSuper, supers = padded / kSuper;
  const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(GgmlType::kQ6_K));
  // Per thread: the padded row, its blocks, and the blocks taken apart (whole super-blocks).
  struct Scratch {
    std::vector<float> row;
    std::vector<uint8_t> blocks, sc, codes;
    std::vector<uint16_t> d;
  };
  return kernels::pack_ggml_k_blocks(
      kernels::WeightFormat::kGgmlQ6_K, src.rows, src.cols,
      [&](int64_t r, const kernels::GgmlKRow& out) {
        thread_local Scratch s;
        s.row.assign(static_cast<size_t>(padded), 0.0f);
        s.blocks.resize(static_cast<size_t>(supers) * info->block_bytes);
        s.sc.resize(static_cast<size_t>(padded / 16));
        s.codes.resize(static_cast<size_t>(padded));
        s.d.resize(static_cast<size_t>(supers));
        kernels::gather_row(src, r, s.row.data());
        quantize_ggml(GgmlType::kQ6_K, s.row.data(), padded, s.blocks.data());
        ggml_k_blocks_to_row(GgmlType::kQ6_K, s.blocks.data(), padded,
                             kernels::GgmlKRow{s.d.data(), nullptr, s.sc.data(), nullptr, s.codes.data()});
        std::copy(s.d.begin(), s.d.end(), out.d);
        std::copy_n(s.sc.begin(), src.cols / 16, out.sc);
        std::copy_n(s.codes.begin(), src.cols, out.codes);
      },
      pool);
}

}  // namespace qvl
