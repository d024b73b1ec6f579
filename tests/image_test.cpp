// Image decoding, Pillow-exact bicubic resize, smart_resize and Qwen2-VL/Qwen3-VL preprocessing.
//
// References: tests/data/golden (HF processor pixel values), tests/data/images (generated offline
// with Pillow by tools/gen_image_refs.py; see tests/data/images/README.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "image/decode.h"
#include "image/preprocess.h"
#include "image/resize.h"
#include "qvl/error.hpp"
#include "test_util.h"

namespace qvl {
namespace {

using nlohmann::json;
using test::golden_dir;
using test::read_file;

std::string images_dir() { return test::data_dir() + "/images"; }

json load_json(const std::string& path) { return json::parse(read_file(path)); }

Image decode_bytes(const std::string& bytes, const ImageLimits& limits = {}) {
  return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), limits);
}

using test::expect_error;

// ---------------------------------------------------------------------------------------- golden

struct GoldenImageResult {
  float max_abs = 0;
  size_t differing = 0;
  size_t count = 0;
};

void check_golden_case(const std::string& name) {
  const json g = load_json(golden_dir() + "/" + name + ".json");
  const PreprocessorConfig cfg = load_preprocessor_config(test::tiny_model_dir());
  const std::vector<float> ref = test::read_f32(golden_dir() + "/" + name + ".pixel_values.f32.bin");
  const auto& shape = g["pixel_values"]["shape"];
  ASSERT_EQ(ref.size(), shape[0].get<size_t>() * shape[1].get<size_t>());

  std::vector<float> all;
  size_t offset = 0;
  for (size_t i = 0; i < g["images"].size(); ++i) {
    const json& info = g["images"][i];
    const Image img = load_image_file(golden_dir() + "/" + info["file"].get<std::string>());
    EXPECT_EQ(img.height, info["orig_hw"][0].get<int>());
    EXPECT_EQ(img.width, info["orig_hw"][1].get<int>());

    const ResizeResult r = smart_resize(img.height, img.width, cfg.patch_size * cfg.merge_size,
                                        cfg.min_pixels, cfg.max_pixels);
    EXPECT_EQ(r.height, info["resized_hw"][0].get<int64_t>());
    EXPECT_EQ(r.width, info["resized_hw"][1].get<int64_t>());

    const PixelValues pv = preprocess_image(img, cfg);
    const json& grid = g["image_grid_thw"][i];
    EXPECT_EQ(pv.grid_t, grid[0].get<int64_t>());
    EXPECT_EQ(pv.grid_h, grid[1].get<int64_t>());
    EXPECT_EQ(pv.grid_w, grid[2].get<int64_t>());
    EXPECT_EQ(pv.rows, pv.grid_t * pv.grid_h * pv.grid_w);
    EXPECT_EQ(pv.cols, shape[1].get<int64_t>());
    ASSERT_EQ(pv.data.size(), size_t(pv.rows * pv.cols));
    ASSERT_LE(offset + pv.data.size(), ref.size());

    GoldenImageResult res;
    res.count = pv.data.size();
    for (size_t k = 0; k < pv.data.size(); ++k) {
      const float d = std::fabs(pv.data[k] - ref[offset + k]);
      res.max_abs = std::max(res.max_abs, d);
      if (pv.data[k] != ref[offset + k]) ++res.differing;
    }
    const bool resized = r.height != img.height || r.width != img.width;
    std::cout << "[golden] " << name << " " << info["file"].get<std::string>() << " " << img.width << "x"
              << img.height << " -> " << r.width << "x" << r.height << (resized ? " (bicubic)" : " (no resize)")
              << ": max abs error " << res.max_abs << ", " << res.differing << " of " << res.count
              << " elements differ\n";
    EXPECT_LE(res.max_abs, 1e-5f) << info["file"];
    offset += pv.data.size();
    all.insert(all.end(), pv.data.begin(), pv.data.end());
  }
  EXPECT_EQ(offset, ref.size());
  EXPECT_LE(test::max_abs_diff(all, ref), 1e-5f);

  // The golden's own summaries.
  const json& first16 = g["pixel_values"]["first16"];
  for (size_t k = 0; k < first16.size(); ++k) EXPECT_FLOAT_EQ(all[k], first16[k].get<float>()) << k;
  double sum = 0;
  for (float v : all) sum += v;
  EXPECT_NEAR(sum, g["pixel_values"]["sum"].get<double>(), 1e-3);
}

TEST(ImageGolden, OneImage) { check_golden_case("b_one_image"); }
TEST(ImageGolden, TwoImagesOneResized) { check_golden_case("c_two_images"); }

// ---------------------------------------------------------------------------------- smart_resize

