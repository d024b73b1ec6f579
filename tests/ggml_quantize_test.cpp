// qvl's ggml quantizers write the blocks ggml's reference quantizer writes, byte for byte:
// tests/data/gguf/ggml_types.gguf holds the F32 `source` (4x512) and, for each type,
// `<T>.q` = ggml_quantize_chunk(T, source) without an importance matrix.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "formats/ggml_quantize.h"
#include "formats/ggml_quants.h"
#include "formats/gguf.h"
#include "qvl/error.hpp"

namespace qvl {
namespace {

const std::string kTypesFile = std::string(QVL_TEST_DATA_DIR) + "/gguf/ggml_types.gguf";

// Differing bytes of a and b: their count and the first one's offset (-1 when equal).
struct ByteDiff {
  int64_t count = 0, first = -1;
};
ByteDiff compare_bytes(const uint8_t* a, const uint8_t* b, size_t n) {
  ByteDiff d;
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) {
      if (d.first < 0) d.first = static_cast<int64_t>(i);
      ++d.count;
    }
  }
  return d;
}

class GgmlQuantize : public ::testing::TestWithParam<std::string> {};

TEST_P(GgmlQuantize, EqualsGgmlsReferenceQuantizerByteForByte) {
  const GgufFile file(kTypesFile);
  const GgufTensor& source = file.tensors().at("source");
  const GgufTensor& want = file.tensors().at(GetParam() + ".q");
  ASSERT_EQ(source.type, GgmlType::kF32);
  ASSERT_EQ(source.dims, want.dims);
  const int64_t cols = source.dims[0], rows = source.dims[1];
  ASSERT_TRUE(ggml_type_quantizable(want.type));
  std::vector<float> values(static_cast<size_t>(rows * cols));
  std::memcpy(values.data(), source.data, values.size() * 4);

  std::vector<uint8_t> got(want.nbytes);
  quantize_ggml(want.type, values.data(), rows * cols, got.data());
  const auto* expected = reinterpret_cast<const uint8_t*>(want.data);
  const ByteDiff d = compare_bytes(got.data(), expected, got.size());
  const int64_t block_bytes = ggml_type_info(static_cast<uint32_t>(want.type))->block_bytes;
  EXPECT_EQ(d.count, 0) << GetParam() << ": " << d.count << " of " << got.size() << " bytes differ; the first at byte "
                        << d.first << " (block " << d.first / block_bytes << ", byte " << d.first % block_bytes
                        << " in it)";

  // The comparison is strict: one flipped bit is one differing byte.
  got[got.size() / 2] ^= 0x10;
  EXPECT_EQ(compare_bytes(got.data(), expected, got.size()).count, 1);

  // Rows on a thread pool give the same bytes.
  ThreadPool pool(3);
  std::vector<uint8_t> threaded(want.nbytes);
  quantize_ggml_matrix(want.type, values.data(), rows, cols, threaded.data(), &pool);
  EXPECT_EQ(0, std::memcmp(threaded.data(), expected, threaded.size()));

  // Not a copy of the input: the blocks decode to different, nearby values.
  std::vector<float> decoded(values.size());
  dequantize_ggml(want.type, expected, rows * cols, decoded.data());
  int64_t changed = 0;
  for (size_t i = 0; i < values.size(); ++i) changed += decoded[i] != values[i];
  EXPECT_GT(changed, rows * cols / 2);
}

INSTANTIATE_TEST_SUITE_P(Types, GgmlQuantize, ::testing::Values("Q8_0", "Q4_0", "Q5_0", "Q4_K", "Q6_K"),
                         [](const auto& info) { return info.param; });

