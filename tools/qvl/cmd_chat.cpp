// qvl chat: an interactive multi-turn conversation. The whole chat is re-rendered each turn and
// the generator reuses the KV cache of the prefix it already holds, so only new tokens are run.
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "generation.h"
#include "options.h"
#include "qvl/qvl.hpp"

namespace qvl::cli {

namespace {

struct ChatArgs {
  std::string model_dir, system;
  ModelOptions model;
  ProcessorOptions image_options;
  int64_t max_new_tokens = 1024;
  SamplingOptions sampling;
};

constexpr const char* kCommands =
    "/image PATH  attach an image to your next message\n"
    "/video PATH  attach a video to your next message\n"
    "/reset       start a new conversation\n"
    "/exit        quit (also /quit, Ctrl-D)\n"
    "/help        this list\n"
    "Ctrl-C stops an answer (what was written stays in the conversation); twice within a second quits.\n"
    "A line starting with // is sent as a message starting with /.\n";

// Ctrl-C: the first stops the current answer; a second within a second (before another message
// is sent) exits with status 130, what a shell reports for SIGINT. Only async-signal-safe calls
// in the handler.
volatile std::sig_atomic_t interrupted = 0;
volatile std::sig_atomic_t waiting_for_input = 0;
std::atomic<int64_t> last_interrupt_ns{0};
static_assert(std::atomic<int64_t>::is_always_lock_free);

int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void on_interrupt(int) {
  const int64_t now = monotonic_ns(), last = last_interrupt_ns.exchange(now);
  if (last != 0 && now - last < 1'000'000'000) {
    (void)!write(STDERR_FILENO, "\n", 1);
    _exit(130);
  }
  interrupted = 1;
  if (waiting_for_input) {
    static const char hint[] = "\n(Ctrl-C again within a second quits; so do /exit and Ctrl-D)\n> ";
    (void)!write(STDERR_FILENO, hint, sizeof hint - 1);
  }
}

// Installs on_interrupt while a chat runs. SA_RESTART: a Ctrl-C at the prompt does not end the
// read of the line.
class InterruptHandler {
 public:
  InterruptHandler() {
    struct sigaction action {};
    action.sa_handler = on_interrupt;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGINT, &action, &previous_);
  }
  ~InterruptHandler() { sigaction(SIGINT, &previous_, nullptr); }

