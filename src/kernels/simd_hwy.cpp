// Float kernels with Highway dynamic dispatch (AVX-512, AVX2, SSE4, SSSE3 and scalar targets
// compiled from this one source; the best one the CPU supports and set_max_isa allows runs).
// Nothing here uses std templates inside the per-target code, so no instantiation compiled for
// one target can leak into code that runs on a weaker CPU.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/quant.h"
#include "kernels/simd.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/simd_hwy.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

#ifndef QVL_KERNELS_SIMD_HWY_ONCE
#define QVL_KERNELS_SIMD_HWY_ONCE
namespace qvl::kernels::detail {
// Thread-local scratch shared by all targets (plain buffers; grown, never shrunk).
struct HwyScratch {
  std::vector<float> a, b, c;
};
inline HwyScratch& hwy_scratch() {
  thread_local HwyScratch s;
  return s;
}
inline float* grow(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}
// grow() whose result is 64-byte aligned (for aligned vector loads).
inline float* grow_aligned(std::vector<float>& v, size_t n) {
  const auto p = reinterpret_cast<uintptr_t>(grow(v, n + 16));
  return reinterpret_cast<float*>((p + 63) & ~uintptr_t{63});
}
}  // namespace qvl::kernels::detail
#endif

HWY_BEFORE_NAMESPACE();
namespace qvl::kernels::detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// ---- loading weights of any float dtype as fp32 vectors --------------------------------------
struct LoadF32 {
  static constexpr size_t kSize = 4;
  static HWY_INLINE VF load(DF df, const void* base, int64_t i) {
    return hn::LoadU(df, static_cast<const float*>(base) + i);
  }
  static HWY_INLINE float scalar(const void* base, int64_t i) { return static_cast<const float*>(base)[i]; }
};
struct LoadBF16 {
  static constexpr size_t kSize = 2;
  static HWY_INLINE VF load(DF df, const void* base, int64_t i) {
    const hn::Rebind<hwy::bfloat16_t, DF> dbf;
    return hn::PromoteTo(df, hn::LoadU(dbf, static_cast<const hwy::bfloat16_t*>(base) + i));
  }
  static HWY_INLINE float scalar(const void* base, int64_t i) {
    return bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
  }
};
struct LoadF16 {
  static constexpr size_t kSize = 2;
  static HWY_INLINE VF load(DF df, const void* base, int64_t i) {
    const hn::Rebind<hwy::float16_t, DF> dh;
    return hn::PromoteTo(df, hn::LoadU(dh, static_cast<const hwy::float16_t*>(base) + i));
  }
  static HWY_INLINE float scalar(const void* base, int64_t i) {
    return f16_to_f32(static_cast<const uint16_t*>(base)[i]);
  }
};

template <class L>
HWY_INLINE void ConvertRowT(const void* src, float* dst, int64_t n) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(L::load(df, src, i), df, dst + i);
  for (; i < n; ++i) dst[i] = L::scalar(src, i);
}

void ConvertRow(DType t, const void* src, float* dst, int64_t n) {
  switch (t) {
    case DType::kF32: ConvertRowT<LoadF32>(src, dst, n); return;
    case DType::kBF16: ConvertRowT<LoadBF16>(src, dst, n); return;
    case DType::kF16: ConvertRowT<LoadF16>(src, dst, n); return;
    default: convert_to_f32(t, src, dst, static_cast<size_t>(n)); return;  // throws
  }
}

// ---- dense matvec (m == 1) ---------------------------------------------------------------
// Four rows at a time; the next four rows' lines at the same columns are prefetched into L2 as the
// current ones are read, so more misses stay in flight than the hardware prefetcher keeps for five
// streams (kernel_bench matvec 2560to9728, two AVX2 cores: bf16 and f16 2.1-2.6 -> 1.1-1.5 ms;
// f32 unchanged).
template <class L>
HWY_INLINE void MatvecT(const void* wdata, int64_t k, const float* x, const float* bias, float* y, int64_t r0,
                        int64_t r1) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t kv = k / N * N;
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) {
    const int64_t o0 = r * k, o1 = o0 + k, o2 = o1 + k, o3 = o2 + k;
    VF a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
    const char* next = static_cast<const char*>(wdata) + static_cast<size_t>(o0 + 4 * k) * L::kSize;
    for (int64_t c = 0; c < kv; c += N) {
      if ((c * L::kSize) % 64 == 0)  // once per cache line of each row; 2 = prefetcht1
        for (int64_t q = 0; q < 4; ++q) __builtin_prefetch(next + static_cast<size_t>(q * k + c) * L::kSize, 0, 2);
      const VF xv = hn::LoadU(df, x + c);
      a0 = hn::MulAdd(L::load(df, wdata, o0 + c), xv, a0);
      a1 = hn::MulAdd(L::load(df, wdata, o1 + c), xv, a1);
      a2 = hn::MulAdd(L::load(df, wdata, o2 + c), xv, a2);
      a3 = hn::MulAdd(L::load(df, wdata, o3 + c), xv, a3);
    }
    float s0 = hn::GetLane(hn::SumOfLanes(df, a0)), s1 = hn::GetLane(hn::SumOfLanes(df, a1));
    float s2 = hn::GetLane(hn::SumOfLanes(df, a2)), s3 = hn::GetLane(hn::SumOfLanes(df, a3));
    for (int64_t c = kv; c < k; ++c) {
      s0 += L::scalar(wdata, o0 + c) * x[c];
      s1 += L::scalar(wdata, o1 + c) * x[c];
      s2 += L::scalar(wdata, o2 + c) * x[c];
      s3 += L::scalar(wdata, o3 + c) * x[c];
    }
    y[r] = s0 + (bias ? bias[r] : 0.0f);
    y[r + 1] = s1 + (bias ? bias[r + 1] : 0.0f);
    y[r + 2] = s2 + (bias ? bias[r + 2] : 0.0f);
    y[r + 3] = s3 + (bias ? bias[r + 3] : 0.0f);
  }
  for (; r < r1; ++r) {
    const int64_t o = r * k;
    VF a = hn::Zero(df);
    for (int64_t c = 0; c < kv; c += N) a = hn::MulAdd(L::load(df, wdata, o + c), hn::LoadU(df, x + c), a);
    float s = hn::GetLane(hn::SumOfLanes(df, a));
    for (int64_t c = kv; c < k; ++c) s += L::scalar(wdata, o + c) * x[c];
    y[r] = s + (bias ? bias[r] : 0.0f);
  }
}

void DenseMatvec(const WeightMatrix& w, const float* x, const float* bias, float* y, int64_t r0, int64_t r1) {
  switch (w.dtype) {
    case DType::kF32: MatvecT<LoadF32>(w.data, w.cols, x, bias, y, r0, r1); return;
    case DType::kBF16: MatvecT<LoadBF16>(w.data, w.cols, x, bias, y, r0, r1); return;
    case DType::kF16: MatvecT<LoadF16>(w.data, w.cols, x, bias, y, r0, r1); return;
    default: convert_to_f32(w.dtype, nullptr, nullptr, 0); return;  // throws kUnsupported
  }
}

// ---- dense GEMM (m > 1) ------------------------------------------------------------------
// Panels of NR = 2 vectors of W rows are converted to fp32 and transposed ([kc][NR]) in
// K-blocks of kKc columns; an MR × NR tile of y is kept in registers over each K-block.
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr bool kWideRegisterFile = true;  // 32 vector registers
#else
constexpr bool kWideRegisterFile = false;  // 16
#endif
// Rows of x per register tile: 12 accumulators + 2 weight vectors + 1 broadcast fit in 16
// registers; with 32, 24 accumulators halve the weight loads per FMA.
constexpr int kMR = kWideRegisterFile ? 12 : 6;
constexpr int64_t kKc = 256;
constexpr int64_t kPanels = 8;  // panels packed per K-block (AVX2: 8 × 256 × 16 floats = 128 KB)

