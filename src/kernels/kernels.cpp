// Public kernel entry points: argument checks, instruction-set dispatch and work splitting.
// The arithmetic lives in reference.cpp (scalar), simd_hwy.cpp (Highway float kernels),
// q_avx512.cpp / q_avx2.cpp (int8 dot products) and quant.cpp (packing quantized weights).
#include "kernels/kernels.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/attention_bf16.h"
#include "kernels/quant.h"
#include "kernels/reference.h"
#include "kernels/simd.h"

namespace qvl::kernels {

// ---- instruction-set selection ---------------------------------------------------------------

namespace {

Isa detect() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  // f16c and bmi2 straight from CPUID: clang 14's __builtin_cpu_supports does not know them.
  unsigned a = 0, b = 0, c = 0, d = 0;
  const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
  const bool bmi2 = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_BMI2);
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c && bmi2;
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vnni");
  if (avx512) return Isa::kAVX512;
  if (avx2) return Isa::kAVX2;
  if (__builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("ssse3")) return Isa::kSSE4;
#endif
  return Isa::kScalar;
}

Isa env_cap() {
  const char* env = std::getenv("QVL_MAX_ISA");
  if (!env || !*env) return Isa::kAVX512;
  std::string s(env);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (Isa isa : {Isa::kScalar, Isa::kSSE4, Isa::kAVX2, Isa::kAVX512})
    if (s == isa_name(isa)) return isa;
  return Isa::kAVX512;  // unknown value: no cap
}

std::atomic<int>& active_level() {
  static std::atomic<int> level = [] {
    const Isa isa = std::min(detect(), env_cap());
    detail::hwy_limit_targets(isa);
    return static_cast<int>(isa);
  }();
  return level;
}

inline Isa current() { return static_cast<Isa>(active_level().load(std::memory_order_relaxed)); }

}  // namespace

Isa detected_isa() {
  static const Isa isa = detect();
  return isa;
}

Isa active_isa() { return current(); }

Isa set_max_isa(Isa isa) {
  static const Isa env = env_cap();
  const Isa level = std::min({detected_isa(), env, isa});
  active_level();  // make sure the one-time initialisation has run first
  detail::hwy_limit_targets(level);
  active_level().store(static_cast<int>(level));
  return level;
}

namespace detail {
int32_t act_zero_point(WeightFormat format, Isa isa) {
  switch (format) {
    case WeightFormat::kQ8_0: return isa == Isa::kAVX512 ? 128 : 0;  // AVX2 uses the sign trick
    case WeightFormat::kQ4_0: return 8;
    case WeightFormat::kGgmlIQ4_XS: return isa == Isa::kAVX512 ? 128 : 0;  // levels + 128 as u8 / sign trick
    default: return 0;
  }
}
}  // namespace detail

// ---- matmul ------------------------------------------------------------------------------------

namespace {

// Below this many multiply-adds a parallel region costs more than it saves.
constexpr int64_t kMinParallelWork = 1 << 16;

struct ActScratch {
  std::vector<int8_t> q;
  std::vector<float> d, ds;
  std::vector<int32_t> init, half_init;
};

template <class Fn>
void split(ThreadPool* pool, int64_t n, int64_t grain, int64_t work, const Fn& fn) {
  if (!pool || pool->size() <= 1 || work < kMinParallelWork || n <= grain) {
    fn(0, n);
    return;
  }
  const Fn* f = &fn;
  // Chunked: every output row is computed whole by one thread, so results do not depend on
  // the split, and a thread preempted by another process costs one chunk, not half the rows.
  pool->parallel_for_chunked(n, [f](int64_t b, int64_t e, int) { (*f)(b, e); }, grain);
}

void check_matmul_args(const float* x, int64_t m, const WeightMatrix& w, float* y) {
  if (m < 0 || w.rows < 0 || w.cols < 0) fail(ErrorKind::kInvalidArgument, "matmul: negative size");
  if (m > 0 && w.rows > 0 && (!x || !y || !w.data)) fail(ErrorKind::kInvalidArgument, "matmul: null pointer");
  if (!w.quantized() && w.dtype != DType::kF32 && w.dtype != DType::kF16 && w.dtype != DType::kBF16)
    fail(ErrorKind::kUnsupported, "matmul: unsupported weight dtype ", dtype_name(w.dtype));
}

std::atomic<MatmulObserver> g_matmul_observer{nullptr};
std::atomic<void*> g_matmul_observer_user{nullptr};

void matmul_unobserved(const float* x, int64_t m, const WeightMatrix& w, const float* bias, float* y,
                       ThreadPool* pool);
void matmul_fused_run(const float* x, int64_t m, std::span<const MatmulTarget> targets, ThreadPool* pool);
constexpr size_t kMaxFusedMatrices = 8;  // per fused region (its layouts live on the stack)

}  // namespace

