#include "core/utf8.h"

#include <cstdint>

namespace qvl::utf8 {

Sequence next_sequence(std::string_view bytes, size_t pos) {
  const auto byte_at = [&](size_t i) { return static_cast<uint8_t>(bytes[i]); };
  const uint8_t lead = byte_at(pos);
  if (lead < 0x80) return {SequenceKind::kValid, 1};

  // Allowed range of the first continuation byte depends on the lead (Unicode Table 3-7);
  // this is what rules out overlong forms, surrogates and code points above U+10FFFF.
  size_t continuation_count;
  uint8_t low = 0x80, high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    continuation_count = 1;
  } else if (lead == 0xE0) {
    continuation_count = 2, low = 0xA0;
  } else if (lead == 0xED) {
    continuation_count = 2, high = 0x9F;
  } else if (lead >= 0xE1 && lead <= 0xEF) {
    continuation_count = 2;
  } else if (lead == 0xF0) {
    continuation_count = 3, low = 0x90;
  } else if (lead >= 0xF1 && lead <= 0xF3) {
    continuation_count = 3;
  } else if (lead == 0xF4) {
    continuation_count = 3, high = 0x8F;
  } else {
    return {SequenceKind::kInvalid, 1};
  }
  for (size_t k = 1; k <= continuation_count; ++k) {
    if (pos + k >= bytes.size()) return {SequenceKind::kTruncated, k};
    const uint8_t b = byte_at(pos + k);
    if (b < low || b > high) return {SequenceKind::kInvalid, k};
    low = 0x80, high = 0xBF;
  }
  return {SequenceKind::kValid, continuation_count + 1};
}

size_t first_invalid_offset(std::string_view bytes) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    if (static_cast<uint8_t>(bytes[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const Sequence seq = next_sequence(bytes, pos);
    if (seq.kind != SequenceKind::kValid) return pos;
    pos += seq.length;
  }
  return std::string_view::npos;
}

namespace {

constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";

size_t append_lossy_impl(std::string_view bytes, std::string& out, bool keep_truncated_tail) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    // Copy the longest run of valid characters in one go.
    size_t run_end = pos;
    Sequence seq{SequenceKind::kValid, 0};
    while (run_end < bytes.size()) {
      if (static_cast<uint8_t>(bytes[run_end]) < 0x80) {
        ++run_end;
        continue;
      }
      seq = next_sequence(bytes, run_end);
      if (seq.kind != SequenceKind::kValid) break;
      run_end += seq.length;
    }
    out.append(bytes.substr(pos, run_end - pos));
    pos = run_end;
    if (pos == bytes.size()) break;
    if (seq.kind == SequenceKind::kTruncated && keep_truncated_tail) return pos;
    out.append(kReplacementCharacter);
    pos += seq.length;
  }
  return pos;
}

}  // namespace

void append_lossy(std::string_view bytes, std::string& out) { append_lossy_impl(bytes, out, false); }

size_t append_lossy_complete(std::string_view bytes, std::string& out) {
  return append_lossy_impl(bytes, out, true);
}

void append_code_point(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

char32_t decode_at(std::string_view text, size_t pos, size_t* length) {
  const auto byte_at = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t lead = byte_at(pos);
  if (lead < 0x80) {
    *length = 1;
    return lead;
  }
  const size_t count = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
  char32_t cp = lead & (0x7F >> count);
  for (size_t k = 1; k < count; ++k) cp = (cp << 6) | (byte_at(pos + k) & 0x3F);
  *length = count;
  return cp;
}

bool decode_valid(std::string_view text, size_t pos, char32_t* cp, size_t* length) {
  if (next_sequence(text, pos).kind != SequenceKind::kValid) return false;
  *cp = decode_at(text, pos, length);
  return true;
}

size_t previous_char_start(std::string_view text, size_t pos) {
  do {
    --pos;
  } while (pos > 0 && (static_cast<uint8_t>(text[pos]) & 0xC0) == 0x80);
  return pos;
}

}  // namespace qvl::utf8
