// End to end against the golden fixtures: `qvl dump`'s library entry point runs every case
// (chat template → tokenizer → image preprocessing → vision encoder → decoder → greedy) and
// the dump is compared with the reference using the fixture checker's strict tolerances (with
// an exact fp32 KV cache), then the f16 and q8_0 KV caches are measured against fp32.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "devtools/synthetic_checkpoint.h"
#include "qvl/qvl.hpp"
#include "devtools/golden_dump.h"
#include "kernels/kernels.h"
#include "test_util.h"

namespace qvl {
namespace {

using nlohmann::json;

const std::string& dump_dir() {
  static std::string dir = [] {
    std::string out = test::temp_dir() + "/golden_dump";
    std::ostringstream log;
    DumpOptions options;
    options.threads = 2;
    int failures = dump_fixture(test::golden_dir(), out, options, log);
    EXPECT_EQ(failures, 0) << log.str();
    return out;
  }();
  return dir;
}

json load(const std::string& dir, const std::string& file) { return json::parse(test::read_file(dir + "/" + file)); }

// max |a-b| / max |ref|
double rel_error(const std::vector<float>& got, const std::vector<float>& ref) {
  return test::max_abs_diff(got, ref) / std::max(1e-30f, test::max_abs(ref));
}

class GoldenCase : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenCase, MatchesReference) {
  const std::string name = GetParam();
  json g = load(test::golden_dir(), name + ".json");
  json e = load(dump_dir(), name + ".json");
  EXPECT_EQ(e["prompt_text"], g["prompt_text"]);
  EXPECT_EQ(e["input_ids"], g["input_ids"]);
  EXPECT_EQ(e["image_grid_thw"], g["image_grid_thw"]);
  EXPECT_EQ(e["position_ids"], g["position_ids"]);
  EXPECT_EQ(e["rope_deltas"], g["rope_deltas"]);
  const double norm_ref = g["final_hidden_norm_last"].get<double>();
  EXPECT_NEAR(e["final_hidden_norm_last"].get<double>(), norm_ref, 1e-3 * norm_ref);

  auto bin = [&](const std::string& dir, const std::string& file) { return test::read_f32(dir + "/" + file); };
  const auto logits = bin(dump_dir(), name + ".last_logits.f32.bin");
  const auto logits_ref = bin(test::golden_dir(), name + ".last_logits.f32.bin");
  EXPECT_LE(rel_error(logits, logits_ref), 2e-4);
  EXPECT_LE(test::max_abs_diff(logits, logits_ref), 1e-4) << "issue #2 asks for 1e-4 max abs";
  EXPECT_EQ(std::max_element(logits.begin(), logits.end()) - logits.begin(),
            std::max_element(logits_ref.begin(), logits_ref.end()) - logits_ref.begin());

