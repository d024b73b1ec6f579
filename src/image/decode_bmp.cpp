// BMP: a small parser of our own. Supports uncompressed 1/4/8-bit palette, 16-bit (5-5-5 or
// BITFIELDS 5-6-5 / 5-5-5), 24-bit and 32-bit (BI_RGB or byte-aligned BITFIELDS) images, bottom-up
// or top-down, with BITMAPCOREHEADER (12 bytes) or BITMAPINFOHEADER and its later versions
// (40/52/56/64/108/124 bytes). RLE and embedded JPEG/PNG are reported as unsupported. Every offset
// and length read from the file is checked against the data size before it is used.
#include <bit>
#include <cstring>

#include "core/check.h"
#include "image/decode.h"

namespace qvl::image_detail {

namespace {

uint32_t le16(const uint8_t* p) { return uint32_t(p[0]) | (uint32_t(p[1]) << 8); }
uint32_t le32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

struct Channel {
  uint32_t mask = 0;
  int shift = 0;
  uint32_t max = 0;  // (1 << bits) - 1
};

// A channel mask must be 1..8 contiguous bits inside the pixel.
bool make_channel(uint32_t mask, int bpp, Channel* ch) {
  if (mask == 0) return false;
  if (bpp < 32 && (mask >> bpp) != 0) return false;
  const int shift = std::countr_zero(mask);
  const uint32_t bits = mask >> shift;
  if ((bits & (bits + 1)) != 0) return false;  // not contiguous
  const int n = std::popcount(bits);
  if (n > 8) return false;
  ch->mask = mask;
  ch->shift = shift;
  ch->max = bits;
  return true;
}

// Scales a channel value to 8 bits like Pillow's BGR;15 / BGR;16 unpackers (v * 255 / max).
inline uint8_t channel_value(uint32_t pixel, const Channel& ch) {
  uint32_t v = (pixel & ch.mask) >> ch.shift;
  return ch.max == 255 ? uint8_t(v) : uint8_t(v * 255 / ch.max);
}

}  // namespace

Image decode_bmp(const uint8_t* data, size_t size, const ImageLimits& limits) {
  if (size < 14 + 4) fail(ErrorKind::kInvalidFile, "corrupt BMP: truncated header (", size, " bytes)");
  const uint32_t pixel_offset_field = le32(data + 10);
  const uint32_t header_size = le32(data + 14);
  const bool core = header_size == 12;
  if (!core && header_size != 40 && header_size != 52 && header_size != 56 && header_size != 64 &&
      header_size != 108 && header_size != 124)
    fail(ErrorKind::kUnsupported, "BMP info header of ", header_size, " bytes is not supported");
  if (size < 14 + uint64_t(header_size))
    fail(ErrorKind::kInvalidFile, "corrupt BMP: truncated info header (", header_size,
         " bytes declared, ", size - 14, " present)");
  const uint8_t* h = data + 14;

  int64_t width = 0, height = 0;
  uint32_t bpp = 0, compression = 0, colors_used = 0;
  bool top_down = false;
  if (core) {
    width = le16(h + 4);
    height = le16(h + 6);
    bpp = le16(h + 10);
  } else {
    width = int32_t(le32(h + 4));
    const int32_t hh = int32_t(le32(h + 8));
    top_down = hh < 0;
    height = top_down ? -int64_t(hh) : int64_t(hh);
    bpp = le16(h + 14);
    compression = le32(h + 16);
    colors_used = le32(h + 32);
  }
  check_image_size(width, height, limits, "BMP");

  enum : uint32_t { kRgb = 0, kRle8 = 1, kRle4 = 2, kBitfields = 3, kJpeg = 4, kPng = 5 };
  if (compression == kRle8 || compression == kRle4)
    fail(ErrorKind::kUnsupported, "RLE-compressed BMP is not supported");
  if (compression != kRgb && compression != kBitfields)
    fail(ErrorKind::kUnsupported, "BMP compression ", compression, " is not supported");
  if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32)
    fail(ErrorKind::kUnsupported, "BMP with ", bpp, " bits per pixel is not supported");
  if (compression == kBitfields && bpp <= 8)
    fail(ErrorKind::kInvalidFile, "corrupt BMP: BITFIELDS compression with ", bpp, " bits per pixel");

