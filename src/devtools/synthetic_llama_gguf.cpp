#include "devtools/synthetic_llama_gguf.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/dtype.h"
#include "core/staged_output.h"
#include "core/thread_pool.h"
#include "devtools/synthetic_checkpoint.h"
#include "formats/ggml_quantize.h"
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
  w.set("tokenizer.ggml.token_type", types, GgufStore::kI32);
  w.set("tokenizer.ggml.merges", merges);
  w.set("tokenizer.ggml.eos_token_id", id_of("<|im_end|>"), GgufStore::kU32);
  w.set("tokenizer.ggml.bos_token_id", id_of("<|endoftext|>"), GgufStore::kU32);
  w.set("tokenizer.ggml.padding_token_id", id_of("<|endoftext|>"), GgufStore::kU32);
  w.set("tokenizer.ggml.add_bos_token", false);
  const Json chat = read_json(dir / "chat_template.json");
  w.set("tokenizer.chat_template", chat.at("chat_template").get<std::string>());
}

// Random tensors made when the writer reaches them: row r of tensor t holds uniform values in
// [center - scale, center + scale] from a generator seeded by (seed, t, r), so the bytes do not
// depend on the thread count. Rows are converted (F32, F16) or quantized by ggml's reference
// quantizer on the pool's threads.
class RandomTensors {
 public:
  RandomTensors(GgufWriter& w, int threads, uint64_t seed, const SynthProgress& progress)
      : w_(w), pool_(threads > 0 ? threads : default_thread_count()), seed_(seed), progress_(progress) {}

  // dims in GGUF order (innermost first): dims[0] values per row.
  void add(const std::string& name, GgmlType type, const std::vector<int64_t>& dims, float scale, float center = 0.0f) {
    const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(type));
    QVL_ASSERT(info != nullptr && (type == GgmlType::kF32 || type == GgmlType::kF16 || ggml_type_quantizable(type)));
    const int64_t cols = dims[0];
    int64_t rows = 1;
    for (size_t k = 1; k < dims.size(); ++k) rows *= dims[k];
    const int64_t row_bytes = cols / info->block_elems * info->block_bytes;
    const uint64_t nbytes = static_cast<uint64_t>(rows * row_bytes), id = count_++;
    total_ += nbytes;
    w_.add_tensor(name, type, dims, nbytes, [=, this](uint8_t* out) {
      pool_.parallel_for_chunked(rows, [&](int64_t begin, int64_t end, int) {
        std::vector<float> values(static_cast<size_t>(cols));
        for (int64_t r = begin; r < end; ++r) {
          uint64_t state = mix(seed_ ^ mix(id * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(r)));
          for (float& v : values) {
            state ^= state << 13, state ^= state >> 7, state ^= state << 17;  // xorshift64
            v = center + scale * (static_cast<float>(state >> 40) * (2.0f / 16777216.0f) - 1.0f);
          }
          uint8_t* dst = out + r * row_bytes;
          if (type == GgmlType::kF32) {
            std::memcpy(dst, values.data(), static_cast<size_t>(row_bytes));
          } else if (type == GgmlType::kF16) {
            for (int64_t c = 0; c < cols; ++c) {
              const uint16_t h = f32_to_f16(values[static_cast<size_t>(c)]);
              std::memcpy(dst + 2 * c, &h, 2);
            }
          } else {
            quantize_ggml(type, values.data(), cols, dst);
          }
        }
      });
      done_ += nbytes;
      if (progress_) progress_(done_, total_);
    });
  }
  uint64_t total_bytes() const { return total_; }

 private:
  static uint64_t mix(uint64_t z) {  // splitmix64's finalizer: nearby seeds give unrelated states
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return z != 0 ? z : 1;
  }
  GgufWriter& w_;
  ThreadPool pool_;
  uint64_t seed_, count_ = 0, total_ = 0, done_ = 0;
  SynthProgress progress_;
};

