// Video decoding with FFmpeg's libraries (libavformat demuxes, libavcodec decodes, libswscale
// converts non-RGB frames). Only the frames asked for are converted to RGB24; each is handed to
// the caller at once, so memory holds one decoded frame at a time plus what the caller keeps.
// FFmpeg types stay inside video_reader.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "qvl/image.hpp"
#include "qvl/video.hpp"

namespace qvl {

class VideoReader {
 public:
  // A file, or bytes in memory (kept by the caller until the reader is gone). Opening reads the
  // header and checks it against the limits (size, declared frame count, frame rate) before any
  // frame is decoded; failures are kInvalidFile (corrupt, no video stream), kUnsupported (no
  // decoder) or kLimitExceeded, naming the file.
  static VideoReader open_file(const std::string& path, const VideoLimits& limits = {});
  static VideoReader open_memory(const uint8_t* data, size_t size, const VideoLimits& limits = {},
                                 const std::string& name = "video data");
  VideoReader(VideoReader&&) noexcept;
  VideoReader& operator=(VideoReader&&) noexcept;
  ~VideoReader();

  const VideoInfo& info() const;
  double fps() const;  // info().fps_num / fps_den
  // Display size after rotation.
  int display_width() const;
  int display_height() const;

  // Frames in the stream, counted by demuxing (no decoding): one packet per frame.
  int64_t count_packets();
  // Decodes the whole stream from the start. For each decoded frame whose index is in `wanted`
  // (ascending), converts it to RGB24 with the rotation applied and calls sink(index, image).
  // Returns the number of frames decoded. Corrupt data is kInvalidFile naming the frame.
  int64_t decode(const std::vector<int64_t>& wanted, const std::function<void(int64_t, Image&&)>& sink);

 private:
  struct Impl;
  explicit VideoReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qvl
