// Kernels: every dispatched implementation (each ISA level this CPU supports) against the scalar
// reference or an exact double-precision computation. Tolerances are forward error bounds of the
// arithmetic each kernel performs (u = 2^-24, gamma(n) = n u / (1 - n u)), not fitted numbers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/attention_bf16.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "kernels/reference.h"
#include "kernels/simd.h"
#include "test_util.h"

namespace qvl::kernels {
namespace {

constexpr double kU = 1.0 / (1 << 24);  // unit roundoff of fp32
double gamma(double n) { return n * kU / (1.0 - n * kU); }

// Every level this CPU supports (and QVL_MAX_ISA allows): each dispatch target gets tested.
std::vector<Isa> supported_isas() {
  const Isa top = set_max_isa(Isa::kAVX512);
  std::vector<Isa> out;
  for (Isa isa : {Isa::kScalar, Isa::kSSE4, Isa::kAVX2, Isa::kAVX512})
    if (isa <= top) out.push_back(isa);
  return out;
}

std::string isa_param_name(const ::testing::TestParamInfo<Isa>& info) { return std::string(isa_name(info.param)); }

class IsaTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override { ASSERT_EQ(set_max_isa(GetParam()), GetParam()); }
  void TearDown() override { set_max_isa(Isa::kAVX512); }
};

std::vector<float> randn(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::vector<float> randu(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// A dense matrix in some dtype plus its exact fp32 values.
struct Dense {
  std::vector<uint8_t> bytes;
  std::vector<float> values;
  WeightMatrix w;
};

Dense make_dense(DType t, int64_t rows, int64_t cols, uint32_t seed, float sigma = 0.5f) {
  Dense d;
  d.values = randn(static_cast<size_t>(rows * cols), seed, sigma);
  d.bytes.resize(static_cast<size_t>(rows * cols) * dtype_size(t));
  for (size_t i = 0; i < d.values.size(); ++i) {
    if (t == DType::kF32) {
      std::memcpy(d.bytes.data() + 4 * i, &d.values[i], 4);
    } else {
      const uint16_t h = t == DType::kBF16 ? f32_to_bf16(d.values[i]) : f32_to_f16(d.values[i]);
      std::memcpy(d.bytes.data() + 2 * i, &h, 2);
      d.values[i] = t == DType::kBF16 ? bf16_to_f32(h) : f16_to_f32(h);
    }
  }
  d.w = WeightMatrix{t, rows, cols, d.bytes.data()};
  return d;
}

// ---- ISA selection ------------------------------------------------------------------------------

TEST(Isa, SetMaxIsaClampsToTheCpu) {
  EXPECT_EQ(set_max_isa(Isa::kScalar), Isa::kScalar);
  EXPECT_EQ(active_isa(), Isa::kScalar);
  const Isa top = set_max_isa(Isa::kAVX512);
  // Everything the CPU has, unless QVL_MAX_ISA caps the process.
  const char* cap = std::getenv("QVL_MAX_ISA");
  if (cap == nullptr || *cap == '\0') EXPECT_EQ(top, detected_isa());
  else EXPECT_LE(top, detected_isa());
  EXPECT_EQ(active_isa(), top);
  // Highway's dispatch follows the cap: the GEMM panel is two vectors of fp32.
  const int64_t panel[] = {0, 8, 16, 32};
  for (Isa isa : supported_isas()) {
    set_max_isa(isa);
    if (isa != Isa::kScalar) {
      EXPECT_EQ(detail::dense_gemm_panel_rows(), panel[static_cast<int>(isa)]) << isa_name(isa);
    }
  }
  set_max_isa(Isa::kAVX512);
  std::printf("detected ISA: %s\n", std::string(isa_name(detected_isa())).c_str());
}

// ---- dense matmul -------------------------------------------------------------------------------

TEST_P(IsaTest, DenseMatmulMatchesExact) {
  for (DType t : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (int64_t rows : {1, 3, 17, 33}) {
      for (int64_t cols : {1, 5, 31, 32, 33, 100, 257}) {
        const Dense W = make_dense(t, rows, cols, static_cast<uint32_t>(rows * 1000 + cols));
        const std::vector<float> bias = randn(static_cast<size_t>(rows), 7);
        for (int64_t m : {1, 2, 7, 64}) {
          const std::vector<float> x = randn(static_cast<size_t>(m * cols), static_cast<uint32_t>(m + 99));
          for (bool with_bias : {false, true}) {
            std::vector<float> y(static_cast<size_t>(m * rows), NAN);
            matmul(x.data(), m, W.w, with_bias ? bias.data() : nullptr, y.data(), nullptr);
            for (int64_t i = 0; i < m; ++i) {
              for (int64_t r = 0; r < rows; ++r) {
                double exact = with_bias ? bias[r] : 0.0, mag = with_bias ? std::fabs(bias[r]) : 0.0;
                for (int64_t c = 0; c < cols; ++c) {
                  const double p = static_cast<double>(x[i * cols + c]) * W.values[r * cols + c];
                  exact += p;
                  mag += std::fabs(p);
                }
                // Any summation order of cols products plus the bias: gamma(cols + 1) * sum |terms|.
                const double tol = gamma(static_cast<double>(cols + 1)) * mag + 1e-30;
                ASSERT_LE(std::fabs(y[i * rows + r] - exact), tol)
                    << dtype_name(t) << " rows=" << rows << " cols=" << cols << " m=" << m << " i=" << i << " r=" << r;
              }
            }
          }
        }
      }
    }
  }
}

TEST_P(IsaTest, GatherRowDense) {
  for (DType t : {DType::kF32, DType::kBF16, DType::kF16}) {
    const Dense W = make_dense(t, 5, 77, 3);
    std::vector<float> out(77);
    for (int64_t r = 0; r < 5; ++r) {
      gather_row(W.w, r, out.data());
      for (int64_t c = 0; c < 77; ++c) ASSERT_EQ(out[c], W.values[r * 77 + c]);
    }
  }
}

// ---- quantized formats --------------------------------------------------------------------------

constexpr WeightFormat kQuantFormats[] = {WeightFormat::kQ8_0, WeightFormat::kQ4_0, WeightFormat::kQ4_K};
// Every format the matmul kernels run: qvl's own and ggml's k-quant blocks (packed, not quantized).
constexpr WeightFormat kKernelFormats[] = {WeightFormat::kQ8_0,      WeightFormat::kQ4_0,      WeightFormat::kQ4_K,
                                           WeightFormat::kGgmlQ4_K, WeightFormat::kGgmlQ5_K, WeightFormat::kGgmlQ6_K,
                                           WeightFormat::kGgmlIQ4_XS};

// W in `format`: quantized by qvl, or for the ggml formats random ggml blocks of about W's size
// (random codes, sub-block scales over their whole range, fp16 super-block scales).
QuantizedMatrix quantized_for_test(const WeightMatrix& W, WeightFormat format, uint32_t seed) {
  if (!detail::is_ggml_k_format(format)) return quantize_matrix(W, format);
  const bool q6 = format == WeightFormat::kGgmlQ6_K;
  return pack_ggml_k_blocks(format, W.rows, W.cols, [&](int64_t row, const GgmlKRow& out) {
    std::mt19937 r(seed * 7919u + static_cast<uint32_t>(row));  // rows may be filled in any order
    const int64_t nsb = (W.cols + 255) / 256;
    for (int64_t sb = 0; sb < nsb; ++sb) {
      out.d[sb] = f32_to_f16(std::uniform_real_distribution<float>(1e-4f, 2e-3f)(r));
      out.dmin[sb] = f32_to_f16(std::uniform_real_distribution<float>(1e-4f, 2e-3f)(r));
    }
    for (int64_t j = 0; j < (q6 ? W.cols / 16 : W.cols / 32); ++j) {
      out.sc[j] = static_cast<uint8_t>(q6 ? static_cast<int>(r() % 256) - 128 : static_cast<int>(r() % 64));
      out.mn[j] = static_cast<uint8_t>(r() % 64);
    }
    const uint32_t levels = q6 ? 64 : format == WeightFormat::kGgmlQ5_K ? 32 : 16;
    for (int64_t c = 0; c < W.cols; ++c) out.codes[c] = static_cast<uint8_t>(r() % levels);
  });
}

// Decodes (scale, offset, code) of weight (row, col) straight from the documented layout, so
// the tests check the layout as well: value = scale * code - offset.
struct Decoded {
  double scale, offset;
  int code;
};
Decoded decode(const detail::QLayout& L, const uint8_t* data, int64_t row, int64_t col) {
  const int64_t g = row / 16, r = row % 16, b = col / 32, c = col % 32;
  const uint8_t* grp = data + g * L.group_bytes;
  const uint8_t* codes = grp + b * L.codes_per_block;
  auto u16 = [&](size_t off) {
    uint16_t h;
    std::memcpy(&h, grp + off, 2);
    return h;
  };
  Decoded d{};
  if (L.format == WeightFormat::kQ8_0) {
    d.code = static_cast<int>(codes[(c / 4) * 64 + r * 4 + c % 4]) - 128;
    d.scale = f16_to_f32(u16(L.scales_off + (b * 16 + r) * 2));
  } else {
    const int step = static_cast<int>(c / 4);
    const uint8_t byte = codes[(step % 4) * 64 + r * 4 + c % 4];
    const int q = step < 4 ? (byte & 15) : (byte >> 4);
    const int64_t sb = b / 8;
    if (L.format == WeightFormat::kQ4_0) {
      d.code = q - 8;
      d.scale = f16_to_f32(u16(L.scales_off + (b * 16 + r) * 2));
    } else if (L.format == WeightFormat::kGgmlQ6_K) {
      // High bits: two 64-byte vectors after the nibbles, bits 2j..2j+1 for step j (mod 4).
      const int high = (codes[256 + (step < 4 ? 0 : 64) + r * 4 + c % 4] >> (2 * (step % 4))) & 3;
      d.code = (q | (high << 4)) - 32;
      d.scale = static_cast<double>(f16_to_f32(u16(L.scales_off + (sb * 16 + r) * 2))) *
                static_cast<int8_t>(grp[L.sc_off + (2 * b + c / 16) * 16 + r]);
    } else if (L.format == WeightFormat::kGgmlIQ4_XS) {
      static constexpr int kLevels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
      d.code = kLevels[q];
      d.scale = static_cast<double>(f16_to_f32(u16(L.scales_off + (sb * 16 + r) * 2))) * (grp[L.sc_off + b * 16 + r] - 32);
    } else {
      const bool bf16 = L.format == WeightFormat::kQ4_K;
      auto super = [&](size_t off) { return bf16 ? bf16_to_f32(u16(off)) : f16_to_f32(u16(off)); };
      // Q5_K: a fifth bit per code in the 64 bytes after the nibbles, bit s for step s.
      const int fifth = L.format == WeightFormat::kGgmlQ5_K ? (codes[256 + r * 4 + c % 4] >> step) & 1 : 0;
      d.code = q | (fifth << 4);
      d.scale = static_cast<double>(super(L.scales_off + (sb * 16 + r) * 2)) * grp[L.sc_off + b * 16 + r];
      d.offset = static_cast<double>(super(L.dmin_off + (sb * 16 + r) * 2)) * grp[L.mn_off + b * 16 + r];
    }
  }
  return d;
}

TEST(Quantize, RejectsBadShapesAndFormats) {
  const Dense W = make_dense(DType::kF32, 4, 48, 1);
  for (WeightFormat f : kQuantFormats) {
    EXPECT_FALSE(can_quantize(f, 4, 48));
    try {
      quantize_matrix(W.w, f);
      ADD_FAILURE() << "expected qvl::Error";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("multiple of 32"), std::string::npos) << e.what();
    }
  }
  const Dense ok = make_dense(DType::kF32, 4, 64, 1);
  EXPECT_THROW(quantize_matrix(ok.w, WeightFormat::kDense), Error);
  EXPECT_TRUE(can_quantize(WeightFormat::kQ4_K, 4, 64));
  EXPECT_EQ(parse_weight_format("Q4_K"), WeightFormat::kQ4_K);
  EXPECT_THROW(parse_weight_format("q3_k"), Error);
  // ggml's formats are packed from ggml blocks only: qvl has no quantizer for them.
  for (WeightFormat f : {WeightFormat::kGgmlQ4_K, WeightFormat::kGgmlQ6_K}) {
    EXPECT_THROW(parse_weight_format(weight_format_name(f)), Error);
    try {
      quantize_matrix(ok.w, f);
      ADD_FAILURE() << "expected qvl::Error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("only packed"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(pack_ggml_k_blocks(WeightFormat::kQ4_K, 4, 256, [](int64_t, const GgmlKRow&) {}), Error);
}

// Element-wise error of quantize -> dequantize, bounded per block from the format's definition.
TEST(Quantize, DequantizeErrorBounds) {
  const int64_t rows = 33, cols = 544;  // 17 blocks: Q4_K ends with a partial super-block
  std::vector<float> vals = randn(static_cast<size_t>(rows * cols), 11, 0.05f);
  vals[5] = 0.9f;  // an outlier
  for (int64_t c = 0; c < 32; ++c) vals[static_cast<size_t>(2 * cols + 64 + c)] = 0.0f;  // an all-zero block
  for (int64_t c = 0; c < 32; ++c) vals[static_cast<size_t>(3 * cols + 96 + c)] = 0.25f;  // a constant block
  const WeightMatrix src{DType::kF32, rows, cols, vals.data()};
  for (WeightFormat f : kQuantFormats) {
    const QuantizedMatrix q = quantize_matrix(src, f);
    const detail::QLayout L = detail::q_layout(f, rows, cols);
    ASSERT_EQ(q.size_bytes(), weight_storage_bytes(q.view()));
    std::vector<float> deq(static_cast<size_t>(rows * cols));
    dequantize_matrix(q, deq.data());
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t b = 0; b < cols / 32; ++b) {
        const float* x = &vals[r * cols + b * 32];
        float amax = 0.0f;
        for (int c = 0; c < 32; ++c) amax = std::max(amax, std::fabs(x[c]));
        for (int c = 0; c < 32; ++c) {
          const int64_t col = b * 32 + c;
          const Decoded d = decode(L, q.bytes(), r, col);
          const double value = d.scale * d.code - d.offset;
          ASSERT_NEAR(deq[r * cols + col], value, 1e-7 * (std::fabs(value) + std::fabs(d.offset)));
          const double err = std::fabs(static_cast<double>(deq[r * cols + col]) - x[c]);
          double bound;
          if (f == WeightFormat::kQ8_0) {
            // scale >= amax/127 (rounded away), so no clamping: half a step plus the rounding of x/scale.
            EXPECT_GE(d.scale * 127.0, amax * (1 - 1e-7));
            bound = d.scale * (0.5 + 128 * kU) + std::fabs(x[c]) * kU;
          } else if (f == WeightFormat::kQ4_0) {
            // The extreme value maps to code -8; the opposite side can reach +8, clamped to +7.
            const double t = x[c] / d.scale;
            bound = std::fabs(d.scale) * ((t <= 7.5 ? 0.5 : 1.0) + 16 * kU) + std::fabs(x[c]) * kU;
          } else {
            // Half a step inside [-offset, 15 scale - offset]; outside, the distance to the range.
            const double lo = -d.offset, hi = 15 * d.scale - d.offset;
            const double outside = std::max({0.0, lo - x[c], x[c] - hi});
            bound = 0.5 * d.scale + outside + 32 * kU * (std::fabs(x[c]) + d.offset + d.scale * 15);
          }
          ASSERT_LE(err, bound) << weight_format_name(f) << " r=" << r << " col=" << col << " x=" << x[c];
        }
      }
    }
    // The zero block decodes to exact zeros.
    for (int64_t c = 0; c < 32; ++c) EXPECT_EQ(deq[static_cast<size_t>(2 * cols + 64 + c)], 0.0f);
  }
}

// Quality ordering on Gaussian weights: Q8_0 << Q4_K < Q4_0, each near its expected level.
TEST(Quantize, RelativeRmsError) {
  const int64_t rows = 64, cols = 2048;
  const std::vector<float> vals = randn(static_cast<size_t>(rows * cols), 5, 0.02f);
  const WeightMatrix src{DType::kF32, rows, cols, vals.data()};
  double rel[4] = {};
  for (WeightFormat f : kQuantFormats) {
    const QuantizedMatrix q = quantize_matrix(src, f);
    std::vector<float> deq(vals.size());
    dequantize_matrix(q, deq.data());
    double se = 0, ss = 0;
    for (size_t i = 0; i < vals.size(); ++i) {
      se += (deq[i] - vals[i]) * static_cast<double>(deq[i] - vals[i]);
      ss += static_cast<double>(vals[i]) * vals[i];
    }
    rel[static_cast<int>(f)] = std::sqrt(se / ss);
    std::printf("%s: relative RMS error %.4f (%.3f bits/weight)\n", std::string(weight_format_name(f)).c_str(),
                rel[static_cast<int>(f)], 8.0 * q.size_bytes() / static_cast<double>(rows * cols));
  }
  EXPECT_LT(rel[1], 0.01);                // Q8_0: step amax/127 ~ 2.3 sigma / 127
  EXPECT_LT(rel[3], 0.9 * rel[2]);        // Q4_K better than Q4_0
  EXPECT_LT(rel[2], 0.15);                // Q4_0: step amax/8
}

TEST(Quantize, ParallelQuantizationIsIdentical) {
  const Dense W = make_dense(DType::kBF16, 70, 320, 9, 0.1f);
  ThreadPool pool(3);
  for (WeightFormat f : kQuantFormats) {
    const QuantizedMatrix a = quantize_matrix(W.w, f);
    const QuantizedMatrix b = quantize_matrix(W.w, f, &pool);
    ASSERT_EQ(a.size_bytes(), b.size_bytes());
    EXPECT_EQ(std::memcmp(a.bytes(), b.bytes(), a.size_bytes()), 0) << weight_format_name(f);
    // Re-quantizing a dequantized Q8_0 matrix reproduces it (its values are on the grid).
    if (f == WeightFormat::kQ8_0) {
      const QuantizedMatrix c = quantize_matrix(a, f);
      EXPECT_EQ(std::memcmp(a.bytes(), c.bytes(), a.size_bytes()), 0);
    }
  }
}

// The observer (qvl bench --profile) sees each matmul once, after it ran, with the matrix as held;
// cleared, it sees nothing.
TEST(MatmulObserver, ReportsEveryCallUntilCleared) {
  struct Seen {
    std::vector<MatmulRecord> records;
    static void add(const MatmulRecord& r, void* self) { static_cast<Seen*>(self)->records.push_back(r); }
  } seen;
  const Dense W = make_dense(DType::kBF16, 48, 64, 3, 0.1f);
  const QuantizedMatrix Q = quantize_matrix(W.w, WeightFormat::kQ4_0);
  std::vector<float> x(3 * 64), y(3 * 48), observed(48), plain(48);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i));
  set_matmul_observer(&Seen::add, &seen);
  matmul(x.data(), 3, W.w, nullptr, y.data(), nullptr);
  matmul(x.data(), 1, Q.view(), nullptr, observed.data(), nullptr);
  set_matmul_observer(nullptr, nullptr);
  matmul(x.data(), 1, Q.view(), nullptr, plain.data(), nullptr);
  ASSERT_EQ(seen.records.size(), 2u);
  const MatmulRecord& dense = seen.records[0];
  EXPECT_EQ(dense.m, 3);
  EXPECT_EQ(dense.rows, 48);
  EXPECT_EQ(dense.cols, 64);
  EXPECT_EQ(dense.format, WeightFormat::kDense);
  EXPECT_EQ(dense.dtype, DType::kBF16);
  EXPECT_EQ(dense.weight_bytes, size_t{48 * 64 * 2});
  EXPECT_GE(dense.seconds, 0.0);
  const MatmulRecord& quant = seen.records[1];
  EXPECT_EQ(quant.m, 1);
  EXPECT_EQ(quant.format, WeightFormat::kQ4_0);
  EXPECT_EQ(quant.weight_bytes, Q.size_bytes());
  EXPECT_EQ(observed, plain);  // observing does not change the product
}

