// The Qwen3 text decoder stack: layers over input embeddings, final norm, lm_head.
#pragma once

#include <memory>
#include <vector>

#include "core/thread_pool.h"
#include "formats/checkpoint.h"
#include "formats/model_config.h"
#include "model/text/kv_cache.h"
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

 private:
  TextConfig config_;
  TextWeights weights_;
  TextRotary rotary_;
};

}  // namespace qvl
