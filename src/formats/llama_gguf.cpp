#include "formats/llama_gguf.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "core/check.h"
#include "core/json_util.h"
#include "core/utf8.h"
#include "formats/ggml_quants.h"

namespace qvl {

namespace fs = std::filesystem;

namespace {

// The reference preprocessor's pixel budget: GGUF files carry none for Qwen3-VL, and
// llama.cpp's own limits (8..4096 merged tokens, bilinear resize) are not the reference.
constexpr int64_t kQwen3VlMinPixels = 65536;
constexpr int64_t kQwen3VlMaxPixels = 16777216;
// Qwen2's pre-tokenizer split (tokenizer.ggml.pre = "qwen2"), as its tokenizer.json writes it.
constexpr const char* kQwen2Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// ggml token types (llama.cpp's llama_token_type).
enum TokenType : int64_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// One parsed GGUF image and the name errors give it (a file's path).
struct GgufSource {
  const GgufContents& contents;
  std::string name;
  const std::string& path() const { return name; }
  const std::map<std::string, GgufValue>& metadata() const { return contents.metadata; }
  const std::map<std::string, GgufTensor>& tensors() const { return contents.tensors; }
  const std::string* get_string(const std::string& key) const {
    auto it = contents.metadata.find(key);
    return it == contents.metadata.end() ? nullptr : std::get_if<std::string>(&it->second);
  }
};

// Typed access to one file's metadata; every error names the file and the key.
class Meta {
 public:
  explicit Meta(const GgufSource& f) : f_(f) {}
  const std::string& path() const { return f_.path(); }
  bool has(const std::string& key) const { return f_.metadata().count(key) != 0; }
  const GgufValue& get(const std::string& key) const {
    auto it = f_.metadata().find(key);
    if (it == f_.metadata().end()) fail(ErrorKind::kInvalidFile, path(), ": GGUF key '", key, "' is missing");
    return it->second;
  }
  int64_t integer(const std::string& key) const {
    const GgufValue& v = get(key);
    if (const auto* u = std::get_if<uint64_t>(&v); u && *u <= (uint64_t(1) << 40)) return static_cast<int64_t>(*u);
    if (const auto* i = std::get_if<int64_t>(&v)) return *i;
    fail(ErrorKind::kInvalidFile, path(), ": GGUF key '", key, "' is not an integer in range");
  }
  int64_t positive(const std::string& key) const {
    const int64_t v = integer(key);
    if (v <= 0) fail(ErrorKind::kInvalidFile, path(), ": GGUF key '", key, "' must be positive, got ", v);
    return v;
  }
  double number(const std::string& key) const {
    const GgufValue& v = get(key);
    if (const auto* d = std::get_if<double>(&v)) return *d;
    return static_cast<double>(integer(key));
  }
  double number_or(const std::string& key, double fallback) const { return has(key) ? number(key) : fallback; }
  const std::string& string(const std::string& key) const {
    const auto* s = std::get_if<std::string>(&get(key));
    if (s == nullptr) fail(ErrorKind::kInvalidFile, path(), ": GGUF key '", key, "' is not a string");
    return *s;
  }
  std::string string_or(const std::string& key, const std::string& fallback) const {
    return has(key) ? string(key) : fallback;
  }
  const std::vector<std::string>& strings(const std::string& key) const {
    const auto* s = std::get_if<std::vector<std::string>>(&get(key));
    if (s == nullptr) fail(ErrorKind::kInvalidFile, path(), ": GGUF key '", key, "' is not an array of strings");
    return *s;
  }
  std::vector<int64_t> integers(const std::string& key) const {
    const GgufValue& v = get(key);
    if (const auto* s = std::get_if<std::vector<int64_t>>(&v)) return *s;
    if (const auto* e = std::get_if<std::vector<std::string>>(&v); e && e->empty()) return {};
    fail(ErrorKind::kInvalidFile, path(), ": GGUF key '", key, "' is not an array of integers");
  }
  std::vector<double> numbers(const std::string& key) const {
    const GgufValue& v = get(key);
    if (const auto* s = std::get_if<std::vector<double>>(&v)) return *s;
    if (const auto* s = std::get_if<std::vector<int64_t>>(&v)) return {s->begin(), s->end()};
    fail(ErrorKind::kInvalidFile, path(), ": GGUF key '", key, "' is not an array of numbers");
  }

