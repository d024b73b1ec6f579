// Learned position embeddings resampled to each image grid. The table holds side x side
// entries; for a grid (t, h, w) the sample points are linspace(0, side-1, h) x
// linspace(0, side-1, w), each a 4-tap bilinear blend (floor/ceil indices, ceil clipped to the
// table; weights from the fractional parts), computed in fp32 in the same order as HF's
// fast_pos_embed_interpolate. Every frame gets the same embedding; rows follow the processor's
// merge-block order.
#include <cmath>
#include <vector>

#include "core/check.h"
#include "kernels/kernels.h"
#include "model/vision/vision_internal.h"

namespace qvl::vision {

int64_t pos_grid_side(int64_t n) {
  if (n <= 0) return 0;
  int64_t s = static_cast<int64_t>(std::sqrt(static_cast<double>(n)));
  while (s * s > n) --s;
  while ((s + 1) * (s + 1) <= n) ++s;
  return s;
}

namespace {

// torch.linspace(0, end, steps) in float32 (the CPU kernel's scalar formula: the first half
// counts up from the start, the second half down from the end).
std::vector<float> linspace_f32(float end, int64_t steps) {
  std::vector<float> v(static_cast<size_t>(steps));
  if (steps == 1) {
    v[0] = 0.0f;
    return v;
  }
  const float step = end / static_cast<float>(steps - 1);
  const int64_t halfway = steps / 2;
  for (int64_t i = 0; i < steps; ++i)
    v[static_cast<size_t>(i)] =
        i < halfway ? step * static_cast<float>(i) : end - step * static_cast<float>(steps - i - 1);
  return v;
}

struct Axis {
  std::vector<int64_t> lo, hi;  // floor and clipped ceil indices
  std::vector<float> frac;      // sample - floor
};

Axis make_axis(int64_t side, int64_t n) {
  Axis a;
  const std::vector<float> pts = linspace_f32(static_cast<float>(side - 1), n);
  for (float p : pts) {
    const int64_t f = static_cast<int64_t>(p);  // truncation == floor (p >= 0)
    a.lo.push_back(f);
    a.hi.push_back(std::min(f + 1, side - 1));
    a.frac.push_back(p - static_cast<float>(f));
  }
  return a;
}

}  // namespace

void add_interpolated_pos_embed(const kernels::WeightMatrix& table, const std::vector<GridTHW>& grids, int64_t merge,
                                float* x, ThreadPool* pool) {
  const int64_t side = pos_grid_side(table.rows), d = table.cols;
  QVL_ASSERT(side * side == table.rows && side > 0);
  int64_t offset = 0;
  for (const GridTHW& g : grids) {
    const Axis rows = make_axis(side, g.h), cols = make_axis(side, g.w);
    const int64_t hw = g.h * g.w, blocks_w = g.w / merge;
    const int64_t unit = merge * merge;
    parallel_rows(
        pool, hw,
        [&](int64_t p0, int64_t p1) {
          std::vector<float> buf(static_cast<size_t>(5 * d));
          float* e[4] = {buf.data(), buf.data() + d, buf.data() + 2 * d, buf.data() + 3 * d};
          float* pos = buf.data() + 4 * d;
          for (int64_t p = p0; p < p1; ++p) {
            // p indexes the merge-block order: block (br, bc), then (ir, ic) inside it.
            const int64_t block = p / unit, in = p % unit;
            const int64_t r = (block / blocks_w) * merge + in / merge;
            const int64_t c = (block % blocks_w) * merge + in % merge;
            const float dh = rows.frac[static_cast<size_t>(r)], dw = cols.frac[static_cast<size_t>(c)];
            const int64_t rl = rows.lo[static_cast<size_t>(r)] * side, rh = rows.hi[static_cast<size_t>(r)] * side;
            const int64_t cl = cols.lo[static_cast<size_t>(c)], ch = cols.hi[static_cast<size_t>(c)];
            const float wt[4] = {(1.0f - dh) * (1.0f - dw), (1.0f - dh) * dw, dh * (1.0f - dw), dh * dw};
            kernels::gather_row(table, rl + cl, e[0]);
            kernels::gather_row(table, rl + ch, e[1]);
            kernels::gather_row(table, rh + cl, e[2]);
            kernels::gather_row(table, rh + ch, e[3]);
            for (int64_t i = 0; i < d; ++i) {
              float s = e[0][i] * wt[0];
              s = s + e[1][i] * wt[1];
              s = s + e[2][i] * wt[2];
              s = s + e[3][i] * wt[3];
              pos[i] = s;
            }
            for (int64_t f = 0; f < g.t; ++f) kernels::add(x + (offset + f * hw + p) * d, pos, d);
          }
        },
        16);
    offset += g.t * hw;
  }
}

}  // namespace qvl::vision
