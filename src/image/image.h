// The decoded-image type used inside qvl. It is the public qvl::Image (include/qvl/image.hpp):
// width x height pixels, 8-bit RGB, row-major HWC with no row padding (rgb.size() == w*h*3).
#pragma once

#include <cstddef>
#include <cstdint>

#include "qvl/image.hpp"

namespace qvl {

// Bytes of an RGB8 image of the given size (no overflow for sizes that passed ImageLimits).
inline size_t rgb_bytes(int64_t width, int64_t height) {
  return static_cast<size_t>(width) * static_cast<size_t>(height) * 3;
}

}  // namespace qvl