 private:
  const GgufSource& f_;
};

std::string architecture(const GgufSource& f) {
  const std::string* a = f.get_string("general.architecture");
  return a ? *a : std::string();
}

bool is_projector(const GgufSource& f) {
  const std::string* type = f.get_string("general.type");
  return architecture(f) == "clip" || (type && *type == "mmproj");
}

// The rename rules: llama.cpp's tensor name (after the block number is taken out) → the
// checkpoint's name. "{i}" is the block number.
struct Rename {
  const char* gguf;
  const char* hf;
};
constexpr Rename kTextRenames[] = {
    {"token_embd.weight", "{p}embed_tokens.weight"},
    {"output_norm.weight", "{p}norm.weight"},
    {"output.weight", "lm_head.weight"},
    {"blk.{i}.attn_norm.weight", "{p}layers.{i}.input_layernorm.weight"},
    {"blk.{i}.attn_q.weight", "{p}layers.{i}.self_attn.q_proj.weight"},
    {"blk.{i}.attn_k.weight", "{p}layers.{i}.self_attn.k_proj.weight"},
    {"blk.{i}.attn_v.weight", "{p}layers.{i}.self_attn.v_proj.weight"},
    {"blk.{i}.attn_output.weight", "{p}layers.{i}.self_attn.o_proj.weight"},
    {"blk.{i}.attn_q_norm.weight", "{p}layers.{i}.self_attn.q_norm.weight"},
    {"blk.{i}.attn_k_norm.weight", "{p}layers.{i}.self_attn.k_norm.weight"},
    {"blk.{i}.ffn_norm.weight", "{p}layers.{i}.post_attention_layernorm.weight"},
    {"blk.{i}.ffn_gate.weight", "{p}layers.{i}.mlp.gate_proj.weight"},
    {"blk.{i}.ffn_up.weight", "{p}layers.{i}.mlp.up_proj.weight"},
    {"blk.{i}.ffn_down.weight", "{p}layers.{i}.mlp.down_proj.weight"},
};
// Vision renames; "{d}" is a DeepStack merger's ViT layer, renamed to its place in the list.
constexpr Rename kVisionRenames[] = {
    {"v.patch_embd.bias", "{v}patch_embed.proj.bias"},
    {"v.position_embd.weight", "{v}pos_embed.weight"},
    {"v.blk.{i}.ln1.weight", "{v}blocks.{i}.norm1.weight"},
    {"v.blk.{i}.ln1.bias", "{v}blocks.{i}.norm1.bias"},
    {"v.blk.{i}.ln2.weight", "{v}blocks.{i}.norm2.weight"},
    {"v.blk.{i}.ln2.bias", "{v}blocks.{i}.norm2.bias"},
    {"v.blk.{i}.attn_qkv.weight", "{v}blocks.{i}.attn.qkv.weight"},
    {"v.blk.{i}.attn_qkv.bias", "{v}blocks.{i}.attn.qkv.bias"},
    {"v.blk.{i}.attn_out.weight", "{v}blocks.{i}.attn.proj.weight"},
    {"v.blk.{i}.attn_out.bias", "{v}blocks.{i}.attn.proj.bias"},
    {"v.blk.{i}.ffn_up.weight", "{v}blocks.{i}.mlp.linear_fc1.weight"},
    {"v.blk.{i}.ffn_up.bias", "{v}blocks.{i}.mlp.linear_fc1.bias"},
    {"v.blk.{i}.ffn_down.weight", "{v}blocks.{i}.mlp.linear_fc2.weight"},
    {"v.blk.{i}.ffn_down.bias", "{v}blocks.{i}.mlp.linear_fc2.bias"},
    {"v.post_ln.weight", "{v}merger.norm.weight"},
    {"v.post_ln.bias", "{v}merger.norm.bias"},
    {"mm.0.weight", "{v}merger.linear_fc1.weight"},
    {"mm.0.bias", "{v}merger.linear_fc1.bias"},
    {"mm.2.weight", "{v}merger.linear_fc2.weight"},
    {"mm.2.bias", "{v}merger.linear_fc2.bias"},
    {"v.deepstack.{d}.norm.weight", "{v}deepstack_merger_list.{d}.norm.weight"},
    {"v.deepstack.{d}.norm.bias", "{v}deepstack_merger_list.{d}.norm.bias"},
    {"v.deepstack.{d}.fc1.weight", "{v}deepstack_merger_list.{d}.linear_fc1.weight"},
    {"v.deepstack.{d}.fc1.bias", "{v}deepstack_merger_list.{d}.linear_fc1.bias"},
    {"v.deepstack.{d}.fc2.weight", "{v}deepstack_merger_list.{d}.linear_fc2.weight"},
    {"v.deepstack.{d}.fc2.bias", "{v}deepstack_merger_list.{d}.linear_fc2.bias"},
};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

// Matches `name` against a pattern with at most one "{i}" or "{d}" (a decimal number);
// returns the number through *n (-1 when the pattern has none).
bool match_pattern(const std::string& pattern, const std::string& name, int64_t* n) {
  const size_t at = std::min(pattern.find("{i}"), pattern.find("{d}"));
  *n = -1;
  if (at == std::string::npos) return pattern == name;
  const std::string head = pattern.substr(0, at), tail = pattern.substr(at + 3);
  if (name.size() <= head.size() + tail.size() || name.compare(0, head.size(), head) != 0 ||
      name.compare(name.size() - tail.size(), tail.size(), tail) != 0)
    return false;
  const std::string digits = name.substr(head.size(), name.size() - head.size() - tail.size());
  if (digits.empty() || digits.size() > 6 || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return false;
  *n = std::stoll(digits);
  return true;
}

// The llama.cpp name of a checkpoint tensor (the renames run backwards; empty when none applies),
// for errors about a tensor the model expects: the user's file uses these names.
std::string gguf_name_of(const std::string& hf, const std::string& text_prefix, const std::vector<int64_t>& deepstack_layers) {
  if (hf == "model.visual.patch_embed.proj.weight") return "v.patch_embd.weight";
  auto search = [&](const auto& rules, const std::string& prefix) -> std::string {
    for (const Rename& r : rules) {
      const std::string pattern = replace_all(replace_all(r.hf, "{p}", prefix), "{v}", prefix);
      int64_t n;
      if (!match_pattern(pattern, hf, &n)) continue;
      std::string name = r.gguf;
      if (pattern.find("{d}") != std::string::npos) {
        if (n >= static_cast<int64_t>(deepstack_layers.size())) return {};
        return replace_all(name, "{d}", std::to_string(deepstack_layers[static_cast<size_t>(n)]));
      }
      return n >= 0 ? replace_all(name, "{i}", std::to_string(n)) : name;
    }
    return {};
  };
  const std::string text = search(kTextRenames, text_prefix);
  return text.empty() ? search(kVisionRenames, "model.visual.") : text;
}

// A view of one GGUF tensor under its checkpoint name, in the checkpoint's (outermost-first)
// dimension order; quantized ones are decoded when the model asks for them.
TensorView view_of(const GgufTensor& t, std::string name, const std::string& path) {
  TensorView v;
  v.name = std::move(name);
  v.shape.assign(t.dims.rbegin(), t.dims.rend());
  v.data = t.data;
  v.nbytes = static_cast<size_t>(t.nbytes);
  switch (t.type) {
    case GgmlType::kF32: v.dtype = DType::kF32; break;
    case GgmlType::kF16: v.dtype = DType::kF16; break;
    case GgmlType::kBF16: v.dtype = DType::kBF16; break;
    default:
      if (!ggml_type_dequantizable(t.type))
        fail(ErrorKind::kUnsupported, path, ": tensor '", t.name, "' has ggml type ",
             ggml_type_info(static_cast<uint32_t>(t.type))->name,
             ", which qvl cannot decode (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, "
             "Q5_K, Q6_K, IQ4_NL, IQ4_XS)");
      v.dtype = DType::kU8;
      v.ggml_block_type = static_cast<uint32_t>(t.type);
  }
  return v;
}

Json text_config(const Meta& m, const GgufSource& f, const std::string& arch) {
  const std::string a = arch + ".";
  Json t;
  t["hidden_size"] = m.positive(a + "embedding_length");
  t["num_hidden_layers"] = m.positive(a + "block_count");
  t["num_attention_heads"] = m.positive(a + "attention.head_count");
  t["num_key_value_heads"] = m.has(a + "attention.head_count_kv") ? m.positive(a + "attention.head_count_kv")
                                                                   : t["num_attention_heads"].get<int64_t>();
  t["head_dim"] = m.has(a + "attention.key_length")
                      ? m.positive(a + "attention.key_length")
                      : t["hidden_size"].get<int64_t>() / t["num_attention_heads"].get<int64_t>();
  if (m.has(a + "attention.value_length") && m.positive(a + "attention.value_length") != t["head_dim"].get<int64_t>())
    fail(ErrorKind::kUnsupported, m.path(), ": attention.value_length (", m.integer(a + "attention.value_length"),
         ") differs from key_length (", t["head_dim"].get<int64_t>(), ")");
  t["intermediate_size"] = m.positive(a + "feed_forward_length");
  const auto embd = f.tensors().find("token_embd.weight");
  if (embd == f.tensors().end() || embd->second.dims.size() != 2)
    fail(ErrorKind::kInvalidFile, m.path(), ": tensor 'token_embd.weight' is missing or not a matrix");
  t["vocab_size"] = embd->second.dims[1];
  t["max_position_embeddings"] = m.positive(a + "context_length");
  t["rms_norm_eps"] = m.number(a + "attention.layer_norm_rms_epsilon");
  t["rope_theta"] = m.number_or(a + "rope.freq_base", 1e6);
  t["attention_bias"] = f.tensors().count("blk.0.attn_q.bias") != 0;
  t["tie_word_embeddings"] = f.tensors().count("output.weight") == 0;
  t["hidden_act"] = "silu";
  return t;
}

// The four special tokens the Qwen3-VL config names, found by their text in the vocabulary.
int64_t token_id(const std::vector<std::string>& tokens, const std::string& text, const std::string& path) {
  auto it = std::find(tokens.begin(), tokens.end(), text);
  if (it == tokens.end()) fail(ErrorKind::kInvalidFile, path, ": the vocabulary has no '", text, "' token");
  return it - tokens.begin();
}

std::string tokenizer_json(const Meta& m) {
  const std::string model = m.string("tokenizer.ggml.model");
  if (model != "gpt2")
    fail(ErrorKind::kUnsupported, m.path(), ": tokenizer.ggml.model '", model, "' is not supported (gpt2 BPE)");
  const std::string pre = m.string_or("tokenizer.ggml.pre", "qwen2");
  if (pre != "qwen2")
    fail(ErrorKind::kUnsupported, m.path(), ": tokenizer.ggml.pre '", pre, "' is not supported (qwen2)");
  const auto& tokens = m.strings("tokenizer.ggml.tokens");
  const std::vector<int64_t> types = m.integers("tokenizer.ggml.token_type");
  // Byte-level BPE tokens are text (bytes map to printable characters): anything else is a broken file.
  auto require_text = [&](const std::string& s, const char* what, size_t index) {
    const size_t bad = utf8::first_invalid_offset(s);
    if (bad != std::string::npos)
      fail(ErrorKind::kInvalidFile, m.path(), ": ", what, " ", index, " is not valid UTF-8 (byte ", bad, ")");
  };
  for (size_t id = 0; id < tokens.size(); ++id) require_text(tokens[id], "token", id);
  if (types.size() != tokens.size())
    fail(ErrorKind::kInvalidFile, m.path(), ": tokenizer.ggml.token_type has ", types.size(), " entries for ",
         tokens.size(), " tokens");
  Json vocab = Json::object(), added = Json::array();
  for (size_t id = 0; id < tokens.size(); ++id) {
    switch (types[id]) {
      case kNormal: vocab[tokens[id]] = id; break;
      case kControl:
      case kUserDefined:
        added.push_back({{"id", id}, {"content", tokens[id]}, {"single_word", false}, {"lstrip", false},
                         {"rstrip", false}, {"normalized", false}, {"special", types[id] == kControl}});
        break;
      case kUnused: break;  // padding rows of the embedding ("[PAD151669]"): never produced, decode to nothing
      default:
        fail(ErrorKind::kUnsupported, m.path(), ": token ", id, " has token type ", types[id],
             ", which a gpt2 BPE vocabulary does not use");
    }
  }
  Json merges = Json::array();
  const auto& merge_list = m.strings("tokenizer.ggml.merges");
  for (size_t i = 0; i < merge_list.size(); ++i) require_text(merge_list[i], "tokenizer merge", i);
  for (const std::string& merge : merge_list) {
    const size_t space = merge.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == merge.size())
      fail(ErrorKind::kInvalidFile, m.path(), ": tokenizer merge '", merge, "' is not two tokens");
    merges.push_back({merge.substr(0, space), merge.substr(space + 1)});
  }
  const Json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
  Json j;
  j["version"] = "1.0";
  j["added_tokens"] = std::move(added);
  j["normalizer"] = {{"type", "NFC"}};
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers",
                         {{{"type", "Split"}, {"pattern", {{"Regex", kQwen2Split}}}, {"behavior", "Isolated"}, {"invert", false}},
                          byte_level}}};
  j["decoder"] = byte_level;
  j["model"] = {{"type", "BPE"}, {"vocab", std::move(vocab)}, {"merges", std::move(merges)}, {"byte_fallback", false}};
  return j.dump();
}

