#include "server/responses.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>

namespace qvl::server {

ResponseIdentity new_identity(const char* prefix, const std::string& model) {
  // Unique within the process and unlikely to repeat across restarts.
  static std::atomic<uint64_t> counter{std::random_device{}()};
  char id[48];
  std::snprintf(id, sizeof id, "%s-%016llx", prefix, static_cast<unsigned long long>(counter.fetch_add(1) * 0x9E3779B97F4A7C15ull));
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return {id, std::chrono::duration_cast<std::chrono::seconds>(now).count(), model};
}

std::string openai_finish_reason(const std::string& engine_reason) {
  if (engine_reason == "eos" || engine_reason == "stop") return "stop";
  return engine_reason;  // "length", and "cancelled"/"error" which the HTTP layer reports itself
}

Json usage_json(const RequestStats& s) {
  return {{"prompt_tokens", s.prompt_tokens},
          {"completion_tokens", s.generated_tokens},
          {"total_tokens", s.prompt_tokens + s.generated_tokens},
          {"prompt_tokens_details", {{"cached_tokens", s.cached_tokens}}}};
}

Json timings_json(const RequestStats& s) {
  // As llama-server: prompt_* covers the evaluated (not reused) prompt tokens up to the first
  // token, predicted_* the rest of the generation.
  const int64_t prompt_n = s.prompt_tokens - s.cached_tokens;
  const double prompt_ms = std::max(0.0, s.ttft_seconds - s.queue_seconds) * 1e3;
  const double predicted_ms = std::max(0.0, s.total_seconds - s.ttft_seconds) * 1e3;
  const int64_t predicted_n = s.generated_tokens;
  auto rate = [](double n, double ms) { return ms > 0 ? n * 1e3 / ms : 0.0; };
  return {{"cache_n", s.cached_tokens},
          {"prompt_n", prompt_n},
          {"prompt_ms", prompt_ms},
          {"prompt_per_token_ms", prompt_n > 0 ? prompt_ms / double(prompt_n) : 0.0},
          {"prompt_per_second", rate(double(prompt_n), prompt_ms)},
          {"predicted_n", predicted_n},
          {"predicted_ms", predicted_ms},
          {"predicted_per_token_ms", predicted_n > 0 ? predicted_ms / double(predicted_n) : 0.0},
          {"predicted_per_second", rate(double(predicted_n > 1 ? predicted_n - 1 : 0), predicted_ms)},
          {"queue_ms", s.queue_seconds * 1e3},
          {"images", s.images},
          {"cached_images", s.cached_images},
          {"image_encode_ms", s.vision_seconds * 1e3}};
}

namespace {

Json bytes_of(const std::string& text) {
  Json bytes = Json::array();
  for (unsigned char c : text) bytes.push_back(int(c));
  return bytes;
}

}  // namespace

Json logprobs_json(const std::vector<TokenLogprobs>& tokens) {
  Json content = Json::array();
  for (const auto& t : tokens) {
    Json top = Json::array();
    for (const auto& [token, logprob] : t.top)
      top.push_back({{"token", token}, {"logprob", logprob}, {"bytes", bytes_of(token)}});
    content.push_back({{"token", t.token}, {"logprob", t.logprob}, {"bytes", bytes_of(t.token)}, {"top_logprobs", top}});
  }
  return {{"content", content}};
}

Json tool_calls_delta(const std::vector<ToolCall>& calls) {
  Json list = Json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    char id[48];
    std::snprintf(id, sizeof id, "call_%zu_%08x", i, static_cast<unsigned>(std::random_device{}()));
    list.push_back({{"index", i},
                    {"id", id},
                    {"type", "function"},
                    {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}});
  }
  return list;
}

Json chat_completion_json(const ResponseIdentity& who, const std::string& content, const std::vector<ToolCall>& calls,
                          const std::string& finish_reason, const RequestStats& stats, const Json& logprobs) {
  Json message = {{"role", "assistant"}, {"content", content}};
  if (!calls.empty()) {
    message["tool_calls"] = tool_calls_delta(calls);
    if (content.empty()) message["content"] = nullptr;
  }
  return {{"id", who.id},
          {"object", "chat.completion"},
          {"created", who.created},
          {"model", who.model},
          {"choices", Json::array({{{"index", 0},
                                    {"message", message},
                                    {"finish_reason", calls.empty() ? finish_reason : "tool_calls"},
                                    {"logprobs", logprobs}}})},
          {"usage", usage_json(stats)},
          {"timings", timings_json(stats)}};
}

Json chat_chunk_json(const ResponseIdentity& who, const Json& delta, const Json& finish_reason, const Json& logprobs) {
  return {{"id", who.id},
          {"object", "chat.completion.chunk"},
          {"created", who.created},
          {"model", who.model},
          {"choices",
           Json::array({{{"index", 0}, {"delta", delta}, {"finish_reason", finish_reason}, {"logprobs", logprobs}}})}};
}

Json usage_chunk_json(const ResponseIdentity& who, const char* object, const RequestStats& stats) {
  return {{"id", who.id},           {"object", object},           {"created", who.created}, {"model", who.model},
          {"choices", Json::array()}, {"usage", usage_json(stats)}, {"timings", timings_json(stats)}};
}

Json text_completion_json(const ResponseIdentity& who, const std::string& text, const std::string& finish_reason,
                          const RequestStats& stats, const Json& logprobs) {
  return {{"id", who.id},
          {"object", "text_completion"},
          {"created", who.created},
          {"model", who.model},
          {"choices",
           Json::array({{{"index", 0}, {"text", text}, {"finish_reason", finish_reason}, {"logprobs", logprobs}}})},
          {"usage", usage_json(stats)},
          {"timings", timings_json(stats)}};
}

Json text_chunk_json(const ResponseIdentity& who, const std::string& text, const Json& finish_reason) {
  return {{"id", who.id},
          {"object", "text_completion"},
          {"created", who.created},
          {"model", who.model},
          {"choices",
           Json::array({{{"index", 0}, {"text", text}, {"finish_reason", finish_reason}, {"logprobs", nullptr}}})}};
}

std::string sse_event(const Json& json) {
  return "data: " + json.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n";
}

}  // namespace qvl::server