// llama-quantize's type for a row of `cols` values when `type`'s block does not fit it.
GgmlType fitting_type(GgmlType type, int64_t cols) {
  auto fits = [cols](GgmlType t) { return cols % ggml_type_info(static_cast<uint32_t>(t))->block_elems == 0; };
  if (fits(type)) return type;
  const GgmlType fallback = type == GgmlType::kQ4_K ? GgmlType::kQ5_0 : type == GgmlType::kQ6_K ? GgmlType::kQ8_0 : type;
  return fits(fallback) ? fallback : GgmlType::kF16;
}

// llama-quantize's Q4_K_M gives these layers' attn_v and ffn_down Q6_K.
bool more_bits_layer(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// llama.cpp's general.file_type (llama_ftype) of each mix.
uint64_t file_type(const std::string& mix) {
  if (mix == "F16") return 1;
  if (mix == "Q4_0") return 2;
  if (mix == "Q8_0") return 7;
  return 15;  // Q4_K_M
}

constexpr auto kU32 = GgufStore::kU32;
constexpr auto kF32 = GgufStore::kF32;

// The general.* keys every llama.cpp file carries; `what` names the file in general.name.
void set_general_keys(GgufWriter& w, const std::string& architecture, const std::string& type,
                      const std::string& what, const std::string& mix) {
  w.set("general.architecture", architecture);
  w.set("general.type", type);
  w.set("general.name", "qvl synthetic " + what + " " + mix + " (random weights)");
  w.set("general.file_type", file_type(mix), kU32);
  w.set("general.quantization_version", uint64_t{2}, kU32);
}

}  // namespace

std::vector<std::string> synthetic_llama_gguf_types() { return {"Q4_K_M", "Q8_0", "Q4_0"}; }

std::vector<std::string> synthetic_llama_mmproj_types() { return {"F16", "Q8_0"}; }

