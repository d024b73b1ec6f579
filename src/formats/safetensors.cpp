#include "formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>

#include "core/check.h"
#include "core/json_util.h"

namespace qvl {

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string TensorView::shape_str() const { return shape_to_string(shape); }

namespace {

bool parse_dtype(const std::string& s, DType* out) {
  static const std::pair<const char*, DType> kTable[] = {
      {"F32", DType::kF32}, {"F16", DType::kF16}, {"BF16", DType::kBF16}, {"I32", DType::kI32},
      {"I64", DType::kI64}, {"U8", DType::kU8},   {"I8", DType::kI8},     {"BOOL", DType::kBool}};
  for (const auto& [name, t] : kTable) {
    if (s == name) {
      *out = t;
      return true;
    }
  }
  return false;
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  tensors_ = parse_safetensors(file_.data(), file_.size(), path, &metadata_);
}

std::map<std::string, TensorView> parse_safetensors(const std::byte* file_data, size_t file_size, const std::string& path,
                                                    std::map<std::string, std::string>* metadata) {
  std::map<std::string, TensorView> tensors;
  if (file_size < 8)
    fail(ErrorKind::kInvalidFile, path, ": truncated safetensors file (", file_size,
         " bytes, the 8-byte header length is missing)");
  uint64_t header_len = 0;
  std::memcpy(&header_len, file_data, 8);  // little-endian on every supported host
  if (header_len > SafetensorsFile::kMaxHeaderBytes)
    fail(ErrorKind::kInvalidFile, path, ": absurd safetensors header length ", header_len,
         " bytes (limit ", SafetensorsFile::kMaxHeaderBytes, ")");
  if (header_len > file_size - 8)
    fail(ErrorKind::kInvalidFile, path, ": truncated safetensors file: header claims ", header_len,
         " bytes but only ", file_size - 8, " follow");
  const std::byte* data_start = file_data + 8 + header_len;
  const uint64_t data_size = file_size - 8 - header_len;

  std::string header(reinterpret_cast<const char*>(file_data + 8), header_len);
  Json j = parse_json(header, path + " (safetensors header)");
  if (!j.is_object()) fail(ErrorKind::kInvalidFile, path, ": safetensors header is not a JSON object");

  struct Span {
    uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Span> spans;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const Json& e = it.value();
    if (name == "__metadata__") {
      if (e.is_object() && metadata != nullptr)
        for (auto m = e.begin(); m != e.end(); ++m)
          if (m.value().is_string()) (*metadata)[m.key()] = m.value().get<std::string>();
      continue;
    }
    auto bad = [&](const std::string& why) {
      fail(ErrorKind::kInvalidFile, path, ": tensor '", name, "': ", why);
    };
    if (!e.is_object()) bad("entry is not an object");
    if (!e.contains("dtype") || !e["dtype"].is_string()) bad("missing dtype");
    TensorView t;
    t.name = name;
    const std::string dtype = e["dtype"].get<std::string>();
    if (!parse_dtype(dtype, &t.dtype)) bad("unknown dtype '" + dtype + "'");
    if (!e.contains("shape") || !e["shape"].is_array()) bad("missing shape");
    if (e["shape"].size() > 8) bad("more than 8 dimensions");
    uint64_t numel = 1;
    bool overflow = false;
    for (const Json& d : e["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) bad("shape has a negative or non-integer dimension");
      uint64_t v = d.get<uint64_t>();
      t.shape.push_back(static_cast<int64_t>(v));
      if (v != 0 && numel > std::numeric_limits<uint64_t>::max() / 4 / v) overflow = true;
      numel *= v;
    }
    if (overflow || numel > (uint64_t(1) << 50)) bad("shape " + t.shape_str() + " is absurdly large");
    if (!e.contains("data_offsets") || !e["data_offsets"].is_array() || e["data_offsets"].size() != 2 ||
        !e["data_offsets"][0].is_number_unsigned() || !e["data_offsets"][1].is_number_unsigned())
      bad("data_offsets must be two non-negative integers");
    uint64_t begin = e["data_offsets"][0].get<uint64_t>();
    uint64_t end = e["data_offsets"][1].get<uint64_t>();
    if (begin > end) bad(cat("data_offsets [", begin, ", ", end, "] are reversed"));
    if (end > data_size)
      bad(cat("data_offsets [", begin, ", ", end, "] run past the end of the file (data section is ",
              data_size, " bytes; the file may be truncated)"));
    const uint64_t expected = numel * dtype_size(t.dtype);
    if (end - begin != expected)
      bad(cat("holds ", end - begin, " bytes but shape ", t.shape_str(), " of ", dtype, " needs ",
              expected));
    t.data = data_start + begin;
    t.nbytes = static_cast<size_t>(expected);
    auto [pos, inserted] = tensors.emplace(name, std::move(t));
    spans.push_back({begin, end, &pos->first});
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < spans.size(); ++i) {
    if (spans[i].begin < spans[i - 1].end)
      fail(ErrorKind::kInvalidFile, path, ": tensors '", *spans[i - 1].name, "' and '", *spans[i].name,
           "' overlap in the data section");
  }
  return tensors;
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    header[t.name] = {{"dtype", std::string(dtype_name(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.nbytes}}};
    offset += t.nbytes;
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text += ' ';  // keep tensor data 8-byte aligned
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail(ErrorKind::kIo, "cannot create '", path, "'");
  uint64_t len = text.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& t : tensors) out.write(static_cast<const char*>(t.data), static_cast<std::streamsize>(t.nbytes));
  if (!out) fail(ErrorKind::kIo, "write failed on '", path, "'");
}

}  // namespace qvl
