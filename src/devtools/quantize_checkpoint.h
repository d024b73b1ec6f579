// `qvl quantize`: a Hugging Face checkpoint folder → one memory-mappable GGUF file holding the
// weights (text matrices quantized, the rest as stored) and the side files as metadata, so
// that it loads in well under a second and standard GGUF tools can inspect it.
#pragma once

#include <functional>
#include <string>

namespace qvl {

struct QuantizeOptions {
  std::string type = "q4_k";  // text layer matrices: q4_k, q4_0, q8_0 or bf16 (kept as stored)
  std::string head_type;      // embed_tokens / lm_head: default q8_0 (bf16 when type is bf16)
  // Vision tower matmul weights (blocks and mergers): default q8_0 when `type` quantizes (about
  // 2x faster image encoding than bf16), bf16 (as stored) otherwise.
  std::string vision_type;
  int threads = 0;
};

// progress(done_bytes, total_bytes) as tensors are converted (input bytes).
void quantize_checkpoint(const std::string& in_dir, const std::string& out_path, const QuantizeOptions& options,
                         const std::function<void(uint64_t, uint64_t)>& progress = {});

}  // namespace qvl
