// Start-up benchmarks (Google Benchmark): how long until the tokenizer is ready and until the
// bundled tiny model is loaded, from its folder and from a q8_0 GGUF made by quantize_checkpoint.
//
//   ./build/bench/load_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// The tokenizer is the real Qwen3 one (151k vocab, 151k merges, an 11 MB tokenizer.json), so
// these cases measure what every `qvl run` pays before it can start. The files come from the
// page cache after the first iteration: this measures parsing and table building, not the disk.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <string>
#include <system_error>
#include <unistd.h>

#include "core/mapped_file.h"
#include "formats/checkpoint.h"
#include "qvl/qvl.hpp"
#include "devtools/quantize_checkpoint.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace qvl {
namespace {

namespace fs = std::filesystem;

const std::string kTinyModelDir = QVL_SOURCE_DIR "/tests/data/tiny-qwen3-vl";

// A q8_0 GGUF of the tiny model, written once into a temporary folder removed at exit.
class TinyGguf {
 public:
  TinyGguf() : dir_(fs::temp_directory_path() / ("qvl_load_bench_" + std::to_string(::getpid()))) {
    fs::create_directories(dir_);
    QuantizeOptions options;
    options.type = "q8_0";
    quantize_checkpoint(kTinyModelDir, path(), options);
  }
  ~TinyGguf() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  std::string path() const { return (dir_ / "tiny-q8_0.gguf").string(); }

 private:
  fs::path dir_;
};

const TinyGguf& tiny_gguf() {
  static const TinyGguf gguf;
  return gguf;
}

// Tokenizer ready: read and parse tokenizer.json, build the vocabulary and merge tables.
void BM_TokenizerFromJsonFile(benchmark::State& state) {
  const std::string path = kTinyModelDir + "/tokenizer.json";
  for (auto _ : state) benchmark::DoNotOptimize(BpeTokenizer::load(path));
}
BENCHMARK(BM_TokenizerFromJsonFile)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same from text already in memory (what a GGUF's metadata string holds).
void BM_TokenizerFromJsonText(benchmark::State& state) {
  const std::string text = read_text_file(kTinyModelDir + "/tokenizer.json");
  for (auto _ : state) benchmark::DoNotOptimize(BpeTokenizer::from_json_text(text, "tokenizer.json"));
}
BENCHMARK(BM_TokenizerFromJsonText)->Unit(benchmark::kMillisecond)->UseRealTime();

// The other side files, for the breakdown of Model::load.
void BM_ChatTemplateFromModelDir(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(ChatTemplate::from_model_dir(kTinyModelDir));
}
BENCHMARK(BM_ChatTemplateFromModelDir)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_CheckpointOpenFolder(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(Checkpoint::open(kTinyModelDir));
}
BENCHMARK(BM_CheckpointOpenFolder)->Unit(benchmark::kMillisecond)->UseRealTime();

// Tiny model loaded: everything Model::load does, default options.
void BM_ModelLoadFolder(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(Model::load(kTinyModelDir));
}
BENCHMARK(BM_ModelLoadFolder)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ModelLoadGguf(benchmark::State& state) {
  const std::string path = tiny_gguf().path();
  for (auto _ : state) benchmark::DoNotOptimize(Model::load(path));
}
BENCHMARK(BM_ModelLoadGguf)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace qvl
