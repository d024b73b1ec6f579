#include "formats/ggml_quants.h"

#include <cstring>

#include "core/check.h"
#include "core/dtype.h"
#include "core/thread_pool.h"

namespace qvl {

namespace {

// Eight bytes at a time: the masks and shifts below act on each byte of the word alone (what a
// shift carries in from the neighbouring byte is masked off), so the word's byte order does not
// matter.
constexpr uint64_t kLowNibbles = 0x0F0F0F0F0F0F0F0Full;
constexpr uint64_t kLowTwoBits = 0x0303030303030303ull;
constexpr uint64_t kLowBit = 0x0101010101010101ull;
inline uint64_t load_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline void store_u64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
// 16 bytes of packed nibbles to 32 codes: the low nibbles first, then the high ones (ggml's order).
inline void split_nibbles16(const uint8_t* q, uint8_t* codes) {
  for (int w = 0; w < 2; ++w) {
    const uint64_t v = load_u64(q + 8 * w);
    store_u64(codes + 8 * w, v & kLowNibbles);
    store_u64(codes + 16 + 8 * w, (v >> 4) & kLowNibbles);
  }
}

// Block layouts as ggml stores them (ggml-common.h); every field is read with memcpy since the
// file gives no alignment for them.
constexpr int64_t kQK = 32;    // elements of the 32-element block types
constexpr int64_t kQK_K = 256; // elements of a k-quant super-block

float fp16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

using kernels::kIq4Levels;  // the 16 non-uniform levels of IQ4_NL and IQ4_XS

void q4_0(const uint8_t* b, float* y) {  // d, qs[16]
  const float d = fp16_at(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
    y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

void q4_1(const uint8_t* b, float* y) {  // d, m, qs[16]
  const float d = fp16_at(b), m = fp16_at(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
    y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

// The fifth bit of element j (low half) and j + 16 (high half) comes from the 32-bit qh.
template <bool kOffset>
void q5(const uint8_t* b, float* y) {  // Q5_0: d, qh, qs[16]; Q5_1: d, m, qh, qs[16]
  const float d = fp16_at(b), m = kOffset ? fp16_at(b + 2) : 0.0f;
  const uint8_t* p = b + (kOffset ? 4 : 2);
  uint32_t qh;
  std::memcpy(&qh, p, 4);
  const uint8_t* qs = p + 4;
  for (int j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) << 4) & 0x10);
    const int hi = (qs[j] >> 4) | static_cast<int>((qh >> (j + 12)) & 0x10);
    if constexpr (kOffset) {
      y[j] = static_cast<float>(lo) * d + m;
      y[j + 16] = static_cast<float>(hi) * d + m;
    } else {
      y[j] = static_cast<float>(lo - 16) * d;
      y[j + 16] = static_cast<float>(hi - 16) * d;
    }
  }
}

void q8_0(const uint8_t* b, float* y) {  // d, qs[32] (int8)
  const float d = fp16_at(b);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}

void iq4_nl(const uint8_t* b, float* y) {  // d, qs[16]
  const float d = fp16_at(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(kIq4Levels[qs[j] & 0x0F]);
    y[j + 16] = d * static_cast<float>(kIq4Levels[qs[j] >> 4]);
  }
}

void q2_k(const uint8_t* b, float* y) {  // scales[16], qs[64], d, dmin
  const uint8_t* scales = b;
  const uint8_t* q = b + 16;
  const float d = fp16_at(b + 80), min = fp16_at(b + 82);
  int is = 0;
  for (int n = 0; n < kQK_K; n += 128) {
    int shift = 0;
    for (int j = 0; j < 4; ++j) {
      for (int half = 0; half < 2; ++half) {
        const uint8_t sc = scales[is++];
        const float dl = d * static_cast<float>(sc & 0x0F), ml = min * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l + 16 * half] >> shift) & 3) - ml;
      }
      shift += 2;
    }
    q += 32;
  }
}