void set_matmul_observer(MatmulObserver observer, void* user) {
  g_matmul_observer_user.store(user, std::memory_order_relaxed);
  g_matmul_observer.store(observer, std::memory_order_release);
}

namespace {
// Tells the observer about a call of `rows` rows of w's format and width that began at start.
void notify(MatmulObserver observer, std::chrono::steady_clock::time_point start, int64_t m, const WeightMatrix& w,
            int64_t rows, size_t weight_bytes) {
  MatmulRecord record;
  record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  record.m = m;
  record.rows = rows;
  record.cols = w.cols;
  record.format = w.format;
  record.dtype = w.dtype;
  record.weight_bytes = weight_bytes;
  observer(record, g_matmul_observer_user.load(std::memory_order_relaxed));
}
}  // namespace

void matmul(const float* x, int64_t m, const WeightMatrix& w, const float* bias, float* y, ThreadPool* pool) {
  const MatmulObserver observer = g_matmul_observer.load(std::memory_order_acquire);
  if (observer == nullptr) {
    matmul_unobserved(x, m, w, bias, y, pool);
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  matmul_unobserved(x, m, w, bias, y, pool);
  notify(observer, start, m, w, w.rows, weight_storage_bytes(w));
}

void matmul_fused(const float* x, int64_t m, std::span<const MatmulTarget> targets, ThreadPool* pool) {
  size_t i = 0;
  while (i < targets.size()) {
    const WeightMatrix& w0 = *targets[i].w;
    size_t j = i + 1;
    if (w0.quantized() && m > 0)
      while (j < targets.size() && j - i < kMaxFusedMatrices && targets[j].w->quantized() &&
             targets[j].w->format == w0.format && targets[j].w->cols == w0.cols)
        ++j;
    if (j - i == 1) {
      matmul(x, m, w0, targets[i].bias, targets[i].y, pool);
      i = j;
      continue;
    }
    const std::span<const MatmulTarget> run = targets.subspan(i, j - i);
    const MatmulObserver observer = g_matmul_observer.load(std::memory_order_acquire);
    const auto start = observer ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    matmul_fused_run(x, m, run, pool);
    if (observer != nullptr) {  // one record for the fused call: the rows of all its matrices
      int64_t rows = 0;
      size_t bytes = 0;
      for (const MatmulTarget& t : run) {
        rows += t.w->rows;
        bytes += weight_storage_bytes(*t.w);
      }
      notify(observer, start, m, w0, rows, bytes);
    }
    i = j;
  }
}

namespace {

// Rounds x to int8 blocks for matrices of layout L's format and width (the calling thread's
// scratch: valid until its next call).
detail::QActs round_activations(const float* x, int64_t m, const detail::QLayout& L, Isa isa, ThreadPool* pool) {
  const int64_t k = L.cols;
  const int32_t zp = detail::act_zero_point(L.format, isa);
  thread_local ActScratch s;
  const size_t nq = static_cast<size_t>(m * k), nbk = static_cast<size_t>(m * L.nb);
  if (s.q.size() < nq) s.q.resize(nq);
  if (s.d.size() < nbk) {
    s.d.resize(nbk);
    s.ds.resize(nbk);
    s.init.resize(nbk);
  }
  // Pointers, not `s`: a lambda naming a thread_local would use the worker's own instance.
  int8_t* const xq = s.q.data();
  float* const xd = s.d.data();
  float* const xds = s.ds.data();
  int32_t* const xinit = s.init.data();
  auto quantize_rows = [&](int64_t i0, int64_t i1) {
    const size_t qo = static_cast<size_t>(i0 * k), bo = static_cast<size_t>(i0 * L.nb);
    if (isa == Isa::kScalar)
      detail::quantize_acts_scalar(x + qo, i1 - i0, k, zp, xq + qo, xd + bo, xinit + bo, xds + bo);
    else
      detail::quantize_acts_simd(x + qo, i1 - i0, k, zp, xq + qo, xd + bo, xinit + bo, xds + bo);
  };
  split(pool, m, 1, m * k * 64, quantize_rows);
  const int32_t* half_init = nullptr;
  if (L.format == WeightFormat::kGgmlQ6_K) {
    if (s.half_init.size() < 2 * nbk) s.half_init.resize(2 * nbk);
    detail::q6_half_init(xq, m, k, s.half_init.data());
    half_init = s.half_init.data();
  }
  return detail::QActs{xq, xd, xinit, xds, half_init, m, k, L.nb};
}

void run_groups(Isa isa, const detail::QLayout& L, const uint8_t* data, const detail::QActs& a, const float* bias,
                float* y, int64_t g0, int64_t g1) {
  switch (isa) {
    case Isa::kAVX512: detail::qmatmul_avx512(L, data, a, bias, y, g0, g1); break;
    case Isa::kAVX2: detail::qmatmul_avx2(L, data, a, bias, y, g0, g1); break;
    default: detail::qmatmul_scalar(L, data, a, bias, y, g0, g1); break;
  }
}

void matmul_unobserved(const float* x, int64_t m, const WeightMatrix& w, const float* bias, float* y,
                       ThreadPool* pool) {
  check_matmul_args(x, m, w, y);
  if (m == 0 || w.rows == 0) return;
  const Isa isa = current();
  const int64_t n = w.rows, k = w.cols, work = m * n * k;

  if (!w.quantized()) {
    if (k == 0) {
      for (int64_t i = 0; i < m; ++i)
        for (int64_t r = 0; r < n; ++r) y[i * n + r] = bias ? bias[r] : 0.0f;
      return;
    }
    if (isa == Isa::kScalar) {
      split(pool, n, 16, work, [&](int64_t r0, int64_t r1) { detail::dense_matmul_scalar(w, x, m, bias, y, r0, r1); });
    } else if (m == 1) {
      split(pool, n, 16, work, [&](int64_t r0, int64_t r1) { detail::dense_matvec_simd(w, x, bias, y, r0, r1); });
    } else {
      const int64_t panel = detail::dense_gemm_panel_rows();
      split(pool, n, panel, work, [&](int64_t r0, int64_t r1) { detail::dense_gemm_simd(w, x, m, bias, y, r0, r1); });
    }
    return;
  }

  const detail::QLayout L = detail::q_layout(w.format, n, k);
  const detail::QActs a = round_activations(x, m, L, isa, pool);
  const auto* data = static_cast<const uint8_t*>(w.data);
  split(pool, L.groups, 2, work, [&](int64_t g0, int64_t g1) { run_groups(isa, L, data, a, bias, y, g0, g1); });
}

// Quantized matrices of one format and width over the same activations: one rounding of x and
// one region over the row groups of all of them, in order.
void matmul_fused_run(const float* x, int64_t m, std::span<const MatmulTarget> targets, ThreadPool* pool) {
  const Isa isa = current();
  QVL_ASSERT(!targets.empty() && targets.size() <= kMaxFusedMatrices);
  detail::QLayout layouts[kMaxFusedMatrices];
  int64_t first_group[kMaxFusedMatrices + 1] = {0};
  int64_t work = 0;
  for (size_t t = 0; t < targets.size(); ++t) {
    const WeightMatrix& w = *targets[t].w;
    check_matmul_args(x, m, w, targets[t].y);
    layouts[t] = detail::q_layout(w.format, w.rows, w.cols);
    first_group[t + 1] = first_group[t] + layouts[t].groups;
    work += m * w.rows * w.cols;
  }
  const detail::QActs a = round_activations(x, m, layouts[0], isa, pool);
  split(pool, first_group[targets.size()], 2, work, [&](int64_t g0, int64_t g1) {
    for (size_t t = 0; t < targets.size(); ++t) {
      const int64_t b = std::max(g0, first_group[t]) - first_group[t];
      const int64_t e = std::min(g1, first_group[t + 1]) - first_group[t];
      if (b < e)
        run_groups(isa, layouts[t], static_cast<const uint8_t*>(targets[t].w->data), a, targets[t].bias,
                   targets[t].y, b, e);
    }
  });
}

}  // namespace

void gather_row(const WeightMatrix& w, int64_t row, float* out) {
  if (row < 0 || row >= w.rows) fail(ErrorKind::kInvalidArgument, "gather_row: row ", row, " out of range [0, ", w.rows, ")");
  if (w.quantized() || current() == Isa::kScalar) {
    ref::gather_row(w, row, out);
    return;
  }
  const size_t es = dtype_size(w.dtype);
  detail::convert_row_simd(w.dtype, static_cast<const char*>(w.data) + static_cast<size_t>(row * w.cols) * es, out,
                           w.cols);
}

// ---- element-wise, normalisation, attention ------------------------------------------------

void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  if (current() == Isa::kScalar) return ref::rms_norm(x, weight, n, eps, out);
  detail::rms_norm_simd(x, weight, n, eps, out);
}