int64_t PanelRows() { return 2 * static_cast<int64_t>(hn::Lanes(DF())); }

template <int MR>
HWY_INLINE void GemmTile(const float* x, int64_t ldx, const float* bp, int64_t kc, float* c, int64_t ldc,
                         bool first) {
  const DF df;
  const size_t N = hn::Lanes(df);
  VF acc0[MR], acc1[MR];
  for (int i = 0; i < MR; ++i) {
    if (first) {
      acc0[i] = hn::Zero(df);
      acc1[i] = hn::Zero(df);
    } else {
      acc0[i] = hn::LoadU(df, c + i * ldc);
      acc1[i] = hn::LoadU(df, c + i * ldc + N);
    }
  }
  for (int64_t kk = 0; kk < kc; ++kk) {
    const VF b0 = hn::LoadU(df, bp + kk * 2 * N);
    const VF b1 = hn::LoadU(df, bp + kk * 2 * N + N);
    for (int i = 0; i < MR; ++i) {
      const VF xv = hn::Set(df, x[i * ldx + kk]);
      acc0[i] = hn::MulAdd(xv, b0, acc0[i]);
      acc1[i] = hn::MulAdd(xv, b1, acc1[i]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    hn::StoreU(acc0[i], df, c + i * ldc);
    hn::StoreU(acc1[i], df, c + i * ldc + N);
  }
}

template <int MR>
HWY_INLINE void GemmTileDispatch(int mr, const float* x, int64_t ldx, const float* bp, int64_t kc, float* c,
                                 int64_t ldc, bool first) {
  if constexpr (MR > 0) {
    if (mr == MR) return GemmTile<MR>(x, ldx, bp, kc, c, ldc, first);
    return GemmTileDispatch<MR - 1>(mr, x, ldx, bp, kc, c, ldc, first);
  }
}

template <class L>
HWY_INLINE void GemmT(const WeightMatrix& w, const float* x, int64_t m, const float* bias, float* y, int64_t r0,
                      int64_t r1) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df)), NR = 2 * N;
  const int64_t n = w.rows, k = w.cols;
  HwyScratch& s = hwy_scratch();
  float* packed = grow(s.a, static_cast<size_t>(kPanels * kKc * NR));
  float* rowbuf = grow(s.b, static_cast<size_t>(kKc));
  float* ctile = grow(s.c, static_cast<size_t>(kMR * NR));
  // kPanels panels are packed per K-block and each MR-row slice of x is used for all of them while
  // it is in L1: x (m × kc) is swept once per kPanels panels instead of once per panel. Every
  // output still sums its K-blocks and its columns in the same order (results do not change).
  for (int64_t q0 = r0; q0 < r1; q0 += kPanels * NR) {
    const int64_t q1 = std::min(r1, q0 + kPanels * NR);
    const int64_t panels = (q1 - q0 + NR - 1) / NR;
    for (int64_t k0 = 0; k0 < k; k0 += kKc) {
      const int64_t kc = std::min(kKc, k - k0);
      for (int64_t p = 0; p < panels; ++p) {
        const int64_t p0 = q0 + p * NR, nr = std::min(NR, q1 - p0);
        float* panel = packed + p * kKc * NR;
        for (int64_t j = 0; j < NR; ++j) {
          if (j < nr) {
            ConvertRowT<L>(static_cast<const char*>(w.data) + static_cast<size_t>((p0 + j) * k + k0) * L::kSize,
                           rowbuf, kc);
            for (int64_t kk = 0; kk < kc; ++kk) panel[kk * NR + j] = rowbuf[kk];
          } else {
            for (int64_t kk = 0; kk < kc; ++kk) panel[kk * NR + j] = 0.0f;
          }
        }
      }
      const bool first = k0 == 0;
      for (int64_t i0 = 0; i0 < m; i0 += kMR) {
        const int mr = static_cast<int>(std::min<int64_t>(kMR, m - i0));
        for (int64_t p = 0; p < panels; ++p) {
          const int64_t p0 = q0 + p * NR, nr = std::min(NR, q1 - p0);
          const float* panel = packed + p * kKc * NR;
          if (nr == NR) {
            GemmTileDispatch<kMR>(mr, x + i0 * k + k0, k, panel, kc, y + i0 * n + p0, n, first);
          } else {
            if (!first)
              for (int i = 0; i < mr; ++i)
                for (int64_t j = 0; j < nr; ++j) ctile[i * NR + j] = y[(i0 + i) * n + p0 + j];
            GemmTileDispatch<kMR>(mr, x + i0 * k + k0, k, panel, kc, ctile, NR, first);
            for (int i = 0; i < mr; ++i)
              for (int64_t j = 0; j < nr; ++j) y[(i0 + i) * n + p0 + j] = ctile[i * NR + j];
          }
        }
      }
    }
    if (bias)
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = q0; j < q1; ++j) y[i * n + j] += bias[j];
  }
}

void DenseGemm(const WeightMatrix& w, const float* x, int64_t m, const float* bias, float* y, int64_t r0,
               int64_t r1) {
  switch (w.dtype) {
    case DType::kF32: GemmT<LoadF32>(w, x, m, bias, y, r0, r1); return;
    case DType::kBF16: GemmT<LoadBF16>(w, x, m, bias, y, r0, r1); return;
    case DType::kF16: GemmT<LoadF16>(w, x, m, bias, y, r0, r1); return;
    default: convert_to_f32(w.dtype, nullptr, nullptr, 0); return;  // throws kUnsupported
  }
}

// ---- activation rounding to int8 (bit-identical to quantize_acts_scalar) ------------------
void QuantizeActs(const float* x, int64_t m, int64_t k, int32_t zero_point, int8_t* q, float* d, int32_t* init,
                  float* ds) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<int8_t, DF> d8;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t nb = k / kBlock;
  const auto lo = hn::Set(di, -127), hi = hn::Set(di, 127);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t b = 0; b < nb; ++b) {
      const float* xb = x + i * k + b * kBlock;
      int8_t* qb = q + i * k + b * kBlock;
      VF vmax = hn::Zero(df);
      for (int64_t c = 0; c < kBlock; c += N) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, xb + c)));
      const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
      const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
      const VF vid = hn::Set(df, id);
      auto vsum = hn::Zero(di);
      for (int64_t c = 0; c < kBlock; c += N) {
        auto qi = hn::NearestInt(hn::Mul(hn::LoadU(df, xb + c), vid));
        qi = hn::Min(hn::Max(qi, lo), hi);
        vsum = hn::Add(vsum, qi);
        hn::StoreU(hn::DemoteTo(d8, qi), d8, qb + c);
      }
      const int32_t sum = hn::GetLane(hn::SumOfLanes(di, vsum));
      const float db = amax / 127.0f;
      d[i * nb + b] = db;
      init[i * nb + b] = -zero_point * sum;
      ds[i * nb + b] = db * static_cast<float>(sum);
    }
  }
}

// ---- normalisation and element-wise ------------------------------------------------------
HWY_INLINE float SumSquares(const float* x, int64_t n, int64_t* done) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  VF a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    const VF x0 = hn::LoadU(df, x + i), x1 = hn::LoadU(df, x + i + N);
    const VF x2 = hn::LoadU(df, x + i + 2 * N), x3 = hn::LoadU(df, x + i + 3 * N);
    a0 = hn::MulAdd(x0, x0, a0);
    a1 = hn::MulAdd(x1, x1, a1);
    a2 = hn::MulAdd(x2, x2, a2);
    a3 = hn::MulAdd(x3, x3, a3);
  }
  for (; i + N <= n; i += N) {
    const VF x0 = hn::LoadU(df, x + i);
    a0 = hn::MulAdd(x0, x0, a0);
  }
  *done = i;
  return hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
}

