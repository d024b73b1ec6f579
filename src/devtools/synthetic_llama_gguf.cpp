#include "devtools/synthetic_llama_gguf.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/dtype.h"
#include "core/staged_output.h"
#include "devtools/synthetic_checkpoint.h"
#include "formats/gguf.h"
#include "formats/model_config.h"

namespace qvl {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

Json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) fail(ErrorKind::kNotFound, "cannot read '", path.string(), "'");
  try {
    return Json::parse(in);
  } catch (const Json::exception& e) {
    fail(ErrorKind::kInvalidFile, path.string(), ": ", e.what());
  }
}

// llama.cpp's vocabulary arrays from tokenizer.json: every id up to vocab_size, added tokens
// typed control (special) or user-defined, the rows past the tokenizer padded as unused.
void set_tokenizer_keys(GgufWriter& w, const fs::path& dir, int64_t vocab_size) {
  const Json tok = read_json(dir / "tokenizer.json");
  std::vector<std::string> tokens(static_cast<size_t>(vocab_size));
  std::vector<int64_t> types(static_cast<size_t>(vocab_size), 5);  // 5: unused
  auto place = [&](int64_t id, const std::string& text, int64_t type) {
    if (id < 0 || id >= vocab_size) fail(ErrorKind::kInvalidFile, "token id ", id, " is outside the vocabulary");
    tokens[static_cast<size_t>(id)] = text;
    types[static_cast<size_t>(id)] = type;
  };
  for (const auto& [text, id] : tok.at("model").at("vocab").items()) place(id.get<int64_t>(), text, 1);
  for (const Json& a : tok.at("added_tokens")) place(a.at("id").get<int64_t>(), a.at("content"), a.value("special", false) ? 3 : 4);
  for (size_t id = 0; id < tokens.size(); ++id)
    if (types[id] == 5) tokens[id] = "[PAD" + std::to_string(id) + "]";
  std::vector<std::string> merges;
  for (const Json& m : tok.at("model").at("merges"))
    merges.push_back(m.is_string() ? m.get<std::string>() : m.at(0).get<std::string>() + " " + m.at(1).get<std::string>());
  auto id_of = [&](const std::string& text) {
    return static_cast<uint64_t>(std::find(tokens.begin(), tokens.end(), text) - tokens.begin());
  };
  w.set("tokenizer.ggml.model", std::string("gpt2"));
  w.set("tokenizer.ggml.pre", std::string("qwen2"));
  w.set("tokenizer.ggml.tokens", tokens);
  w.set("tokenizer.ggml.token_type", types);
  w.set("tokenizer.ggml.merges", merges);
  w.set("tokenizer.ggml.eos_token_id", id_of("<|im_end|>"));
  w.set("tokenizer.ggml.bos_token_id", id_of("<|endoftext|>"));
  w.set("tokenizer.ggml.padding_token_id", id_of("<|endoftext|>"));
  w.set("tokenizer.ggml.add_bos_token", false);
  const Json chat = read_json(dir / "chat_template.json");
  w.set("tokenizer.chat_template", chat.at("chat_template").get<std::string>());
}

// A fast generator for the random block bytes (the values only need to be valid, not good).
struct Xorshift {
  uint64_t s;
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  void fill(uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; i += 8) {
      const uint64_t v = next();
      std::memcpy(p + i, &v, std::min<size_t>(8, n - i));
    }
  }
};

// Random blocks of `type`: random codes, fp16 scales small and finite (so no weight is Inf/NaN).
std::vector<uint8_t> random_blocks(GgmlType type, int64_t elements, Xorshift& rng) {
  const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(type));
  const int64_t blocks = elements / info->block_elems;
  std::vector<uint8_t> data(static_cast<size_t>(blocks) * info->block_bytes);
  rng.fill(data.data(), data.size());
  const uint16_t scale = f32_to_f16(1e-3f);
  for (int64_t b = 0; b < blocks; ++b) {
    uint8_t* p = data.data() + static_cast<size_t>(b) * info->block_bytes;
    switch (type) {
      case GgmlType::kQ4_K:  // d, dmin first
        std::memcpy(p, &scale, 2);
        std::memcpy(p + 2, &scale, 2);
        break;
      case GgmlType::kQ6_K:  // d last
        std::memcpy(p + 208, &scale, 2);
        break;
      default:  // Q8_0, Q4_0: d first
        std::memcpy(p, &scale, 2);
    }
  }
  return data;
}

// llama-quantize's Q4_K_M gives these layers' attn_v and ffn_down Q6_K.
bool more_bits_layer(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

}  // namespace

std::vector<std::string> synthetic_llama_gguf_types() { return {"Q4_K_M", "Q8_0", "Q4_0"}; }

