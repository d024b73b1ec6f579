// The public generation API on the tiny checkpoint: multi-turn prefix reuse (counted in
// evaluated tokens and checked against a fresh run), rewind, stop conditions, limits, threads,
// and the synthetic-checkpoint path.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "devtools/synthetic_checkpoint.h"
#include "devtools/quantize_checkpoint.h"
#include "qvl/qvl.hpp"
#include "test_util.h"

namespace qvl {
namespace {

using nlohmann::json;

std::shared_ptr<Model> tiny(int64_t context = 4096, const std::string& weights = "", const std::string& kv = "f32") {
  return test::tiny_model(context, weights, kv);
}
using test::generate;
using test::greedy;

std::string image_path(const std::string& name) { return test::golden_dir() + "/images/" + name; }

// Logits after `messages` computed from scratch.
std::vector<float> fresh_logits(const std::shared_ptr<Model>& model, const json& messages) {
  Processor processor(model);
  Generator g(model, greedy(1));
  g.append_inputs(processor.process(messages.dump(), {}, true, "/"));
  return g.last_logits();
}

TEST(Generator, MultiTurnEvaluatesOnlyNewTokensAndMatchesFreshRun) {
  auto model = tiny();
  Processor processor(model);
  Tokenizer tokenizer(model);
  Generator g(model, greedy(6));
  json messages = json::array({{{"role", "user"}, {"content", "Hello there, who are you?"}}});
  ProcessedInputs turn1 = processor.process(messages.dump());
  g.set_inputs(turn1);
  EXPECT_EQ(g.stats().evaluated_tokens, static_cast<int64_t>(turn1.input_ids.size()));
  std::vector<int32_t> answer = generate(g);

  messages.push_back({{"role", "assistant"}, {"content", tokenizer.decode(answer, true)}});
  messages.push_back({{"role", "user"},
                      {"content", json::array({{{"type", "image"}, {"image", image_path("c1_256x192.png")}},
                                               {{"type", "text"}, {"text", "And this?"}}})}});
  ProcessedInputs turn2 = processor.process(messages.dump(), {}, true, "/");
  const int64_t before = g.stats().evaluated_tokens;
  g.set_inputs(turn2);
  const int64_t evaluated = g.stats().evaluated_tokens - before;
  // The first turn's prompt is reused: at most the assistant answer's tail, the new user turn
  // (with its image) and one re-run token are evaluated.
  EXPECT_LT(evaluated, static_cast<int64_t>(turn2.input_ids.size()));
  EXPECT_LE(evaluated, static_cast<int64_t>(turn2.input_ids.size() - turn1.input_ids.size()) + 1);
  EXPECT_EQ(g.sequence(), turn2.input_ids);
  const std::vector<float> reused = g.last_logits(), fresh = fresh_logits(model, messages);
  EXPECT_LT(test::max_abs_diff(reused, fresh), 1e-4);
}

TEST(Generator, RewindThenRegenerateGivesTheSameTokens) {
  auto model = tiny();
  Processor processor(model);
  Generator g(model, greedy(8));
  ProcessedInputs in = processor.process_prompt("Count to ten.", {load_image_file(image_path("b_320x256.png"))});
  g.append_inputs(in);
  const std::vector<int32_t> first = generate(g);
  g.rewind_to(in.input_ids.size());
  EXPECT_EQ(generate(g), first);
  g.rewind_to(in.input_ids.size() + 3);  // keep three generated tokens
  std::vector<int32_t> tail = generate(g);
  EXPECT_EQ(std::vector<int32_t>(first.begin() + 3, first.begin() + 3 + static_cast<long>(tail.size())), tail);
}

TEST(Generator, StopsAtMaxTokensAndAtStopString) {
  auto model = tiny();
  Processor processor(model);
  Tokenizer tokenizer(model);
  ProcessedInputs in = processor.process_prompt("Write a short poem about the sea.");
  Generator g(model, greedy(16));
  g.append_inputs(in);
  const std::vector<int32_t> tokens = generate(g);
  EXPECT_EQ(g.stop_reason(), "length");
  // A stop string equal to the text of the 4th token ends generation there.
  GeneratorParams p = greedy(16);
  const std::string piece = tokenizer.decode({tokens[3]}, true);
  ASSERT_FALSE(piece.empty());
  p.stop = {piece};
  Generator s(model, p);
  s.append_inputs(in);
  const std::vector<int32_t> stopped = generate(s);
  EXPECT_EQ(s.stop_reason(), "stop");
  EXPECT_LE(stopped.size(), 4u);
}

TEST(Generator, PromptLongerThanContextIsAClearError) {
  auto model = tiny(64);
  Processor processor(model);
  ProcessedInputs in = processor.process_prompt(std::string(400, 'a') + " " + std::string(400, 'b'));
  Generator g(model, greedy(4));
  try {
    g.append_inputs(in);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kLimitExceeded);
    EXPECT_NE(std::string(e.what()).find("context"), std::string::npos) << e.what();
  }
  // Images that do not fit either.
  EXPECT_THROW(g.append_inputs(processor.process_prompt("x", {load_image_file(image_path("c2_450x250.png"))})), Error);
}

TEST(Generator, BadInputsAreErrors) {
  auto model = tiny();
  Processor processor(model);
  Generator g(model, greedy(4));
  EXPECT_THROW(processor.process_prompt(""), Error);
  EXPECT_THROW(processor.process("not json"), Error);
  EXPECT_THROW(processor.process("[]"), Error);
  EXPECT_THROW(g.append_tokens({}), Error);
  EXPECT_THROW(g.append_tokens({-1}), Error);
  EXPECT_THROW(g.append_tokens({1 << 30}), Error);
  EXPECT_THROW(g.generate_next_token(), Error);  // nothing appended yet
  // An image placeholder without an image.
  EXPECT_THROW(g.append_tokens({Tokenizer(model).token_to_id("<|image_pad|>")}), Error);
  // More <image> marks than images.
  EXPECT_THROW(processor.process_prompt("<image> and <image>", {load_image_file(image_path("b_320x256.png"))}), Error);
}

TEST(Generator, ConcurrentGeneratorsShareOneModel) {
  auto model = tiny();
  Processor processor(model);
  ProcessedInputs a = processor.process_prompt("First question?");
  ProcessedInputs b = processor.process_prompt("Second, different question?");
  auto run = [&](const ProcessedInputs& in) {
    Generator g(model, greedy(8));
    g.append_inputs(in);
    return generate(g);
  };
  const auto expect_a = run(a), expect_b = run(b);
  std::vector<int32_t> got_a, got_b;
  std::thread ta([&] { got_a = run(a); }), tb([&] { got_b = run(b); });
  ta.join();
  tb.join();
  EXPECT_EQ(got_a, expect_a);
  EXPECT_EQ(got_b, expect_b);
}

TEST(Generator, KvCacheTypeOption) {
  // 3 layers x 2 KV heads x head_dim 16, K and V.
  EXPECT_EQ(tiny(4096, "", "f32")->info().kv_bytes_per_token, 2u * 3 * 2 * 16 * 4);
  auto f16 = tiny(4096, "", "");
  EXPECT_EQ(f16->info().kv_cache_type, "f16");  // the default
  EXPECT_EQ(f16->info().kv_bytes_per_token, 2u * 3 * 2 * 16 * 2);
  EXPECT_EQ(tiny(4096, "", "F16")->info().kv_cache_type, "f16");
  test::expect_error([] { tiny(4096, "", "q4_0"); }, ErrorKind::kInvalidArgument, {"'q4_0'"});
  // A reused prefix with the f16 cache matches a fresh run up to flipped f16 roundings: the
  // decode steps that wrote the answer's K/V rows and the fresh run's prefill sum in different
  // fp32 orders (one-row vs chunked matmuls and attention kernels), and a row that lands near an
  // f16 rounding boundary may round the other way. Such flips are a fraction of what the f16
  // storage itself moves the logits (f16 against an f32 cache: 1.6e-2 here; the flips: 1.5e-3,
  // while the same reuse with an f32 cache differs by 1.1e-5).
  Processor processor(f16);
  json messages = json::array({{{"role", "user"}, {"content", "Hello there, who are you?"}}});
  Generator g(f16, greedy(4));
  g.set_inputs(processor.process(messages.dump()));
  const std::vector<int32_t> answer = generate(g);
  messages.push_back({{"role", "assistant"}, {"content", Tokenizer(f16).decode(answer, true)}});
  messages.push_back({{"role", "user"}, {"content", "And then?"}});
  g.set_inputs(processor.process(messages.dump()));
  const std::vector<float> fresh = fresh_logits(f16, messages);
  const double storage_effect = test::max_abs_diff(fresh, fresh_logits(tiny(4096, "", "f32"), messages));
  EXPECT_GT(storage_effect, 1e-3);
  EXPECT_LT(test::max_abs_diff(g.last_logits(), fresh), 0.25 * storage_effect);
}

TEST(Generator, SamplingIsReproducibleWithASeed) {
  auto model = tiny();
  Processor processor(model);
  ProcessedInputs in = processor.process_prompt("Tell me a story.");
  auto run = [&](uint64_t seed) {
    GeneratorParams p = GeneratorParams::from_model(*model);  // do_sample, top_k 20, top_p 0.8, T 0.7
    p.max_new_tokens = 12;
    p.stop_at_eos = false;
    p.seed = seed;
    Generator g(model, p);
    g.append_inputs(in);
    return generate(g);
  };
  EXPECT_TRUE(GeneratorParams::from_model(*model).do_sample);
  EXPECT_EQ(run(5), run(5));
  EXPECT_NE(run(5), run(6));
}

TEST(SyntheticCheckpoint, TinyPresetLoadsWithEveryTensorUsed) {
  const std::string dir = test::temp_dir() + "/synth-tiny";
  write_synthetic_checkpoint("qwen3-vl-tiny", dir, test::tiny_model_dir(), 3);
  ModelOptions o;
  o.threads = 1;
  o.context_length = 512;
  auto model = Model::load(dir, o);  // the loader fails if any tensor is missing or unused
  EXPECT_TRUE(model->info().has_vision);
  Processor processor(model);
  Generator g(model, greedy(4));
  g.append_inputs(processor.process_prompt("Describe.", {load_image_file(image_path("c1_256x192.png"))}));
  EXPECT_EQ(generate(g).size(), 4u);
}

// A plain Qwen3 text checkpoint (model_type qwen3, tensors under "model.") built from the tiny
// VL checkpoint's text half must give exactly the VL model's text-only logits: for text every
// MRoPE component is equal, which is plain RoPE.
TEST(PlainQwen3, TextCheckpointMatchesTheVlModelOnText) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(test::temp_dir()) / "plain-qwen3";
  fs::create_directories(dir);
  json vl = json::parse(test::read_file(test::tiny_model_dir() + "/config.json"));
  json cfg = vl["text_config"];
  cfg["model_type"] = "qwen3";
  cfg["rope_scaling"] = nullptr;
  cfg["tie_word_embeddings"] = true;
  cfg["architectures"] = {"Qwen3ForCausalLM"};
  test::write_file((dir / "config.json").string(), cfg.dump());
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"})
    fs::copy_file(fs::path(test::tiny_model_dir()) / f, dir / f, fs::copy_options::overwrite_existing);
  SafetensorsFile src(test::tiny_model_dir() + "/model.safetensors");
  std::vector<TensorToWrite> text;
  const std::string prefix = "model.language_model.";
  for (const auto& [name, t] : src.tensors())
    if (name.rfind(prefix, 0) == 0) text.push_back({"model." + name.substr(prefix.size()), t.dtype, t.shape, t.data, t.nbytes});
  write_safetensors((dir / "model.safetensors").string(), text);

