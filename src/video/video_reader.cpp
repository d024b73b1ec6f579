#include "video/video_reader.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <mutex>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include "core/check.h"

namespace qvl {

namespace {

std::string av_error(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, buf, sizeof buf);
  return buf;
}

// FFmpeg logs warnings about damaged input to stderr; errors reach the caller as qvl::Error, so
// its log is quietened unless the host program chose a level itself.
void quiet_ffmpeg_log() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (av_log_get_level() == AV_LOG_INFO) av_log_set_level(AV_LOG_FATAL);
  });
}

struct FormatDeleter {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct CodecDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsDeleter {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
struct IoDeleter {
  void operator()(AVIOContext* io) const {
    if (io) av_freep(&io->buffer);
    avio_context_free(&io);
  }
};

// Bytes in memory read through a custom AVIOContext.
struct MemorySource {
  const uint8_t* data = nullptr;
  size_t size = 0, pos = 0;

  static int read(void* opaque, uint8_t* buf, int n) {
    auto* s = static_cast<MemorySource*>(opaque);
    const size_t left = s->size - s->pos;
    if (left == 0) return AVERROR_EOF;
    const size_t k = std::min(left, static_cast<size_t>(std::max(n, 0)));
    std::memcpy(buf, s->data + s->pos, k);
    s->pos += k;
    return static_cast<int>(k);
  }
  static int64_t seek(void* opaque, int64_t offset, int whence) {
    auto* s = static_cast<MemorySource*>(opaque);
    if (whence & AVSEEK_SIZE) return static_cast<int64_t>(s->size);
    int64_t base = 0;
    switch (whence & ~AVSEEK_FORCE) {
      case SEEK_SET: base = 0; break;
      case SEEK_CUR: base = static_cast<int64_t>(s->pos); break;
      case SEEK_END: base = static_cast<int64_t>(s->size); break;
      default: return AVERROR(EINVAL);
    }
    if (offset > static_cast<int64_t>(s->size) || offset < -static_cast<int64_t>(s->size)) return AVERROR(EINVAL);
    const int64_t to = base + offset;
    if (to < 0 || to > static_cast<int64_t>(s->size)) return AVERROR(EINVAL);
    s->pos = static_cast<size_t>(to);
    return to;
  }
};

// Display rotation in clockwise degrees (0/90/180/270) from the stream's display matrix.
int stream_rotation(const AVStream* st) {
  size_t size = 0;
  const uint8_t* m = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
  if (m == nullptr || size < 9 * sizeof(int32_t)) return 0;
  const double theta = av_display_rotation_get(reinterpret_cast<const int32_t*>(m));
  if (!std::isfinite(theta)) return 0;
  // av_display_rotation_get gives counter-clockwise degrees; display needs the clockwise turn.
  int cw = static_cast<int>(std::lround(-theta)) % 360;
  if (cw < 0) cw += 360;
  return (cw + 45) / 90 * 90 % 360;
}

// Turns an RGB24 image clockwise by 90, 180 or 270 degrees.
Image rotate(const Image& src, int degrees) {
  if (degrees == 0) return src;
  Image out;
  const int w = src.width, h = src.height;
  const bool swap = degrees != 180;
  out.width = swap ? h : w;
  out.height = swap ? w : h;
  out.rgb.resize(src.rgb.size());
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      int ox, oy;
      if (degrees == 90) ox = h - 1 - y, oy = x;
      else if (degrees == 180) ox = w - 1 - x, oy = h - 1 - y;
      else ox = y, oy = w - 1 - x;
      std::memcpy(&out.rgb[(static_cast<size_t>(oy) * out.width + ox) * 3], &src.rgb[(static_cast<size_t>(y) * w + x) * 3], 3);
    }
  return out;
}

// Byte offsets of R, G, B in a packed 3- or 4-byte RGB format; false for other formats.
bool packed_rgb_layout(AVPixelFormat f, int& step, int& r, int& g, int& b) {
  switch (f) {
    case AV_PIX_FMT_RGB24: step = 3, r = 0, g = 1, b = 2; return true;
    case AV_PIX_FMT_BGR24: step = 3, r = 2, g = 1, b = 0; return true;
    case AV_PIX_FMT_RGBA: case AV_PIX_FMT_RGB0: step = 4, r = 0, g = 1, b = 2; return true;
    case AV_PIX_FMT_BGRA: case AV_PIX_FMT_BGR0: step = 4, r = 2, g = 1, b = 0; return true;
    case AV_PIX_FMT_ARGB: case AV_PIX_FMT_0RGB: step = 4, r = 1, g = 2, b = 3; return true;
    case AV_PIX_FMT_ABGR: case AV_PIX_FMT_0BGR: step = 4, r = 3, g = 2, b = 1; return true;
    default: return false;
  }
}

}  // namespace