TEST(SmartResize, HandDerivedCases) {
  // 256x320 is already a multiple of 32 and inside the bounds.
  EXPECT_EQ(smart_resize(256, 320, 32, 65536, 16777216).height, 256);
  EXPECT_EQ(smart_resize(256, 320, 32, 65536, 16777216).width, 320);
  // Ties round to even: 80/32 = 2.5 -> 2, 112/32 = 3.5 -> 4, 48/32 = 1.5 -> 2.
  {
    ResizeResult r = smart_resize(80, 112, 32, 0, int64_t(1) << 30);
    EXPECT_EQ(r.height, 64);
    EXPECT_EQ(r.width, 128);
    r = smart_resize(48, 48, 32, 0, int64_t(1) << 30);
    EXPECT_EQ(r.height, 64);
    EXPECT_EQ(r.width, 64);
    r = smart_resize(144, 208, 32, 0, int64_t(1) << 30);  // 4.5 -> 4, 6.5 -> 6
    EXPECT_EQ(r.height, 128);
    EXPECT_EQ(r.width, 192);
  }
  // Below min_pixels: 192x256 -> 6*32 x 8*32 = 49152 < 65536, beta = sqrt(4/3):
  // ceil(192*1.1547/32) = 7, ceil(256*1.1547/32) = 10.
  {
    ResizeResult r = smart_resize(192, 256, 32, 65536, 16777216);
    EXPECT_EQ(r.height, 224);
    EXPECT_EQ(r.width, 320);
  }
  // Plain rounding: 250/32 = 7.81 -> 8, 450/32 = 14.06 -> 14.
  {
    ResizeResult r = smart_resize(250, 450, 32, 65536, 16777216);
    EXPECT_EQ(r.height, 256);
    EXPECT_EQ(r.width, 448);
  }
  // Above max_pixels: 4000x3008 > 1e6, beta = sqrt(12) = 3.4641: floor(36.08) = 36, floor(27.06) = 27.
  {
    ResizeResult r = smart_resize(4000, 3000, 32, 65536, 1000000);
    EXPECT_EQ(r.height, 36 * 32);
    EXPECT_EQ(r.width, 27 * 32);
  }
  // 1 x 200 (aspect exactly 200 is allowed): h rounds to 0, so the min branch: beta = sqrt(65536/200),
  // ceil(18.1/32) = 1, ceil(3620.4/32) = 114.
  {
    ResizeResult r = smart_resize(1, 200, 32, 65536, 16777216);
    EXPECT_EQ(r.height, 32);
    EXPECT_EQ(r.width, 114 * 32);
  }
  // The max(factor, ...) guard: 20x4000 rounds to 32x4000 > 10000, beta = sqrt(8):
  // floor(20/2.83/32) = 0 -> kept at 32, floor(4000/2.83/32) = 44.
  {
    ResizeResult r = smart_resize(20, 4000, 32, 0, 10000);
    EXPECT_EQ(r.height, 32);
    EXPECT_EQ(r.width, 44 * 32);
  }
}

TEST(SmartResize, Errors) {
  expect_error([] { smart_resize(1, 201, 32, 65536, 16777216); }, ErrorKind::kInvalidArgument, {}, "1x201");
  expect_error([] { smart_resize(201, 1, 32, 65536, 16777216); }, ErrorKind::kInvalidArgument, {}, "201x1");
  expect_error([] { smart_resize(200, 40001, 32, 65536, 16777216); }, ErrorKind::kInvalidArgument, {}, "200x40001");
  EXPECT_NO_THROW(smart_resize(200, 40000, 32, 65536, 16777216));
  expect_error([] { smart_resize(0, 100, 32, 65536, 16777216); }, ErrorKind::kInvalidArgument, {}, "zero h");
  expect_error([] { smart_resize(100, 0, 32, 65536, 16777216); }, ErrorKind::kInvalidArgument, {}, "zero w");
  expect_error([] { smart_resize(-5, 100, 32, 65536, 16777216); }, ErrorKind::kInvalidArgument, {}, "negative");
  expect_error([] { smart_resize(100, 100, 0, 65536, 16777216); }, ErrorKind::kInvalidArgument, {}, "factor 0");
  // 16/32 = 0.5 rounds to 0 and min_pixels 0 does not push it back up: an empty result.
  expect_error([] { smart_resize(16, 16, 32, 0, 16777216); }, ErrorKind::kInvalidArgument, {}, "empty result");
}

