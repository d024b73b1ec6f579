// Chooses the next token from logits: penalties, then greedy or
// temperature → top-k → top-p → min-p → seeded draw (the order transformers applies them).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "qvl/qvl.hpp"

namespace qvl {

// kInvalidArgument naming the first parameter out of its range (non-finite values included).
void validate_generator_params(const GeneratorParams& params);

// Validates its parameters on construction.
class Sampler {
 public:
  explicit Sampler(const GeneratorParams& params);

  // logits are modified in place (penalties, warping). `context` holds every token of the
  // sequence (repetition penalty, as transformers), `generated` only the generated ones
  // (presence/frequency penalties, as OpenAI).
  int32_t sample(std::vector<float>& logits, const std::vector<int32_t>& context,
                 const std::vector<int32_t>& generated);

  // Exposed for tests: the probability distribution sampling would draw from (after warping),
  // as (token, probability) pairs sorted by decreasing probability.
  std::vector<std::pair<int32_t, float>> distribution(std::vector<float>& logits, const std::vector<int32_t>& context,
                                                      const std::vector<int32_t>& generated) const;

 private:
  void apply_penalties(std::vector<float>& logits, const std::vector<int32_t>& context,
                       const std::vector<int32_t>& generated) const;
  // Fills candidates_ with the warped distribution; what distribution() returns a copy of.
  void warp(std::vector<float>& logits, const std::vector<int32_t>& context, const std::vector<int32_t>& generated) const;

  GeneratorParams params_;
  std::mt19937_64 rng_;
  // Scratch kept between calls so that sampling a token allocates nothing once warm.
  mutable std::vector<std::pair<int32_t, float>> candidates_;
  mutable std::vector<uint8_t> seen_;
  mutable std::vector<int32_t> sorted_;
};

// Index of the largest logit; ties go to the lowest id.
int32_t argmax(const float* logits, int64_t n);

}  // namespace qvl
