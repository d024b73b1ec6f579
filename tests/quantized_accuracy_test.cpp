// Accuracy of quantized text weights on the golden cases: KL divergence of the last-position
// distribution from the fp32 reference, top-1 agreement, and greedy agreement. The measured
// figures are printed (they go into the issue notes); the assertions are the bounds each
// format must keep.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "qvl/qvl.hpp"
#include "test_util.h"

namespace qvl {
namespace {

using nlohmann::json;

// KL(p_ref || p_q) over softmax of the logits, in nats.
double kl_divergence(const std::vector<float>& ref, const std::vector<float>& q) {
  auto log_softmax = [](const std::vector<float>& l) {
    const double mx = *std::max_element(l.begin(), l.end());
    double z = 0;
    for (float v : l) z += std::exp(v - mx);
    std::vector<double> out(l.size());
    for (size_t i = 0; i < l.size(); ++i) out[i] = l[i] - mx - std::log(z);
    return out;
  };
  const auto a = log_softmax(ref), b = log_softmax(q);
  double kl = 0;
  for (size_t i = 0; i < a.size(); ++i) kl += std::exp(a[i]) * (a[i] - b[i]);
  return kl;
}

struct Figures {
  double max_kl = 0, mean_kl = 0;
  int top1_agree = 0, cases = 0, greedy_same = 0, greedy_total = 0;
};

Figures measure(const std::string& format) {
  ModelOptions o;
  o.threads = 2;
  o.weights_type = format;
  o.head_weights_type = format;
  auto model = Model::load(test::tiny_model_dir(), o);
  Processor processor(model);
  Figures f;
  for (const char* name : {"a_text_only", "b_one_image", "c_two_images"}) {
    json g = json::parse(test::read_file(test::golden_dir() + "/" + name + ".json"));
    const auto ref = test::read_f32(test::golden_dir() + "/" + name + ".last_logits.f32.bin");
    GeneratorParams p;
    p.max_new_tokens = 16;
    p.stop_at_eos = false;
    Generator gen(model, p);
    gen.append_inputs(processor.process(g["messages"].dump(), {}, true, test::golden_dir()));
    const auto& logits = gen.last_logits();
    const double kl = kl_divergence(ref, logits);
    f.max_kl = std::max(f.max_kl, kl);
    f.mean_kl += kl / 3;
    f.top1_agree += std::max_element(ref.begin(), ref.end()) - ref.begin() ==
                    std::max_element(logits.begin(), logits.end()) - logits.begin();
    ++f.cases;
    const auto golden = g["greedy_tokens"].get<std::vector<int32_t>>();
    std::vector<int32_t> tokens;
    while (!gen.is_done()) {
      gen.generate_next_token();
      tokens.push_back(gen.next_token());
    }
    // Agreement up to the first divergence (after it, the contexts differ).
    size_t same = 0;
    while (same < tokens.size() && tokens[same] == golden[same]) ++same;
    f.greedy_same += static_cast<int>(same);
    f.greedy_total += static_cast<int>(golden.size());
  }
  std::printf("[accuracy] %-5s KL mean %.3e max %.3e | top-1 %d/%d | greedy prefix %d/%d\n", format.c_str(),
              f.mean_kl, f.max_kl, f.top1_agree, f.cases, f.greedy_same, f.greedy_total);
  return f;
}

// The tiny fixture (hidden 64, random weights) is far more sensitive to rounding than a real
// model: its logits are sums of only 64 products and its greedy margins are as small as 0.02.
// The bounds below are regression bounds set from measured figures (see the issue notes), not
// accuracy claims for real checkpoints.
TEST(QuantizedAccuracy, Q8_0KeepsTopTokenAndStaysClose) {
  Figures f = measure("q8_0");
  EXPECT_EQ(f.top1_agree, f.cases);
  EXPECT_LT(f.max_kl, 5e-2);   // measured 2.5e-2 (int8 activations); 2e-3 with fp32 activations
  EXPECT_GE(f.greedy_same, 12);  // measured 18 of 48 greedy tokens before the first divergence
}

TEST(QuantizedAccuracy, Q4_KIsMoreAccurateThanQ4_0) {
  Figures k = measure("q4_k");
  Figures z = measure("q4_0");
  EXPECT_LT(k.mean_kl, z.mean_kl);
  EXPECT_LT(k.max_kl, 2.0);  // measured 1.13
}

}  // namespace
}  // namespace qvl