 private:
  struct sigaction previous_ {};
};

std::string trimmed(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// A path as typed or pasted: surrounding whitespace and one pair of quotes removed.
std::string path_argument(const std::string& text) {
  std::string path = trimmed(text);
  if (path.size() >= 2 && (path.front() == '\'' || path.front() == '"') && path.back() == path.front())
    path = path.substr(1, path.size() - 2);
  return path;
}

class Chat {
 public:
  explicit Chat(const ChatArgs& args)
      : args_(args),
        model_(Model::load(args.model_dir, args.model)),
        processor_(model_, args.image_options),
        tokenizer_(model_),
        params_(GeneratorParams::from_model(*model_)) {
    report_overridden_settings(args.model, model_->info());
    params_.max_new_tokens = max_new_tokens_for(args.max_new_tokens, model_->info());
    args.sampling.apply(params_);
    reset();
  }

  int run() {
    InterruptHandler handler;
    std::fprintf(stderr, "qvl chat: /help lists the commands; Ctrl-C stops an answer, Ctrl-D quits (seed %llu)\n",
                 static_cast<unsigned long long>(params_.seed));
    std::string line;
    for (;;) {
      std::fprintf(stderr, "> ");
      waiting_for_input = 1;
      const bool got_line = static_cast<bool>(std::getline(std::cin, line));
      waiting_for_input = 0;
      if (!got_line) {
        std::fputc('\n', stderr);  // the shell's prompt starts on its own line after Ctrl-D
        return 0;
      }
      if (line.rfind("//", 0) == 0) line.erase(0, 1);
      else if (line.rfind('/', 0) == 0) {
        if (!command(trimmed(line))) return 0;
        continue;
      }
      if (trimmed(line).empty()) continue;
      turn(line);
    }
  }

 private:
  // Runs a /command; false to quit.
  bool command(const std::string& line) {
    const std::string name = line.substr(0, line.find(' '));
    if (name == "/exit" || name == "/quit") return false;
    if (name == "/help") {
      std::fputs(kCommands, stderr);
    } else if (name == "/reset") {
      reset();
      std::fprintf(stderr, "(conversation cleared)\n");
    } else if (name == "/image") {
      const std::string path = path_argument(line.substr(name.size()));
      if (path.empty()) std::fprintf(stderr, "usage: /image PATH\n");
      else attach_image(path);
    } else if (name == "/video") {
      const std::string path = path_argument(line.substr(name.size()));
      if (path.empty()) std::fprintf(stderr, "usage: /video PATH\n");
      else attach_video(path);
    } else {
      std::fprintf(stderr, "unknown command '%s' (/help lists the commands; start with // to send it)\n",
                   name.c_str());
    }
    return true;
  }

  void reset() {
    messages_ = nlohmann::json::array();
    if (!args_.system.empty()) messages_.push_back({{"role", "system"}, {"content", args_.system}});
    images_.clear();
    pending_images_.clear();
    pending_videos_.clear();
    pending_image_tokens_ = 0;
    generator_ = std::make_unique<Generator>(model_, params_);
  }

  // Loads and checks the image now (a bad path, a file that is no image, or a size the
  // processor refuses is reported here, not at the next message).
  void attach_image(const std::string& path) {
    try {
      Image image = load_image_file(path);
      const int64_t tokens = processor_.process_prompt("", {image}).image_tokens.at(0);
      pending_images_.push_back(std::move(image));
      pending_image_tokens_ += tokens;
      const size_t number = images_.size() + pending_images_.size();
      std::fprintf(stderr, "(image %zu attached: %dx%d, %lld tokens)\n", number, pending_images_.back().width,
                   pending_images_.back().height, static_cast<long long>(tokens));
      report_large_image(number, tokens);
    } catch (const Error& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
    }
  }

  // Decodes the video now to check it and count its tokens; the conversation names it by path
  // (every turn re-reads it; its vision rows stay cached in the generator's KV prefix).
  void attach_video(const std::string& path) {
    try {
      std::error_code ec;
      const std::string abs = std::filesystem::absolute(path, ec).string();
      nlohmann::json m = nlohmann::json::array({{{"role", "user"}, {"content", {{{"type", "video"}, {"video", abs}}}}}});
      const ProcessedInputs in = processor_.process(m.dump());
      const int64_t tokens = in.video_tokens.at(0);
      pending_videos_.push_back(abs);
      pending_image_tokens_ += tokens;
      const auto& g = in.video_grid_thw.at(0);
      std::fprintf(stderr, "(video attached: %zu frames sampled, %lld groups of %lldx%lld patches, %lld tokens)\n",
                   in.video_frame_indices.at(0).size(), static_cast<long long>(g[0]), static_cast<long long>(g[1]),
                   static_cast<long long>(g[2]), static_cast<long long>(tokens));
    } catch (const Error& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
    }
  }

  // One user message and its answer. A turn that fails leaves the conversation as it was, less
  // the images attached for it (they may be what made it fail): they are dropped, and said so.
  void turn(const std::string& text) {
    nlohmann::json content = nlohmann::json::array();
    for (const auto& v : pending_videos_) content.push_back({{"type", "video"}, {"video", v}});
    pending_videos_.clear();
    for (size_t i = 0; i < pending_images_.size(); ++i) content.push_back({{"type", "image"}});
    content.push_back({{"type", "text"}, {"text", text}});
    std::vector<Image> images = images_;
    images.insert(images.end(), pending_images_.begin(), pending_images_.end());
    const size_t new_images = pending_images_.size();
    const int64_t new_image_tokens = pending_image_tokens_;
    pending_images_.clear();
    pending_image_tokens_ = 0;
    const size_t earlier_messages = messages_.size();
    interrupted = 0;  // a Ctrl-C before this message is not one for its answer
    last_interrupt_ns = 0;
    try {
      check_utf8("the message", text);
      messages_.push_back({{"role", "user"}, {"content", content}});
      ProcessedInputs inputs = processor_.process(messages_.dump(), images);
      report_warnings(inputs);
      generator_->set_progress_callback(show_progress(progress_, new_image_tokens, [] { return !interrupted; }));
      const int64_t before = generator_->stats().evaluated_tokens;
      generator_->set_inputs(inputs);
      const int64_t evaluated = generator_->stats().evaluated_tokens - before;
      answer(evaluated, inputs.input_ids.size());
      images_ = std::move(images);
    } catch (const std::exception& e) {
      progress_.end_line();
      messages_.erase(messages_.begin() + static_cast<std::ptrdiff_t>(earlier_messages), messages_.end());
      const auto* error = dynamic_cast<const Error*>(&e);
      const ErrorKind kind = error ? error->kind() : ErrorKind::kInternal;
      if (kind == ErrorKind::kCancelled) std::fprintf(stderr, "(stopped before the answer began; message dropped)\n");
      else std::fprintf(stderr, "error: %s\n", e.what());
      const bool earlier_turns = !messages_.empty() && messages_.back()["role"] == "assistant";
      if (kind == ErrorKind::kLimitExceeded && earlier_turns)  // else only a larger -c helps
        std::fprintf(stderr, "(/reset starts a new conversation)\n");
      if (new_images > 0)
        std::fprintf(stderr, "(the message's %zu image(s) were dropped; attach them again with /image)\n", new_images);
    }
  }

  // Streams the answer; a Ctrl-C stops it, keeping what was written.
  void answer(int64_t evaluated, size_t prompt_tokens) {
    TokenizerStream stream = tokenizer_.create_stream();
    std::vector<int32_t> ids;
    bool stopped = false;
    while (!generator_->is_done()) {
      if (interrupted) {
        stopped = true;
        break;
      }
      const std::optional<int32_t> token = next_answer_token(*generator_);
      if (!token) break;
      ids.push_back(*token);
      std::fputs(stream.decode(*token).c_str(), stdout);
      std::fflush(stdout);
    }
    std::printf("%s\n", stream.flush().c_str());
    std::fflush(stdout);
    messages_.push_back({{"role", "assistant"}, {"content", tokenizer_.decode(ids, true)}});
    std::fprintf(stderr, "(%lld new prompt tokens evaluated of %zu; %zu generated%s)\n",
                 static_cast<long long>(evaluated), prompt_tokens, ids.size(),
                 stopped ? "; stopped, the partial answer is kept" : "");
    if (generator_->context_full()) report_context_full(model_->info(), "/reset starts a new conversation");
  }

  const ChatArgs& args_;
  std::shared_ptr<Model> model_;
  Processor processor_;
  Tokenizer tokenizer_;
  GeneratorParams params_;
  ProgressPrinter progress_;  // the generator's progress callback writes through it
  std::unique_ptr<Generator> generator_;
  nlohmann::json messages_;
  std::vector<Image> images_;          // the images of the conversation's messages, in order
  std::vector<Image> pending_images_;  // attached with /image, waiting for the next message
  std::vector<std::string> pending_videos_;  // paths attached with /video
  int64_t pending_image_tokens_ = 0;
};

}  // namespace

Runner add_chat_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("chat", "Interactive multi-turn chat (/image PATH, /video PATH, /reset, /exit, /help)");
  auto a = std::make_shared<ChatArgs>();
  cmd->add_option("-m,--model", a->model_dir, "Checkpoint folder (Hugging Face layout), qvl GGUF file, or llama.cpp GGUF (or a folder with one and its mmproj)")
      ->required()
      ->type_name("PATH");
  add_system_option(*cmd, a->system);
  add_model_options(*cmd, a->model);
  add_image_options(*cmd, a->image_options);
  add_max_tokens_option(*cmd, a->max_new_tokens);
  add_sampling_options(*cmd, a->sampling);
  cmd->callback([a] { check_image_options(a->image_options); });
  return [a] {
    check_utf8("--system", a->system);  // before the model loads; it goes into every message list
    return Chat(*a).run();
  };
}

}  // namespace qvl::cli
