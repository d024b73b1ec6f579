#include "devtools/synthetic_checkpoint.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/check.h"
#include "core/dtype.h"
#include "core/fs_util.h"
#include "core/json_util.h"
#include "core/staged_output.h"
#include "formats/model_config.h"
#include "model/qwen3_vl.h"

namespace qvl {

namespace fs = std::filesystem;

namespace {

struct Preset {
  const char* name;
  int64_t hidden, layers, heads, kv_heads, intermediate;
  bool tied;
  int64_t v_depth, v_hidden, v_intermediate, v_heads;
  std::vector<int> deepstack;
};

// 4B: the real config.json (see docs); 2B and 8B: their published configs.
const std::vector<Preset>& presets() {
  static const std::vector<Preset> kPresets = {
      {"qwen3-vl-2b", 2048, 28, 16, 8, 6144, true, 24, 1024, 4096, 16, {5, 11, 17}},
      {"qwen3-vl-4b", 2560, 36, 32, 8, 9728, true, 24, 1024, 4096, 16, {5, 11, 17}},
      {"qwen3-vl-8b", 4096, 36, 32, 8, 12288, false, 27, 1152, 4304, 16, {8, 16, 24}},
      // Small, untied, for tests of the synthetic path itself.
      {"qwen3-vl-tiny", 64, 2, 2, 1, 128, false, 2, 32, 64, 2, {0, 1}},
  };
  return kPresets;
}

const Preset& find_preset(const std::string& name) {
  for (const auto& p : presets())
    if (name == p.name) return p;
  std::string names;
  for (const auto& p : presets()) names += std::string(names.empty() ? "" : ", ") + p.name;
  fail(ErrorKind::kInvalidArgument, "unknown preset '", name, "' (known: ", names, ")");
}

Json config_of(const Preset& p) {
  Json text = {{"model_type", "qwen3_vl_text"}, {"hidden_size", p.hidden}, {"num_hidden_layers", p.layers},
               {"num_attention_heads", p.heads}, {"num_key_value_heads", p.kv_heads}, {"head_dim", 128},
               {"intermediate_size", p.intermediate}, {"hidden_act", "silu"}, {"rms_norm_eps", 1e-6},
               {"rope_theta", 5000000}, {"max_position_embeddings", 262144}, {"vocab_size", 151936},
               {"tie_word_embeddings", p.tied}, {"attention_bias", false}, {"bos_token_id", 151643},
               {"eos_token_id", 151645}, {"dtype", "bfloat16"},
               {"rope_scaling", {{"mrope_interleaved", true}, {"mrope_section", {24, 20, 20}}, {"rope_type", "default"}}}};
  Json vision = {{"model_type", "qwen3_vl"}, {"depth", p.v_depth}, {"hidden_size", p.v_hidden},
                 {"intermediate_size", p.v_intermediate}, {"num_heads", p.v_heads}, {"in_channels", 3},
                 {"patch_size", 16}, {"temporal_patch_size", 2}, {"spatial_merge_size", 2},
                 {"out_hidden_size", p.hidden}, {"num_position_embeddings", 2304},
                 {"deepstack_visual_indexes", p.deepstack}, {"hidden_act", "gelu_pytorch_tanh"}};
  return {{"architectures", {"Qwen3VLForConditionalGeneration"}}, {"model_type", "qwen3_vl"},
          {"tie_word_embeddings", p.tied}, {"image_token_id", 151655}, {"video_token_id", 151656},
          {"vision_start_token_id", 151652}, {"vision_end_token_id", 151653},
          {"text_config", text}, {"vision_config", vision}};
}

// Random values are uniform in [-scale, scale]: 1/sqrt(fan-in) for projections, small for
// tables and biases; norm weights are 1 + such noise.
float init_scale(const TensorSpec& s) {
  switch (s.role) {
    case TensorRole::kLinear:
    case TensorRole::kConvolution: {
      int64_t fan_in = 1;
      for (size_t k = 1; k < s.shape.size(); ++k) fan_in *= s.shape[k];
      return 1.0f / std::sqrt(static_cast<float>(fan_in));
    }
    case TensorRole::kEmbedding: return 0.05f;
    case TensorRole::kPositionTable:
    case TensorRole::kNormWeight:
    case TensorRole::kBias: break;
  }
  return 0.02f;
}

}  // namespace

std::vector<std::string> synthetic_presets() {
  std::vector<std::string> out;
  for (const auto& p : presets()) out.push_back(p.name);
  return out;
}

std::string synthetic_config_json(const std::string& preset) { return config_of(find_preset(preset)).dump(2); }

void write_synthetic_checkpoint(const std::string& preset, const std::string& out_dir, const std::string& tokenizer_dir,
                                uint64_t seed, const std::function<void(uint64_t, uint64_t)>& progress) {
  // Every input is checked before anything is written; the files go to a staging folder that
  // becomes out_dir only when complete.
  const std::string config_text = synthetic_config_json(preset);
  const ModelConfig config = parse_model_config(config_text, preset + " config");
  const char* kTokenizerFiles[] = {"tokenizer.json", "tokenizer_config.json", "chat_template.json"};
  for (const char* f : kTokenizerFiles) {
    const fs::path src = fs::path(tokenizer_dir) / f;
    if (!fs::is_regular_file(src))
      fail(ErrorKind::kNotFound, "'", src.string(), "' is needed to build a synthetic checkpoint (--tokenizer-from)");
  }
  const auto specs = model_tensor_specs(config);
  Json header = Json::object();
  uint64_t offset = 0;
  for (const auto& s : specs) {
    uint64_t n = 1;
    for (int64_t d : s.shape) n *= static_cast<uint64_t>(d);
    header[s.name] = {{"dtype", "BF16"}, {"shape", s.shape}, {"data_offsets", {offset, offset + 2 * n}}};
    offset += 2 * n;
  }
  StagedOutput output(out_dir, StagedOutput::Kind::kDirectory);
  output.require_free_space(offset + (64u << 20));  // + the tokenizer and header
  const fs::path dir(output.path());

  auto write_text = [&](const std::string& name, const std::string& text) {
    std::ofstream out(dir / name, std::ios::trunc);
    out << text << "\n";
    if (!out) fail(ErrorKind::kIo, "cannot write '", (dir / name).string(), "': ", std::strerror(errno));
  };
  write_text("config.json", config_text);
  write_text("generation_config.json",
             R"({"bos_token_id": 151643, "pad_token_id": 151643, "do_sample": true, "eos_token_id": [151645, 151643], "top_k": 20, "top_p": 0.8, "repetition_penalty": 1.0, "temperature": 0.7})");
  write_text("preprocessor_config.json",
             R"({"size": {"longest_edge": 16777216, "shortest_edge": 65536}, "patch_size": 16, "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "processor_class": "Qwen3VLProcessor", "image_processor_type": "Qwen2VLImageProcessorFast"})");
  for (const char* f : kTokenizerFiles) copy_file_or_fail((fs::path(tokenizer_dir) / f).string(), (dir / f).string());

