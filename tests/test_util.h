// Helpers shared by the tests: paths to the bundled fixtures, raw float32 files and checks of
// the qvl::Error a call throws.
#pragma once

#include <functional>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "qvl/error.hpp"
#include "qvl/qvl.hpp"

namespace qvl::test {

// tests/data (copied from ../shared/fixtures; see tests/data/README.md).
std::string data_dir();
std::string golden_dir();      // tests/data/golden
std::string tiny_model_dir();  // tests/data/tiny-qwen3-vl
std::string temp_dir();        // a fresh per-process scratch folder

// The tiny model with 2 threads and an fp32 KV cache by default: several tests compare runs that
// evaluate the same tokens in different chunks at fp32-rounding tolerances, which f16 rounding of
// K/V would exceed.
std::shared_ptr<Model> tiny_model(int64_t context = 4096, const std::string& weights = "",
                                  const std::string& kv = "f32");
GeneratorParams greedy(int64_t max_new_tokens);  // greedy, no EOS stop
std::vector<int32_t> generate(Generator& g);       // every token until it is done

std::vector<float> read_f32(const std::string& path);
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& bytes);

// A copy of the bundled tiny model in temp_dir()/name (the folder is returned) whose weights
// `edit` may change in place first: weight(tensor) gives the elements of a BF16 tensor of its
// model.safetensors (a missing or non-BF16 tensor throws).
using Bf16Weights = std::function<std::span<uint16_t>(const std::string& tensor)>;
std::string altered_tiny_model(const std::string& name, const std::function<void(const Bf16Weights& weight)>& edit);

// max_i |a_i - b_i|; sizes must match.
float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b);
float max_abs(const std::vector<float>& a);

// Runs `fn`, which must throw a qvl::Error, and returns that error. Returning normally or throwing
// anything else is a test failure (then the result is an Error of kind kInternal). `context`
// starts the failure messages.
Error error_of(const std::function<void()>& fn, const std::string& context = "");

// Expects `fn` to throw a qvl::Error of `kind` whose message says something (more than 10
// characters) and contains every fragment; returns the message ("" when no qvl::Error came).
std::string expect_error(const std::function<void()>& fn, ErrorKind kind,
                         std::initializer_list<std::string> fragments = {}, const std::string& context = "");

// Logit statistics for accuracy tests.
size_t argmax(const std::vector<float>& logits);
double top_margin(const std::vector<float>& logits);  // top-1 minus top-2 logit
// KL(softmax(ref) || softmax(got)) in nats.
double kl_divergence(const std::vector<float>& ref, const std::vector<float>& got);

}  // namespace qvl::test
