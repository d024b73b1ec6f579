#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretokenizer.h"

#include <pcre2.h>

#include <cctype>

#include "core/check.h"
#include "core/json_util.h"

namespace qvl {
namespace {

// Unicode White_Space, written so it can sit inside a character class.
constexpr std::string_view kWhiteSpaceClassBody =
    R"(\t\n\x0B\f\r\x20\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

// The split ByteLevel(use_regex=true) applies: the GPT-2 pattern.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string pcre2_message(int error_code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(error_code, buffer, sizeof buffer);
  return reinterpret_cast<const char*>(buffer);
}

// A literal Split pattern ({"String": ...}) as a regex: escape ASCII punctuation.
std::string escape_literal(const std::string& text) {
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80 && !std::isalnum(u)) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string with_explicit_white_space(const std::string& pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    const char next = i + 1 < pattern.size() ? pattern[i + 1] : '\0';
    if (c == '\\' && next != '\0') {
      if (next == 'Q') return pattern;  // quoted text: too rare to be worth parsing
      if (next == 's') {
        if (in_class) out.append(kWhiteSpaceClassBody);
        else out.append("[").append(kWhiteSpaceClassBody).append("]");
      } else if (next == 'S' && !in_class) {
        out.append("[^").append(kWhiteSpaceClassBody).append("]");
      } else {
        out.push_back(c);
        out.push_back(next);
      }
      ++i;
      continue;
    }
    out.push_back(c);
    if (!in_class && c == '[') {
      in_class = true;
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out.push_back(pattern[++i]);
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out.push_back(pattern[++i]);
    } else if (in_class && c == '[' && next == ':') {
      const size_t close = pattern.find(":]", i + 2);  // POSIX class such as [:alpha:]
      if (close != std::string::npos) {
        out.append(pattern, i + 1, close + 2 - (i + 1));
        i = close + 1;
      }
    } else if (in_class && c == ']') {
      in_class = false;
    }
  }
  return out;
}

struct RegexSplitter::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }
};

RegexSplitter::RegexSplitter(const std::string& pattern, const std::string& what)
    : compiled_(std::make_unique<Compiled>()) {
  const std::string rewritten = with_explicit_white_space(pattern);
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  compiled_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()), rewritten.size(),
                                  PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (!compiled_->code)
    fail(ErrorKind::kInvalidFile, what, ": pre-tokenizer regex does not compile (", pcre2_message(error_code),
         " at offset ", error_offset, "): ", pattern);
  // JIT is only a speed-up: without it pcre2_match interprets the same pattern.
  pcre2_jit_compile(compiled_->code, PCRE2_JIT_COMPLETE);
}

RegexSplitter::~RegexSplitter() = default;
RegexSplitter::RegexSplitter(RegexSplitter&&) noexcept = default;
RegexSplitter& RegexSplitter::operator=(RegexSplitter&&) noexcept = default;

void RegexSplitter::split(std::string_view text, std::vector<std::string_view>& pieces) const {
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match_data(
      pcre2_match_data_create_from_pattern(compiled_->code, nullptr), &pcre2_match_data_free);
  if (!match_data) fail(ErrorKind::kInternal, "out of memory creating regex match data");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t search_from = 0, piece_start = 0;
  while (search_from <= text.size()) {
    // The text was validated once up front, so skip PCRE2's per-call UTF check.
    int rc = pcre2_match(compiled_->code, subject, text.size(), search_from, PCRE2_NO_UTF_CHECK, match_data.get(),
                         nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)  // the interpreter uses the heap instead
      rc = pcre2_match(compiled_->code, subject, text.size(), search_from, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                       match_data.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) fail(ErrorKind::kLimitExceeded, "pre-tokenizer regex failed: ", pcre2_message(rc));
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match_data.get());
    const size_t match_start = ovector[0], match_end = ovector[1];
    if (match_end == match_start) {
      // Empty matches make no piece; step over one whole character and search again.
      if (match_start >= text.size()) break;
      search_from = match_start + 1;
      while (search_from < text.size() && (static_cast<uint8_t>(text[search_from]) & 0xC0) == 0x80) ++search_from;
      continue;
    }
    if (match_start > piece_start) pieces.push_back(text.substr(piece_start, match_start - piece_start));
    pieces.push_back(text.substr(match_start, match_end - match_start));
    piece_start = search_from = match_end;
  }
  if (piece_start < text.size()) pieces.push_back(text.substr(piece_start));
}

namespace {

void read_step(const Json& config, const std::string& what, std::vector<RegexSplitter>& steps, bool& saw_byte_level) {
  if (!config.is_object()) fail(ErrorKind::kInvalidFile, what, ": pre_tokenizer entry must be an object");
  const std::string type = json_string_or(config, "type", "", what);
  if (saw_byte_level)
    fail(ErrorKind::kUnsupported, what, ": pre-tokenizer '", type, "' after ByteLevel is not supported");
  if (type == "Sequence") {
    const Json& list = json_require(config, "pretokenizers", what);
    if (!list.is_array()) fail(ErrorKind::kInvalidFile, what, ": 'pretokenizers' must be an array");
    for (const Json& item : list) read_step(item, what, steps, saw_byte_level);
  } else if (type == "Split") {
    const Json& pattern = json_require(config, "pattern", what);
    std::string regex;
    if (pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string())
      regex = pattern["Regex"].get<std::string>();
    else if (pattern.is_object() && pattern.contains("String") && pattern["String"].is_string())
      regex = escape_literal(pattern["String"].get<std::string>());
    else
      fail(ErrorKind::kInvalidFile, what, ": Split 'pattern' must be {\"Regex\": ...} or {\"String\": ...}");
    const std::string behavior = json_string_or(config, "behavior", "", what);
    if (behavior != "Isolated")
      fail(ErrorKind::kUnsupported, what, ": Split behavior '", behavior, "' is not supported (only Isolated)");
    if (json_bool_or(config, "invert", false, what))
      fail(ErrorKind::kUnsupported, what, ": inverted Split is not supported");
    steps.emplace_back(regex, what);
  } else if (type == "ByteLevel") {
    if (json_bool_or(config, "add_prefix_space", false, what))
      fail(ErrorKind::kUnsupported, what, ": ByteLevel add_prefix_space=true is not supported");
    if (json_bool_or(config, "use_regex", true, what)) steps.emplace_back(kGpt2Pattern, what);
    saw_byte_level = true;
  } else {
    fail(ErrorKind::kUnsupported, what, ": pre-tokenizer type '", type, "' is not supported");
  }
}

}  // namespace

PreTokenizer PreTokenizer::from_json(const Json& config, const std::string& what) {
  PreTokenizer pre_tokenizer;
  bool saw_byte_level = false;
  if (!config.is_null()) read_step(config, what, pre_tokenizer.steps_, saw_byte_level);
  if (!saw_byte_level)
    fail(ErrorKind::kUnsupported, what, ": pre_tokenizer has no ByteLevel step (only byte-level BPE is supported)");
  return pre_tokenizer;
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& words) const {
  if (text.empty()) return;
  if (steps_.empty()) {
    words.push_back(text);
    return;
  }
  // Each step re-splits every piece the previous step produced.
  std::vector<std::string_view> current{text}, next;
  for (size_t s = 0; s + 1 < steps_.size(); ++s) {
    next.clear();
    for (std::string_view piece : current) steps_[s].split(piece, next);
    current.swap(next);
  }
  for (std::string_view piece : current) steps_.back().split(piece, words);
}

}  // namespace qvl