Json generation_config(const Meta& m) {
  Json g;
  g["eos_token_id"] = m.has("tokenizer.ggml.eos_token_id") ? Json(m.integer("tokenizer.ggml.eos_token_id")) : Json();
  if (m.has("tokenizer.ggml.padding_token_id")) g["pad_token_id"] = m.integer("tokenizer.ggml.padding_token_id");
  // The converter copies generation_config.json's sampling settings here; Qwen3-VL samples by default.
  if (m.has("general.sampling.temp")) {
    g["do_sample"] = m.number("general.sampling.temp") > 0;
    g["temperature"] = m.number("general.sampling.temp");
  }
  if (m.has("general.sampling.top_k")) g["top_k"] = m.integer("general.sampling.top_k");
  if (m.has("general.sampling.top_p")) g["top_p"] = m.number("general.sampling.top_p");
  return g;
}

struct Vision {
  Json config;
  Json preprocessor;
  std::vector<int64_t> deepstack_layers;  // ViT layers that feed a DeepStack merger, ascending
};

Vision vision_config(const Meta& m, const GgufSource& f) {
  const std::string projector = m.string_or("clip.projector_type", "");
  if (projector != "qwen3vl_merger")
    fail(ErrorKind::kUnsupported, m.path(), ": projector type '", projector,
         "' is not a Qwen3-VL projector (qwen3vl_merger)");
  Vision v;
  Json& c = v.config;
  c["depth"] = m.positive("clip.vision.block_count");
  c["hidden_size"] = m.positive("clip.vision.embedding_length");
  c["num_heads"] = m.positive("clip.vision.attention.head_count");
  c["intermediate_size"] = m.positive("clip.vision.feed_forward_length");
  c["patch_size"] = m.positive("clip.vision.patch_size");
  c["spatial_merge_size"] = m.has("clip.vision.spatial_merge_size") ? m.positive("clip.vision.spatial_merge_size") : 2;
  c["temporal_patch_size"] = f.tensors().count("v.patch_embd.weight.1") ? 2 : 1;
  c["in_channels"] = 3;
  c["out_hidden_size"] = m.positive("clip.vision.projection_dim");
  const auto pos = f.tensors().find("v.position_embd.weight");
  if (pos == f.tensors().end() || pos->second.dims.size() != 2)
    fail(ErrorKind::kInvalidFile, m.path(), ": tensor 'v.position_embd.weight' is missing or not a matrix");
  c["num_position_embeddings"] = pos->second.dims[1];
  // The Qwen3-VL vision blocks use the tanh GELU (their config's hidden_act); the mergers keep
  // the reference's exact-erf GELU in the forward code.
  c["hidden_act"] = "gelu_pytorch_tanh";
  if (m.has("clip.vision.is_deepstack_layers")) {
    const std::vector<int64_t> flags = m.integers("clip.vision.is_deepstack_layers");
    for (size_t i = 0; i < flags.size(); ++i)
      if (flags[i]) v.deepstack_layers.push_back(static_cast<int64_t>(i));
  }
  c["deepstack_visual_indexes"] = v.deepstack_layers;
  Json& p = v.preprocessor;
  p["size"] = {{"shortest_edge", kQwen3VlMinPixels}, {"longest_edge", kQwen3VlMaxPixels}};
  p["patch_size"] = c["patch_size"];
  p["temporal_patch_size"] = c["temporal_patch_size"];
  p["merge_size"] = c["spatial_merge_size"];
  p["image_mean"] = m.has("clip.vision.image_mean") ? Json(m.numbers("clip.vision.image_mean")) : Json({0.5, 0.5, 0.5});
  p["image_std"] = m.has("clip.vision.image_std") ? Json(m.numbers("clip.vision.image_std")) : Json({0.5, 0.5, 0.5});
  return v;
}

