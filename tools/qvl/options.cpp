#include "options.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

#include "core/utf8.h"
#include <nlohmann/json.hpp>

namespace qvl::cli {

namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();
constexpr int kMaxThreads = 1024;

// The name messages use for a flag: its first long name ("--threads" for "-t,--threads").
std::string flag_name(const std::string& names) {
  std::stringstream list(names);
  std::string first, name;
  while (std::getline(list, name, ',')) {
    if (first.empty()) first = name;
    if (name.rfind("--", 0) == 0) return name;
  }
  return first;
}

[[noreturn]] void reject(const std::string& flag, const std::string& meaning, const std::string& text) {
  usage_error(flag + " must be " + meaning + " (got " + (text.empty() ? "''" : text) + ")");
}

// The whole of `text` as a T, or nothing (trailing characters, overflow, not a number).
template <class T>
std::optional<T> parse_whole(const std::string& text) {
  T value{};
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

int64_t parse_integer(const std::string& flag, const std::string& text, const IntegerRange& range) {
  const auto value = parse_whole<int64_t>(text);
  if (!value || *value < range.min || *value > range.max) reject(flag, range.meaning, text);
  return *value;
}

// A finite number in [min, max] (from_chars accepts "nan" and "inf", which no flag takes).
float parse_number(const std::string& flag, const std::string& text, double min, double max, const char* meaning) {
  const auto value = parse_whole<double>(text);
  if (!value || !std::isfinite(*value) || *value < min || *value > max) reject(flag, meaning, text);
  return static_cast<float>(*value);
}

// A flag whose text `parse(flag, text)` turns into the target's value (or rejects, naming the flag).
template <class Target, class Parse>
CLI::Option* add_parsed_option(CLI::App& cmd, const std::string& names, Target& target, Parse parse,
                               const std::string& help, const char* type_name) {
  const std::string flag = flag_name(names);
  return cmd
      .add_option_function<std::string>(
          names, [&target, flag, parse](const std::string& text) { target = parse(flag, text); }, help)
      ->type_name(type_name);
}

template <class Target>
CLI::Option* add_range_option(CLI::App& cmd, const std::string& names, Target& target, const IntegerRange& range,
                              const std::string& help, const char* type_name = "INT") {
  auto parse = [range](const std::string& flag, const std::string& text) { return parse_integer(flag, text, range); };
  return add_parsed_option(cmd, names, target, parse, help, type_name);
}

CLI::Option* add_number_option(CLI::App& cmd, const std::string& names, std::optional<float>& target, double min,
                               double max, const char* meaning, const std::string& help) {
  auto parse = [min, max, meaning](const std::string& flag, const std::string& text) {
    return parse_number(flag, text, min, max, meaning);
  };
  return add_parsed_option(cmd, names, target, parse, help, "NUMBER");
}

const std::vector<std::string> kWeightTypes = {"q4_k", "q4_0", "q8_0", "bf16"};

}  // namespace

std::vector<std::string> with_long_flag_names(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--") break;  // what follows is positional
    if (args[i] == "-ngl") args[i] = "--n-gpu-layers";
    else if (args[i] == "-sys") args[i] = "--system-prompt";
    else if (args[i] == "-np") args[i] = "--parallel";
  }
  return args;
}

void usage_error(const std::string& message) { throw CLI::ValidationError(message); }

CLI::Option* add_integer_option(CLI::App& cmd, const std::string& names, int64_t& target, const IntegerRange& range,
                                const std::string& help) {
  return add_range_option(cmd, names, target, range, help);
}

CLI::Option* add_choice_option(CLI::App& cmd, const std::string& names, std::string& target,
                               const std::vector<std::string>& choices, const std::string& help) {
  std::string meaning = "one of ";
  for (size_t i = 0; i < choices.size(); ++i) meaning += (i == 0 ? "" : ", ") + choices[i];
  auto parse = [choices, meaning](const std::string& flag, const std::string& text) {
    if (std::find(choices.begin(), choices.end(), text) == choices.end()) reject(flag, meaning, text);
    return text;
  };
  return add_parsed_option(cmd, names, target, parse, help, "TYPE");
}

CLI::Option* add_threads_option(CLI::App& cmd, int& threads) {
  auto parse = [](const std::string& flag, const std::string& text) {
    const int64_t n =
        parse_integer(flag, text, {-1, kMaxThreads, "a thread count from 1 to 1024, or 0 or -1 for every core"});
    return n < 0 ? 0 : static_cast<int>(n);
  };
  return add_parsed_option(cmd, "-t,--threads", threads, parse,
                           "Threads (default: every core; 0 or -1 also mean every core)", "INT");
}

