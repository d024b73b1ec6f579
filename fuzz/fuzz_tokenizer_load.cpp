// libFuzzer target: tokenizer.json text -> BpeTokenizer::from_json_text, then a short encode /
// decode / stream-decode round with whatever loaded (vocab, merges, added tokens, normalizer and
// pre-tokenizer regex all come from the input).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "qvl/error.hpp"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::unique_ptr<qvl::BpeTokenizer> tok;
  try {
    tok = qvl::BpeTokenizer::from_json_text(text, "tokenizer.json");
  } catch (const qvl::Error&) {
    return 0;
  }
  static const char* const kSamples[] = {
      "Hello, world! It's 2024.\n\n  tabs\tand  spaces ",
      "<|im_start|>user\nCaf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd e\xcc\x81<|im_end|>",
      "\xf0\x9f\x98\x80!!!???...",
  };
  for (const char* sample : kSamples) {
    try {
      const std::vector<int32_t> ids = tok->encode(sample);
      const std::string decoded = tok->decode(ids);
      qvl::BpeTokenizer::StreamDecoder stream(*tok);
      std::string streamed;
      for (int32_t id : ids) streamed += stream.put(id);
      streamed += stream.flush();
      if (streamed != decoded) __builtin_trap();  // documented: put()+flush() == decode()
      for (int32_t id : ids) (void)tok->id_to_token(id);
    } catch (const qvl::Error&) {
    }
  }
  (void)tok->token_to_id("<|im_start|>");
  (void)tok->is_special(static_cast<int32_t>(tok->vocab_size()) - 1);
  return 0;
}
