// libFuzzer target: the video container/demux path. Bytes go through VideoReader::open_memory
// (FFmpeg probes the container, finds the video stream, reads its header) under small limits,
// then the packets are counted and the first frames decoded. The codec libraries are not
// instrumented; what is checked is qvl's side: only qvl::Error escapes, and a decoded frame has
// the size the header declared (after rotation) and exactly w*h*3 bytes.
#include <cstddef>
#include <cstdint>

#include "qvl/error.hpp"
#include "video/video_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qvl::VideoLimits limits;
  limits.max_side = 1024;
  limits.max_pixels_per_frame = 1 << 18;
  limits.max_frames = 64;
  limits.max_file_bytes = 1 << 20;
  try {
    qvl::VideoReader r = qvl::VideoReader::open_memory(data, size, limits, "fuzz input");
    const qvl::VideoInfo& info = r.info();
    if (info.width <= 0 || info.height <= 0 || info.width > limits.max_side || info.height > limits.max_side ||
        !(r.fps() > 0))
      __builtin_trap();
    const int64_t packets = r.count_packets();
    if (packets < 0 || packets > limits.max_frames) __builtin_trap();
    r.decode({0, 1, 2}, [&](int64_t, qvl::Image&& img) {
      if (img.width != r.display_width() || img.height != r.display_height() ||
          img.rgb.size() != size_t(img.width) * size_t(img.height) * 3)
        __builtin_trap();
    });
  } catch (const qvl::Error&) {
  }
  return 0;
}
