#include "model/tensor_table.h"

#include "core/check.h"
#include "model/weight_view.h"

namespace qvl {

std::string expand_tensor_name(std::string pattern, const std::string& key, const std::string& value) {
  const std::string placeholder = "{" + key + "}";
  for (size_t at = pattern.find(placeholder); at != std::string::npos; at = pattern.find(placeholder, at + value.size()))
    pattern.replace(at, placeholder.size(), value);
  return pattern;
}

void load_tensor(Checkpoint& ckpt, const TensorSpec& spec, TensorField field) {
  const TensorView& t = ckpt.get(spec.name, spec.shape, field.matrix != nullptr && spec.quant != QuantClass::kNever);
  if (field.vector != nullptr) {
    *field.vector = as_f32(t);
  } else if (spec.quant != QuantClass::kNever) {
    *field.matrix = as_matrix(t);
  } else {
    if (t.packed_format != 0) fail(ErrorKind::kInvalidFile, "tensor '", t.name, "' must not be quantized");
    int64_t cols = 1;
    for (size_t k = 1; k < spec.shape.size(); ++k) cols *= spec.shape[k];
    *field.matrix = kernels::WeightMatrix{t.dtype, spec.shape[0], cols, t.data};
  }
}

void refuse_stray_tensors(const Checkpoint& ckpt, const std::string& prefix, const std::string& tower,
                          const std::string& what_is_expected) {
  std::vector<std::string> stray;
  for (const std::string& name : ckpt.unused())
    if (name.compare(0, prefix.size(), prefix) == 0) stray.push_back(name);
  if (stray.empty()) return;
  std::string list;
  for (size_t i = 0; i < stray.size() && i < 5; ++i) list += (i ? ", " : "") + stray[i];
  if (stray.size() > 5) list += cat(", ... (", stray.size(), " in all)");
  fail(ErrorKind::kInvalidFile, "checkpoint '", ckpt.dir(), "' has ", tower, " tensors the config ", what_is_expected,
       " does not use: ", list);
}

void quantize_in_place(kernels::WeightMatrix& m, kernels::WeightFormat f, std::vector<kernels::QuantizedMatrix>& owned,
                       ThreadPool* pool) {
  if (f == kernels::WeightFormat::kDense || m.quantized() || !kernels::can_quantize(f, m.rows, m.cols)) return;
  owned.push_back(quantize_weights(m, f, pool));
  m = owned.back().view();  // the buffer lives on the heap: growing `owned` keeps it valid
}

uint64_t held_bytes(const TensorField& field) {
  if (field.matrix != nullptr) return static_cast<uint64_t>(kernels::weight_storage_bytes(*field.matrix));
  return field.vector->size() * sizeof(float);
}

}  // namespace qvl
