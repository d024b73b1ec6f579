#include "model/text/text_weights.h"

#include "core/check.h"
#include "model/text/text_tensors.h"

namespace qvl {

std::string text_tensor_prefix(const ModelConfig& config) {
  return config.model_type == "qwen3_vl" ? "model.language_model." : "model.";
}

TextWeights load_text_weights(const ModelConfig& config, Checkpoint& ckpt) {
  const TextConfig& c = config.text;
  if (c.attention_bias)
    fail(ErrorKind::kUnsupported, "attention_bias=true is not supported for Qwen3 text layers");
  if (!c.tie_word_embeddings && !ckpt.has("lm_head.weight"))
    fail(ErrorKind::kInvalidFile, "tensor 'lm_head.weight' is missing and the config does not tie it to embed_tokens");
  TextWeights w;
  w.layers.resize(static_cast<size_t>(c.num_hidden_layers));
  for (const TensorSpec& spec : text_tensor_specs(config)) load_tensor(ckpt, spec, text_tensor_field(w, spec));
  if (c.tie_word_embeddings) {
    ckpt.find("lm_head.weight", {c.vocab_size, c.hidden_size});  // a stored copy of a tied head is identical
    w.lm_head = w.embed_tokens;
  }
  refuse_stray_tensors(ckpt, text_tensor_prefix(config), "text", cat("(", c.num_hidden_layers, " layers)"));
  return w;
}

void quantize_text_weights(TextWeights& w, const ModelConfig& config, const TextWeightFormats& formats,
                           ThreadPool* pool) {
  const QuantFormats by_class{formats.layers, formats.head};
  for (const TensorSpec& spec : text_tensor_specs(config))
    if (spec.quant != QuantClass::kNever)
      quantize_in_place(*text_tensor_field(w, spec).matrix, by_class.of(spec.quant), w.owned, pool);
  if (config.text.tie_word_embeddings) w.lm_head = w.embed_tokens;
}

}  // namespace qvl
