// Internal to q_avx2.cpp and q_avx512.cpp: what their int8 matmul kernels share apart from the
// vector code itself. Everything here has internal linkage (an unnamed namespace) and uses no
// instruction beyond baseline x86-64 (the only intrinsic is a prefetch), so each file compiles its
// own copy under its own target options and an AVX-512 build of a helper can never be the one an
// AVX2 path calls.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/quant.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define QVL_X86_KERNELS 1
#endif

namespace qvl::kernels::detail {
namespace {

// Bytes of weight codes per 32-column block of one row group.
template <WeightFormat F>
constexpr size_t kCodeBytes = F == WeightFormat::kQ8_0       ? 512
                              : F == WeightFormat::kGgmlQ6_K ? 384
                              : F == WeightFormat::kGgmlQ5_K ? 320
                                                             : 256;

// Decode (a few activation rows) streams every weight from DRAM once, and the hardware prefetcher
// alone keeps too few cache-line misses in flight per core. Each ISA's kernel prefetches ahead at
// the distance and into the cache level measured best on it (q_avx2.cpp, q_avx512.cpp).
template <size_t kDistance, int kHint>
inline void prefetch_ahead(const uint8_t* p, size_t bytes) {
#if QVL_X86_KERNELS
  const char* ahead = reinterpret_cast<const char*>(p) + kDistance;
  for (size_t line = 0; line < bytes; line += 64) _mm_prefetch(ahead + line, static_cast<_mm_hint>(kHint));
#else
  (void)p, (void)bytes;
#endif
}

// GGML_IQ4_XS levels + 128: the unsigned weight bytes the AVX-512 kernel looks up.
alignas(16) inline constexpr uint8_t kIq4LevelsU8[16] = {1, 24, 45, 63, 79, 93, 106, 118, 129, 141, 153, 166, 181, 197, 217, 241};
static_assert([] {
  for (int i = 0; i < 16; ++i)
    if (kIq4LevelsU8[i] != kIq4Levels[i] + 128) return false;
  return true;
}());

// Four int8 activations (one 4-column step) as one int32, to broadcast.
inline int32_t load_i32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Activation rows i0 .. i0 + MR - 1 of `a`: codes, block scales, int32 seeds and Q4_K sums.
template <int MR>
struct ActRows {
  const int8_t* q[MR];
  const float* d[MR];
  const int32_t* init[MR];
  const float* ds[MR];
  const int32_t* half_init[MR];  // GGML_Q6_K only, else null

  ActRows(const QActs& a, int64_t i0, int64_t nb) {
    for (int i = 0; i < MR; ++i) {
      q[i] = a.q + (i0 + i) * a.k;
      d[i] = a.d + (i0 + i) * nb;
      init[i] = a.init + (i0 + i) * nb;
      ds[i] = a.ds + (i0 + i) * nb;
      half_init[i] = a.half_init ? a.half_init + (i0 + i) * 2 * nb : nullptr;
    }
  }
};

// Activation rows taken per chunk: a multiple of mr (at least mr) whose int8 codes fill about
// `cache_bytes`, so a chunk stays in cache while it sweeps the thread's row groups.
inline int64_t chunk_rows(int64_t k, int64_t mr, int64_t cache_bytes) {
  return std::max<int64_t>(mr, (cache_bytes / std::max<int64_t>(k, 1)) / mr * mr);
}

// Formats whose per-block scale is D * sc with a min M * mn (qvl's Q4_K and ggml's).
template <WeightFormat F>
constexpr bool kScaleMin = F == WeightFormat::kQ4_K || F == WeightFormat::kGgmlQ4_K || F == WeightFormat::kGgmlQ5_K;

template <WeightFormat F>
using FormatTag = std::integral_constant<WeightFormat, F>;

// Calls kernel(FormatTag<F>{}) for the quantized format `format` (nothing for other formats).
template <typename Kernel>
inline void with_quantized_format(WeightFormat format, Kernel&& kernel) {
  switch (format) {
    case WeightFormat::kQ8_0: kernel(FormatTag<WeightFormat::kQ8_0>{}); break;
    case WeightFormat::kQ4_0: kernel(FormatTag<WeightFormat::kQ4_0>{}); break;
    case WeightFormat::kQ4_K: kernel(FormatTag<WeightFormat::kQ4_K>{}); break;
    case WeightFormat::kGgmlQ4_K: kernel(FormatTag<WeightFormat::kGgmlQ4_K>{}); break;
    case WeightFormat::kGgmlQ6_K: kernel(FormatTag<WeightFormat::kGgmlQ6_K>{}); break;
    case WeightFormat::kGgmlQ5_K: kernel(FormatTag<WeightFormat::kGgmlQ5_K>{}); break;
    case WeightFormat::kGgmlIQ4_XS: kernel(FormatTag<WeightFormat::kGgmlIQ4_XS>{}); break;
    default: break;
  }
}

}  // namespace
}  // namespace qvl::kernels::detail
