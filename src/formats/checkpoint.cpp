#include "formats/checkpoint.h"

#include <algorithm>
#include <filesystem>

#include "core/check.h"
#include "core/json_util.h"
#include "core/mapped_file.h"
#include "formats/ggml_quants.h"

namespace qvl {

namespace fs = std::filesystem;

namespace {

// Tensors of a qvl GGUF file: dense ones in ggml types, packed quantized matrices as I8 blobs
// described by "qvl.format.<name>" and "qvl.shape.<name>".
void index_gguf(const GgufFile& g, std::vector<std::unique_ptr<TensorView>>& views,
                std::map<std::string, const TensorView*>& index) {
  for (const auto& [name, t] : g.tensors()) {
    auto v = std::make_unique<TensorView>();
    v->name = name;
    v->data = t.data;
    v->nbytes = static_cast<size_t>(t.nbytes);
    const auto& md = g.metadata();
    if (auto f = md.find("qvl.format." + name); f != md.end()) {
      const auto* code = std::get_if<uint64_t>(&f->second);
      auto sh = md.find("qvl.shape." + name);
      const auto* shape = sh == md.end() ? nullptr : std::get_if<std::vector<int64_t>>(&sh->second);
      if (code == nullptr || *code == 0 || *code > 255 || shape == nullptr || shape->size() != 2 || t.type != GgmlType::kI8)
        fail(ErrorKind::kInvalidFile, g.path(), ": packed tensor '", name, "' has malformed qvl.format/qvl.shape metadata");
      v->packed_format = static_cast<uint8_t>(*code);
      v->dtype = DType::kI8;
      v->shape = *shape;
    } else {
      switch (t.type) {
        case GgmlType::kF32: v->dtype = DType::kF32; break;
        case GgmlType::kF16: v->dtype = DType::kF16; break;
        case GgmlType::kBF16: v->dtype = DType::kBF16; break;
        default:
          fail(ErrorKind::kUnsupported, g.path(), ": tensor '", name, "' has ggml type ",
               ggml_type_info(static_cast<uint32_t>(t.type))->name, ", which qvl does not load");
      }
      v->shape.assign(t.dims.rbegin(), t.dims.rend());  // GGUF lists the innermost dimension first
    }
    index.emplace(name, v.get());
    views.push_back(std::move(v));
  }
}

}  // namespace

std::unique_ptr<Checkpoint> Checkpoint::assemble(std::string what, std::vector<std::unique_ptr<GgufFile>> files,
                                                 std::vector<TensorView> views,
                                                 std::map<std::string, std::vector<float>> owned,
                                                 FileNameOf file_name_of) {
  auto ckpt = std::make_unique<Checkpoint>();
  ckpt->dir_ = std::move(what);
  ckpt->file_name_of_ = std::move(file_name_of);
  ckpt->converted_from_ = std::move(files);
  ckpt->owned_ = std::move(owned);
  for (TensorView& v : views) {
    if (auto o = ckpt->owned_.find(v.name); o != ckpt->owned_.end()) {
      v.dtype = DType::kF32;
      v.data = reinterpret_cast<const std::byte*>(o->second.data());
      v.nbytes = o->second.size() * sizeof(float);
      v.ggml_block_type = 0;
    }
    auto view = std::make_unique<TensorView>(std::move(v));
    if (!ckpt->index_.emplace(view->name, view.get()).second)
      fail(ErrorKind::kInvalidFile, ckpt->dir_, ": tensor '", view->name, "' appears twice");
    ckpt->gguf_views_.push_back(std::move(view));
  }
  return ckpt;
}

const std::string* Checkpoint::metadata_string(const std::string& key) const {
  return gguf_ ? gguf_->get_string(key) : nullptr;
}

std::unique_ptr<Checkpoint> Checkpoint::open(const std::string& dir) {
  auto ckpt = std::make_unique<Checkpoint>();
  ckpt->dir_ = dir;
  if (fs::is_regular_file(dir)) {
    ckpt->gguf_ = std::make_unique<GgufFile>(dir);
    index_gguf(*ckpt->gguf_, ckpt->gguf_views_, ckpt->index_);
    return ckpt;
  }
  if (!fs::is_directory(dir)) fail(ErrorKind::kNotFound, "model folder '", dir, "' does not exist");

  std::vector<std::string> shard_names;
  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  std::map<std::string, std::string> weight_map;
  if (fs::exists(index_path)) {
    Json index = load_json_file(index_path.string());
    const Json& wm = json_require(index, "weight_map", index_path.string());
    if (!wm.is_object()) fail(ErrorKind::kInvalidFile, index_path.string(), ": weight_map is not an object");
    for (auto it = wm.begin(); it != wm.end(); ++it) {
      if (!it.value().is_string())
        fail(ErrorKind::kInvalidFile, index_path.string(), ": weight_map entry '", it.key(), "' is not a file name");
      std::string file = it.value().get<std::string>();
      if (file.find('/') != std::string::npos || file.find("..") != std::string::npos)
        fail(ErrorKind::kInvalidFile, index_path.string(), ": shard name '", file, "' leaves the model folder");
      weight_map[it.key()] = file;
      if (std::find(shard_names.begin(), shard_names.end(), file) == shard_names.end()) shard_names.push_back(file);
    }
  } else if (fs::exists(fs::path(dir) / "model.safetensors")) {
    shard_names.push_back("model.safetensors");
  } else {
    fail(ErrorKind::kNotFound, "no model.safetensors or model.safetensors.index.json in '", dir, "'");
  }

  std::map<std::string, const SafetensorsFile*> by_name;
  for (const auto& shard : shard_names) {
    ckpt->files_.push_back(std::make_unique<SafetensorsFile>((fs::path(dir) / shard).string()));
    by_name[shard] = ckpt->files_.back().get();
  }
  for (const auto& file : ckpt->files_) {
    for (const auto& [name, view] : file->tensors()) {
      if (!weight_map.empty()) {
        auto it = weight_map.find(name);
        if (it == weight_map.end() || by_name[it->second] != file.get()) continue;  // index is authoritative
      }
      if (!ckpt->index_.emplace(name, &view).second)
        fail(ErrorKind::kInvalidFile, "tensor '", name, "' appears in more than one shard of '", dir, "'");
    }
  }
  for (const auto& [name, file] : weight_map) {
    if (!ckpt->index_.count(name))
      fail(ErrorKind::kInvalidFile, index_path.string(), ": tensor '", name, "' is listed for '", file,
           "' but that shard does not contain it");
  }
  return ckpt;
}

bool Checkpoint::has(const std::string& name) const { return index_.count(name) != 0; }

const TensorView* Checkpoint::find(const std::string& name, const std::vector<int64_t>& shape, bool packed_ok) {
  auto it = index_.find(name);
  if (it == index_.end()) return nullptr;
  const TensorView& t = *it->second;
  if (t.shape != shape)
    fail(ErrorKind::kInvalidFile, "tensor '", name, "' has shape ", t.shape_str(),
         " but the config implies ", shape_to_string(shape), file_name_note(name));
  const auto block_type = static_cast<GgmlType>(t.ggml_block_type);
  if (packed_ok && pack_ggml_blocks_ && ggml_type_packable(block_type) && t.shape.size() == 2 &&
      t.shape[1] % ggml_type_info(t.ggml_block_type)->block_elems == 0) {
    // Packed once, after the shape check, for the int8 kernels: the same weights, no rounding.
    const kernels::QuantizedMatrix& q = packed_[name] = pack_ggml_matrix(block_type, t.data, t.shape[0], t.shape[1], pool_);
    drop_mapped_pages(t.data, t.nbytes);  // the file's copy is not read again: keep one copy resident
    auto* packed = const_cast<TensorView*>(&t);  // index_ points at views this checkpoint owns
    packed->ggml_block_type = 0;
    packed->packed_format = static_cast<uint8_t>(q.view().format);
    packed->dtype = DType::kI8;
    packed->data = reinterpret_cast<const std::byte*>(q.bytes());
    packed->nbytes = q.size_bytes();
  } else if (t.ggml_block_type != 0) {
    // Decoded once, now that the shape is known to be right (so no allocation follows a bad file).
    std::vector<float>& out = owned_[name];
    out.resize(static_cast<size_t>(t.numel()));
    dequantize_ggml(static_cast<GgmlType>(t.ggml_block_type), t.data, t.numel(), out.data());
    drop_mapped_pages(t.data, t.nbytes);
    auto* decoded = const_cast<TensorView*>(&t);  // index_ points at views this checkpoint owns
    decoded->ggml_block_type = 0;
    decoded->dtype = DType::kF32;
    decoded->data = reinterpret_cast<const std::byte*>(out.data());
    decoded->nbytes = out.size() * sizeof(float);
  }
  if (t.packed_format == 0 && t.dtype != DType::kF32 && t.dtype != DType::kF16 && t.dtype != DType::kBF16)
    fail(ErrorKind::kUnsupported, "tensor '", name, "' has dtype ", dtype_name(t.dtype),
         "; weights must be F32, F16 or BF16");
  used_.insert(name);
  return &t;
}

const TensorView& Checkpoint::get(const std::string& name, const std::vector<int64_t>& shape, bool packed_ok) {
  const TensorView* t = find(name, shape, packed_ok);
  if (t == nullptr)
    fail(ErrorKind::kInvalidFile, "tensor '", name, "' (shape ", shape_to_string(shape),
         ") is missing from the checkpoint in '", dir_, "'", file_name_note(name));
  return *t;
}

std::string Checkpoint::file_name_note(const std::string& name) const {
  const std::string in_file = file_name_of_ ? file_name_of_(name) : std::string();
  return in_file.empty() || in_file == name ? std::string() : " (GGUF tensor '" + in_file + "')";
}

void Checkpoint::mark_used(const std::string& name) {
  if (has(name)) used_.insert(name);
}

std::vector<std::string> Checkpoint::unused() const {
  std::vector<std::string> out;
  for (const auto& [name, view] : index_)
    if (!used_.count(name)) out.push_back(name);
  return out;
}

void Checkpoint::check_all_used() const {
  auto names = unused();
  if (names.empty()) return;
  std::string list;
  for (size_t i = 0; i < names.size() && i < 5; ++i) list += (i ? ", '" : "'") + names[i] + "'";
  if (names.size() > 5) list += cat(" and ", names.size() - 5, " more");
  fail(ErrorKind::kInvalidFile, "checkpoint in '", dir_, "' has ", names.size(),
       " tensor(s) the model does not use: ", list);
}

uint64_t Checkpoint::total_bytes() const {
  uint64_t n = 0;
  for (const auto& [name, view] : index_) n += view->nbytes;
  return n;
}

}  // namespace qvl

namespace qvl {

const TensorView* Checkpoint::view(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [name, view] : index_) out.push_back(name);
  return out;
}

}  // namespace qvl
