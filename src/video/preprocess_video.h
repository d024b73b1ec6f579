// Video → pixel values as Qwen3VLVideoProcessor computes them: decode, sample (sampling.h),
// resize every sampled frame like an image (Pillow-exact bicubic on uint8), normalize with the
// rescale folded into mean/std (float32 (u - 127.5) / 127.5 for Qwen3-VL), pad to an even count
// with the last frame and patchify each temporal group of two frames (rows group-major, then
// 2x2 merge blocks; columns (c, t, py, px)). Frames are resized as they are decoded, so memory
// holds the sampled frames at their target size, never the whole video.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "image/preprocess.h"
#include "qvl/video.hpp"
#include "video/sampling.h"

namespace qvl {

struct VideoPixels {
  PixelValues pixels;                   // grid_t = temporal groups
  std::vector<int64_t> frame_indices;   // sampled source frames
  std::vector<std::string> timestamps;  // "<t seconds>" per group
  int64_t total_frames = 0;
  double source_fps = 0;
  int64_t source_width = 0, source_height = 0;  // after rotation
};

// Called with (frames decoded so far, frames in the clip) while decoding; may be empty.
using VideoDecodeProgress = std::function<void(int64_t, int64_t)>;

VideoPixels preprocess_video_file(const std::string& path, const VideoPreprocessorConfig& cfg, const VideoOptions& options,
                                  const VideoLimits& limits = {}, const VideoDecodeProgress& progress = {});
VideoPixels preprocess_video_bytes(const uint8_t* data, size_t size, const VideoPreprocessorConfig& cfg,
                                   const VideoOptions& options, const VideoLimits& limits = {});
// Frames given in memory (all the same size) at video.fps.
VideoPixels preprocess_video_frames(const Video& video, const VideoPreprocessorConfig& cfg, const VideoOptions& options);

}  // namespace qvl
