#include "tokenizer/tokenizer_json.h"

#include <bit>
#include <cctype>
#include <cstring>

#include "core/check.h"
#include "core/utf8.h"

namespace qvl {
namespace {

// Deeper documents take the full parser, which applies the real nesting limit.
constexpr int kMaxDepth = 64;

// A strict reader for the vocab and merges, and a lenient skipper for every other value: the
// skipped values are copied into a reduced document that nlohmann::json then checks.
class Reader {
 public:
  Reader(std::string_view text, BpeSource& source) : text_(text), source_(source) {}

  // The whole document; `reduced` receives it without model.vocab and model.merges.
  bool read_document(std::string& reduced) {
    if (!consume('{')) return false;
    reduced = "{";
    bool saw_model = false;
    do {
      std::string_view raw_key, key;
      if (!read_key(raw_key, key)) return false;
      if (reduced.size() > 1) reduced += ',';
      reduced.append(raw_key).append(":");
      if (key == "model") {
        if (saw_model || !read_model(reduced)) return false;
        saw_model = true;
      } else if (!copy_value(1, reduced)) {
        return false;
      }
    } while (consume(','));
    if (!consume('}')) return false;
    skip_white_space();
    reduced += '}';
    return saw_model && pos_ == text_.size();
  }

 private:
  void skip_white_space() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c > ' ' || (c != ' ' && c != '\n' && c != '\r' && c != '\t')) return;
      ++pos_;
    }
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool consume(char c) {
    skip_white_space();
    if (peek() != c) return false;
    ++pos_;
    return true;
  }

  // A member's key and its colon: `raw` is the key as written (quotes included).
  bool read_key(std::string_view& raw, std::string_view& key) {
    skip_white_space();
    const size_t start = pos_;
    if (!read_string(key)) return false;
    raw = text_.substr(start, pos_ - start);
    return consume(':');
  }

  // A string as nlohmann::json reads it: no raw control characters, valid UTF-8, escapes
  // (surrogate pairs combined, lone surrogates refused). Unescaped strings are views of the text.
  bool read_string(std::string_view& value) {
    if (peek() != '"') return false;
    const size_t start = ++pos_;
    uint64_t high_bits = 0;
    // Eight bytes at a time up to the first quote, backslash or control character (the lowest
    // flagged byte is exact; borrows can only flag bytes above it).
    constexpr uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;
    while (pos_ + 8 <= text_.size()) {
      uint64_t word;
      std::memcpy(&word, text_.data() + pos_, 8);
      const uint64_t quotes = word ^ (kOnes * '"'), backslashes = word ^ (kOnes * '\\');
      const uint64_t special = ((quotes - kOnes) & ~quotes) | ((backslashes - kOnes) & ~backslashes) |
                               ((word - kOnes * 0x20) & ~word);
      if ((special & kHighs) != 0) {
        const size_t stop = static_cast<size_t>(std::countr_zero(special & kHighs)) / 8;
        high_bits |= word & ((uint64_t(1) << (8 * stop)) - 1);  // the bytes before the stop
        pos_ += stop;
        break;
      }
      high_bits |= word;
      pos_ += 8;
    }
    while (pos_ < text_.size()) {
      const auto c = static_cast<uint8_t>(text_[pos_]);
      if (c == '"') {
        value = text_.substr(start, pos_ - start);
        ++pos_;
        return (high_bits & kHighs) == 0 || utf8::first_invalid_offset(value) == std::string_view::npos;
      }
      if (c == '\\') return read_escaped_string(start, value);
      if (c < 0x20) return false;
      high_bits |= c;
      ++pos_;
    }
    return false;
  }

