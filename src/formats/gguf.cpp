#include "formats/gguf.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>

#include "core/check.h"

namespace qvl {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint64_t kAlignment = 32;       // GGUF's default when general.alignment is absent
constexpr uint64_t kWriteAlignment = 64;  // what qvl writes: a cache line, enough for any SIMD load

enum ValueType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8, kArray = 9,
  kU64 = 10, kI64 = 11, kF64 = 12,
};

// Bounds-checked reader over the mapped bytes.
class Cursor {
 public:
  Cursor(const std::byte* data, uint64_t size, const std::string& path) : p_(data), size_(size), path_(path) {}
  uint64_t offset() const { return off_; }
  void need(uint64_t n, const char* what) const {
    if (n > size_ - off_)
      fail(ErrorKind::kInvalidFile, path_, ": truncated GGUF file: ", what, " at offset ", off_, " needs ", n,
           " bytes, ", size_ - off_, " remain");
  }
  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + off_, sizeof(T));
    off_ += sizeof(T);
    return v;
  }
  std::string string(const char* what) {
    uint64_t len = read<uint64_t>(what);
    if (len > GgufFile::kMaxStringBytes)
      fail(ErrorKind::kInvalidFile, path_, ": ", what, " at offset ", off_ - 8, " claims ", len, " bytes");
    need(len, what);
    std::string s(reinterpret_cast<const char*>(p_ + off_), len);
    off_ += len;
    return s;
  }

 private:
  const std::byte* p_;
  uint64_t size_, off_ = 0;
  const std::string& path_;
};

double read_number(Cursor& c, uint32_t type, const std::string& path) {
  switch (type) {
    case kU8: return c.read<uint8_t>("value");
    case kI8: return c.read<int8_t>("value");
    case kU16: return c.read<uint16_t>("value");
    case kI16: return c.read<int16_t>("value");
    case kU32: return c.read<uint32_t>("value");
    case kI32: return c.read<int32_t>("value");
    case kF32: return c.read<float>("value");
    case kU64: return static_cast<double>(c.read<uint64_t>("value"));
    case kI64: return static_cast<double>(c.read<int64_t>("value"));
    case kF64: return c.read<double>("value");
    case kBool: return c.read<uint8_t>("value") != 0;
    default: fail(ErrorKind::kInvalidFile, path, ": unknown GGUF value type ", type, " at offset ", c.offset());
  }
}

bool is_integer_type(uint32_t t) { return t == kU8 || t == kI8 || t == kU16 || t == kI16 || t == kU32 || t == kI32 || t == kU64 || t == kI64; }

GgufValue read_value(Cursor& c, uint32_t type, const std::string& path) {
  if (type == kString) return c.string("string value");
  if (type == kBool) return c.read<uint8_t>("bool value") != 0;
  if (type == kU64) return c.read<uint64_t>("u64 value");
  if (type == kI64) return c.read<int64_t>("i64 value");
  if (type == kArray) {
    const uint32_t elem = c.read<uint32_t>("array type");
    const uint64_t n = c.read<uint64_t>("array length");
    if (n > GgufFile::kMaxArrayElems)
      fail(ErrorKind::kInvalidFile, path, ": GGUF array at offset ", c.offset(), " claims ", n, " elements");
    // Every element takes at least one byte: a count the file cannot hold is refused before
    // reserve() below turns it into up to 512 MB of memory.
    c.need(n, "array elements");
    if (elem == kString) {
      std::vector<std::string> v;
      for (uint64_t i = 0; i < n; ++i) v.push_back(c.string("array string"));
      return v;
    }
    if (elem == kArray) fail(ErrorKind::kUnsupported, path, ": nested GGUF arrays are not supported");
    if (is_integer_type(elem) || elem == kBool) {
      std::vector<int64_t> v;
      v.reserve(n);
      for (uint64_t i = 0; i < n; ++i)
        v.push_back(elem == kU64 ? static_cast<int64_t>(c.read<uint64_t>("array value"))
                    : elem == kI64 ? c.read<int64_t>("array value")
                                   : static_cast<int64_t>(read_number(c, elem, path)));
      return v;
    }
    std::vector<double> v;
    v.reserve(n);
    for (uint64_t i = 0; i < n; ++i) v.push_back(read_number(c, elem, path));
    return v;
  }
  if (is_integer_type(type)) {
    double d = read_number(c, type, path);
    return d < 0 ? GgufValue(static_cast<int64_t>(d)) : GgufValue(static_cast<uint64_t>(d));
  }
  return read_number(c, type, path);
}

}  // namespace

