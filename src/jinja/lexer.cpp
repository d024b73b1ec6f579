#include "jinja/lexer.h"

#include <algorithm>
#include <charconv>

#include "core/check.h"
#include "jinja/pystr.h"

namespace qvl::jinja {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// jinja2 works on "\n" only: "\r\n" and "\r" become "\n"; keep_trailing_newline=False drops one
// final newline.
std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Position just past the whitespace (Python's \s, Unicode-aware) starting at pos.
size_t skip_space(std::string_view s, size_t pos) {
  while (pos < s.size()) {
    size_t next = pos;
    if (!pystr::is_space(pystr::next_code_point(s, next))) break;
    pos = next;
  }
  return pos;
}

// Length of s with trailing whitespace removed (Python's str.rstrip()).
size_t rstripped_length(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && end - start < 4 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t after = start;
    const char32_t cp = pystr::next_code_point(s, after);
    if (after != end || !pystr::is_space(cp)) break;
    end = start;
  }
  return end;
}

bool only_space(std::string_view s) { return skip_space(s, 0) == s.size(); }

class Lexer {
 public:
  explicit Lexer(std::string_view source) : src_(normalize_newlines(source)) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    size_t pos = 0;
    while (pos < src_.size()) {
      const size_t tag = find_tag_start(pos);
      if (tag == std::string::npos) {
        emit_data(src_.substr(pos), pos);
        break;
      }
      pos = lex_tag(pos, tag);
    }
    Token end;
    end.type = TokenType::kEnd;
    set_position(end, src_.size());
    tokens_.push_back(std::move(end));
    return std::move(tokens_);
  }

 private:
  std::string src_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
  std::vector<char> open_brackets_;  // closers expected, innermost last
  bool line_starting_ = true;        // the last consumed character was a newline (or none yet)

  bool at(size_t pos, std::string_view text) const { return src_.compare(pos, text.size(), text) == 0; }