void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  int64_t i0;
  double ss = SumSquares(x, n, &i0);
  for (int64_t i = i0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float inv = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
  const VF vinv = hn::Set(df, inv);
  int64_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::Mul(hn::LoadU(df, weight + i), hn::Mul(hn::LoadU(df, x + i), vinv)), df, out + i);
  for (; i < n; ++i) out[i] = weight[i] * (x[i] * inv);
}

void LayerNorm(const float* x, const float* weight, const float* bias, int64_t n, float eps, float* out) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  VF s0 = hn::Zero(df), s1 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    s0 = hn::Add(s0, hn::LoadU(df, x + i));
    s1 = hn::Add(s1, hn::LoadU(df, x + i + N));
  }
  for (; i + N <= n; i += N) s0 = hn::Add(s0, hn::LoadU(df, x + i));
  double sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(s0, s1)));
  for (; i < n; ++i) sum += x[i];
  const float mu = static_cast<float>(sum / static_cast<double>(n));
  const VF vmu = hn::Set(df, mu);
  VF v0 = hn::Zero(df), v1 = hn::Zero(df);
  i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const VF d0 = hn::Sub(hn::LoadU(df, x + i), vmu), d1 = hn::Sub(hn::LoadU(df, x + i + N), vmu);
    v0 = hn::MulAdd(d0, d0, v0);
    v1 = hn::MulAdd(d1, d1, v1);
  }
  for (; i + N <= n; i += N) {
    const VF d0 = hn::Sub(hn::LoadU(df, x + i), vmu);
    v0 = hn::MulAdd(d0, d0, v0);
  }
  double var = hn::GetLane(hn::SumOfLanes(df, hn::Add(v0, v1)));
  for (; i < n; ++i) var += static_cast<double>(x[i] - mu) * (x[i] - mu);
  const float inv = 1.0f / std::sqrt(static_cast<float>(var / static_cast<double>(n)) + eps);
  const VF vinv = hn::Set(df, inv);
  i = 0;
  for (; i + N <= n; i += N) {
    const VF t = hn::Mul(hn::Sub(hn::LoadU(df, x + i), vmu), vinv);
    hn::StoreU(hn::MulAdd(t, hn::LoadU(df, weight + i), hn::LoadU(df, bias + i)), df, out + i);
  }
  for (; i < n; ++i) out[i] = (x[i] - mu) * inv * weight[i] + bias[i];
}

// x / (1 + exp(-t)). The exponent is clamped to 100, inside Highway's valid range for Exp
// (<= 104); exp(100) overflows to +inf like std::exp(-t) does for t < -88.7, so the result is
// a signed zero there, as in the scalar reference.
HWY_INLINE VF TimesSigmoid(DF df, VF x, VF t) {
  const VF e = hn::Exp(df, hn::Min(hn::Neg(t), hn::Set(df, 100.0f)));
  return x / (hn::Set(df, 1.0f) + e);
}

// x[i] = vec_fn(x[i]) over whole vectors; the tail goes through a zero-padded vector so that it
// gets exactly the same math.
template <class F>
HWY_INLINE void MapInPlace(float* x, int64_t n, F vec_fn) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(vec_fn(df, hn::LoadU(df, x + i), i), df, x + i);
  if (i < n) {
    float buf[64] = {0};
    for (int64_t j = i; j < n; ++j) buf[j - i] = x[j];
    hn::StoreU(vec_fn(df, hn::LoadU(df, buf), i), df, buf);
    for (int64_t j = i; j < n; ++j) x[j] = buf[j - i];
  }
}

void SiluMul(float* gate, const float* up, int64_t n) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const VF g = hn::LoadU(df, gate + i);
    hn::StoreU(hn::Mul(TimesSigmoid(df, g, g), hn::LoadU(df, up + i)), df, gate + i);
  }
  if (i < n) {
    float gb[64] = {0}, ub[64] = {0};
    for (int64_t j = i; j < n; ++j) {
      gb[j - i] = gate[j];
      ub[j - i] = up[j];
    }
    const VF g = hn::LoadU(df, gb);
    hn::StoreU(hn::Mul(TimesSigmoid(df, g, g), hn::LoadU(df, ub)), df, gb);
    for (int64_t j = i; j < n; ++j) gate[j] = gb[j - i];
  }
}

// GELU(tanh): 0.5 x (1 + tanh(u)) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3).
void GeluTanh(float* x, int64_t n) {
  MapInPlace(
      x, n,
      [](DF df, VF v, int64_t) {
        const VF v3 = hn::Mul(hn::Mul(v, v), v);
        const VF u2 = hn::Mul(hn::Set(df, 2.0f * 0.7978845608028654f), hn::MulAdd(hn::Set(df, 0.044715f), v3, v));
        return TimesSigmoid(df, v, u2);
      });
}

// GELU(erf): x * Phi(x) = 0.5 x erfc(-x / sqrt(2)). erfc(z) for z >= 0 from the Chebyshev
// fit of Numerical Recipes (erfcc: relative error < 1.2e-7 for all z >= 0); erfc(-z) = 2 - erfc(z).
// Computing erfc directly keeps full relative accuracy in the left tail, where 1 + erf cancels.
void GeluErf(float* x, int64_t n) {
  MapInPlace(
      x, n,
      [](DF df, VF v, int64_t) {
        const VF z = hn::Mul(v, hn::Set(df, -0.7071067811865476f));
        const VF az = hn::Abs(z);
        const VF one = hn::Set(df, 1.0f);
        const VF t = one / hn::MulAdd(hn::Set(df, 0.5f), az, one);
        VF p = hn::Set(df, 0.17087277f);
        p = hn::MulAdd(p, t, hn::Set(df, -0.82215223f));
        p = hn::MulAdd(p, t, hn::Set(df, 1.48851587f));
        p = hn::MulAdd(p, t, hn::Set(df, -1.13520398f));
        p = hn::MulAdd(p, t, hn::Set(df, 0.27886807f));
        p = hn::MulAdd(p, t, hn::Set(df, -0.18628806f));
        p = hn::MulAdd(p, t, hn::Set(df, 0.09678418f));
        p = hn::MulAdd(p, t, hn::Set(df, 0.37409196f));
        p = hn::MulAdd(p, t, hn::Set(df, 1.00002368f));
        p = hn::MulAdd(p, t, hn::Set(df, -1.26551223f));
        const VF arg = hn::Sub(p, hn::Mul(az, az));  // -z^2 + P(t); >= -FLT_MAX, so Exp is valid
        const VF r = hn::Mul(t, hn::Exp(df, arg));   // erfc(|z|)
        const VF erfc_z = hn::IfThenElse(z < hn::Zero(df), hn::Sub(hn::Set(df, 2.0f), r), r);
        return hn::Mul(hn::Mul(hn::Set(df, 0.5f), v), erfc_z);
      });
}

void AddInPlace(float* x, const float* y, int64_t n) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Add(hn::LoadU(df, x + i), hn::LoadU(df, y + i)), df, x + i);
  for (; i < n; ++i) x[i] += y[i];
}

void RopeRotateHalf(float* x, const float* cos, const float* sin, int64_t half) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  float* x2 = x + half;
  int64_t i = 0;
  for (; i + N <= half; i += N) {
    const VF a = hn::LoadU(df, x + i), b = hn::LoadU(df, x2 + i);
    const VF c = hn::LoadU(df, cos + i), s = hn::LoadU(df, sin + i);
    hn::StoreU(hn::Sub(hn::Mul(a, c), hn::Mul(b, s)), df, x + i);
    hn::StoreU(hn::Add(hn::Mul(b, c), hn::Mul(a, s)), df, x2 + i);
  }
  for (; i < half; ++i) {
    const float a = x[i], b = x2[i];
    x[i] = a * cos[i] - b * sin[i];
    x2[i] = b * cos[i] + a * sin[i];
  }
}