  // Stream the safetensors file: header first, then each tensor generated in chunks.
  std::string text = header.dump();
  while (text.size() % 8 != 0) text += ' ';
  const fs::path path = dir / "model.safetensors";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail(ErrorKind::kIo, "cannot create '", path.string(), "': ", std::strerror(errno));
  const uint64_t len = text.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1, done = 0;
  std::vector<uint16_t> chunk(1 << 20);
  for (const auto& s : specs) {
    uint64_t n = 1;
    for (int64_t d : s.shape) n *= static_cast<uint64_t>(d);
    const float scale = init_scale(s);
    const bool norm_weight = s.role == TensorRole::kNormWeight;
    for (uint64_t i = 0; i < n;) {
      const size_t m = static_cast<size_t>(std::min<uint64_t>(chunk.size(), n - i));
      for (size_t k = 0; k < m; ++k) {
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;  // xorshift64
        const float u = static_cast<float>(state >> 40) * (2.0f / 16777216.0f) - 1.0f;
        chunk[k] = f32_to_bf16(norm_weight ? 1.0f + scale * u : scale * u);
      }
      out.write(reinterpret_cast<const char*>(chunk.data()), static_cast<std::streamsize>(m * 2));
      if (!out) fail(ErrorKind::kIo, "write failed on '", path.string(), "': ", std::strerror(errno));
      i += m;
      done += m * 2;
      if (progress) progress(done, offset);
    }
  }
  out.close();
  if (!out) fail(ErrorKind::kIo, "write failed on '", path.string(), "': ", std::strerror(errno));
  output.commit();
}

}  // namespace qvl