const GgmlTypeInfo* ggml_type_info(uint32_t type) {
  // Block sizes as ggml defines them (ggml-common.h): elements per block, bytes per block.
  static const GgmlTypeInfo kF32Info{"F32", 1, 4}, kF16Info{"F16", 1, 2}, kBF16Info{"BF16", 1, 2},
      kQ4_0Info{"Q4_0", 32, 18}, kQ4_1Info{"Q4_1", 32, 20}, kQ5_0Info{"Q5_0", 32, 22}, kQ5_1Info{"Q5_1", 32, 24},
      kQ8_0Info{"Q8_0", 32, 34}, kQ2_KInfo{"Q2_K", 256, 84}, kQ3_KInfo{"Q3_K", 256, 110},
      kQ4_KInfo{"Q4_K", 256, 144}, kQ5_KInfo{"Q5_K", 256, 176}, kQ6_KInfo{"Q6_K", 256, 210},
      kIQ4_NLInfo{"IQ4_NL", 32, 18}, kIQ4_XSInfo{"IQ4_XS", 256, 136}, kI8Info{"I8", 1, 1};
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::kF32: return &kF32Info;
    case GgmlType::kF16: return &kF16Info;
    case GgmlType::kBF16: return &kBF16Info;
    case GgmlType::kQ4_0: return &kQ4_0Info;
    case GgmlType::kQ4_1: return &kQ4_1Info;
    case GgmlType::kQ5_0: return &kQ5_0Info;
    case GgmlType::kQ5_1: return &kQ5_1Info;
    case GgmlType::kQ8_0: return &kQ8_0Info;
    case GgmlType::kQ2_K: return &kQ2_KInfo;
    case GgmlType::kQ3_K: return &kQ3_KInfo;
    case GgmlType::kQ4_K: return &kQ4_KInfo;
    case GgmlType::kQ5_K: return &kQ5_KInfo;
    case GgmlType::kQ6_K: return &kQ6_KInfo;
    case GgmlType::kIQ4_NL: return &kIQ4_NLInfo;
    case GgmlType::kIQ4_XS: return &kIQ4_XSInfo;
    case GgmlType::kI8: return &kI8Info;
  }
  // ggml's other types: qvl decodes none of them, but knows their names and block sizes, so a
  // file that holds one parses and the error names the type.
  static const struct {
    uint32_t id;
    GgmlTypeInfo info;
  } kOthers[] = {
      {9, {"Q8_1", 32, 36}},       {15, {"Q8_K", 256, 292}},  {16, {"IQ2_XXS", 256, 66}}, {17, {"IQ2_XS", 256, 74}},
      {18, {"IQ3_XXS", 256, 98}},  {19, {"IQ1_S", 256, 50}},  {21, {"IQ3_S", 256, 110}},  {22, {"IQ2_S", 256, 82}},
      {25, {"I16", 1, 2}},         {26, {"I32", 1, 4}},       {27, {"I64", 1, 8}},        {28, {"F64", 1, 8}},
      {29, {"IQ1_M", 256, 56}},    {34, {"TQ1_0", 256, 54}},  {35, {"TQ2_0", 256, 66}},   {39, {"MXFP4", 32, 17}},
      {40, {"NVFP4", 64, 36}},     {41, {"Q1_0", 128, 18}},   {42, {"Q2_0", 64, 18}},
  };
  for (const auto& other : kOthers)
    if (other.id == type) return &other.info;
  return nullptr;
}

GgufFile::GgufFile(const std::string& path) : file_(path) { contents_ = parse_gguf(file_.data(), file_.size(), path); }

