// Video decoding (FFmpeg), sampling, sizing, timestamps and pixel values against the reference
// goldens (tests/data/golden/*video*; the FFV1 files decode to exactly the frames the goldens
// were computed from) and the H.264 smoke file's documented numbers.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "qvl/engine.hpp"
#include "test_util.h"
#include "video/preprocess_video.h"
#include "video/sampling.h"
#include "video/video_reader.h"

namespace qvl {
namespace {

using test::golden_dir;

std::string video(const std::string& name) { return golden_dir() + "/videos/" + name; }

VideoPreprocessorConfig tiny_video_config() { return load_video_preprocessor_config(test::tiny_model_dir()); }

TEST(VideoConfig, ReadsTheTinyModelsVideoPreprocessorConfig) {
  const VideoPreprocessorConfig c = tiny_video_config();
  EXPECT_EQ(c.fps, 2);
  EXPECT_EQ(c.min_frames, 4);
  EXPECT_EQ(c.max_frames, 768);
  EXPECT_EQ(c.image.min_pixels, 4096);
  EXPECT_EQ(c.image.max_pixels, 25165824);
  EXPECT_EQ(c.image.temporal_patch_size, 2);
}

TEST(VideoSampling, LinspaceRoundsHalfToEven) {
  VideoSampling s = video_sampling(tiny_video_config(), {});
  // 8 frames at 4 fps: n = int(8 / 4 * 2) = 4; linspace(0, 7, 4) = 0, 2.333, 4.667, 7.
  EXPECT_EQ(sample_frame_indices(8, 4.0, s), (std::vector<int64_t>{0, 2, 5, 7}));
  // 26 frames at 2 fps: n = 26 > ... clamp to 26 frames; 6 frames at 1 fps: n = max(12, 4) -> 6.
  EXPECT_EQ(sample_frame_indices(6, 1.0, s), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  // linspace(0, 5, 3) = 0, 2.5, 5 -> 2.5 rounds to 2 (half to even).
  s.min_frames = 3;
  EXPECT_EQ(sample_frame_indices(6, 4.0, s), (std::vector<int64_t>{0, 2, 5}));
  // linspace(0, 7, 3) = 0, 3.5, 7 -> 4.
  EXPECT_EQ(sample_frame_indices(8, 16.0, s), (std::vector<int64_t>{0, 4, 7}));
}

TEST(VideoSampling, FewerThanTwoFramesIsRefused) {
  const VideoSampling s = video_sampling(tiny_video_config(), {});
  test::expect_error([&] { sample_frame_indices(1, 30.0, s); }, ErrorKind::kInvalidArgument, {"at least 2"});
  test::expect_error([&] { sample_frame_indices(0, 30.0, s); }, ErrorKind::kInvalidFile, {"no frames"});
  test::expect_error([&] { sample_frame_indices(10, 0.0, s); }, ErrorKind::kInvalidFile, {"frame rate"});
  test::expect_error([&] { sample_frame_indices(10, std::nan(""), s); }, ErrorKind::kInvalidFile, {"frame rate"});
}

TEST(VideoSampling, StartAndEndSecondsLimitTheCandidates) {
  VideoOptions o;
  o.start_seconds = 1.0;
  o.end_seconds = 2.0;
  const VideoSampling s = video_sampling(tiny_video_config(), o);
  // 10 fps, 100 frames: candidates 10..20 (11 frames) -> n = int(11 / 10 * 2) = 2 -> min 4.
  EXPECT_EQ(sample_frame_indices(100, 10.0, s), (std::vector<int64_t>{10, 13, 17, 20}));
}

TEST(VideoSampling, ClipSizeAndPerFrameCap) {
  VideoSampling s = video_sampling(tiny_video_config(), {});
  ResizeResult r = video_smart_resize(2, 790, 1000, 32, s);
  EXPECT_EQ(r.height, 800);
  EXPECT_EQ(r.width, 992);
  s.cap_pixels_per_frame = true;
  r = video_smart_resize(2, 790, 1000, 32, s);
  EXPECT_EQ(r.height, 768);
  EXPECT_EQ(r.width, 992);
  r = video_smart_resize(13, 152, 200, 32, video_sampling(tiny_video_config(), {}));
  EXPECT_EQ(r.height, 160);
  EXPECT_EQ(r.width, 192);
}

TEST(VideoSampling, TimestampsAreGroupMeansPrintedLikePrintf) {
  EXPECT_EQ(group_timestamps({0, 2, 5, 7}, 4.0, 2), (std::vector<std::string>{"<0.2 seconds>", "<1.5 seconds>"}));
  // An odd count repeats the last index: (12 + 12) / 2 / 2 fps = 6.0.
  const auto t = group_timestamps({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 2.0, 2);
  ASSERT_EQ(t.size(), 7u);
  EXPECT_EQ(t[1], "<1.2 seconds>");  // 1.25 ties to even
  EXPECT_EQ(t[6], "<6.0 seconds>");
}

TEST(VideoReader, H264SmokeFileDecodesToTheDocumentedFrames) {
  const nlohmann::json doc = nlohmann::json::parse(test::read_file(video("h264_smoke.json")));
  VideoReader r = VideoReader::open_file(video("d_256x192_8f_4fps.h264.mp4"));
  EXPECT_EQ(r.info().codec, "h264");
  EXPECT_EQ(r.info().width, doc["width"].get<int>());
  EXPECT_EQ(r.info().height, doc["height"].get<int>());
  EXPECT_EQ(std::to_string(r.info().fps_num) + "/" + std::to_string(r.info().fps_den), doc["avg_frame_rate"]);
  EXPECT_EQ(r.count_packets(), doc["total_num_frames"].get<int64_t>());
  int64_t kept = 0;
  EXPECT_EQ(r.decode({1, 6}, [&](int64_t i, Image&& img) {
    EXPECT_TRUE(i == 1 || i == 6);
    EXPECT_EQ(img.width, 256);
    EXPECT_EQ(img.rgb.size(), 256u * 192 * 3);
    ++kept;
  }), 8);
  EXPECT_EQ(kept, 2);

  const VideoPixels v = preprocess_video_file(video("d_256x192_8f_4fps.h264.mp4"), tiny_video_config(), {});
  const auto& e = doc["expected"];
  EXPECT_EQ(v.frame_indices, e["frame_indices"].get<std::vector<int64_t>>());
  EXPECT_EQ((std::vector<int64_t>{v.pixels.grid_t, v.pixels.grid_h, v.pixels.grid_w}),
            e["video_grid_thw"].get<std::vector<int64_t>>());
  EXPECT_EQ(v.pixels.grid_t * v.pixels.grid_h * v.pixels.grid_w / 4, e["num_video_tokens"].get<int64_t>());
  EXPECT_EQ(v.timestamps, e["timestamps"].get<std::vector<std::string>>());
}

struct GoldenVideo {
  const char* case_name;
  const char* file;
  bool cap;
};

class VideoGolden : public ::testing::TestWithParam<GoldenVideo> {};

TEST_P(VideoGolden, PixelValuesMatchTheReference) {
  const GoldenVideo& g = GetParam();
  const nlohmann::json doc = nlohmann::json::parse(test::read_file(golden_dir() + "/" + g.case_name + ".json"));
  VideoOptions o;
  o.cap_pixels_per_frame = g.cap;
  const VideoPixels v = preprocess_video_file(video(g.file), tiny_video_config(), o);
  const auto& info = doc["videos"][0];
  EXPECT_EQ(v.total_frames, info["total_num_frames"].get<int64_t>());
  EXPECT_EQ(v.frame_indices, doc["video_frame_indices"][0].get<std::vector<int64_t>>());
  EXPECT_EQ(v.timestamps, doc["video_timestamps"][0].get<std::vector<std::string>>());
  EXPECT_EQ((std::vector<int64_t>{v.pixels.grid_t, v.pixels.grid_h, v.pixels.grid_w}),
            doc["video_grid_thw"][0].get<std::vector<int64_t>>());
  // The video pixel goldens (25 MB) stay in the workplace's fixtures beside the repository.
  const std::string shared = std::string(QVL_TEST_DATA_DIR) + "/../../../shared/fixtures/golden";
  const std::string ref_path = shared + "/" + g.case_name + ".pixel_values_videos.f32.bin";
  ASSERT_TRUE(std::filesystem::exists(ref_path))
      << "missing " << ref_path << ": the video pixel goldens are read from ../shared/fixtures/golden beside the repository";
  const std::vector<float> ref = test::read_f32(ref_path);
  ASSERT_EQ(ref.size(), v.pixels.data.size());
  EXPECT_LE(test::max_abs_diff(ref, v.pixels.data), 1e-5f);
}

INSTANTIATE_TEST_SUITE_P(Goldens, VideoGolden,
                         ::testing::Values(GoldenVideo{"d_video_short", "d_256x192_8f_4fps.mkv", false},
                                           GoldenVideo{"e_video_and_image", "e_200x152_13f_2fps.mkv", false},
                                           GoldenVideo{"f_video_capped", "f_1000x790_2f_30fps.mkv", true}),
                         [](const auto& info) { return std::string(info.param.case_name); });

TEST(VideoReader, FramesGivenInMemorySampleLikeAFile) {
  // The FFV1 frames decoded, then handed over as a Video: the same pixel values.
  VideoReader r = VideoReader::open_file(video("d_256x192_8f_4fps.mkv"));
  Video v;
  v.fps = r.fps();
  std::vector<int64_t> all(8);
  for (int i = 0; i < 8; ++i) all[static_cast<size_t>(i)] = i;
  r.decode(all, [&](int64_t, Image&& img) { v.frames.push_back(std::move(img)); });
  const VideoPixels a = preprocess_video_frames(v, tiny_video_config(), {});
  const VideoPixels b = preprocess_video_file(video("d_256x192_8f_4fps.mkv"), tiny_video_config(), {});
  EXPECT_EQ(a.frame_indices, b.frame_indices);
  EXPECT_EQ(a.pixels.data, b.pixels.data);
  const std::string bytes = test::read_file(video("d_256x192_8f_4fps.mkv"));
  const VideoPixels c = preprocess_video_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                               tiny_video_config(), {});
  EXPECT_EQ(c.pixels.data, b.pixels.data);
}

TEST(VideoReader, RotationMetadataTurnsTheFrames) {
  // A 90-degree display matrix on the H.264 copy (made with the ffmpeg CLI when present).
  const std::string out = test::temp_dir() + "/rotated.mp4";
  const std::string cmd = "ffmpeg -v error -y -i '" + video("d_256x192_8f_4fps.h264.mp4") +
                          "' -c copy -metadata:s:v:0 rotate=90 '" + out + "' 2>/dev/null";
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "no ffmpeg CLI to write a rotated file";
  VideoReader r = VideoReader::open_file(out);
  EXPECT_TRUE(r.info().rotation == 90 || r.info().rotation == 270) << r.info().rotation;
  EXPECT_EQ(r.display_width(), 192);
  EXPECT_EQ(r.display_height(), 256);
  Image plain, turned;
  VideoReader::open_file(video("d_256x192_8f_4fps.h264.mp4")).decode({0}, [&](int64_t, Image&& img) { plain = img; });
  r.decode({0}, [&](int64_t, Image&& img) { turned = img; });
  ASSERT_EQ(turned.width, 192);
  ASSERT_EQ(turned.height, 256);
  // Clockwise 90: source (x, y) lands at (h - 1 - y, x); 270: at (y, w - 1 - x).
  for (int y = 0; y < 192; y += 37)
    for (int x = 0; x < 256; x += 41) {
      const int ox = r.info().rotation == 90 ? 191 - y : y, oy = r.info().rotation == 90 ? x : 255 - x;
      for (int c = 0; c < 3; ++c)
        EXPECT_EQ(turned.rgb[(size_t(oy) * 192 + ox) * 3 + c], plain.rgb[(size_t(y) * 256 + x) * 3 + c]);
    }
}

// The e_video_and_image case (a video, then an image) through the public API.
ProcessedInputs golden_video_inputs(const std::shared_ptr<Model>& model, const std::string& name) {
  const nlohmann::json doc = nlohmann::json::parse(test::read_file(golden_dir() + "/" + name + ".json"));
  return Processor(model).process(doc["messages"].dump(), {}, true, golden_dir());
}

TEST(VideoPipeline, GeneratorMatchesTheGoldenTokensAndSetInputsReusesTheVideoPrefix) {
  auto model = test::tiny_model();
  const ProcessedInputs in = golden_video_inputs(model, "e_video_and_image");
  const nlohmann::json doc = nlohmann::json::parse(test::read_file(golden_dir() + "/e_video_and_image.json"));
  EXPECT_EQ(in.input_ids, doc["input_ids"].get<std::vector<int32_t>>());
  ASSERT_EQ(in.video_tokens, (std::vector<int64_t>{210}));
  ASSERT_EQ(in.image_tokens, (std::vector<int64_t>{64}));
  Generator g(model, test::greedy(16));
  g.append_inputs(in);
  EXPECT_EQ(test::generate(g), doc["greedy_tokens"].get<std::vector<int32_t>>());

  // A second turn after the first: only the new suffix is evaluated, the video stays cached.
  nlohmann::json messages = doc["messages"];
  messages.push_back({{"role", "assistant"}, {"content", "Yes."}});
  messages.push_back({{"role", "user"}, {"content", "When?"}});
  const ProcessedInputs turn2 = Processor(model).process(messages.dump(), {}, true, golden_dir());
  Generator fresh(model, test::greedy(4));
  fresh.append_inputs(turn2);
  Generator reuse(model, test::greedy(4));
  reuse.append_inputs(in);
  const int64_t before = reuse.stats().evaluated_tokens;
  reuse.set_inputs(turn2);
  EXPECT_LT(reuse.stats().evaluated_tokens - before, 20);
  EXPECT_EQ(test::generate(reuse), test::generate(fresh));
}

TEST(VideoPipeline, EngineGivesTheGeneratorsTokens) {
  auto model = test::tiny_model();
  const ProcessedInputs in = golden_video_inputs(model, "d_video_short");
  Generator g(model, test::greedy(8));
  g.append_inputs(in);
  const std::vector<int32_t> expected = test::generate(g);
  EngineOptions o;
  o.background_thread = false;
  Engine engine(model, o);
  std::vector<int32_t> got;
  std::string error;
  engine.submit(in, test::greedy(8), [&](const RequestEvent& e) {
    if (e.token >= 0) got.push_back(e.token);
    if (e.finished) error = e.error;
  });
  engine.wait_idle();
  EXPECT_EQ(error, "");
  EXPECT_EQ(got, expected);
}

}  // namespace
}  // namespace qvl
