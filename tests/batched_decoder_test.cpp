// Several sequences in one forward pass give each sequence what it gets alone: prefill rows of
// one sequence beside decode rows of others, different lengths and cache depths, DeepStack rows
// of one sequence inside the batch. With quantized weights the results are bit-identical (the
// int8 matmul does not depend on how many rows it multiplies); with bf16 weights the one-row
// matvec and the many-row GEMM sum in different orders, so the bound is a rounding one.
#include <gtest/gtest.h>

#include <random>

#include "core/thread_pool.h"
#include "formats/checkpoint.h"
#include "model/text/text_decoder.h"
#include "test_util.h"

namespace qvl {
namespace {

struct Sequence {
  std::vector<int32_t> prompt;    // prefilled alone first
  std::vector<int32_t> step;      // then these rows, in the batch
};

class BatchedDecoder : public ::testing::TestWithParam<kernels::WeightFormat> {};

TEST_P(BatchedDecoder, EachSequenceGetsWhatItGetsAlone) {
  const ModelConfig config = load_model_config(test::tiny_model_dir());
  auto ckpt = Checkpoint::open(test::tiny_model_dir());
  ThreadPool pool(2);
  const kernels::WeightFormat format = GetParam();
  TextDecoder decoder(config, *ckpt, {format, format}, &pool);
  const TextConfig& c = config.text;
  const int64_t hd = c.hidden_size, vocab = c.vocab_size;

  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> token(0, 151000);
  auto tokens = [&](int n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = token(rng);
    return t;
  };
  // Decode rows (1 token) beside a prefill chunk (9 tokens) and a fresh sequence (empty cache).
  const std::vector<Sequence> seqs = {{tokens(5), tokens(1)}, {tokens(17), tokens(9)}, {{}, tokens(6)},
                                      {tokens(3), tokens(1)}};
  auto embed = [&](const std::vector<int32_t>& ids) {
    std::vector<float> e(ids.size() * static_cast<size_t>(hd));
    for (size_t i = 0; i < ids.size(); ++i) decoder.embed(ids[i], &e[i * static_cast<size_t>(hd)]);
    return e;
  };
  auto positions = [](int64_t from, size_t n) {
    std::vector<Position3> p(n);
    for (size_t i = 0; i < n; ++i) p[i] = {from + int64_t(i), from + int64_t(i), from + int64_t(i)};
    return p;
  };
  auto new_cache = [&] { return KvCache(c.num_hidden_layers, 64, c.num_key_value_heads, c.head_dim, kernels::KvType::kF32); };
  // A DeepStack feature on the second row of sequence 1's step, to check batch-row indexing.
  std::vector<std::vector<float>> feature(3, std::vector<float>(static_cast<size_t>(hd)));
  for (auto& f : feature)
    for (auto& x : f) x = std::uniform_real_distribution<float>(-1, 1)(rng);

  // Alone: prompt, then the step rows, each sequence through its own forward calls.
  std::vector<std::vector<float>> alone_logits, alone_hidden;
  for (size_t s = 0; s < seqs.size(); ++s) {
    KvCache cache = new_cache();
    if (!seqs[s].prompt.empty())
      decoder.forward(embed(seqs[s].prompt).data(), int64_t(seqs[s].prompt.size()),
                      positions(0, seqs[s].prompt.size()).data(), nullptr, cache, {}, &pool);
    std::vector<float> logits(static_cast<size_t>(vocab)), hidden(static_cast<size_t>(hd));
    DeepstackInjection ds;
    if (s == 1) {
      ds.rows = {1};
      for (const auto& f : feature) ds.per_layer.push_back(f.data());
    }
    decoder.forward(embed(seqs[s].step).data(), int64_t(seqs[s].step.size()),
                    positions(int64_t(seqs[s].prompt.size()), seqs[s].step.size()).data(), s == 1 ? &ds : nullptr,
                    cache, {hidden.data(), logits.data()}, &pool);
    alone_logits.push_back(logits);
    alone_hidden.push_back(hidden);
  }

  // Together: the same prompts alone, then every step row in one call (twice: the workspace is reused).
  for (int round = 0; round < 2; ++round) {
    std::vector<KvCache> caches;
    for (size_t s = 0; s < seqs.size(); ++s) {
      caches.push_back(new_cache());
      if (!seqs[s].prompt.empty())
        decoder.forward(embed(seqs[s].prompt).data(), int64_t(seqs[s].prompt.size()),
                        positions(0, seqs[s].prompt.size()).data(), nullptr, caches.back(), {}, &pool);
    }
    std::vector<int32_t> rows;
    std::vector<Position3> pos;
    std::vector<DecoderSequence> batch;
    std::vector<std::vector<float>> logits(seqs.size(), std::vector<float>(size_t(vocab)));
    std::vector<std::vector<float>> hidden(seqs.size(), std::vector<float>(size_t(hd)));
    DeepstackInjection ds;
    for (size_t s = 0; s < seqs.size(); ++s) {
      const int64_t first = int64_t(rows.size());
      if (s == 1) ds.rows = {first + 1};
      rows.insert(rows.end(), seqs[s].step.begin(), seqs[s].step.end());
      const auto p = positions(int64_t(seqs[s].prompt.size()), seqs[s].step.size());
      pos.insert(pos.end(), p.begin(), p.end());
      batch.push_back({&caches[s], first, int64_t(seqs[s].step.size()), hidden[s].data(), logits[s].data()});
    }
    for (const auto& f : feature) ds.per_layer.push_back(f.data());
    static DecoderWorkspace workspace;
    decoder.forward_batch(embed(rows).data(), int64_t(rows.size()), pos.data(), batch, &ds, workspace, &pool);

    for (size_t s = 0; s < seqs.size(); ++s) {
      EXPECT_EQ(caches[s].size(), int64_t(seqs[s].prompt.size() + seqs[s].step.size()));
      const float rel = test::max_abs_diff(logits[s], alone_logits[s]) / test::max_abs(alone_logits[s]);
      if (format == kernels::WeightFormat::kDense) {
        EXPECT_LT(rel, 1e-5) << "sequence " << s;  // fp32 sums of ~1e3 terms in another order
      } else {
        EXPECT_EQ(logits[s], alone_logits[s]) << "sequence " << s;
        EXPECT_EQ(hidden[s], alone_hidden[s]) << "sequence " << s;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, BatchedDecoder,
                         ::testing::Values(kernels::WeightFormat::kDense, kernels::WeightFormat::kQ8_0,
                                           kernels::WeightFormat::kQ4_K),
                         [](const auto& info) { return std::string(kernels::weight_format_name(info.param)); });

}  // namespace
}  // namespace qvl
