#include "model/weight_view.h"

#include <cctype>
#include <cstdint>

#include "core/check.h"
#include "formats/ggml_quantize.h"

namespace qvl {

kernels::WeightMatrix as_matrix(const TensorView& t) {
  QVL_ASSERT(t.shape.size() == 2);
  if (t.packed_format == 0) return kernels::WeightMatrix{t.dtype, t.shape[0], t.shape[1], t.data};
  const auto format = static_cast<kernels::WeightFormat>(t.packed_format);
  if (format != kernels::WeightFormat::kQ8_0 && format != kernels::WeightFormat::kQ4_0 &&
      format != kernels::WeightFormat::kQ4_K && format != kernels::WeightFormat::kGgmlQ4_K &&
      format != kernels::WeightFormat::kGgmlQ6_K)
    fail(ErrorKind::kUnsupported, "tensor '", t.name, "' has an unknown packed format ", int(t.packed_format));
  if (!kernels::can_quantize(format, t.shape[0], t.shape[1]) ||
      kernels::weight_storage_bytes(format, DType::kU8, t.shape[0], t.shape[1]) != t.nbytes)
    fail(ErrorKind::kInvalidFile, "packed tensor '", t.name, "' holds ", t.nbytes, " bytes, not what ",
         kernels::weight_format_name(format), " ", t.shape_str(), " needs");
  if (reinterpret_cast<uintptr_t>(t.data) % 32 != 0)
    fail(ErrorKind::kInvalidFile, "packed tensor '", t.name, "' is not 32-byte aligned in the file");
  return kernels::WeightMatrix{DType::kU8, t.shape[0], t.shape[1], t.data, format};
}

std::vector<float> as_f32(const TensorView& t) {
  if (t.packed_format != 0) fail(ErrorKind::kInvalidFile, "tensor '", t.name, "' must not be quantized");
  std::vector<float> out(static_cast<size_t>(t.numel()));
  convert_to_f32(t.dtype, t.data, out.data(), out.size());
  return out;
}

kernels::WeightFormat weight_format_option(const std::string& name) {
  if (name.empty() || name == "bf16" || name == "dense") return kernels::WeightFormat::kDense;
  // ggml's Q6_K is not one of the kernels' own quantization targets, so it is named here.
  std::string lower = name;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "q6_k") return kernels::WeightFormat::kGgmlQ6_K;
  try {
    return kernels::parse_weight_format(lower);
  } catch (const Error&) {
    fail(ErrorKind::kInvalidArgument, "unknown weight type '", name, "' (expected q4_k, q4_0, q8_0, q6_k or bf16)");
  }
}

kernels::QuantizedMatrix quantize_weights(const kernels::WeightMatrix& src, kernels::WeightFormat format,
                                          ThreadPool* pool) {
  if (format == kernels::WeightFormat::kGgmlQ6_K) return quantize_q6_k_matrix(src, pool);
  return kernels::quantize_matrix(src, format, pool);
}

kernels::WeightFormat eight_bit_companion_format(const std::string& name, kernels::WeightFormat layers) {
  if (!name.empty()) return weight_format_option(name);
  return layers == kernels::WeightFormat::kDense ? kernels::WeightFormat::kDense : kernels::WeightFormat::kQ8_0;
}

}  // namespace qvl