void q3_k(const uint8_t* b, float* y) {  // hmask[32], qs[64], scales[12], d
  const uint8_t* hm = b;
  const uint8_t* q = b + 32;
  const float d_all = fp16_at(b + 108);
  // Sixteen 6-bit scales packed in 12 bytes: low 4 bits in bytes 0..7, high 2 bits in 8..11.
  uint32_t aux[4];
  std::memcpy(aux, b + 96, 12);
  const uint32_t tmp = aux[2];
  constexpr uint32_t kLow4 = 0x0f0f0f0f, kLow2 = 0x03030303;
  aux[2] = ((aux[0] >> 4) & kLow4) | (((tmp >> 4) & kLow2) << 4);
  aux[3] = ((aux[1] >> 4) & kLow4) | (((tmp >> 6) & kLow2) << 4);
  aux[0] = (aux[0] & kLow4) | (((tmp >> 0) & kLow2) << 4);
  aux[1] = (aux[1] & kLow4) | (((tmp >> 2) & kLow2) << 4);
  int8_t scales[16];
  std::memcpy(scales, aux, 16);
  int is = 0;
  uint8_t mask = 1;
  for (int n = 0; n < kQK_K; n += 128) {
    int shift = 0;
    for (int j = 0; j < 4; ++j) {
      for (int half = 0; half < 2; ++half) {
        const float dl = d_all * static_cast<float>(scales[is++] - 32);
        for (int l = 16 * half; l < 16 * half + 16; ++l) {
          const int v = ((q[l] >> shift) & 3) - ((hm[l] & mask) ? 0 : 4);
          *y++ = dl * static_cast<float>(v);
        }
      }
      shift += 2;
      mask = static_cast<uint8_t>(mask << 1);
    }
    q += 32;
  }
}

// Scale and min of sub-block j of a Q4_K/Q5_K super-block (6 bits each, packed in 12 bytes).
void scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

template <bool kFifthBit>
void q45_k(const uint8_t* b, float* y) {  // d, dmin, scales[12], (Q5_K: qh[32]), qs[128]
  const float d = fp16_at(b), min = fp16_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* q = b + (kFifthBit ? 48 : 16);
  int is = 0;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0; j < kQK_K; j += 64) {
    uint8_t sc, m;
    scale_min_k4(is, scales, &sc, &m);
    const float d1 = d * static_cast<float>(sc), m1 = min * static_cast<float>(m);
    scale_min_k4(is + 1, scales, &sc, &m);
    const float d2 = d * static_cast<float>(sc), m2 = min * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) {
      const int v = (q[l] & 0x0F) + (kFifthBit && (qh[l] & u1) ? 16 : 0);
      *y++ = d1 * static_cast<float>(v) - m1;
    }
    for (int l = 0; l < 32; ++l) {
      const int v = (q[l] >> 4) + (kFifthBit && (qh[l] & u2) ? 16 : 0);
      *y++ = d2 * static_cast<float>(v) - m2;
    }
    q += 32;
    is += 2;
    u1 = static_cast<uint8_t>(u1 << 2);
    u2 = static_cast<uint8_t>(u2 << 2);
  }
}

