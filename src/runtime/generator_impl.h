// State of one generation sequence. Exposed inside the library so that debugging tools
// (the golden dump) can read intermediate values.
#pragma once

#include <optional>

#include "model/text/kv_cache.h"
#include "runtime/model_impl.h"
#include "runtime/sampler.h"

namespace qvl {

struct Generator::Impl {
  Impl(std::shared_ptr<const Model> model, const GeneratorParams& params);

  std::shared_ptr<const Model> model;
  const Model::Impl& m;
  GeneratorParams params;
  Sampler sampler;
  KvCache cache;

  std::vector<int32_t> sequence;              // evaluated tokens, then possibly one pending token
  std::vector<int64_t> next_position_after;   // per sequence entry: the MRoPE position that follows it
  bool has_pending = false;                   // last entry of `sequence` chosen but not yet evaluated
  size_t prompt_end = 0;                      // generated tokens start here (for penalties)
  std::vector<float> logits;                  // of the last evaluated position
  std::vector<float> last_hidden;             // final-normed hidden state of the last evaluated position
  std::vector<Position3> last_prompt_positions;  // positions of the last appended chunk
  VisionOutput last_vision;                   // vision output of the last appended inputs
  GeneratorStats stats;
  std::string stop_reason;

  int64_t next_position() const { return next_position_after.empty() ? 0 : next_position_after.back(); }
  // Runs rows through the decoder: embeddings from ids (vision rows taken from `vision`).
  void evaluate(const std::vector<int32_t>& ids, const std::vector<Position3>& positions, const VisionOutput* vision);
  void flush_pending();
};

}  // namespace qvl