void write_synthetic_llama_gguf(const std::string& preset, const std::string& type_mix, const std::string& out_path,
                                const std::string& tokenizer_dir, uint64_t seed, int threads,
                                const SynthProgress& progress) {
  const auto mixes = synthetic_llama_gguf_types();
  if (std::find(mixes.begin(), mixes.end(), type_mix) == mixes.end())
    fail(ErrorKind::kInvalidArgument, "unknown llama.cpp type mix '", type_mix, "' (expected Q4_K_M, Q8_0 or Q4_0)");
  const ModelConfig config = parse_model_config(synthetic_config_json(preset), preset + " config");
  const TextConfig& t = config.text;
  StagedOutput output(out_path, StagedOutput::Kind::kFile);

  GgufWriter w;
  set_general_keys(w, "qwen3vl", "model", preset, type_mix);
  w.set("qwen3vl.block_count", static_cast<uint64_t>(t.num_hidden_layers), kU32);
  w.set("qwen3vl.context_length", static_cast<uint64_t>(t.max_position_embeddings), kU32);
  w.set("qwen3vl.embedding_length", static_cast<uint64_t>(t.hidden_size), kU32);
  w.set("qwen3vl.feed_forward_length", static_cast<uint64_t>(t.intermediate_size), kU32);
  w.set("qwen3vl.attention.head_count", static_cast<uint64_t>(t.num_attention_heads), kU32);
  w.set("qwen3vl.attention.head_count_kv", static_cast<uint64_t>(t.num_key_value_heads), kU32);
  w.set("qwen3vl.attention.key_length", static_cast<uint64_t>(t.head_dim), kU32);
  w.set("qwen3vl.attention.value_length", static_cast<uint64_t>(t.head_dim), kU32);
  w.set("qwen3vl.rope.freq_base", t.rope_theta, kF32);
  w.set("qwen3vl.attention.layer_norm_rms_epsilon", t.rms_norm_eps, kF32);
  std::vector<int64_t> sections(t.mrope_section.begin(), t.mrope_section.end());
  sections.push_back(0);
  w.set("qwen3vl.rope.dimension_sections", sections, GgufStore::kI32);
  w.set("qwen3vl.n_deepstack_layers",
        static_cast<uint64_t>(config.vision ? config.vision->deepstack_visual_indexes.size() : 0), kU32);
  set_tokenizer_keys(w, tokenizer_dir, t.vocab_size);

  const GgmlType base = type_mix == "Q8_0" ? GgmlType::kQ8_0 : type_mix == "Q4_0" ? GgmlType::kQ4_0 : GgmlType::kQ4_K;
  const GgmlType head = type_mix == "Q8_0" ? GgmlType::kQ8_0 : GgmlType::kQ6_K;
  RandomTensors tensors(w, threads, seed, progress);
  auto matrix = [&](const std::string& name, GgmlType type, int64_t rows, int64_t cols, float scale) {
    tensors.add(name, fitting_type(type, cols), {cols, rows}, scale);
  };
  auto linear = [&](const std::string& name, GgmlType type, int64_t rows, int64_t cols) {
    matrix(name, type, rows, cols, 1.0f / std::sqrt(static_cast<float>(cols)));
  };
  auto norm = [&](const std::string& name, int64_t size) { tensors.add(name, GgmlType::kF32, {size}, 0.0f, 1.0f); };
  matrix("token_embd.weight", t.tie_word_embeddings || type_mix == "Q8_0" ? head : base, t.vocab_size, t.hidden_size,
         0.05f);
  if (!t.tie_word_embeddings) linear("output.weight", head, t.vocab_size, t.hidden_size);
  norm("output_norm.weight", t.hidden_size);
  const int64_t n = t.num_hidden_layers, q_rows = t.num_attention_heads * t.head_dim,
                kv_rows = t.num_key_value_heads * t.head_dim;
  for (int64_t i = 0; i < n; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    const GgmlType more = type_mix == "Q4_K_M" && more_bits_layer(i, n) ? GgmlType::kQ6_K : base;
    norm(p + "attn_norm.weight", t.hidden_size);
    norm(p + "ffn_norm.weight", t.hidden_size);
    norm(p + "attn_q_norm.weight", t.head_dim);
    norm(p + "attn_k_norm.weight", t.head_dim);
    linear(p + "attn_q.weight", base, q_rows, t.hidden_size);
    linear(p + "attn_k.weight", base, kv_rows, t.hidden_size);
    linear(p + "attn_v.weight", more, kv_rows, t.hidden_size);
    linear(p + "attn_output.weight", base, t.hidden_size, q_rows);
    linear(p + "ffn_gate.weight", base, t.intermediate_size, t.hidden_size);
    linear(p + "ffn_up.weight", base, t.intermediate_size, t.hidden_size);
    linear(p + "ffn_down.weight", more, t.hidden_size, t.intermediate_size);
  }
  output.require_free_space(tensors.total_bytes() + (uint64_t{64} << 20));
  w.write(output.path());
  output.commit();
}

