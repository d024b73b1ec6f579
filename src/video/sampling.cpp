#include "video/sampling.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/check.h"
#include "core/json_util.h"
#include "core/mapped_file.h"

namespace qvl {

namespace {

// Python's round() / numpy's rint(): nearest, ties to even (the default FP rounding mode).
double round_half_even(double v) { return std::nearbyint(v); }

}  // namespace

VideoPreprocessorConfig parse_video_preprocessor_config(const std::string& json_text, const std::string& what) {
  VideoPreprocessorConfig c;
  c.image = parse_preprocessor_config(json_text, what);
  const Json j = parse_json(json_text, what);
  // Without a size entry the class default applies (not the image processor's).
  const bool has_size = (j.contains("size") && !j["size"].is_null()) || j.contains("min_pixels") || j.contains("max_pixels");
  if (!has_size) {
    c.image.min_pixels = 4096;
    c.image.max_pixels = 25165824;
  }
  c.fps = json_number_or(j, "fps", c.fps, what);
  c.min_frames = json_int_or(j, "min_frames", c.min_frames, what);
  c.max_frames = json_int_or(j, "max_frames", c.max_frames, what);
  if (!(c.fps > 0) || !std::isfinite(c.fps)) fail(ErrorKind::kInvalidFile, what, ": 'fps' = ", c.fps, " (must be positive)");
  if (c.min_frames < 1 || c.max_frames < c.min_frames)
    fail(ErrorKind::kInvalidFile, what, ": min_frames ", c.min_frames, " / max_frames ", c.max_frames,
         " (need 1 <= min_frames <= max_frames)");
  return c;
}

VideoPreprocessorConfig load_video_preprocessor_config(const std::string& model_dir) {
  const std::filesystem::path path = std::filesystem::path(model_dir) / "video_preprocessor_config.json";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    // Keep the model's image settings (patch, merge, mean/std); the clip budget is the video default.
    VideoPreprocessorConfig c;
    c.image = load_preprocessor_config(model_dir);
    c.image.min_pixels = 4096;
    c.image.max_pixels = 25165824;
    return c;
  }
  return parse_video_preprocessor_config(read_text_file(path.string(), size_t(1) << 20), path.string());
}

VideoSampling video_sampling(const VideoPreprocessorConfig& cfg, const VideoOptions& o) {
  VideoSampling s{o.fps.value_or(cfg.fps),
                  o.min_frames.value_or(cfg.min_frames),
                  o.max_frames.value_or(cfg.max_frames),
                  o.min_pixels.value_or(cfg.image.min_pixels),
                  o.max_pixels.value_or(cfg.image.max_pixels),
                  o.cap_pixels_per_frame,
                  o.start_seconds.value_or(0.0),
                  o.end_seconds.value_or(-1.0)};
  if (!(s.fps > 0) || !std::isfinite(s.fps) || s.fps > 1000)
    fail(ErrorKind::kInvalidArgument, "video fps must be in (0, 1000], got ", s.fps);
  if (s.min_frames < 1 || s.max_frames < s.min_frames || s.max_frames > (int64_t(1) << 20))
    fail(ErrorKind::kInvalidArgument, "video min_frames ", s.min_frames, " / max_frames ", s.max_frames,
         " (need 1 <= min_frames <= max_frames <= 2^20)");
  if (s.min_pixels < 0 || s.max_pixels <= 0 || s.min_pixels > s.max_pixels)
    fail(ErrorKind::kInvalidArgument, "video min_pixels ", s.min_pixels, " / max_pixels ", s.max_pixels,
         " (need 0 <= min_pixels <= max_pixels, max_pixels > 0)");
  if (!std::isfinite(s.start_seconds) || s.start_seconds < 0)
    fail(ErrorKind::kInvalidArgument, "video start must be a non-negative number of seconds, got ", s.start_seconds);
  if (o.end_seconds && (!std::isfinite(s.end_seconds) || s.end_seconds < s.start_seconds))
    fail(ErrorKind::kInvalidArgument, "video end (", s.end_seconds, " s) must not precede its start (", s.start_seconds,
         " s)");
  return s;
}

