// Hostile input never crashes qvl: every bad file, size or prompt fails fast with a qvl::Error whose
// kind and message say what is wrong, and with bounded memory.
//
//  * BadFiles: the crafted files in tests/data/bad (see its README and make_bad_files.py), each
//    mapped to the expected ErrorKind (or success) and a fragment of the message;
//  * ResourceBounds: inputs that claim absurd sizes (a 100000x100000 PNG, 1 TB of tensor data, a
//    2 GB safetensors header, 2^40 GGUF tensors, a prompt longer than the context, a hostile
//    preprocessor config), each run in a forked child that reports its peak RSS growth;
//  * NonFiniteWeights: a copy of the tiny model with one NaN in a layer weight;
//  * FuzzRegressions: inputs the fuzzers found (see fuzz/ and tools/fuzz.sh).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/gguf.h"
#include "formats/model_config.h"
#include "formats/safetensors.h"
#include "image/image.h"
#include "image/preprocess.h"
#include "qvl/error.hpp"
#include "qvl/image.hpp"
#include "qvl/qvl.hpp"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "video/preprocess_video.h"

namespace qvl {
namespace {

namespace fs = std::filesystem;

std::string bad_dir() { return test::data_dir() + "/bad"; }

const char* kind_name(std::optional<ErrorKind> kind) { return kind ? error_kind_name(*kind) : "success"; }

// What one call did: success, a qvl::Error (kind + message), or something else escaping.
struct Outcome {
  bool ok = false;
  std::optional<ErrorKind> kind;
  std::string message;
};

Outcome run(const std::function<void()>& fn) {
  Outcome o;
  try {
    fn();
    o.ok = true;
  } catch (const Error& e) {
    o.kind = e.kind();
    o.message = e.what();
  } catch (const std::exception& e) {
    o.message = std::string("a non-qvl exception escaped: ") + e.what();
  }
  return o;
}

void expect_outcome(const Outcome& o, std::optional<ErrorKind> kind, const std::string& fragment,
                    const std::string& what) {
  SCOPED_TRACE(what);
  if (!kind) {
    EXPECT_TRUE(o.ok) << "expected success, got " << kind_name(o.kind) << ": " << o.message;
    return;
  }
  ASSERT_FALSE(o.ok) << "expected " << error_kind_name(*kind) << ", got success";
  ASSERT_TRUE(o.kind.has_value()) << o.message;
  EXPECT_EQ(static_cast<int>(*o.kind), static_cast<int>(*kind))
      << "expected " << error_kind_name(*kind) << ", got " << error_kind_name(*o.kind) << ": " << o.message;
  EXPECT_NE(o.message.find(fragment), std::string::npos) << "'" << fragment << "' not in: " << o.message;
}

const BpeTokenizer& real_tokenizer() {
  static const std::unique_ptr<BpeTokenizer> tok = BpeTokenizer::load(test::tiny_model_dir() + "/tokenizer.json");
  return *tok;
}

// ---- the bad-file table ------------------------------------------------------------------------

enum class Loader {
  kImage,            // load_image_file with the default limits
  kImagePreprocess,  // load_image_file, then preprocess_image with Qwen3-VL's defaults
  kSafetensors,      // SafetensorsFile (mmap + header validation)
  kGguf,             // GgufFile
  kModelConfig,      // parse_model_config on the file's text
  kTokenizer,        // BpeTokenizer::load
  kPrompt,           // the real Qwen3 tokenizer encodes the file's bytes
  kVideo,            // preprocess_video_file with the tiny model's video settings (FFmpeg decoding)
  kLlamaText,        // Model::load of the file as a llama.cpp text GGUF, with --mmproj llama_mmproj.gguf
  kLlamaMmproj,      // Model::load of llama_text.gguf with the file as --mmproj
};

struct BadFile {
  const char* file;  // in tests/data/bad, or tests/data/... when it starts with "../"
  Loader loader;
  std::optional<ErrorKind> kind;  // nullopt: must succeed
  const char* fragment;           // in the message (errors only)
};

constexpr auto kInvalidFile = ErrorKind::kInvalidFile;
constexpr auto kInvalidArgument = ErrorKind::kInvalidArgument;
constexpr auto kUnsupported = ErrorKind::kUnsupported;
constexpr auto kLimitExceeded = ErrorKind::kLimitExceeded;
constexpr std::nullopt_t kOk = std::nullopt;

const BadFile kBadFiles[] = {
    // Truncated images.
    {"png_truncated.png", Loader::kImage, kInvalidFile, "corrupt PNG"},
    {"jpeg_truncated.jpg", Loader::kImage, kInvalidFile, "truncated file (premature end of JPEG data)"},
    {"webp_truncated.webp", Loader::kImage, kInvalidFile, "corrupt WebP"},
    {"gif_truncated.gif", Loader::kImage, kInvalidFile, "corrupt GIF"},
    {"bmp_truncated.bmp", Loader::kImage, kInvalidFile, "truncated pixel data"},
    // Wrong magic / not an image.
    {"png_wrong_magic.png", Loader::kImage, kUnsupported, "not in a recognized format"},
    {"tiff_header.tif", Loader::kImage, kUnsupported, "TIFF, which is not supported"},
    {"jpeg_garbage_after_soi.jpg", Loader::kImage, kInvalidFile, "corrupt JPEG"},
    {"empty.png", Loader::kImage, kInvalidFile, "is empty (0 bytes)"},
    // Lying lengths.
    {"png_lying_idat_length.png", Loader::kImage, kInvalidFile, "corrupt PNG"},
    {"bmp_lying_pixel_offset.bmp", Loader::kImage, kInvalidFile, "pixel data offset 268435456 lies outside the file"},
    {"bmp_lying_height.bmp", Loader::kImage, kInvalidFile, "37x30000 at 24 bits needs"},
    // Zero-size images.
    {"png_zero_width.png", Loader::kImage, kInvalidFile, "PNG image declares an empty size (0x4)"},
    {"gif_zero_size.gif", Loader::kImage, kInvalidFile, "the first frame is empty (0x0)"},
    {"bmp_zero_width.bmp", Loader::kImage, kInvalidFile, "BMP image declares an empty size (0x29)"},
    // Extreme aspect ratios: valid files; preprocessing refuses above 200:1, as Hugging Face does.
    {"png_1x1.png", Loader::kImagePreprocess, kOk, ""},
    {"png_200x1.png", Loader::kImagePreprocess, kOk, ""},
    {"png_201x1.png", Loader::kImage, kOk, ""},
    {"png_201x1.png", Loader::kImagePreprocess, kInvalidArgument, "aspect ratio 201 (201x1) is above the limit of 200"},
    {"png_1x300.png", Loader::kImage, kOk, ""},
    {"png_1x300.png", Loader::kImagePreprocess, kInvalidArgument, "aspect ratio 300 (1x300) is above the limit of 200"},
    // Valid oddities that must decode: out-of-range palette indices, progressive and CMYK JPEG.
    {"png_palette_bad_index.png", Loader::kImagePreprocess, kOk, ""},
    {"../images/decode/jpeg_progressive.jpg", Loader::kImagePreprocess, kOk, ""},
    {"../images/decode/jpeg_cmyk.jpg", Loader::kImagePreprocess, kOk, ""},
    // safetensors.
    {"st_truncated.safetensors", Loader::kSafetensors, kInvalidFile, "run past the end of the file"},
    {"st_overlap.safetensors", Loader::kSafetensors, kInvalidFile, "tensors 'a' and 'b' overlap"},
    {"st_header_length_lies.safetensors", Loader::kSafetensors, kInvalidFile, "header claims 4096 bytes but only 54 follow"},
    {"st_header_not_json.safetensors", Loader::kSafetensors, kInvalidFile, "malformed JSON"},
    {"st_unknown_dtype.safetensors", Loader::kSafetensors, kInvalidFile, "unknown dtype 'F128'"},
    // GGUF.
    {"gguf_bad_magic.gguf", Loader::kGguf, kInvalidFile, "not a GGUF file (bad magic)"},
    {"gguf_truncated.gguf", Loader::kGguf, kInvalidFile, "truncated GGUF file: string value at offset 56 needs 1000 bytes, 3 remain"},
    {"gguf_huge_array.gguf", Loader::kGguf, kInvalidFile, "needs 67108864 bytes, 16 remain"},
    // JSON.
    {"config_malformed.json", Loader::kModelConfig, kInvalidFile, "malformed JSON"},
    {"config_huge_number.json", Loader::kModelConfig, kInvalidFile, "number overflow"},
    {"config_deeply_nested.json", Loader::kModelConfig, kInvalidFile, "JSON nests deeper than 512 levels"},
    {"tokenizer_truncated.json", Loader::kTokenizer, kInvalidFile, "malformed JSON"},
    // Prompt text.
    {"prompt_not_utf8.txt", Loader::kPrompt, kInvalidArgument, "not valid UTF-8 (bad byte at offset 6)"},
    // Videos.
    {"video_truncated.mkv", Loader::kVideo, kInvalidFile, "is truncated or corrupt: it holds 4 frames but declares 2 s"},
    {"video_not_a_video.mp4", Loader::kVideo, kInvalidFile, "is not a video FFmpeg can read"},
    {"video_audio_only.mkv", Loader::kVideo, kInvalidFile, "has no video stream (1 other stream(s), e.g. audio only)"},
    {"video_one_frame.mkv", Loader::kVideo, kInvalidArgument, "yields 1 sampled frame(s) (1 frame(s) at 1 fps); at least 2"},
    {"video_absurd_size.y4m", Loader::kVideo, kInvalidFile, "is not a video FFmpeg can read"},
    {"video_huge_size.y4m", Loader::kVideo, kLimitExceeded, "frame size 16000x16000 is above the limit"},
    {"video_fps_zero.y4m", Loader::kVideo, kOk, ""},  // FFmpeg's y4m reader takes F0:1 as 25 fps
    // llama.cpp GGUF pairs: the micro pair loads; each bad file names the tensor (as the model and
    // as the file calls it) and both values.
    {"llama_text.gguf", Loader::kLlamaText, kOk, ""},
    {"llama_mmproj.gguf", Loader::kLlamaMmproj, kOk, ""},
    {"llama_mmproj_unknown_type.gguf", Loader::kLlamaMmproj, kUnsupported,
     "tensor 'v.blk.0.ffn_down.weight' has unknown ggml type 99"},
    {"llama_mmproj_unsupported_type.gguf", Loader::kLlamaMmproj, kUnsupported,
     "tensor 'mm.0.weight' has ggml type MXFP4, which qvl cannot decode (supported: F32, F16, BF16, Q4_0"},
    {"llama_mmproj_missing_tensor.gguf", Loader::kLlamaMmproj, kInvalidFile,
     "tensor 'model.visual.blocks.0.norm2.weight' (shape [8]) is missing from the checkpoint in '"},
    {"llama_mmproj_missing_tensor.gguf", Loader::kLlamaMmproj, kInvalidFile,
     "llama_mmproj_missing_tensor.gguf' (GGUF tensor 'v.blk.0.ln2.weight')"},
    {"llama_mmproj_shape_mismatch.gguf", Loader::kLlamaMmproj, kInvalidFile,
     "tensor 'model.visual.blocks.0.mlp.linear_fc1.weight' has shape [24, 8] but the config implies [16, 8] "
     "(GGUF tensor 'v.blk.0.ffn_up.weight')"},
    {"llama_mmproj_wider.gguf", Loader::kLlamaMmproj, kInvalidArgument,
     "llama_mmproj_wider.gguf' outputs 48-wide embeddings but the text model"},
    {"llama_mmproj_wider.gguf", Loader::kLlamaMmproj, kInvalidArgument,
     "llama_text.gguf' has hidden size 32 (a projector made for another model size?)"},
    {"llama_text_shape_mismatch.gguf", Loader::kLlamaText, kInvalidFile,
     "tensor 'model.language_model.layers.0.mlp.gate_proj.weight' has shape [32, 32] but the config implies [9728, 32] "
     "(GGUF tensor 'blk.0.ffn_gate.weight')"},
};

// A llama.cpp text GGUF + projector, loaded as the CLI does (-m TEXT --mmproj MMPROJ).
void load_llama_pair(const std::string& text, const std::string& mmproj) {
  ModelOptions options;
  options.mmproj = mmproj;
  options.threads = 1;
  options.context_length = 64;
  (void)Model::load(text, options);
}

void load_with(Loader loader, const std::string& path) {
  switch (loader) {
    case Loader::kImage: (void)load_image_file(path); return;
    case Loader::kImagePreprocess: {
      const Image img = load_image_file(path);
      const PixelValues pv = preprocess_image(img, PreprocessorConfig{});
      if (pv.rows <= 0 || pv.data.size() != static_cast<size_t>(pv.rows * pv.cols))
        throw std::runtime_error("malformed pixel values");
      return;
    }
    case Loader::kSafetensors: (void)SafetensorsFile(path); return;
    case Loader::kGguf: (void)GgufFile(path); return;
    case Loader::kModelConfig: (void)parse_model_config(test::read_file(path), path); return;
    case Loader::kTokenizer: (void)BpeTokenizer::load(path); return;
    case Loader::kPrompt: (void)real_tokenizer().encode(test::read_file(path)); return;
    case Loader::kVideo: (void)preprocess_video_file(path, load_video_preprocessor_config(test::tiny_model_dir()), {}); return;
    case Loader::kLlamaText: load_llama_pair(path, bad_dir() + "/llama_mmproj.gguf"); return;
    case Loader::kLlamaMmproj: load_llama_pair(bad_dir() + "/llama_text.gguf", path); return;
  }
}

TEST(BadFiles, EachFailsWithTheExpectedKindAndMessage) {
  for (const BadFile& f : kBadFiles) {
    const std::string path = bad_dir() + "/" + f.file;
    ASSERT_TRUE(fs::exists(path)) << path << " is missing (run tests/data/bad/make_bad_files.py)";
    const auto t0 = std::chrono::steady_clock::now();
    const Outcome o = run([&] { load_with(f.loader, path); });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    expect_outcome(o, f.kind, f.fragment, f.file);
    EXPECT_LT(seconds, 10.0) << f.file << " took " << seconds << " s";
  }
}

TEST(BadFiles, EveryFileInTheFolderIsInTheTable) {
  for (const auto& e : fs::directory_iterator(bad_dir())) {
    const std::string name = e.path().filename().string();
    if (name == "README.md" || name == "make_bad_files.py") continue;
    bool listed = false;
    for (const BadFile& f : kBadFiles) listed = listed || name == f.file;
    EXPECT_TRUE(listed) << name << " is not in kBadFiles";
  }
}

TEST(BadFiles, OutOfRangePaletteIndicesMapToTheGreyRamp) {
  // 4-entry PLTE, pixel (x, y) holds index 8y + x: indices >= 4 show (i, i, i) as in Pillow.
  const Image img = load_image_file(bad_dir() + "/png_palette_bad_index.png");
  ASSERT_EQ(img.width, 8);
  ASSERT_EQ(img.height, 8);
  const auto px = [&](int i) { return std::vector<int>{img.rgb[3 * i], img.rgb[3 * i + 1], img.rgb[3 * i + 2]}; };
  EXPECT_EQ(px(0), (std::vector<int>{255, 0, 0}));
  EXPECT_EQ(px(3), (std::vector<int>{10, 20, 30}));
  EXPECT_EQ(px(4), (std::vector<int>{4, 4, 4}));
  EXPECT_EQ(px(63), (std::vector<int>{63, 63, 63}));
}

// ---- resource bounds: run in a forked child, measure its peak RSS growth ------------------------

// Peak RSS growth is asserted below this. The failures guarded against allocate gigabytes; the
// cases measure well under 10 MB, and 64 MB leaves room for allocator and sanitizer overhead.
constexpr long kMaxGrowthKb = 64 * 1024;

long status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(std::strlen(key)));
  return -1;
}

