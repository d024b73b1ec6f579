// The reference's frame sampling, clip sizing and timestamps (Qwen3VLVideoProcessor +
// Qwen3VLProcessor), restated:
//   n = int(N / fps * sample_fps), clamped to [min_frames, max_frames] and to N;
//   indices = linspace(0, N - 1, n).round()  (round half to even, as numpy);
//   size over the whole clip: smart_resize with t = n (see video_smart_resize);
//   the index list is padded to an even count with its last value; a temporal group g holds
//   sampled frames 2g and 2g+1 and is labelled "<%.1f seconds>" of the mean of their times.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "image/preprocess.h"
#include "qvl/video.hpp"

namespace qvl {

struct VideoPreprocessorConfig {
  PreprocessorConfig image;  // patch/merge sizes, mean/std; min/max pixels are for the whole clip
  double fps = 2;
  int64_t min_frames = 4, max_frames = 768;
};

// Reads <model_dir>/video_preprocessor_config.json (missing file or keys: Qwen3VLVideoProcessor's
// defaults, size 4096 / 25165824). Malformed values throw kInvalidFile naming the key.
VideoPreprocessorConfig load_video_preprocessor_config(const std::string& model_dir);
VideoPreprocessorConfig parse_video_preprocessor_config(const std::string& json_text, const std::string& what);

// The settings of one video: the config with the options applied (validated).
struct VideoSampling {
  double fps;
  int64_t min_frames, max_frames, min_pixels, max_pixels;
  bool cap_pixels_per_frame;
  double start_seconds, end_seconds;  // end < 0: to the end
};
VideoSampling video_sampling(const VideoPreprocessorConfig& cfg, const VideoOptions& options);

// Source frame indices to keep from `total_frames` frames at `source_fps`. Throws
// kInvalidArgument when fewer than two frames would be sampled (the reference refuses that too).
std::vector<int64_t> sample_frame_indices(int64_t total_frames, double source_fps, const VideoSampling& s);

// The clip's target frame size for `frames` sampled frames of height x width (factor =
// patch * merge), with the per-frame cap applied when asked.
ResizeResult video_smart_resize(int64_t frames, int64_t height, int64_t width, int64_t factor,
                                const VideoSampling& s);

// "<t seconds>" per temporal group of `temporal_patch` frames (indices padded with the last).
std::vector<std::string> group_timestamps(const std::vector<int64_t>& indices, double source_fps,
                                          int64_t temporal_patch);

}  // namespace qvl
