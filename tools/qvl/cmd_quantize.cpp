// qvl quantize IN_DIR OUT.gguf --type q4_k: one memory-mappable file with quantized weights.
#include <chrono>
#include <cstdio>
#include <memory>

#include "commands.h"
#include "progress.h"
#include "options.h"
#include "devtools/quantize_checkpoint.h"

namespace qvl::cli {

Runner add_quantize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("quantize", "Convert a checkpoint folder into one quantized GGUF file");
  struct Args {
    std::string in, out;
    QuantizeOptions options;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("in_dir", a->in, "Hugging Face checkpoint folder")->required();
  cmd->add_option("out_file", a->out, "Output .gguf file")->required();
  cmd->add_option("--type", a->options.type, "Text weights: q4_k (default), q4_0, q8_0 or bf16")
      ->check(CLI::IsMember({"q4_k", "q4_0", "q8_0", "bf16"}));
  cmd->add_option("--head-type", a->options.head_type, "embed_tokens/lm_head: q8_0 (default), q6_k (ggml's Q6_K, as llama.cpp's Q4_K_M stores the head), q4_k, q4_0 or bf16")
      ->check(CLI::IsMember({"q4_k", "q4_0", "q8_0", "q6_k", "bf16"}));
  cmd->add_option("--vision-type", a->options.vision_type,
                  "Vision tower matrices: q8_0 (default when --type quantizes), bf16 (as stored), q4_k or q4_0")
      ->check(CLI::IsMember({"q4_k", "q4_0", "q8_0", "bf16"}));
  add_threads_option(*cmd, a->options.threads);
  return [a] {
    const auto t0 = std::chrono::steady_clock::now();
    {
      ProgressPrinter progress;  // its line ends before the summary, or before an error
      char label[64];
      quantize_checkpoint(a->in, a->out, a->options, [&](uint64_t done, uint64_t total) {
        std::snprintf(label, sizeof label, "quantizing %.2f GB", total / 1e9);
        progress.update(label, static_cast<int64_t>(done), static_cast<int64_t>(total));
      });
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "wrote %s in %.1f s\n", a->out.c_str(), s);
    return 0;
  };
}

}  // namespace qvl::cli