TEST(SmartResize, MatchesPythonFormulaTable) {
  const json t = load_json(images_dir() + "/smart_resize.json");
  size_t n = 0, errors = 0;
  for (const json& c : t["cases"]) {
    const int64_t h = c[0], w = c[1], f = c[2], mn = c[3], mx = c[4];
    const std::string what = "h=" + std::to_string(h) + " w=" + std::to_string(w) + " f=" + std::to_string(f) +
                             " min=" + std::to_string(mn) + " max=" + std::to_string(mx);
    if (c[5].is_null()) {
      expect_error([&] { smart_resize(h, w, f, mn, mx); }, ErrorKind::kInvalidArgument, {}, what);
      ++errors;
    } else {
      const ResizeResult r = smart_resize(h, w, f, mn, mx);
      EXPECT_EQ(r.height, c[5].get<int64_t>()) << what;
      EXPECT_EQ(r.width, c[6].get<int64_t>()) << what;
    }
    ++n;
  }
  EXPECT_GT(n, 2000u);
  EXPECT_GT(errors, 10u);
}

// ---------------------------------------------------------------------------------------- resize

TEST(Resize, MatchesPillowBicubic) {
  const json m = load_json(images_dir() + "/resize/manifest.json");
  size_t cases = 0;
  for (const json& c : m["cases"]) {
    const Image src = load_image_file(images_dir() + "/resize/" + c["source"].get<std::string>());
    const int w = c["width"], h = c["height"];
    const std::string expected = read_file(images_dir() + "/resize/" + c["expected"].get<std::string>());
    const Image out = resize_bicubic(src, w, h);
    ASSERT_EQ(out.width, w);
    ASSERT_EQ(out.height, h);
    ASSERT_EQ(out.rgb.size(), expected.size()) << c["expected"];
    size_t differ = 0;
    int max_diff = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
      const int d = std::abs(int(out.rgb[i]) - int(uint8_t(expected[i])));
      if (d) ++differ;
      max_diff = std::max(max_diff, d);
    }
    EXPECT_EQ(differ, 0u) << src.width << "x" << src.height << " -> " << w << "x" << h << ": max diff " << max_diff;
    ++cases;
  }
  EXPECT_GE(cases, 30u);
}

TEST(Resize, SameSizeIsIdentityAndBadSizesThrow) {
  Image img;
  img.width = 5;
  img.height = 4;
  img.rgb.resize(60);
  for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = uint8_t(i * 37);
  const Image same = resize_bicubic(img, 5, 4);
  EXPECT_EQ(same.rgb, img.rgb);
  expect_error([&] { resize_bicubic(img, 0, 4); }, ErrorKind::kInvalidArgument, {}, "zero width");
  expect_error([&] { resize_bicubic(img, 3, -1); }, ErrorKind::kInvalidArgument, {}, "negative height");
  Image bad = img;
  bad.rgb.pop_back();
  expect_error([&] { resize_bicubic(bad, 3, 3); }, ErrorKind::kInvalidArgument, {}, "malformed source");
}

TEST(Resize, ConstantImageStaysConstant) {
  Image img;
  img.width = 13;
  img.height = 9;
  img.rgb.assign(13 * 9 * 3, 0);
  for (size_t i = 0; i < img.rgb.size(); i += 3) img.rgb[i] = 200, img.rgb[i + 1] = 0, img.rgb[i + 2] = 255;
  for (auto [w, h] : {std::pair{1, 1}, {5, 3}, {40, 27}, {13, 30}, {100, 2}}) {
    const Image out = resize_bicubic(img, w, h);
    for (size_t i = 0; i < out.rgb.size(); i += 3) {
      ASSERT_EQ(out.rgb[i], 200);
      ASSERT_EQ(out.rgb[i + 1], 0);
      ASSERT_EQ(out.rgb[i + 2], 255);
    }
  }
}

// -------------------------------------------------------------------------------------- decoders

TEST(Decode, AllFormatsMatchPillow) {
  const json m = load_json(images_dir() + "/decode/manifest.json");
  std::vector<std::string> formats_seen;
  for (const json& c : m["cases"]) {
    const std::string name = c["name"];
    const Image img = load_image_file(images_dir() + "/decode/" + c["file"].get<std::string>());
    const std::string expected = read_file(images_dir() + "/decode/" + name + ".rgb");
    ASSERT_EQ(img.width, c["width"].get<int>()) << name;
    ASSERT_EQ(img.height, c["height"].get<int>()) << name;
    ASSERT_EQ(img.rgb.size(), expected.size()) << name;
    const int tol = c["tolerance"];
    size_t differ = 0;
    int max_diff = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
      const int d = std::abs(int(img.rgb[i]) - int(uint8_t(expected[i])));
      if (d) ++differ;
      max_diff = std::max(max_diff, d);
    }
    EXPECT_LE(max_diff, tol) << name << ": " << differ << " values differ";
    if (tol > 0)
      std::cout << "[decode] " << name << ": max diff " << max_diff << " (tolerance " << tol << "), " << differ
                << " values differ\n";
    // decode_image on the bytes gives the same as load_image_file.
    const std::string bytes = read_file(images_dir() + "/decode/" + c["file"].get<std::string>());
    EXPECT_EQ(decode_bytes(bytes).rgb, img.rgb) << name;
  }
  EXPECT_GE(m["cases"].size(), 40u);
}

