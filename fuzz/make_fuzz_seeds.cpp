// Writes the seed corpora of the fuzz targets, mostly from the bundled test data:
//   make_fuzz_seeds TEST_DATA_DIR OUT_DIR
// creates OUT_DIR/<target>/ for every fuzz_<target>.cpp. Small inputs only (max_len of each target
// in tools/fuzz.sh): the real tokenizer.json (11 MB) is cut down to a few hundred tokens, the tiny
// model's safetensors file to its header plus a few KB, and a GGUF is written with GgufWriter.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "qvl/error.hpp"

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

void copy_matching(const fs::path& dir, const std::set<std::string>& exts, const fs::path& out) {
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && exts.count(e.path().extension().string()))
      write(out / e.path().filename(), read(e.path()));
}

// A cut-down copy of the real tokenizer.json: the 256 byte tokens and the next `extra` ids, the
// merges among them, and the added tokens renumbered to follow.
std::string mini_tokenizer(const Json& real, int extra, bool string_merges) {
  Json t = real;
  const int limit = 256 + extra;
  Json vocab = Json::object();
  std::set<std::string> kept;
  for (auto it = real["model"]["vocab"].begin(); it != real["model"]["vocab"].end(); ++it)
    if (it.value().get<int>() < limit) {
      vocab[it.key()] = it.value();
      kept.insert(it.key());
    }
  Json merges = Json::array();
  for (const Json& m : real["model"]["merges"]) {
    std::string a, b;
    if (m.is_array()) a = m[0], b = m[1];
    else {
      const std::string s = m;
      a = s.substr(0, s.find(' '));
      b = s.substr(s.find(' ') + 1);
    }
    if (kept.count(a) && kept.count(b) && kept.count(a + b)) {
      if (string_merges) merges.push_back(a + " " + b);
      else merges.push_back(Json::array({a, b}));
    }
  }
  t["model"]["vocab"] = vocab;
  t["model"]["merges"] = merges;
  int next = limit;
  for (Json& a : t["added_tokens"]) a["id"] = next++;
  return t.dump();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s TEST_DATA_DIR OUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path data = argv[1], out = argv[2];
  const fs::path tiny = data / "tiny-qwen3-vl";
  try {
    // --- safetensors: a small valid file, and the tiny model's header with the first 4 KB of data.
    {
      const float f[6] = {1, 2, 3, 4, 5, 6};
      const uint16_t h[4] = {0x3f80, 0x4000, 0x7fc0, 0x7f80};  // bf16 1, 2, NaN, Inf
      const int64_t i[2] = {7, -7};
      const fs::path p = out / "safetensors" / "small.safetensors";
      fs::create_directories(p.parent_path());
      qvl::write_safetensors(p.string(),
                             {{"a.weight", qvl::DType::kF32, {2, 3}, f, sizeof f},
                              {"b.bias", qvl::DType::kBF16, {4}, h, sizeof h},
                              {"c", qvl::DType::kI64, {2}, i, sizeof i},
                              {"empty", qvl::DType::kF32, {0, 5}, f, 0}},
                             {{"format", "pt"}});
      const std::string model = read(tiny / "model.safetensors");
      uint64_t header_len = 0;
      std::memcpy(&header_len, model.data(), 8);
      write(out / "safetensors" / "tiny_model_head.safetensors", model.substr(0, 8 + header_len + 4096));
    }
    // --- gguf: every metadata value type and a few tensor types.
    {
      qvl::GgufWriter w;
      w.set("general.architecture", std::string("qwen3"));
      w.set("general.name", std::string("fuzz seed"));
      w.set("qwen3.block_count", uint64_t{2});
      w.set("qwen3.rope.freq_base", 1e6);
      w.set("qvl.offset", int64_t{-3});
      w.set("qvl.flag", true);
      w.set("tokenizer.ggml.tokens", std::vector<std::string>{"a", "b", "<|im_end|>"});
      w.set("tokenizer.ggml.token_type", std::vector<int64_t>{1, 1, 3});
      w.set("tokenizer.ggml.scores", std::vector<double>{0.5, -1, 0});
      std::vector<float> f32(64, 0.25f);
      std::vector<uint8_t> q8(2 * 34, 1);
      std::vector<uint16_t> f16(32, 0x3c00);
      w.add_tensor("blk.0.attn_q.weight", qvl::GgmlType::kF32, {16, 4}, f32.data(), f32.size() * 4);
      w.add_tensor("blk.0.ffn_up.weight", qvl::GgmlType::kQ8_0, {32, 2}, q8.data(), q8.size());
      w.add_tensor("output_norm.weight", qvl::GgmlType::kF16, {32}, f16.data(), f16.size() * 2);
      fs::create_directories(out / "gguf");
      w.write((out / "gguf" / "small.gguf").string());
      // The micro llama.cpp pair of the bad-file corpus (each ~15-35 KB): a text model and
      // projector that load, and the files that fail one check each.
      copy_matching(data / "bad", {".gguf"}, out / "gguf");
      // The llama.cpp-made fixtures (../shared/fixtures/gguf beside the repository) cut small: every
      // metadata key, with the vocabulary arrays cut to their first 300 entries and only the
      // tensors of up to 4096 bytes.
      const fs::path shared = data / ".." / ".." / ".." / "shared" / "fixtures" / "gguf";
      for (const char* name : {"tiny-qwen3-vl-s-Q4_K_M.gguf", "tiny-qwen3-vl-s-mmproj-F16.gguf"}) {
        if (!fs::exists(shared / name)) {
          std::fprintf(stderr, "make_fuzz_seeds: no %s (the shared fixtures); its seed is skipped\n",
                       (shared / name).string().c_str());
          continue;
        }
        const qvl::GgufFile src((shared / name).string());
        qvl::GgufWriter cut;
        for (const auto& [key, value] : src.metadata()) {
          qvl::GgufValue v = value;
          if (auto* strings = std::get_if<std::vector<std::string>>(&v); strings && strings->size() > 300) strings->resize(300);
          if (auto* ints = std::get_if<std::vector<int64_t>>(&v); ints && ints->size() > 300) ints->resize(300);
          if (key != "general.alignment") cut.set(key, std::move(v));
        }
        for (const auto& [tname, t] : src.tensors())
          if (t.nbytes <= 4096) cut.add_tensor(tname, t.type, t.dims, t.data, t.nbytes);
        cut.write((out / "gguf" / (std::string("cut-") + name)).string());
      }
    }
    // --- llama_gguf: a small llama.cpp-layout Qwen3-VL pair (u32 text length, text GGUF, projector GGUF).
    {
      const std::vector<std::string> tokens = {"a", "b", "a b", "<|im_start|>", "<|im_end|>", "<|image_pad|>",
                                               "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<think>", "[PAD10]"};
      qvl::GgufWriter t;
      t.set("general.architecture", std::string("qwen3vl"));
      for (const auto& [key, value] : std::vector<std::pair<std::string, uint64_t>>{
               {"block_count", 1}, {"context_length", 4096}, {"embedding_length", 32}, {"feed_forward_length", 64},
               {"attention.head_count", 2}, {"attention.head_count_kv", 1}, {"attention.key_length", 16},
               {"attention.value_length", 16}, {"n_deepstack_layers", 1}})
        t.set("qwen3vl." + key, value);
      t.set("qwen3vl.attention.layer_norm_rms_epsilon", 1e-6);
      t.set("qwen3vl.rope.freq_base", 5e6);
      t.set("qwen3vl.rope.dimension_sections", std::vector<int64_t>{2, 3, 3, 0});
      t.set("tokenizer.ggml.model", std::string("gpt2"));
      t.set("tokenizer.ggml.pre", std::string("qwen2"));
      t.set("tokenizer.ggml.tokens", tokens);
      t.set("tokenizer.ggml.token_type", std::vector<int64_t>{1, 1, 1, 3, 3, 3, 3, 3, 3, 4, 5});
      t.set("tokenizer.ggml.merges", std::vector<std::string>{"a b"});
      t.set("tokenizer.ggml.eos_token_id", uint64_t{4});
      t.set("tokenizer.chat_template", std::string("{% for m in messages %}{{ m.content }}{% endfor %}"));
      std::vector<float> big(64 * 32, 0.01f), vec(64, 1.0f);
      std::vector<uint8_t> q8(64 * 34, 1);
      t.add_tensor("token_embd.weight", qvl::GgmlType::kQ8_0, {32, 11}, q8.data(), 11 * 34);
      t.add_tensor("output_norm.weight", qvl::GgmlType::kF32, {32}, vec.data(), 32 * 4);
      t.add_tensor("blk.0.attn_norm.weight", qvl::GgmlType::kF32, {32}, vec.data(), 32 * 4);
      t.add_tensor("blk.0.attn_q.weight", qvl::GgmlType::kQ8_0, {32, 32}, q8.data(), 32 * 34);
      t.add_tensor("blk.0.attn_k.weight", qvl::GgmlType::kF32, {32, 16}, big.data(), 32 * 16 * 4);
      t.add_tensor("blk.0.ffn_down.weight", qvl::GgmlType::kQ8_0, {64, 32}, q8.data(), 64 * 34);
      qvl::GgufWriter v;
      v.set("general.architecture", std::string("clip"));
      v.set("clip.projector_type", std::string("qwen3vl_merger"));
      for (const auto& [key, value] : std::vector<std::pair<std::string, uint64_t>>{
               {"block_count", 1}, {"embedding_length", 16}, {"feed_forward_length", 32}, {"attention.head_count", 2},
               {"patch_size", 2}, {"spatial_merge_size", 2}, {"projection_dim", 32}})
        v.set("clip.vision." + key, value);
      v.set("clip.vision.is_deepstack_layers", std::vector<int64_t>{1});
      v.set("clip.vision.image_mean", std::vector<double>{0.5, 0.5, 0.5});
      v.add_tensor("v.patch_embd.weight", qvl::GgmlType::kF32, {2, 2, 3, 16}, big.data(), 2 * 2 * 3 * 16 * 4);
      v.add_tensor("v.patch_embd.weight.1", qvl::GgmlType::kF32, {2, 2, 3, 16}, big.data(), 2 * 2 * 3 * 16 * 4);
      v.add_tensor("v.position_embd.weight", qvl::GgmlType::kF32, {16, 4}, big.data(), 16 * 4 * 4);
      v.add_tensor("v.blk.0.attn_qkv.weight", qvl::GgmlType::kF32, {16, 48}, big.data(), 16 * 48 * 4);
      v.add_tensor("v.deepstack.0.fc1.weight", qvl::GgmlType::kF32, {64, 16}, big.data(), 64 * 16 * 4);
      v.add_tensor("mm.0.weight", qvl::GgmlType::kF32, {64, 32}, big.data(), 64 * 32 * 4);
      fs::create_directories(out / "llama_gguf");
      const fs::path tp = out / "llama_gguf" / "text.tmp", vp = out / "llama_gguf" / "mmproj.tmp";
      t.write(tp.string());
      v.write(vp.string());
      const std::string text = read(tp), mmproj = read(vp);
      fs::remove(tp);
      fs::remove(vp);
      const uint32_t len = static_cast<uint32_t>(text.size());
      std::string pair(4, '\0');
      std::memcpy(pair.data(), &len, 4);
      write(out / "llama_gguf" / "pair.bin", pair + text + mmproj);
      const uint32_t all = static_cast<uint32_t>(text.size());
      std::memcpy(pair.data(), &all, 4);
      write(out / "llama_gguf" / "text_only.bin", pair + text);
      // The micro pair of the bad-file corpus, and its text model with each bad projector.
      const std::string micro_text = read(data / "bad" / "llama_text.gguf");
      const uint32_t micro_len = static_cast<uint32_t>(micro_text.size());
      std::memcpy(pair.data(), &micro_len, 4);
      for (const auto& e : fs::directory_iterator(data / "bad")) {
        const std::string file = e.path().filename().string();
        if (file.rfind("llama_mmproj", 0) == 0)
          write(out / "llama_gguf" / ("micro_" + e.path().stem().string() + ".bin"), pair + micro_text + read(e.path()));
      }
    }
    // --- configs: every JSON config of the test data.
    copy_matching(tiny, {".json"}, out / "configs");
    fs::remove(out / "configs" / "tokenizer.json");
    for (const char* name : {"odd_config", "qwen2_upscale", "qwen3_downscale"})
      write(out / "configs" / (std::string(name) + "_preprocessor_config.json"),
            read(data / "images" / "preprocess" / name / "preprocessor_config.json"));
    // --- tokenizer_load: cut-down tokenizer.json variants.
    {
      const Json real = Json::parse(read(tiny / "tokenizer.json"));
      write(out / "tokenizer_load" / "mini_pairs.json", mini_tokenizer(real, 200, false));
      write(out / "tokenizer_load" / "mini_strings.json", mini_tokenizer(real, 60, true));
      Json variant = Json::parse(mini_tokenizer(real, 40, false));
      variant["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
      variant["normalizer"] = {{"type", "Sequence"}, {"normalizers", Json::array({{{"type", "NFC"}}})}};
      variant["model"]["ignore_merges"] = true;
      write(out / "tokenizer_load" / "mini_variant.json", variant.dump());
    }
    // --- tokenizer_encode: the golden tokenizer cases' texts, one with ids after a NUL.
    {
      const Json cases = Json::parse(read(data / "golden" / "tokenizer_cases.json"));
      int n = 0;
      for (const Json& c : cases["cases"]) write(out / "tokenizer_encode" / ("case_" + std::to_string(n++)), c["text"]);
      write(out / "tokenizer_encode" / "ids", std::string("Hi <|im_start|>\0", 16) + std::string("\x01\x02\x03\xa0\x51\x02\xff\xff\xff", 9));
    }
    // --- chat_template: the real template with the golden messages, and small feature templates.
    {
      const std::string source = Json::parse(read(tiny / "chat_template.json"))["chat_template"];
      std::vector<std::string> messages;
      for (const char* c : {"a_text_only", "b_one_image", "c_two_images"})
        messages.push_back(Json::parse(read(data / "golden" / (std::string(c) + ".json")))["messages"].dump());
      messages.push_back(
          R"([{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},)"
          R"({"role":"assistant","content":"<think>\nhmm\n</think>\n\nHello","tool_calls":[{"function":{"name":"f","arguments":{"x":1}}}]},)"
          R"({"role":"tool","content":"42"},{"role":"user","content":[{"type":"video"},{"type":"text","text":"ok"}]}])");
      const std::string extra = R"({"enable_thinking":false,"add_vision_id":true,"tools":[{"type":"function","function":{"name":"f","parameters":{}}}]})";
      const std::string nul(1, '\0');
      int n = 0;
      for (const std::string& m : messages) {
        write(out / "chat_template" / ("real_" + std::to_string(n)), "\x03" + m + nul + extra);
        write(out / "chat_template" / ("source_" + std::to_string(n++)), "\x02" + source + nul + m + nul + "{}");
      }
      const char* const templates[] = {
          "{% for m in messages %}{{ loop.index }}:{{ m.role | upper }} {{ m.content | trim }}{% if not loop.last %}\n{% endif %}{% endfor %}",
          "{% macro f(a, b=2) %}{{ a ~ b }}{% endmacro %}{{ f(1) }}{{ f(a=3, b='x') }}{% set ns = namespace(n=0) %}{% for i in range(5) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}",
          "{{ messages | tojson }}{{ messages[0]['content'][1:3] }}{{ 'a,b' .split(',') | join('-') }}{{ [3,1,2] | sort | list }}{{ {'k': 1} | items | list }}",
          "{%- if messages|length > 1 and messages[-1].role == 'user' -%}{{ raise_exception('bad') }}{%- elif x is defined -%}{{ x }}{%- else -%}{{ '%d-%s' | format(1, 'a') }}{%- endif -%}",
          "{% for k, v in {'a': 1, 'b': [1, 2]}.items() recursive %}{{ k }}={{ v }}{% endfor %}{{ 'abc'.startswith('a') }}{{ none is none }}{{ 7 // 2 }}{{ 2 ** 10 }}{{ 'x' * 3 }}",
      };
      n = 0;
      for (const char* t : templates)
        write(out / "chat_template" / ("feature_" + std::to_string(n++)), "\x02" + std::string(t) + nul + messages[3] + nul + "{\"x\": 1}");
    }
    // --- chat_request: request bodies with every parameter, an image part as a data URL.
    {
      const std::string png = read(data / "golden" / "images" / "c1_256x192.png");
      static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
      std::string b64;
      for (size_t i = 0; i < png.size(); i += 3) {
        const size_t n = std::min<size_t>(3, png.size() - i);
        uint32_t v = 0;
        for (size_t k = 0; k < 3; ++k) v = v << 8 | (k < n ? static_cast<uint8_t>(png[i + k]) : 0u);
        for (size_t k = 0; k < 4; ++k) b64 += k <= n ? alphabet[(v >> (18 - 6 * k)) & 63] : '=';
      }
      const std::string bodies[] = {
          R"({"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"max_tokens":8,"temperature":0.7,"top_p":0.9,"top_k":20,"min_p":0.05,"presence_penalty":0.5,"frequency_penalty":0.1,"repetition_penalty":1.05,"seed":7,"stop":["\n\n","END"],"n":1,"stream":true,"stream_options":{"include_usage":true},"logprobs":true,"top_logprobs":2,"chat_template_kwargs":{"enable_thinking":false},"mm_processor_kwargs":{"min_pixels":3136,"max_pixels":200704}})",
          R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,)" + b64 + R"("}},{"type":"text","text":"What is it?"}]}],"max_tokens":4})",
          R"({"messages":[{"role":"user","content":"Weather?"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"w","arguments":"{\"city\":\"Paris\"}"}}]},{"role":"tool","tool_call_id":"c1","content":"18 C"}],"tools":[{"type":"function","function":{"name":"w","parameters":{"type":"object"}}}],"tool_choice":"auto"})",
          R"({"prompt":"Once upon a time","max_tokens":3,"logprobs":2,"echo":true})",
      };
      int n = 0;
      for (const auto& body : bodies) write(out / "chat_request" / ("body_" + std::to_string(n++)), body);
    }
    // --- image_decode: every decoder fixture and the golden images.
    copy_matching(data / "images" / "decode", {".png", ".jpg", ".webp", ".gif", ".bmp"}, out / "image_decode");
    copy_matching(data / "golden" / "images", {".png"}, out / "image_decode");
    // --- video_demux: the golden clips (FFV1 Matroska, H.264 MP4) and the bad videos.
    copy_matching(data / "golden" / "videos", {".mkv", ".mp4"}, out / "video_demux");
    copy_matching(data / "bad", {".mkv", ".mp4", ".y4m"}, out / "video_demux");
    // --- preprocess: a few byte strings (FuzzedDataProvider input).
    for (int i = 0; i < 8; ++i) {
      std::string s;
      for (int k = 0; k < 64 + 37 * i; ++k) s.push_back(static_cast<char>((k * 131 + i * 17) & 0xff));
      write(out / "preprocess" / ("bytes_" + std::to_string(i)), s);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_fuzz_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
