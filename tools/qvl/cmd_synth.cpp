// qvl synth: write a random-weight checkpoint with the exact shapes of a real model.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "commands.h"
#include "options.h"
#include "progress.h"
#include "devtools/synthetic_checkpoint.h"
#include "devtools/synthetic_llama_gguf.h"
#include "qvl/error.hpp"

namespace qvl::cli {

namespace {

// The bundled tiny model's tokenizer (the real Qwen3 one): the source tree the binary was built
// from, else share/qvl beside an installed binary. Independent of the current directory.
std::string bundled_tokenizer_dir() {
  namespace fs = std::filesystem;
  std::vector<fs::path> candidates = {QVL_BUNDLED_TOKENIZER_DIR};
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(exe.parent_path().parent_path() / "share/qvl/tiny-qwen3-vl");
  for (const auto& dir : candidates)
    if (fs::is_regular_file(dir / "tokenizer.json", ec)) return dir.string();
  throw Error(ErrorKind::kNotFound, "the bundled tokenizer was not found (looked in '" + candidates.front().string() +
                                        "'); give a folder with tokenizer.json via --tokenizer-from");
}

}  // namespace

Runner add_synth_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("synth", "Write a random-weight checkpoint with real shapes (for benchmarks)");
  struct Args {
    std::string preset, out, tokenizer_dir, llama_gguf, llama_mmproj;
    uint64_t seed = 1;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  std::string presets;
  for (const auto& p : synthetic_presets()) presets += (presets.empty() ? "" : ", ") + p;
  cmd->add_option("--preset", a->preset,
                  "Required: " + presets + " (bf16 sizes: 2b 4.3 GB, 4b 8.9 GB, 8b 17.5 GB, tiny a few MB)")
      ->required()
      ->check(CLI::IsMember(synthetic_presets()));
  cmd->add_option("out_dir", a->out,
                  "Output folder (Hugging Face layout; must be absent or empty), or with --llama-gguf the file")
      ->required();
  cmd->add_option("--llama-gguf", a->llama_gguf,
                  "Write instead the text model as a llama.cpp GGUF with this type mix (Q4_K_M, Q8_0 or Q4_0; "
                  "random values quantized as llama-quantize does), which qvl and llama.cpp both run")
      ->check(CLI::IsMember(synthetic_llama_gguf_types()));
  cmd->add_option("--llama-mmproj", a->llama_mmproj,
                  "Write instead the vision projector as a llama.cpp mmproj GGUF of this type (F16 or Q8_0; "
                  "random values), the --mmproj of a --llama-gguf file")
      ->check(CLI::IsMember(synthetic_llama_mmproj_types()))
      ->excludes("--llama-gguf");
  add_threads_option(*cmd, a->threads);
  cmd->add_option("--tokenizer-from", a->tokenizer_dir,
                  "Folder with tokenizer.json, tokenizer_config.json, chat_template.json (default: the bundled "
                  "tiny model's, i.e. the real Qwen3 tokenizer)");
  cmd->add_option("--seed", a->seed, "Random seed of the weights (default: 1)");
  return [a] {
    const std::string tokenizer_dir = a->tokenizer_dir.empty() ? bundled_tokenizer_dir() : a->tokenizer_dir;
    if (!a->llama_gguf.empty() || !a->llama_mmproj.empty()) {
      const bool text = !a->llama_gguf.empty();
      const std::string what = text ? "llama.cpp " + a->llama_gguf : "llama.cpp mmproj " + a->llama_mmproj;
      {
        ProgressPrinter progress;
        const std::string label = "writing " + a->preset + " " + what;
        auto report = [&](uint64_t done, uint64_t total) {
          progress.update(label, static_cast<int64_t>(done), static_cast<int64_t>(total));
        };
        if (text) {
          write_synthetic_llama_gguf(a->preset, a->llama_gguf, a->out, tokenizer_dir, a->seed, a->threads, report);
        } else {
          write_synthetic_llama_mmproj(a->preset, a->llama_mmproj, a->out, a->seed, a->threads, report);
        }
      }
      std::fprintf(stderr, "wrote %s (%s, %s)\n", a->out.c_str(), a->preset.c_str(), what.c_str());
      return 0;
    }
    {
      ProgressPrinter progress;  // its line ends before the summary, or before an error
      const std::string label = "writing " + a->preset;
      write_synthetic_checkpoint(a->preset, a->out, tokenizer_dir, a->seed, [&](uint64_t done, uint64_t total) {
        progress.update(label, static_cast<int64_t>(done), static_cast<int64_t>(total));
      });
    }
    std::fprintf(stderr, "wrote %s (%s)\n", a->out.c_str(), a->preset.c_str());
    return 0;
  };
}

}  // namespace qvl::cli