TEST(Decode, SniffsByMagicNotExtension) {
  // A PNG saved under a .jpg name decodes as PNG.
  const std::string png = read_file(images_dir() + "/decode/png_rgb8.png");
  const std::string path = test::temp_dir() + "/actually_png.jpg";
  test::write_file(path, png);
  EXPECT_EQ(load_image_file(path).rgb, decode_bytes(png).rgb);
}

// --------------------------------------------------------------------------------- bad input

std::vector<std::string> decode_case_files() {
  const json m = load_json(images_dir() + "/decode/manifest.json");
  std::vector<std::string> files;
  for (const json& c : m["cases"]) files.push_back(c["file"]);
  return files;
}

TEST(DecodeBad, EmptyAndRandomData) {
  expect_error([] { decode_image(nullptr, 0); }, ErrorKind::kInvalidFile, {}, "null");
  const uint8_t one = 0;
  expect_error([&] { decode_image(&one, 0); }, ErrorKind::kInvalidFile, {}, "zero bytes");
  std::mt19937 gen(1234);
  for (int trial = 0; trial < 50; ++trial) {
    std::string bytes(1 + gen() % 4000, '\0');
    for (char& ch : bytes) ch = char(gen());
    if (bytes[0] == 'B' && bytes[1] == 'M') bytes[0] = 'X';
    expect_error([&] { decode_bytes(bytes); }, ErrorKind::kUnsupported, {}, "random bytes");
  }
  const std::string msg =
      expect_error([] { decode_bytes(std::string("II*\0garbage garbage", 19)); }, ErrorKind::kUnsupported, {}, "tiff");
  EXPECT_NE(msg.find("TIFF"), std::string::npos) << msg;
  const std::string empty_path = test::temp_dir() + "/empty.png";
  test::write_file(empty_path, "");
  expect_error([&] { load_image_file(empty_path); }, ErrorKind::kInvalidFile, {}, "empty file");
  expect_error([] { load_image_file("/nonexistent/dir/image.png"); }, ErrorKind::kNotFound, {}, "missing file");
}

TEST(DecodeBad, MagicFollowedByGarbage) {
  const char* magics[] = {"\xff\xd8\xff", "\x89PNG\r\n\x1a\n", "GIF89a", "GIF87a", "BM", "RIFF\x10\0\0\0WEBP"};
  std::mt19937 gen(99);
  for (const char* magic : magics) {
    const size_t n = magic[0] == 'R' ? 12 : std::strlen(magic);
    for (int trial = 0; trial < 20; ++trial) {
      std::string bytes(magic, n);
      const size_t extra = gen() % 300;
      for (size_t i = 0; i < extra; ++i) bytes.push_back(char(gen()));
      try {
        decode_bytes(bytes);
        // Success is possible only in theory (random bytes forming a valid image).
      } catch (const Error& e) {
        EXPECT_TRUE(e.kind() == ErrorKind::kInvalidFile || e.kind() == ErrorKind::kUnsupported ||
                    e.kind() == ErrorKind::kLimitExceeded)
            << e.what();
      }
    }
  }
}

TEST(DecodeBad, TruncatedFilesOfEveryFormatFail) {
  for (const std::string& file : decode_case_files()) {
    const std::string bytes = read_file(images_dir() + "/decode/" + file);
    const bool animated = file.find("animated") != std::string::npos;
    for (size_t cut : {size_t(1), size_t(3), size_t(8), size_t(13), size_t(20), size_t(40), bytes.size() / 4,
                       bytes.size() / 2, bytes.size() * 3 / 4}) {
      // An animated GIF cut after its first frame still decodes (only that frame is read).
      if (cut >= bytes.size() || (animated && cut >= bytes.size() / 2)) continue;
      const std::string part = bytes.substr(0, cut);
      const std::string ctx = file + " cut at " + std::to_string(cut) + " of " + std::to_string(bytes.size());
      try {
        decode_bytes(part);
        ADD_FAILURE() << ctx << ": decoded a truncated file";
      } catch (const Error& e) {
        EXPECT_TRUE(e.kind() == ErrorKind::kInvalidFile || e.kind() == ErrorKind::kUnsupported) << ctx << ": "
                                                                                                << e.what();
      }
    }
  }
}

