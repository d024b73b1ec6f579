// Runs every case of a fixture directory (manifest.json: model_dir, cases, tokenizer_cases)
// and writes what the golden format asks for, so a dump can be compared with the reference
// (tests do it in C++; ../shared/tools/check_golden.py does it in Python).
#pragma once

#include <ostream>
#include <string>

namespace qvl {

struct DumpOptions {
  int threads = 0;
  int64_t greedy_tokens = 16;
  // Golden references are fp32 throughout, so a dump keeps an exact fp32 KV cache by default
  // (ModelOptions::kv_cache_type values; "" = the library default, f16).
  std::string kv_cache_type = "f32";
  // ModelOptions::weights_type: "" runs the weights as stored (llama.cpp's quantized blocks on the
  // int8 kernels), "f32" decodes every weight to f32 (the strict reference path).
  std::string weights_type;
  // ModelOptions::vision_attention: golden references are fp32, so a dump runs the vision tower's
  // attention in f32 by default ("bf16": the fast mode, for the loose comparison).
  std::string vision_attention = "f32";
};

// Returns the number of cases that failed (each failure is logged and the run goes on).
int dump_fixture(const std::string& fixture_dir, const std::string& out_dir, const DumpOptions& options,
                 std::ostream& log);

}  // namespace qvl