// ---- KV rows -----------------------------------------------------------------------------
// kQ8_0 K/V (see KvType): a block is the fp32 scale, then 32 int8 codes. A vector of N <= 16
// lanes at a multiple of N never straddles two blocks. d * q is one fp32 multiply, as in
// ref::load_kv_row, so both read identical values.
struct LoadQ8 {
  static constexpr int64_t kBlockBytes = 4 + kKvBlock;
  static HWY_INLINE VF load(DF df, const void* row, int64_t i) {
    const uint8_t* blk = static_cast<const uint8_t*>(row) + (i / kKvBlock) * kBlockBytes;
    float d;
    std::memcpy(&d, blk, 4);
    const hn::Rebind<int8_t, DF> d8;
    const hn::Rebind<int32_t, DF> d32;
    const auto codes = hn::LoadU(d8, reinterpret_cast<const int8_t*>(blk + 4 + i % kKvBlock));
    return hn::Mul(hn::ConvertTo(df, hn::PromoteTo(d32, codes)), hn::Set(df, d));
  }
  static HWY_INLINE float scalar(const void* row, int64_t i) {
    const uint8_t* blk = static_cast<const uint8_t*>(row) + (i / kKvBlock) * kBlockBytes;
    float d;
    std::memcpy(&d, blk, 4);
    return static_cast<float>(static_cast<int8_t>(blk[4 + i % kKvBlock])) * d;
  }
};

// Plain comparisons (not std::max/min) keep std template instantiations out of per-target code.
HWY_INLINE float MaxF(float a, float b) { return a < b ? b : a; }
HWY_INLINE float MinF(float a, float b) { return b < a ? b : a; }

void StoreKvRow(const float* src, int64_t n, KvType t, void* dst) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  if (t == KvType::kF16) {
    int64_t i = 0;
#if HWY_TARGET <= HWY_AVX2
    // F16C rounds to nearest even like f32_to_f16; Highway's software fallback on older
    // targets truncates, so those take the scalar loop.
    const hn::Rebind<hwy::float16_t, DF> dh;
    auto* out = static_cast<hwy::float16_t*>(dst);
    for (; i + N <= n; i += N) hn::StoreU(hn::DemoteTo(dh, hn::LoadU(df, src + i)), dh, out + i);
#endif
    auto* bytes = static_cast<uint8_t*>(dst);
    for (; i < n; ++i) {
      const uint16_t h = f32_to_f16(src[i]);
      std::memcpy(bytes + 2 * i, &h, 2);
    }
    return;
  }
  if (t == KvType::kF32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  // kQ8_0, the same operations as ref::store_kv_row.
  const hn::Rebind<int32_t, DF> d32;
  const hn::Rebind<int8_t, DF> d8;
  auto* blk = static_cast<uint8_t*>(dst);
  for (int64_t b = 0; b < n; b += kKvBlock, blk += LoadQ8::kBlockBytes) {
    const float* x = src + b;
    float amax = 0.0f;
    if (N <= kKvBlock && kKvBlock % N == 0) {
      VF m = hn::Zero(df);
      for (int64_t c = 0; c < kKvBlock; c += N) m = hn::Max(m, hn::Abs(hn::LoadU(df, x + c)));
      amax = hn::GetLane(hn::MaxOfLanes(df, m));
    } else {
      for (int64_t c = 0; c < kKvBlock; ++c) amax = MaxF(amax, std::fabs(x[c]));
    }
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    const float d = amax / 127.0f;
    std::memcpy(blk, &d, 4);
    int8_t* codes = reinterpret_cast<int8_t*>(blk + 4);
    int64_t c = 0;
    if (N <= kKvBlock && kKvBlock % N == 0) {
      const VF vid = hn::Set(df, id), hi = hn::Set(df, 127.0f), lo = hn::Set(df, -127.0f);
      for (; c < kKvBlock; c += N) {
        const VF r = hn::Min(hi, hn::Max(lo, hn::Round(hn::Mul(hn::LoadU(df, x + c), vid))));
        hn::StoreU(hn::DemoteTo(d8, hn::ConvertTo(d32, r)), d8, codes + c);
      }
    }
    for (; c < kKvBlock; ++c)
      codes[c] = static_cast<int8_t>(MinF(127.0f, MaxF(-127.0f, std::nearbyint(x[c] * id))));
  }
}

// ---- attention -----------------------------------------------------------------------------
// Queries are processed kQB at a time (several positions and/or several GQA heads), so every
// K and V row is loaded once per block; keys go in tiles of kTK with one online-softmax update
// per tile. Scratch per block: kQB × head_dim accumulators, no [q, kv] buffer. K/V rows are
// read through a loader L (LoadF32, LoadF16, LoadQ8) that turns them into fp32 vectors.
constexpr int kQB = 4;
constexpr int64_t kTK = 16;

HWY_INLINE const void* RowAt(const void* base, int64_t j, size_t row_bytes) {
  return static_cast<const uint8_t*>(base) + static_cast<size_t>(j) * row_bytes;
}

// Scores of kQB queries against keys j0 .. j0+tk-1 into sc[q * kTK + jj]. Keys are taken four
// at a time: their four partial-sum vectors per query are reduced together (interleave within
// 128-bit blocks, then add the blocks), about a third of the work of four separate reductions.
template <int QB, class L>
HWY_INLINE void ScoreTile(const float* qs, int64_t d, const void* k, size_t k_row_bytes, int64_t j0, int64_t tk,
                          float* sc) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t dv = d / N * N;
  int64_t jj = 0;
#if HWY_TARGET != HWY_SCALAR
  if (N >= 4) {
    const hn::Repartition<double, DF> dd;
    const hn::Full128<float> d4;
    HWY_ALIGN float buf[hn::MaxLanes(df) < 4 ? 4 : hn::MaxLanes(df)];
    for (; jj + 4 <= tk; jj += 4) {
      const void* k0 = RowAt(k, j0 + jj, k_row_bytes);
      const void* k1 = RowAt(k0, 1, k_row_bytes);
      const void* k2 = RowAt(k1, 1, k_row_bytes);
      const void* k3 = RowAt(k2, 1, k_row_bytes);
      VF a[QB][4];
      for (int q = 0; q < QB; ++q)
        for (int t = 0; t < 4; ++t) a[q][t] = hn::Zero(df);
      for (int64_t c = 0; c < dv; c += N) {
        const VF v0 = L::load(df, k0, c), v1 = L::load(df, k1, c);
        const VF v2 = L::load(df, k2, c), v3 = L::load(df, k3, c);
        for (int q = 0; q < QB; ++q) {
          const VF qv = hn::LoadU(df, qs + q * d + c);
          a[q][0] = hn::MulAdd(qv, v0, a[q][0]);
          a[q][1] = hn::MulAdd(qv, v1, a[q][1]);
          a[q][2] = hn::MulAdd(qv, v2, a[q][2]);
          a[q][3] = hn::MulAdd(qv, v3, a[q][3]);
        }
      }
      for (int q = 0; q < QB; ++q) {
        // Per 128-bit block: t01 = [a0, a1, a0', a1'] partial sums, t23 likewise, then
        // u = [a0, a1, a2, a3] block sums.
        const VF t01 = hn::Add(hn::InterleaveLower(df, a[q][0], a[q][1]), hn::InterleaveUpper(df, a[q][0], a[q][1]));
        const VF t23 = hn::Add(hn::InterleaveLower(df, a[q][2], a[q][3]), hn::InterleaveUpper(df, a[q][2], a[q][3]));
        const auto d01 = hn::BitCast(dd, t01), d23 = hn::BitCast(dd, t23);
        const VF u = hn::Add(hn::BitCast(df, hn::InterleaveLower(dd, d01, d23)),
                             hn::BitCast(df, hn::InterleaveUpper(dd, d01, d23)));
        hn::Store(u, df, buf);
        auto s4 = hn::Load(d4, buf);
        for (int64_t blk = 4; blk < N; blk += 4) s4 = hn::Add(s4, hn::Load(d4, buf + blk));
        float* out = sc + q * kTK + jj;
        hn::StoreU(s4, d4, out);
        for (int64_t c = dv; c < d; ++c) {
          const float qc = qs[q * d + c];
          out[0] += qc * L::scalar(k0, c);
          out[1] += qc * L::scalar(k1, c);
          out[2] += qc * L::scalar(k2, c);
          out[3] += qc * L::scalar(k3, c);
        }
      }
    }
  }