// Renames every tensor of `f` by `rules`; a tensor no rule names is an error (the model would
// silently ignore it).
template <size_t N>
void rename_tensors(const GgufSource& f, const Rename (&rules)[N], const std::string& p_prefix,
                    const std::vector<int64_t>& deepstack_layers, const std::set<std::string>& handled,
                    std::vector<TensorView>& out) {
  for (const auto& [name, t] : f.tensors()) {
    if (handled.count(name)) continue;
    bool renamed = false;
    for (const Rename& r : rules) {
      int64_t n;
      if (!match_pattern(r.gguf, name, &n)) continue;
      std::string hf = replace_all(r.hf, "{p}", p_prefix);
      hf = replace_all(std::move(hf), "{v}", p_prefix);
      if (std::string(r.gguf).find("{d}") != std::string::npos) {
        auto at = std::find(deepstack_layers.begin(), deepstack_layers.end(), n);
        if (at == deepstack_layers.end())
          fail(ErrorKind::kInvalidFile, f.path(), ": tensor '", name, "' belongs to ViT layer ", n,
               ", which clip.vision.is_deepstack_layers does not mark");
        hf = replace_all(std::move(hf), "{d}", std::to_string(at - deepstack_layers.begin()));
      } else if (n >= 0) {
        hf = replace_all(std::move(hf), "{i}", std::to_string(n));
      }
      out.push_back(view_of(t, std::move(hf), f.path()));
      renamed = true;
      break;
    }
    if (!renamed)
      fail(ErrorKind::kInvalidFile, f.path(), ": tensor '", name, "' is not part of a Qwen3-VL ",
           is_projector(f) ? "vision projector" : "text model", " as llama.cpp writes it");
  }
}

