// Checkpoint loading: config.json parsing, safetensors validation, the tensor audit.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "core/check.h"
#include "formats/checkpoint.h"
#include "formats/gguf.h"
#include "formats/model_config.h"
#include "formats/safetensors.h"
#include "test_util.h"

namespace qvl {
namespace {

namespace fs = std::filesystem;

using test::expect_error;

std::string header_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t len = header.size();
  std::memcpy(out.data(), &len, 8);
  return out + header + data;
}

std::string write_tmp(const std::string& name, const std::string& bytes) {
  std::string path = test::temp_dir() + "/" + name;
  test::write_file(path, bytes);
  return path;
}

TEST(ModelConfig, ParsesTinyQwen3VL) {
  ModelConfig c = load_model_config(test::tiny_model_dir());
  EXPECT_EQ(c.model_type, "qwen3_vl");
  EXPECT_EQ(c.text.hidden_size, 64);
  EXPECT_EQ(c.text.num_hidden_layers, 3);
  EXPECT_EQ(c.text.num_attention_heads, 4);
  EXPECT_EQ(c.text.num_key_value_heads, 2);
  EXPECT_EQ(c.text.head_dim, 16);
  EXPECT_EQ(c.text.mrope_section, (std::vector<int>{4, 2, 2}));
  EXPECT_TRUE(c.text.mrope_interleaved);
  EXPECT_DOUBLE_EQ(c.text.rope_theta, 5000000.0);
  EXPECT_TRUE(c.text.tie_word_embeddings);
  ASSERT_TRUE(c.vision.has_value());
  EXPECT_EQ(c.vision->deepstack_visual_indexes, (std::vector<int>{0, 2}));
  EXPECT_EQ(c.vision->num_position_embeddings, 64);
  EXPECT_EQ(c.image_token_id, 151655);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{151645}));
}

TEST(ModelConfig, RopeParametersOfTransformers5) {
  const char* text = R"({"model_type":"qwen3_vl","tie_word_embeddings":false,
    "text_config":{"hidden_size":64,"num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":2,
      "head_dim":16,"intermediate_size":128,"vocab_size":1000,
      "rope_parameters":{"rope_type":"default","rope_theta":1000000,"mrope_section":[4,2,2],"mrope_interleaved":true}},
    "vision_config":{"depth":2,"hidden_size":32,"num_heads":2,"intermediate_size":64,"patch_size":16,
      "temporal_patch_size":2,"spatial_merge_size":2,"out_hidden_size":64,"num_position_embeddings":64,
      "deepstack_visual_indexes":[1]}})";
  ModelConfig c = parse_model_config(text, "config.json");
  EXPECT_DOUBLE_EQ(c.text.rope_theta, 1e6);
  EXPECT_EQ(c.text.mrope_section, (std::vector<int>{4, 2, 2}));
  EXPECT_FALSE(c.text.tie_word_embeddings);
}

TEST(ModelConfig, PlainQwen3) {
  const char* text = R"({"model_type":"qwen3","hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,
    "num_key_value_heads":2,"head_dim":16,"intermediate_size":128,"vocab_size":1000,"rope_theta":1000000,
    "tie_word_embeddings":true,"eos_token_id":151645})";
  ModelConfig c = parse_model_config(text, "config.json");
  EXPECT_FALSE(c.vision.has_value());
  EXPECT_TRUE(c.text.mrope_section.empty());
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{151645}));
}