  void set_position(Token& token, size_t offset) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    const size_t line_index = static_cast<size_t>(it - line_starts_.begin()) - 1;
    token.line = static_cast<int>(line_index + 1);
    token.column = static_cast<int>(offset - line_starts_[line_index] + 1);
  }

  [[noreturn]] void error_at(size_t offset, const std::string& message) const {
    Token where;
    set_position(where, offset);
    syntax_error(where.line, where.column, message);
  }

  Token& emit(TokenType type, std::string text, size_t offset) {
    Token token;
    token.type = type;
    token.text = std::move(text);
    set_position(token, offset);
    tokens_.push_back(std::move(token));
    return tokens_.back();
  }

  void emit_data(std::string_view text, size_t offset) {
    if (!text.empty()) emit(TokenType::kData, std::string(text), offset);
  }

  size_t find_tag_start(size_t pos) const {
    for (size_t at = src_.find('{', pos); at != std::string::npos; at = src_.find('{', at + 1)) {
      if (at + 1 < src_.size() && (src_[at + 1] == '{' || src_[at + 1] == '%' || src_[at + 1] == '#')) return at;
    }
    return std::string::npos;
  }

  // jinja2's OptionalLStrip: whitespace control applied to the data before a tag.
  std::string_view strip_before_tag(std::string_view text, char sign, bool is_variable) const {
    if (sign == '-') return text.substr(0, rstripped_length(text));
    if (sign == '+' || is_variable) return text;
    // lstrip_blocks: a block/comment tag preceded on its line only by whitespace loses it.
    const size_t newline = text.rfind('\n');
    const size_t line_start = newline == std::string_view::npos ? 0 : newline + 1;
    if (line_start > 0 || line_starting_) {
      const std::string_view indent = text.substr(line_start);
      if (!indent.empty() && only_space(indent)) return text.substr(0, line_start);
    }
    return text;
  }

  // Consumes the end of a block tag starting at pos ("+%}", "-%}" + whitespace, "%}" + one
  // newline under trim_blocks); returns the position after it, or npos if none is there.
  size_t match_block_end(size_t pos, std::string_view close = "%}") const {
    if (at(pos, "+") && at(pos + 1, close)) return pos + 1 + close.size();
    if (at(pos, "-") && at(pos + 1, close)) return skip_space(src_, pos + 1 + close.size());
    if (at(pos, close)) {
      size_t end = pos + close.size();
      if (end < src_.size() && src_[end] == '\n') ++end;
      return end;
    }
    return std::string::npos;
  }

  void note_consumed_until(size_t end) { line_starting_ = end > 0 && src_[end - 1] == '\n'; }

  // `{% raw %}`: returns the position after the opening tag, or npos if this tag is not raw.
  size_t match_raw_begin(size_t after_sign) const {
    size_t p = skip_space(src_, after_sign);
    if (!at(p, "raw")) return std::string::npos;
    p = skip_space(src_, p + 3);
    if (at(p, "-%}")) return skip_space(src_, p + 3);
    if (at(p, "%}")) return p + 2;  // jinja2 does not trim the newline after `{% raw %}`
    return std::string::npos;
  }

  size_t lex_raw_body(size_t pos, size_t raw_tag_offset) {
    for (size_t tag = src_.find("{%", pos); tag != std::string::npos; tag = src_.find("{%", tag + 1)) {
      size_t p = tag + 2;
      const char sign = (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ? src_[p] : 0;
      if (sign) ++p;
      p = skip_space(src_, p);
      if (!at(p, "endraw")) continue;
      p = skip_space(src_, p + 6);
      const size_t end = match_block_end(p);
      if (end == std::string::npos) continue;
      emit_data(strip_before_tag(std::string_view(src_).substr(pos, tag - pos), sign, false), pos);
      note_consumed_until(end);
      return end;
    }
    error_at(raw_tag_offset, "missing end of raw directive");
  }

  size_t lex_tag(size_t pos, size_t tag) {
    const char kind = src_[tag + 1];
    size_t after = tag + 2;
    const char sign = (after < src_.size() && (src_[after] == '-' || src_[after] == '+')) ? src_[after] : 0;
    if (sign) ++after;
    const std::string_view text = std::string_view(src_).substr(pos, tag - pos);
    emit_data(strip_before_tag(text, sign, kind == '{'), pos);

    if (kind == '%') {
      const size_t raw_end = match_raw_begin(after);
      if (raw_end != std::string::npos) {
        note_consumed_until(raw_end);
        return lex_raw_body(raw_end, tag);
      }
    }
    if (kind == '#') {
      const size_t close = src_.find("#}", after);
      if (close == std::string::npos) error_at(tag, "missing end of comment tag");
      size_t end;
      if (close > after && src_[close - 1] == '-') end = skip_space(src_, close + 2);
      else if (close > after && src_[close - 1] == '+') end = close + 2;
      else end = match_block_end(close, "#}");
      note_consumed_until(end);
      return end;
    }
    const bool is_block = kind == '%';
    emit(is_block ? TokenType::kBlockBegin : TokenType::kVariableBegin, is_block ? "{%" : "{{", tag);
    return lex_tag_contents(after, tag, is_block);
  }

  size_t lex_tag_contents(size_t pos, size_t tag_offset, bool is_block) {
    open_brackets_.clear();
    while (true) {
      if (pos >= src_.size())
        error_at(tag_offset, is_block ? "unexpected end of template: block tag is missing '%}'"
                                      : "unexpected end of template: expression is missing '}}'");
      if (open_brackets_.empty()) {
        size_t end = std::string::npos;
        if (is_block) {
          end = match_block_end(pos);
        } else if (at(pos, "-}}")) {
          end = skip_space(src_, pos + 3);
        } else if (at(pos, "}}")) {
          end = pos + 2;
        }
        if (end != std::string::npos) {
          emit(is_block ? TokenType::kBlockEnd : TokenType::kVariableEnd, is_block ? "%}" : "}}", pos);
          note_consumed_until(end);
          return end;
        }
      }
      const char c = src_[pos];
      const size_t space_end = skip_space(src_, pos);
      if (space_end > pos) {
        pos = space_end;
      } else if (is_digit(c)) {
        pos = lex_number(pos);
      } else if (is_name_start(c)) {
        size_t end = pos;
        while (end < src_.size() && is_name_char(src_[end])) ++end;
        emit(TokenType::kName, src_.substr(pos, end - pos), pos);
        pos = end;
      } else if (c == '\'' || c == '"') {
        pos = lex_string(pos);
      } else {
        pos = lex_operator(pos);
      }
    }
  }

  // `(\d+_)*\d+`: digits with single underscores between them; returns the end or pos.
  size_t scan_digits(size_t pos) const {
    if (pos >= src_.size() || !is_digit(src_[pos])) return pos;
    size_t end = pos;
    while (end < src_.size()) {
      if (is_digit(src_[end])) {
        ++end;
      } else if (src_[end] == '_' && end + 1 < src_.size() && is_digit(src_[end + 1])) {
        end += 2;
      } else {
        break;
      }
    }
    return end;
  }

  static std::string without_underscores(std::string_view s) {
    std::string out;
    for (char c : s)
      if (c != '_') out.push_back(c);
    return out;
  }

  size_t lex_number(size_t pos) {
    // Float first, as jinja2 does, but not right after '.' so that `x.0.1` stays two subscripts.
    if (pos == 0 || src_[pos - 1] != '.') {
      const size_t int_end = scan_digits(pos);
      size_t end = int_end;
      bool has_fraction = false, has_exponent = false;
      if (at(end, ".") && scan_digits(end + 1) > end + 1) {
        end = scan_digits(end + 1);
        has_fraction = true;
      }
      if (end < src_.size() && (src_[end] == 'e' || src_[end] == 'E')) {
        size_t exp = end + 1;
        if (exp < src_.size() && (src_[exp] == '+' || src_[exp] == '-')) ++exp;
        if (scan_digits(exp) > exp) {
          end = scan_digits(exp);
          has_exponent = true;
        }
      }
      if (has_fraction || has_exponent) {
        const std::string text = without_underscores(std::string_view(src_).substr(pos, end - pos));
        double value = 0;
        const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
        if (result.ec != std::errc()) error_at(pos, "invalid float literal '" + text + "'");
        emit(TokenType::kFloat, src_.substr(pos, end - pos), pos).float_value = value;
        return end;
      }
    }
    int base = 10;
    size_t digits_start = pos;
    if (src_[pos] == '0' && pos + 1 < src_.size()) {
      const char prefix = static_cast<char>(src_[pos + 1] | 0x20);
      if (prefix == 'b') base = 2;
      if (prefix == 'o') base = 8;
      if (prefix == 'x') base = 16;
      if (base != 10) digits_start = pos + 2;
    }
    size_t end = digits_start;
    if (base == 10) {
      end = scan_digits(pos);
      if (src_[pos] == '0' && end > pos + 1) {
        // jinja2 accepts only zeros after a leading 0 ("007" is not an integer literal).
        end = pos + 1;
        while (end < src_.size() && (src_[end] == '0' || (src_[end] == '_' && at(end + 1, "0")))) ++end;
      }
    } else {
      const auto is_base_digit = [&](size_t at) {
        const int h = at < src_.size() ? hex_value(src_[at]) : -1;
        return h >= 0 && h < base;
      };
      while (end < src_.size() && (is_base_digit(end) || (src_[end] == '_' && is_base_digit(end + 1)))) ++end;
      if (end == digits_start) {
        end = pos + 1;  // just "0"; the letter lexes as a name and the parser reports it
        base = 10;
        digits_start = pos;
      }
    }
    const std::string digits = without_underscores(std::string_view(src_).substr(digits_start, end - digits_start));
    int64_t value = 0;
    const auto result = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
    if (result.ec != std::errc() || result.ptr != digits.data() + digits.size())
      error_at(pos, "integer literal '" + src_.substr(pos, end - pos) + "' does not fit in 64 bits");
    emit(TokenType::kInteger, src_.substr(pos, end - pos), pos).int_value = value;
    return end;
  }

  // Python's "unicode_escape" decoding of a jinja2 string literal.
  size_t lex_string(size_t pos) {
    const char quote = src_[pos];
    std::string value;
    size_t i = pos + 1;
    char32_t pending_high_surrogate = 0;
    const auto put = [&](char32_t cp, size_t where) {
      if (pending_high_surrogate) {
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
          pystr::append_utf8(value, 0x10000 + ((pending_high_surrogate - 0xD800) << 10) + (cp - 0xDC00));
          pending_high_surrogate = 0;
          return;
        }
        error_at(where, "lone surrogate in string literal escape");
      }
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        pending_high_surrogate = cp;
        return;
      }
      if (cp >= 0xDC00 && cp <= 0xDFFF) error_at(where, "lone surrogate in string literal escape");
      pystr::append_utf8(value, cp);
    };
    const auto flush_surrogate = [&](size_t where) {
      if (pending_high_surrogate) error_at(where, "lone surrogate in string literal escape");
    };
    while (true) {
      if (i >= src_.size()) error_at(pos, "unterminated string literal");
      const char c = src_[i];
      if (c == quote) break;
      if (c != '\\') {
        flush_surrogate(i);
        value.push_back(c);
        ++i;
        continue;
      }
      if (i + 1 >= src_.size()) error_at(pos, "unterminated string literal");
      const char e = src_[i + 1];
      const size_t escape_at = i;
      i += 2;
      const auto read_hex = [&](int digits) {
        char32_t cp = 0;
        for (int k = 0; k < digits; ++k) {
          const int h = i < src_.size() ? hex_value(src_[i]) : -1;
          if (h < 0) error_at(escape_at, std::string("truncated \\") + e + " escape in string literal");
          cp = cp * 16 + static_cast<char32_t>(h);
          ++i;
        }
        return cp;
      };
      switch (e) {
        case '\n': break;  // backslash-newline continues the line
        case '\\': flush_surrogate(escape_at); value.push_back('\\'); break;
        case '\'': flush_surrogate(escape_at); value.push_back('\''); break;
        case '"': flush_surrogate(escape_at); value.push_back('"'); break;
        case 'a': flush_surrogate(escape_at); value.push_back('\a'); break;
        case 'b': flush_surrogate(escape_at); value.push_back('\b'); break;
        case 'f': flush_surrogate(escape_at); value.push_back('\f'); break;
        case 'n': flush_surrogate(escape_at); value.push_back('\n'); break;
        case 'r': flush_surrogate(escape_at); value.push_back('\r'); break;
        case 't': flush_surrogate(escape_at); value.push_back('\t'); break;
        case 'v': flush_surrogate(escape_at); value.push_back('\v'); break;
        case 'x': put(read_hex(2), escape_at); break;
        case 'u': put(read_hex(4), escape_at); break;
        case 'U': {
          const char32_t cp = read_hex(8);
          if (cp > 0x10FFFF) error_at(escape_at, "\\U escape beyond U+10FFFF in string literal");
          put(cp, escape_at);
          break;
        }
        case 'N': error_at(escape_at, "\\N{...} escapes are not supported");
        default:
          if (e >= '0' && e <= '7') {
            char32_t cp = static_cast<char32_t>(e - '0');
            for (int k = 0; k < 2 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7'; ++k, ++i)
              cp = cp * 8 + static_cast<char32_t>(src_[i] - '0');
            put(cp, escape_at);
          } else {
            flush_surrogate(escape_at);
            value.push_back('\\');  // unknown escapes keep their backslash, as in Python
            value.push_back(e);
          }
      }
    }
    flush_surrogate(i);
    emit(TokenType::kString, std::move(value), pos);
    return i + 1;
  }

  size_t lex_operator(size_t pos) {
    static constexpr std::string_view kTwoChar[] = {"//", "**", "==", "!=", ">=", "<="};
    for (std::string_view op : kTwoChar) {
      if (at(pos, op)) {
        emit(TokenType::kOperator, std::string(op), pos);
        return pos + 2;
      }
    }
    const char c = src_[pos];
    if (std::string_view("+-/*%~[](){}><=.:|,;").find(c) == std::string_view::npos) {
      size_t end = pos;
      pystr::next_code_point(src_, end);
      error_at(pos, "unexpected char '" + src_.substr(pos, end - pos) + "'");
    }
    if (c == '(' || c == '[' || c == '{') {
      open_brackets_.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (open_brackets_.empty()) error_at(pos, std::string("unexpected '") + c + "'");
      if (open_brackets_.back() != c)
        error_at(pos, std::string("unexpected '") + c + "', expected '" + open_brackets_.back() + "'");
      open_brackets_.pop_back();
    }
    emit(TokenType::kOperator, std::string(1, c), pos);
    return pos + 1;
  }
};

}  // namespace

void syntax_error(int line, int column, const std::string& message) {
  fail(ErrorKind::kInvalidFile, "chat template syntax error at line ", line, ", column ", column, ": ", message);
}

const char* token_type_name(TokenType type) {
  switch (type) {
    case TokenType::kData: return "template data";
    case TokenType::kVariableBegin: return "'{{'";
    case TokenType::kVariableEnd: return "end of print statement";
    case TokenType::kBlockBegin: return "'{%'";
    case TokenType::kBlockEnd: return "end of statement block";
    case TokenType::kName: return "name";
    case TokenType::kString: return "string";
    case TokenType::kInteger: return "integer";
    case TokenType::kFloat: return "float";
    case TokenType::kOperator: return "operator";
    case TokenType::kEnd: return "end of template";
  }
  return "token";
}

std::vector<Token> tokenize(std::string_view source) { return Lexer(source).run(); }

}  // namespace qvl::jinja
