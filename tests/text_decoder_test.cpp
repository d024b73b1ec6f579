// The fp32 text decoder against the golden text-only case, fed the golden input ids
// (independent of the tokenizer and chat template, which have their own tests). The golden
// comparison needs an exact fp32 KV cache; the cache's storage types are checked here too.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/thread_pool.h"
#include "formats/checkpoint.h"
#include "model/mrope_positions.h"
#include "model/text/text_decoder.h"
#include "test_util.h"

namespace qvl {
namespace {

struct GoldenText {
  std::vector<int32_t> ids;
  std::vector<int32_t> greedy;
  std::vector<float> logits;
  double hidden_norm;
};

GoldenText load_case(const std::string& name) {
  auto j = nlohmann::json::parse(test::read_file(test::golden_dir() + "/" + name + ".json"));
  GoldenText g;
  g.ids = j["input_ids"].get<std::vector<int32_t>>();
  g.greedy = j["greedy_tokens"].get<std::vector<int32_t>>();
  g.logits = test::read_f32(test::golden_dir() + "/" + name + ".last_logits.f32.bin");
  g.hidden_norm = j["final_hidden_norm_last"].get<double>();
  return g;
}

int32_t argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());  // first max = lowest id
}

class TextDecoderGolden : public ::testing::TestWithParam<int> {};

TEST_P(TextDecoderGolden, LogitsAndGreedyTokensMatch) {
  const int threads = GetParam();
  ModelConfig config = load_model_config(test::tiny_model_dir());
  auto ckpt = Checkpoint::open(test::tiny_model_dir());
  TextDecoder decoder(config, *ckpt);
  ThreadPool pool(threads);
  GoldenText g = load_case("a_text_only");

  const int64_t hd = config.text.hidden_size, n = static_cast<int64_t>(g.ids.size());
  KvCache cache(config.text.num_hidden_layers, 64, config.text.num_key_value_heads, config.text.head_dim,
                kernels::KvType::kF32);
  MropePositions pos = compute_mrope_positions(g.ids, {}, {151655, 151656}, 2, 0);
  std::vector<float> embeds(static_cast<size_t>(n * hd));
  for (int64_t i = 0; i < n; ++i) decoder.embed(g.ids[static_cast<size_t>(i)], &embeds[i * hd]);
  std::vector<float> logits(static_cast<size_t>(config.text.vocab_size)), hidden(static_cast<size_t>(hd));
  decoder.forward(embeds.data(), n, pos.positions.data(), nullptr, cache, {hidden.data(), logits.data()}, &pool);

  const float rel = test::max_abs_diff(logits, g.logits) / test::max_abs(g.logits);
  EXPECT_LT(rel, 2e-5) << "relative max abs error of the last logits";
  EXPECT_LT(test::max_abs_diff(logits, g.logits), 1e-4);
  double norm = 0;
  for (float v : hidden) norm += double(v) * v;
  EXPECT_NEAR(std::sqrt(norm), g.hidden_norm, 1e-4 * g.hidden_norm);

  // Greedy decoding through the KV cache.
  std::vector<int32_t> generated;
  int64_t next = pos.next_position;
  for (size_t step = 0; step < g.greedy.size(); ++step) {
    int32_t token = argmax(logits);
    generated.push_back(token);
    decoder.embed(token, embeds.data());
    Position3 p{next, next, next};
    ++next;
    decoder.forward(embeds.data(), 1, &p, nullptr, cache, {nullptr, logits.data()}, &pool);
  }
  EXPECT_EQ(generated, g.greedy);
}

INSTANTIATE_TEST_SUITE_P(Threads, TextDecoderGolden, ::testing::Values(1, 2, 3));

TEST(TextDecoder, ContextOverflowIsAnError) {
  ModelConfig config = load_model_config(test::tiny_model_dir());
  auto ckpt = Checkpoint::open(test::tiny_model_dir());
  TextDecoder decoder(config, *ckpt);
  KvCache cache(config.text.num_hidden_layers, 4, config.text.num_key_value_heads, config.text.head_dim);
  std::vector<float> embeds(5 * 64, 0.1f);
  std::vector<Position3> pos(5);
  try {
    decoder.forward(embeds.data(), 5, pos.data(), nullptr, cache, {}, nullptr);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kLimitExceeded);
    EXPECT_NE(std::string(e.what()).find("context"), std::string::npos);
  }
}

TEST(KvCache, StorageTypesSizesAndFallback) {
  using kernels::KvType;
  // 3 layers, 10 positions, 2 KV heads of 64: rows of 128 elements.
  KvCache f32(3, 10, 2, 64, KvType::kF32), f16(3, 10, 2, 64), q8(3, 10, 2, 64, KvType::kQ8_0);
  EXPECT_EQ(f16.type(), KvType::kF16);  // the default
  EXPECT_EQ(f32.bytes(), 2u * 3 * 10 * 128 * 4);
  EXPECT_EQ(f16.bytes(), 2u * 3 * 10 * 128 * 2);
  EXPECT_EQ(q8.bytes(), 2u * 3 * 10 * 4 * 36);  // 4 blocks of 32 per row, 36 bytes each
  EXPECT_EQ(q8.row_bytes(), 144u);
  EXPECT_EQ(q8.head_offset(1), 72u);
  EXPECT_EQ(f16.head_offset(1), 128u);
  EXPECT_EQ(q8.keys(1, 3) - q8.keys(1, 0), 3 * 144);
  // head_dim 16 holds no whole q8_0 block: the cache falls back to f16.
  KvCache small(1, 4, 2, 16, KvType::kQ8_0);
  EXPECT_EQ(small.type(), KvType::kF16);
  EXPECT_EQ(small.bytes(), 2u * 4 * 32 * 2);
  EXPECT_EQ(KvCache::effective_type(KvType::kQ8_0, 128), KvType::kQ8_0);
}

TEST(MropePositions, ImageGridFollowsReferenceRule) {
  // text(2) + image grid t=1, h=4, w=6 patches (2x3 merged) + text(2)
  std::vector<int32_t> ids = {1, 2, 9, 9, 9, 9, 9, 9, 3, 4};
  MropePositions p = compute_mrope_positions(ids, {{1, 4, 6}}, {9, 8}, 2, 0);
  ASSERT_EQ(p.positions.size(), ids.size());
  EXPECT_EQ(p.positions[1], (Position3{1, 1, 1}));
  EXPECT_EQ(p.positions[2], (Position3{2, 2, 2}));  // row 0, col 0
  EXPECT_EQ(p.positions[4], (Position3{2, 2, 4}));  // row 0, col 2
  EXPECT_EQ(p.positions[5], (Position3{2, 3, 2}));  // row 1, col 0
  EXPECT_EQ(p.positions[8], (Position3{5, 5, 5}));  // resumes at off + max(1, 2, 3)
  EXPECT_EQ(p.next_position, 7);
  EXPECT_THROW(compute_mrope_positions(ids, {{1, 4, 4}}, {9, 8}, 2, 0), Error);
  EXPECT_THROW(compute_mrope_positions(ids, {}, {9, 8}, 2, 0), Error);
}

}  // namespace
}  // namespace qvl
