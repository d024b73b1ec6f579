#include "server/media.h"

#include <curl/curl.h>

#include <filesystem>
#include <mutex>

#include "core/base64.h"
#include "core/fs_util.h"
#include "server/api_error.h"

namespace qvl::server {

namespace {

bool starts_with(std::string_view text, std::string_view prefix) { return text.rfind(prefix, 0) == 0; }

[[noreturn]] void refuse(int status, std::string_view url, const std::string& reason) {
  throw ApiError(status, "image '" + describe_url(url) + "': " + reason, "messages");
}

Image decode_or_refuse(std::string_view url, const std::string& bytes, const ImageLimits& limits) {
  try {
    return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), limits);
  } catch (const Error& e) {
    refuse(400, url, e.what());
  }
}

// libcurl: one global init for the process; each fetch has its own easy handle.
void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Download {
  std::string bytes;
  size_t limit = 0;
  bool too_big = false;
};

size_t on_data(char* data, size_t size, size_t count, void* user) {
  auto& d = *static_cast<Download*>(user);
  const size_t n = size * count;
  if (d.bytes.size() + n > d.limit) {
    d.too_big = true;
    return 0;  // aborts the transfer
  }
  d.bytes.append(data, n);
  return n;
}

std::string fetch_remote(const std::string& url, const MediaOptions& options, size_t max_bytes) {
  init_curl_once();
  CURL* curl = curl_easy_init();
  if (!curl) refuse(500, url, "cannot start a download");
  Download d;
  d.limit = max_bytes;
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 3L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, options.remote_timeout_ms);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, options.remote_timeout_ms);
  curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(max_bytes));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &d);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "qvl-serve");
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_cleanup(curl);
  if (d.too_big || rc == CURLE_FILESIZE_EXCEEDED)
    refuse(400, url, "the download exceeds the limit of " + std::to_string(max_bytes) + " bytes");
  if (rc != CURLE_OK)
    refuse(400, url, std::string("cannot fetch it: ") + (error[0] ? error : curl_easy_strerror(rc)));
  return std::move(d.bytes);
}

Image load_local(const std::string& url, const MediaOptions& options) {
  if (options.media_root.empty())
    refuse(400, url, "file:// URLs are refused: the server was started without --media-path");
  std::string path = url.substr(7);
  if (starts_with(path, "localhost/")) path = path.substr(9);
  std::filesystem::path p(path);
  if (p.is_relative()) p = std::filesystem::path(options.media_root) / p;
  try {
    const std::filesystem::path resolved = confine_to_root(p, options.media_root);
    ImageLimits limits = options.limits;
    limits.max_file_bytes = std::min(limits.max_file_bytes, options.max_image_bytes);
    return load_image_file(resolved.string(), limits);
  } catch (const Error& e) {
    refuse(400, url, e.what());
  }
}

}  // namespace

std::string describe_url(std::string_view url) {
  constexpr size_t kShown = 64;
  if (url.size() <= kShown) return std::string(url);
  return std::string(url.substr(0, kShown)) + "... (" + std::to_string(url.size()) + " characters)";
}

std::string decode_data_url(std::string_view url, size_t max_bytes) {
  const size_t comma = url.find(',');
  if (!starts_with(url, "data:") || comma == std::string_view::npos)
    refuse(400, url, "a data URL must look like data:image/png;base64,DATA");
  const std::string_view header = url.substr(5, comma - 5);
  if (header.size() < 7 || header.substr(header.size() - 7) != ";base64")
    refuse(400, url, "image data URLs must be base64 encoded (data:image/png;base64,...)");
  const std::string_view data = url.substr(comma + 1);
  if (data.empty()) refuse(400, url, "the data URL holds no data");
  if (base64_decoded_size_bound(data.size()) > max_bytes + 3)
    refuse(413, url, "the data URL decodes to about " + std::to_string(data.size() / 4 * 3) +
                         " bytes, above the limit of " + std::to_string(max_bytes) + " bytes per image");
  try {
    return decode_base64(data);
  } catch (const Error& e) {
    refuse(400, url, e.what());
  }
}

Image load_request_image(const std::string& url, const MediaOptions& options) {
  if (starts_with(url, "data:")) return decode_or_refuse(url, decode_data_url(url, options.max_image_bytes), options.limits);
  if (starts_with(url, "file://")) return load_local(url, options);
  if (starts_with(url, "http://") || starts_with(url, "https://")) {
    if (!options.allow_remote) refuse(400, url, "remote images are switched off on this server (--no-remote-media)");
    return decode_or_refuse(url, fetch_remote(url, options, options.max_image_bytes), options.limits);
  }
  refuse(400, url, "image_url must be a data: URL (base64), a file:// URL or an http(s):// URL");
}

std::string fetch_video_as_data_url(const std::string& url, const MediaOptions& options, size_t max_bytes) {
  if (!options.allow_remote) refuse(400, url, "remote videos are switched off on this server (--no-remote-media)");
  return "data:video/unknown;base64," + encode_base64(fetch_remote(url, options, max_bytes));
}

}  // namespace qvl::server