std::vector<int64_t> sample_frame_indices(int64_t total_frames, double source_fps, const VideoSampling& s) {
  if (total_frames <= 0) fail(ErrorKind::kInvalidFile, "the video has no frames");
  if (!(source_fps > 0) || !std::isfinite(source_fps))
    fail(ErrorKind::kInvalidFile, "the video's frame rate ", source_fps, " is not a positive number");
  // The candidate range [first, last] (start/end seconds; all frames by default).
  int64_t first = 0, last = total_frames - 1;
  if (s.start_seconds > 0) first = static_cast<int64_t>(std::ceil(std::min(s.start_seconds * source_fps, 1e18)));
  if (s.end_seconds >= 0) last = std::min(last, static_cast<int64_t>(std::floor(std::min(s.end_seconds * source_fps, 1e18))));
  if (first > last)
    fail(ErrorKind::kInvalidArgument, "the video's ", total_frames, " frames at ", source_fps,
         " fps hold none between the start and end times given");
  const int64_t count = last - first + 1;
  // n = int(N / fps * sample_fps), as the reference computes it in double.
  const double want = static_cast<double>(count) / source_fps * s.fps;
  int64_t n = want >= 9e18 ? INT64_MAX : static_cast<int64_t>(want);
  n = std::min({std::max(n, s.min_frames), s.max_frames, count});
  if (n < 2)
    fail(ErrorKind::kInvalidArgument, "the video yields ", n, " sampled frame(s) (", count, " frame(s) at ", source_fps,
         " fps); at least 2 are needed for one temporal group");
  // numpy.linspace(0, count - 1, n): i * step, the last one exactly count - 1; then rint.
  std::vector<int64_t> idx(static_cast<size_t>(n));
  const double step = static_cast<double>(count - 1) / static_cast<double>(n - 1);
  for (int64_t i = 0; i < n; ++i) {
    const double v = i == n - 1 ? static_cast<double>(count - 1) : static_cast<double>(i) * step;
    idx[static_cast<size_t>(i)] = first + static_cast<int64_t>(round_half_even(v));
  }
  return idx;
}

ResizeResult video_smart_resize(int64_t frames, int64_t height, int64_t width, int64_t factor, const VideoSampling& s) {
  constexpr int64_t kTemporal = 2;
  if (frames < kTemporal)
    fail(ErrorKind::kInvalidArgument, "a video needs at least ", kTemporal, " sampled frames, got ", frames);
  if (height <= 0 || width <= 0 || factor <= 0)
    fail(ErrorKind::kInvalidArgument, "video frame size ", width, "x", height, " has an empty side");
  int64_t max_pixels = s.max_pixels;
  if (s.cap_pixels_per_frame) {
    const int64_t per_frame = std::max(std::min(768 * factor * factor, s.max_pixels / frames),
                                       static_cast<int64_t>(static_cast<double>(s.min_pixels) * 1.05));
    max_pixels = per_frame * frames;
  }
  double h = static_cast<double>(height), w = static_cast<double>(width);
  const double f = static_cast<double>(factor);
  if (height < factor || width < factor) {  // small frames are scaled up first, truncating
    const double scale = std::max(f / h, f / w);
    h = std::trunc(h * scale);
    w = std::trunc(w * scale);
  }
  if (std::max(h, w) / std::min(h, w) > 200)
    fail(ErrorKind::kInvalidArgument, "video aspect ratio ", std::max(h, w) / std::min(h, w), " (", width, "x", height,
         ") is above the limit of 200");
  const double t = static_cast<double>(frames);
  double h_bar = round_half_even(h / f) * f, w_bar = round_half_even(w / f) * f;
  const double t_bar = round_half_even(t / kTemporal) * kTemporal;
  if (t_bar * h_bar * w_bar > static_cast<double>(max_pixels)) {
    const double beta = std::sqrt(t * h * w / static_cast<double>(max_pixels));
    h_bar = std::max(f, std::floor(h / beta / f) * f);
    w_bar = std::max(f, std::floor(w / beta / f) * f);
  } else if (t_bar * h_bar * w_bar < static_cast<double>(s.min_pixels)) {
    const double beta = std::sqrt(static_cast<double>(s.min_pixels) / (t * h * w));
    h_bar = std::ceil(h * beta / f) * f;
    w_bar = std::ceil(w * beta / f) * f;
  }
  if (h_bar < f || w_bar < f || h_bar > 1e6 || w_bar > 1e6)
    fail(ErrorKind::kLimitExceeded, "video frames ", width, "x", height, " resize to ", w_bar, "x", h_bar,
         ", outside 1..1e6 (check min_pixels / max_pixels)");
  return {static_cast<int64_t>(h_bar), static_cast<int64_t>(w_bar)};
}

std::vector<std::string> group_timestamps(const std::vector<int64_t>& indices, double source_fps,
                                          int64_t temporal_patch) {
  std::vector<int64_t> idx = indices;
  if (idx.empty() || temporal_patch < 1) return {};
  while (idx.size() % static_cast<size_t>(temporal_patch) != 0) idx.push_back(idx.back());
  std::vector<std::string> out;
  for (size_t g = 0; g < idx.size(); g += static_cast<size_t>(temporal_patch)) {
    const double a = static_cast<double>(idx[g]) / source_fps;
    const double b = static_cast<double>(idx[g + static_cast<size_t>(temporal_patch) - 1]) / source_fps;
    char buf[64];
    std::snprintf(buf, sizeof buf, "<%.1f seconds>", (a + b) / 2);  // printf rounds the exact binary value
    out.emplace_back(buf);
  }
  return out;
}

}  // namespace qvl
