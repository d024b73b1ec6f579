// qvl serve's pure pieces, without a socket or a model: request parsing and validation, data
// URLs, tool-call extraction (whole and streamed), SSE events and the metrics text.
#include <gtest/gtest.h>

#include <string>

#include "server/api_error.h"
#include "server/chat_request.h"
#include "server/media.h"
#include "server/metrics.h"
#include "server/responses.h"
#include "server/tool_calls.h"

namespace qvl::server {
namespace {

// The ApiError parsing `body` throws (status 0 when none).
ApiError chat_error(const std::string& body) {
  try {
    parse_chat_request(body);
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(0, "no error");
}

const std::string kHello = R"("messages":[{"role":"user","content":"Hello"}])";

TEST(ChatRequest, ParsesEveryParameter) {
  const ChatRequest r = parse_chat_request(R"({"model":"x",)" + kHello + R"(,
    "max_completion_tokens":7,"temperature":0.5,"top_p":0.9,"top_k":5,"min_p":0.1,"presence_penalty":0.5,
    "frequency_penalty":-0.5,"repetition_penalty":1.1,"seed":42,"stop":["a","bc"],"n":1,"stream":true,
    "stream_options":{"include_usage":true},"logprobs":true,"top_logprobs":3,
    "chat_template_kwargs":{"enable_thinking":false},"mm_processor_kwargs":{"max_pixels":50000},"min_pixels":1000,
    "tools":[{"type":"function","function":{"name":"f"}}],"unknown_field":{"ignored":true}})");
  EXPECT_EQ(r.model, "x");
  EXPECT_EQ(r.sampling.max_tokens, 7);
  EXPECT_DOUBLE_EQ(*r.sampling.temperature, 0.5);
  EXPECT_DOUBLE_EQ(*r.sampling.top_p, 0.9);
  EXPECT_EQ(r.sampling.top_k, 5);
  EXPECT_DOUBLE_EQ(*r.sampling.min_p, 0.1);
  EXPECT_DOUBLE_EQ(*r.sampling.frequency_penalty, -0.5);
  EXPECT_DOUBLE_EQ(*r.sampling.repetition_penalty, 1.1);
  EXPECT_EQ(r.sampling.seed, 42u);
  EXPECT_EQ(r.sampling.stop, (std::vector<std::string>{"a", "bc"}));
  EXPECT_TRUE(r.sampling.stream);
  EXPECT_TRUE(r.sampling.include_usage);
  EXPECT_EQ(r.sampling.top_logprobs, 3);
  EXPECT_EQ(r.min_pixels, 1000);
  EXPECT_EQ(r.max_pixels, 50000);
  EXPECT_TRUE(r.tools_enabled);
  EXPECT_EQ(r.template_variables["enable_thinking"], false);
  EXPECT_EQ(r.template_variables["tools"].size(), 1u);
}

TEST(ChatRequest, VideoPartsBecomeVideoItems) {
  const ChatRequest r = parse_chat_request(R"({"messages":[{"role":"user","content":[
    {"type":"video_url","video_url":{"url":"file:///clip.mp4"}},
    {"type":"input_video","input_video":{"data":"AAAA","format":"webm"}},{"type":"text","text":"x"}]}]})");
  EXPECT_EQ(r.video_urls, (std::vector<std::string>{"file:///clip.mp4", "data:video/webm;base64,AAAA"}));
  EXPECT_EQ(r.messages[0]["content"][0]["type"], "video");
  EXPECT_EQ(r.messages[0]["content"][0]["video"], "file:///clip.mp4");
  EXPECT_EQ(r.messages[0]["content"][1]["video"], "data:video/webm;base64,AAAA");
  EXPECT_TRUE(r.image_urls.empty());
}

