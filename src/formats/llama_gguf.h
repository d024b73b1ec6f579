// The GGUF files llama.cpp users download: a text model (general.architecture "qwen3vl" or
// "qwen3") and, for images, a vision projector ("clip", projector type "qwen3vl_merger", the
// "mmproj" file). They are read as what a Hugging Face folder holds: config.json,
// tokenizer.json, the chat template and the preprocessor settings are rebuilt from the GGUF
// metadata, and the tensors are renamed to the checkpoint's names (ggml block types are decoded
// to f32 bit for bit as ggml does, when the model asks for each tensor).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "formats/checkpoint.h"

namespace qvl {

struct LlamaGgufModel {
  std::string config_json;             // as a Hugging Face config.json
  std::string generation_config_json;
  std::string tokenizer_json;          // as a Hugging Face tokenizer.json
  std::string chat_template;           // empty when the file has none
  std::string preprocessor_config_json;  // empty without a projector
  std::unique_ptr<Checkpoint> checkpoint;
  std::vector<std::string> notes;      // things the caller should tell the user
};

// The text GGUF and mmproj GGUF to use for `path`: a llama.cpp text GGUF (mmproj as given, may
// be empty), or a folder holding exactly one text GGUF and at most one projector GGUF (when
// `mmproj` is empty). Returns false when `path` is neither (a Hugging Face folder, a qvl GGUF).
// Each candidate file's header is parsed once.
bool find_llama_gguf_pair(const std::string& path, const std::string& mmproj, std::string* text_path,
                          std::string* mmproj_path);

// Reads the pair; mmproj_path may be empty (text only). Fails naming the file, key or tensor
// and the values that disagree (a projector made for another model size, a tensor of a type
// qvl cannot decode, a missing tensor) before any tensor is decoded.
LlamaGgufModel open_llama_gguf(const std::string& text_path, const std::string& mmproj_path);

// What open_llama_gguf does once the files are parsed (the fuzz target drives it on bytes in
// memory): names are what errors call the two sources; the checkpoint's views point into the
// contents, which `keep_alive` (or the caller) must hold for as long as the checkpoint lives.
LlamaGgufModel convert_llama_gguf(const GgufContents& text, const std::string& text_name, const GgufContents* mmproj,
                                  const std::string& mmproj_name, std::vector<std::unique_ptr<GgufFile>> keep_alive = {});

}  // namespace qvl
