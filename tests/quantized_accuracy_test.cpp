// Accuracy of quantized text weights on the golden cases: KL divergence of the last-position
// distribution from the fp32 reference, top-1 agreement, and greedy agreement. The measured
// figures are printed (they go into the issue notes); the assertions are the bounds each
// format must keep.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "qvl/qvl.hpp"
#include "test_util.h"

namespace qvl {
namespace {

using nlohmann::json;

struct Figures {
  double max_kl = 0, mean_kl = 0;
  int top1_agree = 0, cases = 0;
  int greedy_same = 0, greedy_total = 0;  // free-running: golden tokens before the first divergence
  int forced_agree = 0, forced_total = 0; // teacher-forced: steps whose argmax is the golden token
  double max_missed_margin = 0;           // largest fp32 top-1 margin at a teacher-forced miss
  double mean_rms_err = 0;                // rms over the vocabulary of (quantized - fp32) logits
  int robust_misses = 0;                  // misses where the fp32 margin exceeded 4 x that step's rms error
};

double rms_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(s / double(a.size()));
}

std::shared_ptr<Model> fp32_model() {
  static std::shared_ptr<Model> model = [] {
    ModelOptions o;
    o.threads = 2;
    o.kv_cache_type = "f32";
    return Model::load(test::tiny_model_dir(), o);
  }();
  return model;
}

Figures measure(const std::string& format, const std::string& head_format = "") {
  ModelOptions o;
  o.threads = 2;
  o.weights_type = format;
  o.head_weights_type = head_format.empty() ? format : head_format;
  o.kv_cache_type = "f32";  // weight rounding alone (the f16 cache is measured in pipeline_test)
  auto model = Model::load(test::tiny_model_dir(), o);
  Processor processor(model), fp32_processor(fp32_model());
  Figures f;
  for (const char* name : {"a_text_only", "b_one_image", "c_two_images"}) {
    json g = json::parse(test::read_file(test::golden_dir() + "/" + name + ".json"));
    const auto ref = test::read_f32(test::golden_dir() + "/" + name + ".last_logits.f32.bin");
    const auto golden = g["greedy_tokens"].get<std::vector<int32_t>>();
    const std::string messages = g["messages"].dump();
    GeneratorParams p;
    p.max_new_tokens = static_cast<int>(golden.size());
    p.stop_at_eos = false;

    Generator gen(model, p);
    gen.append_inputs(processor.process(messages, {}, true, test::golden_dir()));
    const auto& logits = gen.last_logits();
    const double kl = test::kl_divergence(ref, logits);
    f.max_kl = std::max(f.max_kl, kl);
    f.mean_kl += kl / 3;
    f.top1_agree += test::argmax(ref) == test::argmax(logits);
    ++f.cases;

    // Teacher forcing: both models read the golden tokens, so every step is judged on the same
    // context and one early miss does not hide the agreement of the later steps.
    Generator forced(model, p), reference(fp32_model(), p);
    forced.append_inputs(processor.process(messages, {}, true, test::golden_dir()));
    reference.append_inputs(fp32_processor.process(messages, {}, true, test::golden_dir()));
    for (int32_t token : golden) {
      const auto& q = forced.last_logits();
      const auto& r = reference.last_logits();
      const double margin = test::top_margin(r), err = rms_diff(q, r);
      EXPECT_EQ(test::argmax(r), static_cast<size_t>(token));  // the fp32 path itself follows the golden tokens
      ++f.forced_total;
      f.mean_rms_err += err;
      if (test::argmax(q) == static_cast<size_t>(token)) {
        ++f.forced_agree;
      } else {
        f.max_missed_margin = std::max(f.max_missed_margin, margin);
        f.robust_misses += margin > 4 * err;
      }
      forced.append_tokens({token});
      reference.append_tokens({token});
    }

    std::vector<int32_t> tokens;
    while (!gen.is_done()) {
      gen.generate_next_token();
      tokens.push_back(gen.next_token());
    }
    size_t same = 0;
    while (same < tokens.size() && tokens[same] == golden[same]) ++same;
    f.greedy_same += static_cast<int>(same);
    f.greedy_total += static_cast<int>(golden.size());
  }
  f.mean_rms_err /= f.forced_total;
  std::printf(
      "[accuracy] %-10s KL mean %.3e max %.3e | top-1 %d/%d | teacher-forced %d/%d (largest fp32 margin missed %.3f, "
      "logit rms err %.3f) | greedy prefix %d/%d\n",
      (format + (head_format.empty() ? "" : "+" + head_format)).c_str(), f.mean_kl, f.max_kl, f.top1_agree, f.cases, f.forced_agree, f.forced_total,
      f.max_missed_margin, f.mean_rms_err, f.greedy_same, f.greedy_total);
  return f;
}

// The tiny fixture (hidden 64, random weights) is far more sensitive to rounding than a real
// model: its q_norm/k_norm weights (~2.2) make attention logits of order 20, so attention is
// nearly hard and 0.4 % weight rounding grows to ~5 % logit error (rms ~0.13 against a logit
// spread of 2.4), while golden greedy margins go down to 0.016. No 8-bit weight format can keep
// every golden token there; what must hold is that the quantized model only disagrees where the
// fp32 model itself is nearly tied. The count bounds are regression bounds set from measured
// figures (see the issue notes), not accuracy claims for real checkpoints.
TEST(QuantizedAccuracy, Q8_0KeepsTopTokenAndStaysClose) {
  Figures f = measure("q8_0");
  EXPECT_EQ(f.top1_agree, f.cases);
  EXPECT_LT(f.max_kl, 5e-2);                 // measured 2.5e-2
  EXPECT_EQ(f.robust_misses, 0);             // every miss is at a near-tie of the fp32 model
  EXPECT_LT(f.max_missed_margin, 0.5);       // measured 0.25 (fp32 logit spread 2.4)
  EXPECT_GE(f.forced_agree, f.forced_total - 6);  // measured 43 of 48
  EXPECT_GE(f.greedy_same, 12);              // measured 18 of 48 before the first divergence
}

TEST(QuantizedAccuracy, Q4_KIsMoreAccurateThanQ4_0) {
  Figures k = measure("q4_k");
  Figures z = measure("q4_0");
  EXPECT_LT(k.mean_kl, z.mean_kl);
  EXPECT_LT(k.mean_rms_err, z.mean_rms_err);
  EXPECT_GE(k.forced_agree, z.forced_agree);
  EXPECT_LT(k.max_kl, 2.0);  // measured 1.13
}

// The head (embed_tokens, tied lm_head here) alone at 6 and 4 bits beside q8_0 layers: 6 bits
// (ggml's Q6_K, what llama.cpp's Q4_K_M files use) adds a fraction of the q4_k head's error.
TEST(QuantizedAccuracy, Q6_KHeadSitsBetweenQ8_0AndQ4_K) {
  Figures h8 = measure("q8_0", "q8_0");
  Figures h6 = measure("q8_0", "q6_k");
  Figures h4 = measure("q8_0", "q4_k");
  EXPECT_LT(h8.mean_rms_err, h6.mean_rms_err);     // measured 0.158 < 0.286 < 0.838
  EXPECT_LT(2 * h6.mean_rms_err, h4.mean_rms_err);
  EXPECT_LT(h6.mean_kl, 5e-2);                      // measured 2.7e-2 (q8_0 head 1.5e-2, q4_k 1.1e-1)
  EXPECT_EQ(h6.top1_agree, h6.cases);
  EXPECT_EQ(h6.robust_misses, 0);
  EXPECT_GE(h6.forced_agree, h6.forced_total - 12);  // measured 38 of 48 (q8_0 head 42, q4_k 16)
}

}  // namespace
}  // namespace qvl
