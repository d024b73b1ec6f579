// Flags shared by the subcommands: how a model is loaded (run, chat, bench) and how tokens are
// sampled (run, chat). A new model option is one add_option line in add_model_options, bound to
// its ModelOptions field, and every command that loads a model gets it.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>

#include "qvl/qvl.hpp"

namespace qvl::cli {

// --quant, --vision-quant, --kv-type, -t/--threads and (unless with_context is false) -c/--ctx-size, written
// straight into `options`, which must outlive parsing.
void add_model_options(CLI::App& cmd, ModelOptions& options, bool with_context = true);

// Sampling overrides; a flag not given keeps the checkpoint's generation_config.json value.
struct SamplingOptions {
  std::optional<float> temp, top_p, min_p, repeat_penalty, presence_penalty, frequency_penalty;
  std::optional<int64_t> top_k;
  std::optional<uint64_t> seed;

  // Writes the given flags into `params`; --temp 0 means greedy (as in llama.cpp).
  void apply(GeneratorParams& params) const;
};

// --temp, --top-k, --top-p, --min-p, --repeat-penalty, --presence-penalty, --frequency-penalty
// and --seed, written into `options`, which must outlive parsing.
void add_sampling_options(CLI::App& cmd, SamplingOptions& options);

}  // namespace qvl::cli