void layer_norm(const float* x, const float* weight, const float* bias, int64_t n, float eps, float* out) {
  if (current() == Isa::kScalar) return ref::layer_norm(x, weight, bias, n, eps, out);
  detail::layer_norm_simd(x, weight, bias, n, eps, out);
}

void silu_mul(float* gate, const float* up, int64_t n) {
  if (current() == Isa::kScalar) return ref::silu_mul(gate, up, n);
  detail::silu_mul_simd(gate, up, n);
}

void gelu_tanh(float* x, int64_t n) {
  if (current() == Isa::kScalar) return ref::gelu_tanh(x, n);
  detail::gelu_tanh_simd(x, n);
}

void gelu_erf(float* x, int64_t n) {
  if (current() == Isa::kScalar) return ref::gelu_erf(x, n);
  detail::gelu_erf_simd(x, n);
}

void add(float* x, const float* y, int64_t n) {
  if (current() == Isa::kScalar) return ref::add(x, y, n);
  detail::add_simd(x, y, n);
}

void rope_rotate_half(float* x, const float* cos, const float* sin, int64_t half) {
  if (current() == Isa::kScalar) return ref::rope_rotate_half(x, cos, sin, half);
  detail::rope_rotate_half_simd(x, cos, sin, half);
}

// ---- quantized matrices ------------------------------------------------------------------------