GgufContents parse_gguf(const std::byte* file_data, size_t file_size, const std::string& path) {
  GgufContents out;
  auto& kv_ = out.metadata;
  auto& tensors_ = out.tensors;
  Cursor c(file_data, file_size, path);
  if (c.read<uint32_t>("magic") != kMagic) fail(ErrorKind::kInvalidFile, path, ": not a GGUF file (bad magic)");
  const uint32_t version = c.read<uint32_t>("version");
  if (version != 2 && version != 3) fail(ErrorKind::kUnsupported, path, ": GGUF version ", version, " is not supported");
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  if (n_tensors > GgufFile::kMaxTensors) fail(ErrorKind::kInvalidFile, path, ": GGUF claims ", n_tensors, " tensors");
  if (n_kv > GgufFile::kMaxKv) fail(ErrorKind::kInvalidFile, path, ": GGUF claims ", n_kv, " metadata entries");
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.string("metadata key");
    const uint32_t type = c.read<uint32_t>("metadata type");
    kv_[key] = read_value(c, type, path);
  }
  uint64_t alignment = kAlignment;
  if (auto it = kv_.find("general.alignment"); it != kv_.end()) {
    const uint64_t* a = std::get_if<uint64_t>(&it->second);
    if (a == nullptr || *a == 0 || (*a & (*a - 1)) != 0 || *a > 4096)
      fail(ErrorKind::kInvalidFile, path, ": general.alignment must be a power of two up to 4096");
    alignment = *a;
  }
  struct Info {
    GgufTensor t;
    uint64_t offset;
  };
  std::vector<Info> infos;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    Info info;
    info.t.name = c.string("tensor name");
    const uint32_t n_dims = c.read<uint32_t>("tensor rank");
    if (n_dims == 0 || n_dims > 8) fail(ErrorKind::kInvalidFile, path, ": tensor '", info.t.name, "' has rank ", n_dims);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = c.read<uint64_t>("tensor dim");
      if (dim == 0 || dim > (uint64_t(1) << 40) || numel > (uint64_t(1) << 50) / dim)
        fail(ErrorKind::kInvalidFile, path, ": tensor '", info.t.name, "' has an absurd dimension ", dim);
      numel *= dim;
      info.t.dims.push_back(static_cast<int64_t>(dim));
    }
    const uint32_t type = c.read<uint32_t>("tensor type");
    const GgmlTypeInfo* ti = ggml_type_info(type);
    if (ti == nullptr) fail(ErrorKind::kUnsupported, path, ": tensor '", info.t.name, "' has unknown ggml type ", type);
    if (info.t.dims[0] % ti->block_elems != 0)
      fail(ErrorKind::kInvalidFile, path, ": tensor '", info.t.name, "' row of ", info.t.dims[0],
           " elements is not a whole number of ", ti->name, " blocks");
    info.t.type = static_cast<GgmlType>(type);
    info.t.nbytes = numel / static_cast<uint64_t>(ti->block_elems) * static_cast<uint64_t>(ti->block_bytes);
    info.offset = c.read<uint64_t>("tensor offset");
    if (info.offset % alignment != 0)
      fail(ErrorKind::kInvalidFile, path, ": tensor '", info.t.name, "' offset ", info.offset, " is not aligned");
    infos.push_back(std::move(info));
  }
  const uint64_t data_start = (c.offset() + alignment - 1) / alignment * alignment;
  if (data_start > file_size) fail(ErrorKind::kInvalidFile, path, ": truncated GGUF file (no tensor data)");
  const uint64_t data_size = file_size - data_start;
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  for (auto& info : infos) {
    if (info.offset > data_size || info.t.nbytes > data_size - info.offset)
      fail(ErrorKind::kInvalidFile, path, ": tensor '", info.t.name, "' data [", info.offset, ", +", info.t.nbytes,
           ") runs past the end of the file (the file may be truncated)");
    info.t.data = file_data + data_start + info.offset;
    spans.emplace_back(info.offset, info.offset + info.t.nbytes);
    const std::string name = info.t.name;
    if (!tensors_.emplace(name, std::move(info.t)).second)
      fail(ErrorKind::kInvalidFile, path, ": tensor '", name, "' appears twice");
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].first < spans[i - 1].second) fail(ErrorKind::kInvalidFile, path, ": tensor data regions overlap");
  return out;
}

const std::string* GgufFile::get_string(const std::string& key) const {
  auto it = contents_.metadata.find(key);
  return it == contents_.metadata.end() ? nullptr : std::get_if<std::string>(&it->second);
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& dims,
                            const void* data, uint64_t nbytes) {
  const GgmlTypeInfo* ti = ggml_type_info(static_cast<uint32_t>(type));
  QVL_ASSERT(ti != nullptr && !dims.empty() && dims[0] % ti->block_elems == 0);
  uint64_t numel = 1;
  for (int64_t d : dims) numel *= static_cast<uint64_t>(d);
  QVL_ASSERT(numel / static_cast<uint64_t>(ti->block_elems) * static_cast<uint64_t>(ti->block_bytes) == nbytes);
  tensors_.push_back({name, type, dims, data, nbytes, {}});
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& dims, uint64_t nbytes,
                            std::function<void(uint8_t*)> fill) {
  add_tensor(name, type, dims, nullptr, nbytes);
  tensors_.back().fill = std::move(fill);
}

