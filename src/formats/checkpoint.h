// A Hugging Face checkpoint folder's weights: model.safetensors, or shards listed by
// model.safetensors.index.json. Model code asks for tensors by their checkpoint names
// with the shape it expects; every tensor handed out is marked used, so that the loader
// can refuse checkpoints carrying tensors the model would silently ignore.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "kernels/kernels.h"

namespace qvl {

class ThreadPool;

class Checkpoint {
 public:
  // Opens a folder's safetensors file(s), or a GGUF file written by `qvl quantize`; throws
  // qvl::Error naming the file on any problem.
  static std::unique_ptr<Checkpoint> open(const std::string& path);

  // A checkpoint assembled by a converter (llama.cpp GGUF files): `files` stay open for the
  // tensors that view them; a tensor in `owned` (by name) takes its data from there instead.
  // `what` names the source in errors; `file_name_of` (optional) gives the name the files use for
  // a checkpoint name (empty if none), which errors about a missing or misshapen tensor add.
  using FileNameOf = std::function<std::string(const std::string&)>;
  static std::unique_ptr<Checkpoint> assemble(std::string what, std::vector<std::unique_ptr<GgufFile>> files,
                                              std::vector<TensorView> views,
                                              std::map<std::string, std::vector<float>> owned,
                                              FileNameOf file_name_of = {});

  // GGUF only: a string metadata value (e.g. "qvl.config_json"), or nullptr.
  const std::string* metadata_string(const std::string& key) const;
  bool is_gguf() const { return gguf_ != nullptr; }

  bool has(const std::string& name) const;
  // Returns the tensor, checking its shape (error names the tensor and both shapes) and that
  // its dtype is one of F32/F16/BF16 (a ggml block type is decoded to F32 here, after the shape
  // check). Marks it used.
  // With `packed_ok` (a matrix the kernels may take quantized), a 2-D ggml Q8_0, Q4_0, Q4_K or
  // Q6_K tensor is packed for the matmul kernels as it is (no rounding) instead of being decoded
  // to F32.
  const TensorView& get(const std::string& name, const std::vector<int64_t>& shape, bool packed_ok = false);
  // Like get() but the tensor may be absent (returns nullptr).
  const TensorView* find(const std::string& name, const std::vector<int64_t>& shape, bool packed_ok = false);
  // false: ggml block types are always decoded to F32, packed_ok or not (the exact reference
  // path: ModelOptions::weights_type "f32"). Default true.
  void set_pack_ggml_blocks(bool pack) { pack_ggml_blocks_ = pack; }
  // Threads that pack ggml matrices (null: the calling thread alone).
  void set_thread_pool(ThreadPool* pool) { pool_ = pool; }
  // Marks tensors that are knowingly ignored (e.g. a redundant lm_head copy).
  void mark_used(const std::string& name);

  std::vector<std::string> unused() const;
  std::vector<std::string> names() const;
  // The tensor as stored, without shape checks or use marking (for converters); nullptr if absent.
  const TensorView* view(const std::string& name) const;
  // Fails naming the first few tensors nobody asked for (the tensor-consumption audit).
  void check_all_used() const;

  const std::string& dir() const { return dir_; }
  size_t tensor_count() const { return index_.size(); }
  uint64_t total_bytes() const;

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unique_ptr<GgufFile> gguf_;
  std::vector<std::unique_ptr<GgufFile>> converted_from_;
  std::map<std::string, std::vector<float>> owned_;  // converted or decoded tensors, by name
  std::map<std::string, kernels::QuantizedMatrix> packed_;  // ggml Q8_0/Q4_0/Q4_K/Q6_K matrices as the kernels take them
  bool pack_ggml_blocks_ = true;
  ThreadPool* pool_ = nullptr;
  std::vector<std::unique_ptr<TensorView>> gguf_views_;
  std::map<std::string, const TensorView*> index_;
  std::set<std::string> used_;
  FileNameOf file_name_of_;
  // " (GGUF tensor 'x')" for a converted checkpoint whose files name `name` otherwise, else "".
  std::string file_name_note(const std::string& name) const;
};

}  // namespace qvl