#endif
  for (; jj < tk; ++jj) {
    const void* kj = RowAt(k, j0 + jj, k_row_bytes);
    VF a[QB];
    for (int q = 0; q < QB; ++q) a[q] = hn::Zero(df);
    for (int64_t c = 0; c < dv; c += N) {
      const VF kv = L::load(df, kj, c);
      for (int q = 0; q < QB; ++q) a[q] = hn::MulAdd(hn::LoadU(df, qs + q * d + c), kv, a[q]);
    }
    for (int q = 0; q < QB; ++q) {
      float s = hn::GetLane(hn::SumOfLanes(df, a[q]));
      for (int64_t c = dv; c < d; ++c) s += qs[q * d + c] * L::scalar(kj, c);
      sc[q * kTK + jj] = s;
    }
  }
}

template <int QB, class L>
HWY_INLINE void AccumulateV(float* acc, int64_t d, const void* v, size_t v_row_bytes, int64_t j0, int64_t tk,
                            const float* p) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t dv = d / N * N;
  for (int64_t c = 0; c < dv; c += N) {
    VF a[QB];
    for (int q = 0; q < QB; ++q) a[q] = hn::LoadU(df, acc + q * d + c);
    for (int64_t jj = 0; jj < tk; ++jj) {
      const VF vv = L::load(df, RowAt(v, j0 + jj, v_row_bytes), c);
      for (int q = 0; q < QB; ++q) a[q] = hn::MulAdd(hn::Set(df, p[q * kTK + jj]), vv, a[q]);
    }
    for (int q = 0; q < QB; ++q) hn::StoreU(a[q], df, acc + q * d + c);
  }
  for (int64_t c = dv; c < d; ++c) {
    for (int64_t jj = 0; jj < tk; ++jj) {
      const float vv = L::scalar(RowAt(v, j0 + jj, v_row_bytes), c);
      for (int q = 0; q < QB; ++q) acc[q * d + c] += p[q * kTK + jj] * vv;
    }
  }
}

template <int QB, class L>
HWY_INLINE void AttendBlock(const float* const* qrows, float* const* orows, const int64_t* last, const void* k,
                            const void* v, const AttentionShape& s, float* qs, float* acc, float* sc) {
  const DF df;
  const int64_t d = s.head_dim;
  const size_t k_row_bytes = kv_bytes(s.kv_type, s.k_stride), v_row_bytes = kv_bytes(s.kv_type, s.v_stride);
  float mx[QB], l[QB];
  int64_t kend = 0;
  for (int q = 0; q < QB; ++q) {
    for (int64_t c = 0; c < d; ++c) qs[q * d + c] = qrows[q][c] * s.scale;
    for (int64_t c = 0; c < d; ++c) acc[q * d + c] = 0.0f;
    mx[q] = -HUGE_VALF;
    l[q] = 0.0f;
    kend = std::max(kend, last[q] + 1);
  }
  float* p = sc + QB * kTK;
  for (int64_t j0 = 0; j0 < kend; j0 += kTK) {
    const int64_t tk = std::min(kTK, kend - j0);
    ScoreTile<QB, L>(qs, d, k, k_row_bytes, j0, tk, sc);
    for (int q = 0; q < QB; ++q) {
      const int64_t valid = std::min(tk, last[q] - j0 + 1);  // keys j0 .. j0+valid-1 are visible
      float* sq = sc + q * kTK;
      float* pq = p + q * kTK;
      if (valid <= 0) {
        for (int64_t jj = 0; jj < kTK; ++jj) pq[jj] = 0.0f;
        continue;
      }
      float tmax = sq[0];
      for (int64_t jj = 1; jj < valid; ++jj) tmax = std::max(tmax, sq[jj]);
      const float m_new = std::max(mx[q], tmax);
      for (int64_t jj = valid; jj < kTK; ++jj) sq[jj] = m_new;  // masked below
      VF vsum = hn::Zero(df);
      const int64_t N = static_cast<int64_t>(hn::Lanes(df));
      const VF vm = hn::Set(df, m_new);
      for (int64_t jj = 0; jj < kTK; jj += N) {
        const VF e = hn::Exp(df, hn::Sub(hn::LoadU(df, sq + jj), vm));
        hn::StoreU(e, df, pq + jj);
      }
      for (int64_t jj = valid; jj < kTK; ++jj) pq[jj] = 0.0f;
      for (int64_t jj = 0; jj < kTK; jj += N) vsum = hn::Add(vsum, hn::LoadU(df, pq + jj));
      const float psum = hn::GetLane(hn::SumOfLanes(df, vsum));
      if (m_new > mx[q]) {
        const float corr = std::exp(mx[q] - m_new);  // 0 on the first tile
        l[q] *= corr;
        const VF vc = hn::Set(df, corr);
        float* aq = acc + q * d;
        int64_t c = 0;
        for (; c + N <= d; c += N) hn::StoreU(hn::Mul(hn::LoadU(df, aq + c), vc), df, aq + c);
        for (; c < d; ++c) aq[c] *= corr;
        mx[q] = m_new;
      }
      l[q] += psum;
    }
    AccumulateV<QB, L>(acc, d, v, v_row_bytes, j0, tk, p);
  }
  for (int q = 0; q < QB; ++q) {
    const float inv = l[q] > 0.0f ? 1.0f / l[q] : 0.0f;
    for (int64_t c = 0; c < d; ++c) orows[q][c] = acc[q * d + c] * inv;
  }
}

template <class L>
void AttentionT(const float* q, const void* k, const void* v, float* out, const AttentionShape& s) {
  const int64_t heads = std::max<int64_t>(1, s.q_heads), d = s.head_dim;
  const int64_t total = s.q_len * heads;
  if (total <= 0 || d <= 0) return;
  HwyScratch& scr = hwy_scratch();
  float* qs = grow(scr.a, static_cast<size_t>(kQB * d));
  float* acc = grow(scr.b, static_cast<size_t>(kQB * d));
  float* sc = grow(scr.c, static_cast<size_t>(2 * kQB * kTK));
  // Query index t = position * heads + head: the heads of one position share the causal limit.
  for (int64_t t0 = 0; t0 < total; t0 += kQB) {
    const int qb = static_cast<int>(std::min<int64_t>(kQB, total - t0));
    const float* qrows[kQB];
    float* orows[kQB];
    int64_t last[kQB];
    for (int j = 0; j < qb; ++j) {
      const int64_t t = t0 + j, i = t / heads, h = t % heads;
      qrows[j] = q + h * s.q_head_stride + i * s.q_stride;
      orows[j] = out + h * s.out_head_stride + i * s.out_stride;
      last[j] = s.causal ? std::min(s.kv_len - 1, s.causal_offset + i) : s.kv_len - 1;
    }
    switch (qb) {
      case 4: AttendBlock<4, L>(qrows, orows, last, k, v, s, qs, acc, sc); break;
      case 3: AttendBlock<3, L>(qrows, orows, last, k, v, s, qs, acc, sc); break;
      case 2: AttendBlock<2, L>(qrows, orows, last, k, v, s, qs, acc, sc); break;
      default: AttendBlock<1, L>(qrows, orows, last, k, v, s, qs, acc, sc); break;
    }
  }
}


