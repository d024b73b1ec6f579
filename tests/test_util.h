// Helpers shared by the tests: paths to the bundled fixtures and raw float32 files.
#pragma once

#include <string>
#include <vector>

namespace qvl::test {

// tests/data (copied from ../shared/fixtures; see tests/data/README.md).
std::string data_dir();
std::string golden_dir();      // tests/data/golden
std::string tiny_model_dir();  // tests/data/tiny-qwen3-vl
std::string temp_dir();        // a fresh per-process scratch folder

std::vector<float> read_f32(const std::string& path);
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& bytes);

// max_i |a_i - b_i|; sizes must match.
float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b);
float max_abs(const std::vector<float>& a);

}  // namespace qvl::test