size_t weight_storage_bytes(WeightFormat format, DType dtype, int64_t rows, int64_t cols) {
  if (format == WeightFormat::kDense) return static_cast<size_t>(rows * cols) * dtype_size(dtype);
  return detail::q_layout(format, rows, cols).total_bytes();
}

void QuantizedMatrix::Free::operator()(uint8_t* p) const { ::operator delete(p, std::align_val_t(64)); }

QuantizedMatrix QuantizedMatrix::uninitialized(size_t bytes) {
  QuantizedMatrix out;
  out.size_ = bytes;
  out.buffer_.reset(static_cast<uint8_t*>(::operator new(bytes, std::align_val_t(64))));
  return out;
}

namespace {
// Row group g of a packed buffer, zeroed: the bytes a packer does not write (the padding after a
// group's last region) are zero whatever the buffer held.
uint8_t* zeroed_group(const detail::QLayout& L, uint8_t* data, int64_t g) {
  uint8_t* grp = data + static_cast<size_t>(g) * L.group_bytes;
  std::memset(grp, 0, L.group_bytes);
  return grp;
}
}  // namespace

QuantizedMatrix quantize_matrix(const WeightMatrix& src, WeightFormat format, ThreadPool* pool) {
  if (format == WeightFormat::kDense)
    fail(ErrorKind::kInvalidArgument, "quantize_matrix: the target format must be a quantized one");
  if (!src.data) fail(ErrorKind::kInvalidArgument, "quantize_matrix: matrix has no data");
  if (detail::is_ggml_k_format(format))
    fail(ErrorKind::kInvalidArgument, "quantize_matrix: ", weight_format_name(format),
         " holds ggml's own blocks and is only packed from them (pack_ggml_k_blocks)");
  if (!src.quantized() && src.dtype != DType::kF32 && src.dtype != DType::kF16 && src.dtype != DType::kBF16)
    fail(ErrorKind::kUnsupported, "quantize_matrix: cannot quantize ", dtype_name(src.dtype), " weights");
  const detail::QLayout L = detail::q_layout(format, src.rows, src.cols);  // validates the shape

  QuantizedMatrix out = QuantizedMatrix::uninitialized(L.total_bytes());
  uint8_t* data = out.buffer_.get();

  auto work = [&](int64_t g0, int64_t g1, int) {
    std::vector<float> rows(static_cast<size_t>(detail::kGroupRows * L.cols));
    for (int64_t g = g0; g < g1; ++g) {
      std::fill(rows.begin(), rows.end(), 0.0f);
      for (int64_t r = 0; r < detail::kGroupRows; ++r) {
        const int64_t row = g * detail::kGroupRows + r;
        if (row < L.rows) gather_row(src, row, rows.data() + r * L.cols);
      }
      uint8_t* grp = zeroed_group(L, data, g);
      detail::quantize_group(L, rows.data(), grp);
    }
  };
  if (pool) pool->parallel_for(L.groups, work);
  else work(0, L.groups, 0);

  out.view_ = WeightMatrix{DType::kU8, src.rows, src.cols, data, format};
  return out;
}