void q6_k(const uint8_t* b, float* y) {  // ql[128], qh[64], scales[16] (int8), d
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = fp16_at(b + 208);
  for (int n = 0; n < kQK_K; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

// ggml's 6-bit IQ4_XS scale of sub-block ib (0..7): 4 low bits in scales_l, 2 high in scales_h.
int iq4_xs_scale(const uint8_t* block, int ib) {
  uint16_t scales_h;
  std::memcpy(&scales_h, block + 2, 2);
  return ((block[4 + ib / 2] >> (4 * (ib % 2))) & 0x0F) | (((scales_h >> (2 * ib)) & 3) << 4);
}

void iq4_xs(const uint8_t* b, float* y) {  // d, scales_h (u16), scales_l[4], qs[128]
  const float d = fp16_at(b);
  const uint8_t* qs = b + 8;
  for (int ib = 0; ib < kQK_K / 32; ++ib) {
    const int ls = iq4_xs_scale(b, ib);
    const float dl = d * static_cast<float>(ls - 32);
    for (int j = 0; j < 16; ++j) {
      y[j] = dl * static_cast<float>(kIq4Levels[qs[j] & 0x0F]);
      y[j + 16] = dl * static_cast<float>(kIq4Levels[qs[j] >> 4]);
    }
    y += 32;
    qs += 16;
  }
}

using BlockDecoder = void (*)(const uint8_t*, float*);

BlockDecoder block_decoder(GgmlType type) {
  switch (type) {
    case GgmlType::kQ4_0: return q4_0;
    case GgmlType::kQ4_1: return q4_1;
    case GgmlType::kQ5_0: return q5<false>;
    case GgmlType::kQ5_1: return q5<true>;
    case GgmlType::kQ8_0: return q8_0;
    case GgmlType::kQ2_K: return q2_k;
    case GgmlType::kQ3_K: return q3_k;
    case GgmlType::kQ4_K: return q45_k<false>;
    case GgmlType::kQ5_K: return q45_k<true>;
    case GgmlType::kQ6_K: return q6_k;
    case GgmlType::kIQ4_NL: return iq4_nl;
    case GgmlType::kIQ4_XS: return iq4_xs;
    default: return nullptr;
  }
}

}  // namespace

bool ggml_type_dequantizable(GgmlType type) {
  return type == GgmlType::kF32 || type == GgmlType::kF16 || type == GgmlType::kBF16 || block_decoder(type) != nullptr;
}

void dequantize_ggml(GgmlType type, const void* blocks, int64_t count, float* out) {
  const auto* src = static_cast<const uint8_t*>(blocks);
  switch (type) {
    case GgmlType::kF32: std::memcpy(out, src, static_cast<size_t>(count) * 4); return;
    case GgmlType::kF16: convert_to_f32(DType::kF16, src, out, static_cast<size_t>(count)); return;
    case GgmlType::kBF16: convert_to_f32(DType::kBF16, src, out, static_cast<size_t>(count)); return;
    default: break;
  }
  const BlockDecoder decode = block_decoder(type);
  const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(type));
  if (decode == nullptr || info == nullptr)
    fail(ErrorKind::kUnsupported, "ggml type ", info ? info->name : "?", " (", static_cast<uint32_t>(type),
         ") cannot be dequantized");
  QVL_ASSERT(count % info->block_elems == 0);
  const int64_t blocks_n = count / info->block_elems;
  for (int64_t i = 0; i < blocks_n; ++i)
    decode(src + static_cast<size_t>(i * info->block_bytes), out + i * info->block_elems);
}

void ggml_blocks_to_codes(GgmlType type, const void* row_blocks, int64_t cols, uint16_t* scales, uint8_t* codes) {
  QVL_ASSERT((type == GgmlType::kQ8_0 || type == GgmlType::kQ4_0) && cols % kQK == 0);
  const auto* b = static_cast<const uint8_t*>(row_blocks);
  const size_t block_bytes = type == GgmlType::kQ8_0 ? 34 : 18;
  for (int64_t i = 0; i < cols / kQK; ++i, b += block_bytes) {
    std::memcpy(&scales[i], b, 2);
    uint8_t* c = codes + i * kQK;
    if (type == GgmlType::kQ8_0) {  // int8 q + 128 is q with its top bit flipped
      for (int w = 0; w < 4; ++w) store_u64(c + 8 * w, load_u64(b + 2 + 8 * w) ^ (kLowBit << 7));
    } else {
      split_nibbles16(b + 2, c);
    }
  }
}

