// Python str semantics over UTF-8 std::string, for the Jinja2 interpreter.
//
// Python strings are sequences of code points, so length, indexing, slicing, strip() and the
// whitespace rules all work on code points. Bytes that are not valid UTF-8 are carried through
// as U+DC80..U+DCFF (Python's "surrogateescape"), so no input byte is ever lost or rewritten.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qvl::jinja::pystr {

// Decodes the code point at s[i] and advances i past it.
char32_t next_code_point(std::string_view s, size_t& i);
std::u32string decode(std::string_view s);
std::string encode(std::u32string_view s);
void append_utf8(std::string& out, char32_t cp);
bool is_ascii(std::string_view s);
size_t length(std::string_view s);  // in code points

// str.isspace() for one code point (also what the `\s` of jinja2's lexer matches).
bool is_space(char32_t cp);

// str.strip/lstrip/rstrip: `chars` absent strips whitespace.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// str.split/rsplit: `sep` absent splits on whitespace runs and drops empty parts.
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> splitlines(std::string_view s, bool keepends);
// str.replace; count < 0 replaces all. Fails (kLimitExceeded) if the result would exceed max_bytes.
std::string replace(std::string_view s, std::string_view old, std::string_view replacement, int64_t count,
                    size_t max_bytes);
size_t count(std::string_view s, std::string_view sub);

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string title(std::string_view s);       // str.title()
std::string capitalize(std::string_view s);  // str.capitalize()
bool is_lower(std::string_view s);
// Unicode classes behind str.isalpha()/isdigit()/isnumeric() for one code point.
bool is_alpha(char32_t cp);
bool is_digit(char32_t cp);
bool is_numeric(char32_t cp);
bool is_upper(std::string_view s);

// Python's repr() of a str: quoted, with non-printable characters escaped.
void append_repr(std::string& out, std::string_view s);
// Python's repr() of a float: shortest round-trip digits, "1.0", "1e+16", "inf", "nan".
std::string float_repr(double d);

}  // namespace qvl::jinja::pystr
