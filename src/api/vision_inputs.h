// The generator's and engine's view of a prompt's visual inputs: one grid per run of pad tokens
// in prompt order, with the pixel rows in that order. An image is one run (its grid as is); a
// video is one run per temporal group, each encoded like a t = 1 image of the video's h x w: the
// reference's attention within a group, its per-group rotary and position embeddings and its
// MRoPE positions per group are exactly those of separate images, so the tower and the
// positions need no video path of their own.
#pragma once

#include "model/mrope_positions.h"
#include "qvl/qvl.hpp"

namespace qvl {

// True for <|image_pad|> and <|video_pad|>.
inline bool is_vision_pad(int32_t id, const VisionTokenIds& v) { return id == v.image_pad || id == v.video_pad; }

// `inputs` with its videos folded into image_grid_thw / pixel_values in prompt order (no videos
// left). Returns `inputs` unchanged (a copy) when it has no videos. Throws kInvalidArgument when
// the pad runs do not match the grids. With copy_pixels false and no images, pixel_values stays
// empty (pixel_rows is set): the rows are then inputs.pixel_values_videos, in the same order, and
// a second copy of a long video's pixels is saved.
ProcessedInputs fold_videos(const ProcessedInputs& inputs, const VisionTokenIds& ids, int64_t merge,
                            bool copy_pixels = true);

}  // namespace qvl