void add_model_options(CLI::App& cmd, ModelOptions& options, bool with_context) {
  std::vector<std::string> text_types = kWeightTypes;
  text_types.push_back("f32");
  add_choice_option(cmd, "--quant", options.weights_type, text_types,
                    "Quantize the text weights at load to q4_k, q4_0 or q8_0, or convert them to bf16; f32 decodes "
                    "a llama.cpp file's quantized blocks to f32 (exact, slow) (default: as stored; not for a file "
                    "that is quantized already)");
  add_choice_option(cmd, "--vision-quant", options.vision_weights_type, kWeightTypes,
                    "Quantize the vision tower at load to q8_0 (about 2x faster image encoding), q4_k or q4_0, "
                    "or convert it to bf16 (default: as stored)");
  add_choice_option(cmd, "--vision-attn", options.vision_attention, {"bf16", "f32"},
                    "Vision tower attention arithmetic: bf16 (bf16 products, fp32 softmax and sums; ~3.5x faster "
                    "attention with AVX512_BF16, ~2.3x on AVX2) or f32 (the reference) (default: bf16 with "
                    "AVX512_BF16 or on AVX2, else f32)");
  add_choice_option(cmd, "--kv-type", options.kv_cache_type, {"f16", "f32", "q8_0"},
                    "KV cache element type: f16 (default), f32 or q8_0 (q8_0 needs a head size divisible by 32, "
                    "else f16 is used and a note says so)");
  cmd.add_option("--mmproj", options.mmproj,
                 "Vision projector GGUF (llama.cpp's mmproj file) for a llama.cpp text GGUF given with -m")
      ->type_name("FILE");
  add_threads_option(cmd, options.threads);
  if (with_context)
    add_range_option(cmd, "-c,--ctx-size", options.context_length,
                     {0, kMaxInt, "a positive token count, or 0 for the model's maximum"},
                     "Context length in tokens (default 0: the model's maximum, up to 32768)");
  cmd.add_option_function<std::string>(
         "--n-gpu-layers", [](const std::string&) { std::fprintf(stderr, "note: qvl runs on the CPU; -ngl ignored\n"); },
         "Accepted for llama.cpp habits (-ngl N) and ignored: qvl runs on the CPU")
      ->type_name("INT");
}

void report_overridden_settings(const ModelOptions& requested, const ModelInfo& loaded) {
  for (const std::string& note : loaded.notes) std::fprintf(stderr, "note: %s\n", note.c_str());
  if (!requested.kv_cache_type.empty() && requested.kv_cache_type != loaded.kv_cache_type)
    std::fprintf(stderr, "note: --kv-type %s requested, but the KV cache is %s for this model\n",
                 requested.kv_cache_type.c_str(), loaded.kv_cache_type.c_str());
  if (requested.context_length > 0 && requested.context_length != loaded.context_length)
    std::fprintf(stderr, "note: --ctx-size %lld requested, but the context holds %lld tokens\n",
                 static_cast<long long>(requested.context_length), static_cast<long long>(loaded.context_length));
  if (requested.threads > 0 && requested.threads != loaded.threads)
    std::fprintf(stderr, "note: --threads %d requested, but the model runs %d threads\n", requested.threads,
                 loaded.threads);
}

void add_max_tokens_option(CLI::App& cmd, int64_t& max_new_tokens) {
  auto parse = [](const std::string& flag, const std::string& text) {
    const IntegerRange range{kUntilContextFull, kMaxInt, "a positive integer, or -1 for no limit"};
    const int64_t n = parse_integer(flag, text, range);
    if (n == 0) reject(flag, range.meaning, text);
    return n;
  };
  add_parsed_option(cmd, "-n,--max-tokens,--n-predict", max_new_tokens, parse,
                    "Most tokens to generate; -1: until the answer ends or the context is full (default: " +
                        std::to_string(max_new_tokens) + ")",
                    "INT");
}

int64_t max_new_tokens_for(int64_t flag_value, const ModelInfo& info) {
  // The context fills before this many tokens, whatever the prompt.
  return flag_value == kUntilContextFull ? info.context_length : flag_value;
}

void add_system_option(CLI::App& cmd, std::string& system) {
  cmd.add_option("--system,--system-prompt", system, "System prompt (-sys works too)");
}

