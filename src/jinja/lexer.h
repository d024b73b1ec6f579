// Lexer of the Jinja2 subset: template source -> tokens.
//
// Reproduces jinja2's lexer as transformers configures it (trim_blocks=True, lstrip_blocks=True,
// keep_trailing_newline=False): newlines are normalized to "\n", one trailing newline is
// dropped, `-` on a tag strips all whitespace on that side, `+` disables lstrip/trim for that
// side, a block or comment tag alone on its line loses its indentation, and the first newline
// after a block or comment tag is removed. `{% raw %}` sections come out as plain data.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qvl::jinja {

enum class TokenType {
  kData,           // literal template text, already whitespace-controlled
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kName,
  kString,  // text holds the unescaped value
  kInteger,
  kFloat,
  kOperator,
  kEnd,
};

struct Token {
  TokenType type = TokenType::kEnd;
  std::string text;
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
  int column = 1;
};

// Fails with qvl::Error(kInvalidFile) naming line and column on malformed input.
std::vector<Token> tokenize(std::string_view source);

// Throws the syntax error that both the lexer and the parser report.
[[noreturn]] void syntax_error(int line, int column, const std::string& message);

const char* token_type_name(TokenType type);

}  // namespace qvl::jinja