QuantizedMatrix pack_quantized_blocks(WeightFormat format, int64_t rows, int64_t cols,
                                      FunctionRef<void(int64_t, uint16_t*, uint8_t*)> row_source, ThreadPool* pool) {
  if (format != WeightFormat::kQ8_0 && format != WeightFormat::kQ4_0)
    fail(ErrorKind::kInvalidArgument, "pack_quantized_blocks: only q8_0 and q4_0 blocks can be packed as they are");
  const detail::QLayout L = detail::q_layout(format, rows, cols);  // validates the shape
  QuantizedMatrix out = QuantizedMatrix::uninitialized(L.total_bytes());
  uint8_t* data = out.buffer_.get();
  auto work = [&](int64_t g0, int64_t g1, int) {
    std::vector<uint16_t> scales(static_cast<size_t>(detail::kGroupRows * L.nb));
    std::vector<uint8_t> codes(static_cast<size_t>(detail::kGroupRows * L.cols));
    for (int64_t g = g0; g < g1; ++g) {
      std::fill(scales.begin(), scales.end(), uint16_t{0});
      // Rows past the end are zero weights: code 128 (Q8_0) or 8 (Q4_0) with scale 0.
      std::fill(codes.begin(), codes.end(), format == WeightFormat::kQ8_0 ? uint8_t{128} : uint8_t{8});
      for (int64_t r = 0; r < detail::kGroupRows; ++r) {
        const int64_t row = g * detail::kGroupRows + r;
        if (row < rows) row_source(row, scales.data() + r * L.nb, codes.data() + r * L.cols);
      }
      detail::pack_group(L, scales.data(), codes.data(), zeroed_group(L, data, g));
    }
  };
  if (pool) pool->parallel_for(L.groups, work);
  else work(0, L.groups, 0);
  out.view_ = WeightMatrix{DType::kU8, rows, cols, data, format};
  return out;
}

