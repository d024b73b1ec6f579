#include "video/preprocess_video.h"

#include <algorithm>

#include "core/check.h"
#include "image/resize.h"
#include "video/video_reader.h"

namespace qvl {

namespace {

// Sampled, resized frames → pixel values (the frame list padded to a multiple of T with its last).
VideoPixels patchify_video(std::vector<Image> frames, std::vector<int64_t> indices, double fps,
                           const PreprocessorConfig& cfg) {
  const int64_t P = cfg.patch_size, T = cfg.temporal_patch_size, M = cfg.merge_size;
  QVL_ASSERT(!frames.empty() && frames.size() == indices.size());
  while (frames.size() % static_cast<size_t>(T) != 0) frames.push_back(frames.back());
  // The reference folds the rescale into mean and std: float32 (u - mean/r) / (std/r).
  float lut[3][256];
  for (int c = 0; c < 3; ++c) {
    const float mean = static_cast<float>(cfg.image_mean[c] / cfg.rescale_factor);
    const float std = static_cast<float>(cfg.image_std[c] / cfg.rescale_factor);
    for (int v = 0; v < 256; ++v) lut[c][v] = (static_cast<float>(v) - mean) / std;
  }
  VideoPixels out;
  PixelValues& pv = out.pixels;
  pv.grid_t = static_cast<int64_t>(frames.size()) / T;
  pv.grid_h = frames[0].height / P;
  pv.grid_w = frames[0].width / P;
  pv.cols = 3 * T * P * P;
  pv.rows = pv.grid_t * pv.grid_h * pv.grid_w;
  constexpr int64_t kMaxPixelValues = int64_t(1) << 32;
  if (pv.rows > kMaxPixelValues / pv.cols)
    fail(ErrorKind::kLimitExceeded, "the video would give ", pv.rows, " patch rows, above the limit (lower max_pixels)");
  pv.data.resize(static_cast<size_t>(pv.rows * pv.cols));
  const int64_t group_rows = pv.grid_h * pv.grid_w;
  for (int64_t g = 0; g < pv.grid_t; ++g) {
    std::vector<const Image*> group;
    for (int64_t t = 0; t < T; ++t) group.push_back(&frames[static_cast<size_t>(g * T + t)]);
    patchify_group(group, lut, P, M, pv.data.data() + g * group_rows * pv.cols);
  }
  out.timestamps = group_timestamps(indices, fps, T);
  out.frame_indices = std::move(indices);
  out.source_fps = fps;
  return out;
}

Image resized_to(Image&& frame, const ResizeResult& r) {
  if (frame.height == r.height && frame.width == r.width) return std::move(frame);
  return resize_bicubic(frame, static_cast<int>(r.width), static_cast<int>(r.height));
}

VideoPixels read_video(VideoReader reader, const VideoPreprocessorConfig& cfg, const VideoOptions& options,
                       const VideoDecodeProgress& progress) {
  const VideoSampling s = video_sampling(cfg, options);
  const int64_t factor = cfg.image.patch_size * cfg.image.merge_size;
  const double fps = reader.fps();
  int64_t total = reader.count_packets();
  // Decoders normally give one frame per packet; if this stream does not, sample again over the
  // frames it really gave (one more pass, so the count is the decoded one, as the reference's).
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (total <= 0) fail(ErrorKind::kInvalidFile, "the video has no frames");
    const std::vector<int64_t> idx = sample_frame_indices(total, fps, s);
    const ResizeResult r = video_smart_resize(static_cast<int64_t>(idx.size()), reader.display_height(),
                                              reader.display_width(), factor, s);
    std::vector<Image> frames(idx.size());
    std::vector<int64_t> wanted = idx;  // ascending and distinct (linspace steps are >= 1)
    const int64_t decoded = reader.decode(wanted, [&](int64_t i, Image&& img) {
      if (progress) progress(i, total);
      Image small = resized_to(std::move(img), r);
      for (size_t k = 0; k < idx.size(); ++k)
        if (idx[k] == i) frames[k] = small;
    });
    if (decoded == total) {
      for (size_t k = 0; k < frames.size(); ++k)
        if (frames[k].rgb.empty())
          fail(ErrorKind::kInvalidFile, "the video's frame ", idx[k], " could not be decoded");
      if (progress) progress(total, total);
      VideoPixels out = patchify_video(std::move(frames), idx, fps, cfg.image);
      out.total_frames = total;
      out.source_width = reader.display_width();
      out.source_height = reader.display_height();
      return out;
    }
    total = decoded;
  }
  fail(ErrorKind::kInvalidFile, "the video's frame count is unstable between two decoding passes");
}

}  // namespace

VideoPixels preprocess_video_file(const std::string& path, const VideoPreprocessorConfig& cfg, const VideoOptions& options,
                                  const VideoLimits& limits, const VideoDecodeProgress& progress) {
  return read_video(VideoReader::open_file(path, limits), cfg, options, progress);
}

VideoPixels preprocess_video_bytes(const uint8_t* data, size_t size, const VideoPreprocessorConfig& cfg,
                                   const VideoOptions& options, const VideoLimits& limits) {
  return read_video(VideoReader::open_memory(data, size, limits), cfg, options, {});
}

VideoPixels preprocess_video_frames(const Video& video, const VideoPreprocessorConfig& cfg, const VideoOptions& options) {
  if (video.frames.empty()) fail(ErrorKind::kInvalidArgument, "the video has no frames");
  const Image& first = video.frames[0];
  for (size_t i = 0; i < video.frames.size(); ++i) {
    const Image& f = video.frames[i];
    if (f.width <= 0 || f.height <= 0 || f.rgb.size() != static_cast<size_t>(f.width) * f.height * 3)
      fail(ErrorKind::kInvalidArgument, "video frame ", i, " is empty or malformed");
    if (f.width != first.width || f.height != first.height)
      fail(ErrorKind::kInvalidArgument, "video frame ", i, " is ", f.width, "x", f.height, " but frame 0 is ", first.width,
           "x", first.height, "; all frames must have one size");
  }
  const VideoSampling s = video_sampling(cfg, options);
  const int64_t total = static_cast<int64_t>(video.frames.size());
  const std::vector<int64_t> idx = sample_frame_indices(total, video.fps, s);
  const ResizeResult r = video_smart_resize(static_cast<int64_t>(idx.size()), first.height, first.width,
                                            cfg.image.patch_size * cfg.image.merge_size, s);
  std::vector<Image> frames;
  for (int64_t i : idx) frames.push_back(resized_to(Image(video.frames[static_cast<size_t>(i)]), r));
  VideoPixels out = patchify_video(std::move(frames), idx, video.fps, cfg.image);
  out.total_frames = total;
  out.source_width = first.width;
  out.source_height = first.height;
  return out;
}

}  // namespace qvl