TEST_P(IsaTest, GatherRowQuantized) {
  const Dense W = make_dense(DType::kF32, 20, 96, 4);
  for (WeightFormat f : kKernelFormats) {
    const QuantizedMatrix q = quantized_for_test(W.w, f, 4);
    std::vector<float> all(20 * 96), row(96);
    dequantize_matrix(q, all.data());
    for (int64_t r = 0; r < 20; ++r) {
      gather_row(q, r, row.data());
      for (int64_t c = 0; c < 96; ++c) ASSERT_EQ(row[c], all[r * 96 + c]);
    }
  }
}

TEST_P(IsaTest, ActivationQuantizationIsBitIdentical) {
  const int64_t m = 5, k = 256;
  std::vector<float> x = randn(static_cast<size_t>(m * k), 21, 3.0f);
  for (int c = 0; c < 32; ++c) x[static_cast<size_t>(k + c)] = 0.0f;     // zero block
  for (int c = 0; c < 32; ++c) x[static_cast<size_t>(2 * k + 32 + c)] *= 1e-30f;  // tiny block
  x[static_cast<size_t>(3 * k + 7)] = 1e30f;                                // huge value
  x[static_cast<size_t>(4 * k)] = 0.5f;                                     // ties appear after scaling
  std::vector<int8_t> q1(m * k), q2(m * k);
  const size_t nb = static_cast<size_t>(m * k / 32);
  std::vector<float> d1(nb), d2(nb), s1(nb), s2(nb);
  std::vector<int32_t> i1(nb), i2(nb);
  detail::quantize_acts_scalar(x.data(), m, k, 8, q1.data(), d1.data(), i1.data(), s1.data());
  if (GetParam() == Isa::kScalar) return;  // nothing dispatched to compare
  detail::quantize_acts_simd(x.data(), m, k, 8, q2.data(), d2.data(), i2.data(), s2.data());
  EXPECT_EQ(q1, q2);
  EXPECT_EQ(std::memcmp(d1.data(), d2.data(), nb * 4), 0);
  EXPECT_EQ(i1, i2);
  EXPECT_EQ(std::memcmp(s1.data(), s2.data(), nb * 4), 0);
}

