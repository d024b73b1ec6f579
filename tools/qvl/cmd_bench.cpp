// qvl bench: prompt processing, decode (also at depth), image encode, time to first token,
// peak RSS, and the machine's read bandwidth measured in the same run, so that decode speed is
// reported as a fraction of the bandwidth roofline.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <thread>
#include <tuple>
#include <vector>

#include "commands.h"
#include "core/dtype.h"
#include "kernels/kernels.h"
#include "options.h"
#include "qvl/engine.hpp"
#include "qvl/qvl.hpp"

namespace qvl::cli {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Sum of a buffer slice; compiled for several ISAs and picked at run time (GCC target_clones).
__attribute__((target_clones("avx512f", "avx2", "default"), noinline)) uint64_t sum_words(const uint64_t* p, size_t n) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (size_t i = 0; i + 4 <= n; i += 4) a += p[i], b += p[i + 1], c += p[i + 2], d += p[i + 3];
  return a + b + c + d;
}

// Best of several passes reading a 1 GiB buffer with `threads` threads.
double read_bandwidth_gb_s(int threads) {
  const size_t bytes = size_t(1) << 30, words = bytes / 8;
  std::vector<uint64_t> buf(words, 1);
  double best = 0;
  volatile uint64_t sink = 0;
  for (int pass = 0; pass < 5; ++pass) {
    std::vector<std::thread> pool;
    std::vector<uint64_t> sums(static_cast<size_t>(threads));
    auto t0 = Clock::now();
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const size_t b = words * t / threads, e = words * (t + 1) / threads;
        sums[static_cast<size_t>(t)] = sum_words(buf.data() + b, e - b);
      });
    for (auto& th : pool) th.join();
    const double s = since(t0);
    for (uint64_t v : sums) sink = sink + v;
    best = std::max(best, bytes / s / 1e9);
  }
  return best;
}

// Peak resident memory since the last reset_peak_rss(): Linux's VmHWM (getrusage's maxrss, which
// cannot be reset, where /proc is missing).
double peak_rss_mb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // "VmHWM:  123 kB"
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;
}

// Resets VmHWM to the current RSS, so the bandwidth test's 1 GiB buffer (freed by then) does not
// count as model memory.
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

std::vector<int32_t> random_tokens(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(1000, 100000);  // ordinary text tokens
  std::vector<int32_t> ids(n);
  for (auto& id : ids) id = dist(rng);
  return ids;
}

Image noise_image(int w, int h) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(static_cast<size_t>(w) * h * 3);
  std::mt19937 rng(42);
  for (auto& v : img.rgb) v = static_cast<uint8_t>(rng());
  return img;
}

struct BenchArgs {
  std::string model_dir;
  ModelOptions model;  // its context length is set to fit the tests
  int64_t pp = 512, tg = 128, depth = 4096, depth_tg = 32;
  std::vector<std::string> image_sizes = {"448x448", "1024x768"};
  int question_tokens = 20;
  int64_t repetitions = 3;  // of pp, tg and each image (the depth test runs once: its prefill is long)
  bool json = false, skip_depth = false, profile = false;
  std::vector<int> parallel;  // --parallel 1,4,8: aggregate decode with N sequences in one engine
};

// Mean and sample standard deviation of repeated measurements, as llama-bench reports them.
struct Summary {
  double mean = 0, sd = 0;
  std::vector<double> runs;
};
Summary summarize(std::vector<double> runs) {
  Summary s;
  for (double r : runs) s.mean += r / static_cast<double>(runs.size());
  if (runs.size() > 1) {
    for (double r : runs) s.sd += (r - s.mean) * (r - s.mean);
    s.sd = std::sqrt(s.sd / static_cast<double>(runs.size() - 1));
  }
  s.runs = std::move(runs);
  return s;
}

// Writes key (the mean), key_sd and key_runs.
void put(nlohmann::json& out, const std::string& key, const Summary& s) {
  out[key] = s.mean;
  out[key + "_sd"] = s.sd;
  out[key + "_runs"] = s.runs;
}

// Decode tok/s of `tokens` steps after the prompt already in `gen`.
double decode_rate(Generator& gen, int64_t tokens) {
  gen.generate_next_token();  // evaluates nothing new yet: picks the first token from the prefill logits
  auto t0 = Clock::now();
  for (int64_t i = 0; i < tokens && !gen.is_done(); ++i) gen.generate_next_token();
  return tokens / since(t0);
}

