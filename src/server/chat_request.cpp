#include "server/chat_request.h"

#include <cmath>
#include <limits>

#include "server/api_error.h"

namespace qvl::server {

namespace {

const char* json_type_name(const OrderedJson& v) {
  switch (v.type()) {
    case OrderedJson::value_t::null: return "null";
    case OrderedJson::value_t::boolean: return "a boolean";
    case OrderedJson::value_t::string: return "a string";
    case OrderedJson::value_t::array: return "an array";
    case OrderedJson::value_t::object: return "an object";
    default: return "a number";
  }
}

[[noreturn]] void wrong_type(const std::string& param, const char* expected, const OrderedJson& got) {
  bad_request(param, "'" + param + "' must be " + expected + ", not " + json_type_name(got));
}

// The field when present and not null.
const OrderedJson* field(const OrderedJson& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::optional<double> number_field(const OrderedJson& obj, const char* key, double min, double max,
                                   const char* range) {
  const OrderedJson* v = field(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) wrong_type(key, "a number", *v);
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < min || x > max)
    bad_request(key, std::string("'") + key + "' must be " + range + " (got " + v->dump() + ")");
  return x;
}

std::optional<int64_t> integer_field(const OrderedJson& obj, const char* key, const std::string& param, int64_t min,
                                     int64_t max, const char* range) {
  const OrderedJson* v = field(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) wrong_type(param, "an integer", *v);
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(max))
    bad_request(param, "'" + param + "' must be " + range + " (got " + v->dump() + ")");
  const int64_t x = v->get<int64_t>();
  if (x < min || x > max) bad_request(param, "'" + param + "' must be " + range + " (got " + v->dump() + ")");
  return x;
}

bool bool_field(const OrderedJson& obj, const char* key, const std::string& param) {
  const OrderedJson* v = field(obj, key);
  if (!v) return false;
  if (!v->is_boolean()) wrong_type(param, "a boolean", *v);
  return v->get<bool>();
}

std::string string_field(const OrderedJson& obj, const char* key) {
  const OrderedJson* v = field(obj, key);
  if (!v) return {};
  if (!v->is_string()) wrong_type(key, "a string", *v);
  return v->get<std::string>();
}

constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();

SamplingRequest parse_sampling(const OrderedJson& body, const RequestLimits& limits) {
  SamplingRequest s;
  s.max_tokens = integer_field(body, "max_tokens", "max_tokens", 1, kMaxInt, "a positive integer");
  if (auto m = integer_field(body, "max_completion_tokens", "max_completion_tokens", 1, kMaxInt, "a positive integer"))
    s.max_tokens = m;
  s.temperature = number_field(body, "temperature", 0, 1e6, "a number >= 0");
  s.top_p = number_field(body, "top_p", 0, 1, "a number from 0 to 1");
  if (s.top_p && *s.top_p == 0) s.top_p = std::numeric_limits<float>::min();  // "only the top token"
  s.min_p = number_field(body, "min_p", 0, 1, "a number from 0 to 1");
  s.presence_penalty = number_field(body, "presence_penalty", -2, 2, "a number from -2 to 2");
  s.frequency_penalty = number_field(body, "frequency_penalty", -2, 2, "a number from -2 to 2");
  s.repetition_penalty = number_field(body, "repetition_penalty", 1e-6, 1e6, "a number > 0");
  // llama.cpp and vLLM take top_k <= 0 (vLLM: -1) as "off".
  if (auto k = integer_field(body, "top_k", "top_k", -1, kMaxInt, "an integer >= -1 (0 or -1: off)"))
    s.top_k = std::max<int64_t>(0, *k);
  if (const OrderedJson* seed = field(body, "seed")) {
    if (!seed->is_number_integer()) wrong_type("seed", "an integer", *seed);
    // OpenAI clients send signed 64-bit seeds; a negative one is taken as its two's complement.
    s.seed = seed->is_number_unsigned() ? seed->get<uint64_t>() : static_cast<uint64_t>(seed->get<int64_t>());
  }
  if (const OrderedJson* stop = field(body, "stop")) {
    if (stop->is_string()) {
      s.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      if (stop->size() > limits.max_stop_strings)
        bad_request("stop", "'stop' holds " + std::to_string(stop->size()) + " strings; at most " +
                                std::to_string(limits.max_stop_strings) + " are allowed");
      for (size_t i = 0; i < stop->size(); ++i) {
        if (!(*stop)[i].is_string()) wrong_type("stop[" + std::to_string(i) + "]", "a string", (*stop)[i]);
        s.stop.push_back((*stop)[i].get<std::string>());
      }
    } else {
      wrong_type("stop", "a string or an array of strings", *stop);
    }
    for (const auto& text : s.stop)
      if (text.empty() || text.size() > limits.max_stop_bytes)
        bad_request("stop", "each stop string must hold 1 to " + std::to_string(limits.max_stop_bytes) + " bytes");
  }
  if (auto n = integer_field(body, "n", "n", kMaxInt * -1, kMaxInt, "1"); n && *n != 1)
    bad_request("n", "'n' must be 1: qvl returns one choice per request (got " + std::to_string(*n) + ")");
  s.stream = bool_field(body, "stream", "stream");
  if (const OrderedJson* options = field(body, "stream_options")) {
    if (!options->is_object()) wrong_type("stream_options", "an object", *options);
    s.include_usage = bool_field(*options, "include_usage", "stream_options.include_usage");
  }
  if (const OrderedJson* response_format = field(body, "response_format")) {
    if (!response_format->is_object()) wrong_type("response_format", "an object", *response_format);
    const std::string type = string_field(*response_format, "type");
    if (type == "json_schema" || type == "json_object")
      throw ApiError(400, "response_format '" + type + "' is not supported yet (constrained decoding is planned)",
                     "response_format", "not_supported");
    if (!type.empty() && type != "text")
      bad_request("response_format.type", "response_format.type must be 'text', 'json_object' or 'json_schema'");
  }
  return s;
}

// The chat endpoint's `logprobs` (a boolean) and `top_logprobs` (0..20).
void parse_chat_logprobs(const OrderedJson& body, const RequestLimits& limits, SamplingRequest& s) {
  const bool logprobs = bool_field(body, "logprobs", "logprobs");
  const auto top = integer_field(body, "top_logprobs", "top_logprobs", 0, limits.max_top_logprobs,
                                 "an integer from 0 to 20");
  if (top && !logprobs) bad_request("top_logprobs", "'top_logprobs' needs 'logprobs': true");
  if (logprobs) s.top_logprobs = static_cast<int>(top.value_or(0));
}

std::optional<int64_t> pixels_field(const OrderedJson& obj, const char* key, const std::string& param) {
  return integer_field(obj, key, param, 1, kMaxInt, "a positive pixel count");
}

bool is_known_role(const std::string& role) {
  return role == "system" || role == "user" || role == "assistant" || role == "tool" || role == "developer";
}

// Checks one message and collects its image URLs. Text and image parts are what the model takes;
// any other part type is refused rather than silently dropped.
void check_message(OrderedJson& message, size_t index, std::vector<std::string>& image_urls,
                   std::vector<std::string>& video_urls) {
  const std::string where = "messages[" + std::to_string(index) + "]";
  if (!message.is_object()) wrong_type(where, "an object", message);
  const OrderedJson* role = field(message, "role");
  if (!role) bad_request(where + ".role", where + " has no 'role'");
  if (!role->is_string()) wrong_type(where + ".role", "a string", *role);
  const std::string role_name = role->get<std::string>();
  if (!is_known_role(role_name))
    bad_request(where + ".role", where + " has the unknown role '" + role_name +
                                     "' (known: system, developer, user, assistant, tool)");
  if (role_name == "developer") message["role"] = "system";  // OpenAI's newer name for it
  const OrderedJson* content = field(message, "content");
  if (!content) {
    if (role_name != "assistant" || !field(message, "tool_calls"))
      bad_request(where + ".content", where + " has no 'content'");
    // An assistant turn that only calls tools (OpenAI sends content null): the chat template
    // iterates over the content, so it gets empty text.
    message["content"] = "";
    return;
  }
  if (content->is_string()) return;
  if (!content->is_array()) wrong_type(where + ".content", "a string or an array of content parts", *content);
  for (size_t k = 0; k < content->size(); ++k) {
    const std::string part_where = where + ".content[" + std::to_string(k) + "]";
    OrderedJson& part = message["content"][k];
    if (!part.is_object()) wrong_type(part_where, "an object", part);
    const OrderedJson* type = field(part, "type");
    if (!type || !type->is_string()) bad_request(part_where + ".type", part_where + " needs a string 'type'");
    const std::string t = type->get<std::string>();
    if (t == "text") {
      const OrderedJson* text = field(part, "text");
      if (!text || !text->is_string()) bad_request(part_where + ".text", part_where + " needs a string 'text'");
    } else if (t == "image_url") {
      const OrderedJson* url = field(part, "image_url");
      if (url && url->is_object()) url = field(*url, "url");
      if (!url || !url->is_string())
        bad_request(part_where + ".image_url", part_where + " needs 'image_url': {\"url\": \"...\"} with a string URL");
      image_urls.push_back(url->get<std::string>());
    } else if (t == "video_url") {
      // Rendered as the template's video item; the processor decodes it (process_chat checks the URL).
      const OrderedJson* url = field(part, "video_url");
      if (url && url->is_object()) url = field(*url, "url");
      if (!url || !url->is_string())
        bad_request(part_where + ".video_url", part_where + " needs 'video_url': {\"url\": \"...\"} with a string URL");
      video_urls.push_back(url->get<std::string>());
      part = OrderedJson{{"type", "video"}, {"video", video_urls.back()}};
    } else if (t == "input_video") {
      // llama.cpp's form: {"input_video": {"data": BASE64, "format": "mp4"}}.
      const OrderedJson* v = field(part, "input_video");
      const OrderedJson* data = v && v->is_object() ? field(*v, "data") : nullptr;
      const OrderedJson* format = v && v->is_object() ? field(*v, "format") : nullptr;
      if (!data || !data->is_string())
        bad_request(part_where + ".input_video", part_where + " needs 'input_video': {\"data\": BASE64, \"format\": ...}");
      const std::string fmt = format && format->is_string() ? format->get<std::string>() : "mp4";
      video_urls.push_back("data:video/" + fmt + ";base64," + data->get<std::string>());
      part = OrderedJson{{"type", "video"}, {"video", video_urls.back()}};
    } else {
      bad_request(part_where + ".type", part_where + " has the type '" + t +
                                            "', which qvl does not take (known: text, image_url, video_url, input_video)");
    }
  }
}

}  // namespace

