// Internal: the packed layout of the quantized weight formats, int8 activations, and the
// per-instruction-set kernel entry points. Model code does not include this header.
//
// Packed layout (all quantized formats). Rows are taken in groups of 16 ("row groups", the
// last one padded with zero rows); a row group is one contiguous region of group_bytes and the
// groups follow each other. Columns are taken in blocks of 32. Inside a row group:
//
//   codes   [nb blocks][codes_per_block bytes]   weight codes, see below
//   Q8_0 / Q4_0:
//     scales  [nb][16] fp16                      block scale of each of the 16 rows
//   Q4_K (super-block = 8 blocks = 256 columns; the last one may hold fewer blocks):
//     dscale  [nsb][16] bf16                     super-block scale unit D  (per row)
//     dmin    [nsb][16] bf16                     super-block offset unit M (per row)
//     sc      [nb][16] u8                        block scale = D * sc
//     mn      [nb][16] u8                        block offset = M * mn
//   GGML_Q4_K: as Q4_K with dscale and dmin in fp16 (ggml's d and dmin; sc, mn in 0..63).
//   GGML_Q5_K: as GGML_Q4_K with codes_per_block = 320: the nibbles, then 64 bytes of fifth bits.
//   GGML_IQ4_XS: dscale [nsb][16] fp16 (ggml's d), then sc [nb][16] u8 (ggml's ls, 0..63).
//   GGML_Q6_K (codes_per_block = 384: 256 bytes of low nibbles, then 128 of high bits):
//     dscale  [nsb][16] fp16                     ggml's d (per row)
//     sc      [nb][2][16] int8                   scale of columns 0-15 / 16-31 = d * sc
//   then zero padding to a multiple of 64 bytes.
//
// Codes of one block are ordered for a 16-lane int32 dot product (vpdpbusd): the block's 32
// columns form 8 "steps" of 4 consecutive columns; a step is 64 bytes = [16 rows][4 columns].
//   Q8_0: 8 steps × 64 bytes; byte = q + 128 (q in -127..127), value = scale * q.
//   Q4_0: 4 × 64 bytes; byte j (j = 0..3) holds step j in its low nibble and step j + 4 in its
//         high nibble; value = scale * (q - 8), q in 0..15.
//   Q4_K: nibbles as Q4_0; value = D*sc * q - M*mn, q in 0..15.
//   GGML_Q6_K: q in 0..63 = nibble (as Q4_0) | high << 4; value = d*sc * (q - 32). The high bits
//         are two 64-byte vectors: byte i of the first holds, at bits 2j..2j+1, the high bits of
//         the low nibble of byte i of step j (j = 0..3); the second those of the high nibbles.
//         So the low nibbles are columns 0-15 and the high nibbles 16-31: one scale each.
//   GGML_Q5_K: q = nibble | fifth << 4, value as Q4_K; byte i of the fifth-bit vector holds at bit s
//         the fifth bit of step s (s = 0..7: the low nibble of byte i of step s, high for s >= 4).
//   GGML_IQ4_XS: nibbles as Q4_0 index kIq4Levels; value = d * (ls - 32) * level.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/types.h"

