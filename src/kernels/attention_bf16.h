// Internal to the bf16 attention kernels (kernels.h: attention_bf16): the packed K/V layout that
// every implementation (scalar reference, AVX2, AVX-512 BF16) reads, and their entry points.
//
// The algorithm, the same at every level (what ref::attention_bf16 spells out in scalar code):
//   q̂ = bf16(q · scale · log2 e)                 (scores come out in base 2: exp2 below)
//   k̂, v̂ = bf16(k), bf16(v)                      (rounded to nearest even, packed once per head)
//   for each tile of kBf16KeyTile keys:
//     s_j = Σ_c q̂_c k̂_jc                          (products exact, sums in fp32)
//     m_t = max_j s_j; if m_t > m: O *= 2^(m - m_t), l *= 2^(m - m_t), m = m_t
//     p_j = bf16(2^(s_j - m))                      (fp32 exp2, then rounded for the P·V product)
//     l += Σ_j p_j;  O += Σ_j p_j v̂_j             (fp32 sums of exact products)
//   out = O · (1 / l)
// Rows are independent: a query's result depends only on its own data and the key tiling, never
// on which other queries share its call or its thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/types.h"

namespace qvl::kernels::detail {

constexpr int64_t kBf16KeyBlock = 16;  // keys per packed K block (16 fp32 scores per vector)
constexpr int64_t kBf16TileBlocks = 4;  // blocks per softmax tile
constexpr int64_t kBf16KeyTile = kBf16KeyBlock * kBf16TileBlocks;  // keys per softmax tile
constexpr int64_t kBf16DimLine = 16;   // head dimensions per packed V line

// Packed K then V of one head, in bf16 elements (uint16_t). Keys are padded with zeros to whole
// blocks of 16, head dimensions with zeros to whole pairs (K) and whole lines of 16 (V):
//   K: blocks × pairs lines of 32: element (key j, dim c) at
//        ((j / 16) · pairs + c / 2) · 32 + 2 · (j % 16) + c % 2
//      (one line: 16 keys × the dimension pair (2p, 2p+1), the operand of one vdpbf16ps whose
//       lanes are 16 keys and whose broadcast operand is the query's pair)
//   V: (blocks · 8) key pairs × lines lines of 32: element (key j, dim c) at
//        ((j / 2) · lines + c / 16) · 32 + 2 · (c % 16) + j % 2
//      (one line: 16 dimensions × the key pair (2i, 2i+1), against a broadcast pair of P)
struct Bf16KvLayout {
  int64_t kv_len = 0, head_dim = 0;
  int64_t blocks = 0;  // key blocks of 16
  int64_t pairs = 0;   // (head_dim + 1) / 2
  int64_t lines = 0;   // (head_dim + 15) / 16
  size_t k_elems() const { return static_cast<size_t>(blocks * pairs * 32); }
  size_t v_elems() const { return static_cast<size_t>(blocks * 8 * lines * 32); }
  size_t elems() const { return k_elems() + v_elems(); }
};

inline Bf16KvLayout bf16_kv_layout(int64_t kv_len, int64_t head_dim) {
  Bf16KvLayout L;
  L.kv_len = kv_len;
  L.head_dim = head_dim;
  L.blocks = (kv_len + kBf16KeyBlock - 1) / kBf16KeyBlock;
  L.pairs = (head_dim + 1) / 2;
  L.lines = (head_dim + kBf16DimLine - 1) / kBf16DimLine;
  return L;
}

// Scales the queries by scale · log2 e before rounding them to bf16 (the kernels' exp is exp2).
constexpr float kLog2e = 1.44269504088896340736f;

// 2^f on [-0.5, 0.5]: a degree-5 polynomial fitted (weighted least squares on Chebyshev nodes)
// to the relative error; evaluated in fp32 with FMAs its relative error is below 2.2e-7
// (kBf16Exp2RelErr), far below the 2^-9 of the bf16 rounding that follows.
constexpr float kExp2C0 = 1.00000012f, kExp2C1 = 0.693146944f, kExp2C2 = 0.240221217f, kExp2C3 = 0.0555074252f,
                kExp2C4 = 0.00967545994f, kExp2C5 = 0.00132669706f;
constexpr double kBf16Exp2RelErr = 2.2e-7;

void attention_bf16_avx512(const float* q, const uint16_t* packed, float* out, const AttentionShape& s);
void attention_bf16_avx2(const float* q, const uint16_t* packed, float* out, const AttentionShape& s);
// Whether attention_bf16_avx512 can run here (AVX-512 F/BW/VL/DQ and AVX512_BF16).
bool cpu_has_avx512_bf16();

}  // namespace qvl::kernels::detail
