#include "options.h"

namespace qvl::cli {

void add_model_options(CLI::App& cmd, ModelOptions& options, bool with_context) {
  cmd.add_option("--quant", options.weights_type, "Quantize the text weights at load: q4_k, q4_0 or q8_0")
      ->check(CLI::IsMember({"q4_k", "q4_0", "q8_0", "bf16"}));
  cmd.add_option("--vision-quant", options.vision_weights_type,
                 "Quantize the vision tower at load: q8_0 (default: as stored)")
      ->check(CLI::IsMember({"q8_0", "q4_k", "q4_0", "bf16"}));
  cmd.add_option("--kv-type", options.kv_cache_type, "KV cache element type: f16 (default), f32 or q8_0")
      ->check(CLI::IsMember({"f16", "f32", "q8_0"}));
  cmd.add_option("-t,--threads", options.threads, "Threads (default: all cores)")->check(CLI::NonNegativeNumber);
  if (with_context)
    cmd.add_option("-c,--ctx-size", options.context_length,
                   "Context length in tokens (default: model max, up to 32768)");
}

void SamplingOptions::apply(GeneratorParams& params) const {
  if (temp) {
    params.do_sample = *temp > 0.0f;
    params.temperature = params.do_sample ? *temp : 1.0f;
  }
  if (top_k) params.top_k = *top_k;
  if (top_p) params.top_p = *top_p;
  if (min_p) params.min_p = *min_p;
  if (repeat_penalty) params.repetition_penalty = *repeat_penalty;
  if (presence_penalty) params.presence_penalty = *presence_penalty;
  if (frequency_penalty) params.frequency_penalty = *frequency_penalty;
  if (seed) params.seed = *seed;
}

void add_sampling_options(CLI::App& cmd, SamplingOptions& options) {
  cmd.add_option("--temp", options.temp, "Sampling temperature (0 = greedy; default: generation_config.json)");
  cmd.add_option("--top-k", options.top_k, "Top-k cut-off (0 = off)");
  cmd.add_option("--top-p", options.top_p, "Nucleus sampling mass");
  cmd.add_option("--min-p", options.min_p, "Min-p cut-off relative to the top token");
  cmd.add_option("--repeat-penalty", options.repeat_penalty, "Repetition penalty (1 = off)");
  cmd.add_option("--presence-penalty", options.presence_penalty, "Presence penalty");
  cmd.add_option("--frequency-penalty", options.frequency_penalty, "Frequency penalty");
  cmd.add_option("--seed", options.seed, "Random seed for sampling");
}

}  // namespace qvl::cli