// Quantized matmul: (1) against the exact value of the int8 math (activations rounded by the
// reference rounding), (2) against the fp32 product with the dequantized weights, within the
// activation-rounding bound.
TEST_P(IsaTest, QuantizedMatmul) {
  for (WeightFormat f : kKernelFormats) {
    for (int64_t rows : {1, 3, 17, 33}) {
      for (int64_t cols : {32, 64, 96, 288, 544}) {
        const Dense W = make_dense(DType::kF32, rows, cols, static_cast<uint32_t>(rows * 7 + cols), 0.1f);
        const QuantizedMatrix q = quantized_for_test(W.w, f, static_cast<uint32_t>(rows + cols));
        const detail::QLayout L = detail::q_layout(f, rows, cols);
        std::vector<float> deq(static_cast<size_t>(rows * cols));
        dequantize_matrix(q, deq.data());
        const std::vector<float> bias = randn(static_cast<size_t>(rows), 3);
        for (int64_t m : {1, 2, 7, 64}) {
          const int64_t nb = cols / 32;
          std::vector<float> x = randn(static_cast<size_t>(m * cols), static_cast<uint32_t>(m * 13 + cols), 2.0f);
          std::vector<int8_t> xq(static_cast<size_t>(m * cols));
          std::vector<float> dx(static_cast<size_t>(m * nb)), ds(static_cast<size_t>(m * nb));
          std::vector<int32_t> init(static_cast<size_t>(m * nb));
          detail::quantize_acts_scalar(x.data(), m, cols, 0, xq.data(), dx.data(), init.data(), ds.data());
          for (bool with_bias : {false, true}) {
            std::vector<float> y(static_cast<size_t>(m * rows), NAN);
            matmul(x.data(), m, q, with_bias ? bias.data() : nullptr, y.data(), nullptr);
            for (int64_t i = 0; i < m; ++i) {
              for (int64_t r = 0; r < rows; ++r) {
                double exact = with_bias ? bias[r] : 0.0, mag = with_bias ? std::fabs(bias[r]) : 0.0;
                double fexact = exact, fmag = mag, act_err = 0.0;
                for (int64_t b = 0; b < nb; ++b) {
                  for (int half = 0; half < 2; ++half) {  // ggml's Q6_K scales each 16 columns
                    double dot = 0.0, sx = 0.0;
                    Decoded d0{};
                    for (int c = 16 * half; c < 16 * half + 16; ++c) {
                      const int64_t col = b * 32 + c;
                      const Decoded d = decode(L, q.bytes(), r, col);
                      d0 = d;
                      dot += static_cast<double>(d.code) * xq[i * cols + col];
                      sx += xq[i * cols + col];
                      const double wv = deq[r * cols + col];
                      fexact += wv * x[i * cols + col];
                      fmag += std::fabs(wv * x[i * cols + col]);
                      act_err += std::fabs(wv) * (dx[i * nb + b] * (0.5 + 400 * kU) + std::fabs(x[i * cols + col]) * 2 * kU);
                    }
                    const double t1 = d0.scale * dx[i * nb + b] * dot, t2 = d0.offset * dx[i * nb + b] * sx;
                    exact += t1 - t2;
                    mag += std::fabs(t1) + std::fabs(t2);
                  }
                }
                // At most 3 roundings per term before the sum, 2 terms per block (Q4_K, Q6_K), bias.
                const double tol = gamma(static_cast<double>(3 * nb + 4)) * mag + 1e-30;
                const float got = y[i * rows + r];
                ASSERT_LE(std::fabs(got - exact), tol) << weight_format_name(f) << " rows=" << rows << " cols=" << cols
                                                       << " m=" << m << " i=" << i << " r=" << r;
                const double ftol = act_err + tol + gamma(static_cast<double>(cols + 1)) * fmag;
                ASSERT_LE(std::fabs(got - fexact), ftol) << weight_format_name(f) << " vs dequantized fp32";
              }
            }
          }
        }
      }
    }
  }
}

TEST_P(IsaTest, ScalarReferenceAgreesWithDispatch) {
  // The public matmul at this ISA against ref::matmul (always scalar) on realistic widths with
  // several row groups in flight; m = 130 with 4096 columns also spans several activation
  // chunks of the blocked kernels. Both results are within gamma(2 nb + 4) * sum|terms| of the
  // exact int8 math (see QuantizedMatmul), so they differ by at most twice that.
  struct Case {
    int64_t rows, cols, m;
  };
  for (const Case cs : {Case{100, 2560, 3}, Case{40, 4096, 130}}) {
    const int64_t rows = cs.rows, cols = cs.cols, m = cs.m, nb = cols / 32;
    const Dense W = make_dense(DType::kBF16, rows, cols, 77, 0.05f);
    const std::vector<float> x = randn(static_cast<size_t>(m * cols), 78);
    for (WeightFormat f : kKernelFormats) {
      const QuantizedMatrix q = quantized_for_test(W.w, f, 79);
      const detail::QLayout L = detail::q_layout(f, rows, cols);
      std::vector<float> y1(m * rows), y2(m * rows);
      matmul(x.data(), m, q, nullptr, y1.data(), nullptr);
      ref::matmul(x.data(), m, q, nullptr, y2.data());
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<double> wmag(static_cast<size_t>(nb));  // per block: sum |scale code| + |offset|
        for (int64_t b = 0; b < nb; ++b) {
          for (int c = 0; c < 32; ++c) {
            const Decoded d = decode(L, q.bytes(), r, b * 32 + c);
            wmag[b] += std::fabs(d.scale * d.code) + std::fabs(d.offset);
          }
        }
        for (int64_t i = 0; i < m; ++i) {
          double mag = 0;  // >= sum over blocks of |scale dx dot| + |offset dx sum|
          for (int64_t b = 0; b < nb; ++b) {
            float amax = 0;
            for (int c = 0; c < 32; ++c) amax = std::max(amax, std::fabs(x[i * cols + b * 32 + c]));
            mag += wmag[b] * amax * (1 + 1e-6);
          }
          ASSERT_NEAR(y1[i * rows + r], y2[i * rows + r], 2 * gamma(3.0 * nb + 4) * mag)
              << weight_format_name(f) << " m=" << m << " i=" << i << " r=" << r;
        }
      }
    }
  }
}

// 1, 2 and 3 threads give bit-identical results (each output is computed by one thread with the
// same code whatever the split).
TEST_P(IsaTest, ThreadCountDeterminism) {
  const int64_t rows = 200, cols = 512;
  const Dense bf = make_dense(DType::kBF16, rows, cols, 5, 0.1f);
  const Dense f32 = make_dense(DType::kF32, rows, cols, 6, 0.1f);
  std::vector<QuantizedMatrix> qs;
  for (WeightFormat f : kKernelFormats) qs.push_back(quantized_for_test(bf.w, f, 5));
  std::vector<WeightMatrix> mats = {bf.w, f32.w};
  for (const auto& q : qs) mats.push_back(q.view());
  ThreadPool p2(2), p3(3);
  const std::vector<float> bias = randn(static_cast<size_t>(rows), 8);
  for (const WeightMatrix& w : mats) {
    for (int64_t m : {1, 7, 64}) {
      const std::vector<float> x = randn(static_cast<size_t>(m * cols), static_cast<uint32_t>(m));
      std::vector<float> y1(m * rows), y2(m * rows), y3(m * rows);
      matmul(x.data(), m, w, bias.data(), y1.data(), nullptr);
      matmul(x.data(), m, w, bias.data(), y2.data(), &p2);
      matmul(x.data(), m, w, bias.data(), y3.data(), &p3);
      EXPECT_EQ(std::memcmp(y1.data(), y2.data(), y1.size() * 4), 0) << weight_format_name(w.format) << " m=" << m;
      EXPECT_EQ(std::memcmp(y1.data(), y3.data(), y1.size() * 4), 0) << weight_format_name(w.format) << " m=" << m;
    }
  }
}

// matmul_fused gives every matrix the bits of its own matmul, on any pool: runs of one format
// and width (row counts whose groups split unevenly, with and without bias), a matrix of another
// format between them (its own call) and a dense one.
TEST_P(IsaTest, FusedMatmulEqualsOneCallPerMatrix) {
  const int64_t cols = 512;
  const Dense a = make_dense(DType::kBF16, 72, cols, 31, 0.1f), b = make_dense(DType::kBF16, 16, cols, 32, 0.1f);
  const Dense c = make_dense(DType::kBF16, 200, cols, 33, 0.1f), d = make_dense(DType::kF32, 24, cols, 34, 0.1f);
  const std::vector<float> bias = randn(200, 35);
  ThreadPool p2(2), p3(3);
  for (WeightFormat f : kKernelFormats) {
    const WeightFormat other = f == WeightFormat::kQ8_0 ? WeightFormat::kQ4_0 : WeightFormat::kQ8_0;
    const QuantizedMatrix qa = quantized_for_test(a.w, f, 36), qb = quantized_for_test(b.w, f, 37);
    const QuantizedMatrix qc = quantized_for_test(c.w, f, 38), qo = quantized_for_test(b.w, other, 39);
    const WeightMatrix mats[] = {qa.view(), qb.view(), qo.view(), qc.view(), qa.view(), d.w};
    const float* biases[] = {nullptr, bias.data(), nullptr, bias.data(), nullptr, bias.data()};
    for (int64_t m : {1, 5, 40}) {
      const std::vector<float> x = randn(static_cast<size_t>(m * cols), static_cast<uint32_t>(40 + m));
      for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &p2, &p3}) {
        std::vector<std::vector<float>> want, got;
        std::vector<MatmulTarget> targets;
        for (size_t t = 0; t < std::size(mats); ++t) {
          want.emplace_back(static_cast<size_t>(m * mats[t].rows));
          got.emplace_back(static_cast<size_t>(m * mats[t].rows), NAN);
          matmul(x.data(), m, mats[t], biases[t], want.back().data(), nullptr);
        }
        for (size_t t = 0; t < std::size(mats); ++t) targets.push_back({&mats[t], biases[t], got[t].data()});
        matmul_fused(x.data(), m, targets, pool);
        for (size_t t = 0; t < std::size(mats); ++t)
          EXPECT_EQ(std::memcmp(want[t].data(), got[t].data(), want[t].size() * 4), 0)
              << weight_format_name(f) << " m=" << m << " matrix " << t;
      }
    }
  }
}

