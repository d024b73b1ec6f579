// Bicubic resize that reproduces Pillow's Image.resize(size, Image.BICUBIC) on 8-bit RGB exactly.
//
// Pillow's algorithm (libImaging/Resample.c), restated:
//   * separable: a horizontal pass (only if the width changes) over just the source rows the
//     vertical pass will read, rounded and clipped to uint8, then a vertical pass (only if the
//     height changes), again rounded and clipped to uint8;
//   * per output index i along an axis of in -> out samples: scale = in/out,
//     filterscale = max(scale, 1) (antialiasing when shrinking), support = 2 * filterscale,
//     center = (i + 0.5) * scale, taps from int(center - support + 0.5) (clamped to 0) up to
//     int(center + support + 0.5) (clamped to in), weights cubic((j - center + 0.5) / filterscale)
//     with the a = -0.5 Keys kernel, normalized to sum 1;
//   * weights become fixed point with 22 fraction bits (rounded half away from zero); a sample is
//     (1 << 21) + sum(w_j * p_j) shifted right by 22 and clipped to [0, 255].
#pragma once

#include "image/image.h"

namespace qvl {

// Throws kInvalidArgument for a non-positive target size or an empty source.
Image resize_bicubic(const Image& src, int new_width, int new_height);

}  // namespace qvl
