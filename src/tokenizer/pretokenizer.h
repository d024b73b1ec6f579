// Pre-tokenization: cuts normalized text into "words" that BPE encodes independently
// (tokenizer.json "pre_tokenizer": Split regex steps followed by ByteLevel).
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace qvl {

// A PCRE2 regex (UTF + UCP, JIT when available) whose matches and the gaps between them each
// become a piece: the Hugging Face Split pre-tokenizer with behavior "Isolated".
class RegexSplitter {
 public:
  // Throws qvl::Error (kInvalidFile, naming `what`) when the pattern does not compile.
  RegexSplitter(const std::string& pattern, const std::string& what);
  ~RegexSplitter();
  RegexSplitter(RegexSplitter&&) noexcept;
  RegexSplitter& operator=(RegexSplitter&&) noexcept;

  // Appends the non-empty pieces of `text` (valid UTF-8) in order; they cover all of it.
  void split(std::string_view text, std::vector<std::string_view>& pieces) const;

 private:
  struct Compiled;
  std::unique_ptr<Compiled> compiled_;
};

// Rewrites `\s` (and `\S` outside classes) to the explicit Unicode White_Space set. Hugging
// Face compiles these patterns with Oniguruma, whose \s is exactly White_Space; PCRE2's UCP \s
// also matches U+180E MONGOLIAN VOWEL SEPARATOR, which would split words differently.
std::string with_explicit_white_space(const std::string& pattern);

class PreTokenizer {
 public:
  // Supports Sequence, Split (Regex or String pattern, Isolated, not inverted) and a final
  // ByteLevel (add_prefix_space false; use_regex adds the GPT-2 split). Others: kUnsupported.
  static PreTokenizer from_json(const nlohmann::json& config, const std::string& what);

  // Appends the words of `text` (valid UTF-8); they are views into `text`.
  void split(std::string_view text, std::vector<std::string_view>& words) const;

 private:
  std::vector<RegexSplitter> steps_;
};

}  // namespace qvl
