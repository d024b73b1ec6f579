// The towers' tensor tables: they name exactly the tiny checkpoint's tensors (names and shapes)
// and every `qvl synth` preset's, with the right quantization classes; the one vision-config
// validation; stray text tensors are refused by the text loader.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "core/check.h"
#include "formats/checkpoint.h"
#include "formats/model_config.h"
#include "formats/safetensors.h"
#include "devtools/synthetic_checkpoint.h"
#include "model/qwen3_vl.h"
#include "model/text/text_tensors.h"
#include "model/vision/vision_encoder.h"
#include "model/vision/vision_tensors.h"
#include "test_util.h"

namespace qvl {
namespace {

using test::expect_error;

TEST(TensorTable, NamesExactlyTheTinyCheckpointsTensorsWithTheirShapes) {
  const ModelConfig config = load_model_config(test::tiny_model_dir());
  auto ckpt = Checkpoint::open(test::tiny_model_dir());
  std::map<std::string, std::vector<int64_t>> table;
  for (const TensorSpec& s : model_tensor_specs(config)) EXPECT_TRUE(table.emplace(s.name, s.shape).second) << s.name;
  std::map<std::string, std::vector<int64_t>> stored;
  for (const std::string& name : ckpt->names()) stored[name] = ckpt->view(name)->shape;
  EXPECT_EQ(table, stored);
  EXPECT_EQ(table.size(), 3u * 11 + 2 + 3 + 4 * 12 + 3 * 6);  // tied: no lm_head
}

TEST(TensorTable, EnumeratesEverySynthPresetWithItsQuantizationClasses) {
  for (const std::string& preset : synthetic_presets()) {
    SCOPED_TRACE(preset);
    const ModelConfig c = parse_model_config(synthetic_config_json(preset), preset);
    const int64_t layers = c.text.num_hidden_layers, depth = c.vision->depth;
    const int64_t mergers = 1 + static_cast<int64_t>(c.vision->deepstack_visual_indexes.size());
    const bool tied = c.text.tie_word_embeddings;
    const std::vector<TensorSpec> specs = model_tensor_specs(c);
    std::set<std::string> names;
    std::map<QuantClass, int64_t> per_class;
    for (const TensorSpec& s : specs) {
      EXPECT_TRUE(names.insert(s.name).second) << s.name << " listed twice";
      ++per_class[s.quant];
      for (int64_t d : s.shape) EXPECT_GT(d, 0) << s.name;
      EXPECT_EQ(is_matrix_role(s.role), s.shape.size() >= 2) << s.name;
    }
    EXPECT_EQ(static_cast<int64_t>(specs.size()), 11 * layers + (tied ? 2 : 3) + 3 + 12 * depth + 6 * mergers);
    EXPECT_EQ(per_class[QuantClass::kTextLayer], 7 * layers);
    EXPECT_EQ(per_class[QuantClass::kTextHead], tied ? 1 : 2);
    EXPECT_EQ(per_class[QuantClass::kVision], 4 * depth + 2 * mergers);
    const std::string last_layer = "model.language_model.layers." + std::to_string(layers - 1) + ".";
    EXPECT_TRUE(names.count(last_layer + "mlp.down_proj.weight"));
    EXPECT_FALSE(names.count("model.language_model.layers." + std::to_string(layers) + ".mlp.down_proj.weight"));
    EXPECT_EQ(names.count("lm_head.weight"), tied ? 0u : 1u);
    EXPECT_TRUE(names.count("model.visual.blocks." + std::to_string(depth - 1) + ".attn.qkv.weight"));
    EXPECT_TRUE(names.count("model.visual.deepstack_merger_list." + std::to_string(mergers - 2) + ".linear_fc2.bias"));
    // The final merger normalizes over D before the shuffle, the DeepStack mergers over 4D after it.
    for (const TensorSpec& s : specs) {
      if (s.name == "model.visual.merger.norm.weight") {
        EXPECT_EQ(s.shape[0], c.vision->hidden_size);
      } else if (s.name == "model.visual.deepstack_merger_list.0.norm.weight") {
        EXPECT_EQ(s.shape[0], 4 * c.vision->hidden_size);
      }
    }
  }
}

// Text-only Qwen3 checkpoints keep their tensors under "model.".
TEST(TensorTable, PlainQwen3UsesTheModelPrefix) {
  ModelConfig c;
  c.model_type = "qwen3";
  c.text.hidden_size = 8, c.text.num_hidden_layers = 1, c.text.num_attention_heads = 2, c.text.num_key_value_heads = 1;
  c.text.head_dim = 4, c.text.intermediate_size = 16, c.text.vocab_size = 10, c.text.tie_word_embeddings = false;
  const std::vector<TensorSpec> specs = text_tensor_specs(c);
  ASSERT_EQ(specs.size(), 14u);
  EXPECT_EQ(specs.front().name, "model.embed_tokens.weight");
  EXPECT_EQ(specs[2].name, "model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(specs[2].shape, (std::vector<int64_t>{8, 8}));
  EXPECT_EQ(specs[3].shape, (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(specs.back().name, "lm_head.weight");
}

std::string vision_config_json(const std::string& hidden_act, const std::string& deepstack) {
  return R"({"model_type":"qwen3_vl","text_config":{"hidden_size":64,"num_hidden_layers":1,"num_attention_heads":4,
    "num_key_value_heads":2,"head_dim":16,"intermediate_size":128,"vocab_size":1000},
    "vision_config":{"depth":2,"hidden_size":32,"num_heads":2,"intermediate_size":64,"out_hidden_size":64,
    "patch_size":16,"temporal_patch_size":2,"spatial_merge_size":2,
    "num_position_embeddings":64,"hidden_act":")" +
         hidden_act + R"(","deepstack_visual_indexes":)" + deepstack + "}}";
}

// One validation: config.json parsing and the loader (configs built in code) accept and refuse
// the same activations, with the same message.
TEST(VisionConfigValidation, ParsingAndLoadingAgree) {
  for (const char* act : {"gelu_pytorch_tanh", "gelu_new", "gelu"}) {
    SCOPED_TRACE(act);
    const ModelConfig c = parse_model_config(vision_config_json(act, "[1]"), "config.json");
    EXPECT_NO_THROW(validate_vision_config(*c.vision));
  }
  EXPECT_EQ(vision_activation("gelu_new"), VisionActivation::kGeluTanh);
  EXPECT_EQ(vision_activation("gelu"), VisionActivation::kGeluErf);
  expect_error([] { parse_model_config(vision_config_json("relu", "[1]"), "config.json"); }, ErrorKind::kUnsupported,
               {"config.json vision_config: hidden_act 'relu' is not supported (expected gelu_pytorch_tanh, gelu_new or gelu)"});
  ModelConfig tiny = load_model_config(test::tiny_model_dir());
  tiny.vision->hidden_act = "relu";
  auto ckpt = Checkpoint::open(test::tiny_model_dir());
  expect_error([&] { VisionEncoder enc(*tiny.vision, *ckpt); }, ErrorKind::kUnsupported,
               {"vision_config: hidden_act 'relu' is not supported (expected gelu_pytorch_tanh, gelu_new or gelu)"});
  // Rules once only the loader had now hold for config.json too.
  expect_error([] { parse_model_config(vision_config_json("gelu", "[1, 1]"), "config.json"); }, ErrorKind::kInvalidFile,
               {"config.json vision_config: deepstack_visual_indexes lists block 1 twice"});
}

TEST(TextWeights, StrayTextTensorIsRefused) {
  SafetensorsFile src(test::tiny_model_dir() + "/model.safetensors");
  std::vector<TensorToWrite> tensors;
  for (const auto& [name, t] : src.tensors()) tensors.push_back({name, t.dtype, t.shape, t.data, t.nbytes});
  static const float extra[4] = {1, 2, 3, 4};
  tensors.push_back({"model.language_model.layers.3.input_layernorm.weight", DType::kF32, {4}, extra, sizeof(extra)});
  const std::string dir = test::temp_dir() + "/tensor_table_stray_text";
  std::filesystem::create_directories(dir);
  write_safetensors(dir + "/model.safetensors", tensors);
  const ModelConfig config = load_model_config(test::tiny_model_dir());
  auto ckpt = Checkpoint::open(dir);
  expect_error([&] { load_text_weights(config, *ckpt); }, ErrorKind::kInvalidFile,
               {"text tensors the config (3 layers) does not use", "model.language_model.layers.3.input_layernorm.weight"});
}

}  // namespace
}  // namespace qvl