// --profile: the decode runs' matmuls (one activation row each), summed per matrix shape and type.
struct MatmulProfile {
  struct Entry {
    int64_t calls = 0;
    double seconds = 0, bytes = 0;
  };
  std::map<std::tuple<int64_t, int64_t, kernels::WeightFormat, DType>, Entry> by_matrix;  // rows, cols, type

  static void observe(const kernels::MatmulRecord& r, void* self) {
    if (r.m != 1) return;
    Entry& e = static_cast<MatmulProfile*>(self)->by_matrix[{r.rows, r.cols, r.format, r.dtype}];
    ++e.calls;
    e.seconds += r.seconds;
    e.bytes += static_cast<double>(r.weight_bytes);
  }
  // One row per matrix shape and type, the largest share of the decode time first.
  nlohmann::json rows(int64_t tokens, double decode_seconds) const {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [key, e] : by_matrix)
      out.push_back({{"rows", std::get<0>(key)},
                     {"cols", std::get<1>(key)},
                     {"type", kernels::weight_type_name(std::get<2>(key), std::get<3>(key))},
                     {"calls_per_token", static_cast<double>(e.calls) / static_cast<double>(tokens)},
                     {"us_per_call", 1e6 * e.seconds / static_cast<double>(e.calls)},
                     {"gb_s", e.bytes / e.seconds / 1e9},
                     {"share", e.seconds / decode_seconds}});
    std::sort(out.begin(), out.end(),
              [](const nlohmann::json& a, const nlohmann::json& b) { return a["share"].get<double>() > b["share"].get<double>(); });
    return out;
  }
};

// Aggregate decode of `n` sequences in one engine: each gets a short random prompt, and once
// all decode, `steps` engine steps are timed (every step yields one token per sequence).
struct ParallelResult {
  double tok_s = 0, step_ms_mean = 0, step_ms_max = 0;
  uint64_t kv_bytes = 0;
  // With an image prompt: the longest step (= inter-token gap of the running streams) between its
  // submission and its first token, and how many steps that took.
  double admit_gap_ms = 0;
  int64_t admit_steps = 0;
};
ParallelResult parallel_decode(const std::shared_ptr<const Model>& model, int n, int64_t steps, uint32_t seed,
                               const ProcessedInputs* image_prompt) {
  EngineOptions eo;
  eo.background_thread = false;
  eo.max_sequences = n;
  eo.keep_finished = 0;
  Engine engine(model, eo);
  GeneratorParams params;
  params.stop_at_eos = false;
  params.max_new_tokens = steps + 8;
  int64_t tokens = 0;
  std::vector<RequestId> ids;
  for (int i = 0; i < n; ++i) {
    ProcessedInputs in;
    in.input_ids = random_tokens(32, seed + static_cast<uint32_t>(i));
    ids.push_back(engine.submit(std::move(in), params, [&](const RequestEvent& e) { tokens += e.token >= 0; }));
  }
  while (tokens < n) engine.step();  // prefill: every sequence has its first token
  ParallelResult r;
  const int64_t before = tokens;
  const auto t0 = Clock::now();
  for (int64_t i = 0; i < steps; ++i) {
    const auto s0 = Clock::now();
    engine.step();
    r.step_ms_max = std::max(r.step_ms_max, since(s0) * 1000);
  }
  const double seconds = since(t0);
  r.tok_s = static_cast<double>(tokens - before) / seconds;
  r.step_ms_mean = seconds * 1000 / static_cast<double>(steps);
  const EngineStats st = engine.stats();
  r.kv_bytes = static_cast<uint64_t>(st.kv_reserved_tokens) * st.kv_bytes_per_token;
  if (image_prompt != nullptr) {
    GeneratorParams one = params;
    one.max_new_tokens = 1;
    bool answered = false;
    engine.submit(*image_prompt, one, [&](const RequestEvent& e) { answered = answered || e.token >= 0 || e.finished; });
    while (!answered) {
      const auto s0 = Clock::now();
      engine.step();
      r.admit_gap_ms = std::max(r.admit_gap_ms, since(s0) * 1000);
      ++r.admit_steps;
    }
  }
  for (RequestId id : ids) engine.cancel(id);
  engine.wait_idle();
  return r;
}