// The Conv3d patch embedding [hidden, 3, t, p, p], which llama.cpp stores as one [hidden, 3, p, p]
// tensor per time step ("v.patch_embd.weight" and ".weight.1").
std::vector<float> patch_embedding(const GgufSource& f, int64_t temporal, std::vector<int64_t>* shape) {
  std::vector<const GgufTensor*> steps;
  for (int64_t t = 0; t < temporal; ++t) {
    const std::string name = t == 0 ? "v.patch_embd.weight" : "v.patch_embd.weight." + std::to_string(t);
    auto it = f.tensors().find(name);
    if (it == f.tensors().end()) fail(ErrorKind::kInvalidFile, f.path(), ": tensor '", name, "' is missing");
    if (it->second.dims.size() != 4 || (!steps.empty() && it->second.dims != steps[0]->dims))
      fail(ErrorKind::kInvalidFile, f.path(), ": tensor '", name, "' is not a [hidden, 3, p, p] patch kernel like the others");
    steps.push_back(&it->second);
  }
  const auto& d = steps[0]->dims;  // innermost first: [p, p, 3, hidden]
  const int64_t per_channel = d[0] * d[1], channels = d[2], hidden = d[3];
  *shape = {hidden, channels, temporal, d[1], d[0]};
  std::vector<float> step(static_cast<size_t>(per_channel * channels * hidden));
  std::vector<float> out(step.size() * static_cast<size_t>(temporal));
  for (int64_t t = 0; t < temporal; ++t) {
    const GgufTensor& s = *steps[static_cast<size_t>(t)];
    if (!ggml_type_dequantizable(s.type))
      fail(ErrorKind::kUnsupported, f.path(), ": tensor '", s.name, "' has a ggml type qvl cannot decode");
    dequantize_ggml(s.type, s.data, static_cast<int64_t>(step.size()), step.data());
    for (int64_t o = 0; o < hidden * channels; ++o)
      std::memcpy(&out[static_cast<size_t>((o * temporal + t) * per_channel)], &step[static_cast<size_t>(o * per_channel)],
                  static_cast<size_t>(per_channel) * sizeof(float));
  }
  return out;
}