OrderedJson parse_body(std::string_view body) {
  OrderedJson json;
  try {
    json = parse_json_ordered(std::string(body), "the request body");
  } catch (const Error& e) {
    bad_request("", e.what());
  }
  if (!json.is_object()) bad_request("", std::string("the request body must be a JSON object, not ") + json_type_name(json));
  return json;
}

ChatRequest parse_chat_request(std::string_view text, const RequestLimits& limits) {
  OrderedJson body = parse_body(text);
  ChatRequest r;
  r.model = string_field(body, "model");
  const OrderedJson* messages = field(body, "messages");
  if (!messages) bad_request("messages", "'messages' is required");
  if (!messages->is_array()) wrong_type("messages", "an array", *messages);
  if (messages->empty()) bad_request("messages", "'messages' must hold at least one message");
  if (messages->size() > limits.max_messages)
    bad_request("messages", "'messages' holds " + std::to_string(messages->size()) + " messages; at most " +
                                std::to_string(limits.max_messages) + " are allowed");
  r.messages = std::move(body["messages"]);
  for (size_t i = 0; i < r.messages.size(); ++i) check_message(r.messages[i], i, r.image_urls, r.video_urls);

  r.sampling = parse_sampling(body, limits);
  parse_chat_logprobs(body, limits, r.sampling);

  if (const OrderedJson* kwargs = field(body, "chat_template_kwargs")) {
    if (!kwargs->is_object()) wrong_type("chat_template_kwargs", "an object", *kwargs);
    r.template_variables = *kwargs;
  }
  std::string tool_choice = "auto";
  if (const OrderedJson* choice = field(body, "tool_choice")) {
    if (choice->is_string()) {
      tool_choice = choice->get<std::string>();
      if (tool_choice != "none" && tool_choice != "auto" && tool_choice != "required")
        bad_request("tool_choice", "'tool_choice' must be 'none', 'auto', 'required' or an object naming a function");
    } else if (!choice->is_object()) {
      wrong_type("tool_choice", "a string or an object", *choice);
    }
  }
  if (const OrderedJson* tools = field(body, "tools")) {
    if (!tools->is_array()) wrong_type("tools", "an array", *tools);
    for (size_t i = 0; i < tools->size(); ++i)
      if (!(*tools)[i].is_object()) wrong_type("tools[" + std::to_string(i) + "]", "an object", (*tools)[i]);
    if (!tools->empty() && tool_choice != "none") {
      r.template_variables["tools"] = *tools;
      r.tools_enabled = true;
    }
  }

  r.min_pixels = pixels_field(body, "min_pixels", "min_pixels");
  r.max_pixels = pixels_field(body, "max_pixels", "max_pixels");
  if (const OrderedJson* mm = field(body, "mm_processor_kwargs")) {
    if (!mm->is_object()) wrong_type("mm_processor_kwargs", "an object", *mm);
    if (auto v = pixels_field(*mm, "min_pixels", "mm_processor_kwargs.min_pixels")) r.min_pixels = v;
    if (auto v = pixels_field(*mm, "max_pixels", "mm_processor_kwargs.max_pixels")) r.max_pixels = v;
  }
  if (r.min_pixels && r.max_pixels && *r.min_pixels > *r.max_pixels)
    bad_request("min_pixels", "min_pixels (" + std::to_string(*r.min_pixels) + ") must not exceed max_pixels (" +
                                  std::to_string(*r.max_pixels) + ")");
  return r;
}

CompletionRequest parse_completion_request(std::string_view text, const RequestLimits& limits) {
  OrderedJson body = parse_body(text);
  CompletionRequest r;
  r.model = string_field(body, "model");
  const OrderedJson* prompt = field(body, "prompt");
  if (!prompt) bad_request("prompt", "'prompt' is required");
  if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) prompt = &(*prompt)[0];
  if (!prompt->is_string()) wrong_type("prompt", "a string (or an array of one string)", *prompt);
  r.prompt = prompt->get<std::string>();
  if (r.prompt.empty()) bad_request("prompt", "'prompt' is empty");
  r.echo = bool_field(body, "echo", "echo");
  r.sampling = parse_sampling(body, limits);
  // The legacy endpoint's `logprobs` is an integer: how many alternatives.
  if (auto n = integer_field(body, "logprobs", "logprobs", 0, limits.max_top_logprobs, "an integer from 0 to 20"))
    r.sampling.top_logprobs = static_cast<int>(*n);
  return r;
}

}  // namespace qvl::server