void add_image_options(CLI::App& cmd, ProcessorOptions& options) {
  const IntegerRange area{1, kMaxInt, "a positive pixel count"};
  add_range_option(cmd, "--min-pixels", options.min_pixels, area,
                   "Smallest image area after resizing (default: preprocessor_config.json; 32x32 pixels make one "
                   "image token)",
                   "PIXELS");
  add_range_option(cmd, "--max-pixels", options.max_pixels, area,
                   "Largest image area after resizing (default: preprocessor_config.json); lower it for faster "
                   "encoding, e.g. 1048576 for about 1024 tokens",
                   "PIXELS");
}

void check_image_options(const ProcessorOptions& options) {
  if (options.min_pixels && options.max_pixels && *options.min_pixels > *options.max_pixels)
    usage_error("--min-pixels (" + std::to_string(*options.min_pixels) + ") must not exceed --max-pixels (" +
                std::to_string(*options.max_pixels) + ")");
}

void add_prompt_options(CLI::App& cmd, PromptOptions& options) {
  add_system_option(cmd, options.system);
  cmd.add_option("-p,--prompt", options.prompt,
                 "User prompt; '<image>' marks where images go (default: before the text)");
  cmd.add_option("-f,--file", options.prompt_file,
                 "Read the user prompt from this file (one trailing newline removed), for prompts too long for "
                 "the command line")
      ->type_name("PATH");
  cmd.add_option("--messages", options.messages_file, "Chat messages as OpenAI/HF JSON (instead of -p or -f)")
      ->type_name("PATH");
}

void check_prompt_options(const PromptOptions& options, bool images_given) {
  const int sources = !options.prompt.empty() + !options.prompt_file.empty() + !options.messages_file.empty();
  if (sources > 1)
    usage_error("give the prompt one way: -p/--prompt, -f/--file or --messages, not several");
  if (sources == 0 && !images_given)
    usage_error("give a prompt with -p, a prompt file with -f or messages with --messages");
  if (!options.messages_file.empty() && !options.system.empty())
    usage_error("--system does not apply to --messages: put a system message in the messages file");
}

std::string prompt_text(const PromptOptions& options) {
  if (options.prompt_file.empty()) return options.prompt;
  std::ifstream in(options.prompt_file, std::ios::binary);
  if (!in) throw Error(ErrorKind::kNotFound, "cannot open prompt file '" + options.prompt_file + "'");
  std::stringstream text;
  text << in.rdbuf();
  std::string prompt = text.str();
  if (!prompt.empty() && prompt.back() == '\n') prompt.pop_back();
  return prompt;
}

void SamplingOptions::apply(GeneratorParams& params) const {
  if (temp) {
    params.do_sample = *temp > 0.0f;
    params.temperature = params.do_sample ? *temp : 1.0f;
  }
  if (top_k) params.top_k = *top_k;
  if (top_p) params.top_p = *top_p;
  if (min_p) params.min_p = *min_p;
  if (repeat_penalty) params.repetition_penalty = *repeat_penalty;
  if (presence_penalty) params.presence_penalty = *presence_penalty;
  if (frequency_penalty) params.frequency_penalty = *frequency_penalty;
  // A random seed stays below 2^32 (as llama.cpp's do), short enough to retype and exact in JSON.
  params.seed = seed ? *seed : std::random_device{}();
}

void add_sampling_options(CLI::App& cmd, SamplingOptions& options) {
  const double kBig = std::numeric_limits<float>::max();
  const double kTiny = std::numeric_limits<float>::min();  // the bound of "> 0"
  add_number_option(cmd, "--temp", options.temp, 0, kBig, "a number >= 0",
                    "Sampling temperature (0 = greedy; default: generation_config.json)");
  add_range_option(cmd, "--top-k", options.top_k, {0, kMaxInt, "an integer >= 0"},
                   "Top-k cut-off (0 = off; default: generation_config.json)");
  add_number_option(cmd, "--top-p", options.top_p, kTiny, 1, "a number above 0, at most 1",
                    "Nucleus sampling mass (1 = off; default: generation_config.json)");
  add_number_option(cmd, "--min-p", options.min_p, 0, 1, "a number from 0 to 1",
                    "Min-p cut-off relative to the top token (0 = off)");
  add_number_option(cmd, "--repeat-penalty", options.repeat_penalty, kTiny, kBig, "a number > 0",
                    "Repetition penalty (1 = off)");
  add_number_option(cmd, "--presence-penalty", options.presence_penalty, -kBig, kBig, "a finite number",
                    "Presence penalty (0 = off)");
  add_number_option(cmd, "--frequency-penalty", options.frequency_penalty, -kBig, kBig, "a finite number",
                    "Frequency penalty (0 = off)");
  cmd.add_option_function<std::string>(
         "-s,--seed", [&options](const std::string& text) {
           if (text == "-1") return options.seed.reset();
           const auto seed = parse_whole<uint64_t>(text);
           if (!seed) reject("--seed", "-1 (random) or an integer from 0 to 18446744073709551615", text);
           options.seed = *seed;
         },
         "Sampling seed (default -1: a random seed, printed with the stats so that --seed N repeats the run)")
      ->type_name("INT");
}

