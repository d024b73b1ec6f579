// Kernel micro-benchmarks (Google Benchmark).
//
//   ./build/bench/kernel_bench                                  # everything (a few minutes)
//   ./build/bench/kernel_bench --benchmark_filter='matvec/.*q4' # a subset
//   QVL_MAX_ISA=avx2 ./build/bench/kernel_bench ...             # cap the instruction set
//
// Names: <kernel>/<shape>/<format>/<isa>/threads:<n>. "isa" is the level used (set_max_isa);
// "scalar" is the portable reference code, the baseline for speedups.
// matvec reports GB/s of weight bytes streamed; each iteration uses the next of several copies of
// the matrix (together > 256 MB) so the weights come from DRAM as in a real decode step, not
// from the 32 MB L3. matmul reports GOP/s (2·m·n·k per call; int8 ops for quantized formats),
// attention FLOP/s. On a shared machine add --benchmark_repetitions=5: the "min" (time) and
// "max" (rate) aggregates then show the least-disturbed repetition.
#include <benchmark/benchmark.h>

// GCC 12 raises a false -Wrestrict inside std::string concatenation (GCC bug 105329).
#pragma GCC diagnostic ignored "-Wrestrict"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "kernels/quant.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"

#include "peak.h"

namespace qvl::kernels {
namespace {

struct Shape {
  const char* name;
  int64_t rows, cols;  // W[rows, cols]: cols -> rows
};
// Qwen3-VL 4B text decoder (hidden 2560, intermediate 9728, 32 heads x 128, vocab 151936).
constexpr Shape kShapes[] = {
    {"2560to9728", 9728, 2560},  // gate_proj / up_proj
    {"9728to2560", 2560, 9728},  // down_proj
    {"2560to4096", 4096, 2560},  // q_proj
    {"lm_head", 151936, 2560},
};

struct Fmt {
  const char* name;
  DType dtype;
  WeightFormat format;
};
constexpr Fmt kFormats[] = {
    {"f32", DType::kF32, WeightFormat::kDense},    {"bf16", DType::kBF16, WeightFormat::kDense},
    {"f16", DType::kF16, WeightFormat::kDense},    {"q8_0", DType::kU8, WeightFormat::kQ8_0},
    {"q4_0", DType::kU8, WeightFormat::kQ4_0},     {"q4_k", DType::kU8, WeightFormat::kQ4_K},
    // llama.cpp's Q4_K and Q6_K blocks as a GGUF file holds them (random blocks: speed only).
    {"ggml_q4_k", DType::kU8, WeightFormat::kGgmlQ4_K}, {"ggml_q5_k", DType::kU8, WeightFormat::kGgmlQ5_K},
    {"ggml_q6_k", DType::kU8, WeightFormat::kGgmlQ6_K}, {"ggml_iq4_xs", DType::kU8, WeightFormat::kGgmlIQ4_XS},
};

ThreadPool& pool(int threads) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  auto& p = pools[threads];
  if (!p) p = std::make_unique<ThreadPool>(threads);
  return *p;
}

// Random ggml k-quant blocks (codes, scales) in `format`: the speed of a real file's matrices.
QuantizedMatrix random_ggml_blocks(WeightFormat format, int64_t rows, int64_t cols) {
  const bool q6 = format == WeightFormat::kGgmlQ6_K;
  return pack_ggml_k_blocks(
      format, rows, cols,
      [&](int64_t row, const GgmlKRow& out) {
        std::mt19937 r(static_cast<uint32_t>(row));
        for (int64_t sb = 0; sb < (cols + 255) / 256; ++sb) out.d[sb] = out.dmin[sb] = f32_to_f16(1e-3f);
        for (int64_t j = 0; j < (q6 ? cols / 16 : cols / 32); ++j) {
          out.sc[j] = static_cast<uint8_t>(r() % 64);
          out.mn[j] = static_cast<uint8_t>(r() % 64);
        }
        const uint32_t levels = q6 ? 64 : format == WeightFormat::kGgmlQ5_K ? 32 : 16;
        for (int64_t c = 0; c < cols; ++c) out.codes[c] = static_cast<uint8_t>(r() % levels);
      },
      &pool(default_thread_count()));
}


struct AlignedBuf {
  std::unique_ptr<uint8_t[]> raw;
  uint8_t* data = nullptr;
  explicit AlignedBuf(size_t n) : raw(new uint8_t[n + 64]) {
    data = raw.get() + (64 - reinterpret_cast<uintptr_t>(raw.get()) % 64) % 64;
  }
};

// Copies of one matrix in one format (together at least min_bytes), built once and cached.
struct Weights {
  std::vector<AlignedBuf> bufs;
  std::vector<WeightMatrix> mats;
  size_t bytes = 0;
};

Weights& weights(const Shape& s, const Fmt& f, size_t min_bytes) {
  static std::map<std::string, std::unique_ptr<Weights>> cache;
  const std::string key = std::string(s.name) + "/" + f.name + "/" + std::to_string(min_bytes);
  auto& w = cache[key];
  if (w) return *w;
  w = std::make_unique<Weights>();
  // Random bf16 weights (sigma 0.02, like a trained projection), converted as needed.
  const size_t n = static_cast<size_t>(s.rows * s.cols);
  std::vector<uint16_t> bf(n);
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  for (auto& v : bf) v = f32_to_bf16(dist(rng));
  AlignedBuf master(f.format == WeightFormat::kDense ? n * dtype_size(f.dtype) : 0);
  WeightMatrix src{DType::kBF16, s.rows, s.cols, bf.data()};
  QuantizedMatrix q;
  const uint8_t* bytes = nullptr;
  if (detail::is_ggml_k_format(f.format)) {
    q = random_ggml_blocks(f.format, s.rows, s.cols);
    bytes = q.bytes();
    w->bytes = q.size_bytes();
  } else if (f.format != WeightFormat::kDense) {
    q = quantize_matrix(src, f.format, &pool(default_thread_count()));
    bytes = q.bytes();
    w->bytes = q.size_bytes();
  } else {
    w->bytes = n * dtype_size(f.dtype);
    for (size_t i = 0; i < n; ++i) {
      const float v = bf16_to_f32(bf[i]);
      if (f.dtype == DType::kF32) std::memcpy(master.data + 4 * i, &v, 4);
      else if (f.dtype == DType::kF16) {
        const uint16_t h = f32_to_f16(v);
        std::memcpy(master.data + 2 * i, &h, 2);
      } else std::memcpy(master.data + 2 * i, &bf[i], 2);
    }
    bytes = master.data;
  }
  const size_t copies = std::max<size_t>(1, std::min<size_t>(32, (min_bytes + w->bytes - 1) / w->bytes));
  for (size_t c = 0; c < copies; ++c) {
    w->bufs.emplace_back(w->bytes);
    std::memcpy(w->bufs.back().data, bytes, w->bytes);
    w->mats.push_back(WeightMatrix{f.dtype, s.rows, s.cols, w->bufs.back().data, f.format});
  }
  return *w;
}

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

void bench_matmul(benchmark::State& state, const Shape& s, const Fmt& f, int64_t m, Isa isa, int threads,
                  bool dram) {
  if (set_max_isa(isa) != isa) {
    state.SkipWithError("ISA not supported by this CPU");
    return;
  }
  Weights& w = weights(s, f, dram ? (256u << 20) : 0);
  const std::vector<float> x = randn(static_cast<size_t>(m * s.cols), 1);
  std::vector<float> y(static_cast<size_t>(m * s.rows));
  ThreadPool* p = threads > 1 ? &pool(threads) : nullptr;
  size_t next = 0;
  for (auto _ : state) {
    matmul(x.data(), m, w.mats[next], nullptr, y.data(), p);
    benchmark::DoNotOptimize(y.data());
    next = (next + 1) % w.mats.size();
  }
  set_max_isa(Isa::kAVX512);
  if (dram) {
    if (m > 1)
      state.counters["GOP/s"] = benchmark::Counter(2.0 * m * s.rows * s.cols, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["GB/s"] = benchmark::Counter(static_cast<double>(w.bytes), benchmark::Counter::kIsIterationInvariantRate);
  } else {
    state.counters["GOP/s"] = benchmark::Counter(2.0 * m * s.rows * s.cols, benchmark::Counter::kIsIterationInvariantRate);
  }
  state.counters["MB"] = static_cast<double>(w.bytes) / 1e6;
}

// K/V stored as `kv` (kernels::KvType), rows of head_dim elements. dram: each iteration reads
// the next of several K/V copies (together > 128 MB), as a real decode step does (every layer
// and KV head has its own rows); otherwise one copy stays in the caches.
struct AttnBench {
  const char* name;
  int64_t q_len, heads, kv_len, d;
  bool causal, dram;
};

void bench_attention(benchmark::State& state, const AttnBench& a, KvType kv, Isa isa) {
  if (set_max_isa(isa) != isa) {
    state.SkipWithError("ISA not supported by this CPU");
    return;
  }
  const int64_t q_len = a.q_len, heads = a.heads, kv_len = a.kv_len, d = a.d;
  const bool dram = a.dram;
  const std::vector<float> q = randn(static_cast<size_t>(q_len * heads * d), 1);
  const std::vector<float> k = randn(static_cast<size_t>(kv_len * d), 2), v = randn(static_cast<size_t>(kv_len * d), 3);
  const size_t bytes = kv_bytes(kv, kv_len * d);
  const size_t copies = dram ? (size_t{128} << 20) / (2 * bytes) + 1 : 1;
  std::vector<uint8_t> kb(bytes * copies), vb(bytes * copies);
  for (size_t c = 0; c < copies; ++c) {
    for (int64_t j = 0; j < kv_len; ++j) {
      store_kv_row(k.data() + j * d, d, kv, kb.data() + c * bytes + kv_bytes(kv, j * d));
      store_kv_row(v.data() + j * d, d, kv, vb.data() + c * bytes + kv_bytes(kv, j * d));
    }
  }
  std::vector<float> out(q.size());
  AttentionShape sh;
  sh.q_len = q_len;
  sh.kv_len = kv_len;
  sh.head_dim = d;
  sh.q_stride = sh.out_stride = heads * d;
  sh.k_stride = sh.v_stride = d;
  sh.scale = 1.0f / std::sqrt(static_cast<float>(d));
  sh.causal = a.causal;
  sh.causal_offset = a.causal ? kv_len - q_len : 0;
  sh.q_heads = heads;
  sh.q_head_stride = sh.out_head_stride = d;
  sh.kv_type = kv;
  double pairs = 0;  // visible (query, key) pairs
  for (int64_t i = 0; i < q_len; ++i) pairs += static_cast<double>(a.causal ? kv_len - q_len + i + 1 : kv_len) * heads;
  size_t next = 0;
  for (auto _ : state) {
    attention(q.data(), kb.data() + next * bytes, vb.data() + next * bytes, out.data(), sh);
    benchmark::DoNotOptimize(out.data());
    next = next + 1 == copies ? 0 : next + 1;
  }
  set_max_isa(Isa::kAVX512);
  // 2 flops per multiply-add, q·k and p·v: 4 d per visible (query, key) pair.
  state.counters["FLOP/s"] = benchmark::Counter(4.0 * d * pairs, benchmark::Counter::kIsIterationInvariantRate);
  // K and V bytes one call streams.
  state.counters["KV_MB"] = 2.0 * static_cast<double>(bytes) / 1e6;
  state.counters["KV_GB/s"] =
      benchmark::Counter(2.0 * static_cast<double>(bytes), benchmark::Counter::kIsIterationInvariantRate);
}

// ---- the machine's arithmetic peak and the vision tower's attention ----------------------------

// peak/*: bench/peak.h's register-only loops on every thread of the pool: what the attention's
// FLOP/s are measured against.
constexpr int64_t kPeakSteps = 1 << 16;

enum class PeakOp { kBf16Dot, kF32Fma, kInt8Dot };

void bench_peak(benchmark::State& state, PeakOp op, int threads) {
#if QVL_BENCH_PEAK
  if (set_max_isa(Isa::kAVX512) != Isa::kAVX512 || (op == PeakOp::kBf16Dot && !attention_bf16_native())) {
    state.SkipWithError(op == PeakOp::kBf16Dot ? "no AVX512_BF16" : "no AVX-512 VNNI");
    return;
  }
  ThreadPool& p = pool(threads);
  std::vector<float> sink(static_cast<size_t>(threads));
  for (auto _ : state) {
    p.run_on_all([&](int t) {
      sink[static_cast<size_t>(t)] = op == PeakOp::kBf16Dot  ? bench::peak_bf16_loop(kPeakSteps)
                                     : op == PeakOp::kF32Fma ? bench::peak_f32_loop(kPeakSteps)
                                                             : static_cast<float>(bench::peak_int8_loop(kPeakSteps));
    });
    benchmark::DoNotOptimize(sink.data());
  }
  const double work = (op == PeakOp::kInt8Dot ? bench::peak_int8_ops(kPeakSteps)
                                               : bench::peak_flops(op == PeakOp::kBf16Dot, kPeakSteps)) *
                      threads;
  state.counters[op == PeakOp::kInt8Dot ? "OP/s" : "FLOP/s"] =
      benchmark::Counter(work, benchmark::Counter::kIsIterationInvariantRate);
#else
  (void)op, (void)threads;
  state.SkipWithError("x86 only");
#endif
}

// One vision-tower head: n patches attending to each other (head_dim 64), split into blocks of
// 128 queries over the pool as the tower does. bf16: K/V packed once (timed), then the blocks;
// f32: attention() per block (the blocked fp32 kernel). FLOP/s count 4·d per (query, key) pair.
void bench_vision_head(benchmark::State& state, int64_t n, AttentionPrecision prec, Isa isa, int threads) {
  if (set_max_isa(isa) != isa) {
    state.SkipWithError("ISA not supported by this CPU");
    return;
  }
  const int64_t d = 64, heads = 16, stride = 3 * heads * d;  // rows laid out as the tower's qkv
  const std::vector<float> qkv = randn(static_cast<size_t>(n * stride), 7);
  const float* q = qkv.data();
  const float* k = q + heads * d;
  const float* v = k + heads * d;
  std::vector<float> out(static_cast<size_t>(n * heads * d));
  std::vector<uint16_t> packed(prec == AttentionPrecision::kBF16 ? attention_bf16_packed_elems(n, d) : 0);
  ThreadPool& p = pool(threads);
  const int64_t block = 128, blocks = (n + block - 1) / block;
  AttentionShape s;
  s.kv_len = n;
  s.head_dim = d;
  s.q_stride = s.k_stride = s.v_stride = stride;
  s.out_stride = heads * d;
  s.scale = 0.125f;
  for (auto _ : state) {
    if (prec == AttentionPrecision::kBF16) pack_attention_kv_bf16(k, stride, v, stride, n, d, packed.data());
    p.parallel_for_chunked(blocks, [&](int64_t b0, int64_t b1, int) {
      for (int64_t b = b0; b < b1; ++b) {
        AttentionShape t = s;
        t.q_len = std::min(block, n - b * block);
        const float* qb = q + b * block * stride;
        float* ob = out.data() + b * block * s.out_stride;
        if (prec == AttentionPrecision::kBF16) attention_bf16(qb, packed.data(), ob, t);
        else attention(qb, k, v, ob, t);
      }
    });
    benchmark::DoNotOptimize(out.data());
  }
  set_max_isa(Isa::kAVX512);
  state.counters["FLOP/s"] =
      benchmark::Counter(4.0 * d * static_cast<double>(n) * static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
}

template <class Fn>
void bench_elementwise(benchmark::State& state, int64_t n, Isa isa, const Fn& fn) {
  if (set_max_isa(isa) != isa) {
    state.SkipWithError("ISA not supported by this CPU");
    return;
  }
  std::vector<float> a = randn(static_cast<size_t>(n), 1), b = randn(static_cast<size_t>(n), 2), c(static_cast<size_t>(n));
  for (auto _ : state) {
    fn(a.data(), b.data(), c.data(), n);
    benchmark::DoNotOptimize(c.data());
    benchmark::DoNotOptimize(a.data());
  }
  set_max_isa(Isa::kAVX512);
  state.SetItemsProcessed(state.iterations() * n);
}

void bench_pool(benchmark::State& state, int threads) {
  ThreadPool& p = pool(threads);
  std::vector<float> data(4096, 1.0f);
  for (auto _ : state) {
    p.parallel_for(
        4096,
        [&](int64_t b, int64_t e, int) {
          for (int64_t i = b; i < e; ++i) data[i] += 1.0f;
        },
        64);
  }
  benchmark::DoNotOptimize(data.data());
}

std::string isa_str(Isa isa) { return std::string(isa_name(isa)); }

// The machine may be shared: with --benchmark_repetitions=N, "min" (of times) and "max" (of
// rates) report the least-disturbed repetition next to the mean/median.
benchmark::internal::Benchmark* stats(benchmark::internal::Benchmark* b) {
  return b
      ->ComputeStatistics("min", [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); })
      ->ComputeStatistics("max", [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); });
}

struct Registrar {
  Registrar() {
    const int threads = std::max(1, std::min(2, default_thread_count()));
    const std::string th = "/threads:" + std::to_string(threads);
    const Isa best = set_max_isa(Isa::kAVX512);  // detected, capped by QVL_MAX_ISA
    // Decode matvec: every shape and format, plus scalar baselines.
    for (const Shape& s : kShapes) {
      for (const Fmt& f : kFormats) {
        if (std::string(s.name) == "lm_head" && f.dtype == DType::kF32) continue;  // 1.6 GB x copies
        const std::string base = std::string("matvec/") + s.name + "/" + f.name + "/";
        stats(benchmark::RegisterBenchmark((base + isa_str(best) + th).c_str(),
                                     [=](benchmark::State& st) { bench_matmul(st, s, f, 1, best, threads, true); }))
            ->Unit(benchmark::kMicrosecond)->UseRealTime();
        if (std::string(s.name) != "lm_head")
          stats(benchmark::RegisterBenchmark((base + isa_str(best) + "/threads:1").c_str(),
                                       [=](benchmark::State& st) { bench_matmul(st, s, f, 1, best, 1, true); }))
              ->Unit(benchmark::kMicrosecond)->UseRealTime();
        if (best >= Isa::kAVX2 && std::string(s.name) == "2560to9728")
          stats(benchmark::RegisterBenchmark((base + "avx2" + th).c_str(),
                                       [=](benchmark::State& st) { bench_matmul(st, s, f, 1, Isa::kAVX2, threads, true); }))
              ->Unit(benchmark::kMicrosecond)->UseRealTime();
        if (std::string(s.name) == "2560to9728")
          stats(benchmark::RegisterBenchmark((base + "scalar" + th).c_str(),
                                       [=](benchmark::State& st) { bench_matmul(st, s, f, 1, Isa::kScalar, threads, true); }))
              ->Unit(benchmark::kMicrosecond)->UseRealTime();
      }
    }
    // Decode of several sequences in one step (continuous batching): m = 4 and 8 activation rows
    // (and m = 1 from the caches, the per-row compute baseline),
    // weights from DRAM as in a real step ("dram") and from the caches ("cached": the kernel's
    // compute rate alone).
    for (const Shape& s : kShapes) {
      if (std::string(s.name) == "lm_head") continue;
      for (const Fmt& f : kFormats) {
        if (f.format == WeightFormat::kDense) continue;
        for (int64_t m : {1, 4, 8}) {
          for (bool dram : {true, false}) {
            if (m == 1 && dram) continue;  // matvec/ above
            const std::string base = "decode_m" + std::to_string(m) + (dram ? "_dram/" : "_cached/") + s.name + "/" +
                                     f.name + "/" + isa_str(best);
            for (int t : {threads, 1}) {
              stats(benchmark::RegisterBenchmark((base + "/threads:" + std::to_string(t)).c_str(),
                                                 [=](benchmark::State& st) { bench_matmul(st, s, f, m, best, t, dram); }))
                  ->Unit(benchmark::kMicrosecond)->UseRealTime();
              if (threads == 1) break;
            }
          }
        }
      }
    }
    // The same with a matrix that stays in L2 (512 rows): the decode tile's compute cost alone,
    // per activation row, without L3 or DRAM traffic (stable on a busy machine: read the CPU time).
    for (const Fmt& f : kFormats) {
      if (f.format == WeightFormat::kDense) continue;
      static constexpr Shape kL2{"2560to512", 512, 2560};
      for (int64_t m : {1, 2, 4, 8})
        stats(benchmark::RegisterBenchmark(
                  ("decode_m" + std::to_string(m) + "_l2/" + kL2.name + "/" + f.name + "/" + isa_str(best) + "/threads:1").c_str(),
                  [=](benchmark::State& st) { bench_matmul(st, kL2, f, m, best, 1, false); }))
            ->Unit(benchmark::kMicrosecond);
    }
    // Prefill matmul, m = 512.
    for (const Shape& s : kShapes) {
      if (std::string(s.name) == "lm_head") continue;
      for (const Fmt& f : kFormats) {
        if (f.dtype == DType::kF16) continue;  // same kernel as bf16 after conversion
        const std::string base = std::string("matmul_m512/") + s.name + "/" + f.name + "/";
        stats(benchmark::RegisterBenchmark((base + isa_str(best) + th).c_str(),
                                     [=](benchmark::State& st) { bench_matmul(st, s, f, 512, best, threads, false); }))
            ->Unit(benchmark::kMillisecond)->UseRealTime();
        stats(benchmark::RegisterBenchmark((base + isa_str(best) + "/threads:1").c_str(),
                                     [=](benchmark::State& st) { bench_matmul(st, s, f, 512, best, 1, false); }))
            ->Unit(benchmark::kMillisecond)->UseRealTime();
        if (best >= Isa::kAVX2 && std::string(s.name) == "2560to9728")
          stats(benchmark::RegisterBenchmark((base + "avx2" + th).c_str(),
                                       [=](benchmark::State& st) { bench_matmul(st, s, f, 512, Isa::kAVX2, threads, false); }))
              ->Unit(benchmark::kMillisecond)->UseRealTime();
        if (std::string(s.name) == "2560to4096" && (f.format == WeightFormat::kQ4_0 || f.dtype == DType::kBF16))
          stats(benchmark::RegisterBenchmark((base + "scalar" + th).c_str(),
                                       [=](benchmark::State& st) { bench_matmul(st, s, f, 512, Isa::kScalar, threads, false); }))
              ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
      }
    }
    // Attention at kv_len 4096, head_dim 128: decode (1 head; a GQA group of 4 heads) and a
    // 512-token causal prefill chunk. K/V as f32, f16 (the KV cache default) and q8_0; the
    // scalar baseline for f32 only. "_dram": decode streaming K/V from memory, as long-context
    // decode does. "vision_3072": one call of the vision tower at 1024x768 (a block of 128
    // queries of one head over 3072 patches, head_dim 64, not causal; the blocked kernel).
    for (const AttnBench a : {AttnBench{"kv4096/decode_1head", 1, 1, 4096, 128, true, false},
                              AttnBench{"kv4096/decode_gqa4", 1, 4, 4096, 128, true, false},
                              AttnBench{"kv4096/decode_gqa4_dram", 1, 4, 4096, 128, true, true},
                              AttnBench{"kv4096/prefill_512", 512, 1, 4096, 128, true, false},
                              AttnBench{"kv512/prefill_512_gqa4", 512, 4, 512, 128, true, false},
                              AttnBench{"vision_3072/q128_d64", 128, 1, 3072, 64, false, false}}) {
      const bool vision = !a.causal;
      for (KvType kv : {KvType::kF32, KvType::kF16, KvType::kQ8_0}) {
        if (vision && kv != KvType::kF32) continue;  // the vision tower's K/V are f32 activations
        std::vector<Isa> isas = {best};
        if (best != Isa::kScalar && kv == KvType::kF32 && !a.dram) isas.push_back(Isa::kScalar);
        for (Isa isa : isas) {
          const std::string name = std::string("attention_") + a.name + "/" + std::string(kv_type_name(kv)) + "/" +
                                   isa_str(isa);
          stats(benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) {
            bench_attention(st, a, kv, isa);
          }))->Unit(benchmark::kMicrosecond)->UseRealTime();
        }
      }
    }
    // The arithmetic peak and one vision-tower head at 1024x768 (3072 patches) and 2048x2048
    // (16384), bf16 against f32 in the same run: FLOP/s of the head / FLOP/s of peak/bf16_dot.
    // These rates are per second of the process's CPU time (all threads, the pool's spinning
    // included), i.e. per core, so that a machine shared with other work still gives the ratio.
    for (int t : {threads, 1}) {
      const std::string tn = "/threads:" + std::to_string(t);
      stats(benchmark::RegisterBenchmark(("peak/bf16_dot/avx512" + tn).c_str(),
                                         [=](benchmark::State& st) { bench_peak(st, PeakOp::kBf16Dot, t); }))->MeasureProcessCPUTime();
      stats(benchmark::RegisterBenchmark(("peak/f32_fma/avx512" + tn).c_str(),
                                         [=](benchmark::State& st) { bench_peak(st, PeakOp::kF32Fma, t); }))->MeasureProcessCPUTime();
      // The int8 kernels' vpdpbusd: what prefill's int8 ops (matmul_m512) are measured against.
      stats(benchmark::RegisterBenchmark(("peak/int8_dot/avx512" + tn).c_str(),
                                         [=](benchmark::State& st) { bench_peak(st, PeakOp::kInt8Dot, t); }))->MeasureProcessCPUTime();
      for (int64_t n : {3072, 16384}) {
        for (AttentionPrecision prec : {AttentionPrecision::kBF16, AttentionPrecision::kF32}) {
          std::vector<Isa> isas = {best};
          if (prec == AttentionPrecision::kBF16 && best == Isa::kAVX512 && n == 3072) isas.push_back(Isa::kAVX2);
          for (Isa isa : isas) {
            const std::string name = "vision_head/n" + std::to_string(n) + "_d64/" +
                                     std::string(attention_precision_name(prec)) + "/" + isa_str(isa) + tn;
            stats(benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) {
              bench_vision_head(st, n, prec, isa, t);
            }))->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime();
          }
        }
      }
      if (threads == 1) break;
    }
    for (Isa isa : {best, Isa::kScalar}) {
      const std::string sfx = "/" + isa_str(isa);
      stats(benchmark::RegisterBenchmark(("rms_norm/2560" + sfx).c_str(), [=](benchmark::State& st) {
        bench_elementwise(st, 2560, isa, [](float* a, float* b, float* c, int64_t n) { rms_norm(a, b, n, 1e-6f, c); });
      }));
      stats(benchmark::RegisterBenchmark(("silu_mul/9728" + sfx).c_str(), [=](benchmark::State& st) {
        bench_elementwise(st, 9728, isa, [](float* a, float* b, float* c, int64_t n) {
          std::memcpy(c, a, n * 4);
          silu_mul(c, b, n);
        });
      }));
      stats(benchmark::RegisterBenchmark(("gelu_erf/4096" + sfx).c_str(), [=](benchmark::State& st) {
        bench_elementwise(st, 4096, isa, [](float* a, float*, float* c, int64_t n) {
          std::memcpy(c, a, n * 4);
          gelu_erf(c, n);
        });
      }));
      stats(benchmark::RegisterBenchmark(("layer_norm/1152" + sfx).c_str(), [=](benchmark::State& st) {
        bench_elementwise(st, 1152, isa, [](float* a, float* b, float* c, int64_t n) { layer_norm(a, b, b, n, 1e-6f, c); });
      }));
    }
    stats(benchmark::RegisterBenchmark(("thread_pool/parallel_for_4096" + th).c_str(),
                                 [=](benchmark::State& st) { bench_pool(st, threads); }))
        ->UseRealTime();
  }
};
Registrar registrar;

}  // namespace
}  // namespace qvl::kernels
