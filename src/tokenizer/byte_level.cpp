#include "tokenizer/byte_level.h"

#include <array>

#include "core/utf8.h"

namespace qvl::byte_level {
namespace {

// Printable bytes keep their own code point; the other 68 are moved, in byte order, to
// U+0100.. so that no byte maps to whitespace or a control character.
constexpr char32_t kFirstMovedCodePoint = 256;
constexpr char32_t kCodePointLimit = kFirstMovedCodePoint + 68;

bool keeps_own_code_point(int byte) {
  return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE && byte <= 0xFF);
}

struct Alphabet {
  std::array<std::string, 256> char_for_byte;
  std::array<int16_t, kCodePointLimit> byte_for_code_point;  // -1: not in the alphabet

  Alphabet() {
    byte_for_code_point.fill(-1);
    char32_t next_moved = kFirstMovedCodePoint;
    for (int byte = 0; byte < 256; ++byte) {
      const char32_t cp = keeps_own_code_point(byte) ? char32_t(byte) : next_moved++;
      utf8::append_code_point(cp, char_for_byte[byte]);
      byte_for_code_point[cp] = static_cast<int16_t>(byte);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet instance;
  return instance;
}

}  // namespace

const std::string& char_for_byte(uint8_t byte) { return alphabet().char_for_byte[byte]; }

std::string encode(std::string_view bytes) {
  const Alphabet& a = alphabet();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += a.char_for_byte[static_cast<uint8_t>(c)];
  return out;
}

bool decode(std::string_view token, std::string& out) {
  const Alphabet& a = alphabet();
  const size_t original_size = out.size();
  // The alphabet lies below U+0144, so each character is one byte or two (lead 0xC2..0xC5); the
  // UTF-8 is decoded here directly, as this runs for every token of a vocabulary at load.
  for (size_t pos = 0; pos < token.size();) {
    const auto lead = static_cast<uint8_t>(token[pos]);
    char32_t cp = lead;
    if (lead >= 0x80) {
      const auto next = pos + 1 < token.size() ? static_cast<uint8_t>(token[pos + 1]) : 0;
      if (lead < 0xC2 || lead > 0xDF || (next & 0xC0) != 0x80) {  // not a well-formed 2-byte character
        out.resize(original_size);
        return false;
      }
      cp = (char32_t(lead & 0x1F) << 6) | (next & 0x3F);
      ++pos;
    }
    ++pos;
    if (cp >= kCodePointLimit || a.byte_for_code_point[cp] < 0) {
      out.resize(original_size);
      return false;
    }
    out.push_back(static_cast<char>(a.byte_for_code_point[cp]));
  }
  return true;
}

}  // namespace qvl::byte_level