  if (!g["image_grid_thw"].empty()) {
    const auto pv = bin(dump_dir(), name + ".pixel_values.f32.bin");
    const auto pv_ref = bin(test::golden_dir(), name + ".pixel_values.f32.bin");
    ASSERT_EQ(pv.size(), pv_ref.size());
    EXPECT_LE(test::max_abs_diff(pv, pv_ref), 1e-5);
    EXPECT_LE(rel_error(bin(dump_dir(), name + ".vision_embeds.f32.bin"),
                        bin(test::golden_dir(), name + ".vision_embeds.f32.bin")), 5e-5);
    ASSERT_EQ(e["deepstack_embeds"].size(), g["deepstack_embeds"].size());
    for (const auto& desc : g["deepstack_embeds"]) {
      const std::string f = desc["file"].get<std::string>();
      EXPECT_LE(rel_error(bin(dump_dir(), f), bin(test::golden_dir(), f)), 5e-5) << f;
    }
  }
  EXPECT_EQ(e["greedy_tokens"], g["greedy_tokens"]);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenCase, ::testing::Values("a_text_only", "b_one_image", "c_two_images"));

TEST(GoldenDump, TokenizerCases) {
  json g = load(test::golden_dir(), "tokenizer_cases.json");
  json e = load(dump_dir(), "tokenizer_cases.json");
  ASSERT_EQ(e["cases"].size(), g["cases"].size());
  for (size_t i = 0; i < g["cases"].size(); ++i) {
    EXPECT_EQ(e["cases"][i]["ids"], g["cases"][i]["ids"]) << g["cases"][i]["text"];
    EXPECT_EQ(e["cases"][i]["decode"], g["cases"][i]["decode"]) << g["cases"][i]["text"];
  }
}

// ---- KV cache precision ---------------------------------------------------------------------------

std::shared_ptr<Model> load_with_kv(const std::string& dir, const std::string& kv_type) {
  ModelOptions o;
  o.threads = 2;
  o.context_length = 4096;
  o.kv_cache_type = kv_type;
  o.vision_attention = "f32";  // the KV cache's precision alone (bf16 vision attention has its own tests)
  return Model::load(dir, o);
}

struct KvFigures {
  double max_abs_logit_err = 0, max_kl = 0;
  int top1_agree = 0, cases = 0;
  int greedy_same = 0, greedy_total = 0;   // free-running: reference tokens before the first divergence
  int forced_agree = 0, forced_total = 0;  // teacher-forced steps whose argmax is the reference token
  double max_missed_margin = 0;            // largest reference top-1 margin at a teacher-forced miss
  double min_ref_margin = 1e30;            // smallest reference margin over the forced steps,
  double err_at_min_margin = 0;            //   the max |logit error| at that step
  double margin_at_min_margin = 0;         //   and the top-1 margin there with this KV cache
};

// Runs `messages` through `model` and compares with reference last logits and greedy tokens;
// teacher-forced steps compare with `reference` (a model with an fp32 KV cache) on the same context.
void measure_case(const std::shared_ptr<Model>& model, const std::shared_ptr<Model>& reference,
                  const std::string& messages, const std::vector<float>& ref_logits,
                  const std::vector<int32_t>& ref_tokens, KvFigures& f) {
  GeneratorParams p;
  p.max_new_tokens = static_cast<int64_t>(ref_tokens.size());
  p.stop_at_eos = false;
  Generator gen(model, p);
  gen.append_inputs(Processor(model).process(messages, {}, true, test::golden_dir()));
  const std::vector<float>& logits = gen.last_logits();
  f.max_abs_logit_err = std::max<double>(f.max_abs_logit_err, test::max_abs_diff(logits, ref_logits));
  f.max_kl = std::max(f.max_kl, test::kl_divergence(ref_logits, logits));
  f.top1_agree += test::argmax(logits) == test::argmax(ref_logits);
  ++f.cases;
  std::vector<int32_t> tokens;
  while (!gen.is_done()) {
    gen.generate_next_token();
    tokens.push_back(gen.next_token());
  }
  size_t same = 0;
  while (same < tokens.size() && tokens[same] == ref_tokens[same]) ++same;
  f.greedy_same += static_cast<int>(same);
  f.greedy_total += static_cast<int>(ref_tokens.size());

  Generator forced(model, p), ref(reference, p);
  forced.append_inputs(Processor(model).process(messages, {}, true, test::golden_dir()));
  ref.append_inputs(Processor(reference).process(messages, {}, true, test::golden_dir()));
  for (int32_t token : ref_tokens) {
    const double margin = test::top_margin(ref.last_logits());
    if (margin < f.min_ref_margin) {
      f.min_ref_margin = margin;
      f.err_at_min_margin = test::max_abs_diff(forced.last_logits(), ref.last_logits());
      f.margin_at_min_margin = test::top_margin(forced.last_logits());
    }
    ++f.forced_total;
    if (test::argmax(forced.last_logits()) == static_cast<size_t>(token)) ++f.forced_agree;
    else f.max_missed_margin = std::max(f.max_missed_margin, margin);
    forced.append_tokens({token});
    ref.append_tokens({token});
  }
}

void print(const char* what, const KvFigures& f) {
  std::printf(
      "[kv] %-26s logits max|err| %.3e  KL max %.3e | top-1 %d/%d | greedy prefix %d/%d | teacher-forced %d/%d "
      "(largest fp32 margin missed %.2e; smallest fp32 margin %.2e, logit err there %.2e, margin there %.2e)\n",
      what, f.max_abs_logit_err, f.max_kl, f.top1_agree, f.cases, f.greedy_same, f.greedy_total, f.forced_agree,
      f.forced_total, f.max_missed_margin, f.min_ref_margin, f.err_at_min_margin, f.margin_at_min_margin);
}

KvFigures measure_golden(const std::string& kv_type) {
  auto model = load_with_kv(test::tiny_model_dir(), kv_type), reference = load_with_kv(test::tiny_model_dir(), "f32");
  KvFigures f;
  for (const char* name : {"a_text_only", "b_one_image", "c_two_images"}) {
    json g = load(test::golden_dir(), std::string(name) + ".json");
    measure_case(model, reference, g["messages"].dump(),
                 test::read_f32(test::golden_dir() + "/" + name + ".last_logits.f32.bin"),
                 g["greedy_tokens"].get<std::vector<int32_t>>(), f);
  }
  print(("golden fixture, " + kv_type).c_str(), f);
  return f;
}

// The default f16 KV cache on the golden cases. K/V rounded to 11 significant bits (relative
// 2^-11 = 4.9e-4) become absolute attention-score errors of ~1e-2 in this fixture (its k_norm
// weights make scores of order 20, nearly hard attention), and the last logits move by up to
// 2.8e-2 (logit spread 2.4). The closest golden step has an fp32 margin of 0.016 with a max
// logit error of 0.019 there: the two top logits move together (the f16 margin there is 0.015),
// so all 48 greedy tokens match, but that is measured, not guaranteed by the error size. The
// bounds below are regression bounds set from the measured figures (the [kv] line).
TEST(KvCachePrecision, F16KeepsGoldenTokens) {
  const KvFigures f = measure_golden("f16");
  EXPECT_LT(f.max_abs_logit_err, 5e-2);  // measured 2.8e-2
  EXPECT_LT(f.max_kl, 1e-4);             // measured 1.4e-5
  EXPECT_EQ(f.top1_agree, f.cases);
  EXPECT_EQ(f.greedy_same, f.greedy_total);
  EXPECT_EQ(f.forced_agree, f.forced_total);
}

// The vision attention switch: what was asked is what runs, the default is bf16 exactly where the
// CPU multiplies bf16 natively, and a typo fails before the weights load.
TEST(VisionAttention, OptionIsHonouredAndReported) {
  ModelOptions o;
  o.threads = 2;
  o.context_length = 256;
  o.vision_attention = "f32";
  EXPECT_EQ(Model::load(test::tiny_model_dir(), o)->info().vision_attention, "f32");
  o.vision_attention = "bf16";
  EXPECT_EQ(Model::load(test::tiny_model_dir(), o)->info().vision_attention, "bf16");
  o.vision_attention = "";
  EXPECT_EQ(Model::load(test::tiny_model_dir(), o)->info().vision_attention,
            kernels::attention_bf16_preferred() ? "bf16" : "f32");
  o.vision_attention = "fp8";
  test::expect_error([&] { Model::load(test::tiny_model_dir(), o); }, ErrorKind::kInvalidArgument, {"fp8"});
}

// The fixture's head_dim (16) holds no whole q8_0 block: asking for q8_0 gives f16, said in info.
TEST(KvCachePrecision, Q8OnTheFixtureFallsBackToF16) {
  auto model = load_with_kv(test::tiny_model_dir(), "q8_0");
  EXPECT_EQ(model->info().kv_cache_type, "f16");
  auto f32 = load_with_kv(test::tiny_model_dir(), "f32");
  EXPECT_EQ(f32->info().kv_cache_type, "f32");
  EXPECT_EQ(f32->info().kv_bytes_per_token, 2 * model->info().kv_bytes_per_token);
  EXPECT_EQ(load_with_kv(test::tiny_model_dir(), "")->info().kv_cache_type, "f16");
}

// q8_0 where it applies: the synthetic tiny preset has head_dim 128. No golden logits exist for
// it, so the fp32-KV run of the same model is the reference. Its random weights give flat
// logits (greedy margins 3e-4 .. 0.11), so a q8_0 miss at a near-tie is expected; what must hold
// is that misses happen only there. Bounds are regression bounds from the measured figures.
TEST(KvCachePrecision, Q8AndF16OnHeadDim128AgainstFp32Kv) {
  const std::string dir = test::temp_dir() + "/synth-tiny-kv";
  write_synthetic_checkpoint("qwen3-vl-tiny", dir, test::tiny_model_dir(), 5);
  auto reference = load_with_kv(dir, "f32");
  const std::string messages =
      R"([{"role": "user", "content": [{"type": "image", "image": "images/c1_256x192.png"},)"
      R"( {"type": "text", "text": "Describe this picture in detail, then write a short poem about it."}]}])";
  // Reference logits and greedy tokens from the fp32 KV cache.
  GeneratorParams p;
  p.max_new_tokens = 16;
  p.stop_at_eos = false;
  Generator g(reference, p);
  g.append_inputs(Processor(reference).process(messages, {}, true, test::golden_dir()));
  const std::vector<float> ref_logits = g.last_logits();
  std::vector<int32_t> ref_tokens;
  while (!g.is_done()) {
    g.generate_next_token();
    ref_tokens.push_back(g.next_token());
  }
  for (const std::string type : {"f16", "q8_0"}) {
    auto model = load_with_kv(dir, type);
    ASSERT_EQ(model->info().kv_cache_type, type);
    KvFigures f;
    measure_case(model, reference, messages, ref_logits, ref_tokens, f);
    print(("synthetic head_dim 128, " + type).c_str(), f);
    EXPECT_EQ(f.top1_agree, f.cases) << type;
    if (type == "f16") {
      EXPECT_LT(f.max_abs_logit_err, 2e-3);  // measured 2.4e-4
      EXPECT_LT(f.max_kl, 1e-7);             // measured 1.2e-9
      EXPECT_EQ(f.forced_agree, f.forced_total);
      EXPECT_EQ(f.greedy_same, f.greedy_total);
    } else {
      EXPECT_LT(f.max_abs_logit_err, 3e-2);        // measured 5.7e-3
      EXPECT_LT(f.max_kl, 1e-5);                   // measured 7.6e-7
      EXPECT_GE(f.forced_agree, f.forced_total - 2);  // measured 15 of 16
      EXPECT_LT(f.max_missed_margin, 1e-2);        // measured: the one miss is at an fp32 margin of 3.3e-4
    }
  }
}

}  // namespace
}  // namespace qvl
