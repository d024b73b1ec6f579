#include "server/tool_calls.h"

#include <nlohmann/json.hpp>

namespace qvl::server {

namespace {

constexpr std::string_view kOpen = "<tool_call>";
constexpr std::string_view kClose = "</tool_call>";

std::string_view trim(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

bool parse_call(std::string_view body, ToolCall& call) {
  const auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return false;
  const auto name = json.find("name");
  if (name == json.end() || !name->is_string() || name->get<std::string>().empty()) return false;
  call.name = name->get<std::string>();
  const auto arguments = json.find("arguments");
  if (arguments == json.end() || arguments->is_null()) call.arguments = "{}";
  else if (arguments->is_string()) call.arguments = arguments->get<std::string>();
  else call.arguments = arguments->dump();
  return true;
}

}  // namespace

ExtractedAnswer extract_tool_calls(std::string_view text) {
  ExtractedAnswer out;
  std::string content;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t open = text.find(kOpen, pos);
    if (open == std::string_view::npos) break;
    const size_t body = open + kOpen.size();
    const size_t close = text.find(kClose, body);
    if (close == std::string_view::npos) break;
    ToolCall call;
    content.append(text.substr(pos, open - pos));
    if (parse_call(trim(text.substr(body, close - body)), call)) out.calls.push_back(std::move(call));
    else content.append(text.substr(open, close + kClose.size() - open));
    pos = close + kClose.size();
  }
  content.append(text.substr(std::min(pos, text.size())));
  out.content = std::string(trim(content));
  return out;
}

std::string ToolCallStreamFilter::push(std::string_view text) {
  answer_.append(text);
  return until_call_.push(std::string(text));
}

}  // namespace qvl::server
