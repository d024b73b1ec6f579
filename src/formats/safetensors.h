// safetensors reader: validates the header completely before any tensor is touched,
// then exposes each tensor as a view into the memory-mapped file (no copy).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"

namespace qvl {

struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;
  size_t nbytes = 0;
  // Nonzero for a matrix stored in a qvl packed quantized layout (GGUF files written by
  // `qvl quantize`): the kernels' WeightFormat value; shape is then the logical [rows, cols].
  uint8_t packed_format = 0;
  // Nonzero for a tensor of a llama.cpp GGUF stored in a ggml block type (a GgmlType value):
  // Checkpoint::get decodes it to F32 when the model asks for it, after checking its shape.
  uint32_t ggml_block_type = 0;

  int64_t numel() const;
  int64_t dim(size_t i) const { return shape.at(i); }
  std::string shape_str() const;
};

std::string shape_to_string(const std::vector<int64_t>& shape);

// Validates a whole safetensors image in memory and returns views into it; `what` names the
// source in errors. (The fuzz target calls this directly.)
std::map<std::string, TensorView> parse_safetensors(const std::byte* data, size_t size, const std::string& what,
                                                    std::map<std::string, std::string>* metadata = nullptr);

class SafetensorsFile {
 public:
  // Largest JSON header accepted; the real Qwen3-VL-32B header is a few hundred KB.
  static constexpr uint64_t kMaxHeaderBytes = uint64_t(100) << 20;

  // Throws qvl::Error naming the file and the problem (truncated file, absurd header length,
  // offsets past the end of the file or overlapping, unknown dtype, shape/size mismatch).
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return file_.path(); }
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  MappedFile file_;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Writes tensors (already in their stored byte form) as a safetensors file; used by
// tools that synthesize checkpoints and by tests that craft inputs.
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
  size_t nbytes;
};
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace qvl