struct VideoReader::Impl {
  std::string name;
  std::string path;                  // empty: memory
  MemorySource memory;
  VideoLimits limits;
  VideoInfo info;
  int stream = -1;
  const AVCodec* codec = nullptr;

  std::unique_ptr<AVIOContext, IoDeleter> io;
  std::unique_ptr<AVFormatContext, FormatDeleter> fmt;

  // Opens (or reopens, for another pass from the start) the container and finds the stream.
  void open() {
    fmt.reset();
    io.reset();
    AVFormatContext* f = avformat_alloc_context();
    if (f == nullptr) fail(ErrorKind::kInternal, "out of memory opening ", name);
    if (path.empty()) {
      memory.pos = 0;
      constexpr int kBuf = 1 << 16;
      auto* buf = static_cast<uint8_t*>(av_malloc(kBuf));
      AVIOContext* ctx = buf ? avio_alloc_context(buf, kBuf, 0, &memory, &MemorySource::read, nullptr, &MemorySource::seek) : nullptr;
      if (ctx == nullptr) {
        av_free(buf);
        avformat_free_context(f);
        fail(ErrorKind::kInternal, "out of memory opening ", name);
      }
      io.reset(ctx);
      f->pb = ctx;
      f->flags |= AVFMT_FLAG_CUSTOM_IO;
    }
    int rc = avformat_open_input(&f, path.empty() ? nullptr : path.c_str(), nullptr, nullptr);
    if (rc < 0)  // avformat_open_input frees f on failure
      fail(ErrorKind::kInvalidFile, name, " is not a video FFmpeg can read (", av_error(rc), ")");
    fmt.reset(f);
    rc = avformat_find_stream_info(f, nullptr);
    if (rc < 0) fail(ErrorKind::kInvalidFile, name, ": cannot read the stream information (", av_error(rc), ")");
    rc = av_find_best_stream(f, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (rc == AVERROR_STREAM_NOT_FOUND)
      fail(ErrorKind::kInvalidFile, name, " has no video stream (", f->nb_streams, " other stream(s), e.g. audio only)");
    if (rc == AVERROR_DECODER_NOT_FOUND || (rc >= 0 && codec == nullptr))
      fail(ErrorKind::kUnsupported, name, ": no decoder for its video codec '",
           avcodec_get_name(f->streams[av_find_best_stream(f, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0)]->codecpar->codec_id), "'");
    if (rc < 0) fail(ErrorKind::kInvalidFile, name, ": no usable video stream (", av_error(rc), ")");
    stream = rc;
  }

  void read_header() {
    open();
    const AVStream* st = fmt->streams[stream];
    const AVCodecParameters* par = st->codecpar;
    info.codec = avcodec_get_name(par->codec_id);
    info.width = par->width;
    info.height = par->height;
    if (info.width <= 0 || info.height <= 0)
      fail(ErrorKind::kInvalidFile, name, ": the video stream declares an empty frame size ", info.width, "x", info.height);
    if (info.width > limits.max_side || info.height > limits.max_side ||
        static_cast<int64_t>(info.width) * info.height > limits.max_pixels_per_frame)
      fail(ErrorKind::kLimitExceeded, name, ": frame size ", info.width, "x", info.height, " is above the limit (",
           limits.max_side, " per side, ", limits.max_pixels_per_frame, " pixels)");
    if (st->nb_frames > limits.max_frames)
      fail(ErrorKind::kLimitExceeded, name, " declares ", st->nb_frames, " frames, above the limit of ", limits.max_frames);
    // The frame rate as the reference reads it: the stream's average rate, an exact rational
    // (never derived from timestamps, which containers round).
    AVRational r = st->avg_frame_rate;
    if (r.num <= 0 || r.den <= 0) r = st->r_frame_rate;
    const double fps = r.den > 0 ? static_cast<double>(r.num) / r.den : 0.0;
    if (r.num <= 0 || r.den <= 0 || !std::isfinite(fps) || fps <= 0 || fps > 10000)
      fail(ErrorKind::kInvalidFile, name, ": the video stream has no usable frame rate (", r.num, "/", r.den, ")");
    info.fps_num = r.num;
    info.fps_den = r.den;
    info.rotation = stream_rotation(st);
  }

  int64_t count_packets() {
    open();
    std::unique_ptr<AVPacket, PacketDeleter> pkt(av_packet_alloc());
    if (!pkt) fail(ErrorKind::kInternal, "out of memory reading ", name);
    int64_t count = 0;
    for (;;) {
      const int rc = av_read_frame(fmt.get(), pkt.get());
      if (rc == AVERROR_EOF) break;
      if (rc < 0) fail(ErrorKind::kInvalidFile, name, ": corrupt or truncated container after ", count, " frames (", av_error(rc), ")");
      if (pkt->stream_index == stream && ++count > limits.max_frames)
        fail(ErrorKind::kLimitExceeded, name, " holds more than ", limits.max_frames, " frames");
      av_packet_unref(pkt.get());
    }
    check_complete(count);
    return count;
  }

  // A cut-off file demuxes cleanly up to where it ends; what it declares tells it apart: the
  // stream's frame count, or (for a file holding only this stream) its duration at the frame rate.
  void check_complete(int64_t frames) const {
    const AVStream* st = fmt->streams[stream];
    if (st->nb_frames > 0 && frames < st->nb_frames)
      fail(ErrorKind::kInvalidFile, name, " is truncated or corrupt: it holds ", frames, " frames but declares ",
           st->nb_frames);
    if (fmt->nb_streams != 1 || fmt->duration <= 0 || fmt->duration == AV_NOPTS_VALUE) return;
    const double seconds = static_cast<double>(fmt->duration) / AV_TIME_BASE;
    const double expected = seconds * static_cast<double>(info.fps_num) / static_cast<double>(info.fps_den);
    if (static_cast<double>(frames) + 1 < 0.9 * expected)
      fail(ErrorKind::kInvalidFile, name, " is truncated or corrupt: it holds ", frames, " frames but declares ",
           seconds, " s at ", info.fps_num, "/", info.fps_den, " fps (about ", std::llround(expected), " frames)");
  }

  // RGB24 at the coded size: exact copies for RGB sources, libswscale for the rest.
  Image to_rgb(const AVFrame* fr, std::unique_ptr<SwsContext, SwsDeleter>& sws) {
    Image img;
    img.width = fr->width;
    img.height = fr->height;
    img.rgb.resize(static_cast<size_t>(fr->width) * fr->height * 3);
    const auto pf = static_cast<AVPixelFormat>(fr->format);
    int step = 0, ro = 0, go = 0, bo = 0;
    if (packed_rgb_layout(pf, step, ro, go, bo)) {
      for (int y = 0; y < fr->height; ++y) {
        const uint8_t* s = fr->data[0] + static_cast<ptrdiff_t>(y) * fr->linesize[0];
        uint8_t* d = &img.rgb[static_cast<size_t>(y) * fr->width * 3];
        for (int x = 0; x < fr->width; ++x, s += step, d += 3) d[0] = s[ro], d[1] = s[go], d[2] = s[bo];
      }
      return img;
    }
    if (pf == AV_PIX_FMT_GBRP || pf == AV_PIX_FMT_GBRAP) {  // planes G, B, R
      for (int y = 0; y < fr->height; ++y) {
        const uint8_t* g = fr->data[0] + static_cast<ptrdiff_t>(y) * fr->linesize[0];
        const uint8_t* b = fr->data[1] + static_cast<ptrdiff_t>(y) * fr->linesize[1];
        const uint8_t* r = fr->data[2] + static_cast<ptrdiff_t>(y) * fr->linesize[2];
        uint8_t* d = &img.rgb[static_cast<size_t>(y) * fr->width * 3];
        for (int x = 0; x < fr->width; ++x, d += 3) d[0] = r[x], d[1] = g[x], d[2] = b[x];
      }
      return img;
    }
    sws.reset(sws_getCachedContext(sws.release(), fr->width, fr->height, pf, fr->width, fr->height, AV_PIX_FMT_RGB24,
                                   SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr));
    if (!sws)
      fail(ErrorKind::kUnsupported, name, ": cannot convert pixel format '",
           av_get_pix_fmt_name(pf) ? av_get_pix_fmt_name(pf) : "?", "' to RGB");
    uint8_t* dst[4] = {img.rgb.data(), nullptr, nullptr, nullptr};
    int dst_stride[4] = {fr->width * 3, 0, 0, 0};
    sws_scale(sws.get(), fr->data, fr->linesize, 0, fr->height, dst, dst_stride);
    return img;
  }

  int64_t decode(const std::vector<int64_t>& wanted, const std::function<void(int64_t, Image&&)>& sink) {
    open();
    std::unique_ptr<AVCodecContext, CodecDeleter> ctx(avcodec_alloc_context3(codec));
    if (!ctx) fail(ErrorKind::kInternal, "out of memory opening the decoder for ", name);
    int rc = avcodec_parameters_to_context(ctx.get(), fmt->streams[stream]->codecpar);
    if (rc < 0) fail(ErrorKind::kInvalidFile, name, ": bad codec parameters (", av_error(rc), ")");
    ctx->thread_count = 0;  // FFmpeg picks
    rc = avcodec_open2(ctx.get(), codec, nullptr);
    if (rc < 0) fail(ErrorKind::kUnsupported, name, ": cannot open the ", info.codec, " decoder (", av_error(rc), ")");
    std::unique_ptr<AVPacket, PacketDeleter> pkt(av_packet_alloc());
    std::unique_ptr<AVFrame, FrameDeleter> frame(av_frame_alloc());
    if (!pkt || !frame) fail(ErrorKind::kInternal, "out of memory decoding ", name);
    std::unique_ptr<SwsContext, SwsDeleter> sws;
    int64_t index = 0;
    size_t next_wanted = 0;

    auto drain = [&] {
      for (;;) {
        const int r = avcodec_receive_frame(ctx.get(), frame.get());
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return;
        if (r < 0) fail(ErrorKind::kInvalidFile, name, ": corrupt video data at frame ", index, " (", av_error(r), ")");
        if (frame->width != info.width || frame->height != info.height)
          fail(ErrorKind::kUnsupported, name, ": frame ", index, " is ", frame->width, "x", frame->height,
               " but the stream is ", info.width, "x", info.height, " (size changes are not supported)");
        if (frame->decode_error_flags != 0 || (frame->flags & AV_FRAME_FLAG_CORRUPT))
          fail(ErrorKind::kInvalidFile, name, ": corrupt video data at frame ", index);
        while (next_wanted < wanted.size() && wanted[next_wanted] < index) ++next_wanted;
        if (next_wanted < wanted.size() && wanted[next_wanted] == index) sink(index, rotate(to_rgb(frame.get(), sws), info.rotation));
        av_frame_unref(frame.get());
        if (++index > limits.max_frames)
          fail(ErrorKind::kLimitExceeded, name, " holds more than ", limits.max_frames, " frames");
      }
    };
    for (;;) {
      rc = av_read_frame(fmt.get(), pkt.get());
      if (rc == AVERROR_EOF) break;
      if (rc < 0) fail(ErrorKind::kInvalidFile, name, ": corrupt or truncated container after ", index, " frames (", av_error(rc), ")");
      if (pkt->stream_index == stream) {
        rc = avcodec_send_packet(ctx.get(), pkt.get());
        av_packet_unref(pkt.get());
        if (rc < 0 && rc != AVERROR(EAGAIN))
          fail(ErrorKind::kInvalidFile, name, ": corrupt video data at frame ", index, " (", av_error(rc), ")");
        drain();
      } else {
        av_packet_unref(pkt.get());
      }
    }
    avcodec_send_packet(ctx.get(), nullptr);  // flush the frames the decoder holds back
    drain();
    return index;
  }
};

VideoReader::VideoReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
VideoReader::VideoReader(VideoReader&&) noexcept = default;
VideoReader& VideoReader::operator=(VideoReader&&) noexcept = default;
VideoReader::~VideoReader() = default;

VideoReader VideoReader::open_file(const std::string& path, const VideoLimits& limits) {
  quiet_ffmpeg_log();
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) fail(ErrorKind::kNotFound, "cannot read the video '", path, "': ", ec.message());
  if (size > limits.max_file_bytes)
    fail(ErrorKind::kLimitExceeded, "the video '", path, "' is ", size, " bytes, above the limit of ", limits.max_file_bytes);
  auto impl = std::make_unique<Impl>();
  impl->name = "the video '" + path + "'";
  impl->path = path;
  impl->limits = limits;
  impl->read_header();
  return VideoReader(std::move(impl));
}

