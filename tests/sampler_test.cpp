// Sampling: each warper's cut-off on constructed logits, penalties, seeded reproducibility,
// and that draws follow the warped distribution.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "core/check.h"
#include "api/sampler.h"

namespace qvl {
namespace {

// logits = log(probabilities) so softmax gives the probabilities back exactly.
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

GeneratorParams sampling() {
  GeneratorParams p;
  p.do_sample = true;
  return p;
}

std::map<int32_t, float> dist(const GeneratorParams& p, std::vector<float> logits,
                              const std::vector<int32_t>& context = {}, const std::vector<int32_t>& generated = {}) {
  Sampler s(p);
  std::map<int32_t, float> out;
  for (auto [t, prob] : s.distribution(logits, context, generated)) out[t] = prob;
  return out;
}

TEST(Sampler, GreedyPicksLowestIdOnTies) {
  GeneratorParams p;
  Sampler s(p);
  std::vector<float> l = {1, 3, 3, 2};
  EXPECT_EQ(s.sample(l, {}, {}), 1);
}

TEST(Sampler, TemperatureScalesLogits) {
  auto p = sampling();
  p.temperature = 2.0f;
  auto d = dist(p, {0.0f, std::log(4.0f)});  // probs 1:4 → at T=2, 1:2
  EXPECT_NEAR(d[0], 1.0 / 3, 1e-6);
  EXPECT_NEAR(d[1], 2.0 / 3, 1e-6);
}

TEST(Sampler, TopKKeepsKBest) {
  auto p = sampling();
  p.top_k = 2;
  auto d = dist(p, logits_of({0.1, 0.4, 0.2, 0.3}));
  ASSERT_EQ(d.size(), 2u);
  EXPECT_NEAR(d[1], 0.4 / 0.7, 1e-6);
  EXPECT_NEAR(d[3], 0.3 / 0.7, 1e-6);
}

TEST(Sampler, TopPKeepsSmallestPrefixReachingP) {
  auto p = sampling();
  p.top_p = 0.75f;  // 0.4 + 0.3 = 0.7 < 0.75 → needs the 0.2 too
  auto d = dist(p, logits_of({0.1, 0.4, 0.2, 0.3}));
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d.count(0), 0u);
  EXPECT_NEAR(d[2], 0.2 / 0.9, 1e-6);
  p.top_p = 0.7f;  // exactly reached by two tokens
  EXPECT_EQ(dist(p, logits_of({0.1, 0.4, 0.2, 0.3})).size(), 2u);
}

TEST(Sampler, MinPDropsTokensBelowFractionOfTop) {
  auto p = sampling();
  p.min_p = 0.5f;  // floor = 0.2
  auto d = dist(p, logits_of({0.1, 0.4, 0.19, 0.31}));
  ASSERT_EQ(d.size(), 2u);
  EXPECT_NEAR(d[1], 0.4 / 0.71, 1e-6);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveMultipliesNegative) {
  GeneratorParams p;
  p.repetition_penalty = 2.0f;
  Sampler s(p);
  std::vector<float> l = {4.0f, -1.0f, 3.0f};
  // token 0 (seen): 4 → 2; token 1 (seen): -1 → -2; token 2 unseen stays 3 and wins.
  EXPECT_EQ(s.sample(l, {0, 1, 0}, {}), 2);
  EXPECT_FLOAT_EQ(l[0], 2.0f);
  EXPECT_FLOAT_EQ(l[1], -2.0f);
}

TEST(Sampler, PresenceAndFrequencyPenaltiesUseGeneratedCounts) {
  GeneratorParams p;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  Sampler s(p);
  std::vector<float> l = {5.0f, 5.0f, 4.0f};
  s.sample(l, {0, 1, 1, 1}, {1, 1, 1});
  EXPECT_FLOAT_EQ(l[0], 5.0f);               // only in the prompt: untouched
  EXPECT_FLOAT_EQ(l[1], 5.0f - 0.5f - 0.75f);
}

TEST(Sampler, SeedMakesDrawsReproducible) {
  auto p = sampling();
  p.seed = 1234;
  auto draw = [&](uint64_t seed) {
    p.seed = seed;
    Sampler s(p);
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) {
      auto l = logits_of({0.25, 0.25, 0.25, 0.25});
      out.push_back(s.sample(l, {}, {}));
    }
    return out;
  };
  EXPECT_EQ(draw(1234), draw(1234));
  EXPECT_NE(draw(1234), draw(4321));
}

TEST(Sampler, DrawFrequenciesFollowDistribution) {
  auto p = sampling();
  p.seed = 7;
  Sampler s(p);
  const std::vector<double> probs = {0.5, 0.3, 0.15, 0.05};
  std::vector<int> counts(4, 0);
  const int n = 40000;
  for (int i = 0; i < n; ++i) {
    auto l = logits_of(probs);
    ++counts[static_cast<size_t>(s.sample(l, {}, {}))];
  }
  for (size_t i = 0; i < probs.size(); ++i) {
    const double sigma = std::sqrt(probs[i] * (1 - probs[i]) / n);
    EXPECT_NEAR(counts[i] / double(n), probs[i], 5 * sigma) << "token " << i;
  }
}

TEST(Sampler, RejectsInvalidParameters) {
  auto p = sampling();
  p.temperature = 0.0f;
  EXPECT_THROW(Sampler{p}, Error);
  p = sampling();
  p.top_p = 1.5f;
  EXPECT_THROW(Sampler{p}, Error);
  p = sampling();
  p.min_p = -0.1f;
  EXPECT_THROW(Sampler{p}, Error);
}

}  // namespace
}  // namespace qvl
