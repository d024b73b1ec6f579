#include "model/text/text_decoder.h"

#include <algorithm>

#include "core/check.h"
#include "model/text/text_attention.h"
#include "model/text/text_mlp.h"

namespace qvl {

TextDecoder::TextDecoder(const ModelConfig& config, Checkpoint& ckpt, const TextWeightFormats& formats,
                         ThreadPool* pool)
    : config_(config.text), weights_(load_text_weights(config, ckpt)), rotary_(config.text) {
  quantize_text_weights(weights_, formats, pool);
}

void TextDecoder::embed(int32_t token, float* out) const {
  if (token < 0 || token >= weights_.embed_tokens.rows)
    fail(ErrorKind::kInvalidArgument, "token id ", token, " is outside the vocabulary (0..",
         weights_.embed_tokens.rows - 1, ")");
  kernels::gather_row(weights_.embed_tokens, token, out);
}

void TextDecoder::forward(const float* embeds, int64_t n, const Position3* positions,
                          const DeepstackInjection* deepstack, KvCache& cache, const DecoderOutputs& outputs,
                          ThreadPool* pool) const {
  const TextConfig& c = config_;
  const int64_t hd = c.hidden_size, start = cache.size();
  if (n <= 0) fail(ErrorKind::kInvalidArgument, "forward pass needs at least one token");
  if (start + n > cache.capacity())
    fail(ErrorKind::kLimitExceeded, "sequence of ", start + n, " tokens exceeds the context size of ",
         cache.capacity(), " tokens");
  const int64_t q_dim = c.num_attention_heads * c.head_dim, kv_dim = c.num_key_value_heads * c.head_dim;
  const size_t attn_scratch = static_cast<size_t>(n * (2 * q_dim + 2 * kv_dim));
  const size_t mlp_scratch = static_cast<size_t>(2 * n * c.intermediate_size);
  std::vector<float> hidden(embeds, embeds + n * hd), normed(static_cast<size_t>(n * hd)),
      branch(static_cast<size_t>(n * hd)), scratch(std::max(attn_scratch, mlp_scratch));
  const float eps = static_cast<float>(c.rms_norm_eps);

  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const TextLayerWeights& lw = weights_.layers[static_cast<size_t>(l)];
    for (int64_t i = 0; i < n; ++i)
      kernels::rms_norm(&hidden[i * hd], lw.input_layernorm.data(), hd, eps, &normed[i * hd]);
    text_attention_forward(lw.self_attn, c, rotary_, normed.data(), n, positions, cache, l, start, branch.data(),
                           scratch.data(), pool);
    kernels::add(hidden.data(), branch.data(), n * hd);
    for (int64_t i = 0; i < n; ++i)
      kernels::rms_norm(&hidden[i * hd], lw.post_attention_layernorm.data(), hd, eps, &normed[i * hd]);
    text_mlp_forward(lw.mlp, normed.data(), n, branch.data(), scratch.data(), pool);
    kernels::add(hidden.data(), branch.data(), n * hd);

    if (deepstack != nullptr && l < static_cast<int64_t>(deepstack->per_layer.size())) {
      const float* feature = deepstack->per_layer[static_cast<size_t>(l)];
      for (size_t r = 0; r < deepstack->rows.size(); ++r)
        kernels::add(&hidden[deepstack->rows[r] * hd], feature + static_cast<int64_t>(r) * hd, hd);
    }
  }
  cache.set_size(start + n);

  if (outputs.last_hidden == nullptr && outputs.last_logits == nullptr) return;
  std::vector<float> last(static_cast<size_t>(hd));
  kernels::rms_norm(&hidden[(n - 1) * hd], weights_.norm.data(), hd, eps, last.data());
  if (outputs.last_hidden) std::copy(last.begin(), last.end(), outputs.last_hidden);
  if (outputs.last_logits) kernels::matmul(last.data(), 1, weights_.lm_head, nullptr, outputs.last_logits, pool);
}

}  // namespace qvl
