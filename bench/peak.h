// The machine's arithmetic peak for the benchmarks: register-only loops of independent
// vdpbf16ps (64 flops each: 16 lanes x 2 products x multiply-add), vfmadd231ps zmm (32 flops) or
// vpdpbusd zmm (128 int8 ops: 16 lanes x 4 products x multiply-add; the int8 kernels' instruction).
// Independent accumulator chains (kPeakChains, kInt8Chains) cover latency x throughput. Compiled
// with target attributes; call only where kernels::attention_bf16_native() (bf16) or Isa::kAVX512
// (f32, int8: that level includes VNNI) holds.
#pragma once

#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define QVL_BENCH_PEAK 1

namespace qvl::bench {

constexpr int kPeakChains = 24;

// Flops of one call.
inline double peak_flops(bool bf16, int64_t steps) { return (bf16 ? 64.0 : 32.0) * kPeakChains * static_cast<double>(steps); }

__attribute__((target("avx512f,avx512bf16"), noinline)) inline float peak_bf16_loop(int64_t steps) {
  __m512 acc[kPeakChains];
  for (int i = 0; i < kPeakChains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  __m512bh a = (__m512bh)_mm512_set1_epi32(0x3F803F81), b = (__m512bh)_mm512_set1_epi32(0x3C003C01);
  for (int64_t s = 0; s < steps; ++s) {
#pragma GCC unroll 24
    for (int i = 0; i < kPeakChains; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
    __asm__ volatile("" : "+v"(a), "+v"(b));  // keep the operands opaque
  }
  __m512 t = acc[0];
  for (int i = 1; i < kPeakChains; ++i) t = _mm512_add_ps(t, acc[i]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, t);
  return lanes[0] + lanes[15];  // keeps the loop alive (no _mm512_reduce_*: GCC 12 warns inside it)
}

__attribute__((target("avx512f,fma"), noinline)) inline float peak_f32_loop(int64_t steps) {
  __m512 acc[kPeakChains];
  for (int i = 0; i < kPeakChains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  __m512 a = _mm512_set1_ps(1.0001f), b = _mm512_set1_ps(0.9999f);
  for (int64_t s = 0; s < steps; ++s) {
#pragma GCC unroll 24
    for (int i = 0; i < kPeakChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    __asm__ volatile("" : "+v"(a), "+v"(b));
  }
  __m512 t = acc[0];
  for (int i = 1; i < kPeakChains; ++i) t = _mm512_add_ps(t, acc[i]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, t);
  return lanes[0] + lanes[15];  // keeps the loop alive (no _mm512_reduce_*: GCC 12 warns inside it)
}

// vpdpbusd in one asm statement: GCC 12 keeps an array of int32 accumulators in memory here.
constexpr int kInt8Chains = 12;
inline double peak_int8_ops(int64_t steps) { return 128.0 * kInt8Chains * static_cast<double>(steps); }

__attribute__((target("avx512f,avx512bw,avx512vnni"), noinline)) inline int32_t peak_int8_loop(int64_t steps) {
  __m512i c0 = _mm512_set1_epi32(0), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
  __m512i c8 = c0, c9 = c0, c10 = c0, c11 = c0;
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-5);
  for (int64_t s = 0; s < steps; ++s) {
    __asm__ volatile(
        "vpdpbusd %12, %13, %0\n\tvpdpbusd %12, %13, %1\n\tvpdpbusd %12, %13, %2\n\tvpdpbusd %12, %13, %3\n\t"
        "vpdpbusd %12, %13, %4\n\tvpdpbusd %12, %13, %5\n\tvpdpbusd %12, %13, %6\n\tvpdpbusd %12, %13, %7\n\t"
        "vpdpbusd %12, %13, %8\n\tvpdpbusd %12, %13, %9\n\tvpdpbusd %12, %13, %10\n\tvpdpbusd %12, %13, %11"
        : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5), "+v"(c6), "+v"(c7), "+v"(c8), "+v"(c9),
          "+v"(c10), "+v"(c11)
        : "v"(b), "v"(a));
  }
  __m512i t = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(c0, c1), _mm512_add_epi32(c2, c3)),
                               _mm512_add_epi32(_mm512_add_epi32(c4, c5), _mm512_add_epi32(c6, c7)));
  t = _mm512_add_epi32(t, _mm512_add_epi32(_mm512_add_epi32(c8, c9), _mm512_add_epi32(c10, c11)));
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, t);
  return lanes[0] + lanes[15];
}

}  // namespace qvl::bench
#endif