// A row's result does not depend on how many rows share the call: decode (one row, streaming
// tile), a few rows (streaming tiles of 4/2/1) and prefill (codes unpacked once per row group)
// give the same bits, which is what lets batched decoding equal sequential decoding.
TEST_P(IsaTest, QuantizedRowsIndependentOfTheBatch) {
  const int64_t rows = 40, cols = 640, m = 37;
  const Dense bf = make_dense(DType::kBF16, rows, cols, 15, 0.1f);
  const std::vector<float> bias = randn(static_cast<size_t>(rows), 16);
  const std::vector<float> x = randn(static_cast<size_t>(m * cols), 17, 2.0f);
  for (WeightFormat f : kKernelFormats) {
    const QuantizedMatrix q = quantized_for_test(bf.w, f, 18);
    std::vector<float> all(static_cast<size_t>(m * rows));
    matmul(x.data(), m, q, bias.data(), all.data(), nullptr);
    for (int64_t i = 0; i < m; ++i) {
      std::vector<float> one(static_cast<size_t>(rows));
      matmul(x.data() + i * cols, 1, q, bias.data(), one.data(), nullptr);
      ASSERT_EQ(std::memcmp(one.data(), all.data() + i * rows, rows * sizeof(float)), 0)
          << weight_format_name(f) << " row " << i;
    }
    std::vector<float> few(static_cast<size_t>(7 * rows));  // rows 30..36 through the streaming tiles
    matmul(x.data() + 30 * cols, 7, q, bias.data(), few.data(), nullptr);
    EXPECT_EQ(std::memcmp(few.data(), all.data() + 30 * rows, few.size() * sizeof(float)), 0) << weight_format_name(f);
  }
}

// ---- element-wise kernels -----------------------------------------------------------------------

const int64_t kSizes[] = {1, 7, 16, 33, 100, 2560};
// Relative bounds hold for normal numbers; results below FLT_MIN (or whose intermediate
// 1 + exp(-t) overflows, |result| < |x| e^-88.7 = |x| 2.9e-39) are only good to this much.
constexpr double kUnderflow = 1.2e-38;

TEST_P(IsaTest, RmsNorm) {
  for (int64_t n : kSizes) {
    const std::vector<float> x = randn(static_cast<size_t>(n), 1, 3.0f), w = randn(static_cast<size_t>(n), 2);
    std::vector<float> out(static_cast<size_t>(n)), inplace = x;
    rms_norm(x.data(), w.data(), n, 1e-6f, out.data());
    rms_norm(inplace.data(), w.data(), n, 1e-6f, inplace.data());
    double ss = 0;
    for (float v : x) ss += static_cast<double>(v) * v;
    const double inv = 1.0 / std::sqrt(ss / n + 1e-6);
    for (int64_t i = 0; i < n; ++i) {
      const double exact = static_cast<double>(w[i]) * x[i] * inv;
      // sum of squares (gamma(n) relative), mean/eps/sqrt/div (4 u), two products (2 u).
      EXPECT_NEAR(out[i], exact, (0.5 * gamma(n) + 8 * kU) * std::fabs(exact) + 1e-37) << n;
      EXPECT_EQ(out[i], inplace[i]);
    }
  }
}

TEST_P(IsaTest, LayerNorm) {
  for (int64_t n : kSizes) {
    std::vector<float> x = randn(static_cast<size_t>(n), 3, 2.0f);
    for (auto& v : x) v += 5.0f;  // a mean far from zero
    const std::vector<float> w = randn(static_cast<size_t>(n), 4), b = randn(static_cast<size_t>(n), 5);
    std::vector<float> out(static_cast<size_t>(n));
    layer_norm(x.data(), w.data(), b.data(), n, 1e-5f, out.data());
    double mean = 0, asum = 0;
    for (float v : x) {
      mean += v;
      asum += std::fabs(v);
    }
    mean /= n;
    double var = 0;
    for (float v : x) var += (v - mean) * (v - mean);
    var /= n;
    const double inv = 1.0 / std::sqrt(var + 1e-5);
    // |d mean| <= gamma(n) mean|x|; the variance sees that shift and its own gamma(n) + 2u;
    // then 4 roundings per output.
    const double dmu = gamma(n) * asum / n + kU * std::fabs(mean);
    for (int64_t i = 0; i < n; ++i) {
      const double t = (x[i] - mean) * inv;
      const double exact = t * w[i] + b[i];
      const double dinv_rel = 0.5 * (gamma(n + 2) + 2 * dmu * inv * 2 * inv * std::sqrt(var)) + 4 * kU;
      const double tol = std::fabs(w[i]) * (dmu * inv + std::fabs(t) * dinv_rel + 3 * kU * std::fabs(t)) +
                         2 * kU * std::fabs(exact) + kU * std::fabs(b[i]);
      EXPECT_NEAR(out[i], exact, tol) << n << " " << i;
    }
  }
}

TEST_P(IsaTest, SiluMul) {
  for (int64_t n : kSizes) {
    std::vector<float> g = randu(static_cast<size_t>(n), 6, -20.0f, 20.0f);
    if (n > 3) {
      g[0] = -100.0f;  // exp overflow region
      g[1] = 100.0f;
      g[2] = 0.0f;
    }
    const std::vector<float> up = randn(static_cast<size_t>(n), 7);
    std::vector<float> out = g;
    silu_mul(out.data(), up.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double exact = g[i] / (1.0 + std::exp(-static_cast<double>(g[i]))) * up[i];
      // exp (<= 2 ulp), add, div, mul: 6 u relative. Where exp(-g) overflows (g < -88.7) the
      // result is a signed zero, |exact| < |g up| 3e-39 there.
      EXPECT_NEAR(out[i], exact, 6 * kU * std::fabs(exact) + 3e-39 * std::fabs(g[i] * up[i]) + 1e-44) << g[i];
    }
  }
}

TEST_P(IsaTest, GeluTanh) {
  for (int64_t n : kSizes) {
    std::vector<float> x = randu(static_cast<size_t>(n), 8, -12.0f, 12.0f);
    std::vector<float> out = x;
    gelu_tanh(out.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double v = x[i], u = 0.7978845608028654 * (v + 0.044715 * v * v * v);
      const double exact = v / (1.0 + std::exp(-2.0 * u));  // = 0.5 v (1 + tanh u), no cancellation
      // The argument u carries ~4 roundings (4 u |u| absolute); sigmoid'/sigmoid <= 1, so that is
      // also the relative error of x*sigmoid(2u); plus ~6 u for exp/add/div/mul. The scalar
      // reference computes 1 + tanh(u) in fp32, which cancels for u << 0: |x| * 2u absolute.
      const double tol = (8 * std::fabs(u) + 8) * kU * std::fabs(exact) +
                         (GetParam() == Isa::kScalar ? 2 * kU * std::fabs(v) : 0.0) + kUnderflow * (1 + std::fabs(v));
      EXPECT_NEAR(out[i], exact, tol) << x[i];
    }
  }
}

TEST_P(IsaTest, GeluErf) {
  for (int64_t n : kSizes) {
    std::vector<float> x = randu(static_cast<size_t>(n), 9, -9.0f, 9.0f);
    if (n > 4) {
      x[0] = 0.0f;
      x[1] = -1e-20f;
      x[2] = 1e-3f;
      x[3] = -5.5f;
    }
    std::vector<float> out = x;
    gelu_erf(out.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double v = x[i], z = v / std::sqrt(2.0);
      const double exact = 0.5 * v * std::erfc(-z);
      // SIMD: erfc approximation 1.2e-7 relative (~2 u); its exponent -z^2 + P(t) is formed with
      // absolute error ~ (z^2 + 2) 2u, which becomes relative error of erfc; plus ~8 u for the
      // divisions, products and exp. The scalar reference forms 1 + erf in fp32: |x| u absolute.
      const double tol = ((2 * z * z + 4) * 2 + 10) * kU * std::fabs(exact) +
                         (GetParam() == Isa::kScalar ? 2 * kU * std::fabs(v) : 0.0) + kUnderflow * (1 + std::fabs(v));
      EXPECT_NEAR(out[i], exact, tol) << x[i];
    }
  }
}

TEST_P(IsaTest, AddAndRope) {
  for (int64_t n : kSizes) {
    std::vector<float> x = randn(static_cast<size_t>(n), 10), y = randn(static_cast<size_t>(n), 11);
    std::vector<float> a = x, b = x;
    add(a.data(), y.data(), n);
    ref::add(b.data(), y.data(), n);
    EXPECT_EQ(a, b);  // one rounding each: identical

    const int64_t half = n;
    std::vector<float> r = randn(static_cast<size_t>(2 * half), 12), r2 = r;
    std::vector<float> cs(static_cast<size_t>(half)), sn(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i) {
      cs[i] = std::cos(0.37f * i);
      sn[i] = std::sin(0.37f * i);
    }
    rope_rotate_half(r.data(), cs.data(), sn.data(), half);
    for (int64_t i = 0; i < half; ++i) {
      const double a0 = r2[i], b0 = r2[i + half];
      const double e0 = a0 * cs[i] - b0 * sn[i], e1 = b0 * cs[i] + a0 * sn[i];
      EXPECT_NEAR(r[i], e0, 2 * kU * (std::fabs(a0 * cs[i]) + std::fabs(b0 * sn[i])) + 1e-40);
      EXPECT_NEAR(r[i + half], e1, 2 * kU * (std::fabs(b0 * cs[i]) + std::fabs(a0 * sn[i])) + 1e-40);
    }
  }
}

// ---- attention ----------------------------------------------------------------------------------

// ---- KV rows --------------------------------------------------------------------------------------

constexpr double kF16Unit = 1.0 / (1 << 11);  // unit roundoff of IEEE half (normal range)

std::vector<uint8_t> stored_rows(const std::vector<float>& x, int64_t rows, int64_t stride, KvType t) {
  std::vector<uint8_t> bytes(kv_bytes(t, rows * stride));
  for (int64_t r = 0; r < rows; ++r)
    store_kv_row(x.data() + r * stride, stride, t, bytes.data() + kv_bytes(t, r * stride));
  return bytes;
}

std::vector<float> loaded_rows(const std::vector<uint8_t>& bytes, int64_t rows, int64_t stride, KvType t) {
  std::vector<float> x(static_cast<size_t>(rows * stride));
  for (int64_t r = 0; r < rows; ++r) load_kv_row(bytes.data() + kv_bytes(t, r * stride), stride, t, x.data() + r * stride);
  return x;
}

