// 2-D rotary position embedding of the vision blocks. With dim = head_dim/2, the inverse
// frequencies are 1 / theta^(2i/dim) for i < dim/2; a patch at (row, col) of its image gets
// angles [row * inv_freq, col * inv_freq] (head_dim/2 values), duplicated to head_dim and
// applied rotate_half-style to q and k (HF rot_pos_emb + apply_rotary_pos_emb_vision).
#include <cmath>

#include "core/check.h"
#include "kernels/kernels.h"
#include "model/vision/vision_internal.h"

namespace qvl::vision {

VisionRotary build_vision_rotary(const std::vector<GridTHW>& grids, int64_t merge, int64_t head_dim, double theta) {
  QVL_ASSERT(head_dim % 4 == 0);
  const int64_t dim = head_dim / 2, quarter = dim / 2;
  std::vector<float> inv_freq(static_cast<size_t>(quarter));
  for (int64_t i = 0; i < quarter; ++i)  // fp32 as in the reference
    inv_freq[static_cast<size_t>(i)] =
        1.0f / std::pow(static_cast<float>(theta), static_cast<float>(2 * i) / static_cast<float>(dim));

  int64_t total = 0;
  for (const GridTHW& g : grids) total += g.t * g.h * g.w;
  VisionRotary rot;
  rot.half = dim;
  rot.cos.resize(static_cast<size_t>(total * dim));
  rot.sin.resize(static_cast<size_t>(total * dim));
  int64_t row = 0;
  for (const GridTHW& g : grids) {
    const int64_t blocks_w = g.w / merge, unit = merge * merge, hw = g.h * g.w;
    for (int64_t f = 0; f < g.t; ++f) {
      for (int64_t p = 0; p < hw; ++p, ++row) {
        const int64_t block = p / unit, in = p % unit;
        const float r = static_cast<float>((block / blocks_w) * merge + in / merge);
        const float c = static_cast<float>((block % blocks_w) * merge + in % merge);
        float* cs = rot.cos.data() + row * dim;
        float* sn = rot.sin.data() + row * dim;
        for (int64_t i = 0; i < quarter; ++i) {
          const float ar = r * inv_freq[static_cast<size_t>(i)];
          const float ac = c * inv_freq[static_cast<size_t>(i)];
          cs[i] = std::cos(ar);
          sn[i] = std::sin(ar);
          cs[quarter + i] = std::cos(ac);
          sn[quarter + i] = std::sin(ac);
        }
      }
    }
  }
  return rot;
}

void apply_vision_rotary(const VisionRotary& rot, float* x, int64_t rows, int64_t stride, int64_t heads,
                         ThreadPool* pool) {
  QVL_ASSERT(static_cast<int64_t>(rot.cos.size()) == rows * rot.half);
  const int64_t head_dim = 2 * rot.half;
  parallel_rows(
      pool, rows,
      [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const float* cs = rot.cos.data() + r * rot.half;
          const float* sn = rot.sin.data() + r * rot.half;
          for (int64_t h = 0; h < heads; ++h)
            kernels::rope_rotate_half(x + r * stride + h * head_dim, cs, sn, rot.half);
        }
      },
      16);
}

}  // namespace qvl::vision