void GgufWriter::write(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail(ErrorKind::kIo, "cannot create '", path, "': ", std::strerror(errno));
  auto put = [&](const auto& v) { out.write(reinterpret_cast<const char*>(&v), sizeof(v)); };
  auto put_string = [&](const std::string& s) {
    put(static_cast<uint64_t>(s.size()));
    out.write(s.data(), static_cast<std::streamsize>(s.size()));
  };
  put(kMagic);
  put(uint32_t{3});
  put(static_cast<uint64_t>(tensors_.size()));
  auto kv = kv_;
  kv["general.alignment"] = {uint64_t{kWriteAlignment}, GgufStore::kU32};
  put(static_cast<uint64_t>(kv.size()));
  // An integer in the narrower type `store` names (checked to fit), else as 64 bits.
  auto put_integer = [&](auto v, GgufStore store, uint32_t default_type) {
    if (store == GgufStore::kU32) {
      QVL_ASSERT(v >= 0 && static_cast<uint64_t>(v) <= std::numeric_limits<uint32_t>::max());
      put(static_cast<uint32_t>(v));
    } else if (store == GgufStore::kI32) {
      QVL_ASSERT(static_cast<int64_t>(v) >= std::numeric_limits<int32_t>::min() &&
                 (v < 0 || static_cast<uint64_t>(v) <= static_cast<uint64_t>(std::numeric_limits<int32_t>::max())));
      put(static_cast<int32_t>(v));
    } else if (store == GgufStore::kBool) {
      put(static_cast<uint8_t>(v != 0));
    } else {
      QVL_ASSERT(store == GgufStore::kDefault);
      if (default_type == kU64) put(static_cast<uint64_t>(v));
      else put(static_cast<int64_t>(v));
    }
  };
  auto integer_type = [](GgufStore store, uint32_t default_type) {
    return store == GgufStore::kU32 ? uint32_t{kU32} : store == GgufStore::kI32 ? uint32_t{kI32}
           : store == GgufStore::kBool ? uint32_t{kBool} : default_type;
  };
  auto number_type = [](GgufStore store) {
    QVL_ASSERT(store == GgufStore::kDefault || store == GgufStore::kF32);
    return store == GgufStore::kF32 ? uint32_t{kF32} : uint32_t{kF64};
  };
  auto put_number = [&](double v, GgufStore store) {
    if (store == GgufStore::kF32) put(static_cast<float>(v));
    else put(v);
  };
  for (const auto& [key, entry] : kv) {
    const auto& [value, store] = entry;
    put_string(key);
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, uint64_t>) { put(integer_type(store, kU64)); put_integer(v, store, kU64); }
          else if constexpr (std::is_same_v<T, int64_t>) { put(integer_type(store, kI64)); put_integer(v, store, kI64); }
          else if constexpr (std::is_same_v<T, double>) { put(number_type(store)); put_number(v, store); }
          else if constexpr (std::is_same_v<T, bool>) { put(uint32_t{kBool}); put(static_cast<uint8_t>(v)); }
          else if constexpr (std::is_same_v<T, std::string>) { put(uint32_t{kString}); put_string(v); }
          else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            put(uint32_t{kArray}); put(uint32_t{kString}); put(static_cast<uint64_t>(v.size()));
            for (const auto& s : v) put_string(s);
          } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
            put(uint32_t{kArray}); put(integer_type(store, kI64)); put(static_cast<uint64_t>(v.size()));
            for (int64_t x : v) put_integer(x, store, kI64);
          } else {
            put(uint32_t{kArray}); put(number_type(store)); put(static_cast<uint64_t>(v.size()));
            for (double x : v) put_number(x, store);
          }
        },
        value);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put_string(t.name);
    put(static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) put(static_cast<uint64_t>(d));
    put(static_cast<uint32_t>(t.type));
    put(offset);
    offset = (offset + t.nbytes + kWriteAlignment - 1) / kWriteAlignment * kWriteAlignment;
  }
  auto pad = [&] {
    static const char zeros[kWriteAlignment] = {};
    const uint64_t pos = static_cast<uint64_t>(out.tellp());
    out.write(zeros, static_cast<std::streamsize>((kWriteAlignment - pos % kWriteAlignment) % kWriteAlignment));
  };
  pad();
  std::vector<uint8_t> made;
  for (const auto& t : tensors_) {
    const void* data = t.data;
    if (t.fill) {
      made.assign(static_cast<size_t>(t.nbytes), 0);
      t.fill(made.data());
      data = made.data();
    }
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(t.nbytes));
    pad();
  }
  out.close();  // the last buffered bytes fail here when the disk is full
  if (!out) fail(ErrorKind::kIo, "write failed on '", path, "': ", std::strerror(errno));
}

}  // namespace qvl