// Bounds of |x - stored(x)| for every element of x (rows of `stride` elements), from the
// rounding each format performs (derivation in the round-trip test below).
std::vector<double> kv_error_bounds(const std::vector<float>& x, int64_t stride, KvType t) {
  std::vector<double> e(x.size(), 0.0);
  for (size_t i = 0; i < x.size(); ++i) {
    if (t == KvType::kF16) e[i] = std::max(kF16Unit * std::fabs(x[i]), std::ldexp(1.0, -25));  // subnormal spacing / 2
    if (t == KvType::kQ8_0 && i % kKvBlock == 0 && (i % static_cast<size_t>(stride)) % kKvBlock == 0) {
      double amax = 0;
      for (size_t c = i; c < i + kKvBlock; ++c) amax = std::max(amax, std::fabs(double(x[c])));
      for (size_t c = i; c < i + kKvBlock; ++c) e[c] = amax / 127 * (0.5 + 512 * kU);
    }
  }
  return e;
}

TEST(KvType, NamesSizesAndErrors) {
  EXPECT_EQ(parse_kv_type("F16"), KvType::kF16);
  EXPECT_EQ(parse_kv_type("f32"), KvType::kF32);
  EXPECT_EQ(parse_kv_type("q8_0"), KvType::kQ8_0);
  test::expect_error([] { parse_kv_type("q4_0"); }, ErrorKind::kInvalidArgument, {"'q4_0'"});
  EXPECT_EQ(kv_bytes(KvType::kF32, 10), 40u);
  EXPECT_EQ(kv_bytes(KvType::kF16, 10), 20u);
  EXPECT_EQ(kv_bytes(KvType::kQ8_0, 128), 4u * 36);
  EXPECT_THROW(kv_bytes(KvType::kQ8_0, 48), Error);
  EXPECT_TRUE(kv_type_fits(KvType::kQ8_0, 128));
  EXPECT_FALSE(kv_type_fits(KvType::kQ8_0, 16));
  EXPECT_TRUE(kv_type_fits(KvType::kF16, 16));
  std::vector<float> x(48);
  std::vector<uint8_t> out(256);
  EXPECT_THROW(store_kv_row(x.data(), 48, KvType::kQ8_0, out.data()), Error);
  // q8_0 attention needs whole blocks per head and per stride.
  AttentionShape s;
  s.q_len = s.kv_len = 1;
  s.head_dim = 16;
  s.q_stride = s.k_stride = s.v_stride = s.out_stride = 16;
  s.kv_type = KvType::kQ8_0;
  EXPECT_THROW(attention(x.data(), out.data(), out.data(), x.data(), s), Error);
}

// Values that stress the f16 conversion: ties, subnormals, overflow, zeros of both signs.
std::vector<float> kv_test_row(int64_t n, uint32_t seed) {
  std::vector<float> x = randn(static_cast<size_t>(n), seed, 3.0f);
  const float special[] = {0.0f, -0.0f, 1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 65504.0f, 65520.0f, 1e6f, -1e-7f,
                           6.0e-8f, 3.0e-8f, 2.9e-8f, 1e-30f, -2.5f, 2.5f};
  for (size_t i = 0; i < x.size() && i < std::size(special); ++i) x[i * 3 % x.size()] = special[i];
  return x;
}

TEST_P(IsaTest, StoreKvRowIsBitIdenticalToReference) {
  for (KvType t : {KvType::kF32, KvType::kF16, KvType::kQ8_0}) {
    for (int64_t n : {1, 7, 31, 32, 33, 64, 100, 128, 160, 1000, 1024}) {
      if (t == KvType::kQ8_0 && n % kKvBlock != 0) continue;
      std::vector<float> x = kv_test_row(n, static_cast<uint32_t>(n));
      if (t == KvType::kQ8_0 && n >= 64) std::fill(x.begin() + 32, x.begin() + 64, 0.0f);  // amax = 0 block
      // Guard bytes after the row: the tails must not write past n elements.
      std::vector<uint8_t> got(kv_bytes(t, n) + 64, 0xab), want(kv_bytes(t, n) + 64, 0xab);
      store_kv_row(x.data(), n, t, got.data());
      ref::store_kv_row(x.data(), n, t, want.data());
      ASSERT_EQ(got, want) << kv_type_name(t) << " n=" << n;
    }
  }
}

// f16: round to nearest, so |x - h| <= 2^-11 |x| for normal results and half the subnormal
// spacing 2^-24 below 2^-14; beyond 65504 (+ half an ulp) the value becomes inf.
// q8_0, with amax the block's max |x| and d = amax/127 exactly: the code comes from
// t = fl(x * fl(127/amax)) = (x/d)(1+e1)(1+e2), |t| <= 127(1+u)^2, and |round(t) - t| <= 1/2
// (clamping to +-127 only moves it closer to x/d); the read-back value is fl(q * fl(amax/127)),
// two more relative roundings of at most 127 d. So |x - value| <= d (1/2 + 127 (2u + 2u) + O(u^2))
// <= d (1/2 + 512 u).
TEST(KvType, StoreLoadRoundTripBounds) {
  for (KvType t : {KvType::kF32, KvType::kF16, KvType::kQ8_0}) {
    const int64_t n = 4096;
    std::vector<float> x = kv_test_row(n, 7);
    for (auto& v : x)
      if (std::fabs(v) > 65504.0f) v = 0.5f;  // overflow checked separately
    std::fill(x.begin() + 64, x.begin() + 96, 0.0f);
    std::vector<uint8_t> bytes(kv_bytes(t, n));
    store_kv_row(x.data(), n, t, bytes.data());
    std::vector<float> y(static_cast<size_t>(n));
    load_kv_row(bytes.data(), n, t, y.data());
    const std::vector<double> bounds = kv_error_bounds(x, n, t);
    double worst = 0;  // largest error as a fraction of its bound
    for (size_t i = 0; i < x.size(); ++i) {
      const double err = std::fabs(double(x[i]) - y[i]), bound = bounds[i];
      ASSERT_LE(err, bound) << kv_type_name(t) << " i=" << i << " x=" << x[i] << " y=" << y[i];
      if (bound > 0) worst = std::max(worst, err / bound);
      if (t == KvType::kQ8_0 && i >= 64 && i < 96) {
        ASSERT_EQ(y[i], 0.0f);
      }
    }
    if (t != KvType::kF32) {
      EXPECT_GT(worst, 0.9) << kv_type_name(t) << ": the bound is nearly reached";  // not vacuous
    }
  }
  // f16 overflow and the q8_0 codes' range.
  std::vector<float> big = {65504.0f, 65519.0f, 65520.0f, -1e9f};
  std::vector<uint8_t> h(8);
  store_kv_row(big.data(), 4, KvType::kF16, h.data());
  std::vector<float> back(4);
  load_kv_row(h.data(), 4, KvType::kF16, back.data());
  EXPECT_EQ(back[0], 65504.0f);
  EXPECT_EQ(back[1], 65504.0f);
  EXPECT_TRUE(std::isinf(back[2]) && back[2] > 0);
  EXPECT_TRUE(std::isinf(back[3]) && back[3] < 0);
  std::vector<float> blk = randn(32, 3, 10.0f);
  std::vector<uint8_t> q(kv_bytes(KvType::kQ8_0, 32));
  store_kv_row(blk.data(), 32, KvType::kQ8_0, q.data());
  for (size_t c = 0; c < 32; ++c) {
    const int code = static_cast<int8_t>(q[4 + c]);
    EXPECT_GE(code, -127);
    EXPECT_LE(code, 127);
  }
}

// ---- attention ----------------------------------------------------------------------------------

struct AttnCase {
  int64_t q_len, kv_len, d, heads;
  bool causal;
};

// One head's exact softmax attention in double over k/v values ([kv_len][kv_stride]) and the
// quantities the error bounds need.
struct ExactHead {
  std::vector<double> out;      // [d]
  std::vector<double> abs_out;  // [d]: sum_j w_j |v_je| (w: normalised weights)
  std::vector<double> err_out;  // [d]: sum_j w_j ev_je (ev: bound of |v stored - v|)
  double ds_max = 0;            // kernel's score rounding bound (largest over the keys)
  double dk_max = 0;            // score change from the K rounding bounds (largest over the keys)
  int64_t last = 0;
};

// ek, ev: bounds of the K/V storage errors (null: none).
ExactHead exact_head(const float* qi, const std::vector<float>& k, const std::vector<float>& v, int64_t kv_stride,
                     int64_t d, int64_t last, float scale, const std::vector<double>* ek = nullptr,
                     const std::vector<double>* ev = nullptr) {
  ExactHead r;
  r.last = last;
  std::vector<double> score(static_cast<size_t>(last + 1));
  double mx = -INFINITY;
  for (int64_t j = 0; j <= last; ++j) {
    double dot = 0, mag = 0, dk = 0;
    for (int64_t e = 0; e < d; ++e) {
      const size_t idx = static_cast<size_t>(j * kv_stride + e);
      dot += static_cast<double>(qi[e]) * k[idx];
      mag += std::fabs(static_cast<double>(qi[e]) * k[idx]);
      if (ek) dk += std::fabs(static_cast<double>(qi[e])) * (*ek)[idx];
    }
    score[static_cast<size_t>(j)] = dot * scale;
    r.ds_max = std::max(r.ds_max, gamma(static_cast<double>(d + 2)) * mag * scale);
    r.dk_max = std::max(r.dk_max, dk * scale);
    mx = std::max(mx, score[static_cast<size_t>(j)]);
  }
  double denom = 0;
  for (int64_t j = 0; j <= last; ++j) denom += std::exp(score[static_cast<size_t>(j)] - mx);
  r.out.assign(static_cast<size_t>(d), 0.0);
  r.abs_out.assign(static_cast<size_t>(d), 0.0);
  r.err_out.assign(static_cast<size_t>(d), 0.0);
  for (int64_t j = 0; j <= last; ++j) {
    const double w = std::exp(score[static_cast<size_t>(j)] - mx) / denom;
    for (int64_t e = 0; e < d; ++e) {
      const size_t idx = static_cast<size_t>(j * kv_stride + e);
      r.out[static_cast<size_t>(e)] += w * v[idx];
      r.abs_out[static_cast<size_t>(e)] += w * std::fabs(v[idx]);
      if (ev) r.err_out[static_cast<size_t>(e)] += w * (*ev)[idx];
    }
  }
  return r;
}