  // Where the palette / bitfield masks start.
  uint64_t table_offset = 14 + uint64_t(header_size);
  Channel r, g, b;
  if (bpp >= 16) {
    uint32_t rm = 0, gm = 0, bm = 0;
    if (compression == kBitfields) {
      const uint8_t* m = nullptr;
      if (header_size >= 52) {
        m = h + 40;
      } else {  // 40-byte header: the three masks follow it
        if (table_offset + 12 > size) fail(ErrorKind::kInvalidFile, "corrupt BMP: truncated bitfield masks");
        m = data + table_offset;
        table_offset += 12;
      }
      rm = le32(m), gm = le32(m + 4), bm = le32(m + 8);
      if (rm == 0 && gm == 0 && bm == 0 && bpp == 32) rm = 0xFF0000, gm = 0xFF00, bm = 0xFF;
    } else if (bpp == 16) {
      rm = 0x7C00, gm = 0x3E0, bm = 0x1F;
    } else {
      rm = 0xFF0000, gm = 0xFF00, bm = 0xFF;
    }
    if (!make_channel(rm, int(bpp), &r) || !make_channel(gm, int(bpp), &g) || !make_channel(bm, int(bpp), &b))
      fail(ErrorKind::kUnsupported, "BMP bitfield masks 0x", std::hex, rm, ", 0x", gm, ", 0x", bm,
           " are not supported");
  }

  uint8_t palette[768];
  if (bpp <= 8) {
    const uint64_t colors = colors_used ? colors_used : (uint64_t(1) << bpp);
    if (colors > 65536) fail(ErrorKind::kInvalidFile, "corrupt BMP: palette of ", colors, " colours");
    const int entry = core ? 3 : 4;
    const int n = int(colors < 256 ? colors : 256);
    if (table_offset + uint64_t(n) * entry > size)
      fail(ErrorKind::kInvalidFile, "corrupt BMP: palette of ", n, " entries at offset ", table_offset,
           " runs past the end of the data (", size, " bytes)");
    uint8_t rgb[768];
    for (int i = 0; i < n; ++i) {
      const uint8_t* e = data + table_offset + uint64_t(i) * entry;
      rgb[3 * i] = e[2];
      rgb[3 * i + 1] = e[1];
      rgb[3 * i + 2] = e[0];
    }
    fill_palette(palette, rgb, n);
    table_offset += colors * entry;
  }

  const uint64_t pixel_offset = pixel_offset_field ? pixel_offset_field : table_offset;
  const uint64_t stride = ((uint64_t(width) * bpp + 31) / 32) * 4;
  const uint64_t needed = stride * uint64_t(height);
  if (pixel_offset < 14 + uint64_t(header_size) || pixel_offset > size)
    fail(ErrorKind::kInvalidFile, "corrupt BMP: pixel data offset ", pixel_offset,
         " lies outside the file (", size, " bytes, headers end at ", 14 + uint64_t(header_size), ")");
  if (needed > size - pixel_offset)
    fail(ErrorKind::kInvalidFile, "corrupt BMP: truncated pixel data (", width, "x", height, " at ",
         bpp, " bits needs ", needed, " bytes from offset ", pixel_offset, ", the file has ",
         size - pixel_offset, ")");

  Image img = make_image(width, height);
  const size_t w = size_t(width);
  const int bytes_pp = int(bpp / 8);
  for (int64_t row = 0; row < height; ++row) {
    const uint8_t* src = data + pixel_offset + uint64_t(row) * stride;
    const int64_t y = top_down ? row : height - 1 - row;
    uint8_t* dst = img.rgb.data() + size_t(y) * w * 3;
    if (bpp <= 8) {
      const int per_byte = 8 / int(bpp);
      const uint32_t mask = (1u << bpp) - 1;
      for (size_t x = 0; x < w; ++x) {
        const uint8_t byte = src[x / per_byte];
        const int shift = 8 - int(bpp) * int(x % per_byte + 1);
        const uint8_t* p = palette + 3 * ((byte >> shift) & mask);
        dst[3 * x] = p[0];
        dst[3 * x + 1] = p[1];
        dst[3 * x + 2] = p[2];
      }
    } else {
      for (size_t x = 0; x < w; ++x) {
        const uint8_t* p = src + x * bytes_pp;
        uint32_t pixel = 0;
        for (int k = 0; k < bytes_pp; ++k) pixel |= uint32_t(p[k]) << (8 * k);
        dst[3 * x] = channel_value(pixel, r);
        dst[3 * x + 1] = channel_value(pixel, g);
        dst[3 * x + 2] = channel_value(pixel, b);
      }
    }
  }
  return img;
}

}  // namespace qvl::image_detail
