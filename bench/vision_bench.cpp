// The vision tower's encode time with bf16 against f32 attention, interleaved in one run, on a
// checkpoint folder's tower (e.g. `qvl synth --preset qwen3-vl-4b`), and its attention alone
// against the machine's bf16 peak measured in the same run.
//
//   build/bench/vision_bench /tmp/synth-4b -t 2 --sizes 1024x768,2048x2048 -r 2
//
// Both towers (one per attention mode, the matrices quantized as --quant says, q8_0 by default,
// as `qvl run --vision-quant q8_0`) are loaded once; each repetition encodes a random image of
// each size with both, in alternating order. Times: wall and process CPU (all threads). The
// attention-only figures run one block's attention (segmented_attention over random q/k/v of
// the block's shape) and count 4·head_dim flops per (query, key) pair per head; the peak runs
// bench/peak.h's register-only vdpbf16ps loop on every thread. On a machine shared with other
// work the CPU-time rates are the steadier ones (they exclude time the threads were not running).
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "formats/checkpoint.h"
#include "formats/model_config.h"
#include "kernels/kernels.h"
#include "model/vision/span_attention.h"
#include "model/vision/vision_encoder.h"
#include "peak.h"

namespace qvl {
namespace {

using Clock = std::chrono::steady_clock;

double cpu_seconds(clockid_t clock = CLOCK_PROCESS_CPUTIME_ID) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Timing {
  double wall = 0, cpu = 0;
};

template <class Fn>
Timing timed(const Fn& fn) {
  const double c0 = cpu_seconds();
  const auto t0 = Clock::now();
  fn();
  return Timing{std::chrono::duration<double>(Clock::now() - t0).count(), cpu_seconds() - c0};
}

double rss_mb(const char* field) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind(field, 0) == 0) return std::stod(line.substr(std::strlen(field))) / 1024.0;
  return 0;
}

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

int usage() {
  std::fprintf(stderr,
               "usage: vision_bench MODEL_DIR [-t THREADS] [--sizes WxH,...] [-r REPS] [--quant q8_0|dense]\n"
               "                    [--no-attention] [--no-encode] [--modes bf16|f32|both]\n");
  return 2;
}