// Runs attention over K/V stored as t and checks it twice:
//  (1) against the exact result over the values the kernel reads (the stored ones, read back
//      exactly): only the kernel's float rounding separates them, so the fp32 bound applies;
//  (2) against the exact result over the original fp32 K/V, with the storage rounding added:
//      key errors |dk_je| move score j by at most dS = scale sum_e |q_e| |dk_je|, which changes
//      every normalised weight by a factor within exp(+-2 dS); value errors |dv_je| add at most
//      sum_j w'_j |dv_je| <= exp(2 dS) sum_j w_j |dv_je|. So
//      |out(stored) - out(fp32)| <= expm1(2 dS) sum_j w_j |v_je| + exp(2 dS) sum_j w_j |dv_je|.
void check_attention(const AttnCase& c, uint32_t seed, KvType t = KvType::kF32) {
  const int64_t d = c.d, heads = c.heads;
  // Layout like the decoder: q rows hold all heads ([q_len][heads*d]); k/v rows padded
  // (q8_0 strides must be whole blocks).
  const int64_t q_stride = heads * d + 3, kv_stride = t == KvType::kQ8_0 ? d + kKvBlock : d + 5;
  const std::vector<float> q = randn(static_cast<size_t>(c.q_len * q_stride), seed, 1.0f);
  const std::vector<float> k = randn(static_cast<size_t>(c.kv_len * kv_stride), seed + 1, 1.0f);
  const std::vector<float> v = randn(static_cast<size_t>(c.kv_len * kv_stride), seed + 2, 1.0f);
  const std::vector<uint8_t> k_bytes = stored_rows(k, c.kv_len, kv_stride, t);
  const std::vector<uint8_t> v_bytes = stored_rows(v, c.kv_len, kv_stride, t);
  const std::vector<float> k_read = loaded_rows(k_bytes, c.kv_len, kv_stride, t);
  const std::vector<float> v_read = loaded_rows(v_bytes, c.kv_len, kv_stride, t);
  std::vector<float> out(static_cast<size_t>(c.q_len * q_stride), NAN);
  AttentionShape s;
  s.q_len = c.q_len;
  s.kv_len = c.kv_len;
  s.head_dim = d;
  s.q_stride = q_stride;
  s.k_stride = s.v_stride = kv_stride;
  s.out_stride = q_stride;
  s.scale = 1.0f / std::sqrt(static_cast<float>(d));
  s.causal = c.causal;
  s.causal_offset = c.causal ? c.kv_len - c.q_len : 0;
  s.q_heads = heads;
  s.q_head_stride = s.out_head_stride = d;
  s.kv_type = t;
  attention(q.data(), k_bytes.data(), v_bytes.data(), out.data(), s);
  const std::vector<double> ek = kv_error_bounds(k, kv_stride, t), ev = kv_error_bounds(v, kv_stride, t);

  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t i = 0; i < c.q_len; ++i) {
      const float* qi = &q[static_cast<size_t>(i * q_stride + h * d)];
      const int64_t last = c.causal ? std::min(c.kv_len - 1, s.causal_offset + i) : c.kv_len - 1;
      const ExactHead read = exact_head(qi, k_read, v_read, kv_stride, d, last, s.scale);
      const ExactHead orig = t == KvType::kF32 ? read : exact_head(qi, k, v, kv_stride, d, last, s.scale, &ek, &ev);
      for (int64_t e = 0; e < d; ++e) {
        const size_t ei = static_cast<size_t>(e);
        const float got = out[static_cast<size_t>(i * q_stride + h * d + e)];
        // Score errors ds change every weight by a factor within exp(+-2 ds) (numerator and
        // denominator); exp and the rescalings add a few u per weight; the two sums over up to
        // kv_len terms add gamma(kv_len + 2) each.
        const double rel = 2 * read.ds_max + 2 * gamma(static_cast<double>(last + 3)) + 12 * kU;
        const double tol = rel * read.abs_out[ei] + 1e-30;
        ASSERT_NEAR(got, read.out[ei], tol)
            << kv_type_name(t) << " q_len=" << c.q_len << " kv=" << c.kv_len << " d=" << d << " heads=" << heads
            << " causal=" << c.causal << " h=" << h << " i=" << i << " e=" << e;
        if (t == KvType::kF32) continue;
        const double ds = orig.dk_max;
        const double storage = std::expm1(2 * ds) * orig.abs_out[ei] + std::exp(2 * ds) * orig.err_out[ei];
        ASSERT_NEAR(got, orig.out[ei], tol + storage)
            << "vs fp32 K/V: " << kv_type_name(t) << " q_len=" << c.q_len << " kv=" << c.kv_len << " d=" << d
            << " h=" << h << " i=" << i << " e=" << e;
      }
    }
  }
}

TEST_P(IsaTest, AttentionMatchesSoftmaxReference) {
  const AttnCase cases[] = {
      {1, 1, 16, 1, false},   {1, 7, 16, 1, true},     {5, 5, 64, 1, true},    {17, 100, 72, 1, true},
      {17, 100, 72, 1, false}, {3, 40, 128, 4, true},  {1, 333, 128, 4, true}, {6, 50, 20, 2, false},
      {1, 4096, 128, 4, true}, {9, 4096, 128, 1, true}, {4, 4096, 64, 1, false},
      // Long non-causal single-head calls take the blocked kernel (vision tower): query counts
      // that leave partial micro-tiles, key counts that leave partial key tiles.
      {8, 32, 16, 1, false},  {19, 1000, 32, 1, false}, {40, 300, 64, 1, false}, {128, 3072, 64, 1, false},
      {9, 65, 48, 1, false},
      // At least two vectors of queries take the lanes kernel (prefill chunks): partial query
      // blocks, partial key tiles, causal limits inside a tile, GQA groups, non-causal groups.
      {37, 130, 72, 1, true}, {20, 333, 128, 4, true}, {25, 70, 20, 2, false}, {64, 64, 16, 1, true},
  };
  uint32_t seed = 100;
  for (const AttnCase& c : cases) check_attention(c, seed += 10);
}

// f16 K/V on odd and tail shapes (head_dim not a multiple of any vector width, key counts that
// leave partial tiles, GQA groups that leave partial query blocks).
TEST_P(IsaTest, AttentionF16KvMatchesReference) {
  const AttnCase cases[] = {
      {1, 1, 16, 1, false}, {1, 7, 3, 1, true},     {5, 5, 64, 1, true},    {17, 100, 72, 1, true},
      {6, 50, 20, 2, false}, {3, 41, 128, 3, true}, {1, 333, 128, 4, true}, {1, 4096, 128, 4, true},
      {37, 130, 3, 1, true}, {20, 333, 128, 4, true}, {40, 97, 72, 2, false},
  };
  uint32_t seed = 500;
  for (const AttnCase& c : cases) check_attention(c, seed += 10, KvType::kF16);
}

TEST_P(IsaTest, AttentionQ8KvMatchesReference) {
  const AttnCase cases[] = {
      {1, 1, 32, 1, false}, {1, 7, 32, 1, true},   {5, 5, 64, 1, true},    {17, 100, 96, 1, true},
      {6, 50, 160, 2, false}, {3, 41, 128, 3, true}, {1, 333, 128, 4, true}, {1, 4096, 128, 4, true},
      {37, 130, 96, 1, true}, {20, 333, 128, 4, true}, {40, 97, 160, 2, false},
  };
  uint32_t seed = 900;
  for (const AttnCase& c : cases) check_attention(c, seed += 10, KvType::kQ8_0);
}

// Causal attention of `heads` query heads over one K/V head (the last q_len of kv_len
// positions), rows interleaved as the text decoder lays them out.
AttentionShape causal_group_shape(int64_t d, int64_t heads, int64_t q_len, int64_t kv_len, KvType t) {
  AttentionShape s;
  s.q_len = q_len;
  s.kv_len = kv_len;
  s.head_dim = d;
  s.q_stride = s.out_stride = heads * d;
  s.k_stride = s.v_stride = d;
  s.scale = 0.125f;
  s.causal = true;
  s.causal_offset = kv_len - q_len;
  s.q_heads = heads;
  s.q_head_stride = s.out_head_stride = d;
  s.kv_type = t;
  return s;
}

// Random queries [q_len][heads * d] (seed) and one K/V head of kv_len rows (seeds + 1, + 2) stored
// as t, with causal_group_shape's layout.
struct CausalGroup {
  std::vector<float> q;
  std::vector<uint8_t> k, v;
  AttentionShape shape;
};
CausalGroup causal_group(int64_t d, int64_t heads, int64_t q_len, int64_t kv_len, KvType t, uint32_t seed) {
  const std::vector<float> k = randn(static_cast<size_t>(kv_len * d), seed + 1);
  const std::vector<float> v = randn(static_cast<size_t>(kv_len * d), seed + 2);
  return {randn(static_cast<size_t>(q_len * heads * d), seed), stored_rows(k, kv_len, d, t),
          stored_rows(v, kv_len, d, t), causal_group_shape(d, heads, q_len, kv_len, t)};
}

// The SIMD kernels and the scalar reference read the same values and differ only in float
// rounding: for every type they agree within the fp32 kernel bound (checked above against
// exact arithmetic); here directly, SIMD against ref::attention, as a cross-check.
TEST_P(IsaTest, AttentionKvTypesAgreeWithScalarReference) {
  const int64_t d = 64, heads = 4, q_len = 3, kv_len = 203;
  for (KvType t : {KvType::kF32, KvType::kF16, KvType::kQ8_0}) {
    const CausalGroup g = causal_group(d, heads, q_len, kv_len, t, 11);
    const std::vector<float>& q = g.q;
    const std::vector<uint8_t>& kb = g.k;
    const std::vector<uint8_t>& vb = g.v;
    const AttentionShape& s = g.shape;
    std::vector<float> got(q.size()), want(q.size());
    attention(q.data(), kb.data(), vb.data(), got.data(), s);
    ref::attention(q.data(), kb.data(), vb.data(), want.data(), s);
    const std::vector<float> k_read = loaded_rows(kb, kv_len, d, t), v_read = loaded_rows(vb, kv_len, d, t);
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < q_len; ++i) {
        const int64_t last = s.causal_offset + i;
        const ExactHead x = exact_head(&q[static_cast<size_t>(i * heads * d + h * d)], k_read, v_read, d, d, last, s.scale);
        const double rel = 2 * x.ds_max + 2 * gamma(static_cast<double>(last + 3)) + 12 * kU;
        for (int64_t e = 0; e < d; ++e) {
          const size_t o = static_cast<size_t>(i * heads * d + h * d + e);
          // Each is within rel * sum_j w_j |v_je| of the same exact value.
          ASSERT_NEAR(got[o], want[o], 2 * rel * x.abs_out[static_cast<size_t>(e)]) << kv_type_name(t) << " " << o;
        }
      }
    }
  }
}

// A prefill chunk split in two gives every query the same bits as the whole chunk: a query's
// result depends on its own scores and the fixed key tiling, never on the other queries of its
// call (chunked prefill must not change the logits).
TEST_P(IsaTest, AttentionRowsIndependentOfTheChunking) {
  const int64_t d = 128, heads = 4, q_len = 40, kv_len = 150;
  for (KvType t : {KvType::kF32, KvType::kF16, KvType::kQ8_0}) {
    const CausalGroup g = causal_group(d, heads, q_len, kv_len, t, 21);
    const std::vector<float>& q = g.q;
    const std::vector<uint8_t>& kb = g.k;
    const std::vector<uint8_t>& vb = g.v;
    const AttentionShape& whole = g.shape;
    std::vector<float> one(q.size()), two(q.size());
    attention(q.data(), kb.data(), vb.data(), one.data(), whole);
    int64_t i0 = 0;
    for (const int64_t rows : {int64_t{13}, q_len - 13}) {
      AttentionShape part = whole;
      part.q_len = rows;
      part.causal_offset = whole.causal_offset + i0;
      const size_t o = static_cast<size_t>(i0 * heads * d);
      attention(q.data() + o, kb.data(), vb.data(), two.data() + o, part);
      i0 += rows;
    }
    for (size_t i = 0; i < q.size(); ++i) ASSERT_EQ(one[i], two[i]) << kv_type_name(t) << " " << i;
  }
}

