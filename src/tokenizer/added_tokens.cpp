#include "tokenizer/added_tokens.h"

#include <utf8proc.h>

#include <algorithm>

#include "core/utf8.h"

namespace qvl {
namespace {

// Unicode White_Space (what the reference's `\s` matches).
bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Unicode `\w`: Alphabetic, marks, decimal digits, connector punctuation, joiners.
// Alphabetic is taken as letters + Nl, plus the symbol blocks with Other_Alphabetic letters.
bool is_word_character(char32_t c) {
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return c == 0x200C || c == 0x200D || (c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F149) ||
             (c >= 0x1F150 && c <= 0x1F169) || (c >= 0x1F170 && c <= 0x1F189);
  }
}

bool word_character_before(std::string_view text, size_t pos) {
  size_t length = 0;
  return pos > 0 && is_word_character(utf8::decode_at(text, utf8::previous_char_start(text, pos), &length));
}

bool word_character_at(std::string_view text, size_t pos) {
  size_t length = 0;
  return pos < text.size() && is_word_character(utf8::decode_at(text, pos, &length));
}

// Start of the run of white space that ends at `pos`.
size_t white_space_run_start(std::string_view text, size_t pos) {
  size_t length = 0;
  while (pos > 0) {
    const size_t previous = utf8::previous_char_start(text, pos);
    if (!is_white_space(utf8::decode_at(text, previous, &length))) break;
    pos = previous;
  }
  return pos;
}

// End of the run of white space that starts at `pos`.
size_t white_space_run_end(std::string_view text, size_t pos) {
  size_t length = 0;
  while (pos < text.size() && is_white_space(utf8::decode_at(text, pos, &length))) pos += length;
  return pos;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens, std::vector<std::string> patterns)
    : tokens_(std::move(tokens)), patterns_(std::move(patterns)) {
  for (uint32_t i = 0; i < patterns_.size(); ++i) {
    if (patterns_[i].empty()) continue;  // an empty token can never be matched
    candidates_by_first_byte_[static_cast<uint8_t>(patterns_[i][0])].push_back(i);
  }
  // Stable: among equal patterns the first listed wins, as in the reference.
  for (auto& list : candidates_by_first_byte_)
    std::stable_sort(list.begin(), list.end(),
                     [&](uint32_t a, uint32_t b) { return patterns_[a].size() > patterns_[b].size(); });
}

bool AddedTokenMatcher::find_leftmost_longest(std::string_view text, size_t from, Match& match) const {
  for (size_t pos = from; pos < text.size(); ++pos) {
    for (uint32_t index : candidates_by_first_byte_[static_cast<uint8_t>(text[pos])]) {
      const std::string& pattern = patterns_[index];
      if (text.compare(pos, pattern.size(), pattern) == 0) {
        match = {pos, pos + pattern.size(), index};
        return true;
      }
    }
  }
  return false;
}

void AddedTokenMatcher::split(std::string_view text, std::vector<TextPiece>& pieces) const {
  size_t plain_start = 0, search_from = 0;
  Match match{};
  while (!empty() && find_leftmost_longest(text, search_from, match)) {
    search_from = match.end;  // matches never overlap, even discarded ones
    const AddedToken& token = tokens_[match.token_index];
    size_t start = match.start, stop = match.end;
    if (token.single_word && (word_character_before(text, start) || word_character_at(text, stop))) continue;
    if (token.lstrip) start = std::max(white_space_run_start(text, start), plain_start);
    if (token.rstrip) stop = white_space_run_end(text, stop);
    if (plain_start < start) pieces.push_back({text.substr(plain_start, start - plain_start), -1});
    pieces.push_back({text.substr(start, stop - start), token.id});
    plain_start = stop;
    // Whitespace an rstrip swallowed is not searched again, so pieces never overlap.
    search_from = std::max(search_from, stop);
  }
  if (plain_start < text.size()) pieces.push_back({text.substr(plain_start), -1});
}

}  // namespace qvl
