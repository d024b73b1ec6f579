#include "api/sampler.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace qvl {

int32_t argmax(const float* logits, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<int32_t>(best);
}

void validate_generator_params(const GeneratorParams& p) {
  auto bad = [](const char* name, const char* rule, auto value) {
    fail(ErrorKind::kInvalidArgument, "generator parameter ", name, " must be ", rule, " (got ", value, ")");
  };
  if (p.max_new_tokens < 1) bad("max_new_tokens", "at least 1", p.max_new_tokens);
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f) bad("temperature", "a finite number >= 0", p.temperature);
  if (p.do_sample && p.temperature == 0.0f) bad("temperature", "> 0 when sampling", p.temperature);
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) bad("top_p", "in (0, 1]", p.top_p);
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) bad("min_p", "in [0, 1]", p.min_p);
  if (p.top_k < 0) bad("top_k", ">= 0 (0 = off)", p.top_k);
  if (!std::isfinite(p.repetition_penalty) || !(p.repetition_penalty > 0.0f))
    bad("repetition_penalty", "a finite number > 0", p.repetition_penalty);
  if (!std::isfinite(p.presence_penalty)) bad("presence_penalty", "a finite number", p.presence_penalty);
  if (!std::isfinite(p.frequency_penalty)) bad("frequency_penalty", "a finite number", p.frequency_penalty);
}

Sampler::Sampler(const GeneratorParams& params) : params_(params), rng_(params.seed) { validate_generator_params(params); }

void Sampler::apply_penalties(std::vector<float>& logits, const std::vector<int32_t>& context,
                              const std::vector<int32_t>& generated) const {
  const int64_t n = static_cast<int64_t>(logits.size());
  if (params_.repetition_penalty != 1.0f) {
    seen_.resize(logits.size());  // all zero between calls: only the marked entries are cleared
    for (int32_t t : context) {
      if (t < 0 || t >= n || seen_[static_cast<size_t>(t)]) continue;
      seen_[static_cast<size_t>(t)] = 1;
      float& l = logits[static_cast<size_t>(t)];
      l = l > 0 ? l / params_.repetition_penalty : l * params_.repetition_penalty;
    }
    for (int32_t t : context)
      if (t >= 0 && t < n) seen_[static_cast<size_t>(t)] = 0;
  }
  if (params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) {
    // Counts per token from the sorted generated ids: runs of equal ids.
    sorted_.assign(generated.begin(), generated.end());
    std::sort(sorted_.begin(), sorted_.end());
    for (size_t i = 0; i < sorted_.size();) {
      size_t j = i;
      while (j < sorted_.size() && sorted_[j] == sorted_[i]) ++j;
      const int32_t t = sorted_[i];
      if (t >= 0 && t < n)
        logits[static_cast<size_t>(t)] -=
            params_.presence_penalty + params_.frequency_penalty * static_cast<float>(j - i);
      i = j;
    }
  }
}

std::vector<std::pair<int32_t, float>> Sampler::distribution(std::vector<float>& logits,
                                                             const std::vector<int32_t>& context,
                                                             const std::vector<int32_t>& generated) const {
  warp(logits, context, generated);
  return candidates_;
}

void Sampler::warp(std::vector<float>& logits, const std::vector<int32_t>& context,
                   const std::vector<int32_t>& generated) const {
  apply_penalties(logits, context, generated);
  std::vector<std::pair<int32_t, float>>& cand = candidates_;
  cand.clear();
  cand.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i)
    if (std::isfinite(logits[i])) cand.emplace_back(static_cast<int32_t>(i), logits[i] / params_.temperature);
  if (cand.empty()) fail(ErrorKind::kInternal, "every logit is non-finite");
  auto by_logit = [](const auto& a, const auto& b) { return a.second > b.second || (a.second == b.second && a.first < b.first); };
  size_t keep = cand.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep) keep = static_cast<size_t>(params_.top_k);
  std::partial_sort(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(keep), cand.end(), by_logit);
  cand.resize(keep);
  // Softmax over the survivors (stable: subtract the max).
  const float top = cand[0].second;
  double total = 0;
  for (auto& c : cand) {
    c.second = std::exp(c.second - top);
    total += c.second;
  }
  for (auto& c : cand) c.second = static_cast<float>(c.second / total);
  if (params_.top_p < 1.0f) {  // smallest prefix whose mass reaches top_p (at least one token)
    double mass = 0;
    size_t n = 0;
    while (n < cand.size()) {
      mass += cand[n].second;
      ++n;
      if (mass >= params_.top_p) break;
    }
    cand.resize(n);
  }
  if (params_.min_p > 0.0f) {
    const float floor = params_.min_p * cand[0].second;
    size_t n = 1;
    while (n < cand.size() && cand[n].second >= floor) ++n;
    cand.resize(n);
  }
  total = 0;
  for (const auto& c : cand) total += c.second;
  for (auto& c : cand) c.second = static_cast<float>(c.second / total);
}

int32_t Sampler::sample(std::vector<float>& logits, const std::vector<int32_t>& context,
                        const std::vector<int32_t>& generated) {
  if (!params_.do_sample) {
    apply_penalties(logits, context, generated);
    return argmax(logits.data(), static_cast<int64_t>(logits.size()));
  }
  warp(logits, context, generated);
  const auto& dist = candidates_;
  // 53 random bits → uniform double in [0, 1): reproducible across platforms for a seed.
  const double u = static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0);
  double acc = 0;
  for (const auto& [token, p] : dist) {
    acc += p;
    if (u < acc) return token;
  }
  return dist.back().first;
}

}  // namespace qvl