VideoReader VideoReader::open_memory(const uint8_t* data, size_t size, const VideoLimits& limits, const std::string& name) {
  quiet_ffmpeg_log();
  if (data == nullptr || size == 0) fail(ErrorKind::kInvalidFile, name, " is empty");
  if (size > limits.max_file_bytes)
    fail(ErrorKind::kLimitExceeded, name, " is ", size, " bytes, above the limit of ", limits.max_file_bytes);
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->memory.data = data;
  impl->memory.size = size;
  impl->limits = limits;
  impl->read_header();
  return VideoReader(std::move(impl));
}

const VideoInfo& VideoReader::info() const { return impl_->info; }
double VideoReader::fps() const { return static_cast<double>(impl_->info.fps_num) / static_cast<double>(impl_->info.fps_den); }
int VideoReader::display_width() const { return impl_->info.rotation % 180 ? impl_->info.height : impl_->info.width; }
int VideoReader::display_height() const { return impl_->info.rotation % 180 ? impl_->info.width : impl_->info.height; }
int64_t VideoReader::count_packets() { return impl_->count_packets(); }
int64_t VideoReader::decode(const std::vector<int64_t>& wanted, const std::function<void(int64_t, Image&&)>& sink) {
  return impl_->decode(wanted, sink);
}

}  // namespace qvl
