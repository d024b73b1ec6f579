// WebP (lossy, lossless, with or without alpha) via libwebp's simple decoding API, straight into
// the RGB buffer; alpha is dropped. Pillow decodes still WebPs through WebPAnimDecoder in
// non-premultiplied RGBA, whose colour channels equal WebPDecodeRGB's. Animated WebP would need
// libwebpdemux (not linked): it is reported as unsupported.
#include <webp/decode.h>

#include "core/check.h"
#include "image/decode.h"

namespace qvl::image_detail {

namespace {

const char* vp8_status_name(VP8StatusCode s) {
  switch (s) {
    case VP8_STATUS_OK: return "ok";
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated file (not enough data)";
  }
  return "unknown error";
}

}  // namespace

Image decode_webp(const uint8_t* data, size_t size, const ImageLimits& limits) {
  WebPBitstreamFeatures features;
  VP8StatusCode status = WebPGetFeatures(data, size, &features);
  if (status != VP8_STATUS_OK) fail(ErrorKind::kInvalidFile, "corrupt WebP: ", vp8_status_name(status));
  if (features.has_animation)
    fail(ErrorKind::kUnsupported, "animated WebP is not supported (", features.width, "x",
         features.height, ")");
  check_image_size(features.width, features.height, limits, "WebP");

  Image img = make_image(features.width, features.height);
  const int stride = features.width * 3;
  if (WebPDecodeRGBInto(data, size, img.rgb.data(), img.rgb.size(), stride) == nullptr) {
    // The simple API does not say why; ask the advanced one for a status to report.
    WebPDecoderConfig config;
    const char* why = "decoding failed";
    if (WebPInitDecoderConfig(&config)) {
      config.output.colorspace = MODE_RGB;
      config.output.is_external_memory = 1;
      config.output.u.RGBA.rgba = img.rgb.data();
      config.output.u.RGBA.stride = stride;
      config.output.u.RGBA.size = img.rgb.size();
      VP8StatusCode s = WebPDecode(data, size, &config);
      WebPFreeDecBuffer(&config.output);
      if (s != VP8_STATUS_OK) why = vp8_status_name(s);
    }
    fail(ErrorKind::kInvalidFile, "corrupt WebP: ", why);
  }
  return img;
}

}  // namespace qvl::image_detail
