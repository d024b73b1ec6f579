#include "generation.h"

#include <cstdio>

namespace qvl::cli {

namespace {
constexpr int64_t kLargeImageTokens = 4096;        // above this an image gets a hint
constexpr int64_t kImageProgressTokens = 1024;     // encoding this many tokens takes a while
constexpr int64_t kPrefillProgressTokens = 512;
}  // namespace

std::optional<int32_t> next_answer_token(Generator& generator) {
  generator.generate_next_token();
  if (generator.stop_reason() == "eos") return std::nullopt;
  return generator.next_token();
}

int64_t total_image_tokens(const ProcessedInputs& inputs) {
  int64_t tokens = 0;
  for (int64_t t : inputs.image_tokens) tokens += t;
  for (int64_t t : inputs.video_tokens) tokens += t;  // videos go through the same tower
  return tokens;
}

void report_large_image(size_t image_number, int64_t tokens) {
  if (tokens <= kLargeImageTokens) return;
  std::fprintf(stderr,
               "hint: image %zu gives %lld tokens and will be slow to encode; --max-pixels 1048576 caps images at "
               "about 1024 tokens\n",
               image_number, static_cast<long long>(tokens));
}

void report_warnings(const ProcessedInputs& inputs) {
  for (const auto& warning : inputs.warnings) std::fprintf(stderr, "warning: %s\n", warning.c_str());
}

void report_inputs(const ProcessedInputs& inputs) {
  report_warnings(inputs);
  for (size_t i = 0; i < inputs.image_tokens.size(); ++i) report_large_image(i + 1, inputs.image_tokens[i]);
}

ProgressCallback show_progress(ProgressPrinter& printer, int64_t image_tokens, std::function<bool()> keep_going) {
  return [&printer, image_tokens, keep_going = std::move(keep_going)](const Progress& p) {
    if (p.stage == Progress::Stage::kImageEncode) {
      if (image_tokens >= kImageProgressTokens) printer.update("encoding images (vision blocks)", p.done, p.total);
    } else if (p.total >= kPrefillProgressTokens) {
      printer.update("prefill (tokens)", p.done, p.total);
    }
    if (keep_going()) return true;
    printer.end_line();
    return false;
  };
}

void report_context_full(const ModelInfo& info, const char* advice) {
  std::fprintf(stderr, "note: the context is full (%lld tokens); %s\n", static_cast<long long>(info.context_length),
               advice);
}

}  // namespace qvl::cli