// Every prefix and many random corruptions: the decoders must fail cleanly (qvl::Error) or decode;
// never crash, hang or leak (run under -DQVL_SANITIZE=ON to check the last two).
TEST(DecodeBad, PrefixesAndCorruptionsNeverCrash) {
  std::mt19937 gen(4321);
  size_t ok = 0, failed = 0;
  for (const std::string& file : decode_case_files()) {
    const std::string bytes = read_file(images_dir() + "/decode/" + file);
    const size_t step = std::max<size_t>(1, bytes.size() / 150);
    for (size_t cut = 0; cut < bytes.size(); cut += step) {
      try {
        decode_bytes(bytes.substr(0, cut));
        ++ok;
      } catch (const Error&) {
        ++failed;
      }
    }
    for (int trial = 0; trial < 30; ++trial) {
      std::string b = bytes;
      const int flips = 1 + int(gen() % 8);
      for (int k = 0; k < flips; ++k) b[gen() % b.size()] = char(gen());
      try {
        const Image img = decode_bytes(b);
        EXPECT_EQ(img.rgb.size(), size_t(img.width) * img.height * 3);
        ++ok;
      } catch (const Error&) {
        ++failed;
      }
    }
  }
  EXPECT_GT(failed, 1000u);
  std::cout << "[fuzz] " << ok << " decoded, " << failed << " rejected\n";
}

uint32_t crc32_of(const std::string& bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char ch : bytes) {
    crc ^= ch;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string be32(uint32_t v) {
  return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}

std::string png_chunk(const std::string& type, const std::string& data) {
  return be32(uint32_t(data.size())) + type + data + be32(crc32_of(type + data));
}

std::string png_header_only(uint32_t w, uint32_t h) {
  std::string ihdr = be32(w) + be32(h) + std::string("\x08\x02\x00\x00\x00", 5);
  // A tiny valid zlib stream (one empty stored block) so only the size can be wrong.
  const std::string idat("\x78\x01\x01\x00\x00\xff\xff\x00\x00\x00\x01", 11);
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) + png_chunk("IDAT", idat) +
         png_chunk("IEND", "");
}

TEST(DecodeBad, HugePngHeaderFailsFastBeforeAllocating) {
  EXPECT_EQ(crc32_of("IEND"), 0xAE426082u);  // the CRC every PNG ends with
  const std::string png = png_header_only(100000, 100000);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string msg = expect_error([&] { decode_bytes(png); }, ErrorKind::kLimitExceeded, {}, "100000x100000");
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(msg.find("100000x100000"), std::string::npos) << msg;
  EXPECT_NE(msg.find("65500"), std::string::npos) << msg;
  EXPECT_LT(ms, 50.0);
  // Inside the side limit but above the pixel limit (Pillow's decompression-bomb threshold).
  const std::string msg2 =
      expect_error([&] { decode_bytes(png_header_only(20000, 20000)); }, ErrorKind::kLimitExceeded, {}, "20000^2");
  EXPECT_NE(msg2.find("400000000"), std::string::npos) << msg2;
  EXPECT_NE(msg2.find("178956970"), std::string::npos) << msg2;
  // The same file with the size within limits but no pixel data is corrupt, not over a limit.
  expect_error([&] { decode_bytes(png_header_only(64, 64)); }, ErrorKind::kInvalidFile, {}, "no pixel data");
  // A zero width is corrupt.
  expect_error([&] { decode_bytes(png_header_only(0, 10)); }, ErrorKind::kInvalidFile, {}, "zero width");
}

TEST(DecodeBad, EveryFormatChecksLimitsBeforeDecoding) {
  ImageLimits tight;
  tight.max_pixels = 100;  // every test image is 37x29 = 1073 pixels
  for (const std::string& file : decode_case_files()) {
    const std::string bytes = read_file(images_dir() + "/decode/" + file);
    const std::string msg = expect_error([&] { decode_bytes(bytes, tight); }, ErrorKind::kLimitExceeded, {}, file);
    EXPECT_NE(msg.find("above the limit of 100 pixels"), std::string::npos) << file << ": " << msg;
  }
  ImageLimits narrow;
  narrow.max_side = 30;
  for (const std::string& file : decode_case_files()) {
    const std::string bytes = read_file(images_dir() + "/decode/" + file);
    expect_error([&] { decode_bytes(bytes, narrow); }, ErrorKind::kLimitExceeded, {}, file);
  }
  ImageLimits small_file;
  small_file.max_file_bytes = 10;
  const std::string path = images_dir() + "/decode/png_rgb8.png";
  expect_error([&] { load_image_file(path, small_file); }, ErrorKind::kLimitExceeded, {}, "file bytes");
  expect_error([&] { decode_bytes(read_file(path), small_file); }, ErrorKind::kLimitExceeded, {}, "data bytes");
}