TEST_P(IsaTest, AttentionGqaEqualsPerHeadCalls) {
  const int64_t d = 64, heads = 3, q_len = 5, kv_len = 70;
  for (KvType t : {KvType::kF32, KvType::kF16, KvType::kQ8_0}) {
    const CausalGroup g = causal_group(d, heads, q_len, kv_len, t, 1);
    const std::vector<float>& q = g.q;
    const std::vector<uint8_t>& kb = g.k;
    const std::vector<uint8_t>& vb = g.v;
    const AttentionShape& s = g.shape;
    AttentionShape single = s;
    single.q_heads = 1;
    std::vector<float> per_head(q.size()), grouped(q.size());
    for (int64_t h = 0; h < heads; ++h)
      attention(q.data() + h * d, kb.data(), vb.data(), per_head.data() + h * d, single);
    attention(q.data(), kb.data(), vb.data(), grouped.data(), s);
    for (size_t i = 0; i < q.size(); ++i) ASSERT_NEAR(per_head[i], grouped[i], 1e-6) << kv_type_name(t) << " " << i;
  }
}

// ---- bf16 attention ------------------------------------------------------------------------------
//
// Error bound of attention_bf16 against exact attention, derived from the roundings of
// kernels/attention_bf16.h (u = 2^-8, the unit roundoff of bf16 with nearest-even rounding; U =
// 2^-24, fp32's; t_j = scale q·k_j the exact scores, w_j = softmax(t)_j, n keys, T tiles of 64):
//
// 1. Scores. q̂_c = bf16(fl(q_c fl(scale fl(log2 e)))) = q_c σ (1 + θ_q), |θ_q| <= (1+U)^3 (1+u) - 1;
//    k̂_c = k_c (1 + θ_k), |θ_k| <= u. The products q̂_c k̂_c are exact in fp32 (8 + 8 significant
//    bits), their sum over the head's d dimensions adds at most γ(d) Σ|q̂_c k̂_c|. So the base-2
//    score ŝ_j is within Δ_j = ε_s σ Σ_c |q_c k_jc| of σ q·k_j, ε_s = (1+θ_q)(1+u)(1+γ(d)) - 1,
//    i.e. 2^ŝ_j = e^(t_j) e^(±δ_j) with δ_j = ε_s scale Σ_c |q_c k_jc| (σ = scale log2 e).
//    The fp32 subtraction ŝ_j - m rounds by U |ŝ_j - m|, which adds U (|t_j| + max_k |t_k|)(1+ε)
//    to δ_j (negligible, kept for honesty).
// 2. Weights. p̃_j = bf16(exp2(ŝ_j - m)) times the rescalings 2^(m_old - m_new) that happened
//    after it was added. exp2 has relative error η <= 2.2e-7 (the polynomial; the scalar code
//    uses the C library's exp2), bf16 rounding u, and each of at most T rescalings multiplies
//    the sums it scales with one fp32 rounding U; the factor 2^(m_old - m_new) itself multiplies
//    numerator and denominator alike and cancels. So p̃_j = C e^(t_j) ρ_j with a common C and
//    ρ_j in [e^(-δ_j) (1 - a), e^(δ_j) (1 + a)], a = u + η + (T + 1) U.
//    The normalised weights w̃_j = p̃_j / Σ_k p̃_k = w_j ρ_j / Σ_k w_k ρ_k then satisfy
//      |w̃_j - w_j| <= β_j w_j,  β_j = max(e^(δ_j) (1+a) / D⁻ - 1, 1 - e^(-δ_j) (1-a) / D⁺),
//    with D⁻ = Σ_k w_k e^(-δ_k) (1-a) <= Σ_k w_k ρ_k <= D⁺ = Σ_k w_k e^(δ_k) (1+a).
// 3. Output. õ_c = Σ_j w̃_j v̂_jc with v̂ = v (1 ± u):
//      |Σ w̃_j v̂_jc - Σ w_j v_jc| <= Σ_j |w̃_j - w_j| |v̂_jc| + Σ_j w_j |v̂_jc - v_jc|
//                                 <= (1+u) B_c + u A_c,  A_c = Σ_j w_j |v_jc|,  B_c = Σ_j β_j w_j |v_jc|.
//    The fp32 sums of n exact products p̃_j v̂_jc and of n terms p̃_j (in any order: vdpbf16ps
//    pairs, lanes, tiles) add γ(n) each, relative to Σ p̃_j |v̂_jc| and Σ p̃_j, and the final
//    O · fl(1/l) two more roundings: together within 3 γ(n + 4) Σ_j w̃_j |v̂_jc|
//    <= 3 γ(n + 4) (1+u) (A_c + B_c).
//    Weights below 2^-126 of the largest may be flushed to zero (vdpbf16ps treats subnormal
//    inputs as zero; the AVX2 exp2 returns 0 below 2^-127): at most n 2^-126 max_j |v_jc| more.
//   tol_c = (1+u) B_c + u A_c + 3 γ(n + 4)(1+u)(A_c + B_c) + n 2^-126 max_j |v_jc|
// (B_c ≈ 2 ε_s scale Σ|q k| A_c: for unit-normal q, k at d = 64 about 0.08 A_c, the worst case
// of all roundings aligned; random roundings give errors ~20x smaller, and a wrong key, a lost
// rescale or a wrong scale gives errors ~A_c, which the bound rejects: see the last test.)
// Against the fp32 reference (ref::attention) its own bound from the fp32 tests above is added.
constexpr double kUbf16 = 1.0 / 256;

struct Bf16Exact {
  std::vector<double> out, tol, f32_tol;  // [d] each
};

Bf16Exact exact_bf16_head(const float* qi, const float* k, const float* v, int64_t stride, int64_t n, int64_t d,
                          float scale) {
  const double theta_q = std::pow(1 + kU, 3) * (1 + kUbf16) - 1;
  const double eps_s = (1 + theta_q) * (1 + kUbf16) * (1 + gamma(static_cast<double>(d))) - 1;
  const int64_t tiles = (n + 63) / 64;
  const double a = kUbf16 + detail::kBf16Exp2RelErr + static_cast<double>(tiles + 1) * kU;
  std::vector<double> t(static_cast<size_t>(n)), delta(static_cast<size_t>(n)), w(static_cast<size_t>(n));
  double tmax = -INFINITY, tabs = 0, ds_max = 0;
  for (int64_t j = 0; j < n; ++j) {
    double dot = 0, mag = 0;
    for (int64_t c = 0; c < d; ++c) {
      dot += static_cast<double>(qi[c]) * k[j * stride + c];
      mag += std::fabs(static_cast<double>(qi[c]) * k[j * stride + c]);
    }
    t[static_cast<size_t>(j)] = dot * scale;
    delta[static_cast<size_t>(j)] = eps_s * scale * mag;
    ds_max = std::max(ds_max, gamma(static_cast<double>(d + 2)) * mag * scale);
    tmax = std::max(tmax, t[static_cast<size_t>(j)]);
    tabs = std::max(tabs, std::fabs(t[static_cast<size_t>(j)]));
  }
  double denom = 0;
  for (int64_t j = 0; j < n; ++j) denom += std::exp(t[static_cast<size_t>(j)] - tmax);
  double dminus = 0, dplus = 0;
  for (int64_t j = 0; j < n; ++j) {
    const size_t jj = static_cast<size_t>(j);
    w[jj] = std::exp(t[jj] - tmax) / denom;
    delta[jj] += kU * (std::fabs(t[jj]) + tabs) * 1.01;
    dminus += w[jj] * std::exp(-delta[jj]) * (1 - a);
    dplus += w[jj] * std::exp(delta[jj]) * (1 + a);
  }
  Bf16Exact r;
  r.out.assign(static_cast<size_t>(d), 0.0);
  r.tol.assign(static_cast<size_t>(d), 0.0);
  r.f32_tol.assign(static_cast<size_t>(d), 0.0);
  const double f32_rel = 2 * ds_max + 2 * gamma(static_cast<double>(n + 3)) + 12 * kU;
  for (int64_t c = 0; c < d; ++c) {
    double A = 0, B = 0, vmax = 0;
    for (int64_t j = 0; j < n; ++j) {
      const size_t jj = static_cast<size_t>(j);
      const double vj = v[j * stride + c];
      const double beta = std::max(std::exp(delta[jj]) * (1 + a) / dminus - 1, 1 - std::exp(-delta[jj]) * (1 - a) / dplus);
      r.out[static_cast<size_t>(c)] += w[jj] * vj;
      A += w[jj] * std::fabs(vj);
      B += beta * w[jj] * std::fabs(vj);
      vmax = std::max(vmax, std::fabs(vj));
    }
    const double g = 3 * gamma(static_cast<double>(n + 4));
    r.tol[static_cast<size_t>(c)] = (1 + kUbf16) * B + kUbf16 * A + g * (1 + kUbf16) * (A + B) +
                                    static_cast<double>(n) * std::ldexp(1.0, -126) * vmax + 1e-30;
    r.f32_tol[static_cast<size_t>(c)] = f32_rel * A;
  }
  return r;
}

struct Bf16Case {
  int64_t q_len, kv_len, d;
  float q_sigma;  // spread of the scores: larger = peakier softmax, more rescaling
};

struct Bf16Data {
  int64_t q_stride, kv_stride, out_stride;
  std::vector<float> q, k, v;
  std::vector<uint16_t> packed;
  AttentionShape s;
};

Bf16Data bf16_data(const Bf16Case& c, uint32_t seed) {
  Bf16Data x;
  x.q_stride = c.d + 3;
  x.kv_stride = c.d + 5;
  x.out_stride = c.d + 1;
  x.q = randn(static_cast<size_t>(c.q_len * x.q_stride), seed, c.q_sigma);
  x.k = randn(static_cast<size_t>(c.kv_len * x.kv_stride), seed + 1);
  x.v = randn(static_cast<size_t>(c.kv_len * x.kv_stride), seed + 2);
  x.packed.assign(attention_bf16_packed_elems(c.kv_len, c.d), 0xFFFF);  // padding must be written
  pack_attention_kv_bf16(x.k.data(), x.kv_stride, x.v.data(), x.kv_stride, c.kv_len, c.d, x.packed.data());
  x.s.q_len = c.q_len;
  x.s.kv_len = c.kv_len;
  x.s.head_dim = c.d;
  x.s.q_stride = x.q_stride;
  x.s.out_stride = x.out_stride;
  x.s.scale = 1.0f / std::sqrt(static_cast<float>(c.d));
  return x;
}