bool has_gguf_magic(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::memcmp(magic, "GGUF", 4) == 0;
}

}  // namespace

namespace {

enum class LlamaGgufKind { kNone, kText, kProjector };

// What a file is, from one parse of its header: not a llama.cpp GGUF (not GGUF at all, or one of
// qvl's own), a text model or a vision projector.
LlamaGgufKind llama_gguf_kind(const std::string& path) {
  if (!fs::is_regular_file(path) || !has_gguf_magic(path)) return LlamaGgufKind::kNone;
  const GgufFile file(path);
  const GgufSource f{file.contents(), path};
  const std::string arch = architecture(f);
  if (f.get_string("qvl.config_json") != nullptr || (arch != "qwen3vl" && arch != "qwen3" && arch != "clip"))
    return LlamaGgufKind::kNone;
  return is_projector(f) ? LlamaGgufKind::kProjector : LlamaGgufKind::kText;
}

}  // namespace

bool find_llama_gguf_pair(const std::string& path, const std::string& mmproj, std::string* text_path,
                          std::string* mmproj_path) {
  if (fs::is_regular_file(path)) {
    const LlamaGgufKind kind = llama_gguf_kind(path);
    if (kind == LlamaGgufKind::kNone) return false;
    if (kind == LlamaGgufKind::kProjector)
      fail(ErrorKind::kInvalidArgument, "'", path, "' is a vision projector (mmproj); give the text model GGUF as the model and this file as --mmproj");
    *text_path = path;
    *mmproj_path = mmproj;
    return true;
  }
  if (!fs::is_directory(path) || fs::exists(fs::path(path) / "config.json")) return false;
  std::vector<std::string> texts, projectors;
  for (const auto& e : fs::directory_iterator(path)) {
    if (!e.is_regular_file() || e.path().extension() != ".gguf") continue;
    const LlamaGgufKind kind = llama_gguf_kind(e.path().string());
    if (kind != LlamaGgufKind::kNone) (kind == LlamaGgufKind::kProjector ? projectors : texts).push_back(e.path().string());
  }
  if (texts.empty()) return false;
  std::sort(texts.begin(), texts.end());
  std::sort(projectors.begin(), projectors.end());
  if (texts.size() > 1)
    fail(ErrorKind::kInvalidArgument, "'", path, "' holds ", texts.size(), " text model GGUF files ('", texts[0], "', '",
         texts[1], "'); give the one to use with -m");
  if (mmproj.empty() && projectors.size() > 1)
    fail(ErrorKind::kInvalidArgument, "'", path, "' holds ", projectors.size(), " projector GGUF files ('", projectors[0],
         "', '", projectors[1], "'); give the one to use with --mmproj");
  *text_path = texts[0];
  *mmproj_path = !mmproj.empty() ? mmproj : projectors.empty() ? std::string() : projectors[0];
  return true;
}

