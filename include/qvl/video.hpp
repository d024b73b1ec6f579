// Videos for Qwen3-VL: decoded with FFmpeg's libraries (any container/codec Debian's libavformat
// and libavcodec read), sampled and resized as the reference Qwen3VLVideoProcessor does. No
// FFmpeg type appears here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "qvl/image.hpp"

namespace qvl {

// Per-video settings; unset fields take video_preprocessor_config.json's values (fps 2,
// min_frames 4, max_frames 768, size.shortest_edge / longest_edge = min / max pixels of the
// whole clip, summed over its sampled frames).
struct VideoOptions {
  std::optional<double> fps;             // frames sampled per second of video (> 0)
  std::optional<int64_t> min_frames, max_frames;
  std::optional<int64_t> min_pixels, max_pixels;  // over the whole clip (t * h * w)
  // Qwen's qwen-vl-utils per-frame cap: max_pixels = max(min(768*32*32, max_pixels // n),
  // int(min_pixels * 1.05)) * n for n sampled frames.
  bool cap_pixels_per_frame = false;
  // Only frames whose time (index / frame rate) lies in [start, end] are candidates. Unset: all.
  std::optional<double> start_seconds, end_seconds;
};

// What the container says about a video stream (before decoding).
struct VideoInfo {
  int width = 0, height = 0;        // coded size, before rotation
  int rotation = 0;                 // display rotation in degrees clockwise: 0, 90, 180 or 270
  int64_t fps_num = 0, fps_den = 1; // the stream's average frame rate, an exact rational
  std::string codec;                // FFmpeg's codec name ("h264", "ffv1", ...)
};

// Checked before any frame buffer is allocated.
struct VideoLimits {
  int64_t max_side = 16384;
  int64_t max_pixels_per_frame = int64_t(1) << 27;  // 16x 8K UHD
  int64_t max_frames = int64_t(1) << 24;  // ~155 hours at 30 fps
  uint64_t max_file_bytes = uint64_t(16) << 30;
};

// A video given as frames (e.g. a list of image files): every frame the same size, at `fps`
// frames per second. Sampling picks from these frames like from a decoded file.
struct Video {
  std::vector<Image> frames;
  double fps = 0;
};

}  // namespace qvl
