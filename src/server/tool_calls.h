// Tool calls in a Qwen3(-VL) answer: the chat template asks the model to write each call as
// <tool_call>{"name": ..., "arguments": {...}}</tool_call> (Hermes style); the API returns them as
// OpenAI `tool_calls` with the surrounding text as `content`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/stop_strings.h"

namespace qvl::server {

struct ToolCall {
  std::string name;
  std::string arguments;  // a JSON object as text, as OpenAI sends it
};

struct ExtractedAnswer {
  std::string content;           // the text outside the calls (trimmed)
  std::vector<ToolCall> calls;
};

// Every well-formed <tool_call> block becomes a call; a block whose body is not a JSON object
// with a string "name" stays in the content untouched, as does an unterminated one.
ExtractedAnswer extract_tool_calls(std::string_view text);

// For streaming: passes text through until a "<tool_call>" begins, holding back any tail that
// could be its start; from there on everything is kept for extract_tool_calls at the end.
// (The stop-string filter does exactly that with "<tool_call>" as its one stop string.)
class ToolCallStreamFilter {
 public:
  std::string push(std::string_view text);  // the text safe to stream now
  // At the end: the held-back text (not a call after all) and the full answer to extract from.
  std::string flush() { return until_call_.finish(); }
  bool saw_tool_call() const { return until_call_.stopped(); }
  const std::string& answer() const { return answer_; }

 private:
  std::string answer_;  // everything pushed
  StopStringFilter until_call_{{"<tool_call>"}};
};

}  // namespace qvl::server
