// Decoded images: JPEG, PNG, WebP, BMP and GIF (first frame) to 8-bit RGB.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace qvl {

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // HWC, 3 channels, 8-bit
};

// Checked against the declared size before any pixel buffer is allocated.
struct ImageLimits {
  int64_t max_pixels = 178956970;  // Pillow's decompression-bomb threshold
  int64_t max_side = 65500;
  size_t max_file_bytes = size_t(256) << 20;
};

// Sniffs the format from magic bytes. Throws qvl::Error naming the problem.
Image decode_image(const uint8_t* data, size_t size, const ImageLimits& limits = {});
Image load_image_file(const std::string& path, const ImageLimits& limits = {});

}  // namespace qvl
