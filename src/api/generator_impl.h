// State of one generation sequence. Exposed inside the library so that debugging tools
// (the golden dump) can read intermediate values.
#pragma once

#include <optional>
#include <span>

#include "model/text/kv_cache.h"
#include "api/model_impl.h"
#include "api/sampler.h"

namespace qvl {

struct Generator::Impl {
  Impl(std::shared_ptr<const Model> model, const GeneratorParams& params);

  std::shared_ptr<const Model> model;
  const Model::Impl& m;
  GeneratorParams params;
  Sampler sampler;
  KvCache cache;
  DecoderInputs inputs;         // the rows of the current decoder call
  DecoderWorkspace workspace;   // the decoder's activations, kept between calls
  // Sampling scratch kept between tokens, so that a steady decode step allocates nothing.
  std::vector<float> sampled_logits;
  std::vector<int32_t> generated;

  std::vector<int32_t> sequence;              // evaluated tokens, then possibly one pending token
  std::vector<int64_t> next_position_after;   // per sequence entry: the MRoPE position that follows it
  bool has_pending = false;                   // last entry of `sequence` chosen but not yet evaluated
  size_t prompt_end = 0;                      // generated tokens start here (for penalties)
  std::vector<float> logits;                  // of the last evaluated position
  std::vector<float> last_hidden;             // final-normed hidden state of the last evaluated position
  GeneratorStats stats;
  std::string stop_reason;
  bool context_full = false;                  // stop_reason "length" came from the context, not max_new_tokens
  ProgressCallback progress;

  // What append() computed on the way, shown to a developer tool (the golden dump) while it is at
  // hand; the generator keeps none of it.
  struct PromptIntermediates {
    const std::vector<Position3>& positions;  // of the appended tokens
    const VisionOutput& vision;               // of its images (empty without)
    const std::vector<float>& last_hidden;    // final-normed hidden state of its last token
  };
  std::function<void(const PromptIntermediates&)> observe_prompt;

  int64_t next_position() const { return next_position_after.empty() ? 0 : next_position_after.back(); }
  // Runs rows through the decoder: embeddings from ids (vision rows taken from `vision`).
  // `report_prefill`: report each chunk to `progress` (which may cancel).
  void evaluate(std::span<const int32_t> ids, std::span<const Position3> positions, const VisionOutput* vision,
                bool report_prefill = false);
  void flush_pending();
  void append(const ProcessedInputs& inputs);                                   // Generator::append_inputs
  void replace_suffix(const ProcessedInputs& conversation, size_t common);      // Generator::set_inputs
  void generate();                                                              // Generator::generate_next_token
  void rewind(size_t length);                                                   // Generator::rewind_to
  bool matches_stop_string(const std::vector<int32_t>& generated) const;
  void clear_stop() {
    stop_reason.clear();
    context_full = false;
  }
  // Tells `progress` (if any) how far a stage is; throws kCancelled when it returns false.
  void report(Progress::Stage stage, int64_t done, int64_t total) const;

  // Everything a call may change, so that a failed or cancelled call can leave the sequence as
  // it was. KV rows below first_saved_row are assumed untouched by the call; the ones from there
  // to the cache size are copied.
  struct Snapshot {
    std::vector<int32_t> sequence;
    std::vector<int64_t> next_position_after;
    bool has_pending = false, context_full = false;
    size_t prompt_end = 0;
    std::vector<float> logits, last_hidden;
    GeneratorStats stats;
    std::string stop_reason;
    int64_t cache_size = 0, first_saved_row = 0;
    std::vector<std::vector<uint8_t>> keys, values;  // per layer: rows [first_saved_row, cache_size)
  };
  Snapshot snapshot(int64_t first_saved_row);
  void restore(Snapshot& before);
  // Runs `fn`; if it throws, restores the state from before it and rethrows.
  template <class Fn>
  void all_or_nothing(int64_t first_saved_row, Fn&& fn) {
    Snapshot before = snapshot(first_saved_row);
    try {
      fn();
    } catch (...) {
      restore(before);
      throw;
    }
  }
};

// How the library and its developer tools reach a Generator's internals.
struct GeneratorInternals {
  static Generator::Impl& of(Generator& generator) { return *generator.impl_; }
};

}  // namespace qvl
