// Base64 for data URLs: decoding (standard and URL-safe alphabets) and encoding (standard, padded).
#pragma once

#include <string>
#include <string_view>

namespace qvl {

// The bytes `in` encodes. Padding ('=') and line breaks/spaces are skipped; any other character
// outside the alphabets is kInvalidArgument naming it and its offset.
std::string decode_base64(std::string_view in);

// `in` in the standard alphabet with '=' padding.
std::string encode_base64(std::string_view in);

// An upper bound of the bytes decode_base64(in) returns, for checking a limit before decoding.
inline size_t base64_decoded_size_bound(size_t encoded_chars) { return encoded_chars / 4 * 3 + 3; }

}  // namespace qvl
