// Rotary position embedding of the text decoder: plain RoPE for Qwen3, interleaved (or
// chunked) multimodal RoPE for Qwen3-VL. A token's position is a (t, h, w) triple; each
// rotary frequency takes its angle from one of the three components as mrope_section says.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "formats/model_config.h"

namespace qvl {

using Position3 = std::array<int64_t, 3>;  // (temporal, height, width)

class TextRotary {
 public:
  explicit TextRotary(const TextConfig& config);

  int64_t half_dim() const { return half_; }
  // Writes cos/sin of every frequency for one token: cos[half], sin[half].
  void angles(const Position3& pos, float* cos, float* sin) const;

 private:
  int64_t half_;
  std::vector<double> inv_freq_;
  std::vector<uint8_t> component_;  // which position component drives each frequency
};

}  // namespace qvl
