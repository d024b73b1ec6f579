// libFuzzer target: smart_resize on arbitrary sizes and configurations, Pillow-exact bicubic
// resize_bicubic on small arbitrary images and targets, and preprocess_image with arbitrary
// (validated) preprocessor configurations. Work per run is bounded: images and targets that would
// exceed a few hundred thousand pixels are skipped, not the arithmetic of smart_resize.
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "image/image.h"
#include "image/preprocess.h"
#include "image/resize.h"
#include "qvl/error.hpp"

namespace {

constexpr int64_t kMaxWorkPixels = 1 << 16;

int64_t pick_size(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0: return in.ConsumeIntegralInRange<int64_t>(-2, 64);
    case 1: return in.ConsumeIntegralInRange<int64_t>(1, 4096);
    case 2: return in.ConsumeIntegralInRange<int64_t>(1, int64_t(1) << 31);
    default: return in.ConsumeIntegral<int64_t>();
  }
}

qvl::Image make_image(FuzzedDataProvider& in, int w, int h) {
  qvl::Image img;
  img.width = w;
  img.height = h;
  img.rgb = in.ConsumeBytes<uint8_t>(qvl::rgb_bytes(w, h));
  img.rgb.resize(qvl::rgb_bytes(w, h), in.ConsumeIntegral<uint8_t>());
  return img;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const int mode = in.ConsumeIntegralInRange<int>(0, 2);

  if (mode == 0) {  // smart_resize arithmetic on anything
    const int64_t h = pick_size(in), w = pick_size(in), factor = pick_size(in);
    const int64_t min_pixels = pick_size(in), max_pixels = pick_size(in);
    try {
      const qvl::ResizeResult r = qvl::smart_resize(h, w, factor, min_pixels, max_pixels);
      if (r.height <= 0 || r.width <= 0 || r.height % factor != 0 || r.width % factor != 0) __builtin_trap();
    } catch (const qvl::Error& e) {
      if (e.kind() != qvl::ErrorKind::kInvalidArgument && e.kind() != qvl::ErrorKind::kLimitExceeded)
        __builtin_trap();
    }
    return 0;
  }

  if (mode == 1) {  // bicubic resize of a small image to a small target (also 0/negative targets)
    const int w = in.ConsumeIntegralInRange<int>(1, 300), h = in.ConsumeIntegralInRange<int>(1, 300);
    const int nw = in.ConsumeIntegralInRange<int>(-1, 300), nh = in.ConsumeIntegralInRange<int>(-1, 300);
    if (int64_t(w) * h > kMaxWorkPixels || int64_t(nw) * nh > kMaxWorkPixels) return 0;
    const qvl::Image img = make_image(in, w, h);
    try {
      const qvl::Image out = qvl::resize_bicubic(img, nw, nh);
      if (out.width != nw || out.height != nh || out.rgb.size() != qvl::rgb_bytes(nw, nh)) __builtin_trap();
    } catch (const qvl::Error& e) {
      if (e.kind() != qvl::ErrorKind::kInvalidArgument || (nw > 0 && nh > 0)) __builtin_trap();
    }
    return 0;
  }

  // preprocess_image with an arbitrary configuration (validated like preprocessor_config.json).
  qvl::PreprocessorConfig cfg;
  cfg.patch_size = in.ConsumeIntegralInRange<int64_t>(-1, 40);
  cfg.temporal_patch_size = in.ConsumeIntegralInRange<int64_t>(-1, 4);
  cfg.merge_size = in.ConsumeIntegralInRange<int64_t>(-1, 5);
  cfg.min_pixels = in.ConsumeIntegralInRange<int64_t>(-1, kMaxWorkPixels);
  cfg.max_pixels = in.ConsumeIntegralInRange<int64_t>(-1, kMaxWorkPixels);
  for (int c = 0; c < 3; ++c) {
    cfg.image_mean[c] = in.ConsumeFloatingPoint<float>();
    cfg.image_std[c] = in.ConsumeFloatingPoint<float>();
  }
  cfg.rescale_factor = in.ConsumeBool() ? 1.0 / 255 : in.ConsumeFloatingPoint<double>();
  const int w = in.ConsumeIntegralInRange<int>(1, 600), h = in.ConsumeIntegralInRange<int>(1, 600);
  if (int64_t(w) * h > kMaxWorkPixels) return 0;
  // The resized image is at least factor^2 pixels and at most about max(max_pixels, factor^2).
  const int64_t factor = cfg.patch_size * cfg.merge_size;
  if (factor > 0 && factor * factor > kMaxWorkPixels) return 0;
  const qvl::Image img = make_image(in, w, h);
  try {
    const qvl::PixelValues pv = qvl::preprocess_image(img, cfg);
    if (pv.rows != pv.grid_t * pv.grid_h * pv.grid_w || pv.cols != 3 * cfg.temporal_patch_size * cfg.patch_size * cfg.patch_size ||
        pv.data.size() != size_t(pv.rows * pv.cols))
      __builtin_trap();
  } catch (const qvl::Error& e) {
    if (e.kind() != qvl::ErrorKind::kInvalidArgument && e.kind() != qvl::ErrorKind::kInvalidFile &&
        e.kind() != qvl::ErrorKind::kLimitExceeded)
      __builtin_trap();
  }
  return 0;
}
