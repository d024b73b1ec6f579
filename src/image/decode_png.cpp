// PNG via libpng. libpng reports errors by longjmp: all libpng calls happen in run_png(), whose
// locals are trivial, and the state it shares with the caller lives in PngState, so a longjmp never
// skips a C++ destructor. The caller owns the buffers and destroys the libpng structs.
#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "image/decode.h"

namespace qvl::image_detail {

namespace {

struct PngState {
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  png_structp png = nullptr;
  png_infop info = nullptr;
  char message[256] = {0};
  const ImageLimits* limits = nullptr;
  // Filled by run_png.
  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0;
  size_t rowbytes = 0;
  int palette_count = 0;
  uint8_t palette[768] = {0};
  std::vector<uint8_t>* pixels = nullptr;     // height * rowbytes after transforms
  std::vector<png_bytep>* rows = nullptr;
};

void png_error_cb(png_structp png, png_const_charp msg) {
  auto* st = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(st->message, sizeof st->message, "%s", msg ? msg : "unknown libpng error");
  png_longjmp(png, 1);
}

void png_warning_cb(png_structp, png_const_charp) {}

void png_read_cb(png_structp png, png_bytep out, size_t n) {
  auto* st = static_cast<PngState*>(png_get_io_ptr(png));
  if (n > st->size - st->pos) png_error(png, "truncated file (unexpected end of data)");
  std::memcpy(out, st->data + st->pos, n);
  st->pos += n;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// Returns false after a libpng error (message in st->message). May throw qvl::Error for limits.
bool run_png(PngState* st) {
  if (setjmp(png_jmpbuf(st->png))) return false;
  png_structp png = st->png;
  png_infop info = st->info;
  png_set_read_fn(png, st, png_read_cb);
  const int64_t side = std::min<int64_t>(st->limits->max_side, PNG_UINT_31_MAX);
  png_set_user_limits(png, png_uint_32(side), png_uint_32(side));
#ifdef PNG_CHECK_FOR_INVALID_INDEX_SUPPORTED
  png_set_check_for_invalid_index(png, 0);  // out-of-range indices map to the grey ramp, as in Pillow
#endif
  png_read_info(png, info);

  int interlace = 0;
  png_get_IHDR(png, info, &st->width, &st->height, &st->bit_depth, &st->color_type, &interlace,
               nullptr, nullptr);
  check_image_size(st->width, st->height, *st->limits, "PNG");

  switch (st->color_type) {
    case PNG_COLOR_TYPE_PALETTE: {
      if (st->bit_depth < 8) png_set_packing(png);
      png_colorp plte = nullptr;
      int n = 0;
      if (png_get_PLTE(png, info, &plte, &n) != 0 && plte != nullptr) {
        st->palette_count = std::min(n, 256);
        uint8_t raw[768];
        for (int i = 0; i < st->palette_count; ++i) {
          raw[3 * i] = plte[i].red;
          raw[3 * i + 1] = plte[i].green;
          raw[3 * i + 2] = plte[i].blue;
        }
        fill_palette(st->palette, raw, st->palette_count);
      } else {
        png_error(png, "palette image without a PLTE chunk");
      }
      break;
    }
    case PNG_COLOR_TYPE_GRAY:
      if (st->bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
      break;  // 16-bit grey is kept and clipped below (Pillow's I -> RGB)
    case PNG_COLOR_TYPE_GRAY_ALPHA:
    case PNG_COLOR_TYPE_RGB:
    case PNG_COLOR_TYPE_RGB_ALPHA:
      if (st->bit_depth == 16) png_set_strip_16(png);  // keeps the high byte, as Pillow's ;16B modes
      if (st->color_type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
      break;
    default:
      png_error(png, "unknown colour type");
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  st->rowbytes = png_get_rowbytes(png, info);

  st->pixels->resize(st->rowbytes * st->height);
  st->rows->resize(st->height);
  for (png_uint_32 y = 0; y < st->height; ++y) (*st->rows)[y] = st->pixels->data() + size_t(y) * st->rowbytes;
  png_read_image(png, st->rows->data());
  return true;
}

struct PngGuard {
  PngState* st;
  ~PngGuard() {
    if (st->png) png_destroy_read_struct(&st->png, st->info ? &st->info : nullptr, nullptr);
  }
};

}  // namespace

Image decode_png(const uint8_t* data, size_t size, const ImageLimits& limits) {
  // Check the size IHDR declares before libpng reads anything (IHDR must come first).
  if (size >= 8 + 8 + 13 && std::memcmp(data + 12, "IHDR", 4) == 0)
    check_image_size(be32(data + 16), be32(data + 20), limits, "PNG");

  std::vector<uint8_t> pixels;
  std::vector<png_bytep> rows;
  PngState st;
  st.data = data;
  st.size = size;
  st.limits = &limits;
  st.pixels = &pixels;
  st.rows = &rows;
  PngGuard guard{&st};
  st.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &st, png_error_cb, png_warning_cb);
  if (!st.png) fail(ErrorKind::kInternal, "cannot create a libpng reader");
  st.info = png_create_info_struct(st.png);
  if (!st.info) fail(ErrorKind::kInternal, "cannot create a libpng info struct");
  if (!run_png(&st)) fail(ErrorKind::kInvalidFile, "corrupt PNG: ", st.message);

  Image img = make_image(st.width, st.height);
  const size_t w = st.width;
  for (size_t y = 0; y < st.height; ++y) {
    const uint8_t* src = rows[y];
    uint8_t* dst = img.rgb.data() + y * w * 3;
    if (st.color_type == PNG_COLOR_TYPE_PALETTE) {
      expand_palette(src, w, st.palette, dst);
    } else if (st.color_type == PNG_COLOR_TYPE_RGB || st.color_type == PNG_COLOR_TYPE_RGB_ALPHA) {
      std::memcpy(dst, src, w * 3);
    } else if (st.color_type == PNG_COLOR_TYPE_GRAY && st.bit_depth == 16) {
      for (size_t x = 0; x < w; ++x) {
        unsigned v = (unsigned(src[2 * x]) << 8) | src[2 * x + 1];
        dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = uint8_t(std::min(v, 255u));
      }
    } else {  // grey (expanded to 8 bits) or grey+alpha with the alpha stripped
      for (size_t x = 0; x < w; ++x) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = src[x];
    }
  }
  return img;
}

}  // namespace qvl::image_detail