  // The rest of a string from its first backslash at pos_, decoded into source_.decoded_strings.
  bool read_escaped_string(size_t start, std::string_view& value) {
    std::string& decoded = source_.decoded_strings.emplace_back(text_.substr(start, pos_ - start));
    while (true) {
      if (pos_ >= text_.size()) return false;
      const auto c = static_cast<uint8_t>(text_[pos_]);
      if (c == '"') break;
      if (c < 0x20) return false;
      if (c != '\\') {
        decoded.push_back(static_cast<char>(c));
        ++pos_;
        continue;
      }
      if (pos_ + 1 >= text_.size()) return false;
      const char escape = text_[pos_ + 1];
      pos_ += 2;
      switch (escape) {
        case '"': decoded.push_back('"'); break;
        case '\\': decoded.push_back('\\'); break;
        case '/': decoded.push_back('/'); break;
        case 'b': decoded.push_back('\b'); break;
        case 'f': decoded.push_back('\f'); break;
        case 'n': decoded.push_back('\n'); break;
        case 'r': decoded.push_back('\r'); break;
        case 't': decoded.push_back('\t'); break;
        case 'u': {
          char32_t code_point = 0;
          if (!read_hex4(code_point) || (code_point >= 0xDC00 && code_point <= 0xDFFF)) return false;
          if (code_point >= 0xD800 && code_point <= 0xDBFF) {
            char32_t low = 0;
            if (text_.substr(pos_, 2) != "\\u") return false;
            pos_ += 2;
            if (!read_hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
            code_point = 0x10000 + ((code_point - 0xD800) << 10) + (low - 0xDC00);
          }
          utf8::append_code_point(code_point, decoded);
          break;
        }
        default: return false;
      }
    }
    ++pos_;
    value = decoded;
    // Escapes decode to whole characters, so checking the result checks the raw bytes too.
    return utf8::first_invalid_offset(decoded) == std::string_view::npos;
  }

  bool read_hex4(char32_t& value) {
    if (pos_ + 4 > text_.size()) return false;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_++];
      int digit;
      if (c >= '0' && c <= '9') digit = c - '0';
      else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
      else return false;
      value = value * 16 + static_cast<char32_t>(digit);
    }
    return true;
  }

  bool read_model(std::string& reduced) {
    if (!consume('{')) return false;
    reduced += '{';
    bool saw_vocab = false, saw_merges = false, first_copied = true;
    if (!consume('}')) {
      do {
        std::string_view raw_key, key;
        if (!read_key(raw_key, key)) return false;
        if (key == "vocab") {
          if (saw_vocab || !read_vocab()) return false;
          saw_vocab = true;
        } else if (key == "merges") {
          if (saw_merges || !read_merges()) return false;
          saw_merges = true;
        } else {
          if (!first_copied) reduced += ',';
          first_copied = false;
          reduced.append(raw_key).append(":");
          if (!copy_value(2, reduced)) return false;
        }
      } while (consume(','));
      if (!consume('}')) return false;
    }
    reduced += '}';
    return saw_vocab && saw_merges;
  }

  // {"token": id, ...} with ids written as JSON integers in [0, kIdLimit).
  bool read_vocab() {
    if (!consume('{')) return false;
    source_.vocab.reserve(text_.size() / 64);  // a guess: vocab and merges share the text
    if (consume('}')) return true;
    do {
      std::string_view raw_key, token;
      if (!read_key(raw_key, token)) return false;
      skip_white_space();
      const size_t digits_start = pos_;
      int64_t id = 0;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
        id = id * 10 + (text_[pos_++] - '0');
        if (id >= BpeSource::kIdLimit) return false;
      }
      const size_t digits = pos_ - digits_start;
      if (digits == 0 || (digits > 1 && text_[digits_start] == '0')) return false;
      if (peek() == '.' || peek() == 'e' || peek() == 'E') return false;  // a float: not an id
      source_.vocab.push_back({token, static_cast<int32_t>(id)});
    } while (consume(','));
    return consume('}');
  }

  // ["a b", ...] or [["a", "b"], ...] (the two forms may mix).
  bool read_merges() {
    if (!consume('[')) return false;
    source_.merges.reserve(text_.size() / 64);
    if (consume(']')) return true;
    using Kind = BpeSource::MergeEntry::Kind;
    do {
      skip_white_space();
      BpeSource::MergeEntry merge{Kind::kLine, {}, {}};
      if (peek() == '"') {
        if (!read_string(merge.first)) return false;
      } else if (consume('[')) {
        merge.kind = Kind::kPair;
        skip_white_space();
        if (!read_string(merge.first) || !consume(',')) return false;
        skip_white_space();
        if (!read_string(merge.second) || !consume(']')) return false;
      } else {
        return false;
      }
      source_.merges.push_back(merge);
    } while (consume(','));
    return consume(']');
  }

  // Appends any value as written; it is only delimited here, nlohmann::json checks it later.
  bool copy_value(int depth, std::string& out) {
    skip_white_space();
    const size_t start = pos_;
    if (!skip_value(depth)) return false;
    out.append(text_.substr(start, pos_ - start));
    return true;
  }

  bool skip_value(int depth) {
    skip_white_space();
    const char c = peek();
    if (c == '"') return skip_string();
    if (c == '{' || c == '[') {
      if (depth >= kMaxDepth) return false;
      const char close = c == '{' ? '}' : ']';
      ++pos_;
      if (consume(close)) return true;
      do {
        if (c == '{') {
          skip_white_space();
          if (!skip_string() || !consume(':')) return false;
        }
        if (!skip_value(depth + 1)) return false;
      } while (consume(','));
      return consume(close);
    }
    // A number or literal: the run of characters that can make one up.
    const size_t start = pos_;
    while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '+' ||
                                   text_[pos_] == '-' || text_[pos_] == '.'))
      ++pos_;
    return pos_ > start;
  }

  bool skip_string() {
    if (peek() != '"') return false;
    for (++pos_; pos_ < text_.size(); ++pos_) {
      if (text_[pos_] == '\\') ++pos_;
      else if (text_[pos_] == '"') {
        ++pos_;
        return true;
      }
    }
    return false;
  }

  std::string_view text_;
  size_t pos_ = 0;
  BpeSource& source_;
};

}  // namespace

bool read_tokenizer_json_fast(std::string_view text, const std::string& what, TokenizerJsonParts& parts) {
  std::string reduced;
  if (!Reader(text, parts.source).read_document(reduced)) return false;
  try {
    parts.root = parse_json(reduced, what);
  } catch (const Error&) {
    return false;  // e.g. a number nlohmann cannot hold: the full parse reports it
  }
  return true;
}

}  // namespace qvl
