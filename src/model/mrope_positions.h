// 3-D MRoPE position ids of a prompt, as the reference's get_rope_index computes them:
// text tokens advance all three components together; the tokens of an image grid share the
// temporal start and spread over (row, col) of the merged grid; the text after an image
// resumes at 1 + the largest position used so far.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "model/text/text_rotary.h"

namespace qvl {

struct VisionTokenIds {
  int32_t image_pad = -1;
  int32_t video_pad = -1;
};

struct MropePositions {
  std::vector<Position3> positions;  // one per token
  int64_t next_position = 0;         // where the next token (text or generated) starts
};

// ids: tokens to position; grids: (t, h, w) in patches for each run of image/video pad tokens,
// in order of appearance; merge: spatial merge size; start: the sequence's next position so far
// (0 for a fresh sequence). Throws if the pad runs do not match the grids.
MropePositions compute_mrope_positions(const std::vector<int32_t>& ids,
                                       const std::vector<std::array<int64_t, 3>>& grids,
                                       const VisionTokenIds& vision_ids, int64_t merge, int64_t start);

}  // namespace qvl
