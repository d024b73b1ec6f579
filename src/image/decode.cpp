// Format sniffing, shared checks and the public entry points decode_image / load_image_file.
#include "image/decode.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <system_error>
#include <filesystem>

#include "core/check.h"
#include "core/error_boundary.h"

namespace qvl {
namespace image_detail {

namespace {

bool starts_with(const uint8_t* data, size_t size, const char* magic, size_t n) {
  return size >= n && std::memcmp(data, magic, n) == 0;
}

// Names a few common formats qvl does not decode, so the error says what the file is.
const char* unsupported_format_name(const uint8_t* d, size_t n) {
  if (starts_with(d, n, "II*\0", 4) || starts_with(d, n, "MM\0*", 4)) return "TIFF";
  if (n >= 12 && std::memcmp(d + 4, "ftyp", 4) == 0) {
    if (std::memcmp(d + 8, "avif", 4) == 0 || std::memcmp(d + 8, "avis", 4) == 0) return "AVIF";
    if (std::memcmp(d + 8, "heic", 4) == 0 || std::memcmp(d + 8, "heix", 4) == 0 ||
        std::memcmp(d + 8, "mif1", 4) == 0)
      return "HEIF";
  }
  if (starts_with(d, n, "\0\0\x01\0", 4)) return "ICO";
  if (starts_with(d, n, "8BPS", 4)) return "PSD";
  if (starts_with(d, n, "\xff\x0a", 2) || starts_with(d, n, "\0\0\0\x0cJXL ", 8)) return "JPEG XL";
  if (starts_with(d, n, "\0\0\0\x0cjP  ", 8)) return "JPEG 2000";
  return nullptr;
}

}  // namespace

ImageFormat sniff_format(const uint8_t* d, size_t n) {
  if (starts_with(d, n, "\xff\xd8\xff", 3)) return ImageFormat::kJpeg;
  if (starts_with(d, n, "\x89PNG\r\n\x1a\n", 8)) return ImageFormat::kPng;
  if (n >= 12 && std::memcmp(d, "RIFF", 4) == 0 && std::memcmp(d + 8, "WEBP", 4) == 0)
    return ImageFormat::kWebp;
  if (starts_with(d, n, "GIF87a", 6) || starts_with(d, n, "GIF89a", 6)) return ImageFormat::kGif;
  if (starts_with(d, n, "BM", 2)) return ImageFormat::kBmp;
  return ImageFormat::kUnknown;
}

const char* format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg: return "JPEG";
    case ImageFormat::kPng: return "PNG";
    case ImageFormat::kWebp: return "WebP";
    case ImageFormat::kBmp: return "BMP";
    case ImageFormat::kGif: return "GIF";
    case ImageFormat::kUnknown: break;
  }
  return "unknown";
}

void check_image_size(int64_t width, int64_t height, const ImageLimits& limits, const char* format) {
  if (width <= 0 || height <= 0)
    fail(ErrorKind::kInvalidFile, format, " image declares an empty size (", width, "x", height, ")");
  if (width > limits.max_side || height > limits.max_side)
    fail(ErrorKind::kLimitExceeded, format, " image is ", width, "x", height,
         " pixels, above the limit of ", limits.max_side, " pixels per side");
  // width, height <= max_side; guard the product against overflow for absurd limits.
  if (width > limits.max_pixels / height)
    fail(ErrorKind::kLimitExceeded, format, " image is ", width, "x", height, " = ", width * height,
         " pixels, above the limit of ", limits.max_pixels, " pixels");
}

Image make_image(int64_t width, int64_t height) {
  Image img;
  img.width = static_cast<int>(width);
  img.height = static_cast<int>(height);
  img.rgb.assign(rgb_bytes(width, height), 0);
  return img;
}

void fill_palette(uint8_t palette[768], const uint8_t* rgb, int count) {
  if (count < 0) count = 0;
  if (count > 256) count = 256;
  if (count > 0) std::memcpy(palette, rgb, static_cast<size_t>(count) * 3);
  for (int i = count; i < 256; ++i) palette[3 * i] = palette[3 * i + 1] = palette[3 * i + 2] = uint8_t(i);
}

void expand_palette(const uint8_t* idx, size_t n, const uint8_t* palette, uint8_t* out) {
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = palette + 3 * size_t(idx[i]);
    out[3 * i] = p[0];
    out[3 * i + 1] = p[1];
    out[3 * i + 2] = p[2];
  }
}

}  // namespace image_detail

using namespace image_detail;

Image decode_image(const uint8_t* data, size_t size, const ImageLimits& limits) {
  if (data == nullptr || size == 0) fail(ErrorKind::kInvalidFile, "image data is empty (0 bytes)");
  if (size > limits.max_file_bytes)
    fail(ErrorKind::kLimitExceeded, "image data is ", size, " bytes, above the limit of ",
         limits.max_file_bytes, " bytes");
  // Decoders fail with qvl::Error; translation covers what they do not (std::bad_alloc).
  const auto decode = [&](auto decoder) { return translate_exceptions("decoding an image", [&] { return decoder(data, size, limits); }); };
  switch (sniff_format(data, size)) {
    case ImageFormat::kJpeg: return decode(decode_jpeg);
    case ImageFormat::kPng: return decode(decode_png);
    case ImageFormat::kWebp: return decode(decode_webp);
    case ImageFormat::kBmp: return decode(decode_bmp);
    case ImageFormat::kGif: return decode(decode_gif);
    case ImageFormat::kUnknown: break;
  }
  if (const char* name = unsupported_format_name(data, size))
    fail(ErrorKind::kUnsupported, "image data is ", name,
         ", which is not supported (supported: JPEG, PNG, WebP, BMP, GIF)");
  fail(ErrorKind::kUnsupported,
       "image data is not in a recognized format (no JPEG, PNG, WebP, BMP or GIF signature; ", size,
       " bytes)");
}

Image load_image_file(const std::string& path, const ImageLimits& limits) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) fail(ErrorKind::kNotFound, "cannot open image '", path, "': no such file");
  if (!fs::is_regular_file(st)) fail(ErrorKind::kIo, "image '", path, "' is not a regular file");
  uintmax_t size = fs::file_size(path, ec);
  if (ec) fail(ErrorKind::kIo, "cannot read the size of image '", path, "': ", ec.message());
  if (size > limits.max_file_bytes)
    fail(ErrorKind::kLimitExceeded, "image '", path, "' is ", size, " bytes, above the limit of ",
         limits.max_file_bytes, " bytes");
  if (size == 0) fail(ErrorKind::kInvalidFile, "image '", path, "' is empty (0 bytes)");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::kIo, "cannot open image '", path, "': ", std::strerror(errno));
  std::string bytes = translate_exceptions("reading image '" + path + "'", [&] { return std::string(static_cast<size_t>(size), '\0'); });
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (static_cast<uintmax_t>(in.gcount()) != size)
    fail(ErrorKind::kIo, "short read on image '", path, "'");
  try {
    return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), limits);
  } catch (const Error& e) {
    throw Error(e.kind(), "image '" + path + "': " + e.what());
  }
}

}  // namespace qvl