int run(int argc, char** argv) {
  if (argc < 2) return usage();
  std::string dir = argv[1], sizes_arg = "1024x768", quant = "q8_0";
  int threads = 2, reps = 2;
  bool attention_only = true, encode = true;
  std::string modes = "both";  // which encodes to run (one alone: e.g. to profile it)
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "-t") threads = std::stoi(next());
    else if (a == "--sizes") sizes_arg = next();
    else if (a == "-r") reps = std::stoi(next());
    else if (a == "--quant") quant = next();
    else if (a == "--no-attention") attention_only = false;
    else if (a == "--no-encode") encode = false;
    else if (a == "--modes") modes = next();
    else return usage();
  }
  std::vector<std::pair<int, int>> sizes;
  for (size_t p = 0; p <= sizes_arg.size();) {
    const size_t e = std::min(sizes_arg.find(',', p), sizes_arg.size());
    int w = 0, h = 0;
    if (std::sscanf(sizes_arg.substr(p, e - p).c_str(), "%dx%d", &w, &h) != 2) return usage();
    sizes.emplace_back(w, h);
    p = e + 1;
  }

  const ModelConfig config = load_model_config(dir);
  if (!config.vision) {
    std::fprintf(stderr, "%s has no vision tower\n", dir.c_str());
    return 1;
  }
  const VisionConfig& vc = *config.vision;
  auto ckpt = Checkpoint::open(dir);
  ThreadPool pool(threads);
  const kernels::WeightFormat format =
      quant == "dense" ? kernels::WeightFormat::kDense : kernels::parse_weight_format(quant);
  const auto t_load = Clock::now();
  VisionEncoder bf16(vc, *ckpt, format, &pool, kernels::AttentionPrecision::kBF16);
  VisionEncoder f32(vc, *ckpt, format, &pool, kernels::AttentionPrecision::kF32);
  const double rss_loaded = rss_mb("VmRSS:");
  std::printf("tower: depth %lld, hidden %lld, %lld heads; matrices %s; %d threads; loaded in %.1f s; RSS %.0f MB\n",
              static_cast<long long>(vc.depth), static_cast<long long>(vc.hidden_size),
              static_cast<long long>(vc.num_heads), quant.c_str(), threads,
              std::chrono::duration<double>(Clock::now() - t_load).count(), rss_loaded);
  std::printf("bf16 attention runs on %s\n", kernels::attention_bf16_native() ? "vdpbf16ps (AVX512_BF16)"
                                                                                : "fp32 FMAs (no AVX512_BF16 here)");

  const int64_t patch = vc.patch_size, width = vc.in_channels * vc.temporal_patch_size * patch * patch;
  const int64_t heads = vc.num_heads, hd = vc.hidden_size / vc.num_heads;
  for (const auto& [w, h] : sizes) {
    const GridTHW grid{1, h / patch, w / patch};
    const int64_t rows = grid.h * grid.w;
    const std::vector<float> px = random_values(static_cast<size_t>(rows * width), 1);
    std::printf("\nimage %dx%d: %lld patches, %lld tokens\n", w, h, static_cast<long long>(rows),
                static_cast<long long>(rows / (vc.spatial_merge_size * vc.spatial_merge_size)));
    std::vector<Timing> tb, tf;
    std::vector<float> eb, ef;
    for (int r = 0; r < reps && encode; ++r) {
      for (int k = 0; k < 2; ++k) {
        const bool use_bf16 = (k == 0) == (r % 2 == 0);  // alternate which goes first
        if (modes != "both" && (modes == "bf16") != use_bf16) continue;
        const VisionEncoder& enc = use_bf16 ? bf16 : f32;
        std::vector<float>& keep = use_bf16 ? eb : ef;
        const Timing t = timed([&] { keep = enc.encode(px.data(), rows, {grid}, &pool).embeds; });
        (use_bf16 ? tb : tf).push_back(t);
        std::printf("  rep %d %-4s encode %8.2f s wall, %8.2f s CPU\n", r, use_bf16 ? "bf16" : "f32", t.wall, t.cpu);
        std::fflush(stdout);
      }
    }
    auto mean = [](const std::vector<Timing>& v, bool cpu) {
      double s = 0;
      for (const Timing& t : v) s += cpu ? t.cpu : t.wall;
      return s / static_cast<double>(v.size());
    };
    if (encode && modes == "both") {
      double num = 0, den = 0;
      for (size_t i = 0; i < eb.size(); ++i) {
        num = std::max(num, static_cast<double>(std::fabs(eb[i] - ef[i])));
        den = std::max(den, static_cast<double>(std::fabs(ef[i])));
      }
      std::printf("  mean encode: bf16 %.2f s, f32 %.2f s wall (f32/bf16 %.2fx); CPU %.2f s vs %.2f s (%.2fx)\n",
                  mean(tb, false), mean(tf, false), mean(tf, false) / mean(tb, false), mean(tb, true),
                  mean(tf, true), mean(tf, true) / mean(tb, true));
      std::printf("  vision embeds, bf16 vs f32 attention: max |diff| / max |f32| = %.3g\n", num / den);
    } else if (encode) {
      const std::vector<Timing>& t = modes == "bf16" ? tb : tf;
      if (!t.empty()) std::printf("  mean encode %s: %.2f s wall, %.2f s CPU\n", modes.c_str(), mean(t, false), mean(t, true));
    }
    if (encode)
      std::printf("  peak RSS so far %.0f MB (%.0f MB above the loaded towers)\n", rss_mb("VmHWM:"),
                  rss_mb("VmHWM:") - rss_loaded);

    if (!attention_only) continue;
    // One block's attention alone, both modes, and the peak, interleaved.
    const std::vector<float> qkv = random_values(static_cast<size_t>(rows * 3 * vc.hidden_size), 2);
    std::vector<float> out(static_cast<size_t>(rows * vc.hidden_size));
    std::vector<uint16_t> packed;
    kernels::SegmentedAttentionShape s;
    s.heads = heads;
    s.head_dim = hd;
    s.q_stride = s.k_stride = s.v_stride = 3 * vc.hidden_size;
    s.out_stride = vc.hidden_size;
    s.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const double flops = 4.0 * static_cast<double>(hd) * static_cast<double>(rows) * static_cast<double>(rows) *
                         static_cast<double>(heads);
    const std::vector<int64_t> cu = {0, rows};
    Timing ab, af, pk;
    double peak_work = 0;
    for (int r = 0; r < reps; ++r) {
      for (auto p : {kernels::AttentionPrecision::kBF16, kernels::AttentionPrecision::kF32}) {
        s.precision = p;
        const Timing t = timed([&] {
          kernels::segmented_attention(qkv.data(), qkv.data() + vc.hidden_size, qkv.data() + 2 * vc.hidden_size,
                                       out.data(), cu, s, &pool, &packed);
        });
        Timing& acc = p == kernels::AttentionPrecision::kBF16 ? ab : af;
        acc.wall += t.wall;
        acc.cpu += t.cpu;
      }
#if QVL_BENCH_PEAK
      if (kernels::attention_bf16_native()) {
        // Each thread's own CPU time (a pool thread that finishes first spins, which the
        // process's CPU time would count against the peak).
        const int64_t steps = 1 << 22;
        std::vector<double> thread_cpu(static_cast<size_t>(threads));
        const Timing t = timed([&] {
          std::vector<float> sink(static_cast<size_t>(threads));
          pool.run_on_all([&](int i) {
            const double c0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
            sink[static_cast<size_t>(i)] = bench::peak_bf16_loop(steps);
            thread_cpu[static_cast<size_t>(i)] = cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - c0;
          });
        });
        pk.wall += t.wall;
        for (double c : thread_cpu) pk.cpu += c;
        peak_work += bench::peak_flops(true, steps) * threads;
      }
#endif
    }
    const double n = reps;
    std::printf("  attention of one block (%lld heads x %lld^2, head_dim %lld): bf16 %.3f s, f32 %.3f s wall "
                "(%.2fx); x%lld blocks = %.1f s vs %.1f s per encode\n",
                static_cast<long long>(heads), static_cast<long long>(rows), static_cast<long long>(hd), ab.wall / n,
                af.wall / n, af.wall / ab.wall, static_cast<long long>(vc.depth), ab.wall / n * vc.depth,
                af.wall / n * vc.depth);
    std::printf("  attention FLOP/s per CPU-second (per core): bf16 %.0f G, f32 %.0f G; wall, all threads: bf16 %.0f G, "
                "f32 %.0f G\n",
                flops * n / ab.cpu / 1e9, flops * n / af.cpu / 1e9, flops * n / ab.wall / 1e9, flops * n / af.wall / 1e9);
    if (peak_work > 0)
      std::printf("  bf16 peak (register-only vdpbf16ps) per CPU-second %.0f G, wall %.0f G: bf16 attention at %.0f%% "
                  "(CPU time) / %.0f%% (wall) of it\n",
                  peak_work / pk.cpu / 1e9, peak_work / pk.wall / 1e9,
                  100 * (flops * n / ab.cpu) / (peak_work / pk.cpu), 100 * (flops * n / ab.wall) / (peak_work / pk.wall));
  }
  return 0;
}

}  // namespace
}  // namespace qvl

int main(int argc, char** argv) {
  try {
    return qvl::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
