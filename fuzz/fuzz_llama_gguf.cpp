// libFuzzer target: llama.cpp GGUF files as qvl reads them — the metadata turned into a config,
// tokenizer, chat template and preprocessor settings, and the tensor renaming. Input: a 4-byte
// little-endian length L, then a text-model GGUF of L bytes, then a projector GGUF (the rest);
// the text model is also tried alone. Every tensor the checkpoint hands out is then decoded
// (after its shape check, as the loader does).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "formats/gguf.h"
#include "formats/llama_gguf.h"
#include "qvl/error.hpp"

namespace {

void convert_and_decode(const qvl::GgufContents& text, const qvl::GgufContents* mmproj) {
  qvl::LlamaGgufModel m = qvl::convert_llama_gguf(text, "text", mmproj, mmproj ? "mmproj" : "");
  for (const std::string& name : m.checkpoint->names()) {
    const qvl::TensorView* v = m.checkpoint->view(name);
    if (v != nullptr && v->numel() <= (int64_t{1} << 22)) m.checkpoint->find(name, v->shape);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  uint32_t text_len;
  std::memcpy(&text_len, data, 4);
  const auto* bytes = reinterpret_cast<const std::byte*>(data) + 4;
  const size_t rest = size - 4, len = text_len < rest ? text_len : rest;
  try {
    const qvl::GgufContents text = qvl::parse_gguf(bytes, len, "fuzz text");
    convert_and_decode(text, nullptr);
    if (len < rest) {
      const qvl::GgufContents mmproj = qvl::parse_gguf(bytes + len, rest - len, "fuzz mmproj");
      convert_and_decode(text, &mmproj);
    }
  } catch (const qvl::Error&) {
  }
  return 0;
}
