// Minimal qvl program: image + question in, answer streamed out.
//   describe_image MODEL_DIR IMAGE "question" [max_tokens]
#include <cstdio>
#include <cstdlib>

#include "qvl/qvl.hpp"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL_DIR IMAGE QUESTION [MAX_TOKENS]\n", argv[0]);
    return 2;
  }
  try {
    auto model = qvl::Model::load(argv[1]);
    qvl::Processor processor(model);
    qvl::ProcessedInputs inputs = processor.process_prompt(argv[3], {qvl::load_image_file(argv[2])});

    qvl::GeneratorParams params = qvl::GeneratorParams::from_model(*model);
    params.max_new_tokens = argc > 4 ? std::atoi(argv[4]) : 128;
    qvl::Generator generator(model, params);
    generator.append_inputs(inputs);

    qvl::TokenizerStream stream = qvl::Tokenizer(model).create_stream();
    while (!generator.is_done()) {
      generator.generate_next_token();
      std::fputs(stream.decode(generator.next_token()).c_str(), stdout);
      std::fflush(stdout);
    }
    std::printf("%s\n", stream.flush().c_str());
    std::fprintf(stderr, "[%lld prompt tokens, %lld generated, stop: %s]\n",
                 static_cast<long long>(generator.stats().prompt_tokens),
                 static_cast<long long>(generator.stats().generated_tokens), generator.stop_reason().c_str());
  } catch (const qvl::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
