// Image decoding: the format is sniffed from magic bytes and each format has its own decoder.
//
// Every decoder produces what Pillow's `Image.open(f).convert("RGB")` produces, because that is what
// the Hugging Face Qwen2-VL/Qwen3-VL processor (and the golden data) sees:
//   * alpha is dropped, not composited (Pillow's RGBA->RGB convert; note that qwen-vl-utils instead
//     composites RGBA images on white before the processor: callers wanting that must do it first);
//   * palette images map each index through the palette; indices past the palette's end map to the
//     grey ramp (i, i, i) like Pillow's palette, and tRNS / GIF transparency is ignored;
//   * 16-bit RGB(A) and grey+alpha keep the high byte; 16-bit grey without alpha is *clipped* to
//     min(v, 255), exactly like Pillow's I;16/I -> RGB conversion (a surprising but faithful choice);
//   * 1/2/4-bit grey is scaled to 0..255 (x255, x85, x17);
//   * CMYK/YCCK JPEGs are taken as Adobe-inverted (Pillow always assumes "CMYK;I") and converted with
//     Pillow's cmyk2rgb: r = k' - k'*c'/255 (rounded MULDIV255), with c' = 255 - raw c, k' = raw k;
//   * no EXIF orientation, ICC profile or gamma is applied (Pillow's open/convert applies none).
// Declared sizes are checked against ImageLimits before any pixel buffer is allocated.
#pragma once

#include <cstddef>
#include <cstdint>

#include "image/image.h"

namespace qvl::image_detail {

enum class ImageFormat { kUnknown, kJpeg, kPng, kWebp, kBmp, kGif };

ImageFormat sniff_format(const uint8_t* data, size_t size);
const char* format_name(ImageFormat format);

// Throws kInvalidFile for a zero or negative side and kLimitExceeded above the limits; the message
// names the format, the declared size and the limit.
void check_image_size(int64_t width, int64_t height, const ImageLimits& limits, const char* format);

// One decoder per format. Each expects data already sniffed as its format.
Image decode_png(const uint8_t* data, size_t size, const ImageLimits& limits);
Image decode_jpeg(const uint8_t* data, size_t size, const ImageLimits& limits);
Image decode_webp(const uint8_t* data, size_t size, const ImageLimits& limits);
Image decode_bmp(const uint8_t* data, size_t size, const ImageLimits& limits);
Image decode_gif(const uint8_t* data, size_t size, const ImageLimits& limits);

// An image of the given (already checked) size with zeroed pixels.
Image make_image(int64_t width, int64_t height);

// Fills out[3*i..] with palette[idx[i]] for n pixels; `palette` holds 256 RGB entries.
void expand_palette(const uint8_t* idx, size_t n, const uint8_t* palette, uint8_t* out);

// A 256-entry RGB palette: the first `count` entries from `rgb` (3 bytes each), then the grey
// ramp (i, i, i), which is what Pillow's palette holds past a short PLTE / colour table.
void fill_palette(uint8_t palette[768], const uint8_t* rgb, int count);

}  // namespace qvl::image_detail
