// llama.cpp's GGUF files: what qvl rebuilds from their metadata, and the clear errors for a
// projector that does not fit the text model, a tensor type qvl cannot decode, a missing,
// misshapen or unknown tensor. The pair made by llama.cpp's tools is read from the workplace's
// shared fixtures (../shared/fixtures/gguf beside the repository; 40 MB).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>

#include "core/json_util.h"
#include "core/dtype.h"
#include "formats/ggml_quants.h"
#include "formats/gguf.h"
#include "kernels/kernels.h"
#include "formats/llama_gguf.h"
#include "qvl/image.hpp"
#include "qvl/qvl.hpp"
#include "test_util.h"

namespace qvl {
namespace {

namespace fs = std::filesystem;

const std::string kDir = std::string(QVL_TEST_DATA_DIR) + "/../../../shared/fixtures/gguf";
const std::string kText = kDir + "/tiny-qwen3-vl-s-Q4_K_M.gguf";
const std::string kMmproj = kDir + "/tiny-qwen3-vl-s-mmproj-F16.gguf";

void require_fixtures() {
  ASSERT_TRUE(fs::exists(kText) && fs::exists(kMmproj))
      << "missing " << kDir << ": the llama.cpp-made GGUF fixtures (../shared/fixtures/gguf beside the repository)";
}

// A copy of the projector with one change: edit() may set keys, drop tensors (return false) or
// change a tensor's type and dims.
struct TensorEdit {
  GgmlType type;
  std::vector<int64_t> dims;
  std::vector<uint8_t> replacement;  // new bytes when non-empty
};
std::string projector_variant(const std::string& name,
                              const std::function<void(GgufWriter&)>& set_keys,
                              const std::function<bool(const std::string&, TensorEdit&)>& edit_tensor,
                              const std::vector<std::string>& extra_tensors = {}) {
  const GgufFile src(kMmproj);
  GgufWriter w;
  for (const auto& [key, value] : src.metadata()) w.set(key, value);
  set_keys(w);
  std::vector<std::vector<uint8_t>> keep;
  for (const auto& [tname, t] : src.tensors()) {
    TensorEdit e{t.type, t.dims, {}};
    if (!edit_tensor(tname, e)) continue;
    if (e.replacement.empty()) {
      w.add_tensor(tname, e.type, e.dims, t.data, t.nbytes);
    } else {
      keep.push_back(std::move(e.replacement));
      w.add_tensor(tname, e.type, e.dims, keep.back().data(), keep.back().size());
    }
  }
  static const float zeros[64] = {};
  for (const std::string& extra : extra_tensors) w.add_tensor(extra, GgmlType::kF32, {64}, zeros, sizeof(zeros));
  const std::string path = std::string(QVL_BINARY_DIR) + "/llama_gguf_test_" + name + ".gguf";
  w.write(path);
  return path;
}

auto no_keys = [](GgufWriter&) {};
auto keep_all = [](const std::string&, TensorEdit&) { return true; };

std::string load_error(const std::string& mmproj) {
  ModelOptions o;
  o.mmproj = mmproj;
  o.threads = 1;
  try {
    Model::load(kText, o);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(LlamaGguf, MetadataBecomesTheHuggingFaceConfig) {
  require_fixtures();
  const LlamaGgufModel g = open_llama_gguf(kText, kMmproj);
  const Json config = Json::parse(g.config_json);
  EXPECT_EQ(config["model_type"], "qwen3_vl");
  const Json& t = config["text_config"];
  EXPECT_EQ(t["hidden_size"], 256);
  EXPECT_EQ(t["num_hidden_layers"], 3);
  EXPECT_EQ(t["num_attention_heads"], 4);
  EXPECT_EQ(t["num_key_value_heads"], 2);
  EXPECT_EQ(t["head_dim"], 64);
  EXPECT_EQ(t["intermediate_size"], 512);
  EXPECT_EQ(t["vocab_size"], 151936);
  EXPECT_EQ(t["rope_scaling"]["mrope_section"], Json::parse("[8, 12, 12]"));
  EXPECT_EQ(t["tie_word_embeddings"], true);
  const Json& v = config["vision_config"];
  EXPECT_EQ(v["depth"], 3);
  EXPECT_EQ(v["hidden_size"], 64);
  EXPECT_EQ(v["num_position_embeddings"], 64);
  EXPECT_EQ(v["temporal_patch_size"], 2);
  EXPECT_EQ(v["deepstack_visual_indexes"], Json::parse("[0, 1]"));
  EXPECT_EQ(config["image_token_id"], 151655);
  EXPECT_EQ(config["vision_start_token_id"], 151652);
  const Json pre = Json::parse(g.preprocessor_config_json);
  EXPECT_EQ(pre["size"]["shortest_edge"], 65536);
  EXPECT_EQ(pre["size"]["longest_edge"], 16777216);
  EXPECT_NE(g.chat_template.find("<|im_start|>"), std::string::npos);
  // Added tokens: control tokens are special, <think> & co. are not; padding rows are dropped.
  const Json tok = Json::parse(g.tokenizer_json);
  EXPECT_EQ(tok["added_tokens"].size(), 26u);
  EXPECT_EQ(tok["model"]["vocab"].size(), 151643u);
  int think = 0;
  for (const Json& a : tok["added_tokens"]) {
    if (a["content"] == "<think>") {
      EXPECT_EQ(a["special"], false);
      ++think;
    }
  }
  EXPECT_EQ(think, 1);
  // The Conv3d kernel is rebuilt from the two time steps llama.cpp stores apart.
  const TensorView* patch = g.checkpoint->view("model.visual.patch_embed.proj.weight");
  ASSERT_NE(patch, nullptr);
  EXPECT_EQ(patch->shape, (std::vector<int64_t>{64, 3, 2, 16, 16}));
}

TEST(LlamaGguf, ProjectorOfAnotherModelSizeIsRefused) {
  require_fixtures();
  const std::string p = projector_variant(
      "width", [](GgufWriter& w) { w.set("clip.vision.projection_dim", uint64_t{2048}); }, keep_all);
  const std::string e = load_error(p);
  EXPECT_NE(e.find("outputs 2048-wide embeddings but the text model"), std::string::npos) << e;
  EXPECT_NE(e.find("has hidden size 256"), std::string::npos) << e;
}

TEST(LlamaGguf, DeepStackCountMustMatchTheTextModel) {
  require_fixtures();
  const std::string p = projector_variant(
      "deepstack", [](GgufWriter& w) { w.set("clip.vision.is_deepstack_layers", std::vector<int64_t>{1, 0, 0}); },
      keep_all);
  const std::string e = load_error(p);
  EXPECT_NE(e.find("takes 2 DeepStack layers but the projector"), std::string::npos) << e;
  EXPECT_NE(e.find("marks 1"), std::string::npos) << e;
}

TEST(LlamaGguf, TensorOfATypeQvlCannotDecodeIsNamed) {
  require_fixtures();
  const std::string p = projector_variant("type", no_keys, [](const std::string& name, TensorEdit& e) {
    if (name == "v.blk.0.attn_out.weight") {
      e.type = GgmlType::kI8;
      e.replacement.assign(64 * 64, 1);
    }
    return true;
  });
  const std::string e = load_error(p);
  EXPECT_NE(e.find("tensor 'v.blk.0.attn_out.weight' has ggml type I8, which qvl cannot decode"), std::string::npos) << e;
}

TEST(LlamaGguf, MissingTensorIsNamed) {
  require_fixtures();
  const std::string p = projector_variant("missing", no_keys,
                                          [](const std::string& name, TensorEdit&) { return name != "v.blk.1.ln1.weight"; });
  const std::string e = load_error(p);
  EXPECT_NE(e.find("tensor 'model.visual.blocks.1.norm1.weight' (shape [64]) is missing"), std::string::npos) << e;
}

TEST(LlamaGguf, ShapeThatDisagreesWithTheMetadataIsNamed) {
  require_fixtures();
  const std::string p = projector_variant("shape", no_keys, [](const std::string& name, TensorEdit& e) {
    if (name == "mm.0.weight") {
      e.dims = {128, 256};  // [256, 128] as the checkpoint orders it
      e.replacement.assign(128 * 256 * 2, 0);
    }
    return true;
  });
  const std::string e = load_error(p);
  EXPECT_NE(e.find("tensor 'model.visual.merger.linear_fc1.weight' has shape [256, 128] but the config implies [256, 256]"),
            std::string::npos)
      << e;
}

TEST(LlamaGguf, UnknownTensorIsRefused) {
  require_fixtures();
  const std::string p = projector_variant("stray", no_keys, keep_all, {"v.blk.0.extra.weight"});
  const std::string e = load_error(p);
  EXPECT_NE(e.find("tensor 'v.blk.0.extra.weight' is not part of a Qwen3-VL vision projector"), std::string::npos) << e;
}

TEST(LlamaGguf, NonQwenProjectorIsRefused) {
  require_fixtures();
  const std::string p =
      projector_variant("kind", [](GgufWriter& w) { w.set("clip.projector_type", std::string("qwen2vl_merger")); }, keep_all);
  const std::string e = load_error(p);
  EXPECT_NE(e.find("projector type 'qwen2vl_merger' is not a Qwen3-VL projector (qwen3vl_merger)"), std::string::npos) << e;
}

// Q8_0 blocks holding exactly `values` (rows × cols), which must be on qvl's own q8_0 grid (a
// quantize + dequantize round trip): every block's largest magnitude is 127 × its fp16 scale.
std::vector<uint8_t> q8_0_blocks_of(const std::vector<float>& values, int64_t rows, int64_t cols) {
  std::vector<uint8_t> out;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cols / 32; ++b) {
      const float* x = values.data() + r * cols + b * 32;
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
      const uint16_t h = f32_to_f16(amax / 127.0f);
      const float d = f16_to_f32(h);
      EXPECT_EQ(d * 127.0f, amax);
      out.push_back(static_cast<uint8_t>(h & 0xff));
      out.push_back(static_cast<uint8_t>(h >> 8));
      for (int j = 0; j < 32; ++j) {
        const float q = d > 0 ? x[j] / d : 0.0f;
        EXPECT_EQ(q, std::nearbyint(q));
        out.push_back(static_cast<uint8_t>(static_cast<int8_t>(q)));
      }
    }
  }
  return out;
}

// A projector whose matrices are ggml Q8_0 runs on the int8 kernels with its weights exactly as
// stored: the same weights given as F32 and quantized to q8_0 at load (which reproduces them
// exactly, being on the q8_0 grid) give bit-identical logits, and the packed copy is held at
// about a quarter of the f32 bytes.
TEST(LlamaGguf, Q8_0MatricesArePackedAsStored) {
  require_fixtures();
  auto variant = [](const std::string& name, bool as_q8) {
    return projector_variant(name, no_keys, [as_q8](const std::string& tname, TensorEdit& e) {
      const bool matrix = e.dims.size() == 2 && e.type == GgmlType::kF16 && e.dims[0] % 32 == 0;
      if (!matrix) return true;
      const GgufFile src(kMmproj);
      const GgufTensor& t = src.tensors().at(tname);
      const int64_t cols = e.dims[0], rows = e.dims[1];
      std::vector<float> values(static_cast<size_t>(rows * cols));
      dequantize_ggml(t.type, t.data, rows * cols, values.data());
      const kernels::QuantizedMatrix q = kernels::quantize_matrix(
          kernels::WeightMatrix{DType::kF32, rows, cols, values.data()}, kernels::WeightFormat::kQ8_0);
      kernels::dequantize_matrix(q, values.data());
      if (as_q8) {
        e.type = GgmlType::kQ8_0;
        e.replacement = q8_0_blocks_of(values, rows, cols);
      } else {
        e.type = GgmlType::kF32;
        e.replacement.resize(values.size() * 4);
        std::memcpy(e.replacement.data(), values.data(), e.replacement.size());
      }
      return true;
    });
  };
  const std::string q8 = variant("q8", true), f32 = variant("q8_as_f32", false);
  auto run = [](const std::string& mmproj, const std::string& vision_type, uint64_t* bytes) {
    ModelOptions o;
    o.mmproj = mmproj;
    o.threads = 1;
    o.kv_cache_type = "f32";
    o.vision_weights_type = vision_type;
    auto model = Model::load(kText, o);
    *bytes = model->info().weight_bytes;
    Generator gen(model, GeneratorParams{});
    const Image image = load_image_file(std::string(QVL_TEST_DATA_DIR) + "/golden/images/b_320x256.png");
    gen.append_inputs(Processor(model).process_prompt("What is it?", {image}));
    return gen.last_logits();
  };
  uint64_t packed_bytes = 0, quantized_bytes = 0, f32_bytes = 0;
  const std::vector<float> packed = run(q8, "", &packed_bytes);
  const std::vector<float> quantized_at_load = run(f32, "q8_0", &quantized_bytes);
  const std::vector<float> dense = run(f32, "", &f32_bytes);
  EXPECT_EQ(packed, quantized_at_load);
  EXPECT_NE(packed, dense);  // the int8 kernels really ran
  EXPECT_EQ(packed_bytes, quantized_bytes);
  EXPECT_LT(packed_bytes + 1'500'000, f32_bytes) << packed_bytes << " vs " << f32_bytes;
}

// A token that is not text (found by fuzz_llama_gguf): named, not a JSON library exception.
TEST(LlamaGguf, TokenThatIsNotUtf8IsNamed) {
  GgufWriter t;
  t.set("general.architecture", std::string("qwen3"));
  for (const char* key : {"block_count", "context_length", "embedding_length", "feed_forward_length",
                          "attention.head_count"})
    t.set(std::string("qwen3.") + key, uint64_t{32});
  t.set("qwen3.attention.layer_norm_rms_epsilon", 1e-6);
  t.set("tokenizer.ggml.model", std::string("gpt2"));
  t.set("tokenizer.ggml.tokens", std::vector<std::string>{"a", "\xC0" "b"});
  t.set("tokenizer.ggml.token_type", std::vector<int64_t>{1, 1});
  t.set("tokenizer.ggml.merges", std::vector<std::string>{});
  std::vector<float> embd(2 * 32, 0.5f);
  t.add_tensor("token_embd.weight", GgmlType::kF32, {32, 2}, embd.data(), embd.size() * 4);
  const std::string path = std::string(QVL_BINARY_DIR) + "/llama_gguf_test_bad_token.gguf";
  t.write(path);
  try {
    open_llama_gguf(path, "");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token 1 is not valid UTF-8 (byte 0)"), std::string::npos) << e.what();
  }
}

// The same pair loaded twice gives the same greedy tokens as the goldens' reference (checked in
// full by ctest golden_gguf_check); here: a folder holding the pair is the pair.
TEST(LlamaGguf, FolderHoldingThePairFindsBoth) {
  require_fixtures();
  std::string text, mmproj;
  ASSERT_TRUE(find_llama_gguf_pair(kDir, "", &text, &mmproj));
  EXPECT_EQ(fs::path(text).filename(), "tiny-qwen3-vl-s-Q4_K_M.gguf");
  EXPECT_EQ(fs::path(mmproj).filename(), "tiny-qwen3-vl-s-mmproj-F16.gguf");
  // A Hugging Face folder is not a llama.cpp GGUF.
  EXPECT_FALSE(find_llama_gguf_pair(std::string(QVL_TEST_DATA_DIR) + "/tiny-qwen3-vl", "", &text, &mmproj));
}

}  // namespace
}  // namespace qvl
