// qvl synth: write a random-weight checkpoint with the exact shapes of a real model.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "formats/synthetic_checkpoint.h"

namespace qvl::cli {

Runner add_synth_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("synth", "Write a random-weight checkpoint with real shapes (for benchmarks)");
  struct Args {
    std::string preset = "qwen3-vl-4b", out, tokenizer_dir = "tests/data/tiny-qwen3-vl";
    uint64_t seed = 1;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--preset", a->preset, "qwen3-vl-2b, qwen3-vl-4b, qwen3-vl-8b or qwen3-vl-tiny");
  cmd->add_option("out_dir", a->out, "Output folder (Hugging Face layout)")->required();
  cmd->add_option("--tokenizer-from", a->tokenizer_dir, "Folder with tokenizer.json, tokenizer_config.json, chat_template.json");
  cmd->add_option("--seed", a->seed, "Random seed");
  return [a] {
    int last = -1;
    write_synthetic_checkpoint(a->preset, a->out, a->tokenizer_dir, a->seed, [&](uint64_t done, uint64_t total) {
      const int pct = static_cast<int>(100 * done / std::max<uint64_t>(1, total));
      if (pct != last) std::fprintf(stderr, "\rwriting %s: %3d%% of %.2f GB", a->preset.c_str(), pct, total / 1e9), last = pct;
    });
    std::fprintf(stderr, "\n");
    return 0;
  };
}

}  // namespace qvl::cli
