// config.json of a Qwen3-VL (`qwen3_vl`) or plain Qwen3 (`qwen3`) checkpoint, plus
// generation_config.json. Every field the engine uses is read and validated here.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace qvl {

struct TextConfig {
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  int64_t intermediate_size = 0;
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 1e6;
  // MRoPE: rotary pairs per (temporal, height, width) component; empty for plain RoPE.
  std::vector<int> mrope_section;
  bool mrope_interleaved = false;
  bool attention_bias = false;
  bool tie_word_embeddings = false;
  std::string hidden_act = "silu";
};

struct VisionConfig {
  int64_t depth = 0;
  int64_t hidden_size = 0;
  int64_t num_heads = 0;
  int64_t intermediate_size = 0;
  int64_t patch_size = 16;
  int64_t temporal_patch_size = 2;
  int64_t spatial_merge_size = 2;
  int64_t in_channels = 3;
  int64_t out_hidden_size = 0;
  int64_t num_position_embeddings = 0;
  std::vector<int> deepstack_visual_indexes;
  std::string hidden_act = "gelu_pytorch_tanh";
  double layer_norm_eps = 1e-6;  // hard-coded in the reference modeling code
  double rope_theta = 10000.0;   // hard-coded in the reference modeling code
};

struct ModelConfig {
  std::string model_type;  // "qwen3_vl" or "qwen3"
  TextConfig text;
  std::optional<VisionConfig> vision;
  int64_t image_token_id = -1;
  int64_t video_token_id = -1;
  int64_t vision_start_token_id = -1;
  int64_t vision_end_token_id = -1;
  std::vector<int64_t> eos_token_ids;  // from config.json; generation_config.json may extend
};

// The vision MLP activations the forward code implements.
enum class VisionActivation { kGeluTanh, kGeluErf };
// config.json's vision `hidden_act` as an activation: gelu_pytorch_tanh and gelu_new (the same
// tanh approximation) or gelu (exact erf); anything else fails (kUnsupported) naming these.
VisionActivation vision_activation(const std::string& hidden_act, const std::string& what = "vision_config");

// The one check of a vision config (parse_model_config runs it; so does the vision loader, for
// configs built in code): every size the engine relies on, the activation, the DeepStack taps.
// Fails with a qvl::Error whose message starts with `what`.
void validate_vision_config(const VisionConfig& config, const std::string& what = "vision_config");

// Parses config.json text; `what` names the file in errors.
ModelConfig parse_model_config(const std::string& json_text, const std::string& what);
ModelConfig load_model_config(const std::string& model_dir);

struct GenerationConfig {
  std::vector<int64_t> eos_token_ids;
  std::optional<int64_t> pad_token_id;
  bool do_sample = false;
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;
  double min_p = 0.0;
  double repetition_penalty = 1.0;
  double presence_penalty = 0.0;
  double frequency_penalty = 0.0;
  std::optional<int64_t> max_new_tokens;
};

GenerationConfig parse_generation_config(const std::string& json_text, const std::string& what);
// Missing file → defaults (greedy); a malformed file is an error.
GenerationConfig load_generation_config(const std::string& model_dir);

}  // namespace qvl
