// Minimal qvl program: image + question in, answer streamed out.
//   describe_image MODEL_DIR IMAGE "question" [max_tokens] [context_length]
#include <cstdio>
#include <cstdlib>

#include "qvl/qvl.hpp"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL_DIR IMAGE QUESTION [MAX_TOKENS] [CONTEXT_LENGTH]\n", argv[0]);
    return 2;
  }
  try {
    qvl::ModelOptions options;
    options.context_length = argc > 5 ? std::atoll(argv[5]) : 0;
    auto model = qvl::Model::load(argv[1], options);
    qvl::Processor processor(model);
    qvl::ProcessedInputs inputs = processor.process_prompt(argv[3], {qvl::load_image_file(argv[2])});

    qvl::GeneratorParams params = qvl::GeneratorParams::from_model(*model);
    params.max_new_tokens = argc > 4 ? std::atoi(argv[4]) : 128;
    qvl::Generator generator(model, params);
    generator.append_inputs(inputs);

    qvl::TokenizerStream stream = qvl::Tokenizer(model).create_stream();
    // Every step yields a token, the last one too: whether generation ends at EOS, at
    // max_tokens or because the context is full.
    while (!generator.is_done()) {
      generator.generate_next_token();
      std::fputs(stream.decode(generator.next_token()).c_str(), stdout);
      std::fflush(stdout);
    }
    std::printf("%s\n", stream.flush().c_str());
    std::fprintf(stderr, "[%lld prompt tokens, %lld generated, stop: %s%s]\n",
                 static_cast<long long>(generator.stats().prompt_tokens),
                 static_cast<long long>(generator.stats().generated_tokens), generator.stop_reason().c_str(),
                 generator.context_full() ? " (the context is full)" : "");
  } catch (const qvl::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