TEST(ChatRequest, CollectsImageUrlsInOrderAndMapsDeveloperToSystem) {
  const ChatRequest r = parse_chat_request(R"({"messages":[{"role":"developer","content":"Be brief."},
    {"role":"user","content":[{"type":"image_url","image_url":{"url":"data:a"}},{"type":"text","text":"x"},
    {"type":"image_url","image_url":"file:///b.png"}]}]})");
  EXPECT_EQ(r.image_urls, (std::vector<std::string>{"data:a", "file:///b.png"}));
  EXPECT_EQ(r.messages[0]["role"], "system");
  EXPECT_FALSE(r.sampling.stream);
  EXPECT_EQ(r.sampling.top_logprobs, -1);
}

TEST(ChatRequest, AToolCallingAssistantTurnWithoutContentGetsEmptyText) {
  const ChatRequest r = parse_chat_request(R"({"messages":[{"role":"user","content":"Weather?"},
    {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"w","arguments":"{}"}}]},
    {"role":"assistant","tool_calls":[{"id":"c2","type":"function","function":{"name":"w","arguments":"{}"}}]},
    {"role":"tool","tool_call_id":"c1","content":"18 C"}]})");
  EXPECT_EQ(r.messages[1]["content"], "");
  EXPECT_EQ(r.messages[2]["content"], "");
  EXPECT_EQ(chat_error(R"({"messages":[{"role":"assistant","content":null}]})").param(), "messages[0].content");
}

TEST(ChatRequest, ToolChoiceNoneLeavesTheToolsOut) {
  const ChatRequest r =
      parse_chat_request("{" + kHello + R"(,"tools":[{"type":"function"}],"tool_choice":"none"})");
  EXPECT_FALSE(r.tools_enabled);
  EXPECT_FALSE(r.template_variables.contains("tools"));
}

struct BadCase {
  std::string body;
  std::string param;
  std::string fragment;
};

TEST(ChatRequest, RefusesBadRequestsNamingTheField) {
  const std::vector<BadCase> cases = {
      {"{", "", "malformed JSON"},
      {"[1]", "", "must be a JSON object, not an array"},
      {"{}", "messages", "'messages' is required"},
      {R"({"messages":"hi"})", "messages", "'messages' must be an array, not a string"},
      {R"({"messages":[]})", "messages", "at least one message"},
      {R"({"messages":[{"role":"narrator","content":"x"}]})", "messages[0].role", "unknown role 'narrator'"},
      {R"({"messages":[{"content":"x"}]})", "messages[0].role", "has no 'role'"},
      {R"({"messages":[{"role":"user","content":5}]})", "messages[0].content", "must be a string or an array"},
      {R"({"messages":[{"role":"user","content":[{"type":"input_audio"}]}]})", "messages[0].content[0].type",
       "'input_audio', which qvl does not take"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]})",
       "messages[0].content[0].image_url", "with a string URL"},
      {"{" + kHello + R"(,"temperature":"hot"})", "temperature", "'temperature' must be a number, not a string"},
      {"{" + kHello + R"(,"temperature":-1})", "temperature", "must be a number >= 0 (got -1)"},
      {"{" + kHello + R"(,"max_tokens":0})", "max_tokens", "must be a positive integer (got 0)"},
      {"{" + kHello + R"(,"max_tokens":1.5})", "max_tokens", "must be an integer, not a number"},
      {"{" + kHello + R"(,"n":2})", "n", "'n' must be 1"},
      {"{" + kHello + R"(,"stream":"yes"})", "stream", "'stream' must be a boolean"},
      {"{" + kHello + R"(,"stop":[1]})", "stop[0]", "must be a string"},
      {"{" + kHello + R"(,"seed":"1"})", "seed", "must be an integer"},
      {"{" + kHello + R"(,"top_logprobs":2})", "top_logprobs", "needs 'logprobs': true"},
      {"{" + kHello + R"(,"logprobs":true,"top_logprobs":21})", "top_logprobs", "from 0 to 20"},
      {"{" + kHello + R"(,"response_format":{"type":"json_schema","json_schema":{}}})", "response_format",
       "not supported yet"},
      {"{" + kHello + R"(,"min_pixels":5000,"max_pixels":10})", "min_pixels", "must not exceed max_pixels"},
      {"{" + kHello + R"(,"mm_processor_kwargs":{"max_pixels":-3}})", "mm_processor_kwargs.max_pixels",
       "positive pixel count"},
      {"{" + kHello + R"(,"tool_choice":"sometimes"})", "tool_choice", "'none', 'auto', 'required'"},
  };
  for (const auto& c : cases) {
    const ApiError e = chat_error(c.body);
    EXPECT_EQ(e.status(), 400) << c.body;
    EXPECT_EQ(e.param(), c.param) << c.body;
    EXPECT_NE(std::string(e.what()).find(c.fragment), std::string::npos) << c.body << " -> " << e.what();
    const auto body = error_body(e);
    EXPECT_EQ(body["error"]["type"], "invalid_request_error");
    EXPECT_TRUE(body["error"].contains("code"));
  }
}