// ---- Blocked attention for long non-causal f32 sequences (the vision tower) -----------------
// The per-query kernel above reduces every q·k dot product horizontally, which caps it far
// below the FMA peak when thousands of patches attend to each other. Here a tile of kBK keys
// is transposed once ([d][kBK]) and reused by every query of the call, so scores are register
// tiles of broadcast(q) × keys (no horizontal sums) and P·V is broadcast(p) × V rows.
constexpr int64_t kBK = 64;  // keys per tile (a multiple of every vector width)
constexpr int kBQ = 8;       // queries per score micro-tile

// S[q][0..kBK) = qs[q] · Kt for kBQ queries; Kt is [d][kBK]. Two vectors of keys at a time.
// With 16 registers the queries go 4 at a time (8 accumulators): 8 would spill. Each score sums
// its d products in the same order either way.
HWY_INLINE void ScoresBlocked(const float* qs, int64_t d, const float* kt, float* sc) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  constexpr int kRows = kWideRegisterFile ? kBQ : 4;
  for (int q0 = 0; q0 < kBQ; q0 += kRows) {
    for (int64_t j = 0; j < kBK; j += 2 * N) {
      VF a0[kRows], a1[kRows];
      for (int q = 0; q < kRows; ++q) a0[q] = a1[q] = hn::Zero(df);
      for (int64_t c = 0; c < d; ++c) {
        const VF k0 = hn::Load(df, kt + c * kBK + j), k1 = hn::Load(df, kt + c * kBK + j + N);
        for (int q = 0; q < kRows; ++q) {
          const VF qv = hn::Set(df, qs[(q0 + q) * d + c]);
          a0[q] = hn::MulAdd(qv, k0, a0[q]);
          a1[q] = hn::MulAdd(qv, k1, a1[q]);
        }
      }
      for (int q = 0; q < kRows; ++q) {
        hn::Store(a0[q], df, sc + (q0 + q) * kBK + j);
        hn::Store(a1[q], df, sc + (q0 + q) * kBK + j + N);
      }
    }
  }
}

// acc[q][c0 .. c0 + NV*N) += sum_j p[q][j] * V[j][same] for 4 queries, tk keys.
template <int NV>
HWY_INLINE void PvChunk(float* acc, int64_t d, int64_t c0, const float* v, int64_t v_stride, int64_t tk,
                        const float* p) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  VF a[4][NV];
  for (int q = 0; q < 4; ++q)
    for (int x = 0; x < NV; ++x) a[q][x] = hn::LoadU(df, acc + q * d + c0 + x * N);
  for (int64_t j = 0; j < tk; ++j) {
    VF vv[NV];
    for (int x = 0; x < NV; ++x) vv[x] = hn::LoadU(df, v + j * v_stride + c0 + x * N);
    for (int q = 0; q < 4; ++q) {
      const VF pq = hn::Set(df, p[q * kBK + j]);
      for (int x = 0; x < NV; ++x) a[q][x] = hn::MulAdd(pq, vv[x], a[q][x]);
    }
  }
  for (int q = 0; q < 4; ++q)
    for (int x = 0; x < NV; ++x) hn::StoreU(a[q][x], df, acc + q * d + c0 + x * N);
}

void AttentionBlockedF32(const float* q, const float* k, const float* v, float* out, const AttentionShape& s) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t d = s.head_dim, nq = s.q_len, nk = s.kv_len, nq_pad = (nq + kBQ - 1) / kBQ * kBQ;
  HwyScratch& scr = hwy_scratch();
  // Scaled queries and their running state, padded to whole micro-tiles (padding rows are zero).
  float* qs = grow(scr.a, static_cast<size_t>(nq_pad * d + nq_pad * d + 2 * nq_pad));
  float* acc = qs + nq_pad * d;
  float* mx = acc + nq_pad * d;
  float* l = mx + nq_pad;
  float* kt = grow_aligned(scr.b, static_cast<size_t>(d * kBK));
  float* sc = grow_aligned(scr.c, static_cast<size_t>(2 * kBQ * kBK));
  float* p = sc + kBQ * kBK;
  for (int64_t i = 0; i < nq_pad; ++i) {
    for (int64_t c = 0; c < d; ++c) {
      qs[i * d + c] = i < nq ? q[i * s.q_stride + c] * s.scale : 0.0f;
      acc[i * d + c] = 0.0f;
    }
    mx[i] = -HUGE_VALF;
    l[i] = 0.0f;
  }
  for (int64_t j0 = 0; j0 < nk; j0 += kBK) {
    const int64_t tk = std::min(kBK, nk - j0);
    for (int64_t c = 0; c < d; ++c)
      for (int64_t j = 0; j < kBK; ++j) kt[c * kBK + j] = j < tk ? k[(j0 + j) * s.k_stride + c] : 0.0f;
    for (int64_t i0 = 0; i0 < nq_pad; i0 += kBQ) {
      ScoresBlocked(qs + i0 * d, d, kt, sc);
      for (int qi = 0; qi < kBQ; ++qi) {  // online softmax over this tile
        float* sq = sc + qi * kBK;
        float* pq = p + qi * kBK;
        float tmax = sq[0];
        if (tk == kBK) {
          VF vmax = hn::Load(df, sq);
          for (int64_t j = N; j < kBK; j += N) vmax = hn::Max(vmax, hn::Load(df, sq + j));
          tmax = hn::GetLane(hn::MaxOfLanes(df, vmax));
        } else {
          for (int64_t j = 1; j < tk; ++j) tmax = std::max(tmax, sq[j]);
        }
        const int64_t i = i0 + qi;
        const float m_new = std::max(mx[i], tmax);
        const VF vm = hn::Set(df, m_new);
        for (int64_t j = 0; j < kBK; j += N) hn::Store(hn::Exp(df, hn::Sub(hn::Load(df, sq + j), vm)), df, pq + j);
        for (int64_t j = tk; j < kBK; ++j) pq[j] = 0.0f;  // keys past the end of the sequence
        VF vsum = hn::Zero(df);
        for (int64_t j = 0; j < kBK; j += N) vsum = hn::Add(vsum, hn::Load(df, pq + j));
        const float corr = std::exp(mx[i] - m_new);  // 0 on the first tile
        if (corr != 1.0f) {
          const VF vc = hn::Set(df, corr);
          for (int64_t c = 0; c < d; c += N) hn::StoreU(hn::Mul(hn::LoadU(df, acc + i * d + c), vc), df, acc + i * d + c);
        }
        l[i] = l[i] * corr + hn::GetLane(hn::SumOfLanes(df, vsum));
        mx[i] = m_new;
      }
      for (int half = 0; half < kBQ; half += 4) {
        float* acc4 = acc + (i0 + half) * d;
        const float* p4 = p + half * kBK;
        const float* vt = v + j0 * s.v_stride;
        // 4 queries × NV vectors of accumulators: NV = 4 spills with 16 registers.
        constexpr int64_t kMaxNV = kWideRegisterFile ? 4 : 2;
        for (int64_t c0 = 0; c0 < d; c0 += kMaxNV * N) {
          switch (std::min<int64_t>(kMaxNV, (d - c0) / N)) {
            case 4: PvChunk<4>(acc4, d, c0, vt, s.v_stride, tk, p4); break;
            case 3: PvChunk<3>(acc4, d, c0, vt, s.v_stride, tk, p4); break;
            case 2: PvChunk<2>(acc4, d, c0, vt, s.v_stride, tk, p4); break;
            default: PvChunk<1>(acc4, d, c0, vt, s.v_stride, tk, p4); break;
          }
        }
      }
    }
  }
  for (int64_t i = 0; i < nq; ++i) {
    const float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
    for (int64_t c = 0; c < d; ++c) out[i * s.out_stride + c] = acc[i * d + c] * inv;
  }
}

