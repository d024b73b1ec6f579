// End to end against the golden fixtures: `qvl dump`'s library entry point runs every case
// (chat template → tokenizer → image preprocessing → vision encoder → decoder → greedy) and
// the dump is compared with the reference using the fixture checker's strict tolerances.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/golden_dump.h"
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

}  // namespace
}  // namespace qvl