struct Bounded {
  Outcome outcome;
  long growth_kb = -1;  // peak RSS during the call minus RSS before it
  double seconds = 0;
  std::string crash;    // non-empty if the child died
};

// Runs fn in a child process: a crash or OOM there fails the test instead of killing the runner,
// and the child's peak RSS (VmHWM, reset first through /proc/self/clear_refs where allowed)
// measures what the call itself allocated.
Bounded run_bounded(const std::function<void()>& fn) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    close(fds[0]);
    {
      std::ofstream clear("/proc/self/clear_refs");
      clear << "5";  // resets VmHWM to the current RSS (Linux >= 4.0)
    }
    const long base = status_kb("VmRSS:");
    const auto t0 = std::chrono::steady_clock::now();
    const Outcome o = run(fn);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const long peak = status_kb("VmHWM:");
    nlohmann::json j = {{"ok", o.ok},
                        {"kind", o.kind ? static_cast<int>(*o.kind) : 0},
                        {"message", o.message},
                        {"growth_kb", peak - base},
                        {"seconds", seconds}};
    const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    size_t off = 0;
    while (off < text.size()) {
      const ssize_t n = write(fds[1], text.data() + off, text.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(fds[1]);
    _exit(0);  // no atexit handlers, no leak check of the parent's state in the child
  }
  close(fds[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  Bounded b;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || text.empty()) {
    b.crash = WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                  : "exit status " + std::to_string(WEXITSTATUS(status));
    return b;
  }
  const nlohmann::json j = nlohmann::json::parse(text);
  b.outcome.ok = j["ok"];
  if (j["kind"].get<int>() != 0) b.outcome.kind = static_cast<ErrorKind>(j["kind"].get<int>());
  b.outcome.message = j["message"];
  b.growth_kb = j["growth_kb"];
  b.seconds = j["seconds"];
  return b;
}

void expect_bounded(const std::function<void()>& fn, ErrorKind kind, std::initializer_list<std::string> fragments,
                    const std::string& what) {
  SCOPED_TRACE(what);
  const Bounded b = run_bounded(fn);
  ASSERT_TRUE(b.crash.empty()) << "the child process died: " << b.crash;
  for (const std::string& f : fragments) expect_outcome(b.outcome, kind, f, what);
  EXPECT_GE(b.growth_kb, 0);
  EXPECT_LT(b.growth_kb, kMaxGrowthKb) << "peak RSS grew by " << b.growth_kb / 1024 << " MB";
  EXPECT_LT(b.seconds, 5.0) << "took " << b.seconds << " s";
  std::printf("[ bounded  ] %s: %s in %.3f s, peak RSS +%ld KB\n", what.c_str(), kind_name(b.outcome.kind), b.seconds,
              b.growth_kb);
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

// PNG signature + IHDR declaring the size (with a correct CRC) + an empty IDAT + IEND.
std::string png_header(uint32_t width, uint32_t height) {
  const auto crc32 = [](const std::string& s) {
    uint32_t c = 0xffffffffu;
    for (unsigned char b : s) {
      c ^= b;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
  };
  const auto chunk = [&](const std::string& type, const std::string& payload) {
    return be32(static_cast<uint32_t>(payload.size())) + type + payload + be32(crc32(type + payload));
  };
  const std::string ihdr = be32(width) + be32(height) + std::string("\x08\x02\x00\x00\x00", 5);
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IDAT", "") + chunk("IEND", "");
}

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &v, 8);
  return s;
}

std::string write_temp(const std::string& name, const std::string& bytes) {
  const std::string path = test::temp_dir() + "/" + name;
  test::write_file(path, bytes);
  return path;
}

TEST(ResourceBounds, TheMeasurementSeesWhatTheChildAllocates) {
  // The harness itself: touching 100 MB in the child must show as >= 100 MB of growth.
  const Bounded b = run_bounded([] {
    std::vector<char> big(size_t(100) << 20);
    for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>(i);
    volatile char sink = big[big.size() / 2];
    (void)sink;
  });
  ASSERT_TRUE(b.crash.empty()) << b.crash;
  EXPECT_TRUE(b.outcome.ok);
  // Linux (6.2+) reads RSS from per-CPU counters: each CPU the child ran on may hold back up to its
  // batch (32+ pages, 128+ KB) per reading. 102300 KB was seen for the 102400 KB touched; 1 MB of
  // slack is eight such batches, far below what a harness that missed the allocation would read.
  EXPECT_GE(b.growth_kb, 99 * 1024);
  EXPECT_LT(b.growth_kb, 200 * 1024);
}

TEST(ResourceBounds, HugePngHeader) {
  const std::string png = png_header(100000, 100000);
  expect_bounded([&] { (void)decode_image(reinterpret_cast<const uint8_t*>(png.data()), png.size()); },
                 kLimitExceeded, {"100000x100000", "limit of 65500 pixels per side"}, "100000x100000 PNG");
  // Within the side limit but 3.6e9 pixels: the pixel limit (Pillow's bomb threshold) applies.
  const std::string png2 = png_header(60000, 60000);
  expect_bounded([&] { (void)decode_image(reinterpret_cast<const uint8_t*>(png2.data()), png2.size()); },
                 kLimitExceeded, {"60000x60000 = 3600000000 pixels", "limit of 178956970 pixels"}, "60000x60000 PNG");
}

TEST(ResourceBounds, SafetensorsClaimingOneTerabyte) {
  const std::string header =
      R"({"w":{"dtype":"F32","shape":[262144,1048576],"data_offsets":[0,1099511627776]}})";
  const std::string path = write_temp("one_tb.safetensors", le64(header.size()) + header);
  expect_bounded([&] { (void)SafetensorsFile(path); }, kInvalidFile,
                 {"data_offsets [0, 1099511627776] run past the end of the file", "data section is 0 bytes"},
                 "safetensors claiming 1 TB");
}

TEST(ResourceBounds, SafetensorsTwoGigabyteHeaderLength) {
  const std::string path = write_temp("two_gb_header.safetensors", le64(uint64_t(2) << 30) + "{}");
  expect_bounded([&] { (void)SafetensorsFile(path); }, kInvalidFile,
                 {"absurd safetensors header length 2147483648 bytes", "limit 104857600"}, "2 GB header length");
}

TEST(ResourceBounds, GgufClaimingTwoToTheFortyTensors) {
  std::string bytes = "GGUF";
  const uint32_t version = 3;
  bytes.append(reinterpret_cast<const char*>(&version), 4);
  bytes += le64(uint64_t(1) << 40) + le64(0);
  const std::string path = write_temp("many_tensors.gguf", bytes);
  expect_bounded([&] { (void)GgufFile(path); }, kInvalidFile, {"GGUF claims 1099511627776 tensors"},
                 "GGUF with 2^40 tensors");
  const std::string huge_array = bad_dir() + "/gguf_huge_array.gguf";
  expect_bounded([&] { (void)GgufFile(huge_array); }, kInvalidFile, {"needs 67108864 bytes"},
                 "GGUF array of 2^26 elements");
}

TEST(ResourceBounds, LlamaGgufPairsThatDoNotFit) {
  // Each bad llama.cpp file is refused before anything of its claimed size is allocated: the text
  // model claiming the 4B's 9728-wide FFN over 32-wide tensors, and every bad projector.
  for (const char* text : {"llama_text_shape_mismatch.gguf"})
    expect_bounded([&] { load_llama_pair(bad_dir() + "/" + text, bad_dir() + "/llama_mmproj.gguf"); }, kInvalidFile,
                   {"the config implies [9728, 32]"}, text);
  struct Case {
    const char* mmproj;
    ErrorKind kind;
    const char* fragment;
  };
  for (const Case& c : {Case{"llama_mmproj_unknown_type.gguf", kUnsupported, "unknown ggml type 99"},
                        Case{"llama_mmproj_unsupported_type.gguf", kUnsupported, "MXFP4"},
                        Case{"llama_mmproj_missing_tensor.gguf", kInvalidFile, "'v.blk.0.ln2.weight'"},
                        Case{"llama_mmproj_shape_mismatch.gguf", kInvalidFile, "'v.blk.0.ffn_up.weight'"},
                        Case{"llama_mmproj_wider.gguf", kInvalidArgument, "48-wide"}})
    expect_bounded([&] { load_llama_pair(bad_dir() + "/llama_text.gguf", bad_dir() + "/" + c.mmproj); }, c.kind,
                   {c.fragment}, c.mmproj);
}

TEST(ResourceBounds, PromptLongerThanTheContext) {
  ModelOptions options;
  options.context_length = 32;
  options.threads = 1;
  const std::shared_ptr<Model> model = Model::load(test::tiny_model_dir(), options);
  const Tokenizer tokenizer(model);
  std::string text;
  for (int i = 0; i < 40; ++i) text += "word" + std::to_string(i) + " ";
  const std::vector<int32_t> ids = tokenizer.encode(text);
  ASSERT_GT(ids.size(), 32u);
  const std::string needs = "the prompt needs " + std::to_string(ids.size()) + " tokens but the context holds 32";
  expect_bounded(
      [&] {
        Generator generator(model, GeneratorParams{});
        generator.append_tokens(ids);
      },
      kLimitExceeded, {needs}, "prompt longer than the context");
}

TEST(ResourceBounds, TokenizerWithAHugeTokenId) {
  // The id table is sized by the largest id: this 145-byte file used to allocate 1.2 GB.
  const std::string text = R"({"model":{"type":"BPE","vocab":{"a":16777215},"merges":[]},)"
                           R"("pre_tokenizer":{"type":"ByteLevel","use_regex":false},"decoder":{"type":"ByteLevel"}})";
  expect_bounded([&] { (void)BpeTokenizer::from_json_text(text, "tokenizer.json"); }, kLimitExceeded,
                 {"token id 16777215 is far beyond the 1 tokens defined"}, "tokenizer id 2^24-1");
  // Added tokens too.
  const std::string added = R"({"model":{"type":"BPE","vocab":{"a":0},"merges":[]},)"
                            R"("pre_tokenizer":{"type":"ByteLevel","use_regex":false},"decoder":{"type":"ByteLevel"},)"
                            R"("added_tokens":[{"id":9000000,"content":"<x>","special":true}]})";
  expect_bounded([&] { (void)BpeTokenizer::from_json_text(added, "tokenizer.json"); }, kLimitExceeded,
                 {"token id 9000000 is far beyond the 2 tokens defined"}, "added token id 9e6");
}

TEST(ResourceBounds, HostilePreprocessorConfig) {
  // shortest_edge (min_pixels) of 2^40 would upscale any image to a terabyte of pixel values.
  const PreprocessorConfig cfg =
      parse_preprocessor_config(R"({"size": {"shortest_edge": 1099511627776, "longest_edge": 1099511627776}})", "cfg");
  Image img;
  img.width = img.height = 64;
  img.rgb.assign(rgb_bytes(64, 64), 128);
  expect_bounded([&] { (void)preprocess_image(img, cfg); }, kLimitExceeded,
                 {"pixel values, above the limit of 1073741824"}, "min_pixels 2^40");
}

// ---- non-finite weights -------------------------------------------------------------------------

// A copy of the tiny model whose model.safetensors has one NaN (or Inf) in a text layer weight.
std::string model_with_bad_weight(const std::string& name, uint16_t bf16_bits) {
  return test::altered_tiny_model(name, [&](const test::Bf16Weights& weight) {
    weight("model.language_model.layers.1.mlp.down_proj.weight")[5] = bf16_bits;  // the 6th element
  });
}

TEST(NonFiniteWeights, ReportedAtTheFirstNonFiniteLogit) {
  // generator.cpp does not scan weights at load (that would read every byte of a 60 GB checkpoint);
  // it checks the logits of every evaluation and fails with kInvalidFile naming the likely cause.
  for (const auto& [name, bits] : {std::pair<const char*, uint16_t>{"nan", 0x7fc0}, {"inf", 0x7f80}}) {
    SCOPED_TRACE(name);
    const std::string dir = model_with_bad_weight(std::string("tiny-with-") + name, bits);
    ModelOptions options;
    options.threads = 1;
    options.context_length = 64;
    std::shared_ptr<Model> model;
    const Outcome load = run([&] { model = Model::load(dir, options); });
    if (!load.ok) {  // a load-time check would be fine too, if it names the problem
      expect_outcome(load, kInvalidFile, "non-finite", "load");
      continue;
    }
    const Tokenizer tokenizer(model);
    const std::vector<int32_t> ids = tokenizer.encode("Hello there");
    const Outcome gen = run([&] {
      Generator generator(model, GeneratorParams{});
      generator.append_tokens(ids);
      generator.generate_next_token();
    });
    expect_outcome(gen, kInvalidFile, "the model produced a non-finite logit; the weights may hold NaN or Inf",
                   "generate");
  }
}

// ---- fuzz regressions -----------------------------------------------------------------------------

TEST(FuzzRegressions, JsonNumberOverflowIsAnInvalidFileNotATerminate) {
  // fuzz_configs / fuzz_safetensors / fuzz_tokenizer_load: nlohmann throws out_of_range (not
  // parse_error) for 1e400; parse_json let it escape and the process terminated.
  expect_outcome(run([] { (void)parse_model_config(R"({"hidden_size": 1e400})", "config.json"); }), kInvalidFile,
                 "config.json: malformed JSON", "config.json");
  expect_outcome(run([] { (void)parse_preprocessor_config(R"({"patch_size": 321e308})", "pp.json"); }), kInvalidFile,
                 "number overflow", "preprocessor_config.json");
  expect_outcome(run([] { (void)BpeTokenizer::from_json_text(R"({"model": {"dropout": 1e999}})", "tokenizer.json"); }),
                 kInvalidFile, "malformed JSON", "tokenizer.json");
  const std::string header = R"({"a":{"dtype":"F32","shape":[1e309],"data_offsets":[0,4]}})";
  const std::string st = le64(header.size()) + header + std::string(4, '\0');
  expect_outcome(run([&] { (void)parse_safetensors(reinterpret_cast<const std::byte*>(st.data()), st.size(), "st"); }),
                 kInvalidFile, "malformed JSON", "safetensors header");
  // The same through the public API's messages / extra-variables JSON.
  ModelOptions options;
  options.threads = 1;
  const Tokenizer tokenizer(Model::load(test::tiny_model_dir(), options));
  expect_outcome(run([&] { (void)tokenizer.apply_chat_template(R"([{"role":"user","content":1e400}])"); }),
                 kInvalidArgument, "messages: malformed JSON", "apply_chat_template messages");
  expect_outcome(run([&] { (void)tokenizer.apply_chat_template("[]", true, R"({"x": -1e400})"); }), kInvalidArgument,
                 "malformed JSON", "apply_chat_template extra");
}

TEST(FuzzRegressions, DeeplyNestedJsonIsRefusedBeforeItOverflowsTheStack) {
  // A 400 KB config.json / tokenizer.json of nested brackets overflowed the stack in json::dump()
  // while formatting the error message (found by fuzz_configs and fuzz_tokenizer_load).
  const int depth = 200000;
  const std::string deep = std::string(depth, '[') + std::string(depth, ']');
  expect_outcome(run([&] { (void)parse_model_config(R"({"patch_size": )" + deep + "}", "config.json"); }),
                 kInvalidFile, "JSON nests deeper than 512 levels", "config.json");
  const std::string tok = R"({"model":{"type":"BPE","vocab":{"a":0},"merges":[]},)"
                          R"("pre_tokenizer":{"type":"ByteLevel","use_regex":false},"decoder":)" +
                          deep + "}";
  expect_outcome(run([&] { (void)BpeTokenizer::from_json_text(tok, "tokenizer.json"); }), kInvalidFile,
                 "JSON nests deeper than 512 levels", "tokenizer.json");
  // Brackets inside strings do not count, and real nesting up to the limit is fine.
  EXPECT_NO_THROW((void)parse_preprocessor_config(R"({"x": ")" + std::string(5000, '[') + R"("})", "pp.json"));
  EXPECT_NO_THROW((void)parse_preprocessor_config(
      R"({"x": )" + std::string(500, '[') + std::string(500, ']') + "}", "pp.json"));
}

TEST(FuzzRegressions, SmartResizeRejectsSizesWhoseProductsOverflow) {
  // fuzz_preprocess: smart_resize(2^63-1, 2^63-1, ...) multiplied int64s past their range (UB).
  const int64_t big = INT64_MAX;
  expect_outcome(run([&] { (void)smart_resize(big, big, 32, 0, big); }), kInvalidArgument,
                 "is above the limit of 16777216", "huge sides");
  expect_outcome(run([&] { (void)smart_resize(64, 64, big, 0, big); }), kInvalidArgument,
                 "factor 9223372036854775807 is above the limit", "huge factor");
  expect_outcome(run([&] { (void)smart_resize(1, 200, 32, big, big); }), kInvalidArgument,
                 "min_pixels 9223372036854775807 is above the limit", "huge min_pixels");
  // The largest accepted values still compute without overflow.
  const ResizeResult r = smart_resize(int64_t(1) << 24, int64_t(1) << 24, 32, 0, big);
  EXPECT_EQ(r.height, int64_t(1) << 24);
  const ResizeResult up = smart_resize(1, 200, 1, int64_t(1) << 52, big);
  EXPECT_GT(up.height, 0);
}

}  // namespace
}  // namespace qvl
