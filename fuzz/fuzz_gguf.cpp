// libFuzzer target: GGUF metadata, tensor table and data offsets; then, as the loader does with a
// llama.cpp file, the metadata read as a model: a text model's config (qwen3vl.* / qwen3.*) and
// tokenizer (tokenizer.ggml.*) alone, a projector's clip.vision.* settings beside the micro text
// model of tests/data/bad (llama_text.gguf), and every tensor the checkpoint hands out decoded
// after its shape check.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "formats/gguf.h"
#include "formats/llama_gguf.h"
#include "fuzz_common.h"
#include "qvl/error.hpp"

namespace {

// The projector's partner: parsed once, kept for the process.
const qvl::GgufContents& micro_text_model() {
  static const std::string bytes = qvl::fuzz::read_file_or_die(qvl::fuzz::test_data_dir() + "/bad/llama_text.gguf");
  static const qvl::GgufContents contents =
      qvl::parse_gguf(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size(), "llama_text.gguf");
  return contents;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const qvl::GgufContents& text_model = micro_text_model();
  try {
    auto contents = qvl::parse_gguf(reinterpret_cast<const std::byte*>(data), size, "fuzz");
    volatile uint8_t sink = 0;
    for (const auto& [name, t] : contents.tensors)
      if (t.nbytes > 0) sink = sink + static_cast<uint8_t>(t.data[t.nbytes - 1]);
    const auto arch = contents.metadata.find("general.architecture");
    const std::string* a = arch == contents.metadata.end() ? nullptr : std::get_if<std::string>(&arch->second);
    const bool projector = a != nullptr && *a == "clip";
    qvl::LlamaGgufModel m = projector ? qvl::convert_llama_gguf(text_model, "text", &contents, "fuzz")
                                      : qvl::convert_llama_gguf(contents, "fuzz", nullptr, "");
    for (const std::string& name : m.checkpoint->names()) {
      const qvl::TensorView* v = m.checkpoint->view(name);
      if (v != nullptr && v->numel() <= (int64_t{1} << 22)) m.checkpoint->find(name, v->shape);
    }
  } catch (const qvl::Error&) {
  }
  return 0;
}
