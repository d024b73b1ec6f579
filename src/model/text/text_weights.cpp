#include "model/text/text_weights.h"

#include "core/check.h"
#include "model/weight_view.h"

namespace qvl {

std::string text_tensor_prefix(const ModelConfig& config) {
  return config.model_type == "qwen3_vl" ? "model.language_model." : "model.";
}

TextWeights load_text_weights(const ModelConfig& config, Checkpoint& ckpt) {
  const TextConfig& c = config.text;
  const std::string p = text_tensor_prefix(config);
  const int64_t h = c.hidden_size, d = c.head_dim, q_dim = c.num_attention_heads * d,
                kv_dim = c.num_key_value_heads * d, ff = c.intermediate_size, v = c.vocab_size;
  TextWeights w;
  w.embed_tokens = as_matrix(ckpt.get(p + "embed_tokens.weight", {v, h}));
  w.layers.resize(static_cast<size_t>(c.num_hidden_layers));
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string l = p + "layers." + std::to_string(i) + ".";
    TextLayerWeights& layer = w.layers[static_cast<size_t>(i)];
    layer.input_layernorm = as_f32(ckpt.get(l + "input_layernorm.weight", {h}));
    layer.self_attn.q_proj = as_matrix(ckpt.get(l + "self_attn.q_proj.weight", {q_dim, h}));
    layer.self_attn.k_proj = as_matrix(ckpt.get(l + "self_attn.k_proj.weight", {kv_dim, h}));
    layer.self_attn.v_proj = as_matrix(ckpt.get(l + "self_attn.v_proj.weight", {kv_dim, h}));
    layer.self_attn.o_proj = as_matrix(ckpt.get(l + "self_attn.o_proj.weight", {h, q_dim}));
    layer.self_attn.q_norm = as_f32(ckpt.get(l + "self_attn.q_norm.weight", {d}));
    layer.self_attn.k_norm = as_f32(ckpt.get(l + "self_attn.k_norm.weight", {d}));
    if (c.attention_bias)
      fail(ErrorKind::kUnsupported, "attention_bias=true is not supported for Qwen3 text layers");
    layer.post_attention_layernorm = as_f32(ckpt.get(l + "post_attention_layernorm.weight", {h}));
    layer.mlp.gate_proj = as_matrix(ckpt.get(l + "mlp.gate_proj.weight", {ff, h}));
    layer.mlp.up_proj = as_matrix(ckpt.get(l + "mlp.up_proj.weight", {ff, h}));
    layer.mlp.down_proj = as_matrix(ckpt.get(l + "mlp.down_proj.weight", {h, ff}));
  }
  w.norm = as_f32(ckpt.get(p + "norm.weight", {h}));
  if (const TensorView* head = ckpt.find("lm_head.weight", {v, h}); head != nullptr && !c.tie_word_embeddings) {
    w.lm_head = as_matrix(*head);
  } else if (c.tie_word_embeddings) {
    w.lm_head = w.embed_tokens;  // a stored copy of a tied head is identical; use one
  } else {
    fail(ErrorKind::kInvalidFile, "tensor 'lm_head.weight' is missing and the config does not tie it to embed_tokens");
  }
  return w;
}

void quantize_text_weights(TextWeights& w, const TextWeightFormats& formats, ThreadPool* pool) {
  auto convert = [&](WeightMatrix& m, kernels::WeightFormat f) {
    if (f == kernels::WeightFormat::kDense || m.quantized() || !kernels::can_quantize(f, m.rows, m.cols)) return;
    w.owned.push_back(kernels::quantize_matrix(m, f, pool));
    m = w.owned.back().view();  // the buffer lives on the heap: moving `owned` keeps it valid
  };
  const bool tied = w.lm_head.data == w.embed_tokens.data;
  convert(w.embed_tokens, formats.head);
  if (tied) w.lm_head = w.embed_tokens;
  else convert(w.lm_head, formats.head);
  for (auto& l : w.layers)
    for (WeightMatrix* m : {&l.self_attn.q_proj, &l.self_attn.k_proj, &l.self_attn.v_proj, &l.self_attn.o_proj,
                            &l.mlp.gate_proj, &l.mlp.up_proj, &l.mlp.down_proj})
      convert(*m, formats.layers);
}

}  // namespace qvl