void put_le32(std::string& b, size_t at, uint32_t v) {
  for (int k = 0; k < 4; ++k) b[at + k] = char(v >> (8 * k));
}

TEST(DecodeBad, BmpWithLyingHeaders) {
  const std::string good = read_file(images_dir() + "/decode/bmp_rgb24.bmp");
  ASSERT_NO_THROW(decode_bytes(good));
  {
    std::string b = good;  // pixel offset far past the end
    put_le32(b, 10, 0xFFFFFF00u);
    const std::string msg = expect_error([&] { decode_bytes(b); }, ErrorKind::kInvalidFile, {}, "offset past end");
    EXPECT_NE(msg.find("offset"), std::string::npos) << msg;
  }
  {
    std::string b = good;  // pixel offset leaving too few bytes for the rows
    put_le32(b, 10, uint32_t(good.size() - 100));
    const std::string msg = expect_error([&] { decode_bytes(b); }, ErrorKind::kInvalidFile, {}, "offset near end");
    EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  }
  {
    std::string b = good;  // pixel offset inside the headers
    put_le32(b, 10, 20);
    expect_error([&] { decode_bytes(b); }, ErrorKind::kInvalidFile, {}, "offset inside header");
  }
  {
    std::string b = good;  // info header larger than the file
    put_le32(b, 14, 124);
    b.resize(60);
    expect_error([&] { decode_bytes(b); }, ErrorKind::kInvalidFile, {}, "header past end");
  }
  {
    std::string b = good;  // unknown info header size
    put_le32(b, 14, 0x7FFFFFFF);
    expect_error([&] { decode_bytes(b); }, ErrorKind::kUnsupported, {}, "huge header size");
  }
  {
    std::string b = good;  // width and height far beyond the data (and the limits)
    put_le32(b, 18, 1000000000u);
    expect_error([&] { decode_bytes(b); }, ErrorKind::kLimitExceeded, {}, "huge width");
    put_le32(b, 18, 5000);
    put_le32(b, 22, 5000);
    expect_error([&] { decode_bytes(b); }, ErrorKind::kInvalidFile, {}, "height beyond data");
    put_le32(b, 18, uint32_t(-37));
    expect_error([&] { decode_bytes(b); }, ErrorKind::kInvalidFile, {}, "negative width");
    put_le32(b, 18, 37);
    put_le32(b, 22, 0x80000000u);  // INT32_MIN height
    expect_error([&] { decode_bytes(b); }, ErrorKind::kLimitExceeded, {}, "INT32_MIN height");
  }
  {
    std::string b = good;  // RLE compression
    put_le32(b, 30, 1);
    expect_error([&] { decode_bytes(b); }, ErrorKind::kUnsupported, {}, "RLE");
  }
  {
    std::string b = read_file(images_dir() + "/decode/bmp_palette8.bmp");
    put_le32(b, 46, 0x7FFFFFFF);  // colours used: absurd
    expect_error([&] { decode_bytes(b); }, ErrorKind::kInvalidFile, {}, "absurd palette");
    put_le32(b, 46, 65536);  // large but allowed: the palette then runs past the pixel data / file
    try {
      decode_bytes(b);
    } catch (const Error& e) {
      EXPECT_EQ(int(e.kind()), int(ErrorKind::kInvalidFile)) << e.what();
    }
  }
}

TEST(DecodeBad, OtherFormatsDeclaringHugeSizes) {
  {  // GIF logical screen 65535x65535
    std::string b = read_file(images_dir() + "/decode/gif_basic.gif");
    b[6] = b[7] = b[8] = b[9] = char(0xFF);
    expect_error([&] { decode_bytes(b); }, ErrorKind::kLimitExceeded, {}, "gif screen");
  }
  {  // JPEG SOF claiming 65000x65000
    std::string b = read_file(images_dir() + "/decode/jpeg_baseline.jpg");
    size_t sof = std::string::npos;
    for (size_t i = 2; i + 9 < b.size(); ++i)
      if (uint8_t(b[i]) == 0xFF && uint8_t(b[i + 1]) == 0xC0) {
        sof = i;
        break;
      }
    ASSERT_NE(sof, std::string::npos);
    b[sof + 5] = char(0xFD), b[sof + 6] = char(0xE8);  // height 65000
    b[sof + 7] = char(0xFD), b[sof + 8] = char(0xE8);  // width 65000
    const std::string msg = expect_error([&] { decode_bytes(b); }, ErrorKind::kLimitExceeded, {}, "jpeg sof");
    EXPECT_NE(msg.find("65000x65000"), std::string::npos) << msg;
  }
  {  // WebP (simple lossy): VP8 frame header 16383x16383
    std::string b = read_file(images_dir() + "/decode/webp_lossy.webp");
    ASSERT_EQ(b.substr(12, 4), "VP8 ");
    ASSERT_EQ(uint8_t(b[23]), 0x9D);
    b[26] = char(0xFF), b[27] = char(0x3F);
    b[28] = char(0xFF), b[29] = char(0x3F);
    expect_error([&] { decode_bytes(b); }, ErrorKind::kLimitExceeded, {}, "webp size");
  }
}