void write_synthetic_llama_gguf(const std::string& preset, const std::string& type_mix, const std::string& out_path,
                                const std::string& tokenizer_dir, uint64_t seed) {
  const auto mixes = synthetic_llama_gguf_types();
  if (std::find(mixes.begin(), mixes.end(), type_mix) == mixes.end())
    fail(ErrorKind::kInvalidArgument, "unknown llama.cpp type mix '", type_mix, "' (expected Q4_K_M, Q8_0 or Q4_0)");
  const ModelConfig config = parse_model_config(synthetic_config_json(preset), preset + " config");
  const TextConfig& t = config.text;
  StagedOutput output(out_path, StagedOutput::Kind::kFile);

  GgufWriter w;
  w.set("general.architecture", std::string("qwen3vl"));
  w.set("general.type", std::string("model"));
  w.set("general.name", "qvl synthetic " + preset + " " + type_mix + " (random weights)");
  w.set("qwen3vl.block_count", static_cast<uint64_t>(t.num_hidden_layers));
  w.set("qwen3vl.context_length", static_cast<uint64_t>(t.max_position_embeddings));
  w.set("qwen3vl.embedding_length", static_cast<uint64_t>(t.hidden_size));
  w.set("qwen3vl.feed_forward_length", static_cast<uint64_t>(t.intermediate_size));
  w.set("qwen3vl.attention.head_count", static_cast<uint64_t>(t.num_attention_heads));
  w.set("qwen3vl.attention.head_count_kv", static_cast<uint64_t>(t.num_key_value_heads));
  w.set("qwen3vl.attention.key_length", static_cast<uint64_t>(t.head_dim));
  w.set("qwen3vl.attention.value_length", static_cast<uint64_t>(t.head_dim));
  w.set("qwen3vl.rope.freq_base", t.rope_theta);
  w.set("qwen3vl.attention.layer_norm_rms_epsilon", t.rms_norm_eps);
  std::vector<int64_t> sections(t.mrope_section.begin(), t.mrope_section.end());
  sections.push_back(0);
  w.set("qwen3vl.rope.dimension_sections", sections);
  w.set("qwen3vl.n_deepstack_layers",
        static_cast<uint64_t>(config.vision ? config.vision->deepstack_visual_indexes.size() : 0));
  set_tokenizer_keys(w, tokenizer_dir, t.vocab_size);

  const GgmlType base = type_mix == "Q8_0" ? GgmlType::kQ8_0 : type_mix == "Q4_0" ? GgmlType::kQ4_0 : GgmlType::kQ4_K;
  const GgmlType head = type_mix == "Q8_0" ? GgmlType::kQ8_0 : GgmlType::kQ6_K;
  Xorshift rng{seed * 0x9E3779B97F4A7C15ull + 1};
  std::map<std::string, std::vector<uint8_t>> held;  // the writer streams from these at write()
  const std::vector<float> ones_hidden(static_cast<size_t>(t.hidden_size), 1.0f),
      ones_head(static_cast<size_t>(t.head_dim), 1.0f);
  auto matrix = [&](const std::string& name, GgmlType type, int64_t rows, int64_t cols) {
    // Rows that hold no whole super-block (small presets) fall back to Q8_0, as llama-quantize does.
    if (cols % ggml_type_info(static_cast<uint32_t>(type))->block_elems != 0) type = GgmlType::kQ8_0;
    std::vector<uint8_t>& data = held[name] = random_blocks(type, rows * cols, rng);
    w.add_tensor(name, type, {cols, rows}, data.data(), data.size());
  };
  auto norm = [&](const std::string& name, const std::vector<float>& ones) {
    w.add_tensor(name, GgmlType::kF32, {static_cast<int64_t>(ones.size())}, ones.data(), ones.size() * 4);
  };
  matrix("token_embd.weight", t.tie_word_embeddings || type_mix == "Q8_0" ? head : base, t.vocab_size, t.hidden_size);
  if (!t.tie_word_embeddings) matrix("output.weight", head, t.vocab_size, t.hidden_size);
  norm("output_norm.weight", ones_hidden);
  const int64_t n = t.num_hidden_layers, q_rows = t.num_attention_heads * t.head_dim,
                kv_rows = t.num_key_value_heads * t.head_dim;
  for (int64_t i = 0; i < n; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    const GgmlType more = type_mix == "Q4_K_M" && more_bits_layer(i, n) ? GgmlType::kQ6_K : base;
    norm(p + "attn_norm.weight", ones_hidden);
    norm(p + "ffn_norm.weight", ones_hidden);
    norm(p + "attn_q_norm.weight", ones_head);
    norm(p + "attn_k_norm.weight", ones_head);
    matrix(p + "attn_q.weight", base, q_rows, t.hidden_size);
    matrix(p + "attn_k.weight", base, kv_rows, t.hidden_size);
    matrix(p + "attn_v.weight", more, kv_rows, t.hidden_size);
    matrix(p + "attn_output.weight", base, t.hidden_size, q_rows);
    matrix(p + "ffn_gate.weight", base, t.intermediate_size, t.hidden_size);
    matrix(p + "ffn_up.weight", base, t.intermediate_size, t.hidden_size);
    matrix(p + "ffn_down.weight", more, t.hidden_size, t.intermediate_size);
  }
  uint64_t bytes = 0;
  for (const auto& [name, data] : held) bytes += data.size();
  output.require_free_space(bytes + (uint64_t{64} << 20));
  w.write(output.path());
  output.commit();
}

}  // namespace qvl
