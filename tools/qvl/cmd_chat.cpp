// qvl chat: an interactive multi-turn conversation. The whole chat is re-rendered each turn and
// the generator reuses the KV cache of the prefix it already holds, so only new tokens are run.
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "qvl/qvl.hpp"

namespace qvl::cli {

namespace {

struct ChatArgs {
  std::string model_dir, system;
  int threads = 0;
  std::string quant, vision_quant;
  int64_t context = 0, max_new_tokens = 1024;
  std::optional<float> temp;
  std::optional<uint64_t> seed;
};

int chat(const ChatArgs& a) {
  ModelOptions mo;
  mo.threads = a.threads;
  mo.weights_type = a.quant;
  mo.vision_weights_type = a.vision_quant;
  mo.context_length = a.context;
  auto model = Model::load(a.model_dir, mo);
  Processor processor(model);
  Tokenizer tokenizer(model);
  GeneratorParams params = GeneratorParams::from_model(*model);
  params.max_new_tokens = a.max_new_tokens;
  if (a.temp) {
    params.do_sample = *a.temp > 0;
    params.temperature = *a.temp > 0 ? *a.temp : 1.0f;
  }
  if (a.seed) params.seed = *a.seed;
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
  cmd->add_option("--quant", a->quant, "Quantize the text weights at load: q4_k, q4_0 or q8_0")
      ->check(CLI::IsMember({"q4_k", "q4_0", "q8_0", "bf16"}));
  cmd->add_option("--vision-quant", a->vision_quant, "Quantize the vision tower at load: q8_0 (default: as stored)")
      ->check(CLI::IsMember({"q8_0", "q4_k", "q4_0", "bf16"}));
  cmd->add_option("-t,--threads", a->threads, "Threads (default: all cores)");
  cmd->add_option("-c,--ctx-size", a->context, "Context length in tokens");
  cmd->add_option("-n,--max-tokens", a->max_new_tokens, "Maximum tokens per answer");
  cmd->add_option("--temp", a->temp, "Sampling temperature (0 = greedy)");
  cmd->add_option("--seed", a->seed, "Random seed");
  return [a] { return chat(*a); };
}

}  // namespace qvl::cli