// ------------------------------------------------------------------------------ configuration

TEST(PreprocessorConfig, TinyModelAndDefaults) {
  const PreprocessorConfig c = load_preprocessor_config(test::tiny_model_dir());
  EXPECT_EQ(c.patch_size, 16);
  EXPECT_EQ(c.temporal_patch_size, 2);
  EXPECT_EQ(c.merge_size, 2);
  EXPECT_EQ(c.min_pixels, 65536);
  EXPECT_EQ(c.max_pixels, 16777216);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c.image_mean[i], 0.5f);
    EXPECT_EQ(c.image_std[i], 0.5f);
  }
  EXPECT_EQ(c.rescale_factor, 1.0 / 255);
  const PreprocessorConfig d = load_preprocessor_config(test::temp_dir() + "/no_such_model");
  EXPECT_EQ(d.min_pixels, 65536);
  EXPECT_EQ(d.patch_size, 16);
}

TEST(PreprocessorConfig, KeyVariants) {
  // Qwen2-VL style: top-level min/max_pixels override size (as in HF).
  PreprocessorConfig c = parse_preprocessor_config(
      R"({"min_pixels": 3136, "max_pixels": 12845056, "size": {"min_pixels": 1, "max_pixels": 2},
          "patch_size": 14, "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": 0.25,
          "rescale_factor": 0.00392156862745098})",
      "cfg");
  EXPECT_EQ(c.min_pixels, 3136);
  EXPECT_EQ(c.max_pixels, 12845056);
  EXPECT_EQ(c.patch_size, 14);
  EXPECT_EQ(c.image_mean[0], 0.48145466f);
  EXPECT_EQ(c.image_std[2], 0.25f);
  EXPECT_EQ(c.rescale_factor, 0.00392156862745098);
  c = parse_preprocessor_config(R"({"size": {"min_pixels": 100, "max_pixels": 2000}})", "cfg");
  EXPECT_EQ(c.min_pixels, 100);
  EXPECT_EQ(c.max_pixels, 2000);
  c = parse_preprocessor_config(R"({"size": {"shortest_edge": 10, "longest_edge": 20}, "merge_size": 1})", "cfg");
  EXPECT_EQ(c.min_pixels, 10);
  EXPECT_EQ(c.max_pixels, 20);
  EXPECT_EQ(c.merge_size, 1);
  c = parse_preprocessor_config(R"({"image_processor_type": "Qwen2VLImageProcessorFast"})", "cfg");
  EXPECT_EQ(c.max_pixels, 16777216);
}

