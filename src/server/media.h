// Images named by a request's image_url parts: base64 data URLs, file:// URLs confined to the
// media folder, and http(s):// URLs fetched with libcurl under a size and a time limit. Every
// refusal is an ApiError naming the URL (shortened) and the reason; sizes are checked before the
// bytes are decoded, and an image's pixel count is checked from its header before its pixels.
#pragma once

#include <string>
#include <string_view>

#include "qvl/image.hpp"

namespace qvl::server {

struct MediaOptions {
  std::string media_root;        // canonical folder for file:// URLs; empty: file:// refused
  bool allow_remote = true;      // http(s):// URLs
  size_t max_image_bytes = size_t(20) << 20;  // encoded image bytes, per image
  long remote_timeout_ms = 10000;
  ImageLimits limits;            // decoded size limits
};

// The image a URL names, decoded.
Image load_request_image(const std::string& url, const MediaOptions& options);

// A video named by an http(s):// URL, downloaded (at most max_bytes, within the remote timeout)
// and returned as a base64 data URL the processor decodes from memory. ApiError 400 when remote
// media are switched off, the download fails or exceeds max_bytes.
std::string fetch_video_as_data_url(const std::string& url, const MediaOptions& options, size_t max_bytes);

// The bytes of a `data:[mime][;base64],DATA` URL; ApiError 400 when malformed or not base64,
// 413 when it would decode to more than max_bytes. Exposed for the fuzzer and the tests.
std::string decode_data_url(std::string_view url, size_t max_bytes);

// The URL shortened for messages (data URLs are long).
std::string describe_url(std::string_view url);

}  // namespace qvl::server