TEST(ChatRequest, RefusesTooManyMessagesBeforeLookingAtThem) {
  std::string body = R"({"messages":[)";
  for (int i = 0; i < 10000; ++i) body += std::string(i ? "," : "") + R"({"role":"user","content":"x"})";
  body += "]}";
  const ApiError e = chat_error(body);
  EXPECT_EQ(e.status(), 400);
  EXPECT_NE(std::string(e.what()).find("holds 10000 messages; at most 4096"), std::string::npos) << e.what();
}

TEST(ChatRequest, RefusesNestingBeyondTheLimit) {
  const ApiError e = chat_error(std::string(100000, '['));
  EXPECT_EQ(e.status(), 400);
  EXPECT_NE(std::string(e.what()).find("nests deeper"), std::string::npos) << e.what();
}

TEST(CompletionRequest, TakesAStringPromptAndIntegerLogprobs) {
  const CompletionRequest r = parse_completion_request(R"({"prompt":["Once"],"max_tokens":3,"logprobs":2,"echo":true})");
  EXPECT_EQ(r.prompt, "Once");
  EXPECT_EQ(r.sampling.top_logprobs, 2);
  EXPECT_TRUE(r.echo);
  EXPECT_THROW(parse_completion_request(R"({"prompt":5})"), ApiError);
  EXPECT_THROW(parse_completion_request(R"({"prompt":""})"), ApiError);
}

TEST(DataUrl, DecodesBase64AndRefusesWhatIsNot) {
  EXPECT_EQ(decode_data_url("data:image/png;base64,aGVsbG8=", 100), "hello");
  auto status_of = [](const std::string& url, size_t limit) {
    try {
      decode_data_url(url, limit);
    } catch (const ApiError& e) {
      return std::make_pair(e.status(), std::string(e.what()));
    }
    return std::make_pair(0, std::string());
  };
  auto [status, message] = status_of("data:image/png;base64,aGV*bG8=", 100);
  EXPECT_EQ(status, 400);
  EXPECT_NE(message.find("not base64 (byte 0x2a at offset 3"), std::string::npos) << message;
  std::tie(status, message) = status_of("data:image/png,rawbytes", 100);
  EXPECT_EQ(status, 400);
  EXPECT_NE(message.find("must be base64 encoded"), std::string::npos) << message;
  std::tie(status, message) = status_of("data:image/png;base64," + std::string(4000, 'A'), 1000);
  EXPECT_EQ(status, 413);
  EXPECT_NE(message.find("above the limit of 1000 bytes"), std::string::npos) << message;
  EXPECT_NE(describe_url(std::string(500, 'x')).find("(500 characters)"), std::string::npos);
}

TEST(ToolCalls, ExtractsWellFormedCallsAndKeepsTheRest) {
  const ExtractedAnswer a = extract_tool_calls(
      "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n"
      "<tool_call>{\"name\": \"now\"}</tool_call>");
  ASSERT_EQ(a.calls.size(), 2u);
  EXPECT_EQ(a.calls[0].name, "get_weather");
  EXPECT_EQ(a.calls[0].arguments, R"({"city":"Paris"})");
  EXPECT_EQ(a.calls[1].name, "now");
  EXPECT_EQ(a.calls[1].arguments, "{}");
  EXPECT_EQ(a.content, "Let me check.");

  const ExtractedAnswer broken = extract_tool_calls("x <tool_call>{not json}</tool_call> <tool_call>{\"name\":");
  EXPECT_TRUE(broken.calls.empty());
  EXPECT_EQ(broken.content, "x <tool_call>{not json}</tool_call> <tool_call>{\"name\":");
  EXPECT_TRUE(extract_tool_calls("plain answer").calls.empty());
}

