// The Qwen3-VL vision tower: golden vision/DeepStack embeddings of the tiny checkpoint, the
// tensor audit, per-image independence, many random grids, component checks and bad inputs.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "core/check.h"
#include "core/thread_pool.h"
#include "formats/checkpoint.h"
#include "formats/model_config.h"
#include "formats/safetensors.h"
#include "model/vision/span_attention.h"
#include "model/vision/vision_encoder.h"
#include "model/vision/vision_internal.h"
#include "test_util.h"

namespace qvl {
namespace {

constexpr double kGoldenTolerance = 5e-5;  // max_abs_err / max|ref|, as the official checker
// Same computation, different batching or threads: only rounding may differ (kernels may block
// rows differently); leaking attention across images would be off by O(1).
constexpr float kSameMathTolerance = 1e-5f;

struct Tower {
  ModelConfig config;
  std::unique_ptr<Checkpoint> ckpt;
  std::unique_ptr<VisionEncoder> encoder;
};

Tower& tiny_tower() {
  static Tower t = [] {
    Tower x;
    x.config = load_model_config(test::tiny_model_dir());
    x.ckpt = Checkpoint::open(test::tiny_model_dir());
    x.encoder = std::make_unique<VisionEncoder>(*x.config.vision, *x.ckpt);
    return x;
  }();
  return t;
}

int64_t grid_rows(const std::vector<GridTHW>& grids) {
  int64_t n = 0;
  for (const GridTHW& g : grids) n += g.t * g.h * g.w;
  return n;
}

std::vector<float> random_pixels(int64_t rows, int64_t width, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(rows * width));
  for (float& x : v) x = dist(rng);
  return v;
}

int64_t row_width(const VisionConfig& c) { return c.in_channels * c.temporal_patch_size * c.patch_size * c.patch_size; }

double rel_err(const std::vector<float>& got, const std::vector<float>& ref) {
  return static_cast<double>(test::max_abs_diff(got, ref)) / static_cast<double>(test::max_abs(ref));
}

bool all_finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

using test::expect_error;

// ---------------------------------------------------------------- golden

class VisionGolden : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(VisionGolden, EmbedsAndDeepstackMatch) {
  const auto& [name, threads] = GetParam();
  Tower& t = tiny_tower();
  const std::string base = test::golden_dir() + "/" + name;
  auto j = nlohmann::json::parse(test::read_file(base + ".json"));
  std::vector<GridTHW> grids;
  for (const auto& g : j["image_grid_thw"])
    grids.push_back({g[0].get<int64_t>(), g[1].get<int64_t>(), g[2].get<int64_t>()});
  const std::vector<float> pixels = test::read_f32(base + ".pixel_values.f32.bin");
  const int64_t width = row_width(*t.config.vision);
  ASSERT_EQ(static_cast<int64_t>(pixels.size()) % width, 0);
  const int64_t rows = static_cast<int64_t>(pixels.size()) / width;

  ThreadPool pool(threads);
  const VisionOutput out = t.encoder->encode(pixels.data(), rows, grids, &pool);

  const std::vector<float> ref = test::read_f32(base + ".vision_embeds.f32.bin");
  EXPECT_EQ(out.hidden, t.config.vision->out_hidden_size);
  EXPECT_EQ(out.tokens * out.hidden, static_cast<int64_t>(ref.size()));
  ASSERT_EQ(out.embeds.size(), ref.size());
  const double e = rel_err(out.embeds, ref);
  std::printf("[ golden ] %s threads=%d vision_embeds rel err %.3g\n", name.c_str(), threads, e);
  EXPECT_LE(e, kGoldenTolerance) << "vision_embeds";

