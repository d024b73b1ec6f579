#include "model/mrope_positions.h"

#include <algorithm>

#include "core/check.h"

namespace qvl {

MropePositions compute_mrope_positions(const std::vector<int32_t>& ids,
                                       const std::vector<std::array<int64_t, 3>>& grids,
                                       const VisionTokenIds& vision_ids, int64_t merge, int64_t start) {
  MropePositions out;
  out.positions.reserve(ids.size());
  int64_t next = start;
  size_t grid_index = 0;
  const int64_t n = static_cast<int64_t>(ids.size());
  auto is_pad = [&](int32_t id) { return id == vision_ids.image_pad || id == vision_ids.video_pad; };
  for (int64_t i = 0; i < n;) {
    if (!is_pad(ids[static_cast<size_t>(i)])) {
      out.positions.push_back({next, next, next});
      ++next;
      ++i;
      continue;
    }
    if (grid_index >= grids.size())
      fail(ErrorKind::kInvalidArgument, "the prompt has more image/video placeholders than images (",
           grids.size(), ")");
    const auto [t, h, w] = grids[grid_index++];
    const int64_t gh = h / merge, gw = w / merge, count = t * gh * gw;
    if (i + count > n)
      fail(ErrorKind::kInvalidArgument, "image ", grid_index, " needs ", count, " placeholder tokens but only ",
           n - i, " remain in the prompt");
    for (int64_t k = 0; k < count; ++k) {
      if (!is_pad(ids[static_cast<size_t>(i + k)]))
        fail(ErrorKind::kInvalidArgument, "image ", grid_index, " needs ", count,
             " consecutive placeholder tokens, found ", k);
      const int64_t ti = k / (gh * gw), row = (k / gw) % gh, col = k % gw;
      out.positions.push_back({next + ti, next + row, next + col});
    }
    next += std::max({t, gh, gw});
    i += count;
  }
  if (grid_index != grids.size())
    fail(ErrorKind::kInvalidArgument, grids.size(), " image(s) given but the prompt has placeholders for ",
         grid_index);
  out.next_position = next;
  return out;
}

}  // namespace qvl