LlamaGgufModel open_llama_gguf(const std::string& text_path, const std::string& mmproj_path) {
  std::vector<std::unique_ptr<GgufFile>> files;
  files.push_back(std::make_unique<GgufFile>(text_path));
  if (!mmproj_path.empty()) files.push_back(std::make_unique<GgufFile>(mmproj_path));
  const GgufContents& text = files[0]->contents();
  const GgufContents* mmproj = files.size() > 1 ? &files[1]->contents() : nullptr;
  return convert_llama_gguf(text, text_path, mmproj, mmproj_path, std::move(files));
}

LlamaGgufModel convert_llama_gguf(const GgufContents& text_contents, const std::string& text_path,
                                  const GgufContents* mmproj_contents, const std::string& mmproj_path,
                                  std::vector<std::unique_ptr<GgufFile>> keep_alive) {
  const GgufSource text_source{text_contents, text_path};
  const GgufSource* text = &text_source;
  const Meta tm(*text);
  const std::string arch = architecture(*text);
  if (arch != "qwen3vl" && arch != "qwen3")
    fail(ErrorKind::kUnsupported, text_path, ": general.architecture '", arch, "' is not a Qwen3 or Qwen3-VL text model");
  std::optional<GgufSource> proj_source;
  const GgufSource* proj = nullptr;
  if (mmproj_contents != nullptr) {
    proj = &proj_source.emplace(GgufSource{*mmproj_contents, mmproj_path});
    if (!is_projector(*proj))
      fail(ErrorKind::kInvalidArgument, mmproj_path, ": not a vision projector (general.architecture '", architecture(*proj),
           "'; expected 'clip')");
    if (arch != "qwen3vl")
      fail(ErrorKind::kInvalidArgument, text_path, ": a '", arch, "' text model takes no vision projector");
  }

  LlamaGgufModel out;
  const auto& tokens = tm.strings("tokenizer.ggml.tokens");
  Json text_cfg = text_config(tm, *text, arch);
  const bool vision = proj != nullptr;
  const std::string prefix = vision ? "model.language_model." : "model.";
  Json config;
  if (vision) {
    config["model_type"] = "qwen3_vl";
    const std::vector<int64_t> sections = tm.integers(arch + ".rope.dimension_sections");
    if (sections.size() < 3)
      fail(ErrorKind::kInvalidFile, text_path, ": ", arch, ".rope.dimension_sections has ", sections.size(),
           " entries (expected at least 3)");
    text_cfg["rope_scaling"] = {{"mrope_interleaved", true},
                                {"mrope_section", {sections[0], sections[1], sections[2]}},
                                {"rope_type", "default"}};
    if (tm.has("tokenizer.ggml.eos_token_id")) text_cfg["eos_token_id"] = tm.integer("tokenizer.ggml.eos_token_id");
    config["text_config"] = text_cfg;
    config["tie_word_embeddings"] = text_cfg["tie_word_embeddings"];
    config["image_token_id"] = token_id(tokens, "<|image_pad|>", text_path);
    config["video_token_id"] = token_id(tokens, "<|video_pad|>", text_path);
    config["vision_start_token_id"] = token_id(tokens, "<|vision_start|>", text_path);
    config["vision_end_token_id"] = token_id(tokens, "<|vision_end|>", text_path);
  } else {
    // Text only: for text tokens MRoPE's three components carry the same position, which is
    // plain RoPE, so a Qwen3-VL text GGUF runs as a Qwen3 model.
    config = text_cfg;
    config["model_type"] = "qwen3";
    if (tm.has("tokenizer.ggml.eos_token_id")) config["eos_token_id"] = tm.integer("tokenizer.ggml.eos_token_id");
    if (arch == "qwen3vl") out.notes.push_back("no vision projector given: text only (images need --mmproj)");
  }

  std::vector<TensorView> views;
  std::map<std::string, std::vector<float>> owned;
  std::vector<int64_t> deepstack_layers;
  rename_tensors(*text, kTextRenames, prefix, {}, {}, views);
  if (vision) {
    const Meta pm(*proj);
    Vision v = vision_config(pm, *proj);
    if (v.config["out_hidden_size"] != text_cfg["hidden_size"])
      fail(ErrorKind::kInvalidArgument, "the projector '", mmproj_path, "' outputs ", v.config["out_hidden_size"].dump(),
           "-wide embeddings but the text model '", text_path, "' has hidden size ", text_cfg["hidden_size"].dump(),
           " (a projector made for another model size?)");
    if (tm.has(arch + ".n_deepstack_layers") &&
        tm.integer(arch + ".n_deepstack_layers") != static_cast<int64_t>(v.deepstack_layers.size()))
      fail(ErrorKind::kInvalidArgument, "the text model '", text_path, "' takes ", tm.integer(arch + ".n_deepstack_layers"),
           " DeepStack layers but the projector '", mmproj_path, "' marks ", v.deepstack_layers.size());
    std::set<std::string> handled = {"v.patch_embd.weight"};
    const int64_t temporal = v.config["temporal_patch_size"].get<int64_t>();
    for (int64_t t = 1; t < temporal; ++t) handled.insert("v.patch_embd.weight." + std::to_string(t));
    rename_tensors(*proj, kVisionRenames, "model.visual.", v.deepstack_layers, handled, views);
    TensorView patch;
    patch.name = "model.visual.patch_embed.proj.weight";
    owned[patch.name] = patch_embedding(*proj, temporal, &patch.shape);
    views.push_back(std::move(patch));
    config["vision_config"] = v.config;
    out.preprocessor_config_json = v.preprocessor.dump();
    deepstack_layers = v.deepstack_layers;
  }
  out.config_json = config.dump();
  out.generation_config_json = generation_config(tm).dump();
  out.tokenizer_json = tokenizer_json(tm);
  out.chat_template = tm.string_or("tokenizer.chat_template", "");
  out.checkpoint = Checkpoint::assemble(
      proj == nullptr ? text_path : text_path + " + " + mmproj_path, std::move(keep_alive), std::move(views),
      std::move(owned),
      [prefix, deepstack_layers](const std::string& hf) { return gguf_name_of(hf, prefix, deepstack_layers); });
  return out;
}

}  // namespace qvl
