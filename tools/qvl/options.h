// Flags shared by the subcommands, and every check on their values: this file is the one place
// where a flag's value is parsed and validated, so a bad value gets the same plain message
// ("--max-tokens must be a positive integer, or -1 for no limit (got 0)") in every subcommand.
// Numeric values are parsed here rather than by CLI11, whose range messages print doubles with
// hundreds of digits. A new model option is one line in add_model_options, bound to its
// ModelOptions field, and every command that loads a model gets it.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "qvl/qvl.hpp"

namespace qvl::cli {

// argv with llama.cpp's multi-letter single-dash flags, which CLI11 cannot define, in their
// long form: -ngl → --n-gpu-layers, -sys → --system-prompt, -np → --parallel.
std::vector<std::string> with_long_flag_names(int argc, char** argv);

// A user mistake on the command line: main prints it as "qvl: error: MESSAGE" and exits 1.
[[noreturn]] void usage_error(const std::string& message);

// Integer and choice flags whose values are checked with plain messages. `names` as for CLI11
// ("-t,--threads"); messages name the flag by its first long name. A value below `min` or above
// `max`, or one that is not an integer, is a usage error saying the flag "must be `meaning`".
struct IntegerRange {
  int64_t min, max;
  const char* meaning;  // e.g. "a positive integer"
};
CLI::Option* add_integer_option(CLI::App& cmd, const std::string& names, int64_t& target, const IntegerRange& range,
                                const std::string& help);
CLI::Option* add_choice_option(CLI::App& cmd, const std::string& names, std::string& target,
                               const std::vector<std::string>& choices, const std::string& help);

// -t/--threads: a positive count, or 0 or -1 (llama.cpp's habit) for every core.
CLI::Option* add_threads_option(CLI::App& cmd, int& threads);

// --quant, --vision-quant, --kv-type, -t/--threads, -ngl/--n-gpu-layers (accepted and ignored,
// with a note) and (unless with_context is false) -c/--ctx-size, written straight into
// `options`, which must outlive parsing.
void add_model_options(CLI::App& cmd, ModelOptions& options, bool with_context = true);

// Notes on stderr for each setting the loaded model does not honour as requested (a q8_0 KV
// cache that runs f16, a context length clamped to the model's maximum, fewer threads).
void report_overridden_settings(const ModelOptions& requested, const ModelInfo& loaded);

// -n/--max-tokens/--n-predict: a positive count, or -1 (kUntilContextFull) for no limit but EOS
// and the context.
constexpr int64_t kUntilContextFull = -1;
void add_max_tokens_option(CLI::App& cmd, int64_t& max_new_tokens);
// The GeneratorParams::max_new_tokens for a -n value (-1: the whole context).
int64_t max_new_tokens_for(int64_t flag_value, const ModelInfo& info);

// --system, with llama.cpp's -sys/--system-prompt as aliases.
void add_system_option(CLI::App& cmd, std::string& system);

// --min-pixels and --max-pixels (positive; min at most max, checked by check_image_options).
void add_image_options(CLI::App& cmd, ProcessorOptions& options);
void check_image_options(const ProcessorOptions& options);

// Where `qvl run` takes its prompt from: -p TEXT, -f FILE (for prompts beyond the argument-size
// limit) or --messages FILE, at most one of them; and --system (not with --messages, whose file
// holds its own system message).
struct PromptOptions {
  std::string prompt, prompt_file, messages_file, system;
};
void add_prompt_options(CLI::App& cmd, PromptOptions& options);
// Usage error when more than one source is given, or none and `images_given` is false.
void check_prompt_options(const PromptOptions& options, bool images_given);
// The -f file's text, one trailing newline removed (as llama.cpp does), or -p's text.
std::string prompt_text(const PromptOptions& options);

// --video-fps, --video-max-frames, --video-max-pixels, --video-cap-per-frame.
void add_video_options(CLI::App& cmd, VideoOptions& options);
// The messages JSON of one user turn holding `videos` (paths) and `image_count` given images at
// their "<video>" / "<image>" marks (unmarked ones first: videos, then images), then the text.
std::string prompt_messages_with_videos(const std::string& text, size_t image_count,
                                        const std::vector<std::string>& videos, const std::string& system);

// Sampling overrides; a flag not given keeps the checkpoint's generation_config.json value.
struct SamplingOptions {
  std::optional<float> temp, top_p, min_p, repeat_penalty, presence_penalty, frequency_penalty;
  std::optional<int64_t> top_k;
  std::optional<uint64_t> seed;  // none: a random seed per run (--seed -1 or no --seed)

  // Writes the given flags into `params`; --temp 0 means greedy (as in llama.cpp). Without a
  // seed a random one is drawn; params.seed then says which, so the run can be repeated.
  void apply(GeneratorParams& params) const;
};

// --temp, --top-k, --top-p, --min-p, --repeat-penalty, --presence-penalty, --frequency-penalty
// and -s/--seed, written into `options`, which must outlive parsing.
void add_sampling_options(CLI::App& cmd, SamplingOptions& options);

// Usage error naming `what` and the first ill-formed byte when `text` is not valid UTF-8.
void check_utf8(const std::string& what, const std::string& text);

}  // namespace qvl::cli
