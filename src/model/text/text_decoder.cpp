#include "model/text/text_decoder.h"

#include <algorithm>

#include "core/check.h"
#include "model/text/text_attention.h"
#include "model/text/text_mlp.h"
#include "model/text/text_tensors.h"

namespace qvl {

TextDecoder::TextDecoder(const ModelConfig& config, Checkpoint& ckpt, const TextWeightFormats& formats,
                         ThreadPool* pool)
    : config_(config.text), weights_(load_text_weights(config, ckpt)), rotary_(config.text) {
  quantize_text_weights(weights_, config, formats, pool);
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
  if (n <= 0) fail(ErrorKind::kInvalidArgument, "forward pass needs at least one token");
  if (cache.size() + n > cache.capacity())
    fail(ErrorKind::kLimitExceeded, "sequence of ", cache.size() + n, " tokens exceeds the context size of ",
         cache.capacity(), " tokens");
  const DecoderSequence sequence{&cache, 0, n, outputs.last_hidden, outputs.last_logits};
  DecoderWorkspace workspace;
  forward_batch(embeds, n, positions, {&sequence, 1}, deepstack, workspace, pool);
}

namespace {

template <typename T>
T* grown(std::vector<T>& v, int64_t n) {
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
  return v.data();
}

}  // namespace

void TextDecoder::forward_batch(const float* embeds, int64_t n, const Position3* positions,
                                std::span<const DecoderSequence> sequences, const DeepstackInjection* deepstack,
                                DecoderWorkspace& ws, ThreadPool* pool) const {
  const TextConfig& c = config_;
  const int64_t hd = c.hidden_size;
  if (n <= 0) fail(ErrorKind::kInvalidArgument, "forward pass needs at least one token");
  ws.segments.clear();
  int64_t covered = 0;
  for (const DecoderSequence& s : sequences) {
    QVL_ASSERT(s.cache != nullptr && s.rows > 0 && s.first_row == covered);
    if (s.cache->size() + s.rows > s.cache->capacity())
      fail(ErrorKind::kLimitExceeded, "sequence of ", s.cache->size() + s.rows, " tokens exceeds the context size of ",
           s.cache->capacity(), " tokens");
    ws.segments.push_back({s.cache, s.first_row, s.rows});
    covered += s.rows;
  }
  QVL_ASSERT(covered == n);

  float* hidden = grown(ws.hidden, n * hd);
  float* normed = grown(ws.normed, n * hd);
  float* branch = grown(ws.branch, n * hd);
  float* scratch = grown(ws.scratch, std::max(text_attention_scratch(c, n), 2 * n * c.intermediate_size));
  std::copy(embeds, embeds + n * hd, hidden);
  const float eps = static_cast<float>(c.rms_norm_eps);

  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const TextLayerWeights& lw = weights_.layers[static_cast<size_t>(l)];
    for_each_row(pool, n, hd, [&](int64_t i0, int64_t i1, int) {
      for (int64_t i = i0; i < i1; ++i)
        kernels::rms_norm(&hidden[i * hd], lw.input_layernorm.data(), hd, eps, &normed[i * hd]);
    });
    text_attention_forward(lw.self_attn, c, rotary_, normed, n, positions, ws.segments, l, branch, scratch, pool);
    // Residual add, then the MLP's norm, row by row.
    for_each_row(pool, n, 2 * hd, [&](int64_t i0, int64_t i1, int) {
      for (int64_t i = i0; i < i1; ++i) {
        kernels::add(&hidden[i * hd], &branch[i * hd], hd);
        kernels::rms_norm(&hidden[i * hd], lw.post_attention_layernorm.data(), hd, eps, &normed[i * hd]);
      }
    });
    text_mlp_forward(lw.mlp, normed, n, branch, scratch, pool);
    for_each_row(pool, n, hd, [&](int64_t i0, int64_t i1, int) { kernels::add(&hidden[i0 * hd], &branch[i0 * hd], (i1 - i0) * hd); });

    if (deepstack != nullptr && l < static_cast<int64_t>(deepstack->per_layer.size())) {
      const float* feature = deepstack->per_layer[static_cast<size_t>(l)];
      for (size_t r = 0; r < deepstack->rows.size(); ++r)
        kernels::add(&hidden[deepstack->rows[r] * hd], feature + static_cast<int64_t>(r) * hd, hd);
    }
  }
  for (const DecoderSequence& s : sequences) s.cache->set_size(s.cache->size() + s.rows);

  // Final norm of each sequence's last row; the lm_head runs once over all that want logits.
  ws.want_head.clear();
  for (const DecoderSequence& s : sequences)
    if (s.last_hidden != nullptr || s.last_logits != nullptr) ws.want_head.push_back(&s);
  const int64_t m = static_cast<int64_t>(ws.want_head.size());
  if (m == 0) return;
  float* head_in = grown(ws.head_in, m * hd);
  for (int64_t j = 0; j < m; ++j) {
    const DecoderSequence& s = *ws.want_head[static_cast<size_t>(j)];
    kernels::rms_norm(&hidden[(s.first_row + s.rows - 1) * hd], weights_.norm.data(), hd, eps, &head_in[j * hd]);
    if (s.last_hidden) std::copy(&head_in[j * hd], &head_in[(j + 1) * hd], s.last_hidden);
  }
  const int64_t vocab = weights_.lm_head.rows;
  bool any_logits = false;
  for (const DecoderSequence* s : ws.want_head) any_logits = any_logits || s->last_logits != nullptr;
  if (!any_logits) return;
  if (m == 1) {
    kernels::matmul(head_in, 1, weights_.lm_head, nullptr, ws.want_head[0]->last_logits, pool);
    return;
  }
  float* head_out = grown(ws.head_out, m * vocab);
  kernels::matmul(head_in, m, weights_.lm_head, nullptr, head_out, pool);
  for (int64_t j = 0; j < m; ++j)
    if (float* logits = ws.want_head[static_cast<size_t>(j)]->last_logits)
      std::copy(&head_out[j * vocab], &head_out[(j + 1) * vocab], logits);
}

}  // namespace qvl
