// UTF-8 helpers (tokenizer, chat templates, API strings): validation, lossy decoding and code-point access.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace qvl::utf8 {

enum class SequenceKind {
  kValid,      // a whole, well-formed character
  kInvalid,    // a maximal ill-formed subpart: becomes one U+FFFD
  kTruncated,  // a well-formed prefix cut off by the end of the input
};

struct Sequence {
  SequenceKind kind;
  size_t length;  // bytes it spans (>= 1)
};

// Classifies the bytes starting at `pos` (< bytes.size()) following the Unicode
// "maximal subpart" rules, which is what Rust's String::from_utf8_lossy and WHATWG use.
Sequence next_sequence(std::string_view bytes, size_t pos);

// Byte offset of the first byte that does not start a complete valid character, or npos.
size_t first_invalid_offset(std::string_view bytes);

// Appends `bytes` with every ill-formed subpart (a truncated tail included) replaced by U+FFFD.
void append_lossy(std::string_view bytes, std::string& out);

// Like append_lossy but stops before a truncated sequence at the very end (it may still be
// completed by later bytes). Returns how many bytes were consumed.
size_t append_lossy_complete(std::string_view bytes, std::string& out);

// Encodes one code point (assumed valid) as UTF-8.
void append_code_point(char32_t cp, std::string& out);

// Decodes the character starting at `pos` of valid UTF-8; sets *length to its byte count.
char32_t decode_at(std::string_view text, size_t pos, size_t* length);

// Decodes the character starting at `pos` (< text.size()) if it is well-formed (next_sequence
// says kValid): sets *cp and *length and returns true. Otherwise returns false.
bool decode_valid(std::string_view text, size_t pos, char32_t* cp, size_t* length);

// Start of the character that ends right before `pos` (pos > 0) in valid UTF-8.
size_t previous_char_start(std::string_view text, size_t pos);

}  // namespace qvl::utf8
