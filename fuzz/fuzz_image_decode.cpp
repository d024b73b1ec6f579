// libFuzzer target: image decoding (PNG, JPEG, WebP, GIF, BMP sniffed from the bytes) and then the
// Qwen3-VL preprocessing of whatever decoded. Limits are small so that each run stays fast; the
// decoders check the declared size against them before allocating.
#include <cstddef>
#include <cstdint>

#include "image/image.h"
#include "image/preprocess.h"
#include "qvl/error.hpp"
#include "qvl/image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qvl::ImageLimits limits;
  limits.max_pixels = int64_t(1) << 20;
  limits.max_side = 1 << 14;
  limits.max_file_bytes = size_t(1) << 20;
  qvl::Image img;
  try {
    img = qvl::decode_image(data, size, limits);
  } catch (const qvl::Error&) {
    return 0;
  }
  // A decoded image must be exactly what the public type promises.
  if (img.width <= 0 || img.height <= 0 || img.width > limits.max_side || img.height > limits.max_side ||
      int64_t(img.width) * img.height > limits.max_pixels || img.rgb.size() != qvl::rgb_bytes(img.width, img.height))
    __builtin_trap();

  qvl::PreprocessorConfig cfg;  // Qwen3-VL's patch 16 / merge 2, with a small pixel budget
  cfg.min_pixels = 32 * 32;
  cfg.max_pixels = 128 * 128;
  try {
    const qvl::PixelValues pv = qvl::preprocess_image(img, cfg);
    if (pv.rows != pv.grid_t * pv.grid_h * pv.grid_w || pv.data.size() != size_t(pv.rows * pv.cols))
      __builtin_trap();
  } catch (const qvl::Error& e) {
    // Only the aspect-ratio limit may refuse a decoded image.
    if (e.kind() != qvl::ErrorKind::kInvalidArgument) __builtin_trap();
  }
  return 0;
}
