#include "formats/model_config.h"

#include <filesystem>
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/check.h"
#include "core/json_util.h"
#include "core/mapped_file.h"

namespace qvl {

namespace {

// Upper bounds that no real checkpoint approaches; they stop absurd configs from
// driving huge allocations before any tensor is checked.
constexpr int64_t kMaxDim = int64_t(1) << 20;
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxVocab = int64_t(1) << 24;

int64_t positive(const Json& obj, const char* key, const std::string& what, int64_t max_value) {
  int64_t v = json_int(obj, key, what);
  if (v <= 0 || v > max_value)
    fail(ErrorKind::kInvalidFile, what, ": '", key, "' = ", v, " is out of range (1..", max_value, ")");
  return v;
}

std::vector<int64_t> int_or_list(const Json& v, const std::string& what, const char* key) {
  std::vector<int64_t> out;
  if (v.is_null()) return out;
  if (v.is_number_integer()) return {v.get<int64_t>()};
  if (!v.is_array()) fail(ErrorKind::kInvalidFile, what, ": '", key, "' must be an integer or a list");
  for (const Json& e : v) {
    if (!e.is_number_integer()) fail(ErrorKind::kInvalidFile, what, ": '", key, "' holds a non-integer");
    out.push_back(e.get<int64_t>());
  }
  return out;
}

TextConfig parse_text(const Json& t, const Json& top, const std::string& what) {
  TextConfig c;
  c.hidden_size = positive(t, "hidden_size", what, kMaxDim);
  c.num_hidden_layers = positive(t, "num_hidden_layers", what, kMaxLayers);
  c.num_attention_heads = positive(t, "num_attention_heads", what, 4096);
  c.num_key_value_heads = t.contains("num_key_value_heads") && !t["num_key_value_heads"].is_null()
                              ? positive(t, "num_key_value_heads", what, 4096)
                              : c.num_attention_heads;
  c.head_dim = t.contains("head_dim") && !t["head_dim"].is_null()
                   ? positive(t, "head_dim", what, 4096)
                   : c.hidden_size / c.num_attention_heads;
  c.intermediate_size = positive(t, "intermediate_size", what, kMaxDim);
  c.vocab_size = positive(t, "vocab_size", what, kMaxVocab);
  c.max_position_embeddings = json_int_or(t, "max_position_embeddings", 32768, what);
  c.rms_norm_eps = json_number_or(t, "rms_norm_eps", 1e-6, what);
  c.attention_bias = json_bool_or(t, "attention_bias", false, what);
  c.hidden_act = json_string_or(t, "hidden_act", "silu", what);
  // Tying is declared at the top level for VL checkpoints and inside text_config as well.
  c.tie_word_embeddings = json_bool_or(top, "tie_word_embeddings", json_bool_or(t, "tie_word_embeddings", false, what), what);

  if (c.num_attention_heads % c.num_key_value_heads != 0)
    fail(ErrorKind::kInvalidFile, what, ": num_attention_heads (", c.num_attention_heads,
         ") is not a multiple of num_key_value_heads (", c.num_key_value_heads, ")");
  if (c.head_dim % 2 != 0) fail(ErrorKind::kInvalidFile, what, ": head_dim (", c.head_dim, ") must be even");
  if (c.hidden_act != "silu")
    fail(ErrorKind::kUnsupported, what, ": hidden_act '", c.hidden_act, "' is not supported (only silu)");
  if (!(c.rms_norm_eps > 0)) fail(ErrorKind::kInvalidFile, what, ": rms_norm_eps must be positive");

  // RoPE settings: transformers 4.x puts them in rope_scaling (+ rope_theta beside it);
  // 5.x nests everything, theta included, under rope_parameters.
  const Json* rope = nullptr;
  if (t.contains("rope_parameters") && t["rope_parameters"].is_object()) rope = &t["rope_parameters"];
  else if (t.contains("rope_scaling") && t["rope_scaling"].is_object()) rope = &t["rope_scaling"];
  c.rope_theta = json_number_or(t, "rope_theta", 0.0, what);
  if (rope != nullptr) {
    const std::string type = json_string_or(*rope, "rope_type", json_string_or(*rope, "type", "default", what), what);
    if (type != "default")
      fail(ErrorKind::kUnsupported, what, ": rope_type '", type, "' is not supported (only default)");
    if (c.rope_theta == 0.0) c.rope_theta = json_number_or(*rope, "rope_theta", 0.0, what);
    if (rope->contains("mrope_section")) {
      for (int64_t v : int_or_list((*rope)["mrope_section"], what, "mrope_section")) {
        if (v < 0 || v > 4096) fail(ErrorKind::kInvalidFile, what, ": mrope_section entry ", v, " is out of range");
        c.mrope_section.push_back(static_cast<int>(v));
      }
      c.mrope_interleaved = json_bool_or(*rope, "mrope_interleaved", false, what);
    }
  }
  if (c.rope_theta == 0.0) c.rope_theta = 10000.0;  // transformers' default_theta for Qwen3
  if (!(c.rope_theta > 1.0)) fail(ErrorKind::kInvalidFile, what, ": rope_theta must be > 1");
  if (!c.mrope_section.empty()) {
    if (c.mrope_section.size() != 3)
      fail(ErrorKind::kInvalidFile, what, ": mrope_section must have 3 entries, got ", c.mrope_section.size());
    int sum = std::accumulate(c.mrope_section.begin(), c.mrope_section.end(), 0);
    if (sum != c.head_dim / 2)
      fail(ErrorKind::kInvalidFile, what, ": mrope_section sums to ", sum, " but head_dim/2 is ", c.head_dim / 2);
  }
  return c;
}

VisionConfig parse_vision(const Json& v, const std::string& what) {
  VisionConfig c;
  const std::string w = what + " vision_config";
  c.depth = positive(v, "depth", w, kMaxLayers);
  c.hidden_size = positive(v, "hidden_size", w, kMaxDim);
  c.num_heads = positive(v, "num_heads", w, 4096);
  c.intermediate_size = positive(v, "intermediate_size", w, kMaxDim);
  c.patch_size = positive(v, "patch_size", w, 1024);
  c.temporal_patch_size = positive(v, "temporal_patch_size", w, 64);
  c.spatial_merge_size = positive(v, "spatial_merge_size", w, 64);
  c.in_channels = json_int_or(v, "in_channels", 3, w);
  c.out_hidden_size = positive(v, "out_hidden_size", w, kMaxDim);
  c.num_position_embeddings = positive(v, "num_position_embeddings", w, kMaxDim);
  c.hidden_act = json_string_or(v, "hidden_act", "gelu_pytorch_tanh", w);
  for (int64_t i : int_or_list(v.value("deepstack_visual_indexes", Json()), w, "deepstack_visual_indexes")) {
    if (i < 0 || i > kMaxLayers)
      fail(ErrorKind::kInvalidFile, w, ": deepstack_visual_indexes entry ", i, " is outside [0, depth=", c.depth, ")");
    c.deepstack_visual_indexes.push_back(static_cast<int>(i));
  }
  validate_vision_config(c, w);
  return c;
}

}  // namespace

VisionActivation vision_activation(const std::string& hidden_act, const std::string& what) {
  if (hidden_act == "gelu_pytorch_tanh" || hidden_act == "gelu_new") return VisionActivation::kGeluTanh;
  if (hidden_act == "gelu") return VisionActivation::kGeluErf;
  fail(ErrorKind::kUnsupported, what, ": hidden_act '", hidden_act,
       "' is not supported (expected gelu_pytorch_tanh, gelu_new or gelu)");
}

void validate_vision_config(const VisionConfig& c, const std::string& what) {
  auto positive = [&](const char* name, int64_t v) {
    if (v <= 0) fail(ErrorKind::kInvalidFile, what, ": ", name, " must be positive, got ", v);
  };
  positive("depth", c.depth);
  positive("hidden_size", c.hidden_size);
  positive("num_heads", c.num_heads);
  positive("intermediate_size", c.intermediate_size);
  positive("patch_size", c.patch_size);
  positive("temporal_patch_size", c.temporal_patch_size);
  positive("spatial_merge_size", c.spatial_merge_size);
  positive("out_hidden_size", c.out_hidden_size);
  positive("num_position_embeddings", c.num_position_embeddings);
  if (c.in_channels != 3)
    fail(ErrorKind::kUnsupported, what, ": in_channels must be 3 (RGB), got ", c.in_channels);
  if (c.hidden_size % c.num_heads != 0)
    fail(ErrorKind::kInvalidFile, what, ": hidden_size (", c.hidden_size, ") is not a multiple of num_heads (",
         c.num_heads, ")");
  const int64_t head_dim = c.hidden_size / c.num_heads;
  if (head_dim % 4 != 0)
    fail(ErrorKind::kUnsupported, what, ": head dim ", head_dim,
         " is not a multiple of 4 (the 2-D rotary embedding splits it into row and column halves)");
  int64_t side = 0;
  while ((side + 1) * (side + 1) <= c.num_position_embeddings) ++side;
  if (side * side != c.num_position_embeddings)
    fail(ErrorKind::kInvalidFile, what, ": num_position_embeddings (", c.num_position_embeddings,
         ") is not a perfect square");
  for (size_t k = 0; k < c.deepstack_visual_indexes.size(); ++k) {
    const int idx = c.deepstack_visual_indexes[k];
    if (idx < 0 || idx >= c.depth)
      fail(ErrorKind::kInvalidFile, what, ": deepstack_visual_indexes entry ", idx, " is outside [0, depth=", c.depth,
           ")");
    if (std::find(c.deepstack_visual_indexes.begin(), c.deepstack_visual_indexes.begin() + k, idx) !=
        c.deepstack_visual_indexes.begin() + k)
      fail(ErrorKind::kInvalidFile, what, ": deepstack_visual_indexes lists block ", idx, " twice");
  }
  vision_activation(c.hidden_act, what);
  if (!(c.layer_norm_eps > 0.0) || !std::isfinite(c.layer_norm_eps))
    fail(ErrorKind::kInvalidFile, what, ": layer_norm_eps must be positive, got ", c.layer_norm_eps);
  if (!(c.rope_theta > 0.0) || !std::isfinite(c.rope_theta))
    fail(ErrorKind::kInvalidFile, what, ": rope_theta must be positive, got ", c.rope_theta);
}

ModelConfig parse_model_config(const std::string& json_text, const std::string& what) {
  Json j = parse_json(json_text, what);
  if (!j.is_object()) fail(ErrorKind::kInvalidFile, what, ": expected a JSON object");
  ModelConfig c;
  c.model_type = json_string_or(j, "model_type", "", what);
  if (c.model_type == "qwen3_vl") {
    const Json& tc = json_require(j, "text_config", what);
    c.text = parse_text(tc, j, what + " text_config");
    c.vision = parse_vision(json_require(j, "vision_config", what), what);
    c.image_token_id = json_int_or(j, "image_token_id", 151655, what);
    c.video_token_id = json_int_or(j, "video_token_id", 151656, what);
    c.vision_start_token_id = json_int_or(j, "vision_start_token_id", 151652, what);
    c.vision_end_token_id = json_int_or(j, "vision_end_token_id", 151653, what);
    c.eos_token_ids = int_or_list(tc.value("eos_token_id", Json()), what, "eos_token_id");
    if (c.vision->out_hidden_size != c.text.hidden_size)
      fail(ErrorKind::kInvalidFile, what, ": vision out_hidden_size (", c.vision->out_hidden_size,
           ") differs from text hidden_size (", c.text.hidden_size, ")");
  } else if (c.model_type == "qwen3") {
    c.text = parse_text(j, j, what);
  } else if (c.model_type.empty()) {
    fail(ErrorKind::kInvalidFile, what, ": missing 'model_type'");
  } else {
    fail(ErrorKind::kUnsupported, what, ": model_type '", c.model_type, "' is not supported (qwen3_vl, qwen3)");
  }
  for (int64_t id : int_or_list(j.value("eos_token_id", Json()), what, "eos_token_id"))
    if (std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), id) == c.eos_token_ids.end()) c.eos_token_ids.push_back(id);
  return c;
}

