// qvl run: one prompt (text, optional images and videos) in, the answer streamed to stdout.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "generation.h"
#include "options.h"
#include "qvl/qvl.hpp"

namespace qvl::cli {

namespace {

struct RunArgs {
  std::string model_dir;
  PromptOptions prompt;
  std::vector<std::string> images, videos, stop;
  int64_t max_new_tokens = 256;
  ModelOptions model;
  ProcessorOptions image_options;
  SamplingOptions sampling;
  bool json = false;
};

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int run(const RunArgs& a) {
  auto t_load = Clock::now();
  auto model = Model::load(a.model_dir, a.model);
  const double load_s = since(t_load);
  report_overridden_settings(a.model, model->info());

  ProgressPrinter decode_progress;
  ProcessorOptions processor_options = a.image_options;
  processor_options.video_progress = [&decode_progress](int64_t done, int64_t total) {
    if (total >= 300) decode_progress.update("decoding video (frames)", done, total);  // ~10 s and longer
  };
  Processor processor(model, processor_options);
  std::vector<Image> images;
  for (const auto& path : a.images) images.push_back(load_image_file(path));
  ProcessedInputs inputs;
  if (!a.prompt.messages_file.empty()) {
    const std::string& file = a.prompt.messages_file;
    std::ifstream in(file);
    if (!in) throw Error(ErrorKind::kNotFound, "cannot open messages file '" + file + "'");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string base = file.find('/') != std::string::npos ? file.substr(0, file.rfind('/')) : ".";
    inputs = processor.process(ss.str(), images, true, base);
  } else if (!a.videos.empty()) {
    inputs = processor.process(prompt_messages_with_videos(prompt_text(a.prompt), images.size(), a.videos, a.prompt.system),
                               images, true, ".");
  } else {
    inputs = processor.process_prompt(prompt_text(a.prompt), images, a.prompt.system);
  }
  decode_progress.end_line();
  report_inputs(inputs);

  GeneratorParams params = GeneratorParams::from_model(*model);
  params.max_new_tokens = max_new_tokens_for(a.max_new_tokens, model->info());
  a.sampling.apply(params);
  params.stop = a.stop;

  Generator gen(model, params);
  ProgressPrinter progress;
  gen.set_progress_callback(show_progress(progress, total_image_tokens(inputs), [] { return true; }));
  Tokenizer tokenizer(model);
  TokenizerStream stream = tokenizer.create_stream(params.stop);  // never returns a stop string
  auto t_first = Clock::now();
  gen.append_inputs(inputs);
  std::string text;
  double ttft = 0;
  auto emit = [&](const std::string& piece) {
    if (!a.json) std::fwrite(piece.data(), 1, piece.size(), stdout), std::fflush(stdout);
    text += piece;
  };
  while (!gen.is_done()) {
    const std::optional<int32_t> token = next_answer_token(gen);
    if (ttft == 0) ttft = since(t_first);
    if (!token) break;
    emit(stream.decode(*token));
  }
  emit(stream.flush());
  if (!a.json) std::printf("\n");

  const GeneratorStats& s = gen.stats();
  const double pp = s.prefill_seconds > 0 ? s.prompt_tokens / s.prefill_seconds : 0;
  const double tg = s.decode_seconds > 0 && s.generated_tokens > 1 ? (s.generated_tokens - 1) / s.decode_seconds : 0;
  if (a.json) {
    nlohmann::json j = {{"text", text},
                        {"stop_reason", gen.stop_reason()},
                        {"context_full", gen.context_full()},
                        {"seed", params.seed},
                        {"prompt_tokens", s.prompt_tokens},
                        {"generated_tokens", s.generated_tokens},
                        {"images", s.images},
                        {"timings", {{"load_s", load_s}, {"vision_s", s.vision_seconds}, {"prefill_s", s.prefill_seconds},
                                     {"decode_s", s.decode_seconds}, {"ttft_s", ttft}, {"prefill_tok_s", pp},
                                     {"decode_tok_s", tg}}}};
    std::cout << j.dump() << "\n";
  }
  // The answer's last piece must reach a shared pipe before the stats line.
  std::cout.flush();
  std::fflush(stdout);
  if (gen.context_full()) report_context_full(model->info(), "raise -c/--ctx-size for a longer answer");
  std::fprintf(stderr, "\nload %.2f s | images %lld, vision %.2f s | prompt %lld tok, %.1f tok/s | generated %lld tok, %.1f tok/s | ttft %.2f s | stop: %s | seed %llu\n",
               load_s, static_cast<long long>(s.images), s.vision_seconds, static_cast<long long>(s.prompt_tokens), pp,
               static_cast<long long>(s.generated_tokens), tg, ttft, gen.stop_reason().c_str(),
               static_cast<unsigned long long>(params.seed));
  return 0;
}

}  // namespace

Runner add_run_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "Answer one prompt (text and images), streaming the answer");
  auto a = std::make_shared<RunArgs>();
  cmd->add_option("-m,--model", a->model_dir, "Checkpoint folder (Hugging Face layout), qvl GGUF file, or llama.cpp GGUF (or a folder with one and its mmproj)")
      ->required()
      ->type_name("PATH");
  add_prompt_options(*cmd, a->prompt);
  cmd->add_option("--image", a->images, "Image file (repeatable, in order)")->type_name("PATH");
  cmd->add_option("--video", a->videos,
                  "Video file (repeatable, in order; '<video>' in -p marks where each goes, default: first)")
      ->type_name("PATH");
  add_max_tokens_option(*cmd, a->max_new_tokens);
  add_model_options(*cmd, a->model);
  add_image_options(*cmd, a->image_options);
  add_video_options(*cmd, a->image_options.video);
  add_sampling_options(*cmd, a->sampling);
  cmd->add_option("--stop", a->stop, "Stop string (repeatable; not printed)");
  cmd->add_flag("--json", a->json, "Print one JSON object (text, token counts, seed, timings) instead of streaming");
  cmd->callback([a] {
    check_prompt_options(a->prompt, !a->images.empty() || !a->videos.empty());
    check_image_options(a->image_options);
  });
  return [a] { return run(*a); };
}

}  // namespace qvl::cli
