// Fast reading of tokenizer.json: its "vocab" and "merges" (nearly all of the 11 MB of a Qwen
// tokenizer.json) are scanned straight into a BpeSource, and only the rest of the document (a
// few KB) is parsed by nlohmann::json. Building a DOM of the whole file took ~0.3 s.
#pragma once

#include <string>
#include <string_view>

#include "core/json_util.h"
#include "tokenizer/bpe.h"

namespace qvl {

struct TokenizerJsonParts {
  Json root;         // the document without model.vocab and model.merges
  BpeSource source;  // those two; views into the text given to read_tokenizer_json_fast
};

// Fills `parts` and returns true for a well-formed document of the usual shape: one top-level
// object with one "model" object holding one "vocab" object of integer ids in [0, 2^24) and one
// "merges" array of "a b" strings or ["a", "b"] pairs. Returns false for anything else,
// malformed JSON included; the caller then parses the whole text, which gives the same result
// or the error. Only JSON that nlohmann::json accepts is accepted, with the same meaning.
bool read_tokenizer_json_fast(std::string_view text, const std::string& what, TokenizerJsonParts& parts);

}  // namespace qvl
