// Names and size rules of the kernel vocabulary (types.h).
#include "kernels/types.h"

#include <cctype>
#include <string>

#include "core/check.h"

namespace qvl::kernels {

std::string_view weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::kDense: return "dense";
    case WeightFormat::kQ8_0: return "q8_0";
    case WeightFormat::kQ4_0: return "q4_0";
    case WeightFormat::kQ4_K: return "q4_k";
    case WeightFormat::kGgmlQ4_K: return "ggml_q4_k";
    case WeightFormat::kGgmlQ6_K: return "ggml_q6_k";
    case WeightFormat::kGgmlQ5_K: return "ggml_q5_k";
    case WeightFormat::kGgmlIQ4_XS: return "ggml_iq4_xs";
  }
  return "?";
}

WeightFormat parse_weight_format(std::string_view name) {
  std::string s(name);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (WeightFormat f : {WeightFormat::kDense, WeightFormat::kQ8_0, WeightFormat::kQ4_0, WeightFormat::kQ4_K})
    if (s == weight_format_name(f)) return f;
  fail(ErrorKind::kInvalidArgument, "unknown weight format '", name, "' (expected q8_0, q4_0, q4_k or dense)");
}

bool can_quantize(WeightFormat format, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return false;
  if (format == WeightFormat::kDense) return false;
  return cols % kQuantBlock == 0;
}

std::string_view kv_type_name(KvType t) {
  switch (t) {
    case KvType::kF32: return "f32";
    case KvType::kF16: return "f16";
    case KvType::kQ8_0: return "q8_0";
  }
  return "?";
}

KvType parse_kv_type(std::string_view name) {
  std::string s(name);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (KvType t : {KvType::kF32, KvType::kF16, KvType::kQ8_0})
    if (s == kv_type_name(t)) return t;
  fail(ErrorKind::kInvalidArgument, "unknown KV cache type '", name, "' (expected f16, f32 or q8_0)");
}

std::string_view attention_precision_name(AttentionPrecision p) {
  return p == AttentionPrecision::kBF16 ? "bf16" : "f32";
}

AttentionPrecision parse_attention_precision(std::string_view name) {
  std::string s(name);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (AttentionPrecision p : {AttentionPrecision::kF32, AttentionPrecision::kBF16})
    if (s == attention_precision_name(p)) return p;
  fail(ErrorKind::kInvalidArgument, "unknown attention precision '", name, "' (expected bf16 or f32)");
}

bool kv_type_fits(KvType t, int64_t head_dim) {
  return head_dim > 0 && (t != KvType::kQ8_0 || head_dim % kKvBlock == 0);
}

size_t kv_bytes(KvType t, int64_t n) {
  if (n < 0) fail(ErrorKind::kInvalidArgument, "kv_bytes: negative count ", n);
  switch (t) {
    case KvType::kF32: return static_cast<size_t>(n) * 4;
    case KvType::kF16: return static_cast<size_t>(n) * 2;
    case KvType::kQ8_0:
      if (n % kKvBlock != 0)
        fail(ErrorKind::kInvalidArgument, "q8_0 KV rows hold whole blocks of ", kKvBlock, " elements, not ", n);
      return static_cast<size_t>(n / kKvBlock) * (4 + kKvBlock);
  }
  fail(ErrorKind::kInvalidArgument, "unknown KV type ", static_cast<int>(t));
}

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kSSE4: return "sse4";
    case Isa::kAVX2: return "avx2";
    case Isa::kAVX512: return "avx512";
  }
  return "?";
}

std::string weight_type_name(WeightFormat format, DType dtype) {
  if (format != WeightFormat::kDense) return std::string(weight_format_name(format));
  std::string out(dtype_name(dtype));
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace qvl::kernels
