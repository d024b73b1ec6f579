// Added tokens (tokenizer.json "added_tokens"): strings such as "<|im_start|>" that are cut out
// of the text as single tokens before normalization and BPE ever see them.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qvl {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;      // dropped by decode(skip_special_tokens=true)
  bool normalized = false;   // matched against the normalized text instead of the raw text
  bool lstrip = false;       // also swallows the whitespace on its left
  bool rstrip = false;       // also swallows the whitespace on its right
  bool single_word = false;  // only matches when not glued to word characters
};

// A piece of text that is either plain (added_id < 0) or one matched added token.
struct TextPiece {
  std::string_view text;
  int32_t added_id = -1;
};

// Finds added tokens the way Hugging Face's AddedVocabulary does: leftmost-longest,
// non-overlapping matches, then the single_word / lstrip / rstrip rules.
class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  // `patterns[i]` is the text to look for (content, or its normalized form) for `tokens[i]`.
  AddedTokenMatcher(std::vector<AddedToken> tokens, std::vector<std::string> patterns);

  bool empty() const { return tokens_.empty(); }
  // Appends pieces covering all of `text` (valid UTF-8); empty text gives no piece.
  void split(std::string_view text, std::vector<TextPiece>& pieces) const;

 private:
  struct Match {
    size_t start, end;
    size_t token_index;
  };
  bool find_leftmost_longest(std::string_view text, size_t from, Match& match) const;

  std::vector<AddedToken> tokens_;
  std::vector<std::string> patterns_;
  // Indices into patterns_ by first byte, longest first, so the first hit is the longest.
  std::array<std::vector<uint32_t>, 256> candidates_by_first_byte_;
};

}  // namespace qvl