  ModelOptions o;
  o.threads = 2;
  o.kv_cache_type = "f32";  // as tiny()
  auto plain = Model::load(dir.string(), o);
  EXPECT_EQ(plain->info().model_type, "qwen3");
  EXPECT_FALSE(plain->info().has_vision);
  auto vlm = tiny();
  const std::string messages = R"([{"role": "user", "content": "Write a short poem about the sea."}])";
  auto run = [&](const std::shared_ptr<Model>& m) {
    Generator g(m, greedy(8));
    g.append_inputs(Processor(m).process(messages));
    auto logits = g.last_logits();
    return std::make_pair(logits, generate(g));
  };
  auto [lp, tp] = run(plain);
  auto [lv, tv] = run(vlm);
  EXPECT_LT(test::max_abs_diff(lp, lv), 1e-5);
  EXPECT_EQ(tp, tv);
  // Images are refused by a text-only model.
  EXPECT_THROW(Processor(plain).process_prompt("x", {load_image_file(image_path("b_320x256.png"))}), Error);
}

// Many image sizes (tiny, huge, extreme aspect ratios) through the processor: the token count
// is (h/32)*(w/32) of the resized grid and stays within the pixel budget; a few run end to end.
TEST(Processor, AnyImageSizeGivesTheRightTokenCount) {
  auto model = tiny(16384);
  ProcessorOptions po;
  po.max_pixels = 512 * 32 * 32;  // keep the end-to-end runs small
  Processor processor(model, po);
  const int32_t pad = Tokenizer(model).token_to_id("<|image_pad|>");
  std::mt19937 rng(11);
  const std::vector<std::pair<int, int>> fixed = {{1, 1}, {1, 200}, {200, 1}, {17, 3000}, {3000, 15}, {4000, 3000}, {32, 32}, {33, 31}};
  for (int i = 0; i < 40; ++i) {
    auto [w, h] = i < static_cast<int>(fixed.size()) ? fixed[static_cast<size_t>(i)]
                                                     : std::pair<int, int>{1 + static_cast<int>(rng() % 2000), 1 + static_cast<int>(rng() % 2000)};
    if (std::max(w, h) > 200 * std::min(w, h)) continue;
    Image img;
    img.width = w;
    img.height = h;
    img.rgb.assign(static_cast<size_t>(w) * h * 3, static_cast<uint8_t>(i * 7));
    ProcessedInputs in = processor.process_prompt("What is this?", {img});
    ASSERT_EQ(in.image_grid_thw.size(), 1u);
    const auto [t, gh, gw] = in.image_grid_thw[0];
    EXPECT_EQ(t, 1);
    EXPECT_EQ(gh % 2, 0);
    EXPECT_EQ(gw % 2, 0);
    const int64_t tokens = gh * gw / 4;
    EXPECT_EQ(std::count(in.input_ids.begin(), in.input_ids.end(), pad), tokens) << w << "x" << h;
    EXPECT_GE(tokens * 1024, 65536) << w << "x" << h;   // min_pixels of the fixture (64 tokens)
    EXPECT_LE(tokens * 1024, *po.max_pixels) << w << "x" << h;
    if (i % 8 == 0) {
      Generator g(model, greedy(1));
      g.append_inputs(in);
      EXPECT_EQ(g.stats().images, 1);
    }
  }
  Image wide;
  wide.width = 201;
  wide.height = 1;
  wide.rgb.assign(201 * 3, 0);
  EXPECT_THROW(processor.process_prompt("x", {wide}), Error);  // aspect ratio above 200
}