void check_utf8(const std::string& what, const std::string& text) {
  const size_t bad = utf8::first_invalid_offset(text);
  if (bad == std::string::npos) return;
  char byte[8];
  std::snprintf(byte, sizeof byte, "0x%02x", static_cast<unsigned char>(text[bad]));
  throw Error(ErrorKind::kInvalidArgument,
              what + " is not valid UTF-8 (byte " + byte + " at offset " + std::to_string(bad) + ")");
}

}  // namespace qvl::cli

namespace qvl::cli {

void add_video_options(CLI::App& cmd, VideoOptions& options) {
  cmd.add_option_function<double>("--video-fps", [&options](double v) { options.fps = v; },
                                  "Video frames sampled per second (default: video_preprocessor_config.json, 2)")
      ->type_name("N");
  cmd.add_option_function<int64_t>("--video-max-frames", [&options](int64_t v) { options.max_frames = v; },
                                   "Most frames sampled from a video (default 768)")
      ->type_name("N");
  cmd.add_option_function<int64_t>("--video-max-pixels", [&options](int64_t v) { options.max_pixels = v; },
                                   "Pixel budget of a whole video, summed over its sampled frames")
      ->type_name("N");
  cmd.add_flag("--video-cap-per-frame", options.cap_pixels_per_frame,
               "Cap each frame at 768 tokens' worth of pixels (qwen-vl-utils' rule)");
}

std::string prompt_messages_with_videos(const std::string& text, size_t image_count,
                                        const std::vector<std::string>& videos, const std::string& system) {
  nlohmann::json messages = nlohmann::json::array();
  if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
  nlohmann::json content = nlohmann::json::array();
  auto video_item = [&](size_t i) {
    std::error_code ec;
    const auto abs = std::filesystem::absolute(videos[i], ec);
    return nlohmann::json{{"type", "video"}, {"video", ec ? videos[i] : abs.string()}};
  };
  size_t marked_images = 0, marked_videos = 0;
  for (size_t p = text.find('<'); p != std::string::npos; p = text.find('<', p + 1)) {
    if (text.compare(p, 7, "<image>") == 0) ++marked_images;
    if (text.compare(p, 7, "<video>") == 0) ++marked_videos;
  }
  if (marked_videos > 0 && marked_videos != videos.size())
    throw Error(ErrorKind::kInvalidArgument, "the prompt marks " + std::to_string(marked_videos) + " <video> place(s) but " +
                                                 std::to_string(videos.size()) + " video(s) were given");
  if (marked_images > 0 && marked_images != image_count)
    throw Error(ErrorKind::kInvalidArgument, "the prompt marks " + std::to_string(marked_images) + " <image> place(s) but " +
                                                 std::to_string(image_count) + " image(s) were given");
  if (marked_videos == 0)
    for (size_t i = 0; i < videos.size(); ++i) content.push_back(video_item(i));
  if (marked_images == 0)
    for (size_t i = 0; i < image_count; ++i) content.push_back({{"type", "image"}});
  size_t start = 0, next_video = 0;
  for (size_t p = text.find('<'); p != std::string::npos; p = text.find('<', p + 1)) {
    const bool is_image = marked_images > 0 && text.compare(p, 7, "<image>") == 0;
    const bool is_video = marked_videos > 0 && text.compare(p, 7, "<video>") == 0;
    if (!is_image && !is_video) continue;
    if (p > start) content.push_back({{"type", "text"}, {"text", text.substr(start, p - start)}});
    content.push_back(is_image ? nlohmann::json{{"type", "image"}} : video_item(next_video++));
    start = p + 7;
    p = start - 1;
  }
  if (start < text.size()) content.push_back({{"type", "text"}, {"text", text.substr(start)}});
  messages.push_back({{"role", "user"}, {"content", content}});
  return messages.dump();
}

}  // namespace qvl::cli
