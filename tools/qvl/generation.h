// What `qvl run` and `qvl chat` share around a Generator: stepping it, telling the user about the
// inputs (warnings, very large images), progress of long calls, and a context that ran full.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "progress.h"
#include "qvl/qvl.hpp"

namespace qvl::cli {

// Runs one generation step: the token it produced, or nothing when that token was the
// end-of-sequence token (not part of the answer).
std::optional<int32_t> next_answer_token(Generator& generator);

// Placeholder tokens of all images of `inputs`.
int64_t total_image_tokens(const ProcessedInputs& inputs);

// The processor's warnings ("warning: ..." on stderr).
void report_warnings(const ProcessedInputs& inputs);
// A hint when an image gives more than 4096 tokens (slow to encode; --max-pixels caps it).
void report_large_image(size_t image_number, int64_t tokens);
// Both, for every image of `inputs`.
void report_inputs(const ProcessedInputs& inputs);

// A progress callback that shows image encoding when the call encodes at least 1024 image
// tokens (`image_tokens`) and prefill when it evaluates at least 512 tokens, and cancels the
// call when keep_going() turns false.
ProgressCallback show_progress(ProgressPrinter& printer, int64_t image_tokens, std::function<bool()> keep_going);

// The note for a generation that stopped because the context is full, with `advice`.
void report_context_full(const ModelInfo& info, const char* advice);

}  // namespace qvl::cli
