// The Qwen3 text decoder stack: layers over input embeddings, final norm, lm_head.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "formats/checkpoint.h"
#include "formats/model_config.h"
#include "model/text/kv_cache.h"
#include "model/text/text_attention.h"
#include "model/text/text_rotary.h"
#include "model/text/text_weights.h"

namespace qvl {

// DeepStack: visual features added to the hidden states of image-token rows after the
// first layers (feature j after layer j).
struct DeepstackInjection {
  std::vector<int64_t> rows;             // rows of this forward call that hold visual tokens
  std::vector<const float*> per_layer;   // per_layer[j]: [rows.size(), hidden]
};

struct DecoderOutputs {
  float* last_hidden = nullptr;  // [hidden]: final-normed hidden state of the last row (optional)
  float* last_logits = nullptr;  // [vocab]: logits of the last row (optional)
};

// One sequence's part of a batched forward call: rows [first_row, first_row + rows) of the
// batch, run at cache positions cache->size() onwards, and what it wants back of its last row.
struct DecoderSequence {
  KvCache* cache = nullptr;
  int64_t first_row = 0, rows = 0;
  float* last_hidden = nullptr;  // [hidden]: final-normed hidden state (optional)
  float* last_logits = nullptr;  // [vocab] (optional)
};

// Activation buffers of forward calls. They grow to the largest call seen and are kept, so a
// steady decode step allocates nothing. One workspace per thread that calls forward.
class DecoderWorkspace {
 private:
  friend class TextDecoder;
  std::vector<float> hidden, normed, branch, scratch, head_in, head_out;
  std::vector<AttentionSegment> segments;
  std::vector<const DecoderSequence*> want_head;
};

class TextDecoder {
 public:
  TextDecoder(const ModelConfig& config, Checkpoint& ckpt, const TextWeightFormats& formats = {},
              ThreadPool* pool = nullptr);

  const TextConfig& config() const { return config_; }
  const TextWeights& weights() const { return weights_; }

  // Embedding of one token id (fp32), into out[hidden].
  void embed(int32_t token, float* out) const;

  // Runs n new rows (input embeddings [n, hidden], one 3-D position each) at cache positions
  // cache.size()..cache.size()+n-1, appends their K/V and advances the cache.
  void forward(const float* embeds, int64_t n, const Position3* positions, const DeepstackInjection* deepstack,
               KvCache& cache, const DecoderOutputs& outputs, ThreadPool* pool) const;

  // Several sequences in one pass over the weights: embeds [n, hidden] hold the rows of every
  // sequence (each sequence's rows contiguous, in order); every weight matrix is applied once to
  // all n rows, and each sequence attends over its own cache, which is then advanced by its rows.
  // DeepStack rows index the whole batch. Per-row results do not depend on the other sequences.
  void forward_batch(const float* embeds, int64_t n, const Position3* positions,
                     std::span<const DecoderSequence> sequences, const DeepstackInjection* deepstack,
                     DecoderWorkspace& workspace, ThreadPool* pool) const;

 private:
  TextConfig config_;
  TextWeights weights_;
  TextRotary rotary_;
};

}  // namespace qvl