// ---- Attention of many queries over shared keys: queries in the vector lanes ----------------
// A prefill chunk asks for thousands of (query, key) pairs over one KV head's keys, and the
// per-query kernel above ends every score with a horizontal sum. Here kLQV vectors of queries
// (positions × the GQA heads of the call) fill the lanes: a score micro-tile is broadcast(k[j][c])
// × Qᵀ[c], the online softmax is lane-wise (no reductions), and P·V is broadcast(v[j][c]) × P[j].
// Each tile's K and V rows are read once per query block into fp32 (zero-padded to whole
// micro-tiles). Every sum runs in the same order as in a one-query call: c ascending for a score,
// keys ascending (tile by tile, rescaled by the running maximum) for an output.
constexpr int kLQV = 2;                            // query vectors per block
constexpr int kLR = kWideRegisterFile ? 12 : 6;    // keys per score micro-tile (kLR × kLQV sums)
constexpr int kLRD = kWideRegisterFile ? 12 : 6;   // head dims per P·V micro-tile
constexpr int64_t kLKT = 48;                       // keys per softmax tile (a multiple of kLR)
static_assert(kLKT % kLR == 0);

// S[j][lanes] = Σ_c k[j][c] · Qᵀ[c][lanes] for the tile's nk_pad keys (rows of kt, d apart).
HWY_INLINE void LaneScores(const float* qt, int64_t d, const float* kt, int64_t nk_pad, float* sc) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df)), qw = kLQV * N;
  for (int64_t j0 = 0; j0 < nk_pad; j0 += kLR) {
    VF a[kLR][kLQV];
    for (int r = 0; r < kLR; ++r)
      for (int v = 0; v < kLQV; ++v) a[r][v] = hn::Zero(df);
    const float* krow = kt + j0 * d;
    for (int64_t c = 0; c < d; ++c) {
      VF qv[kLQV];
      for (int v = 0; v < kLQV; ++v) qv[v] = hn::Load(df, qt + c * qw + v * N);
      for (int r = 0; r < kLR; ++r) {
        const VF kv = hn::Set(df, krow[r * d + c]);
        for (int v = 0; v < kLQV; ++v) a[r][v] = hn::MulAdd(kv, qv[v], a[r][v]);
      }
    }
    for (int r = 0; r < kLR; ++r)
      for (int v = 0; v < kLQV; ++v) hn::Store(a[r][v], df, sc + (j0 + r) * qw + v * N);
  }
}

// accᵀ[c0 .. c0+RD)[lanes] += Σ_j p[j][lanes] · v[j][c] over the tile's nk keys.
template <int RD>
HWY_INLINE void LanePv(float* acc, const float* vt, int64_t d, int64_t c0, int64_t nk, const float* p) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df)), qw = kLQV * N;
  VF a[RD][kLQV];
  for (int r = 0; r < RD; ++r)
    for (int v = 0; v < kLQV; ++v) a[r][v] = hn::Load(df, acc + (c0 + r) * qw + v * N);
  for (int64_t j = 0; j < nk; ++j) {
    VF pv[kLQV];
    for (int v = 0; v < kLQV; ++v) pv[v] = hn::Load(df, p + j * qw + v * N);
    const float* vrow = vt + j * d + c0;
    for (int r = 0; r < RD; ++r) {
      const VF vv = hn::Set(df, vrow[r]);
      for (int v = 0; v < kLQV; ++v) a[r][v] = hn::MulAdd(vv, pv[v], a[r][v]);
    }
  }
  for (int r = 0; r < RD; ++r)
    for (int v = 0; v < kLQV; ++v) hn::Store(a[r][v], df, acc + (c0 + r) * qw + v * N);
}

template <class L>
HWY_INLINE void LoadRowF32(const void* row, int64_t d, float* out) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  int64_t c = 0;
  for (; c + N <= d; c += N) hn::StoreU(L::load(df, row, c), df, out + c);
  for (; c < d; ++c) out[c] = L::scalar(row, c);
}

template <class L>
void AttentionLanes(const float* q, const void* k, const void* v, float* out, const AttentionShape& s) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df)), qw = kLQV * N;
  const int64_t heads = std::max<int64_t>(1, s.q_heads), d = s.head_dim;
  const int64_t total = s.q_len * heads;
  const size_t k_row_bytes = kv_bytes(s.kv_type, s.k_stride), v_row_bytes = kv_bytes(s.kv_type, s.v_stride);
  HwyScratch& scr = hwy_scratch();
  float* qt = grow_aligned(scr.a, static_cast<size_t>(2 * d * qw + kLKT * qw + 3 * qw));
  float* acc = qt + d * qw;
  float* sc = acc + d * qw;  // scores, then probabilities in place
  float* mx = sc + kLKT * qw;
  float* l = mx + qw;
  float* limit = l + qw;  // last visible key of each lane, as a float (exact below 2^24)
  float* kt = grow_aligned(scr.b, static_cast<size_t>(kLKT * d));
  float* vt = grow_aligned(scr.c, static_cast<size_t>(kLKT * d));
  const VF neg_inf = hn::Set(df, -HUGE_VALF);
  for (int64_t t0 = 0; t0 < total; t0 += qw) {
    const int64_t nq = std::min(qw, total - t0);
    int64_t kend = 0, all_visible = s.kv_len;  // keys [0, all_visible) are visible to every lane
    for (int64_t lane = 0; lane < qw; ++lane) {
      // Padding lanes repeat the last query: they widen nothing and are never written out.
      const int64_t t = t0 + std::min(lane, nq - 1), i = t / heads, h = t % heads;
      const float* qrow = q + h * s.q_head_stride + i * s.q_stride;
      for (int64_t c = 0; c < d; ++c) qt[c * qw + lane] = qrow[c] * s.scale;
      const int64_t last = s.causal ? std::min(s.kv_len - 1, s.causal_offset + i) : s.kv_len - 1;
      limit[lane] = static_cast<float>(last);
      kend = std::max(kend, last + 1);
      all_visible = std::min(all_visible, last + 1);
    }
    for (int64_t x = 0; x < d * qw; ++x) acc[x] = 0.0f;
    for (int64_t lane = 0; lane < qw; ++lane) l[lane] = 0.0f;
    for (int64_t j0 = 0; j0 < kend; j0 += kLKT) {
      const int64_t nk = std::min(kLKT, kend - j0), nk_pad = (nk + kLR - 1) / kLR * kLR;
      for (int64_t j = 0; j < nk; ++j) {
        LoadRowF32<L>(RowAt(k, j0 + j, k_row_bytes), d, kt + j * d);
        LoadRowF32<L>(RowAt(v, j0 + j, v_row_bytes), d, vt + j * d);
      }
      for (int64_t x = nk * d; x < nk_pad * d; ++x) kt[x] = 0.0f;
      LaneScores(qt, d, kt, nk_pad, sc);
      const bool masked = j0 + nk > all_visible;
      for (int vq = 0; vq < kLQV; ++vq) {
        const VF lim = hn::Load(df, limit + vq * N);
        VF tmax = neg_inf;
        for (int64_t j = 0; j < nk; ++j) {
          float* sj = sc + j * qw + vq * N;
          VF sv = hn::Load(df, sj);
          if (masked) {
            sv = hn::IfThenElse(hn::Gt(hn::Set(df, static_cast<float>(j0 + j)), lim), neg_inf, sv);
            hn::Store(sv, df, sj);
          }
          tmax = hn::Max(tmax, sv);
        }
        // Key 0 is visible to every lane, so the first tile leaves a finite maximum.
        const VF m_old = hn::Load(df, mx + vq * N);
        const VF m_new = j0 == 0 ? tmax : hn::Max(m_old, tmax);
        VF lsum = hn::Zero(df);
        for (int64_t j = 0; j < nk; ++j) {
          float* sj = sc + j * qw + vq * N;
          VF pv = hn::Exp(df, hn::Sub(hn::Load(df, sj), m_new));
          if (masked) pv = hn::IfThenZeroElse(hn::Gt(hn::Set(df, static_cast<float>(j0 + j)), lim), pv);
          hn::Store(pv, df, sj);
          lsum = hn::Add(lsum, pv);
        }
        VF lv = lsum;
        if (j0 > 0) {
          // Exactly 1 where the maximum stays (a lane past its causal limit), whatever Exp(0)
          // rounds to: a lane's result must not depend on the other lanes of its block.
          const VF corr = hn::IfThenElse(hn::Eq(m_old, m_new), hn::Set(df, 1.0f), hn::Exp(df, hn::Sub(m_old, m_new)));
          lv = hn::MulAdd(hn::Load(df, l + vq * N), corr, lsum);
          for (int64_t c = 0; c < d; ++c) {
            float* ac = acc + c * qw + vq * N;
            hn::Store(hn::Mul(hn::Load(df, ac), corr), df, ac);
          }
        }
        hn::Store(lv, df, l + vq * N);
        hn::Store(m_new, df, mx + vq * N);
      }
      int64_t c0 = 0;
      for (; c0 + kLRD <= d; c0 += kLRD) LanePv<kLRD>(acc, vt, d, c0, nk, sc);
      for (; c0 + 4 <= d; c0 += 4) LanePv<4>(acc, vt, d, c0, nk, sc);
      for (; c0 < d; ++c0) LanePv<1>(acc, vt, d, c0, nk, sc);
    }
    for (int64_t lane = 0; lane < nq; ++lane) {
      const int64_t t = t0 + lane, i = t / heads, h = t % heads;
      float* orow = out + h * s.out_head_stride + i * s.out_stride;
      const float inv = l[lane] > 0.0f ? 1.0f / l[lane] : 0.0f;
      for (int64_t c = 0; c < d; ++c) orow[c] = acc[c * qw + lane] * inv;
    }
  }
}