TEST(PreprocessorConfig, MalformedThrows) {
  const char* bad[] = {
      "{not json",
      "[1, 2, 3]",
      R"({"patch_size": "16"})",
      R"({"patch_size": 0})",
      R"({"patch_size": 16.5})",
      R"({"merge_size": -2})",
      R"({"temporal_patch_size": 0})",
      R"({"size": 5})",
      R"({"size": {"height": 224, "width": 224}})",
      R"({"size": {"shortest_edge": 100}})",
      R"({"size": {"shortest_edge": 1000, "longest_edge": 10}})",
      R"({"max_pixels": 0})",
      R"({"image_mean": [0.5, 0.5]})",
      R"({"image_mean": "0.5"})",
      R"({"image_std": [0.5, 0, 0.5]})",
      R"({"rescale_factor": -1})",
      R"({"rescale_factor": "x"})",
  };
  for (const char* text : bad)
    expect_error([&] { parse_preprocessor_config(text, "preprocessor_config.json"); }, ErrorKind::kInvalidFile, {},
                 text);
  // Through the file loader too; the message names the file.
  const std::string dir = test::temp_dir() + "/bad_model";
  std::filesystem::create_directories(dir);
  test::write_file(dir + "/preprocessor_config.json", R"({"patch_size": [16]})");
  const std::string msg = expect_error([&] { load_preprocessor_config(dir); }, ErrorKind::kInvalidFile, {}, "file");
  EXPECT_NE(msg.find("preprocessor_config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("patch_size"), std::string::npos) << msg;
}

// ------------------------------------------------------------------------------ preprocessing

TEST(Preprocess, MatchesHfReferenceForOtherConfigs) {
  const json m = load_json(images_dir() + "/preprocess/manifest.json");
  for (const json& c : m["cases"]) {
    const std::string name = c["name"];
    const PreprocessorConfig cfg = load_preprocessor_config(images_dir() + "/preprocess/" + c["config_dir"].get<std::string>());
    const Image img = load_image_file(images_dir() + "/preprocess/" + c["image"].get<std::string>());
    const PixelValues pv = preprocess_image(img, cfg);
    EXPECT_EQ(pv.grid_t, c["grid_thw"][0].get<int64_t>()) << name;
    EXPECT_EQ(pv.grid_h, c["grid_thw"][1].get<int64_t>()) << name;
    EXPECT_EQ(pv.grid_w, c["grid_thw"][2].get<int64_t>()) << name;
    EXPECT_EQ(pv.rows, c["shape"][0].get<int64_t>()) << name;
    EXPECT_EQ(pv.cols, c["shape"][1].get<int64_t>()) << name;
    const std::vector<float> ref = test::read_f32(images_dir() + "/preprocess/" + c["pixel_values"].get<std::string>());
    ASSERT_EQ(pv.data.size(), ref.size()) << name;
    size_t differ = 0;
    for (size_t i = 0; i < ref.size(); ++i) differ += pv.data[i] != ref[i];
    EXPECT_LE(test::max_abs_diff(pv.data, ref), 1e-6f) << name;
    EXPECT_EQ(differ, 0u) << name;
  }
}

// The patch layout restated independently of the reference data: element (row, col) of the output
// comes from pixel (y, x), channel c, where row -> (merge block, position in block) and
// col -> (c, t, py, px).
TEST(Preprocess, PatchLayout) {
  PreprocessorConfig cfg;
  cfg.patch_size = 4;
  cfg.merge_size = 2;
  cfg.temporal_patch_size = 3;
  cfg.min_pixels = 0;
  cfg.max_pixels = 1 << 20;
  cfg.image_mean[0] = 0.f, cfg.image_mean[1] = 0.f, cfg.image_mean[2] = 0.f;
  cfg.image_std[0] = 1.f, cfg.image_std[1] = 1.f, cfg.image_std[2] = 1.f;
  cfg.rescale_factor = 1.0;  // values stay the raw bytes
  Image img;
  img.width = 24;  // 6 patches = 3 merge blocks across
  img.height = 16; // 4 patches = 2 merge blocks down
  img.rgb.resize(24 * 16 * 3);
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 24; ++x)
      for (int c = 0; c < 3; ++c) img.rgb[(y * 24 + x) * 3 + c] = uint8_t(y * 7 + x * 3 + c * 50);
  const PixelValues pv = preprocess_image(img, cfg);
  ASSERT_EQ(pv.grid_t, 1);
  ASSERT_EQ(pv.grid_h, 4);
  ASSERT_EQ(pv.grid_w, 6);
  ASSERT_EQ(pv.rows, 24);
  ASSERT_EQ(pv.cols, 3 * 3 * 4 * 4);
  for (int64_t row = 0; row < pv.rows; ++row) {
    const int64_t block = row / 4, in_block = row % 4;
    const int64_t ph = (block / 3) * 2 + in_block / 2, pw = (block % 3) * 2 + in_block % 2;
    for (int64_t col = 0; col < pv.cols; ++col) {
      const int64_t c = col / 48, py = (col % 16) / 4, px = col % 4;
      const int64_t y = ph * 4 + py, x = pw * 4 + px;
      ASSERT_EQ(pv.data[row * pv.cols + col], float(img.rgb[(y * 24 + x) * 3 + c])) << row << "," << col;
    }
  }
}

TEST(Preprocess, RejectsBadImages) {
  PreprocessorConfig cfg;
  Image strip;
  strip.width = 300;
  strip.height = 1;
  strip.rgb.assign(900, 128);
  expect_error([&] { preprocess_image(strip, cfg); }, ErrorKind::kInvalidArgument, {}, "aspect 300:1");
  Image empty;
  expect_error([&] { preprocess_image(empty, cfg); }, ErrorKind::kInvalidArgument, {}, "empty image");
  Image ok;
  ok.width = 10;
  ok.height = 10;
  ok.rgb.assign(300, 7);
  PixelValues pv = preprocess_image(ok, cfg);  // upscaled to min_pixels: 256x256
  EXPECT_EQ(pv.grid_h, 16);
  EXPECT_EQ(pv.grid_w, 16);
  const float expect = (float(7 * (1.0 / 255)) - 0.5f) / 0.5f;
  for (float v : pv.data) ASSERT_EQ(v, expect);
}

}  // namespace
}  // namespace qvl
