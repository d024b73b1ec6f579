// Random-weight GGUF files in llama.cpp's own layout and type mixes, with the exact shapes of a
// preset: a text model and its vision projector (mmproj) that qvl and llama.cpp can both run, to
// measure their speed on the same files.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace qvl {

// progress(done_bytes, total_bytes), called as tensors are written.
using SynthProgress = std::function<void(uint64_t, uint64_t)>;

// "Q4_K_M" (Q4_K, with Q6_K for the embeddings/head and for attn_v and ffn_down in the layers
// llama-quantize gives more bits: the first and last eighth and every third one between),
// "Q8_0" and "Q4_0" (Q6_K head).
std::vector<std::string> synthetic_llama_gguf_types();

// Writes the text GGUF of `preset` (see synthetic_presets()) to out_path: llama.cpp's tensor
// names and qwen3vl.* / tokenizer.ggml.* metadata with the value types llama.cpp reads (the
// tokenizer and chat template taken from tokenizer_dir's tokenizer.json, tokenizer_config.json
// and chat_template.json). The weights are random f32 values quantized by qvl's copy of ggml's
// reference quantizer (formats/ggml_quantize.h), so every block is what llama-quantize writes
// for those values, with its type mix and its fallbacks for rows shorter than a block (Q4_K to
// Q5_0, Q6_K to Q8_0). Rows are quantized on `threads` threads (0: every core); the file
// appears only once complete.
void write_synthetic_llama_gguf(const std::string& preset, const std::string& type_mix, const std::string& out_path,
                                const std::string& tokenizer_dir, uint64_t seed, int threads = 0,
                                const SynthProgress& progress = {});

// "F16" and "Q8_0", the projector types Qwen publishes.
std::vector<std::string> synthetic_llama_mmproj_types();

// Writes the vision projector of `preset` as llama.cpp's convert_hf_to_gguf.py --mmproj writes
// it: general.architecture "clip", clip.vision.* metadata, the fused attn_qkv, the patch
// embedding split over time (v.patch_embd.weight and .weight.1), v.deepstack.<layer>.*,
// v.post_ln, mm.0 / mm.2. Matrices are F16 or Q8_0 (quantized as ggml does), the patch
// embedding F16 (F32 in a Q8_0 file, as the converter does), the position table, biases and
// norms F32. Random values; the file appears only once complete.
void write_synthetic_llama_mmproj(const std::string& preset, const std::string& type, const std::string& out_path,
                                  uint64_t seed, int threads = 0, const SynthProgress& progress = {});

}  // namespace qvl