// Calls with at least two vectors of queries (a prefill chunk, a GQA group over several
// positions) on a vector ISA.
HWY_INLINE bool UseLanes(const AttentionShape& s) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(DF()));
  return N >= 4 && s.q_len * std::max<int64_t>(1, s.q_heads) >= kLQV * N && s.kv_len < (int64_t{1} << 24);
}

// Long non-causal single-head f32 calls whose head size fills whole vectors (the vision tower).
HWY_INLINE bool UseBlocked(const AttentionShape& s) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(DF()));
  return !s.causal && s.q_heads <= 1 && s.q_len >= kBQ && s.kv_len >= kBK / 2 && N >= 4 && s.head_dim % N == 0 &&
         s.head_dim <= 512;
}

void Attention(const float* q, const void* k, const void* v, float* out, const AttentionShape& s) {
  switch (s.kv_type) {
    case KvType::kF16: return UseLanes(s) ? AttentionLanes<LoadF16>(q, k, v, out, s) : AttentionT<LoadF16>(q, k, v, out, s);
    case KvType::kQ8_0: return UseLanes(s) ? AttentionLanes<LoadQ8>(q, k, v, out, s) : AttentionT<LoadQ8>(q, k, v, out, s);
    default:
      if (UseBlocked(s))
        return AttentionBlockedF32(static_cast<const float*>(q), static_cast<const float*>(k),
                                   static_cast<const float*>(v), out, s);
      if (UseLanes(s)) return AttentionLanes<LoadF32>(q, k, v, out, s);
      return AttentionT<LoadF32>(q, k, v, out, s);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace qvl::kernels::detail
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace qvl::kernels::detail {

HWY_EXPORT(ConvertRow);
HWY_EXPORT(DenseMatvec);
HWY_EXPORT(DenseGemm);
HWY_EXPORT(PanelRows);
HWY_EXPORT(QuantizeActs);
HWY_EXPORT(RmsNorm);
HWY_EXPORT(LayerNorm);
HWY_EXPORT(SiluMul);
HWY_EXPORT(GeluTanh);
HWY_EXPORT(GeluErf);
HWY_EXPORT(AddInPlace);
HWY_EXPORT(RopeRotateHalf);
HWY_EXPORT(Attention);
HWY_EXPORT(StoreKvRow);

void hwy_limit_targets(Isa isa) {
  hwy::SetSupportedTargetsForTest(0);  // back to what the CPU really supports
  const int64_t real = hwy::SupportedTargets();
  int64_t allowed = real;
  const int64_t below_avx512 = HWY_AVX2 | HWY_SSE4 | HWY_SSSE3 | HWY_EMU128 | HWY_SCALAR;
  const int64_t below_avx2 = HWY_SSE4 | HWY_SSSE3 | HWY_EMU128 | HWY_SCALAR;
  if (isa == Isa::kAVX2) allowed &= below_avx512;
  if (isa <= Isa::kSSE4) allowed &= below_avx2;
  if (allowed == 0) allowed = HWY_SCALAR;
  if (allowed != real) hwy::SetSupportedTargetsForTest(allowed);
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
}

void convert_row_simd(DType t, const void* src, float* dst, int64_t n) { HWY_DYNAMIC_DISPATCH(ConvertRow)(t, src, dst, n); }
void dense_matvec_simd(const WeightMatrix& w, const float* x, const float* bias, float* y, int64_t r0, int64_t r1) {
  HWY_DYNAMIC_DISPATCH(DenseMatvec)(w, x, bias, y, r0, r1);
}
void dense_gemm_simd(const WeightMatrix& w, const float* x, int64_t m, const float* bias, float* y, int64_t r0,
                     int64_t r1) {
  HWY_DYNAMIC_DISPATCH(DenseGemm)(w, x, m, bias, y, r0, r1);
}
int64_t dense_gemm_panel_rows() { return HWY_DYNAMIC_DISPATCH(PanelRows)(); }
void quantize_acts_simd(const float* x, int64_t m, int64_t k, int32_t zero_point, int8_t* q, float* d,
                        int32_t* init, float* ds) {
  HWY_DYNAMIC_DISPATCH(QuantizeActs)(x, m, k, zero_point, q, d, init, ds);
}
void rms_norm_simd(const float* x, const float* weight, int64_t n, float eps, float* out) {
  HWY_DYNAMIC_DISPATCH(RmsNorm)(x, weight, n, eps, out);
}
void layer_norm_simd(const float* x, const float* weight, const float* bias, int64_t n, float eps, float* out) {
  HWY_DYNAMIC_DISPATCH(LayerNorm)(x, weight, bias, n, eps, out);
}
void silu_mul_simd(float* gate, const float* up, int64_t n) { HWY_DYNAMIC_DISPATCH(SiluMul)(gate, up, n); }
void gelu_tanh_simd(float* x, int64_t n) { HWY_DYNAMIC_DISPATCH(GeluTanh)(x, n); }
void gelu_erf_simd(float* x, int64_t n) { HWY_DYNAMIC_DISPATCH(GeluErf)(x, n); }
void add_simd(float* x, const float* y, int64_t n) { HWY_DYNAMIC_DISPATCH(AddInPlace)(x, y, n); }
void rope_rotate_half_simd(float* x, const float* cos, const float* sin, int64_t half) {
  HWY_DYNAMIC_DISPATCH(RopeRotateHalf)(x, cos, sin, half);
}
void attention_simd(const float* q, const void* k, const void* v, float* out, const AttentionShape& s) {
  HWY_DYNAMIC_DISPATCH(Attention)(q, k, v, out, s);
}
void store_kv_row_simd(const float* src, int64_t n, KvType t, void* dst) {
  HWY_DYNAMIC_DISPATCH(StoreKvRow)(src, n, t, dst);
}

}  // namespace qvl::kernels::detail
#endif  // HWY_ONCE
