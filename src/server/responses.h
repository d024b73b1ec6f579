// Response bodies in OpenAI's formats: chat.completion, chat.completion.chunk (SSE), text_completion,
// usage with prompt_tokens_details.cached_tokens, and llama.cpp-style timings.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "qvl/engine.hpp"
#include "server/tool_calls.h"

namespace qvl::server {

using Json = nlohmann::json;

// What every object of one response shares.
struct ResponseIdentity {
  std::string id;       // "chatcmpl-..." or "cmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
};

ResponseIdentity new_identity(const char* prefix, const std::string& model);

// The engine's finish reason in OpenAI's words: eos and stop strings are "stop", "length" stays.
std::string openai_finish_reason(const std::string& engine_reason);

Json usage_json(const RequestStats& stats);
Json timings_json(const RequestStats& stats);

// One entry of choices[].logprobs.content.
struct TokenLogprobs {
  std::string token;
  float logprob = 0;
  std::vector<std::pair<std::string, float>> top;
};
Json logprobs_json(const std::vector<TokenLogprobs>& tokens);

Json chat_completion_json(const ResponseIdentity& who, const std::string& content, const std::vector<ToolCall>& calls,
                          const std::string& finish_reason, const RequestStats& stats, const Json& logprobs);
// A chunk with one choice: `delta`, and finish_reason (null while streaming).
Json chat_chunk_json(const ResponseIdentity& who, const Json& delta, const Json& finish_reason,
                     const Json& logprobs = nullptr);
Json tool_calls_delta(const std::vector<ToolCall>& calls);
// The last chunk of an include_usage stream: no choices, the usage.
Json usage_chunk_json(const ResponseIdentity& who, const char* object, const RequestStats& stats);

Json text_completion_json(const ResponseIdentity& who, const std::string& text, const std::string& finish_reason,
                          const RequestStats& stats, const Json& logprobs);
Json text_chunk_json(const ResponseIdentity& who, const std::string& text, const Json& finish_reason);

// One server-sent event carrying `json`, and the stream's end marker.
std::string sse_event(const Json& json);
inline constexpr const char* kSseDone = "data: [DONE]\n\n";

}  // namespace qvl::server