  ASSERT_EQ(out.deepstack.size(), t.config.vision->deepstack_visual_indexes.size());
  for (size_t k = 0; k < out.deepstack.size(); ++k) {
    const std::vector<float> dref = test::read_f32(base + ".deepstack" + std::to_string(k) + ".f32.bin");
    ASSERT_EQ(out.deepstack[k].size(), dref.size());
    const double de = rel_err(out.deepstack[k], dref);
    std::printf("[ golden ] %s threads=%d deepstack%zu rel err %.3g\n", name.c_str(), threads, k, de);
    EXPECT_LE(de, kGoldenTolerance) << "deepstack" << k;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, VisionGolden,
                         ::testing::Combine(::testing::Values("b_one_image", "c_two_images"), ::testing::Values(1, 3)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_t" + std::to_string(std::get<1>(info.param));
                         });

// The fast mode: the tower with bf16 attention stays within the loose golden tolerance (the
// checker's --loose, 5e-2 of max |ref|) of the references and of its own f32 mode, and is not
// the f32 mode (its roundings show). Measured on the fixtures: 1.1e-3 and 1.8e-3.
constexpr double kLooseGoldenTolerance = 5e-2;

TEST(VisionGoldenBf16, EmbedsWithinTheLooseTolerance) {
  Tower& t = tiny_tower();
  VisionEncoder bf16(*t.config.vision, *t.ckpt, kernels::WeightFormat::kDense, nullptr,
                     kernels::AttentionPrecision::kBF16);
  EXPECT_EQ(bf16.attention_precision(), kernels::AttentionPrecision::kBF16);
  ThreadPool pool(2);
  for (const std::string name : {"b_one_image", "c_two_images"}) {
    const std::string base = test::golden_dir() + "/" + name;
    auto j = nlohmann::json::parse(test::read_file(base + ".json"));
    std::vector<GridTHW> grids;
    for (const auto& g : j["image_grid_thw"])
      grids.push_back({g[0].get<int64_t>(), g[1].get<int64_t>(), g[2].get<int64_t>()});
    const std::vector<float> pixels = test::read_f32(base + ".pixel_values.f32.bin");
    const int64_t rows = static_cast<int64_t>(pixels.size()) / row_width(*t.config.vision);
    const VisionOutput fast = bf16.encode(pixels.data(), rows, grids, &pool);
    const VisionOutput ref = t.encoder->encode(pixels.data(), rows, grids, &pool);
    const double e = rel_err(fast.embeds, test::read_f32(base + ".vision_embeds.f32.bin"));
    const double e32 = rel_err(fast.embeds, ref.embeds);
    std::printf("[ bf16 ] %s vision_embeds rel err %.3g vs golden, %.3g vs the f32 mode\n", name.c_str(), e, e32);
    EXPECT_LE(e, kLooseGoldenTolerance);
    EXPECT_LE(e32, kLooseGoldenTolerance);
    EXPECT_GT(e32, 0.0);
    for (size_t k = 0; k < fast.deepstack.size(); ++k) {
      const double de = rel_err(fast.deepstack[k], test::read_f32(base + ".deepstack" + std::to_string(k) + ".f32.bin"));
      std::printf("[ bf16 ] %s deepstack%zu rel err %.3g\n", name.c_str(), k, de);
      EXPECT_LE(de, kLooseGoldenTolerance);
    }
  }
}

// ---------------------------------------------------------------- weights

TEST(VisionWeights, EveryVisualTensorIsConsumed) {
  ModelConfig config = load_model_config(test::tiny_model_dir());
  auto ckpt = Checkpoint::open(test::tiny_model_dir());
  size_t visual_before = 0;
  for (const std::string& n : ckpt->unused()) visual_before += n.rfind("model.visual.", 0) == 0;
  EXPECT_GT(visual_before, 50u);
  VisionEncoder enc(*config.vision, *ckpt);
  for (const std::string& n : ckpt->unused()) EXPECT_NE(n.rfind("model.visual.", 0), 0u) << n << " was not consumed";
  EXPECT_EQ(enc.weights().blocks.size(), 4u);
  EXPECT_EQ(enc.weights().deepstack_merger_list.size(), 2u);
  EXPECT_TRUE(enc.weights().deepstack_merger_list[0].postshuffle_norm);
  EXPECT_FALSE(enc.weights().merger.postshuffle_norm);
}

// Writes a copy of the tiny checkpoint's tensors (optionally dropping one and adding one) to a
// fresh folder and returns it.
std::string altered_checkpoint(const std::string& tag, const std::string& drop, const std::string& add_name) {
  SafetensorsFile src(test::tiny_model_dir() + "/model.safetensors");
  std::vector<TensorToWrite> tensors;
  for (const auto& [name, t] : src.tensors())
    if (name != drop) tensors.push_back({name, t.dtype, t.shape, t.data, t.nbytes});
  static const float extra[4] = {1, 2, 3, 4};
  if (!add_name.empty()) tensors.push_back({add_name, DType::kF32, {4}, extra, sizeof(extra)});
  const std::string dir = test::temp_dir() + "/vision_" + tag;
  std::filesystem::create_directories(dir);
  write_safetensors(dir + "/model.safetensors", tensors);
  return dir;
}

TEST(VisionWeights, StrayVisualTensorIsRefused) {
  ModelConfig config = load_model_config(test::tiny_model_dir());
  auto ckpt = Checkpoint::open(altered_checkpoint("stray", "", "model.visual.blocks.4.norm1.weight"));
  expect_error([&] { VisionEncoder enc(*config.vision, *ckpt); }, ErrorKind::kInvalidFile,
               {"model.visual.blocks.4.norm1.weight", "depth 4"});
}

TEST(VisionWeights, MissingTensorIsNamed) {
  ModelConfig config = load_model_config(test::tiny_model_dir());
  auto ckpt = Checkpoint::open(altered_checkpoint("missing", "model.visual.deepstack_merger_list.1.norm.bias", ""));
  expect_error([&] { VisionEncoder enc(*config.vision, *ckpt); }, ErrorKind::kInvalidFile,
               {"model.visual.deepstack_merger_list.1.norm.bias"});
}

TEST(VisionWeights, BadConfigIsRefused) {
  ModelConfig config = load_model_config(test::tiny_model_dir());
  auto ckpt = Checkpoint::open(test::tiny_model_dir());
  VisionConfig c = *config.vision;
  c.deepstack_visual_indexes = {0, 4};
  expect_error([&] { VisionEncoder enc(c, *ckpt); }, ErrorKind::kInvalidFile, {"deepstack_visual_indexes", "4"});
  c = *config.vision;
  c.num_heads = 3;
  expect_error([&] { VisionEncoder enc(c, *ckpt); }, ErrorKind::kInvalidFile, {"num_heads"});
  c = *config.vision;
  c.hidden_act = "relu";
  expect_error([&] { VisionEncoder enc(c, *ckpt); }, ErrorKind::kUnsupported, {"relu"});
}

// ---------------------------------------------------------------- properties

TEST(VisionEncoder, RandomGridsGiveTheRightTokenCountsAndFiniteValues) {
  Tower& t = tiny_tower();
  const VisionConfig& c = *t.config.vision;
  ThreadPool pool(3);
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> half_side(1, 12), frames(1, 2), images(1, 3);
  for (int iter = 0; iter < 24; ++iter) {
    std::vector<GridTHW> grids;
    const int n = images(rng);
    for (int i = 0; i < n; ++i) grids.push_back({frames(rng), 2 * half_side(rng), 2 * half_side(rng)});
    const int64_t rows = grid_rows(grids);
    const std::vector<float> px = random_pixels(rows, row_width(c), 100 + iter);
    const VisionOutput out = t.encoder->encode(px.data(), rows, grids, &pool);
    int64_t tokens = 0;
    for (const GridTHW& g : grids) tokens += g.t * g.h * g.w / 4;
    ASSERT_EQ(out.tokens, tokens) << "iteration " << iter;
    ASSERT_EQ(out.hidden, c.out_hidden_size);
    ASSERT_EQ(static_cast<int64_t>(out.embeds.size()), tokens * c.out_hidden_size);
    EXPECT_TRUE(all_finite(out.embeds));
    ASSERT_EQ(out.deepstack.size(), 2u);
    for (const auto& ds : out.deepstack) {
      ASSERT_EQ(ds.size(), out.embeds.size());
      EXPECT_TRUE(all_finite(ds));
    }
  }
}

// Encoding images together equals encoding each alone: attention never crosses images and
// every other step is per row.
TEST(VisionEncoder, ImagesInOneCallAreIndependent) {
  Tower& t = tiny_tower();
  const VisionConfig& c = *t.config.vision;
  ThreadPool pool(3);
  const std::vector<GridTHW> grids = {{1, 6, 10}, {2, 8, 4}, {1, 14, 12}};
  const int64_t rows = grid_rows(grids), width = row_width(c);
  const std::vector<float> px = random_pixels(rows, width, 7);
  const VisionOutput all = t.encoder->encode(px.data(), rows, grids, &pool);

  int64_t row = 0, token = 0;
  for (const GridTHW& g : grids) {
    const int64_t n = g.t * g.h * g.w, toks = n / 4, hid = all.hidden;
    const VisionOutput one = t.encoder->encode(px.data() + row * width, n, {g}, &pool);
    ASSERT_EQ(one.tokens, toks);
    auto slice = [&](const std::vector<float>& v) {
      return std::vector<float>(v.begin() + token * hid, v.begin() + (token + toks) * hid);
    };
    EXPECT_LE(test::max_abs_diff(one.embeds, slice(all.embeds)), kSameMathTolerance * test::max_abs(one.embeds));
    for (size_t k = 0; k < one.deepstack.size(); ++k)
      EXPECT_LE(test::max_abs_diff(one.deepstack[k], slice(all.deepstack[k])),
                kSameMathTolerance * test::max_abs(one.deepstack[k]));
    row += n;
    token += toks;
  }
}

// A video (t=2) of two identical frames gives each frame the same embeddings (same positions,
// each frame attends only to itself).
TEST(VisionEncoder, FramesAreSeparateSpans) {
  Tower& t = tiny_tower();
  const VisionConfig& c = *t.config.vision;
  const int64_t width = row_width(c), hw = 6 * 8;
  std::vector<float> frame = random_pixels(hw, width, 11);
  std::vector<float> video(frame);
  video.insert(video.end(), frame.begin(), frame.end());
  const VisionOutput v = t.encoder->encode(video.data(), 2 * hw, {{2, 6, 8}}, nullptr);
  const VisionOutput f = t.encoder->encode(frame.data(), hw, {{1, 6, 8}}, nullptr);
  ASSERT_EQ(v.tokens, 2 * f.tokens);
  const size_t n = f.embeds.size();
  const float tol = kSameMathTolerance * test::max_abs(f.embeds);
  EXPECT_LE(test::max_abs_diff(std::vector<float>(v.embeds.begin(), v.embeds.begin() + n), f.embeds), tol);
  EXPECT_LE(test::max_abs_diff(std::vector<float>(v.embeds.begin() + n, v.embeds.end()), f.embeds), tol);
}

TEST(VisionEncoder, ThreadCountDoesNotChangeResults) {
  Tower& t = tiny_tower();
  const std::vector<GridTHW> grids = {{1, 10, 14}, {1, 4, 4}};
  const int64_t rows = grid_rows(grids);
  const std::vector<float> px = random_pixels(rows, row_width(*t.config.vision), 3);
  const VisionOutput a = t.encoder->encode(px.data(), rows, grids, nullptr);
  ThreadPool pool(4);
  const VisionOutput b = t.encoder->encode(px.data(), rows, grids, &pool);
  EXPECT_LE(test::max_abs_diff(a.embeds, b.embeds), kSameMathTolerance * test::max_abs(a.embeds));
  for (size_t k = 0; k < a.deepstack.size(); ++k)
    EXPECT_LE(test::max_abs_diff(a.deepstack[k], b.deepstack[k]), kSameMathTolerance * test::max_abs(a.deepstack[k]));
}

TEST(VisionEncoder, NoImagesGiveAnEmptyOutput) {
  Tower& t = tiny_tower();
  const VisionOutput out = t.encoder->encode(nullptr, 0, {}, nullptr);
  EXPECT_EQ(out.tokens, 0);
  EXPECT_TRUE(out.embeds.empty());
  EXPECT_EQ(out.deepstack.size(), 2u);
}

TEST(VisionEncoder, BadInputsAreClearErrors) {
  Tower& t = tiny_tower();
  const int64_t width = row_width(*t.config.vision);
  const std::vector<float> px = random_pixels(64, width, 5);
  const VisionEncoder& enc = *t.encoder;
  expect_error([&] { enc.encode(px.data(), 60, {{1, 8, 8}}, nullptr); }, ErrorKind::kInvalidArgument, {"60 rows"});
  expect_error(
      [&] {
        enc.encode(px.data(), 64, {{1, 4, 8}}, nullptr);
      },
      ErrorKind::kInvalidArgument, {"64 rows", "32"});
  expect_error(
      [&] {
        enc.encode(px.data(), 63, {{1, 7, 9}}, nullptr);
      },
      ErrorKind::kInvalidArgument, {"h=7", "spatial_merge_size 2"});
  expect_error(
      [&] {
        enc.encode(px.data(), 64, {{1, 8, 8}, {1, 0, 4}}, nullptr);
      },
      ErrorKind::kInvalidArgument, {"image 1", "invalid grid"});
  expect_error([&] { enc.encode(nullptr, 64, {{1, 8, 8}}, nullptr); }, ErrorKind::kInvalidArgument, {"null"});
  expect_error(
      [&] {
        enc.encode(px.data(), 64, {{1, int64_t(1) << 40, int64_t(1) << 40}}, nullptr);
      },
      ErrorKind::kInvalidArgument, {"invalid grid"});
}

// ---------------------------------------------------------------- components

// With h == w == side the sample points are the table's own entries: the interpolated
// embedding is the table itself, in 2x2 merge-block order.
TEST(VisionComponents, PosEmbedOnTheTableGridIsThePermutedTable) {
  Tower& t = tiny_tower();
  const kernels::WeightMatrix& table = t.encoder->weights().pos_embed;
  const int64_t d = table.cols;
  std::vector<float> x(static_cast<size_t>(64 * d), 0.0f);
  vision::add_interpolated_pos_embed(table, {{1, 8, 8}}, 2, x.data(), nullptr);
  std::vector<float> row(static_cast<size_t>(d));
  for (int64_t p = 0; p < 64; ++p) {
    const int64_t block = p / 4, in = p % 4;
    const int64_t r = (block / 4) * 2 + in / 2, c = (block % 4) * 2 + in % 2;
    kernels::gather_row(table, r * 8 + c, row.data());
    for (int64_t i = 0; i < d; ++i) ASSERT_EQ(x[p * d + i], row[i]) << "patch " << p;
  }
}

TEST(VisionComponents, RotaryAnglesFollowRowAndColumn) {
  const vision::VisionRotary rot = vision::build_vision_rotary({{1, 4, 6}}, 2, 16, 10000.0);
  ASSERT_EQ(rot.half, 8);
  // Patch 5 in merge-block order: block 1 (row 0, cols 2-3), inner index 1 -> (row 0, col 3).
  const float* cs = rot.cos.data() + 5 * 8;
  const float* sn = rot.sin.data() + 5 * 8;
  const double inv[4] = {1.0, std::pow(10000.0, -0.25), std::pow(10000.0, -0.5), std::pow(10000.0, -0.75)};
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(cs[i], 1.0, 1e-7);  // row 0
    EXPECT_NEAR(sn[i], 0.0, 1e-7);
    EXPECT_NEAR(cs[4 + i], std::cos(3 * inv[i]), 1e-6);
    EXPECT_NEAR(sn[4 + i], std::sin(3 * inv[i]), 1e-6);
  }
  // Patch 8: block 2 (row 0, cols 4-5)... with w=6 there are 3 blocks per row; block 3 starts row 2.
  const float* cs2 = rot.cos.data() + 14 * 8;  // block 3 inner 2 -> (row 3, col 0)
  EXPECT_NEAR(cs2[0], std::cos(3.0), 1e-6);
  EXPECT_NEAR(cs2[4], 1.0, 1e-7);
}

// bf16 attention over segments: each output within the kernel's bound (tests/kernels_test.cpp
// derives it; here its leading term, 2 (2^-7 + ...) scale sum|q||k| relative to sum w|v|, is
// taken as 0.1 of the largest |v| for these unit-range inputs, still far below a wrong key's
// or segment's O(1)); bit-identical for 1, 3 and 4 threads and for packing passes of any size.
TEST(VisionComponents, SegmentedAttentionBf16) {
  const int64_t heads = 3, hd = 16, stride = 3 * heads * hd;
  const std::vector<int64_t> cu = {0, 5, 5, 41, 100, 300};
  const int64_t n = cu.back();
  std::vector<float> qkv = random_pixels(n, stride, 19);
  kernels::SegmentedAttentionShape s;
  s.heads = heads;
  s.head_dim = hd;
  s.q_stride = s.k_stride = s.v_stride = stride;
  s.out_stride = heads * hd;
  s.scale = 0.25f;
  s.precision = kernels::AttentionPrecision::kBF16;
  const float* q = qkv.data();
  const float* k = qkv.data() + heads * hd;
  const float* v = qkv.data() + 2 * heads * hd;
  std::vector<float> one(static_cast<size_t>(n * heads * hd), -1.0f), three(one), four(one), passes(one), f32(one);
  kernels::segmented_attention(q, k, v, one.data(), cu, s, nullptr);
  ThreadPool pool3(3), pool4(4);
  std::vector<uint16_t> packed;
  kernels::segmented_attention(q, k, v, three.data(), cu, s, &pool3, &packed);
  kernels::segmented_attention(q, k, v, four.data(), cu, s, &pool4, &packed);  // the buffer reused
  kernels::SegmentedAttentionShape small = s;
  small.pack_budget_bytes = 1000;  // every (segment, head) pair in a pass of its own
  kernels::segmented_attention(q, k, v, passes.data(), cu, small, &pool3);
  EXPECT_EQ(one, three);
  EXPECT_EQ(one, four);
  EXPECT_EQ(one, passes);
  kernels::SegmentedAttentionShape exact = s;
  exact.precision = kernels::AttentionPrecision::kF32;
  kernels::segmented_attention(q, k, v, f32.data(), cu, exact, &pool3);
  const float diff = test::max_abs_diff(one, f32);
  std::printf("[ bf16 ] segmented attention max |bf16 - f32| = %.3g\n", diff);
  EXPECT_GT(diff, 0.0f);   // the bf16 path ran
  EXPECT_LT(diff, 0.1f);   // inputs in [-1, 1]
}

TEST(VisionComponents, SegmentedAttentionMatchesNaiveSoftmax) {
  const int64_t heads = 3, hd = 8, stride = 3 * heads * hd;
  const std::vector<int64_t> cu = {0, 5, 5, 41, 100};
  const int64_t n = cu.back();
  std::vector<float> qkv = random_pixels(n, stride, 9);
  std::vector<float> out(static_cast<size_t>(n * heads * hd), -1.0f);
  kernels::SegmentedAttentionShape s;
  s.heads = heads;
  s.head_dim = hd;
  s.q_stride = s.k_stride = s.v_stride = stride;
  s.out_stride = heads * hd;
  s.scale = 0.35f;
  ThreadPool pool(3);
  const float* q = qkv.data();
  const float* k = qkv.data() + heads * hd;
  const float* v = qkv.data() + 2 * heads * hd;
  kernels::segmented_attention(q, k, v, out.data(), cu, s, &pool);
  double worst = 0;
  for (size_t seg = 0; seg + 1 < cu.size(); ++seg)
    for (int64_t i = cu[seg]; i < cu[seg + 1]; ++i)
      for (int64_t h = 0; h < heads; ++h) {
        std::vector<double> p;
        double mx = -1e300, den = 0;
        for (int64_t j = cu[seg]; j < cu[seg + 1]; ++j) {
          double dot = 0;
          for (int64_t c = 0; c < hd; ++c) dot += double(q[i * stride + h * hd + c]) * k[j * stride + h * hd + c];
          p.push_back(dot * s.scale);
          mx = std::max(mx, p.back());
        }
        for (double& x : p) den += (x = std::exp(x - mx));
        for (int64_t c = 0; c < hd; ++c) {
          double acc = 0;
          for (int64_t j = cu[seg]; j < cu[seg + 1]; ++j) acc += p[j - cu[seg]] * v[j * stride + h * hd + c];
          worst = std::max(worst, std::fabs(acc / den - out[i * heads * hd + h * hd + c]));
        }
      }
  EXPECT_LT(worst, 1e-5);
}

// ---------------------------------------------------------------- quantized tower

// With the blocks and mergers at q8_0 (activations rounded to int8 per 32 values) the tower
// stays close to the fp32 reference. Measured on the fixture: 1.9e-2 relative; the bound is a
// regression bound on that figure.
TEST(VisionEncoder, Q8WeightsStayCloseToTheReference) {
  ModelConfig config = load_model_config(test::tiny_model_dir());
  auto ckpt = Checkpoint::open(test::tiny_model_dir());
  ThreadPool pool(2);
  VisionEncoder q8(*config.vision, *ckpt, kernels::WeightFormat::kQ8_0, &pool);
  const std::string base = test::golden_dir() + "/c_two_images";
  auto j = nlohmann::json::parse(test::read_file(base + ".json"));
  std::vector<GridTHW> grids;
  for (const auto& g : j["image_grid_thw"]) grids.push_back({g[0].get<int64_t>(), g[1].get<int64_t>(), g[2].get<int64_t>()});
  const std::vector<float> pixels = test::read_f32(base + ".pixel_values.f32.bin");
  const VisionOutput out = q8.encode(pixels.data(), static_cast<int64_t>(pixels.size()) / row_width(*config.vision), grids, &pool);
  const double e = rel_err(out.embeds, test::read_f32(base + ".vision_embeds.f32.bin"));
  std::printf("[ q8_0 ] c_two_images vision_embeds rel err %.3g\n", e);
  EXPECT_LT(e, 5e-2);
  EXPECT_GT(e, 0.0);  // the quantized path really ran
}

}  // namespace
}  // namespace qvl
