#include "model/text/text_tensors.h"

#include <string>

#include "core/check.h"

namespace qvl {

namespace {

using Shape = std::vector<int64_t>;
using R = TensorRole;
using Q = QuantClass;
using Rep = TextRepeat;

int64_t q_dim(const TextConfig& c) { return c.num_attention_heads * c.head_dim; }
int64_t kv_dim(const TextConfig& c) { return c.num_key_value_heads * c.head_dim; }

Shape vocab_by_hidden(const TextConfig& c) { return {c.vocab_size, c.hidden_size}; }
Shape hidden(const TextConfig& c) { return {c.hidden_size}; }
Shape head(const TextConfig& c) { return {c.head_dim}; }
Shape q_by_hidden(const TextConfig& c) { return {q_dim(c), c.hidden_size}; }
Shape kv_by_hidden(const TextConfig& c) { return {kv_dim(c), c.hidden_size}; }
Shape hidden_by_q(const TextConfig& c) { return {c.hidden_size, q_dim(c)}; }
Shape ff_by_hidden(const TextConfig& c) { return {c.intermediate_size, c.hidden_size}; }
Shape hidden_by_ff(const TextConfig& c) { return {c.hidden_size, c.intermediate_size}; }

TextLayerWeights& layer(TextWeights& w, size_t i) { return w.layers.at(i); }

}  // namespace

std::string text_tensor_prefix(const ModelConfig& config) {
  return config.model_type == "qwen3_vl" ? "model.language_model." : "model.";
}

const std::vector<TextTensorRow>& text_tensor_rows() {
  static const std::vector<TextTensorRow> kRows = {
      {"{p}embed_tokens.weight", R::kEmbedding, Q::kTextHead, Rep::kOnce, vocab_by_hidden,
       [](TextWeights& w, size_t) { return TensorField(w.embed_tokens); }},
      {"{p}layers.{i}.input_layernorm.weight", R::kNormWeight, Q::kNever, Rep::kPerLayer, hidden,
       [](TextWeights& w, size_t i) { return TensorField(layer(w, i).input_layernorm); }},
      {"{p}layers.{i}.self_attn.q_proj.weight", R::kLinear, Q::kTextLayer, Rep::kPerLayer, q_by_hidden,
       [](TextWeights& w, size_t i) { return TensorField(layer(w, i).self_attn.q_proj); }},
      {"{p}layers.{i}.self_attn.k_proj.weight", R::kLinear, Q::kTextLayer, Rep::kPerLayer, kv_by_hidden,
       [](TextWeights& w, size_t i) { return TensorField(layer(w, i).self_attn.k_proj); }},
      {"{p}layers.{i}.self_attn.v_proj.weight", R::kLinear, Q::kTextLayer, Rep::kPerLayer, kv_by_hidden,
       [](TextWeights& w, size_t i) { return TensorField(layer(w, i).self_attn.v_proj); }},
      {"{p}layers.{i}.self_attn.o_proj.weight", R::kLinear, Q::kTextLayer, Rep::kPerLayer, hidden_by_q,
       [](TextWeights& w, size_t i) { return TensorField(layer(w, i).self_attn.o_proj); }},
      {"{p}layers.{i}.self_attn.q_norm.weight", R::kNormWeight, Q::kNever, Rep::kPerLayer, head,
       [](TextWeights& w, size_t i) { return TensorField(layer(w, i).self_attn.q_norm); }},
      {"{p}layers.{i}.self_attn.k_norm.weight", R::kNormWeight, Q::kNever, Rep::kPerLayer, head,
       [](TextWeights& w, size_t i) { return TensorField(layer(w, i).self_attn.k_norm); }},
      {"{p}layers.{i}.post_attention_layernorm.weight", R::kNormWeight, Q::kNever, Rep::kPerLayer, hidden,
       [](TextWeights& w, size_t i) { return TensorField(layer(w, i).post_attention_layernorm); }},
      {"{p}layers.{i}.mlp.gate_proj.weight", R::kLinear, Q::kTextLayer, Rep::kPerLayer, ff_by_hidden,
       [](TextWeights& w, size_t i) { return TensorField(layer(w, i).mlp.gate_proj); }},
      {"{p}layers.{i}.mlp.up_proj.weight", R::kLinear, Q::kTextLayer, Rep::kPerLayer, ff_by_hidden,
       [](TextWeights& w, size_t i) { return TensorField(layer(w, i).mlp.up_proj); }},
      {"{p}layers.{i}.mlp.down_proj.weight", R::kLinear, Q::kTextLayer, Rep::kPerLayer, hidden_by_ff,
       [](TextWeights& w, size_t i) { return TensorField(layer(w, i).mlp.down_proj); }},
      {"{p}norm.weight", R::kNormWeight, Q::kNever, Rep::kOnce, hidden,
       [](TextWeights& w, size_t) { return TensorField(w.norm); }},
      {"lm_head.weight", R::kLinear, Q::kTextHead, Rep::kUnlessTied, vocab_by_hidden,
       [](TextWeights& w, size_t) { return TensorField(w.lm_head); }},
  };
  return kRows;
}

std::vector<TensorSpec> text_tensor_specs(const ModelConfig& config) {
  const TextConfig& c = config.text;
  const std::string prefix = text_tensor_prefix(config);
  auto count_of = [&](const TextTensorRow& row) -> size_t {
    switch (row.repeat) {
      case Rep::kPerLayer: return static_cast<size_t>(c.num_hidden_layers);
      case Rep::kUnlessTied: return c.tie_word_embeddings ? 0 : 1;
      case Rep::kOnce: break;
    }
    return 1;
  };
  auto spec_of = [&](const TextTensorRow& row, size_t r, size_t i) {
    std::string name = expand_tensor_name(expand_tensor_name(row.name, "p", prefix), "i", std::to_string(i));
    return TensorSpec{std::move(name), row.shape(c), row.role, row.quant, r, i};
  };
  return expand_tensor_table(text_tensor_rows(), count_of, spec_of);
}

TensorField text_tensor_field(TextWeights& w, const TensorSpec& spec) {
  return text_tensor_rows().at(spec.row).field(w, spec.index);
}

TextWeightBytes text_weight_bytes(const ModelConfig& config, const TextWeights& w) {
  TextWeightBytes out;
  auto& fields = const_cast<TextWeights&>(w);  // only read through the fields below
  for (const TensorSpec& s : text_tensor_specs(config)) {
    const uint64_t bytes = held_bytes(text_tensor_field(fields, s));
    out.all += bytes;
    if (s.quant == QuantClass::kTextLayer) out.per_token += bytes;
  }
  out.per_token += static_cast<uint64_t>(kernels::weight_storage_bytes(w.lm_head));  // tied or not
  return out;
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
