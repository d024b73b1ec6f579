// The machine's arithmetic peak for the benchmarks: register-only loops of independent
// vdpbf16ps (64 flops each: 16 lanes x 2 products x multiply-add) or vfmadd231ps zmm (32 flops).
// kPeakChains accumulator chains cover latency x throughput. Compiled with target attributes;
// call only where kernels::attention_bf16_native() (bf16) or Isa::kAVX512 (f32) holds.
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

}  // namespace qvl::bench
#endif
