#include "image/resize.h"

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/check.h"

namespace qvl {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // as Pillow: 8 bits of result, 2 for overshoot

// Keys cubic with a = -0.5, written in the same operation order as Pillow so that the double
// weights (and hence the rounded fixed-point ones) are identical.
double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Taps of one axis: output i reads source samples [first[i], first[i] + count[i]) with weights
// k[i * ksize + j] (fixed point).
struct Taps {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;
};

Taps compute_taps(int in_size, int out_size) {
  constexpr double kSupport = 2.0;  // bicubic
  // Pillow passes the box as floats: (0, 0, in_w, in_h).
  const float in0 = 0.0f, in1 = static_cast<float>(in_size);
  const double scale = static_cast<double>(in1 - in0) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = kSupport * filterscale;
  Taps t;
  t.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.first.resize(out_size);
  t.count.resize(out_size);
  t.k.assign(static_cast<size_t>(out_size) * t.ksize, 0);
  std::vector<double> w(t.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double v = bicubic((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    int32_t* k = &t.k[static_cast<size_t>(xx) * t.ksize];
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      k[x] = v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits))
                   : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    t.first[xx] = xmin;
    t.count[xx] = xmax;
  }
  return t;
}

inline uint8_t clip8(int32_t v) {
  v >>= kPrecisionBits;  // arithmetic shift (floor), as in Pillow
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Horizontal pass over source rows [row0, row0 + rows): returns rows x out_w RGB.
std::vector<uint8_t> resample_horizontal(const uint8_t* src, int in_w, int row0, int rows, const Taps& t) {
  const int out_w = static_cast<int>(t.first.size());
  std::vector<uint8_t> out(static_cast<size_t>(rows) * out_w * 3);
  for (int y = 0; y < rows; ++y) {
    const uint8_t* line = src + static_cast<size_t>(row0 + y) * in_w * 3;
    uint8_t* o = out.data() + static_cast<size_t>(y) * out_w * 3;
    for (int xx = 0; xx < out_w; ++xx) {
      const int32_t* k = &t.k[static_cast<size_t>(xx) * t.ksize];
      const uint8_t* p = line + static_cast<size_t>(t.first[xx]) * 3;
      int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
      for (int x = 0; x < t.count[xx]; ++x) {
        s0 += p[3 * x] * k[x];
        s1 += p[3 * x + 1] * k[x];
        s2 += p[3 * x + 2] * k[x];
      }
      o[3 * xx] = clip8(s0);
      o[3 * xx + 1] = clip8(s1);
      o[3 * xx + 2] = clip8(s2);
    }
  }
  return out;
}

// Vertical pass: src has width w (RGB) and its row 0 is source row `row0`.
std::vector<uint8_t> resample_vertical(const uint8_t* src, int w, int row0, const Taps& t) {
  const int out_h = static_cast<int>(t.first.size());
  const size_t n = static_cast<size_t>(w) * 3;
  std::vector<uint8_t> out(static_cast<size_t>(out_h) * n);
  std::vector<int32_t> acc(n);
  for (int yy = 0; yy < out_h; ++yy) {
    const int32_t* k = &t.k[static_cast<size_t>(yy) * t.ksize];
    std::fill(acc.begin(), acc.end(), int32_t(1) << (kPrecisionBits - 1));
    for (int y = 0; y < t.count[yy]; ++y) {
      const uint8_t* line = src + static_cast<size_t>(t.first[yy] + y - row0) * n;
      const int32_t ky = k[y];
      for (size_t i = 0; i < n; ++i) acc[i] += line[i] * ky;  // integer: order does not matter
    }
    uint8_t* o = out.data() + static_cast<size_t>(yy) * n;
    for (size_t i = 0; i < n; ++i) o[i] = clip8(acc[i]);
  }
  return out;
}

}  // namespace

Image resize_bicubic(const Image& src, int new_width, int new_height) {
  if (new_width <= 0 || new_height <= 0)
    fail(ErrorKind::kInvalidArgument, "resize target must be positive, got ", new_width, "x", new_height);
  if (src.width <= 0 || src.height <= 0 || src.rgb.size() != rgb_bytes(src.width, src.height))
    fail(ErrorKind::kInvalidArgument, "cannot resize an empty or malformed image (", src.width, "x",
         src.height, ", ", src.rgb.size(), " bytes)");
  if (new_width == src.width && new_height == src.height) return src;  // Pillow returns a copy

  const Taps vert = compute_taps(src.height, new_height);
  const bool need_h = new_width != src.width;
  const bool need_v = new_height != src.height;
  Image out;
  out.width = new_width;
  out.height = new_height;
  if (need_h) {
    // Only the source rows the vertical pass reads.
    const int row0 = vert.first.front();
    const int row1 = vert.first.back() + vert.count.back();
    const Taps horiz = compute_taps(src.width, new_width);
    std::vector<uint8_t> tmp = resample_horizontal(src.rgb.data(), src.width, row0, row1 - row0, horiz);
    out.rgb = need_v ? resample_vertical(tmp.data(), new_width, row0, vert) : std::move(tmp);
  } else {
    out.rgb = resample_vertical(src.rgb.data(), src.width, 0, vert);
  }
  return out;
}

}  // namespace qvl
