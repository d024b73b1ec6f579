// libFuzzer target: the server's request parser (chat-completions and completions JSON → the
// internal request) and the data URLs of image parts (base64 decoding under a byte limit, then
// the image decoder with small limits). Only ApiError (a 4xx/5xx answer) and qvl::Error may leave
// the parser; everything it accepts must be consistent.
#include <cstddef>
#include <cstdint>
#include <string>

#include "qvl/image.hpp"
#include "server/api_error.h"
#include "server/chat_request.h"
#include "server/media.h"

namespace {

constexpr size_t kMaxImageBytes = size_t(1) << 20;

void check_data_urls(const qvl::server::ChatRequest& request) {
  qvl::ImageLimits limits;
  limits.max_pixels = int64_t(1) << 20;
  limits.max_side = 4096;
  for (const auto& url : request.image_urls) {
    if (url.rfind("data:", 0) != 0) continue;
    try {
      const std::string bytes = qvl::server::decode_data_url(url, kMaxImageBytes);
      if (bytes.size() > kMaxImageBytes) __builtin_trap();  // the limit was not enforced
      qvl::decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), limits);
    } catch (const qvl::server::ApiError& e) {
      if (e.status() < 400 || e.status() > 599) __builtin_trap();
    } catch (const qvl::Error&) {
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  try {
    const qvl::server::ChatRequest request = qvl::server::parse_chat_request(body);
    if (!request.messages.is_array() || request.messages.empty()) __builtin_trap();
    if (request.sampling.top_logprobs > 20 || request.sampling.top_logprobs < -1) __builtin_trap();
    if (request.min_pixels && request.max_pixels && *request.min_pixels > *request.max_pixels) __builtin_trap();
    (void)request.messages.dump();  // what the processor receives must serialize
    check_data_urls(request);
  } catch (const qvl::server::ApiError& e) {
    if (e.status() != 400) __builtin_trap();
  }
  try {
    qvl::server::parse_completion_request(body);
  } catch (const qvl::server::ApiError& e) {
    if (e.status() != 400) __builtin_trap();
  }
  return 0;
}