TEST(ModelConfig, Errors) {
  expect_error([] { parse_model_config("{\"model_type\": ", "config.json"); }, ErrorKind::kInvalidFile,
               {"config.json", "malformed JSON"});
  expect_error([] { parse_model_config(R"({"model_type":"llama"})", "config.json"); }, ErrorKind::kUnsupported,
               {"llama"});
  expect_error([] { parse_model_config(R"({"model_type":"qwen3","hidden_size":64})", "config.json"); },
               ErrorKind::kInvalidFile, {"missing key 'num_hidden_layers'"});
  expect_error([] {
    parse_model_config(R"({"model_type":"qwen3","hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,
      "num_key_value_heads":3,"head_dim":16,"intermediate_size":128,"vocab_size":1000})", "config.json");
  }, ErrorKind::kInvalidFile, {"num_key_value_heads"});
  expect_error([] {
    parse_model_config(R"({"model_type":"qwen3","hidden_size":"big","num_hidden_layers":2})", "config.json");
  }, ErrorKind::kInvalidFile, {"'hidden_size' must be an integer"});
}

TEST(Safetensors, ReadsValidFile) {
  float values[6] = {1, 2, 3, 4, 5, 6};
  std::string path = test::temp_dir() + "/ok.safetensors";
  write_safetensors(path, {{"a", DType::kF32, {2, 3}, values, sizeof(values)}});
  SafetensorsFile f(path);
  ASSERT_EQ(f.tensors().size(), 1u);
  const TensorView& t = f.tensors().at("a");
  EXPECT_EQ(t.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(t.data, values, sizeof(values)), 0);
}

TEST(Safetensors, RejectsTruncatedHeaderLength) {
  auto p = write_tmp("short.safetensors", "abc");
  expect_error([&] { SafetensorsFile f(p); }, ErrorKind::kInvalidFile, {"truncated"});
}

TEST(Safetensors, RejectsAbsurdHeaderLength) {
  std::string bytes(8, '\0');
  uint64_t len = uint64_t(2) << 30;  // 2 GiB
  std::memcpy(bytes.data(), &len, 8);
  auto p = write_tmp("absurd.safetensors", bytes + "{}");
  expect_error([&] { SafetensorsFile f(p); }, ErrorKind::kInvalidFile, {"absurd safetensors header length"});
}

TEST(Safetensors, RejectsHeaderPastEnd) {
  std::string bytes(8, '\0');
  uint64_t len = 1000;
  std::memcpy(bytes.data(), &len, 8);
  auto p = write_tmp("pastend.safetensors", bytes + "{}");
  expect_error([&] { SafetensorsFile f(p); }, ErrorKind::kInvalidFile, {"truncated", "1000"});
}