// Largest |error| / tol over the outputs (> 1: the bound is broken).
struct Bf16Check {
  double worst_ratio = 0, worst_f32_ratio = 0, max_err = 0;
  int64_t violations = 0, checked = 0;
};

Bf16Check check_bf16_output(const Bf16Case& c, const Bf16Data& x, const std::vector<float>& out) {
  std::vector<float> f32(out.size());
  AttentionShape fs = x.s;
  fs.k_stride = fs.v_stride = x.kv_stride;
  ref::attention(x.q.data(), x.k.data(), x.v.data(), f32.data(), fs);
  Bf16Check r;
  for (int64_t i = 0; i < c.q_len; ++i) {
    const Bf16Exact e = exact_bf16_head(&x.q[static_cast<size_t>(i * x.q_stride)], x.k.data(), x.v.data(), x.kv_stride,
                                        c.kv_len, c.d, x.s.scale);
    for (int64_t ch = 0; ch < c.d; ++ch) {
      const size_t o = static_cast<size_t>(i * x.out_stride + ch), cc = static_cast<size_t>(ch);
      const double err = std::fabs(out[o] - e.out[cc]), err32 = std::fabs(out[o] - static_cast<double>(f32[o]));
      const double ratio = err / e.tol[cc], ratio32 = err32 / (e.tol[cc] + e.f32_tol[cc]);
      r.worst_ratio = std::max(r.worst_ratio, std::isnan(ratio) ? INFINITY : ratio);
      r.worst_f32_ratio = std::max(r.worst_f32_ratio, std::isnan(ratio32) ? INFINITY : ratio32);
      r.max_err = std::max(r.max_err, err);
      r.violations += !(err <= e.tol[cc]) || !(err32 <= e.tol[cc] + e.f32_tol[cc]);
      ++r.checked;
    }
  }
  return r;
}

TEST_P(IsaTest, Bf16AttentionWithinTheDerivedBound) {
  const Bf16Case cases[] = {
      {1, 1, 16, 1.0f},     {7, 16, 16, 1.0f},    {7, 17, 16, 1.0f},     {13, 100, 64, 1.0f},
      {48, 64, 64, 1.0f},   {49, 65, 64, 3.0f},   {100, 300, 64, 1.0f},  {37, 1000, 64, 2.0f},
      {128, 3072, 64, 1.0f}, {20, 200, 72, 1.0f}, {9, 77, 80, 1.0f},     {11, 129, 128, 1.0f},
      {5, 33, 3, 1.0f},     {6, 50, 96, 4.0f},    {33, 500, 112, 1.0f},  {3, 40, 8, 1.0f},
  };
  uint32_t seed = 1700;
  double worst = 0, worst32 = 0;
  for (const Bf16Case& c : cases) {
    const Bf16Data x = bf16_data(c, seed += 10);
    std::vector<float> out(static_cast<size_t>(c.q_len * x.out_stride), NAN);
    attention_bf16(x.q.data(), x.packed.data(), out.data(), x.s);
    const Bf16Check r = check_bf16_output(c, x, out);
    EXPECT_EQ(r.violations, 0) << "q_len=" << c.q_len << " kv=" << c.kv_len << " d=" << c.d << " sigma=" << c.q_sigma
                               << ": worst err/bound " << r.worst_ratio << " (vs f32 " << r.worst_f32_ratio << ")";
    EXPECT_GT(r.max_err, 0.0) << "bf16 rounding should show";
    worst = std::max(worst, r.worst_ratio);
    worst32 = std::max(worst32, r.worst_f32_ratio);
  }
  std::printf("[ bf16 ] %s: worst |err| / derived bound %.3f vs exact, %.3f vs the fp32 reference (%s)\n",
              std::string(isa_name(GetParam())).c_str(), worst, worst32,
              attention_bf16_native() ? "vdpbf16ps" : "fp32 FMAs");
}

// The bound is not vacuous: outputs that are wrong the way a kernel bug would make them break it
// (measured: the last of 40 keys dropped breaks it at 43 of 1536 outputs, up to 1.8x; a scale
// 1/sqrt(32) for 1/sqrt(64) at most outputs; one value row zeroed somewhere).
TEST(Bf16AttentionBound, RejectsWrongResults) {
  const Bf16Case c{24, 40, 64, 1.0f};
  const Bf16Data x = bf16_data(c, 4242);
  AttentionShape fs = x.s;
  fs.k_stride = fs.v_stride = x.kv_stride;
  std::vector<float> out(static_cast<size_t>(c.q_len * x.out_stride));
  // Last key forgotten (a masking off-by-one).
  AttentionShape shorter = fs;
  shorter.kv_len = c.kv_len - 1;
  ref::attention(x.q.data(), x.k.data(), x.v.data(), out.data(), shorter);
  const Bf16Check dropped = check_bf16_output(c, x, out);
  EXPECT_GT(dropped.violations, dropped.checked / 100) << "dropped key: worst err/bound " << dropped.worst_ratio;
  // Scale 1/sqrt(32) for 1/sqrt(64) (a head size mix-up).
  AttentionShape wrong = fs;
  wrong.scale = 1.0f / std::sqrt(32.0f);
  ref::attention(x.q.data(), x.k.data(), x.v.data(), out.data(), wrong);
  const Bf16Check scaled = check_bf16_output(c, x, out);
  EXPECT_GT(scaled.violations, scaled.checked / 10) << "wrong scale: worst err/bound " << scaled.worst_ratio;
  // One value row zeroed.
  std::vector<float> v0 = x.v;
  std::fill(v0.begin() + 7 * x.kv_stride, v0.begin() + 8 * x.kv_stride, 0.0f);
  ref::attention(x.q.data(), x.k.data(), v0.data(), out.data(), fs);
  EXPECT_GT(check_bf16_output(c, x, out).violations, 0) << "lost value row";
  // And the right answer passes.
  ref::attention(x.q.data(), x.k.data(), x.v.data(), out.data(), fs);
  EXPECT_EQ(check_bf16_output(c, x, out).violations, 0);
}

// A query's result does not depend on which other queries share its call (how a segment's
// queries are split into tasks and threads): bit for bit, at every level.
TEST_P(IsaTest, Bf16AttentionRowsIndependentOfTheSplit) {
  const Bf16Case c{150, 333, 64, 2.0f};
  const Bf16Data x = bf16_data(c, 77);
  std::vector<float> whole(static_cast<size_t>(c.q_len * x.out_stride)), split(whole.size());
  attention_bf16(x.q.data(), x.packed.data(), whole.data(), x.s);
  for (int64_t i0 = 0, step = 1; i0 < c.q_len; i0 += step, step = step % 13 + 4) {
    AttentionShape s = x.s;
    s.q_len = std::min(step, c.q_len - i0);
    attention_bf16(x.q.data() + i0 * x.q_stride, x.packed.data(), split.data() + i0 * x.out_stride, s);
  }
  for (int64_t i = 0; i < c.q_len; ++i)
    for (int64_t ch = 0; ch < c.d; ++ch) {
      const size_t o = static_cast<size_t>(i * x.out_stride + ch);
      ASSERT_EQ(whole[o], split[o]) << "row " << i << " dim " << ch;
    }
}

// The vision attention default follows the active level: bf16 on vdpbf16ps and on AVX2 (where
// the bf16 kernel is the faster one), f32 on the scalar levels.
TEST(Bf16Attention, PreferredWhereItIsTheFasterKernel) {
  for (Isa isa : supported_isas()) {
    set_max_isa(isa);
    const bool expected = isa == Isa::kAVX2 || (isa == Isa::kAVX512 && attention_bf16_native());
    EXPECT_EQ(attention_bf16_preferred(), expected) << isa_name(isa);
  }
  set_max_isa(Isa::kAVX512);
}

TEST(Bf16Attention, PackingAndArguments) {
  // Layout sizes: keys padded to blocks of 16, K to dimension pairs, V to lines of 16.
  EXPECT_EQ(attention_bf16_packed_elems(0, 64), 0u);
  EXPECT_EQ(attention_bf16_packed_elems(16, 64), 16u * 64 + 16u * 64);
  EXPECT_EQ(attention_bf16_packed_elems(17, 72), 32u * 72 + 32u * 80);
  EXPECT_EQ(attention_bf16_packed_elems(5, 3), 16u * 4 + 16u * 16);
  {  // every element where kernels/attention_bf16.h says, the padding zero
    const int64_t n = 21, d = 5, pairs = 3, lines = 1;
    const std::vector<float> k = randn(static_cast<size_t>(n * 7), 5), v = randn(static_cast<size_t>(n * 9), 6);
    std::vector<uint16_t> p(attention_bf16_packed_elems(n, d), 0xFFFF);
    pack_attention_kv_bf16(k.data(), 7, v.data(), 9, n, d, p.data());
    std::vector<uint16_t> want(p.size(), 0);
    const size_t v0 = static_cast<size_t>(2 * 16 * pairs * 2);  // after K's 2 blocks of 3 lines of 32
    for (int64_t j = 0; j < n; ++j)
      for (int64_t c = 0; c < d; ++c) {
        want[static_cast<size_t>(((j / 16) * pairs + c / 2) * 32 + 2 * (j % 16) + c % 2)] = f32_to_bf16(k[static_cast<size_t>(j * 7 + c)]);
        want[v0 + static_cast<size_t>(((j / 2) * lines + c / 16) * 32 + 2 * (c % 16) + j % 2)] =
            f32_to_bf16(v[static_cast<size_t>(j * 9 + c)]);
      }
    EXPECT_EQ(p, want);
  }
  test::expect_error([] { attention_bf16_packed_elems(8, 0); }, ErrorKind::kInvalidArgument, {"head_dim"});
  test::expect_error([] { attention_bf16_packed_elems(8, 129); }, ErrorKind::kInvalidArgument, {"head_dim"});
  AttentionShape s;
  s.q_len = 1;
  s.kv_len = 1;
  s.head_dim = 16;
  s.causal = true;
  std::vector<uint16_t> packed(attention_bf16_packed_elems(1, 16));
  float q[16] = {}, out[16];
  test::expect_error([&] { attention_bf16(q, packed.data(), out, s); }, ErrorKind::kInvalidArgument, {"not causal"});
  // No keys: zeros, as attention() gives.
  s.causal = false;
  s.kv_len = 0;
  out[0] = 1.0f;
  attention_bf16(q, packed.data(), out, s);
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(parse_attention_precision("BF16"), AttentionPrecision::kBF16);
  EXPECT_EQ(attention_precision_name(AttentionPrecision::kF32), "f32");
  test::expect_error([] { parse_attention_precision("fp8"); }, ErrorKind::kInvalidArgument, {"fp8", "bf16"});
}

INSTANTIATE_TEST_SUITE_P(AllIsas, IsaTest, ::testing::ValuesIn(supported_isas()), isa_param_name);

}  // namespace
}  // namespace qvl::kernels
