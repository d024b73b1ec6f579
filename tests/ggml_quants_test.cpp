// ggml block types decoded bit for bit as ggml decodes them: tests/data/gguf/ggml_types.gguf holds,
// for each type, one 4x512 matrix quantized by ggml (<T>.q) and ggml's own dequantization of it
// (<T>.deq, F32).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "qvl/error.hpp"
#include "formats/ggml_quants.h"
#include "formats/gguf.h"
#include "kernels/kernels.h"

namespace qvl {
namespace {

const std::string kTypesFile = std::string(QVL_TEST_DATA_DIR) + "/gguf/ggml_types.gguf";

int64_t numel(const GgufTensor& t) {
  int64_t n = 1;
  for (int64_t d : t.dims) n *= d;
  return n;
}

class GgmlDequantize : public ::testing::TestWithParam<std::string> {};

TEST_P(GgmlDequantize, EqualsGgmlBitForBit) {
  const GgufFile file(kTypesFile);
  const std::string type_name = GetParam();
  const auto q = file.tensors().find(type_name + ".q");
  const auto deq = file.tensors().find(type_name + ".deq");
  ASSERT_NE(q, file.tensors().end()) << type_name;
  ASSERT_NE(deq, file.tensors().end()) << type_name;
  ASSERT_EQ(deq->second.type, GgmlType::kF32);
  EXPECT_STREQ(ggml_type_info(static_cast<uint32_t>(q->second.type))->name, type_name.c_str());
  ASSERT_TRUE(ggml_type_dequantizable(q->second.type));
  const int64_t n = numel(q->second);
  ASSERT_EQ(n, numel(deq->second));
  ASSERT_EQ(n, 4 * 512);

  std::vector<float> got(static_cast<size_t>(n));
  dequantize_ggml(q->second.type, q->second.data, n, got.data());
  std::vector<float> want(static_cast<size_t>(n));
  std::memcpy(want.data(), deq->second.data, want.size() * 4);
  int64_t mismatches = 0, first = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (std::memcmp(&got[i], &want[i], 4) != 0) {
      if (first < 0) first = i;
      ++mismatches;
    }
  }
  EXPECT_EQ(mismatches, 0) << type_name << ": first mismatch at element " << first << ": got "
                           << (first >= 0 ? got[first] : 0) << ", ggml " << (first >= 0 ? want[first] : 0);
  // Not a trivial pass: the matrix is not all zeros.
  int64_t nonzero = 0;
  for (float v : want) nonzero += v != 0.0f;
  EXPECT_GT(nonzero, n / 2);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, GgmlDequantize,
                         ::testing::Values("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
                                           "Q6_K", "IQ4_NL", "IQ4_XS", "BF16", "F16"),
                         [](const auto& info) { return info.param; });

// Q8_0, Q4_0, Q4_K, Q5_K, Q6_K and IQ4_XS blocks packed for the int8 kernels as they are: the packed matrix
// decodes to ggml's own dequantization bit for bit, and a matmul over it (at every instruction-set
// level) matches the f32 weights within the int8-activation bound.
class GgmlPack : public ::testing::TestWithParam<std::string> {};

TEST_P(GgmlPack, PackedBlocksHoldTheSameWeights) {
  const GgufFile file(kTypesFile);
  const GgufTensor& q = file.tensors().at(GetParam() + ".q");
  const GgufTensor& deq = file.tensors().at(GetParam() + ".deq");
  const int64_t cols = q.dims[0], rows = q.dims[1];
  ASSERT_TRUE(ggml_type_packable(q.type));
  const kernels::QuantizedMatrix packed = pack_ggml_matrix(q.type, q.data, rows, cols);
  std::vector<float> got(static_cast<size_t>(rows * cols)), want(got.size());
  kernels::dequantize_matrix(packed, got.data());
  std::memcpy(want.data(), deq.data, want.size() * 4);
  EXPECT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * 4));
  // y = x · Wᵀ through the int8 kernel vs. exact double products of the decoded weights.
  std::vector<float> x(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) x[static_cast<size_t>(c)] = std::sin(0.37f * static_cast<float>(c));
  std::vector<float> y(static_cast<size_t>(rows));
  for (kernels::Isa isa : {kernels::Isa::kScalar, kernels::Isa::kAVX2, kernels::Isa::kAVX512}) {
  if (kernels::set_max_isa(isa) != isa) continue;  // this CPU has no such level
  SCOPED_TRACE(std::string(kernels::isa_name(isa)));
  kernels::matmul(x.data(), 1, packed, nullptr, y.data(), nullptr);
  for (int64_t r = 0; r < rows; ++r) {
    // int8 activations: each element is off by at most half a step (its block's amax / 127), so
    // the error is bounded by sum |w| * amax / 254 per block (plus fp32 accumulation).
    double exact = 0, bound = 1e-5;
    for (int64_t b = 0; b < cols / 32; ++b) {
      double amax = 0, wsum = 0;
      for (int64_t c = b * 32; c < b * 32 + 32; ++c) {
        const double w = want[static_cast<size_t>(r * cols + c)];
        exact += w * x[static_cast<size_t>(c)];
        amax = std::max(amax, std::fabs(static_cast<double>(x[static_cast<size_t>(c)])));
        wsum += std::fabs(w);
      }
      bound += wsum * amax / 254.0 * 1.001;
    }
    EXPECT_NEAR(y[static_cast<size_t>(r)], exact, bound) << "row " << r;
  }
  }
  kernels::set_max_isa(kernels::Isa::kAVX512);
  EXPECT_FALSE(ggml_type_packable(GgmlType::kQ3_K));
}

INSTANTIATE_TEST_SUITE_P(PackableTypes, GgmlPack, ::testing::Values("Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K", "IQ4_XS"),
                         [](const auto& info) { return info.param; });

// The fixture covers every type the decoder lists (a new type needs a new fixture entry).
TEST(GgmlDequantize, FixtureHasEveryTypeAndTheSource) {
  const GgufFile file(kTypesFile);
  EXPECT_EQ(file.tensors().size(), 2u * 14 + 1);
  EXPECT_TRUE(file.tensors().count("source"));
}

TEST(GgmlDequantize, UnknownTypeIsRefused) {
  const uint8_t block[64] = {};
  float out[32];
  EXPECT_FALSE(ggml_type_dequantizable(GgmlType::kI8));
  try {
    dequantize_ggml(GgmlType::kI8, block, 32, out);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("I8"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qvl