QuantizedMatrix pack_ggml_k_blocks(WeightFormat format, int64_t rows, int64_t cols,
                                   FunctionRef<void(int64_t, const GgmlKRow&)> row_source, ThreadPool* pool) {
  if (!detail::is_ggml_k_format(format))
    fail(ErrorKind::kInvalidArgument, "pack_ggml_k_blocks: ", weight_format_name(format), " is not one of ggml's formats");
  const detail::QLayout L = detail::q_layout(format, rows, cols);  // validates the shape
  QuantizedMatrix out = QuantizedMatrix::uninitialized(L.total_bytes());
  uint8_t* data = out.buffer_.get();
  const bool q6 = format == WeightFormat::kGgmlQ6_K;
  const size_t nsb = static_cast<size_t>(L.nsb), nsc = static_cast<size_t>(q6 ? cols / 16 : cols / 32);
  auto work = [&](int64_t g0, int64_t g1, int) {
    // One buffer for the 16 rows' arrays; rows past the end stay zero (weight 0: every scale 0).
    std::vector<uint16_t> d(detail::kGroupRows * nsb), dmin(detail::kGroupRows * nsb);
    std::vector<uint8_t> sc(detail::kGroupRows * nsc), mn(detail::kGroupRows * nsc);
    std::vector<uint8_t> codes(static_cast<size_t>(detail::kGroupRows * cols));
    GgmlKRow group[detail::kGroupRows];
    for (int64_t r = 0; r < detail::kGroupRows; ++r)
      group[r] = GgmlKRow{d.data() + r * nsb, dmin.data() + r * nsb, sc.data() + r * nsc, mn.data() + r * nsc,
                          codes.data() + r * cols};
    for (int64_t g = g0; g < g1; ++g) {
      std::fill(d.begin(), d.end(), uint16_t{0});
      std::fill(dmin.begin(), dmin.end(), uint16_t{0});
      std::fill(sc.begin(), sc.end(), uint8_t{0});
      std::fill(mn.begin(), mn.end(), uint8_t{0});
      std::fill(codes.begin(), codes.end(), uint8_t{0});
      for (int64_t r = 0; r < detail::kGroupRows; ++r) {
        const int64_t row = g * detail::kGroupRows + r;
        if (row < rows) row_source(row, group[r]);
      }
      detail::pack_k_group(L, group, zeroed_group(L, data, g));
    }
  };
  if (pool) pool->parallel_for(L.groups, work);
  else work(0, L.groups, 0);
  out.view_ = WeightMatrix{DType::kU8, rows, cols, data, format};
  return out;
}

void dequantize_matrix(const WeightMatrix& w, float* out, ThreadPool* pool) {
  auto work = [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) ref::gather_row(w, r, out + r * w.cols);
  };
  if (pool) pool->parallel_for(w.rows, work, 16);
  else work(0, w.rows, 0);
}

// ---- KV rows and attention ----------------------------------------------------------------

void store_kv_row(const float* src, int64_t n, KvType t, void* dst) {
  kv_bytes(t, n);  // validates n for the type
  if (current() == Isa::kScalar) return ref::store_kv_row(src, n, t, dst);
  detail::store_kv_row_simd(src, n, t, dst);
}