ModelConfig load_model_config(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / "config.json").string();
  return parse_model_config(read_text_file(path, size_t(16) << 20), path);
}

GenerationConfig parse_generation_config(const std::string& json_text, const std::string& what) {
  Json j = parse_json(json_text, what);
  if (!j.is_object()) fail(ErrorKind::kInvalidFile, what, ": expected a JSON object");
  GenerationConfig g;
  g.eos_token_ids = int_or_list(j.value("eos_token_id", Json()), what, "eos_token_id");
  if (j.contains("pad_token_id") && j["pad_token_id"].is_number_integer()) g.pad_token_id = j["pad_token_id"].get<int64_t>();
  g.do_sample = json_bool_or(j, "do_sample", false, what);
  g.temperature = json_number_or(j, "temperature", 1.0, what);
  g.top_k = json_int_or(j, "top_k", 0, what);
  g.top_p = json_number_or(j, "top_p", 1.0, what);
  g.min_p = json_number_or(j, "min_p", 0.0, what);
  g.repetition_penalty = json_number_or(j, "repetition_penalty", 1.0, what);
  g.presence_penalty = json_number_or(j, "presence_penalty", 0.0, what);
  g.frequency_penalty = json_number_or(j, "frequency_penalty", 0.0, what);
  if (j.contains("max_new_tokens") && j["max_new_tokens"].is_number_integer())
    g.max_new_tokens = j["max_new_tokens"].get<int64_t>();
  return g;
}

GenerationConfig load_generation_config(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / "generation_config.json").string();
  if (!std::filesystem::exists(path)) return {};
  return parse_generation_config(read_text_file(path, size_t(1) << 20), path);
}

}  // namespace qvl
