// The tensor tables' shared vocabulary. Each tower (text decoder: text_tensors.h, vision tower:
// vision_tensors.h) lists its checkpoint tensors once, as rows {name pattern, role, shape rule,
// quantization class, weights-struct field}; loading, stray-tensor refusal, quantize-at-load,
// byte accounting, `qvl quantize` and `qvl synth` all read those rows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/checkpoint.h"
#include "kernels/kernels.h"

namespace qvl {

class ThreadPool;

// What a tensor is, which decides how it is held (matrix or fp32 vector) and how `qvl synth`
// fills it.
enum class TensorRole {
  kLinear,         // a projection weight [out, in]
  kEmbedding,      // the token embedding table [vocab, hidden]
  kPositionTable,  // a learned position table [positions, hidden], read by interpolation
  kConvolution,    // a Conv3d kernel [out, C, T, P, P], used as the matrix [out, C*T*P*P]
  kNormWeight,     // a RMSNorm/LayerNorm scale
  kBias,           // a linear or LayerNorm bias
};

// Which weight-type option governs a tensor when the model is quantized (at load or by
// `qvl quantize`); kNever tensors are always kept as stored.
enum class QuantClass { kNever, kTextLayer, kTextHead, kVision };

// The format each class is held in when quantizing (kDense: as stored).
struct QuantFormats {
  kernels::WeightFormat text_layer = kernels::WeightFormat::kDense;
  kernels::WeightFormat text_head = kernels::WeightFormat::kDense;
  kernels::WeightFormat vision = kernels::WeightFormat::kDense;

  kernels::WeightFormat of(QuantClass q) const {
    switch (q) {
      case QuantClass::kTextLayer: return text_layer;
      case QuantClass::kTextHead: return text_head;
      case QuantClass::kVision: return vision;
      case QuantClass::kNever: break;
    }
    return kernels::WeightFormat::kDense;
  }
};

// A field of a weights struct that a tensor is loaded into: exactly one pointer is set.
struct TensorField {
  TensorField(kernels::WeightMatrix& m) : matrix(&m) {}  // NOLINT: implicit, a field is either
  TensorField(std::vector<float>& v) : vector(&v) {}     // NOLINT
  kernels::WeightMatrix* matrix = nullptr;
  std::vector<float>* vector = nullptr;
};

// One concrete tensor of a config: its checkpoint name and shape, plus the table row and the
// repeat index (layer, block, merger) it was expanded from.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  TensorRole role = TensorRole::kLinear;
  QuantClass quant = QuantClass::kNever;
  size_t row = 0;
  size_t index = 0;
};

inline bool is_matrix_role(TensorRole r) { return r != TensorRole::kNormWeight && r != TensorRole::kBias; }

// `pattern` with every "{key}" replaced by `value`.
std::string expand_tensor_name(std::string pattern, const std::string& key, const std::string& value);

// Gets the spec's tensor from the checkpoint (checking its shape) into `field`: a quantizable
// matrix as stored (a qvl GGUF may hold it packed), any other matrix as a dense view of all its
// dimensions after the first (packed refused), a vector converted to fp32.
void load_tensor(Checkpoint& ckpt, const TensorSpec& spec, TensorField field);

// Fails (kInvalidFile) naming the first few checkpoint tensors under `prefix` that the loader
// did not take: `what_is_expected` says what the config asked for, e.g. "(depth 4, 2 deepstack mergers)".
void refuse_stray_tensors(const Checkpoint& ckpt, const std::string& prefix, const std::string& tower,
                          const std::string& what_is_expected);

// Quantize-at-load of one matrix: re-points m at a new buffer in `owned` holding it in format
// f. Matrices that are already quantized, or whose shape f cannot hold, stay as they are, as
// does everything when f is kDense.
void quantize_in_place(kernels::WeightMatrix& m, kernels::WeightFormat f, std::vector<kernels::QuantizedMatrix>& owned,
                       ThreadPool* pool);

// Bytes a loaded field holds now: a matrix in its storage format, a vector as fp32.
uint64_t held_bytes(const TensorField& field);

}  // namespace qvl

namespace qvl {

// Expands a tower's rows (in table order) into the concrete tensors of a config. A run of
// consecutive rows with the same `repeat` is emitted index by index (all of layer 0's rows, then
// layer 1's, ...), the order checkpoints list them in. count_of(row) says how many times a row
// repeats; spec_of(row, row_number, index) makes one concrete tensor.
template <class Row, class CountOf, class SpecOf>
std::vector<TensorSpec> expand_tensor_table(const std::vector<Row>& rows, CountOf count_of, SpecOf spec_of) {
  std::vector<TensorSpec> specs;
  for (size_t begin = 0, end = 0; begin < rows.size(); begin = end) {
    for (end = begin + 1; end < rows.size() && rows[end].repeat == rows[begin].repeat;) ++end;
    const size_t n = count_of(rows[begin]);
    for (size_t index = 0; index < n; ++index)
      for (size_t r = begin; r < end; ++r) specs.push_back(spec_of(rows[r], r, index));
  }
  return specs;
}

}  // namespace qvl
