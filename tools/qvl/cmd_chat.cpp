// qvl chat: an interactive multi-turn conversation. The whole chat is re-rendered each turn and
// the generator reuses the KV cache of the prefix it already holds, so only new tokens are run.
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "options.h"
#include "qvl/qvl.hpp"

namespace qvl::cli {

namespace {

struct ChatArgs {
  std::string model_dir, system;
  ModelOptions model;
  int64_t max_new_tokens = 1024;
  SamplingOptions sampling;
};

int chat(const ChatArgs& a) {
  auto model = Model::load(a.model_dir, a.model);
  Processor processor(model);
  Tokenizer tokenizer(model);
  GeneratorParams params = GeneratorParams::from_model(*model);
  params.max_new_tokens = a.max_new_tokens;
  a.sampling.apply(params);
  auto generator = std::make_unique<Generator>(model, params);

  nlohmann::json messages = nlohmann::json::array();
  if (!a.system.empty()) messages.push_back({{"role", "system"}, {"content", a.system}});
  std::vector<Image> images;          // every image of the conversation, in order
  nlohmann::json pending = nlohmann::json::array();  // image items waiting for the next user text
  std::fprintf(stderr, "qvl chat — /image PATH attaches an image, /reset clears, /exit quits\n");
  std::string line;
  while (std::fprintf(stderr, "> "), std::getline(std::cin, line)) {
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      messages = nlohmann::json::array();
      if (!a.system.empty()) messages.push_back({{"role", "system"}, {"content", a.system}});
      images.clear();
      pending = nlohmann::json::array();
      generator = std::make_unique<Generator>(model, params);
      std::fprintf(stderr, "(conversation cleared)\n");
      continue;
    }
    try {
      if (line.rfind("/image ", 0) == 0) {
        images.push_back(load_image_file(line.substr(7)));
        pending.push_back({{"type", "image"}});
        std::fprintf(stderr, "(image %zu attached: %dx%d)\n", images.size(), images.back().width, images.back().height);
        continue;
      }
      if (line.empty()) continue;
      nlohmann::json content = pending;
      content.push_back({{"type", "text"}, {"text", line}});
      pending = nlohmann::json::array();
      messages.push_back({{"role", "user"}, {"content", content}});
      ProcessedInputs inputs = processor.process(messages.dump(), images);
      const int64_t before = generator->stats().evaluated_tokens;
      generator->set_inputs(inputs);
      const int64_t evaluated = generator->stats().evaluated_tokens - before;
      TokenizerStream stream = tokenizer.create_stream();
      std::vector<int32_t> answer;
      while (!generator->is_done()) {
        generator->generate_next_token();
        if (generator->stop_reason() == "eos") break;
        answer.push_back(generator->next_token());
        std::fputs(stream.decode(answer.back()).c_str(), stdout);
        std::fflush(stdout);
      }
      std::printf("%s\n", stream.flush().c_str());
      messages.push_back({{"role", "assistant"}, {"content", tokenizer.decode(answer, true)}});
      std::fprintf(stderr, "(%lld new prompt tokens evaluated of %zu; %zu generated)\n",
                   static_cast<long long>(evaluated), inputs.input_ids.size(), answer.size());
    } catch (const Error& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      if (!messages.empty() && messages.back()["role"] == "user") messages.erase(messages.size() - 1);
    }
  }
  return 0;
}

}  // namespace

Runner add_chat_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("chat", "Interactive multi-turn chat (/image PATH, /reset, /exit)");
  auto a = std::make_shared<ChatArgs>();
  cmd->add_option("-m,--model", a->model_dir, "Checkpoint folder")->required();
  cmd->add_option("--system", a->system, "System prompt");
  add_model_options(*cmd, a->model);
  cmd->add_option("-n,--max-tokens", a->max_new_tokens, "Maximum tokens per answer");
  add_sampling_options(*cmd, a->sampling);
  return [a] { return chat(*a); };
}

}  // namespace qvl::cli
