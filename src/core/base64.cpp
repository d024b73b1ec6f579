#include "core/base64.h"

#include <cstdint>
#include <cstdio>

#include "core/check.h"

namespace qvl {

std::string decode_base64(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  out.reserve(base64_decoded_size_bound(in.size()));
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '=' || c == '\n' || c == '\r' || c == ' ') continue;
    const int v = value(c);
    if (v < 0) {
      char byte[8];
      std::snprintf(byte, sizeof byte, "0x%02x", static_cast<unsigned char>(c));
      fail(ErrorKind::kInvalidArgument, "image data URL holds a character that is not base64 (byte ", byte,
           " at offset ", i, " of the data)");
    }
    acc = acc << 6 | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

std::string encode_base64(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = uint32_t{uint8_t(in[i])} << 16 | uint32_t{uint8_t(in[i + 1])} << 8 | uint8_t(in[i + 2]);
    for (int k = 0; k < 4; ++k) out += kAlphabet[(v >> (18 - 6 * k)) & 63];
  }
  if (i < in.size()) {  // one or two bytes left: two or three characters, then padding
    const uint32_t v = uint32_t{uint8_t(in[i])} << 16 | (i + 1 < in.size() ? uint32_t{uint8_t(in[i + 1])} << 8 : 0);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace qvl