namespace qvl::kernels::detail {

constexpr int64_t kBlock = kQuantBlock;  // columns per quantization block
constexpr int64_t kGroupRows = 16;    // rows interleaved in one row group
constexpr int64_t kSuperBlocks = 8;   // blocks per Q4_K super-block

struct QLayout {
  WeightFormat format = WeightFormat::kDense;
  int64_t rows = 0, cols = 0;
  int64_t nb = 0;      // blocks per row (cols / 32)
  int64_t nsb = 0;     // Q4_K super-blocks per row
  int64_t groups = 0;  // row groups (ceil(rows / 16))
  size_t codes_per_block = 0;
  size_t scales_off = 0;  // Q8_0/Q4_0 scales; Q4_K dscale
  size_t dmin_off = 0, sc_off = 0, mn_off = 0;  // Q4_K (sc_off also GGML_Q6_K)
  size_t group_bytes = 0;
  size_t total_bytes() const { return static_cast<size_t>(groups) * group_bytes; }
};

// Throws qvl::Error (kInvalidArgument) if the shape cannot be stored in the format.
QLayout q_layout(WeightFormat format, int64_t rows, int64_t cols);

// Activations rounded to int8 in blocks of 32 along each row (symmetric, one fp32 scale per
// block): x ≈ d * q. init = -zero_point * sum(q) seeds the int32 dot products of kernels that
// store weight codes with an offset; ds = d * sum(q) serves the Q4_K offsets.
struct QActs {
  const int8_t* q = nullptr;      // [m][k]
  const float* d = nullptr;       // [m][nb]
  const int32_t* init = nullptr;  // [m][nb]
  const float* ds = nullptr;      // [m][nb]
  // GGML_Q6_K only: -32 * Σq over each 16-column half of each block, seeding the int32 dot
  // products of the two halves (each has its own scale).
  const int32_t* half_init = nullptr;  // [m][2 nb]
  int64_t m = 0, k = 0, nb = 0;
};

// Fills half_init[m][2 nb] for GGML_Q6_K from the rounded activations q[m][k].
void q6_half_init(const int8_t* q, int64_t m, int64_t k, int32_t* half_init);

// Whether `format` holds ggml's k-quant blocks (packed by pack_k_group, never quantized by qvl).
constexpr bool is_ggml_k_format(WeightFormat format) {
  return format == WeightFormat::kGgmlQ4_K || format == WeightFormat::kGgmlQ6_K || format == WeightFormat::kGgmlQ5_K ||
         format == WeightFormat::kGgmlIQ4_XS;
}

// Scalar reference of the activation rounding (the SIMD version must give identical bytes):
// per block amax = max|x|, d = amax / 127, q = round_to_nearest_even(x * (127 / amax)).
void quantize_acts_scalar(const float* x, int64_t m, int64_t k, int32_t zero_point, int8_t* q, float* d,
                          int32_t* init, float* ds);

// Zero point the kernel of this ISA expects in QActs::init for this format.
int32_t act_zero_point(WeightFormat format, Isa isa);

// Computes y[i][r] for all i < a.m and the rows of row groups [g0, g1).
void qmatmul_scalar(const QLayout& L, const uint8_t* data, const QActs& a, const float* bias, float* y,
                    int64_t g0, int64_t g1);
void qmatmul_avx2(const QLayout& L, const uint8_t* data, const QActs& a, const float* bias, float* y,
                  int64_t g0, int64_t g1);
void qmatmul_avx512(const QLayout& L, const uint8_t* data, const QActs& a, const float* bias, float* y,
                    int64_t g0, int64_t g1);

// Quantizes and packs one row group: rows holds its 16 rows × cols as fp32 (zero rows past the
// end), grp receives L.group_bytes (the caller zeroes it first; quantize_matrix drives this).
void quantize_group(const QLayout& L, const float* rows, uint8_t* grp);

// Packs one row group from codes already chosen (Q8_0: int8 value + 128; Q4_0: 0..15) and their
// fp16 block scales: scales [16][nb], codes [16][cols] (zero rows past the end). No rounding:
// the packed matrix holds exactly these weights.
void pack_group(const QLayout& L, const uint16_t* scales, const uint8_t* codes, uint8_t* grp);

// Packs one row group of ggml k-quant blocks as they are: rows[r] for the group's 16 rows (rows
// past the end zeroed by the caller: codes of weight 0, scales 0).
void pack_k_group(const QLayout& L, const GgmlKRow* rows, uint8_t* grp);

// The code of weight (row r of the group, column c of the block) in one block's packed codes, per
// the layout above: Q8_0 as stored (value + 128), the 4-bit formats' nibble (0..15), GGML_Q5_K's
// 5-bit code (0..31) and GGML_Q6_K's 6-bit code (0..63). Shared by the dequantizer and the scalar kernel.
inline int32_t code_q8(const uint8_t* codes, int64_t r, int64_t c) {
  return codes[(c / 4) * 64 + r * 4 + (c % 4)];
}
inline int32_t code_q4(const uint8_t* codes, int64_t r, int64_t c) {
  const int64_t step = c / 4;
  const uint8_t byte = codes[(step % 4) * 64 + r * 4 + (c % 4)];
  return step < 4 ? (byte & 0x0f) : (byte >> 4);
}
inline int32_t code_q5(const uint8_t* codes, int64_t r, int64_t c) {
  return code_q4(codes, r, c) | (((codes[256 + r * 4 + (c % 4)] >> (c / 4)) & 1) << 4);
}
inline int32_t code_q6(const uint8_t* codes, int64_t r, int64_t c) {
  const int64_t step = c / 4;
  const int32_t high = (codes[256 + (step < 4 ? 0 : 64) + r * 4 + (c % 4)] >> (2 * (step % 4))) & 3;
  return code_q4(codes, r, c) | (high << 4);
}

// Decodes row `row` of a packed matrix into out[cols].
void dequantize_row(const QLayout& L, const uint8_t* data, int64_t row, float* out);

// Rounding helpers shared by the quantizer and the tests.
uint16_t f16_round_away(float v);   // fp16 nearest to v, moved away from zero if |fp16| < |v|
uint16_t bf16_round_up(float v);    // bf16 >= v for v >= 0

}  // namespace qvl::kernels::detail