TEST(QuantizedFile, GgufLoadsAndMatchesQuantizeAtLoad) {
  for (const char* type : {"q4_k", "q8_0", "bf16"}) {
    const std::string path = test::temp_dir() + "/tiny-" + type + ".gguf";
    QuantizeOptions q;
    q.type = type;
    quantize_checkpoint(test::tiny_model_dir(), path, q);
    ModelOptions o;
    o.threads = 2;
    auto from_file = Model::load(path, o);
    // The file holds the vision tower at q8_0 whenever the text weights are quantized.
    ModelOptions lo = o;
    lo.weights_type = std::string(type) == "bf16" ? "" : type;
    lo.vision_weights_type = std::string(type) == "bf16" ? "" : "q8_0";
    auto at_load = Model::load(test::tiny_model_dir(), lo);
    EXPECT_EQ(from_file->info().weights_type, at_load->info().weights_type);
    EXPECT_EQ(from_file->info().weight_bytes, at_load->info().weight_bytes);
    auto run = [&](const std::shared_ptr<Model>& model) {
      Processor processor(model);
      Generator g(model, greedy(6));
      g.append_inputs(processor.process_prompt("Describe.", {load_image_file(image_path("c2_450x250.png"))}));
      auto logits = g.last_logits();
      return std::make_pair(logits, generate(g));
    };
    auto [la, ta] = run(from_file);
    auto [lb, tb] = run(at_load);
    EXPECT_EQ(test::max_abs_diff(la, lb), 0.0f) << type;  // same bytes, same kernels
    EXPECT_EQ(ta, tb) << type;
  }
  // A GGUF without qvl's metadata is refused with a clear error.
  GgufWriter w;
  float x[32] = {};
  w.add_tensor("x", GgmlType::kF32, {32}, x, sizeof(x));
  const std::string bare = test::temp_dir() + "/bare.gguf";
  w.write(bare);
  test::expect_error([&] { Model::load(bare); }, ErrorKind::kInvalidFile, {"qvl.config_json"});
}

}  // namespace
}  // namespace qvl
