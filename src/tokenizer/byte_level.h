// GPT-2 "byte-level" alphabet: every byte is shown as a printable Unicode character so BPE
// vocabularies can be stored as text (space 0x20 becomes "Ġ" U+0120, newline "Ċ" U+010A).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace qvl::byte_level {

// UTF-8 text of the character standing for `byte`.
const std::string& char_for_byte(uint8_t byte);

// Maps every byte of `bytes` to its character.
std::string encode(std::string_view bytes);

// Appends the bytes a byte-level token stands for. Returns false (appending nothing) when the
// token holds a character outside the alphabet; the caller then uses the token text as is,
// which is what the Hugging Face ByteLevel decoder does for such (added) tokens.
bool decode(std::string_view token, std::string& out);

}  // namespace qvl::byte_level