void write_synthetic_llama_mmproj(const std::string& preset, const std::string& type, const std::string& out_path,
                                  uint64_t seed, int threads, const SynthProgress& progress) {
  const auto types = synthetic_llama_mmproj_types();
  if (std::find(types.begin(), types.end(), type) == types.end())
    fail(ErrorKind::kInvalidArgument, "unknown mmproj type '", type, "' (expected F16 or Q8_0)");
  const ModelConfig config = parse_model_config(synthetic_config_json(preset), preset + " config");
  if (!config.vision) fail(ErrorKind::kInvalidArgument, "preset '", preset, "' has no vision tower");
  const VisionConfig& v = *config.vision;
  const int64_t side = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(v.num_position_embeddings))));
  if (side * side != v.num_position_embeddings || v.temporal_patch_size != 2 || v.in_channels != 3)
    fail(ErrorKind::kUnsupported, "preset '", preset, "': the mmproj layout needs a square position table, 2 time steps "
         "and 3 channels");
  StagedOutput output(out_path, StagedOutput::Kind::kFile);

  GgufWriter w;
  set_general_keys(w, "clip", "mmproj", preset + " mmproj", type);
  w.set("clip.has_vision_encoder", true);
  w.set("clip.projector_type", std::string("qwen3vl_merger"));
  w.set("clip.use_gelu", true);
  w.set("clip.vision.projection_dim", static_cast<uint64_t>(v.out_hidden_size), kU32);
  w.set("clip.vision.image_size", static_cast<uint64_t>(side * v.patch_size), kU32);
  w.set("clip.vision.patch_size", static_cast<uint64_t>(v.patch_size), kU32);
  w.set("clip.vision.embedding_length", static_cast<uint64_t>(v.hidden_size), kU32);
  w.set("clip.vision.feed_forward_length", static_cast<uint64_t>(v.intermediate_size), kU32);
  w.set("clip.vision.block_count", static_cast<uint64_t>(v.depth), kU32);
  w.set("clip.vision.attention.head_count", static_cast<uint64_t>(v.num_heads), kU32);
  w.set("clip.vision.attention.layer_norm_epsilon", v.layer_norm_eps, kF32);
  w.set("clip.vision.spatial_merge_size", static_cast<uint64_t>(v.spatial_merge_size), kU32);
  w.set("clip.vision.image_mean", std::vector<double>{0.5, 0.5, 0.5}, kF32);
  w.set("clip.vision.image_std", std::vector<double>{0.5, 0.5, 0.5}, kF32);
  std::vector<int64_t> deepstack(static_cast<size_t>(v.depth), 0);
  for (int layer : v.deepstack_visual_indexes) deepstack.at(static_cast<size_t>(layer)) = 1;
  w.set("clip.vision.is_deepstack_layers", deepstack, GgufStore::kBool);

  // The converter's types: matrices in the file's type (F16 where a row holds no whole Q8_0
  // block), everything 1-D and the position table F32, the patch kernel F16 or else F32.
  const GgmlType matrix_type = type == "Q8_0" ? GgmlType::kQ8_0 : GgmlType::kF16;
  RandomTensors tensors(w, threads, seed, progress);
  auto linear = [&](const std::string& name, int64_t out_features, int64_t in_features) {
    tensors.add(name + ".weight", fitting_type(matrix_type, in_features), {in_features, out_features},
                1.0f / std::sqrt(static_cast<float>(in_features)));
    tensors.add(name + ".bias", GgmlType::kF32, {out_features}, 0.02f);
  };
  auto layer_norm = [&](const std::string& name, int64_t size) {
    tensors.add(name + ".weight", GgmlType::kF32, {size}, 0.02f, 1.0f);
    tensors.add(name + ".bias", GgmlType::kF32, {size}, 0.02f);
  };
  const int64_t h = v.hidden_size, merged = h * v.spatial_merge_size * v.spatial_merge_size;
  for (int64_t i = 0; i < v.depth; ++i) {
    const std::string p = "v.blk." + std::to_string(i) + ".";
    linear(p + "attn_out", h, h);
    linear(p + "attn_qkv", 3 * h, h);
    linear(p + "ffn_up", v.intermediate_size, h);
    linear(p + "ffn_down", h, v.intermediate_size);
    layer_norm(p + "ln1", h);
    layer_norm(p + "ln2", h);
  }
  for (int layer : v.deepstack_visual_indexes) {
    const std::string p = "v.deepstack." + std::to_string(layer) + ".";
    linear(p + "fc1", merged, merged);
    linear(p + "fc2", v.out_hidden_size, merged);
    layer_norm(p + "norm", merged);
  }
  linear("mm.0", merged, merged);
  linear("mm.2", v.out_hidden_size, merged);
  layer_norm("v.post_ln", h);
  const GgmlType patch_type = type == "F16" ? GgmlType::kF16 : GgmlType::kF32;
  const float patch_scale = 1.0f / std::sqrt(static_cast<float>(v.in_channels * 2 * v.patch_size * v.patch_size));
  tensors.add("v.patch_embd.bias", GgmlType::kF32, {h}, 0.02f);
  for (const char* step : {"v.patch_embd.weight", "v.patch_embd.weight.1"})
    tensors.add(step, patch_type, {v.patch_size, v.patch_size, v.in_channels, h}, patch_scale);
  tensors.add("v.position_embd.weight", GgmlType::kF32, {h, v.num_position_embeddings}, 0.02f);
  output.require_free_space(tensors.total_bytes() + (uint64_t{16} << 20));
  w.write(output.path());
  output.commit();
}

}  // namespace qvl