TEST(Safetensors, RejectsOffsetsPastEnd) {
  auto p = write_tmp("offsets.safetensors",
                     header_file(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", std::string(8, '\0')));
  expect_error([&] { SafetensorsFile f(p); }, ErrorKind::kInvalidFile, {"'w'", "past the end"});
}

TEST(Safetensors, RejectsOverlap) {
  auto p = write_tmp("overlap.safetensors",
                     header_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
                                     "b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                 std::string(12, '\0')));
  expect_error([&] { SafetensorsFile f(p); }, ErrorKind::kInvalidFile, {"overlap"});
}

TEST(Safetensors, RejectsUnknownDtype) {
  auto p = write_tmp("dtype.safetensors",
                     header_file(R"({"a":{"dtype":"F8_E9","shape":[2],"data_offsets":[0,2]}})", std::string(2, '\0')));
  expect_error([&] { SafetensorsFile f(p); }, ErrorKind::kInvalidFile, {"unknown dtype 'F8_E9'"});
}

TEST(Safetensors, RejectsSizeMismatchAndHugeShape) {
  auto p = write_tmp("size.safetensors",
                     header_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')));
  expect_error([&] { SafetensorsFile f(p); }, ErrorKind::kInvalidFile, {"holds 8 bytes", "needs 12"});
  auto q = write_tmp("huge.safetensors",
                     header_file(R"({"a":{"dtype":"F32","shape":[1000000000000,1000000],"data_offsets":[0,8]}})",
                                 std::string(8, '\0')));
  expect_error([&] { SafetensorsFile f(q); }, ErrorKind::kInvalidFile, {"absurdly large"});
}

TEST(Safetensors, RejectsMalformedJson) {
  auto p = write_tmp("json.safetensors", header_file("{\"a\": [", ""));
  expect_error([&] { SafetensorsFile f(p); }, ErrorKind::kInvalidFile, {"malformed JSON"});
}

TEST(Checkpoint, ShapeMismatchNamesTensorAndShapes) {
  auto ckpt = Checkpoint::open(test::tiny_model_dir());
  expect_error([&] { ckpt->get("model.language_model.norm.weight", {65}); }, ErrorKind::kInvalidFile,
               {"model.language_model.norm.weight", "[64]", "[65]"});
  expect_error([&] { ckpt->get("model.language_model.no_such.weight", {1}); }, ErrorKind::kInvalidFile,
               {"no_such", "missing"});
}

TEST(Checkpoint, AuditReportsUnusedTensors) {
  auto ckpt = Checkpoint::open(test::tiny_model_dir());
  ckpt->get("model.language_model.norm.weight", {64});
  expect_error([&] { ckpt->check_all_used(); }, ErrorKind::kInvalidFile, {"does not use"});
}

TEST(Checkpoint, ShardedViaIndex) {
  fs::path dir = fs::path(test::temp_dir()) / "sharded";
  fs::create_directories(dir);
  float a[2] = {1, 2}, b[3] = {3, 4, 5};
  write_safetensors((dir / "model-00001-of-00002.safetensors").string(), {{"a", DType::kF32, {2}, a, sizeof(a)}});
  write_safetensors((dir / "model-00002-of-00002.safetensors").string(), {{"b", DType::kF32, {3}, b, sizeof(b)}});
  test::write_file((dir / "model.safetensors.index.json").string(),
                   R"({"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}})");
  auto ckpt = Checkpoint::open(dir.string());
  EXPECT_EQ(ckpt->tensor_count(), 2u);
  EXPECT_EQ(reinterpret_cast<const float*>(ckpt->get("b", {3}).data)[2], 5.0f);
  test::write_file((dir / "model.safetensors.index.json").string(),
                   R"({"weight_map":{"a":"model-00001-of-00002.safetensors","c":"model-00002-of-00002.safetensors"}})");
  expect_error([&] { Checkpoint::open(dir.string()); }, ErrorKind::kInvalidFile, {"'c'"});
}

TEST(Checkpoint, MissingFolder) {
  expect_error([] { Checkpoint::open("/nonexistent/model"); }, ErrorKind::kNotFound, {"/nonexistent/model"});
}

TEST(Gguf, RoundTripsMetadataAndTensors) {
  GgufWriter w;
  w.set("general.architecture", std::string("qwen3vl"));
  w.set("qwen3vl.block_count", uint64_t{36});
  w.set("qvl.mrope_section", std::vector<int64_t>{24, 20, 20});
  w.set("qvl.eps", 1e-6);
  float a[64];
  for (int i = 0; i < 64; ++i) a[i] = static_cast<float>(i);
  std::string q8(2 * 34, '\x01');
  w.add_tensor("a", GgmlType::kF32, {32, 2}, a, sizeof(a));
  w.add_tensor("b", GgmlType::kQ8_0, {64}, q8.data(), q8.size());
  const std::string path = test::temp_dir() + "/rt.gguf";
  w.write(path);
  GgufFile f(path);
  EXPECT_EQ(*f.get_string("general.architecture"), "qwen3vl");
  EXPECT_EQ(std::get<uint64_t>(f.metadata().at("qwen3vl.block_count")), 36u);
  EXPECT_EQ(std::get<std::vector<int64_t>>(f.metadata().at("qvl.mrope_section")), (std::vector<int64_t>{24, 20, 20}));
  const GgufTensor& ta = f.tensors().at("a");
  EXPECT_EQ(ta.dims, (std::vector<int64_t>{32, 2}));
  EXPECT_EQ(std::memcmp(ta.data, a, sizeof(a)), 0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f.tensors().at("b").data) % 32, 0u);
  EXPECT_EQ(f.tensors().at("b").nbytes, 68u);
}

// Values set with a GgufStore go to the file as that type (llama.cpp refuses a u64 block_count or
// an f64 epsilon), and general.alignment is a u32 as the specification says.
TEST(Gguf, WritesTheTypesAReaderChecks) {
  GgufWriter w;
  w.set("t.count", uint64_t{36}, GgufStore::kU32);
  w.set("t.eps", 1e-6, GgufStore::kF32);
  w.set("t.sections", std::vector<int64_t>{24, -20}, GgufStore::kI32);
  w.set("t.wide", uint64_t{36});
  const std::string path = test::temp_dir() + "/typed.gguf";
  w.write(path);
  const std::string bytes = test::read_file(path);
  // The type code (u32) that follows each key's name in the metadata section.
  auto type_after = [&](const std::string& key, size_t skip = 0) {
    const size_t at = bytes.find(key);
    EXPECT_NE(at, std::string::npos) << key;
    uint32_t t = 0;
    std::memcpy(&t, bytes.data() + at + key.size() + skip, 4);
    return t;
  };
  EXPECT_EQ(type_after("general.alignment"), 4u);  // u32
  EXPECT_EQ(type_after("t.count"), 4u);
  EXPECT_EQ(type_after("t.eps"), 6u);         // f32
  EXPECT_EQ(type_after("t.sections"), 9u);    // an array ...
  EXPECT_EQ(type_after("t.sections", 4), 5u);  // ... of i32
  EXPECT_EQ(type_after("t.wide"), 10u);       // u64 when no type is asked for
  GgufFile f(path);
  EXPECT_EQ(std::get<uint64_t>(f.metadata().at("t.count")), 36u);
  EXPECT_EQ(std::get<double>(f.metadata().at("t.eps")), static_cast<double>(1e-6f));
  EXPECT_EQ(std::get<std::vector<int64_t>>(f.metadata().at("t.sections")), (std::vector<int64_t>{24, -20}));
}

TEST(Gguf, RejectsBadInput) {
  expect_error([] { GgufFile f(write_tmp("magic.gguf", "GGML\x03\0\0\0")); }, ErrorKind::kInvalidFile, {"bad magic"});
  expect_error([] { GgufFile f(write_tmp("short.gguf", "GG")); }, ErrorKind::kInvalidFile, {"truncated"});
  std::string head = "GGUF";
  auto u32 = [&](uint32_t v) { head.append(reinterpret_cast<const char*>(&v), 4); };
  auto u64 = [&](uint64_t v) { head.append(reinterpret_cast<const char*>(&v), 8); };
  u32(3);
  u64(0);
  u64(1);
  u64(5);
  head += "key";  // truncated key
  expect_error([&] { GgufFile f(write_tmp("key.gguf", head)); }, ErrorKind::kInvalidFile, {"truncated"});
  std::string huge = "GGUF";
  huge.append("\x03\0\0\0", 4);
  uint64_t many = uint64_t(1) << 40;
  huge.append(reinterpret_cast<const char*>(&many), 8);
  huge.append(std::string(8, '\0'));
  expect_error([&] { GgufFile f(write_tmp("many.gguf", huge)); }, ErrorKind::kInvalidFile, {"tensors"});
  // A valid file cut short inside its tensor data.
  GgufWriter w;
  float a[64] = {};
  w.add_tensor("a", GgmlType::kF32, {64}, a, sizeof(a));
  const std::string path = test::temp_dir() + "/cut.gguf";
  w.write(path);
  std::string bytes = test::read_file(path);
  test::write_file(path, bytes.substr(0, bytes.size() - 10));
  expect_error([&] { GgufFile f(path); }, ErrorKind::kInvalidFile, {"'a'", "past the end"});
}

}  // namespace
}  // namespace qvl