void ggml_k_blocks_to_row(GgmlType type, const void* row_blocks, int64_t cols, const kernels::GgmlKRow& out) {
  QVL_ASSERT((type == GgmlType::kQ4_K || type == GgmlType::kQ5_K || type == GgmlType::kQ6_K ||
              type == GgmlType::kIQ4_XS) &&
             cols % kQK_K == 0);
  const auto* b = static_cast<const uint8_t*>(row_blocks);
  const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(type));
  for (int64_t sb = 0; sb < cols / kQK_K; ++sb, b += info->block_bytes) {
    uint8_t* codes = out.codes + sb * kQK_K;
    if (type == GgmlType::kQ4_K || type == GgmlType::kQ5_K) {  // d, dmin, scales[12], (qh[32]), qs[128]
      const bool q5 = type == GgmlType::kQ5_K;
      std::memcpy(&out.d[sb], b, 2);
      std::memcpy(&out.dmin[sb], b + 2, 2);
      for (int j = 0; j < 8; ++j) scale_min_k4(j, b + 4, &out.sc[sb * 8 + j], &out.mn[sb * 8 + j]);
      const uint8_t* qh = b + 16;
      const uint8_t* qs = b + (q5 ? 48 : 16);
      for (int chunk = 0; chunk < 4; ++chunk) {  // 64 elements: 32 low nibbles, then 32 high
        for (int w = 0; w < 4; ++w) {                // with Q5_K's fifth bits 2 chunk and 2 chunk + 1
          const uint64_t q = load_u64(qs + 32 * chunk + 8 * w);
          uint64_t lo = q & kLowNibbles, hi = (q >> 4) & kLowNibbles;
          if (q5) {
            const uint64_t h = load_u64(qh + 8 * w);
            lo |= ((h >> (2 * chunk)) & kLowBit) << 4;
            hi |= ((h >> (2 * chunk + 1)) & kLowBit) << 4;
          }
          store_u64(codes + 64 * chunk + 8 * w, lo);
          store_u64(codes + 64 * chunk + 32 + 8 * w, hi);
        }
      }
    } else if (type == GgmlType::kIQ4_XS) {  // d, scales_h, scales_l[4], qs[128]
      std::memcpy(&out.d[sb], b, 2);
      const uint8_t* qs = b + 8;
      for (int ib = 0; ib < 8; ++ib) {
        out.sc[sb * 8 + ib] = static_cast<uint8_t>(iq4_xs_scale(b, ib));
        split_nibbles16(qs + 16 * ib, codes + 32 * ib);
      }
    } else {  // Q6_K: ql[128], qh[64], scales[16], d
      const uint8_t* ql = b;
      const uint8_t* qh = b + 128;
      std::memcpy(out.sc + sb * 16, b + 192, 16);
      std::memcpy(&out.d[sb], b + 208, 2);
      for (int half = 0; half < 2; ++half, ql += 64, qh += 32) {
        uint8_t* c = codes + 128 * half;
        for (int w = 0; w < 4; ++w) {  // four 32-element rows: nibble (lo, hi) x ql half, 2 bits of qh each
          const uint64_t a = load_u64(ql + 8 * w), a32 = load_u64(ql + 32 + 8 * w), h = load_u64(qh + 8 * w);
          store_u64(c + 8 * w, (a & kLowNibbles) | ((h & kLowTwoBits) << 4));
          store_u64(c + 32 + 8 * w, (a32 & kLowNibbles) | (((h >> 2) & kLowTwoBits) << 4));
          store_u64(c + 64 + 8 * w, ((a >> 4) & kLowNibbles) | (((h >> 4) & kLowTwoBits) << 4));
          store_u64(c + 96 + 8 * w, ((a32 >> 4) & kLowNibbles) | (((h >> 6) & kLowTwoBits) << 4));
        }
      }
    }
  }
}

bool ggml_type_packable(GgmlType type) {
  return type == GgmlType::kQ8_0 || type == GgmlType::kQ4_0 || type == GgmlType::kQ4_K || type == GgmlType::kQ5_K ||
         type == GgmlType::kQ6_K || type == GgmlType::kIQ4_XS;
}

kernels::QuantizedMatrix pack_ggml_matrix(GgmlType type, const void* data, int64_t rows, int64_t cols,
                                          ThreadPool* pool) {
  QVL_ASSERT(ggml_type_packable(type));
  const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(type));
  const size_t row_bytes = static_cast<size_t>(cols / info->block_elems) * info->block_bytes;
  const auto* src = static_cast<const uint8_t*>(data);
  if (type == GgmlType::kQ8_0 || type == GgmlType::kQ4_0) {
    return kernels::pack_quantized_blocks(
        type == GgmlType::kQ8_0 ? kernels::WeightFormat::kQ8_0 : kernels::WeightFormat::kQ4_0, rows, cols,
        [&](int64_t row, uint16_t* scales, uint8_t* codes) {
          ggml_blocks_to_codes(type, src + static_cast<size_t>(row) * row_bytes, cols, scales, codes);
        },
        pool);
  }
  const kernels::WeightFormat format = type == GgmlType::kQ4_K   ? kernels::WeightFormat::kGgmlQ4_K
                                       : type == GgmlType::kQ5_K ? kernels::WeightFormat::kGgmlQ5_K
                                       : type == GgmlType::kQ6_K ? kernels::WeightFormat::kGgmlQ6_K
                                                                 : kernels::WeightFormat::kGgmlIQ4_XS;
  return kernels::pack_ggml_k_blocks(
      format, rows, cols,
      [&](int64_t row, const kernels::GgmlKRow& out) {
        ggml_k_blocks_to_row(type, src + static_cast<size_t>(row) * row_bytes, cols, out);
      },
      pool);
}

}  // namespace qvl
