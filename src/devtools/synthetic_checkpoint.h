// Random-weight checkpoints with the exact shapes of real Qwen3-VL models, written in the
// Hugging Face layout. Speed does not depend on weight values, so these let qvl be
// benchmarked at real sizes without the real weights.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace qvl {

// Names accepted by write_synthetic_checkpoint ("qwen3-vl-2b", "qwen3-vl-4b", "qwen3-vl-8b", "qwen3-vl-tiny").
std::vector<std::string> synthetic_presets();

// The config.json text of a preset (throws kInvalidArgument for an unknown name).
std::string synthetic_config_json(const std::string& preset);

// Writes config.json, generation_config.json, preprocessor_config.json, model.safetensors
// (bf16, random values of a realistic scale) into out_dir, and copies the tokenizer and chat
// template files from tokenizer_dir. progress(done_bytes, total_bytes) is called as tensors are written.
// out_dir must be absent or empty; it appears only once complete (a failed run leaves nothing),
// and the inputs and the free space are checked before anything is written.
void write_synthetic_checkpoint(const std::string& preset, const std::string& out_dir, const std::string& tokenizer_dir,
                                uint64_t seed, const std::function<void(uint64_t, uint64_t)>& progress = {});

}  // namespace qvl
