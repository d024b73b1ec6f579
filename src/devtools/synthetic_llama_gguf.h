// Random-weight text GGUF files in llama.cpp's own layout and type mixes, with the exact shapes
// of a preset: what qvl and llama.cpp can both run, to measure their speed on the same file.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace qvl {

// "Q4_K_M" (Q4_K, with Q6_K for the embeddings/head and for attn_v and ffn_down in the layers
// llama-quantize gives more bits: the first and last eighth and every third one between),
// "Q8_0" and "Q4_0" (Q6_K head).
std::vector<std::string> synthetic_llama_gguf_types();

// Writes the text GGUF of `preset` (see synthetic_presets()) to out_path: llama.cpp's tensor
// names and qwen3vl.* / tokenizer.ggml.* metadata (the tokenizer and chat template taken from
// tokenizer_dir's tokenizer.json, tokenizer_config.json and chat_template.json), blocks filled
// with random codes and small valid scales. Not ggml's quantizer: the values mean nothing, the
// bytes per weight and the kernels that read them are the real file's. The file appears only
// once complete.
void write_synthetic_llama_gguf(const std::string& preset, const std::string& type_mix, const std::string& out_path,
                                const std::string& tokenizer_dir, uint64_t seed);

}  // namespace qvl
