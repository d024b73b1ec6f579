// GGUF container (version 3): metadata key/values + tensor table + aligned tensor data.
// qvl writes its quantized checkpoints as GGUF so that standard GGUF tools can inspect them,
// and reads GGUF with every count, length and offset checked against the file first.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "core/mapped_file.h"

namespace qvl {

// ggml tensor type ids (the subset qvl reads; formats/ggml_quants dequantizes each of them).
enum class GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ2_K = 10, kQ3_K = 11,
  kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kIQ4_NL = 20, kIQ4_XS = 23, kI8 = 24, kBF16 = 30,
};

struct GgmlTypeInfo {
  const char* name;
  int64_t block_elems;  // elements per block
  int64_t block_bytes;  // bytes per block
};
// Returns nullptr for a type id ggml does not define (ggml's types qvl cannot decode are known,
// with their names and block sizes, so that errors can name them).
const GgmlTypeInfo* ggml_type_info(uint32_t type);

using GgufValue = std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<std::string>,
                               std::vector<int64_t>, std::vector<double>>;

struct GgufTensor {
  std::string name;
  GgmlType type;
  std::vector<int64_t> dims;  // GGUF order: dims[0] is the innermost (contiguous) dimension
  const std::byte* data = nullptr;
  uint64_t nbytes = 0;
};

struct GgufContents {
  std::map<std::string, GgufValue> metadata;
  std::map<std::string, GgufTensor> tensors;  // views into the parsed bytes
};

// Validates a GGUF image in memory; `what` names the source in errors.
GgufContents parse_gguf(const std::byte* data, size_t size, const std::string& what);

class GgufFile {
 public:
  static constexpr uint64_t kMaxTensors = 1 << 20;
  static constexpr uint64_t kMaxKv = 1 << 20;
  static constexpr uint64_t kMaxStringBytes = uint64_t(256) << 20;
  static constexpr uint64_t kMaxArrayElems = uint64_t(1) << 26;

  explicit GgufFile(const std::string& path);  // throws qvl::Error naming the problem and offset

  const std::string& path() const { return file_.path(); }
  const std::map<std::string, GgufValue>& metadata() const { return contents_.metadata; }
  const std::map<std::string, GgufTensor>& tensors() const { return contents_.tensors; }
  const std::string* get_string(const std::string& key) const;
  const GgufContents& contents() const { return contents_; }

 private:
  MappedFile file_;
  GgufContents contents_;
};

// How a metadata value is stored. GgufValue holds integers as 64 bits and numbers as double, which
// is how set() writes them by default (u64, i64, f64; arrays of i64, f64); llama.cpp reads most
// keys only as u32, i32, f32 or bool and refuses another type, so files for it name these.
enum class GgufStore { kDefault, kU32, kI32, kF32, kBool };

// Streams a GGUF file: metadata and tensor table first, then tensor data in the order added.
// general.alignment is written as u32 (as the GGUF spec and llama.cpp want it).
class GgufWriter {
 public:
  void set(const std::string& key, GgufValue value, GgufStore store = GgufStore::kDefault) {
    kv_[key] = {std::move(value), store};
  }
  // dims in GGUF order (innermost first); nbytes must match the type's block size.
  void add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& dims, const void* data,
                  uint64_t nbytes);
  // A tensor whose bytes fill() makes when write() reaches it (into a buffer of nbytes), so that
  // a large file is written holding one tensor at a time.
  void add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& dims, uint64_t nbytes,
                  std::function<void(uint8_t*)> fill);
  void write(const std::string& path) const;

 private:
  struct Pending {
    std::string name;
    GgmlType type;
    std::vector<int64_t> dims;
    const void* data;
    uint64_t nbytes;
    std::function<void(uint8_t*)> fill;  // set instead of data
  };
  std::map<std::string, std::pair<GgufValue, GgufStore>> kv_;
  std::vector<Pending> tensors_;
};

}  // namespace qvl