TEST(ToolCalls, StreamFilterHoldsBackAPossibleStart) {
  ToolCallStreamFilter f;
  EXPECT_EQ(f.push("Hello <to"), "Hello ");
  EXPECT_EQ(f.push("ol"), "");
  EXPECT_EQ(f.push("box"), "<toolbox");  // not a call after all
  EXPECT_EQ(f.push(" <tool_"), " ");
  EXPECT_EQ(f.push("call>{\"name\":\"f\"}</tool_call>"), "");
  EXPECT_TRUE(f.saw_tool_call());
  EXPECT_EQ(extract_tool_calls(f.answer()).calls.at(0).name, "f");

  ToolCallStreamFilter g;
  EXPECT_EQ(g.push("ends with <tool"), "ends with ");
  EXPECT_EQ(g.flush(), "<tool");
  EXPECT_FALSE(g.saw_tool_call());
}

TEST(Responses, SseEventsAndChunks) {
  const ResponseIdentity who{"chatcmpl-1", 1700000000, "m"};
  const Json chunk = chat_chunk_json(who, {{"content", "hé"}}, nullptr);
  EXPECT_EQ(sse_event(chunk),
            "data: {\"choices\":[{\"delta\":{\"content\":\"hé\"},\"finish_reason\":null,\"index\":0,\"logprobs\":null}],"
            "\"created\":1700000000,\"id\":\"chatcmpl-1\",\"model\":\"m\",\"object\":\"chat.completion.chunk\"}\n\n");
  RequestStats s;
  s.prompt_tokens = 10;
  s.cached_tokens = 4;
  s.generated_tokens = 3;
  s.queue_seconds = 0.5;
  s.ttft_seconds = 1.5;
  s.total_seconds = 2.5;
  const Json usage = usage_chunk_json(who, "chat.completion.chunk", s);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 13);
  EXPECT_EQ(usage["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
  EXPECT_EQ(usage["timings"]["prompt_n"], 6);
  EXPECT_DOUBLE_EQ(usage["timings"]["prompt_ms"].get<double>(), 1000.0);
  EXPECT_DOUBLE_EQ(usage["timings"]["predicted_ms"].get<double>(), 1000.0);
  EXPECT_EQ(openai_finish_reason("eos"), "stop");
  EXPECT_EQ(openai_finish_reason("stop"), "stop");
  EXPECT_EQ(openai_finish_reason("length"), "length");
}

TEST(Metrics, RendersPrometheusText) {
  Metrics m;
  m.count_request("/v1/chat/completions", 200);
  m.count_request("/v1/chat/completions", 200);
  m.count_request("/health", 503);
  m.record_generation(10, 4, 3, 1, 0, 0.002, 0.2, 0.03);
  m.observe_inter_token(0.004);
  GaugeValues g;
  g.busy_slots = 2;
  g.slots = 4;
  const std::string text = m.render(g);
  EXPECT_NE(text.find("qvl_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("qvl_requests_total{endpoint=\"/health\",status=\"503\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("qvl_cached_prompt_tokens_total 4\n"), std::string::npos);
  EXPECT_NE(text.find("qvl_slots_busy 2\n"), std::string::npos);
  EXPECT_NE(text.find("qvl_time_to_first_token_seconds_bucket{le=\"0.25\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("qvl_time_to_first_token_seconds_bucket{le=\"0.1\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("qvl_inter_token_seconds_count 1\n"), std::string::npos);
  EXPECT_NE(text.find("qvl_image_encode_seconds_count 1\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE qvl_queue_seconds histogram\n"), std::string::npos);
}

}  // namespace
}  // namespace qvl::server