void load_kv_row(const void* src, int64_t n, KvType t, float* dst) {
  kv_bytes(t, n);
  ref::load_kv_row(src, n, t, dst);  // tests and tools only: attention converts in registers
}

void attention(const float* q, const void* k, const void* v, float* out, const AttentionShape& s) {
  if (s.q_len < 0 || s.kv_len < 0 || s.head_dim < 0 || s.q_heads < 0)
    fail(ErrorKind::kInvalidArgument, "attention: negative size");
  if (s.kv_type == KvType::kQ8_0 &&
      (s.head_dim % kKvBlock != 0 || s.k_stride % kKvBlock != 0 || s.v_stride % kKvBlock != 0))
    fail(ErrorKind::kInvalidArgument, "attention: q8_0 K/V need head_dim and row strides that are multiples of ",
         kKvBlock, " (head_dim ", s.head_dim, ", strides ", s.k_stride, ", ", s.v_stride, ")");
  if (current() == Isa::kScalar) return ref::attention(q, k, v, out, s);
  detail::attention_simd(q, k, v, out, s);
}

// ---- bf16 attention ---------------------------------------------------------------------------

namespace {

bool bf16_head_dim_ok(int64_t head_dim) { return head_dim >= 1 && head_dim <= kMaxBf16AttentionHeadDim; }

bool has_avx512_bf16() {
  static const bool yes = detail::cpu_has_avx512_bf16();
  return yes;
}

}  // namespace

size_t attention_bf16_packed_elems(int64_t kv_len, int64_t head_dim) {
  if (kv_len < 0 || !bf16_head_dim_ok(head_dim))
    fail(ErrorKind::kInvalidArgument, "attention_bf16: kv_len ", kv_len, " / head_dim ", head_dim,
         " out of range (head_dim 1..", kMaxBf16AttentionHeadDim, ")");
  return detail::bf16_kv_layout(kv_len, head_dim).elems();
}

void pack_attention_kv_bf16(const float* k, int64_t k_stride, const float* v, int64_t v_stride, int64_t kv_len,
                            int64_t head_dim, uint16_t* packed) {
  attention_bf16_packed_elems(kv_len, head_dim);  // validates
  if (kv_len > 0 && (!k || !v || !packed)) fail(ErrorKind::kInvalidArgument, "pack_attention_kv_bf16: null pointer");
  ref::pack_attention_kv_bf16(k, k_stride, v, v_stride, kv_len, head_dim, packed);
}

bool attention_bf16_native() { return current() == Isa::kAVX512 && has_avx512_bf16(); }

bool attention_bf16_preferred() { return attention_bf16_native() || current() == Isa::kAVX2; }

void attention_bf16(const float* q, const uint16_t* packed_kv, float* out, const AttentionShape& s) {
  if (s.q_len < 0 || s.kv_len < 0) fail(ErrorKind::kInvalidArgument, "attention_bf16: negative size");
  if (!bf16_head_dim_ok(s.head_dim))
    fail(ErrorKind::kInvalidArgument, "attention_bf16: head_dim ", s.head_dim, " out of range 1..",
         kMaxBf16AttentionHeadDim);
  if (s.causal || s.q_heads > 1 || s.kv_type != KvType::kF32)
    fail(ErrorKind::kInvalidArgument, "attention_bf16: one head, not causal, f32 inputs only");
  if (s.q_len == 0) return;
  switch (current()) {
    case Isa::kAVX512:
      if (has_avx512_bf16()) return detail::attention_bf16_avx512(q, packed_kv, out, s);
      return detail::attention_bf16_avx2(q, packed_kv, out, s);
    case Isa::kAVX2: return detail::attention_bf16_avx2(q, packed_kv, out, s);
    default: return ref::attention_bf16(q, packed_kv, out, s);
  }
}

}  // namespace qvl::kernels