// Blocks of zeros and of one repeated value take the quantizers' special cases (a zero scale, a
// zero range): ggml writes zero scales (for Q4_0 the -0 of 0 / -8) and, for Q4_0, the middle code 8.
TEST(GgmlQuantize, ZeroBlocks) {
  const std::vector<float> zeros(256, 0.0f);
  std::vector<uint8_t> q8(8 * 34), q4(8 * 18), q4k(144), q6k(210);
  quantize_ggml(GgmlType::kQ8_0, zeros.data(), 256, q8.data());
  quantize_ggml(GgmlType::kQ4_0, zeros.data(), 256, q4.data());
  quantize_ggml(GgmlType::kQ4_K, zeros.data(), 256, q4k.data());
  quantize_ggml(GgmlType::kQ6_K, zeros.data(), 256, q6k.data());
  for (uint8_t b : q8) EXPECT_EQ(b, 0);
  for (size_t i = 0; i < q4.size(); ++i) EXPECT_EQ(q4[i], i % 18 == 0 ? 0 : i % 18 == 1 ? 0x80 : 0x88) << i;
  for (uint8_t b : q4k) EXPECT_EQ(b, 0);
  for (uint8_t b : q6k) EXPECT_EQ(b, 0);
  std::vector<float> decoded(256);
  const std::vector<float> ones(256, 0.25f);
  quantize_ggml(GgmlType::kQ4_K, ones.data(), 256, q4k.data());
  dequantize_ggml(GgmlType::kQ4_K, q4k.data(), 256, decoded.data());
  for (float v : decoded) EXPECT_NEAR(v, 0.25f, 0.25f / 30);
}

// quantize_q6_k_matrix (the q6_k option of quantize-at-load and `qvl quantize --head-type`) packs
// ggml's reference blocks: its weights are ggml's own dequantization of them.
TEST(GgmlQuantize, Q6_KMatrixHoldsTheReferenceBlocks) {
  const GgufFile file(kTypesFile);
  const GgufTensor& source = file.tensors().at("source");
  const GgufTensor& want = file.tensors().at("Q6_K.deq");
  const int64_t cols = source.dims[0], rows = source.dims[1];
  ASSERT_EQ(cols % 256, 0);
  ThreadPool pool(2);
  const kernels::QuantizedMatrix q =
      quantize_q6_k_matrix(kernels::WeightMatrix{DType::kF32, rows, cols, source.data}, &pool);
  EXPECT_EQ(q.view().format, kernels::WeightFormat::kGgmlQ6_K);
  std::vector<float> got(static_cast<size_t>(rows * cols));
  kernels::dequantize_matrix(q, got.data());
  EXPECT_EQ(0, std::memcmp(got.data(), want.data, got.size() * 4));

  // A width that is not a whole super-block: each row is quantized as if padded with zeros to 256.
  const int64_t narrow = 96;
  std::vector<float> values(static_cast<size_t>(3 * narrow));
  for (size_t i = 0; i < values.size(); ++i) values[i] = std::sin(0.37f * static_cast<float>(i)) * (1.0f + i % 7);
  const kernels::QuantizedMatrix p = quantize_q6_k_matrix(kernels::WeightMatrix{DType::kF32, 3, narrow, values.data()});
  std::vector<float> packed(values.size());
  kernels::dequantize_matrix(p, packed.data());
  for (int64_t r = 0; r < 3; ++r) {
    std::vector<float> row(256, 0.0f), decoded(256);
    std::vector<uint8_t> blocks(210);
    std::copy_n(values.begin() + r * narrow, narrow, row.begin());
    quantize_ggml(GgmlType::kQ6_K, row.data(), 256, blocks.data());
    dequantize_ggml(GgmlType::kQ6_K, blocks.data(), 256, decoded.data());
    for (int64_t c = 0; c < narrow; ++c) ASSERT_EQ(packed[r * narrow + c], decoded[c]) << r << "," << c;
  }
  EXPECT_THROW(quantize_q6_k_matrix(kernels::WeightMatrix{DType::kF32, 3, 48, values.data()}), Error);
}

TEST(GgmlQuantize, OtherTypesAreRefused) {
  const std::vector<float> values(256, 1.0f);
  std::vector<uint8_t> out(256);
  EXPECT_FALSE(ggml_type_quantizable(GgmlType::kQ5_K));
  try {
    quantize_ggml(GgmlType::kQ5_K, values.data(), 256, out.data());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("Q5_K"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qvl