int bench(BenchArgs a) {
  // "--image none": text tests only (a comparison with llama-bench, which has no image test).
  std::erase(a.image_sizes, std::string("none"));
  ModelOptions mo = a.model;
  // Room for every test: prompt + generation, the depth test, and images up to 16384 tokens.
  mo.context_length = std::max<int64_t>({a.pp + a.tg + 8, a.skip_depth ? 0 : a.depth + a.depth_tg + 8, 16384 + 256});
  auto t_load = Clock::now();
  auto model = Model::load(a.model_dir, mo);
  const double load_s = since(t_load);
  const ModelInfo& info = model->info();
  GeneratorParams params;
  params.stop_at_eos = false;
  params.max_new_tokens = 1 << 30;
  nlohmann::json out;
  out["model"] = a.model_dir;
  out["threads"] = info.threads;
  out["weights_type"] = info.weights_type;
  out["kv_cache_type"] = info.kv_cache_type;
  out["repetitions"] = a.repetitions;
  out["model_bytes"] = info.weight_bytes;
  out["load_s"] = load_s;

  // The bandwidth of a shared machine drifts (other tenants): it is measured just before the
  // decode tests and again at the end, and the higher figure sets the roofline (conservative).
  const double load_peak_mb = peak_rss_mb();  // includes any quantize-at-load buffers
  const double bw_before = read_bandwidth_gb_s(info.threads);
  reset_peak_rss();
  {  // pp and tg, each repetition on a fresh generator
    // A warm-up pass first (as llama-bench does): the first pass over memory-mapped weights pays
    // their page faults, which would otherwise land in the first prefill figure.
    {
      Generator warm(model, params);
      warm.append_tokens(random_tokens(static_cast<size_t>(std::min<int64_t>(a.pp, 16)), 99));
      decode_rate(warm, 2);
    }
    std::vector<double> pp, tg;
    MatmulProfile profile;
    double decode_seconds = 0;
    for (int r = 0; r < a.repetitions; ++r) {
      Generator gen(model, params);
      auto t0 = Clock::now();
      gen.append_tokens(random_tokens(static_cast<size_t>(a.pp), 1 + 10 * r));
      pp.push_back(a.pp / since(t0));
      if (a.profile) kernels::set_matmul_observer(&MatmulProfile::observe, &profile);
      tg.push_back(decode_rate(gen, a.tg));
      kernels::set_matmul_observer(nullptr, nullptr);
      decode_seconds += static_cast<double>(a.tg) / tg.back();
    }
    put(out, "pp_tok_s", summarize(pp));
    put(out, "tg_tok_s", summarize(tg));
    if (a.profile) out["tg_profile"] = profile.rows(a.tg * a.repetitions, decode_seconds);
  }
  if (!a.skip_depth) {
    Generator gen(model, params);
    auto t0 = Clock::now();
    gen.append_tokens(random_tokens(static_cast<size_t>(a.depth), 2));
    out["depth_prefill_tok_s"] = a.depth / since(t0);
    out["depth"] = a.depth;
    out["tg_depth_tok_s"] = decode_rate(gen, a.depth_tg);
  }
  if (!a.parallel.empty()) {
    nlohmann::json tok_s = nlohmann::json::object(), step_ms = nlohmann::json::object(),
                   step_max = nlohmann::json::object(), kv = nlohmann::json::object(),
                   gap = nlohmann::json::object();
    // A new image prompt (the first --image size) arrives while the N streams decode.
    std::optional<ProcessedInputs> image_prompt;
    int w = 0, h = 0;
    if (info.has_vision && !a.image_sizes.empty() && std::sscanf(a.image_sizes.front().c_str(), "%dx%d", &w, &h) == 2)
      image_prompt = Processor(model).process_prompt("Describe this picture.", {noise_image(w, h)});
    for (int n : a.parallel) {
      std::vector<double> runs;
      ParallelResult last;
      for (int r = 0; r < a.repetitions; ++r) {
        last = parallel_decode(model, n, a.tg, 100 + 17 * static_cast<uint32_t>(r),
                               image_prompt ? &*image_prompt : nullptr);
        runs.push_back(last.tok_s);
      }
      if (image_prompt) gap[std::to_string(n)] = last.admit_gap_ms;
      const std::string key = std::to_string(n);
      tok_s[key] = summarize(runs).mean;
      step_ms[key] = last.step_ms_mean;
      step_max[key] = last.step_ms_max;
      kv[key] = last.kv_bytes;
    }
    out["parallel_tg_tok_s"] = tok_s;
    out["parallel_step_ms"] = step_ms;
    out["parallel_step_ms_max"] = step_max;
    out["parallel_kv_bytes"] = kv;
    if (image_prompt) out["parallel_image_admit_gap_ms"] = gap;
  }
  if (info.has_vision) {
    Processor processor(model);
    nlohmann::json enc = nlohmann::json::object(), ttft = nlohmann::json::object();
    const int32_t image_pad = Tokenizer(model).token_to_id("<|image_pad|>");
    const std::string question = "Describe this picture in detail, listing every object you can see and its color.";
    for (const auto& size : a.image_sizes) {
      int w = 0, h = 0;
      if (std::sscanf(size.c_str(), "%dx%d", &w, &h) != 2 || w <= 0 || h <= 0)
        throw Error(ErrorKind::kInvalidArgument, "image size '" + size + "' is not WxH");
      std::vector<double> encode_ms, ttft_ms;
      int64_t tokens = 0;
      for (int r = 0; r < a.repetitions; ++r) {
        Image image = noise_image(w, h);  // the picture exists before the request (as a decoded file would)
        auto t0 = Clock::now();
        ProcessedInputs inputs = processor.process_prompt(question, {std::move(image)});
        Generator gen(model, params);
        gen.append_inputs(inputs);
        gen.generate_next_token();
        ttft_ms.push_back(since(t0) * 1000);
        encode_ms.push_back(gen.stats().vision_seconds * 1000);
        tokens = std::count(inputs.input_ids.begin(), inputs.input_ids.end(), image_pad);
      }
      const Summary e = summarize(encode_ms), t = summarize(ttft_ms);
      enc[size] = e.mean;
      ttft[size] = t.mean;
      out["image_encode_ms_sd"][size] = e.sd;
      out["ttft_ms_sd_by_image"][size] = t.sd;
      out["image_tokens"][size] = tokens;
    }
    out["image_encode_ms"] = enc;
    out["ttft_ms_by_image"] = ttft;
    // The headline TTFT is the first size asked for (448x448 by default); JSON objects sort keys.
    out["ttft_ms"] = a.image_sizes.empty() ? nlohmann::json() : ttft[a.image_sizes.front()];
  }
  out["peak_rss_mb"] = std::max(load_peak_mb, peak_rss_mb());
  const double bw_after = read_bandwidth_gb_s(info.threads);
  const double bw = std::max(bw_before, bw_after);
  out["bandwidth_gb_s"] = bw;
  out["bandwidth_gb_s_runs"] = {bw_before, bw_after};
  const double bytes_per_token = static_cast<double>(info.decode_weight_bytes);
  out["decode_bytes_per_token"] = bytes_per_token;
  out["roofline_tok_s"] = bw * 1e9 / bytes_per_token;
  out["roofline_fraction"] = out["tg_tok_s"].get<double>() / (bw * 1e9 / bytes_per_token);

  if (a.json) {
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("model %s (%s, %.2f GB, %d threads, %s KV cache), load %.2f s\n", a.model_dir.c_str(),
                info.weights_type.c_str(), info.weight_bytes / 1e9, info.threads, info.kv_cache_type.c_str(), load_s);
    std::printf("pp%lld: %.1f ± %.1f tok/s   tg%lld: %.2f ± %.2f tok/s (%.0f%% of the %.1f tok/s roofline at %.1f GB/s)"
                "   [mean ± sd of %d runs]\n",
                static_cast<long long>(a.pp), out["pp_tok_s"].get<double>(), out["pp_tok_s_sd"].get<double>(),
                static_cast<long long>(a.tg), out["tg_tok_s"].get<double>(), out["tg_tok_s_sd"].get<double>(),
                100 * out["roofline_fraction"].get<double>(), out["roofline_tok_s"].get<double>(), bw, static_cast<int>(a.repetitions));
    if (out.contains("tg_profile")) {
      std::printf("  tg matmuls:  rows x cols    type         calls/token   us/call    GB/s   share of tg\n");
      double matmul_share = 0;
      for (const nlohmann::json& row : out["tg_profile"]) {
        matmul_share += row["share"].get<double>();
        std::printf("  %17s  %-12s %11.1f %9.1f %7.2f %9.1f%%\n",
                    (std::to_string(row["rows"].get<int64_t>()) + " x " + std::to_string(row["cols"].get<int64_t>())).c_str(),
                    row["type"].get<std::string>().c_str(), row["calls_per_token"].get<double>(),
                    row["us_per_call"].get<double>(), row["gb_s"].get<double>(), 100 * row["share"].get<double>());
      }
      std::printf("  all matmuls: %.1f%% of the decode time\n", 100 * matmul_share);
    }
    if (!a.skip_depth)
      std::printf("tg%lld at depth %lld: %.2f tok/s\n", static_cast<long long>(a.depth_tg),
                  static_cast<long long>(a.depth), out["tg_depth_tok_s"].get<double>());
    if (out.contains("image_encode_ms"))
      for (const std::string& size : a.image_sizes)
        std::printf("image %s (%lld tokens): encode %.0f ± %.0f ms, time to first token %.0f ± %.0f ms\n",
                    size.c_str(), static_cast<long long>(out["image_tokens"][size].get<int64_t>()),
                    out["image_encode_ms"][size].get<double>(),
                    out["image_encode_ms_sd"][size].get<double>(), out["ttft_ms_by_image"][size].get<double>(),
                    out["ttft_ms_sd_by_image"][size].get<double>());
    for (int n : a.parallel) {
      const std::string key = std::to_string(n);
      std::printf("parallel %d: %.2f tok/s aggregate (%.2fx one sequence's tg), step %.1f ms (max %.1f), KV %.0f MB\n", n,
                  out["parallel_tg_tok_s"][key].get<double>(),
                  out["parallel_tg_tok_s"][key].get<double>() / out["tg_tok_s"].get<double>(),
                  out["parallel_step_ms"][key].get<double>(), out["parallel_step_ms_max"][key].get<double>(),
                  out["parallel_kv_bytes"][key].get<double>() / 1e6);
      if (out.contains("parallel_image_admit_gap_ms"))
        std::printf("  a %s image prompt admitted meanwhile: longest inter-token gap %.1f ms\n",
                    a.image_sizes.front().c_str(), out["parallel_image_admit_gap_ms"][key].get<double>());
    }
    std::printf("peak RSS %.0f MB\n", out["peak_rss_mb"].get<double>());
  }
  return 0;
}

}  // namespace

