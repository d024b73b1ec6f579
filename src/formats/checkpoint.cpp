#include "formats/checkpoint.h"

#include <algorithm>
#include <filesystem>

#include "core/check.h"
#include "core/json_util.h"

namespace qvl {

namespace fs = std::filesystem;

std::unique_ptr<Checkpoint> Checkpoint::open(const std::string& dir) {
  auto ckpt = std::make_unique<Checkpoint>();
  ckpt->dir_ = dir;
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

const TensorView* Checkpoint::find(const std::string& name, const std::vector<int64_t>& shape) {
  auto it = index_.find(name);
  if (it == index_.end()) return nullptr;
  const TensorView& t = *it->second;
  if (t.shape != shape)
    fail(ErrorKind::kInvalidFile, "tensor '", name, "' has shape ", t.shape_str(),
         " but the config implies ", shape_to_string(shape));
  if (t.dtype != DType::kF32 && t.dtype != DType::kF16 && t.dtype != DType::kBF16)
    fail(ErrorKind::kUnsupported, "tensor '", name, "' has dtype ", dtype_name(t.dtype),
         "; weights must be F32, F16 or BF16");
  used_.insert(name);
  return &t;
}

const TensorView& Checkpoint::get(const std::string& name, const std::vector<int64_t>& shape) {
  const TensorView* t = find(name, shape);
  if (t == nullptr)
    fail(ErrorKind::kInvalidFile, "tensor '", name, "' (shape ", shape_to_string(shape),
         ") is missing from the checkpoint in '", dir_, "'");
  return *t;
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

uint64_t Checkpoint::bytes_with_prefix(const std::string& prefix) const {
  uint64_t n = 0;
  for (const auto& [name, view] : index_)
    if (name.rfind(prefix, 0) == 0) n += view->nbytes;
  return n;
}

}  // namespace qvl
