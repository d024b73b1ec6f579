#include "image/preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/check.h"
#include "core/json_util.h"
#include "core/mapped_file.h"
#include "image/resize.h"

namespace qvl {

namespace {

constexpr double kMaxAspectRatio = 200.0;  // HF's MAX_RATIO

// Python's round(): nearest integer, ties to even. (v - floor(v) is exact for doubles.)
double round_half_even(double v) {
  const double f = std::floor(v);
  const double d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return std::fmod(f, 2.0) == 0.0 ? f : f + 1;
}

float read_channel_triplet_item(const Json& v, const char* key, const std::string& what) {
  if (!v.is_number()) fail(ErrorKind::kInvalidFile, what, ": '", key, "' must hold numbers, got ", v.dump());
  const double d = v.get<double>();
  if (!std::isfinite(d)) fail(ErrorKind::kInvalidFile, what, ": '", key, "' holds a non-finite value");
  return static_cast<float>(d);
}

// image_mean / image_std: one number for all channels or a list of three.
void read_triplet(const Json& j, const char* key, float out[3], const std::string& what) {
  if (!j.contains(key) || j[key].is_null()) return;
  const Json& v = j[key];
  if (v.is_number()) {
    out[0] = out[1] = out[2] = read_channel_triplet_item(v, key, what);
    return;
  }
  if (!v.is_array() || v.size() != 3)
    fail(ErrorKind::kInvalidFile, what, ": '", key, "' must be a number or a list of 3 numbers, got ", v.dump());
  for (int c = 0; c < 3; ++c) out[c] = read_channel_triplet_item(v[c], key, what);
}

void validate(const PreprocessorConfig& c, const std::string& what) {
  auto bad = [&](const char* key, auto value, const char* rule) {
    fail(ErrorKind::kInvalidFile, what, ": '", key, "' = ", value, " (", rule, ")");
  };
  if (c.patch_size <= 0 || c.patch_size > 1024) bad("patch_size", c.patch_size, "must be in 1..1024");
  if (c.temporal_patch_size <= 0 || c.temporal_patch_size > 64)
    bad("temporal_patch_size", c.temporal_patch_size, "must be in 1..64");
  if (c.merge_size <= 0 || c.merge_size > 64) bad("merge_size", c.merge_size, "must be in 1..64");
  if (c.min_pixels < 0) bad("min_pixels (size.shortest_edge)", c.min_pixels, "must not be negative");
  if (c.max_pixels <= 0) bad("max_pixels (size.longest_edge)", c.max_pixels, "must be positive");
  if (c.min_pixels > c.max_pixels)
    fail(ErrorKind::kInvalidFile, what, ": min_pixels ", c.min_pixels, " exceeds max_pixels ", c.max_pixels);
  for (int i = 0; i < 3; ++i)
    if (c.image_std[i] == 0.0f) bad("image_std", c.image_std[i], "must not be zero");
  if (!(c.rescale_factor > 0.0) || !std::isfinite(c.rescale_factor))
    bad("rescale_factor", c.rescale_factor, "must be a positive number");
}

}  // namespace

PreprocessorConfig parse_preprocessor_config(const std::string& json_text, const std::string& what) {
  const Json j = parse_json(json_text, what);
  if (!j.is_object()) fail(ErrorKind::kInvalidFile, what, ": expected a JSON object");
  PreprocessorConfig c;
  c.patch_size = json_int_or(j, "patch_size", c.patch_size, what);
  c.temporal_patch_size = json_int_or(j, "temporal_patch_size", c.temporal_patch_size, what);
  c.merge_size = json_int_or(j, "merge_size", c.merge_size, what);
  if (j.contains("size") && !j["size"].is_null()) {
    const Json& s = j["size"];
    if (!s.is_object()) fail(ErrorKind::kInvalidFile, what, ": 'size' must be an object, got ", s.dump());
    const std::string swhat = what + " (size)";
    const bool edges = s.contains("shortest_edge") || s.contains("longest_edge");
    const bool pixels = s.contains("min_pixels") || s.contains("max_pixels");
    if (edges) {
      c.min_pixels = json_int(s, "shortest_edge", swhat);
      c.max_pixels = json_int(s, "longest_edge", swhat);
    } else if (pixels) {
      c.min_pixels = json_int_or(s, "min_pixels", c.min_pixels, swhat);
      c.max_pixels = json_int_or(s, "max_pixels", c.max_pixels, swhat);
    } else if (!(j.contains("min_pixels") && j.contains("max_pixels"))) {
      fail(ErrorKind::kInvalidFile, what, ": 'size' must hold 'shortest_edge' and 'longest_edge', got ",
           s.dump());
    }
  }
  // Backward compatibility in HF: top-level min_pixels / max_pixels override size.
  c.min_pixels = json_int_or(j, "min_pixels", c.min_pixels, what);
  c.max_pixels = json_int_or(j, "max_pixels", c.max_pixels, what);
  read_triplet(j, "image_mean", c.image_mean, what);
  read_triplet(j, "image_std", c.image_std, what);
  c.rescale_factor = json_number_or(j, "rescale_factor", c.rescale_factor, what);
  validate(c, what);
  return c;
}

PreprocessorConfig load_preprocessor_config(const std::string& model_dir) {
  const std::filesystem::path path = std::filesystem::path(model_dir) / "preprocessor_config.json";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return PreprocessorConfig{};
  return parse_preprocessor_config(read_text_file(path.string(), size_t(1) << 20), path.string());
}

ResizeResult smart_resize(int64_t height, int64_t width, int64_t factor, int64_t min_pixels,
                          int64_t max_pixels) {
  if (height <= 0 || width <= 0)
    fail(ErrorKind::kInvalidArgument, "smart_resize: image size ", width, "x", height, " has an empty side");
  if (factor <= 0) fail(ErrorKind::kInvalidArgument, "smart_resize: factor must be positive, got ", factor);
  if (max_pixels <= 0 || min_pixels < 0)
    fail(ErrorKind::kInvalidArgument, "smart_resize: bad pixel bounds [", min_pixels, ", ", max_pixels, "]");
  // Bounds that keep every product below exactly in int64 and double (found by fuzz_preprocess:
  // 2^63-1 x 2^63-1 overflowed); far above any image (decoders cap sides at 65500).
  constexpr int64_t kMaxSide = int64_t(1) << 24, kMaxMinPixels = int64_t(1) << 52;
  if (height > kMaxSide || width > kMaxSide || factor > kMaxSide)
    fail(ErrorKind::kInvalidArgument, "smart_resize: image size ", width, "x", height, " or factor ", factor,
         " is above the limit of ", kMaxSide);
  if (min_pixels > kMaxMinPixels)
    fail(ErrorKind::kInvalidArgument, "smart_resize: min_pixels ", min_pixels, " is above the limit of ", kMaxMinPixels);
  // Below 2^53 every int64 here converts exactly, so each double operation is the correctly
  // rounded one Python performs on ints and floats.
  const double h = static_cast<double>(height), w = static_cast<double>(width);
  const double f = static_cast<double>(factor);
  const double ratio = std::max(h, w) / std::min(h, w);
  if (ratio > kMaxAspectRatio)
    fail(ErrorKind::kInvalidArgument, "image aspect ratio ", ratio, " (", width, "x", height,
         ") is above the limit of ", kMaxAspectRatio);
  int64_t h_bar = static_cast<int64_t>(round_half_even(h / f)) * factor;
  int64_t w_bar = static_cast<int64_t>(round_half_even(w / f)) * factor;
  const double area = static_cast<double>(height * width);
  if (h_bar * w_bar > max_pixels) {
    const double beta = std::sqrt(area / static_cast<double>(max_pixels));
    h_bar = std::max(factor, static_cast<int64_t>(std::floor(h / beta / f)) * factor);
    w_bar = std::max(factor, static_cast<int64_t>(std::floor(w / beta / f)) * factor);
  } else if (h_bar * w_bar < min_pixels) {
    const double beta = std::sqrt(static_cast<double>(min_pixels) / area);
    h_bar = static_cast<int64_t>(std::ceil(h * beta / f)) * factor;
    w_bar = static_cast<int64_t>(std::ceil(w * beta / f)) * factor;
  }
  if (h_bar <= 0 || w_bar <= 0)
    fail(ErrorKind::kInvalidArgument, "smart_resize: ", width, "x", height, " rounds to an empty size ",
         w_bar, "x", h_bar, " (factor ", factor, ", min_pixels ", min_pixels, ")");
  return {h_bar, w_bar};
}

void patchify_group(const std::vector<const Image*>& frames, const float (*lut)[256], int64_t P, int64_t M, float* out) {
  QVL_ASSERT(!frames.empty());
  const int64_t T = static_cast<int64_t>(frames.size());
  const int64_t W = frames[0]->width, H = frames[0]->height;
  for (const Image* f : frames) QVL_ASSERT(f->width == W && f->height == H && f->rgb.size() == rgb_bytes(W, H));
  QVL_ASSERT(W % (P * M) == 0 && H % (P * M) == 0);
  const int64_t cols = 3 * T * P * P;
  const int64_t blocks_w = W / P / M, blocks_h = H / P / M;
  for (int64_t bh = 0; bh < blocks_h; ++bh)
    for (int64_t bw = 0; bw < blocks_w; ++bw)
      for (int64_t mh = 0; mh < M; ++mh)
        for (int64_t mw = 0; mw < M; ++mw, out += cols) {
          const int64_t y0 = (bh * M + mh) * P, x0 = (bw * M + mw) * P;
          for (int c = 0; c < 3; ++c)
            for (int64_t t = 0; t < T; ++t) {
              const uint8_t* px = frames[static_cast<size_t>(t)]->rgb.data();
              float* dst = out + (c * T + t) * P * P;
              for (int64_t py = 0; py < P; ++py, dst += P) {
                const uint8_t* src = px + ((y0 + py) * W + x0) * 3 + c;
                for (int64_t q = 0; q < P; ++q) dst[q] = lut[c][src[3 * q]];
              }
            }
        }
}

PixelValues preprocess_image(const Image& image, const PreprocessorConfig& cfg) {
  validate(cfg, "preprocessor config");
  if (image.width <= 0 || image.height <= 0 || image.rgb.size() != rgb_bytes(image.width, image.height))
    fail(ErrorKind::kInvalidArgument, "preprocess_image: empty or malformed image (", image.width, "x",
         image.height, ", ", image.rgb.size(), " bytes)");
  const int64_t P = cfg.patch_size, T = cfg.temporal_patch_size, M = cfg.merge_size;
  const ResizeResult r = smart_resize(image.height, image.width, P * M, cfg.min_pixels, cfg.max_pixels);
  if (r.height > INT32_MAX || r.width > INT32_MAX)
    fail(ErrorKind::kLimitExceeded, "preprocess_image: resized size ", r.width, "x", r.height, " is too large");
  // A hostile preprocessor config (e.g. shortest_edge 2^40) must not make us allocate terabytes.
  constexpr int64_t kMaxPixelValues = int64_t(1) << 30;  // Qwen3-VL's own maximum needs ~1e8
  if (r.height * r.width > kMaxPixelValues / (3 * T))
    fail(ErrorKind::kLimitExceeded, "preprocess_image: the resized image ", r.width, "x", r.height, " would give ",
         static_cast<double>(r.height) * static_cast<double>(r.width) * 3.0 * static_cast<double>(T),
         " pixel values, above the limit of ", kMaxPixelValues,
         " (check min_pixels / max_pixels)");

  Image resized;
  const Image* img = &image;
  if (r.height != image.height || r.width != image.width) {
    resized = resize_bicubic(image, static_cast<int>(r.width), static_cast<int>(r.height));
    img = &resized;
  }

  // float32(float64(u8) * rescale), then float32 (x - mean) / std: one table per channel.
  float lut[3][256];
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) {
      const float x = static_cast<float>(static_cast<double>(v) * cfg.rescale_factor);
      lut[c][v] = (x - cfg.image_mean[c]) / cfg.image_std[c];
    }

  PixelValues pv;
  pv.grid_t = 1;  // one image, repeated to fill the temporal patch
  pv.grid_h = r.height / P;
  pv.grid_w = r.width / P;
  pv.rows = pv.grid_t * pv.grid_h * pv.grid_w;
  pv.cols = 3 * T * P * P;
  pv.data.resize(static_cast<size_t>(pv.rows) * static_cast<size_t>(pv.cols));

  const std::vector<const Image*> frames(static_cast<size_t>(T), img);  // one image fills the temporal patch
  patchify_group(frames, lut, P, M, pv.data.data());
  return pv;
}

}  // namespace qvl