Runner add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Measure prefill, decode, image encode, TTFT, memory and bandwidth");
  auto a = std::make_shared<BenchArgs>();
  cmd->add_option("-m,--model", a->model_dir, "Checkpoint folder, qvl GGUF file, or llama.cpp GGUF")->required();
  add_model_options(*cmd, a->model, /*with_context=*/false);
  const IntegerRange positive{1, std::numeric_limits<int64_t>::max(), "a positive integer"};
  add_integer_option(*cmd, "-p,--n-prompt", a->pp, positive, "Prompt tokens for the prefill test (default: 512)");
  add_integer_option(*cmd, "-n,--n-gen", a->tg, positive, "Tokens for the decode test (default: 128)");
  add_integer_option(*cmd, "-d,--depth", a->depth, positive, "Context depth for the decode-at-depth test (default: 4096)");
  add_integer_option(*cmd, "--depth-gen", a->depth_tg, positive, "Tokens decoded at depth (default: 32)");
  add_integer_option(*cmd, "-r,--repetitions", a->repetitions, {1, 1000, "an integer from 1 to 1000"},
                     "Runs of the pp, tg and image tests, mean ± sd reported (default: 3)");
  cmd->add_flag("--skip-depth", a->skip_depth, "Skip the decode-at-depth test");
  cmd->add_option("--image", a->image_sizes, "Image sizes WxH to encode (repeatable; none: no image test)");
  cmd->add_option("--parallel", a->parallel,
                  "Also decode with N sequences at once in the batching engine (e.g. 1,4,8): aggregate tok/s")
      ->delimiter(',')
      ->check(CLI::Range(1, 256));
  cmd->add_flag("--profile", a->profile,
                "Time every matmul of the decode runs: time, GB/s and share of decode per matrix shape and type");
  cmd->add_flag("--json", a->json, "Print one JSON object");
  return [a] { return bench(*a); };
}

}  // namespace qvl::cli
