#include "model/text/text_rotary.h"

#include <cmath>

namespace qvl {

TextRotary::TextRotary(const TextConfig& c) : half_(c.head_dim / 2) {
  inv_freq_.resize(static_cast<size_t>(half_));
  component_.assign(static_cast<size_t>(half_), 0);
  for (int64_t i = 0; i < half_; ++i) {
    // Computed like the reference: 1 / theta^(2i/d) in float32 (torch.arange(...).float()/dim).
    float exponent = static_cast<float>(2 * i) / static_cast<float>(c.head_dim);
    inv_freq_[static_cast<size_t>(i)] = 1.0f / std::pow(static_cast<float>(c.rope_theta), exponent);
  }
  if (c.mrope_section.empty()) return;  // plain RoPE: every frequency uses component 0
  const int sec_h = c.mrope_section[1], sec_w = c.mrope_section[2];
  if (c.mrope_interleaved) {
    // Frequencies cycle T, H, W, T, H, W, ... while each section lasts; the rest stay T.
    for (int64_t i = 0; i < half_; ++i) {
      if (i % 3 == 1 && i < 3 * sec_h) component_[static_cast<size_t>(i)] = 1;
      else if (i % 3 == 2 && i < 3 * sec_w) component_[static_cast<size_t>(i)] = 2;
    }
  } else {
    // Qwen2-VL layout: contiguous chunks [T...][H...][W...].
    const int sec_t = c.mrope_section[0];
    for (int64_t i = 0; i < half_; ++i)
      component_[static_cast<size_t>(i)] = i < sec_t ? 0 : (i < sec_t + sec_h ? 1 : 2);
  }
}

void TextRotary::angles(const Position3& pos, float* cos, float* sin) const {
  for (int64_t i = 0; i < half_; ++i) {
    // The reference multiplies float32 positions by float32 inverse frequencies.
    const float angle = static_cast<float>(pos[component_[static_cast<size_t>(i)]]) *
                        static_cast<float>(inv_freq_[static_cast<size_t>(i)]);
    cos[i] = std::cos(angle);
    sin[i] = std::sin(angle);
  }
}

}  // namespace qvl
