// Helpers shared by the libFuzzer targets: where the bundled test data lives, reading a file.
#pragma once

#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace qvl::fuzz {

// tests/data of the source tree: $QVL_TEST_DATA_DIR if set, else found from the executable
// (build-fuzz/fuzz/<target> -> ../../tests/data), else the source dir the build was configured from.
inline std::string test_data_dir() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("QVL_TEST_DATA_DIR"); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (fs::path dir = exe.parent_path(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
      const fs::path candidate = dir / "tests" / "data" / "tiny-qwen3-vl";
      if (fs::exists(candidate / "tokenizer.json", ec)) return (dir / "tests" / "data").string();
    }
  }
#ifdef QVL_SOURCE_DIR
  return std::string(QVL_SOURCE_DIR) + "/tests/data";
#else
  return "tests/data";
#endif
}

inline std::string read_file_or_die(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "fuzz: cannot read '%s' (set QVL_TEST_DATA_DIR to the repository's tests/data)\n",
                 path.c_str());
    std::abort();
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace qvl::fuzz
