// OpenAI request bodies (chat completions, completions) → what the server needs to run them.
// Pure parsing and validation: no model, no I/O, so the fuzzer and unit tests drive it directly.
// Unknown fields are ignored; a known field of the wrong type or out of range is an ApiError 400
// naming the field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json_util.h"

namespace qvl::server {

struct RequestLimits {
  size_t max_messages = 4096;
  size_t max_stop_strings = 16;
  size_t max_stop_bytes = 256;  // each
  int max_top_logprobs = 20;
};

// Sampling and output options shared by both endpoints; unset ones keep the model's defaults.
struct SamplingRequest {
  std::optional<int64_t> max_tokens;
  std::optional<double> temperature, top_p, min_p, presence_penalty, frequency_penalty, repetition_penalty;
  std::optional<int64_t> top_k;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;      // stream_options.include_usage
  int top_logprobs = -1;           // -1: no logprobs; else logprobs with this many alternatives
};

struct ChatRequest {
  std::string model;
  OrderedJson messages;            // validated; image parts still hold their URLs
  std::vector<std::string> image_urls;  // every image part's URL, in order of appearance
  // every video_url / input_video part's URL (input_video as a data URL), in order; the parts
  // themselves are rewritten to {"type": "video", "video": URL} for the processor
  std::vector<std::string> video_urls;
  OrderedJson template_variables = OrderedJson::object();  // chat_template_kwargs + tools
  bool tools_enabled = false;      // tools given and tool_choice is not "none"
  std::optional<int64_t> min_pixels, max_pixels;
  SamplingRequest sampling;
};

struct CompletionRequest {
  std::string model;
  std::string prompt;
  bool echo = false;
  SamplingRequest sampling;
};

// Parses the body of POST /v1/chat/completions (also the body /apply-template takes).
ChatRequest parse_chat_request(std::string_view body, const RequestLimits& limits = {});
// Parses the body of POST /v1/completions: `prompt` a string (or an array of one string).
CompletionRequest parse_completion_request(std::string_view body, const RequestLimits& limits = {});

// The request body as JSON: malformed text or nesting beyond the library's limit is a 400.
OrderedJson parse_body(std::string_view body);

}  // namespace qvl::server
