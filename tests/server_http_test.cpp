// qvl serve over real HTTP on 127.0.0.1 (an in-process Server on a port the OS picks, the bundled
// tiny model, cpp-httplib's client and raw sockets): OpenAI response shapes and values, exact SSE
// framing, errors as OpenAI error objects, auth, CORS, the bounded queue, cancellation by a client
// that hangs up, and hostile requests after each of which the server still answers.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "server/server.h"
#include "core/base64.h"
#include "test_util.h"

namespace qvl::server {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

// A Server on 127.0.0.1:0 serving from its own thread, ready when constructed.
class TestServer {
 public:
  explicit TestServer(ServerOptions options) : options_(patch(std::move(options))), server_(options_) {
    port_ = server_.bind();
    server_.start_loading([](const std::string& m) { ADD_FAILURE() << "model load failed: " << m; });
    thread_ = std::thread([this] { server_.serve(); });
    for (int i = 0; i < 600 && !server_.ready(); ++i) std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(server_.ready()) << "the tiny model did not load within 6 s";
  }
  ~TestServer() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  Server& server() { return server_; }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    return c;
  }

 private:
  static ServerOptions patch(ServerOptions o) {
    o.host = "127.0.0.1";
    o.port = 0;
    if (o.model_path.empty()) o.model_path = test::tiny_model_dir();
    o.model.threads = 2;
    return o;
  }
  ServerOptions options_;
  Server server_;
  int port_ = 0;
  std::thread thread_;
};

ServerOptions default_options() {
  ServerOptions o;
  o.slots = 2;
  o.alias = "tiny";
  return o;
}

// One server for the tests that need no special options.
TestServer& shared_server() {
  static TestServer server(default_options());
  return server;
}

httplib::Result post(const TestServer& s, const std::string& path, const Json& body, const httplib::Headers& h = {}) {
  return s.client().Post(path.c_str(), h, body.dump(), "application/json");
}

Json json_of(const httplib::Result& r) {
  if (!r) return Json();
  return Json::parse(r->body, nullptr, false);
}

Json chat(const std::string& text, int max_tokens, Json extra = Json::object()) {
  Json body = {{"messages", {{{"role", "user"}, {"content", text}}}}, {"max_tokens", max_tokens}};
  body.update(extra);
  return body;
}

// A request that keeps streaming until cancelled: greedy (sampling at the checkpoint's defaults
// with a random seed could draw EOS at any step; the tiny model's greedy answer to this prompt
// runs 4000+ tokens without one).
Json endless_chat(Json extra = Json::object()) {
  Json body = chat("Go on forever.", 1000000, {{"temperature", 0}});
  body.update(extra);
  return body;
}

// The error object of a response: status and the required fields, message containing `fragment`.
void expect_error(const httplib::Result& r, int status, const std::string& fragment) {
  ASSERT_TRUE(r) << "no response";
  EXPECT_EQ(r->status, status) << r->body;
  const Json j = json_of(r);
  ASSERT_TRUE(j.contains("error")) << r->body;
  for (const char* key : {"message", "type", "param", "code"}) EXPECT_TRUE(j["error"].contains(key)) << key;
  EXPECT_NE(j["error"]["message"].get<std::string>().find(fragment), std::string::npos) << r->body;
}

// A plain TCP connection for what an HTTP client library hides (hanging up mid-stream).
class RawConnection {
 public:
  explicit RawConnection(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    timeval tv{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    EXPECT_EQ(connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  }
  ~RawConnection() { close_now(); }
  void post(const std::string& path, const std::string& body) {
    const std::string request = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
                                "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    EXPECT_EQ(send(fd_, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
  }
  // Reads until `text` has arrived (or 10 s without data, or the peer closed); returns all read.
  std::string read_until(const std::string& text) {
    char buffer[4096];
    while (received_.find(text) == std::string::npos) {
      const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      received_.append(buffer, static_cast<size_t>(n));
    }
    return received_;
  }
  void close_now() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  std::string received_;
};

// The value of a metric line "name value" in /metrics (-1 when absent).
double metric(const TestServer& s, const std::string& name) {
  auto r = s.client().Get("/metrics");
  if (!r) return -1;
  const std::string key = "\n" + name + " ";
  const size_t at = r->body.find(key);
  return at == std::string::npos ? -1 : std::stod(r->body.substr(at + key.size()));
}

// Waits (at most 10 s) for a metric to reach `value`; returns the last value read.
double wait_metric(const TestServer& s, const std::string& name, double value) {
  double v = -1;
  for (int i = 0; i < 500; ++i) {
    v = metric(s, name);
    if (v == value) break;
    std::this_thread::sleep_for(20ms);
  }
  return v;
}

// The events of an SSE body, each without its "data: " prefix and blank line; framing errors fail.
std::vector<std::string> sse_events(const std::string& body) {
  std::vector<std::string> events;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) {
      ADD_FAILURE() << "unterminated event at byte " << pos << ": " << body.substr(pos);
      break;
    }
    const std::string event = body.substr(pos, end - pos);
    EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
    EXPECT_EQ(event.find('\n'), std::string::npos) << "one line per event: " << event;
    events.push_back(event.substr(6));
    pos = end + 2;
  }
  return events;
}

std::shared_ptr<Model> tiny() {
  static auto model = [] {
    ModelOptions o;  // as the server loads it (f16 KV cache), so greedy answers match
    o.threads = 2;
    return Model::load(test::tiny_model_dir(), o);
  }();
  return model;
}

std::string base64(const std::string& in) { return encode_base64(in); }

// ---- answers -------------------------------------------------------------------------------

TEST(ServerHttp, ChatCompletionCountsTokensAsTheTokenizerDoes) {
  auto& s = shared_server();
  auto r = post(s, "/v1/chat/completions", chat("Describe the sea.", 5, {{"temperature", 0}}));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  const Json j = json_of(r);
  const auto inputs = Processor(tiny()).process(R"([{"role":"user","content":"Describe the sea."}])");
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], "tiny");
  EXPECT_EQ(j["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_GT(j["created"].get<int64_t>(), 1700000000);
  EXPECT_EQ(j["usage"]["prompt_tokens"], inputs.input_ids.size());
  EXPECT_EQ(j["usage"]["completion_tokens"], 5);
  EXPECT_EQ(j["usage"]["total_tokens"], inputs.input_ids.size() + 5);
  const Json& choice = j["choices"][0];
  EXPECT_EQ(choice["index"], 0);
  EXPECT_EQ(choice["finish_reason"], "length");
  EXPECT_EQ(choice["message"]["role"], "assistant");
  EXPECT_TRUE(choice["logprobs"].is_null());
  EXPECT_FALSE(choice["message"]["content"].get<std::string>().empty());
  EXPECT_EQ(j["timings"]["predicted_n"], 5);
  EXPECT_EQ(j["timings"]["prompt_n"].get<int64_t>() + j["timings"]["cache_n"].get<int64_t>(), inputs.input_ids.size());

  // The same greedy answer as the library's Generator gives.
  GeneratorParams p = GeneratorParams::from_model(*tiny());
  p.do_sample = false;
  p.max_new_tokens = 5;
  Generator g(tiny(), p);
  g.append_inputs(inputs);
  std::vector<int32_t> ids;
  while (!g.is_done()) {
    g.generate_next_token();
    ids.push_back(g.next_token());
  }
  EXPECT_EQ(choice["message"]["content"], Tokenizer(tiny()).decode(ids, true));
}

TEST(ServerHttp, StreamFramingIsExact) {
  auto& s = shared_server();
  const Json body = chat("Count to three.", 6, {{"temperature", 0}, {"stream", true},
                                               {"stream_options", {{"include_usage", true}}}});
  auto whole = post(s, "/v1/chat/completions", chat("Count to three.", 6, {{"temperature", 0}}));
  auto r = post(s, "/v1/chat/completions", body);
  ASSERT_TRUE(r && whole);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
  ASSERT_GE(r->body.size(), 16u);
  EXPECT_EQ(r->body.substr(r->body.size() - 14), "data: [DONE]\n\n");
  const auto events = sse_events(r->body);
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text, id;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const Json e = Json::parse(events[i]);
    if (i == 0) id = e["id"];
    EXPECT_EQ(e["id"], id) << "one id per stream";
    EXPECT_EQ(e["object"], "chat.completion.chunk");
    if (i + 2 == events.size()) {  // the usage chunk
      EXPECT_TRUE(e["choices"].is_array() && e["choices"].empty());
      EXPECT_EQ(e["usage"]["completion_tokens"], 6);
      EXPECT_EQ(e["usage"]["prompt_tokens"], json_of(whole)["usage"]["prompt_tokens"]);
      continue;
    }
    const Json& c = e["choices"][0];
    if (i == 0) EXPECT_EQ(c["delta"], (Json{{"role", "assistant"}, {"content", ""}}));
    else EXPECT_FALSE(c["delta"].contains("role"));
    if (i + 3 == events.size()) {  // the last choice chunk: the reason, an empty delta
      EXPECT_EQ(c["finish_reason"], "length");
      EXPECT_EQ(c["delta"], Json::object());
    } else {
      EXPECT_TRUE(c["finish_reason"].is_null());
      text += c["delta"].value("content", "");
    }
  }
  EXPECT_EQ(text, json_of(whole)["choices"][0]["message"]["content"]);
}

TEST(ServerHttp, SameSeedSameTextAndStopStringsAreCut) {
  auto& s = shared_server();
  const Json sampled = chat("Tell a story.", 16, {{"temperature", 1.0}, {"seed", 1234}});
  const Json a = json_of(post(s, "/v1/chat/completions", sampled));
  const Json b = json_of(post(s, "/v1/chat/completions", sampled));
  const std::string text = a["choices"][0]["message"]["content"];
  ASSERT_GE(text.size(), 6u);
  EXPECT_EQ(b["choices"][0]["message"]["content"], text);

  // A stop string from the middle of that answer (two whole characters): the answer ends right
  // before its first occurrence.
  auto is_continuation = [&](size_t i) { return i < text.size() && (uint8_t(text[i]) & 0xC0) == 0x80; };
  size_t from = text.size() / 2, to = from;
  while (is_continuation(from)) ++from;
  to = from;
  for (int chars = 0; chars < 2 && to < text.size(); ++chars)
    for (++to; is_continuation(to);) ++to;
  const std::string stop = text.substr(from, to - from);
  ASSERT_FALSE(stop.empty());
  Json stopped = sampled;
  stopped["stop"] = stop;
  const Json c = json_of(post(s, "/v1/chat/completions", stopped));
  const std::string cut = c["choices"][0]["message"]["content"];
  EXPECT_EQ(c["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(cut, text.substr(0, text.find(stop)));
}

TEST(ServerHttp, ResentHistoryReusesTheCachedPrefix) {
  auto& s = shared_server();
  Json messages = {{{"role", "user"}, {"content", "What is a prime number? Explain briefly."}}};
  const Json first = json_of(post(s, "/v1/chat/completions", {{"messages", messages}, {"max_tokens", 8}, {"temperature", 0}}));
  const int64_t first_prompt = first["usage"]["prompt_tokens"];
  messages.push_back({{"role", "assistant"}, {"content", first["choices"][0]["message"]["content"]}});
  messages.push_back({{"role", "user"}, {"content", "And a composite one?"}});
  const Json second = json_of(post(s, "/v1/chat/completions", {{"messages", messages}, {"max_tokens", 4}, {"temperature", 0}}));
  const int64_t cached = second["usage"]["prompt_tokens_details"]["cached_tokens"];
  // Everything up to the first answer was evaluated already; only the new turn (and the end of
  // the first answer) is evaluated again.
  EXPECT_GE(cached, first_prompt);
  EXPECT_LT(cached, second["usage"]["prompt_tokens"].get<int64_t>());
  EXPECT_EQ(second["timings"]["prompt_n"].get<int64_t>(), second["usage"]["prompt_tokens"].get<int64_t>() - cached);
}

TEST(ServerHttp, LogprobsOfGreedyTokensAreTheTopOnes) {
  auto& s = shared_server();
  const Json j = json_of(post(s, "/v1/chat/completions",
                              chat("Hi", 4, {{"temperature", 0}, {"logprobs", true}, {"top_logprobs", 3}})));
  const Json& content = j["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 4u) << j.dump();
  for (const auto& t : content) {
    ASSERT_EQ(t["top_logprobs"].size(), 3u);
    EXPECT_LE(t["logprob"].get<double>(), 0.0);
    EXPECT_DOUBLE_EQ(t["logprob"].get<double>(), t["top_logprobs"][0]["logprob"].get<double>());
    EXPECT_EQ(t["token"], t["top_logprobs"][0]["token"]);
    EXPECT_GE(t["top_logprobs"][0]["logprob"].get<double>(), t["top_logprobs"][1]["logprob"].get<double>());
    EXPECT_GE(t["top_logprobs"][1]["logprob"].get<double>(), t["top_logprobs"][2]["logprob"].get<double>());
  }
}

TEST(ServerHttp, ImageAsDataUrlCountsItsTokens) {
  auto& s = shared_server();
  const std::string png = test::read_file(test::golden_dir() + "/images/b_320x256.png");
  const std::string b64 = base64(png);
  const Json body = {{"messages", {{{"role", "user"},
                                    {"content", {{{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64," + b64}}}},
                                                 {{"type", "text"}, {"text", "What is it?"}}}}}}},
                     {"max_tokens", 2},
                     {"max_pixels", 65536}};
  const Json j = json_of(post(s, "/v1/chat/completions", body));
  ASSERT_TRUE(j.contains("usage")) << j.dump();
  ProcessorOptions po;
  po.max_pixels = 65536;
  const auto expected = Processor(tiny(), po).process(
      R"([{"role":"user","content":[{"type":"image"},{"type":"text","text":"What is it?"}]}])",
      {load_image_file(test::golden_dir() + "/images/b_320x256.png")});
  EXPECT_EQ(j["usage"]["prompt_tokens"], expected.input_ids.size());
  EXPECT_EQ(j["timings"]["images"], 1);

  // The same image in another conversation is not encoded again.
  Json again = body;
  again["messages"][0]["content"][1]["text"] = "Describe it in one word.";
  const Json k = json_of(post(s, "/v1/chat/completions", again));
  EXPECT_EQ(k["timings"]["cached_images"], 1) << k.dump();
  EXPECT_EQ(k["timings"]["image_encode_ms"], 0.0);
}

// A video_url over http: downloaded by the server and processed as the same bytes sent inline.
TEST(ServerHttp, VideoUrlOverHttpIsFetched) {
  const std::string mkv = test::read_file(test::golden_dir() + "/videos/d_256x192_8f_4fps.mkv");
  httplib::Server media;
  media.Get("/clip.mkv", [&](const httplib::Request&, httplib::Response& res) { res.set_content(mkv, "video/x-matroska"); });
  const int port = media.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { media.listen_after_bind(); });
  auto video_chat = [](const std::string& url) {
    return Json{{"messages", {{{"role", "user"},
                               {"content", {{{"type", "video_url"}, {"video_url", {{"url", url}}}},
                                            {{"type", "text"}, {"text", "What happens?"}}}}}}},
                {"max_tokens", 2},
                {"temperature", 0}};
  };
  auto& s = shared_server();
  const Json remote = json_of(post(s, "/v1/chat/completions", video_chat("http://127.0.0.1:" + std::to_string(port) + "/clip.mkv")));
  const Json inline_ = json_of(post(s, "/v1/chat/completions", video_chat("data:video/x-matroska;base64," + base64(mkv))));
  ASSERT_TRUE(remote.contains("usage")) << remote.dump();
  EXPECT_EQ(remote["usage"]["prompt_tokens"], inline_["usage"]["prompt_tokens"]);
  EXPECT_GT(remote["usage"]["prompt_tokens"].get<int64_t>(), 96);  // 2 groups of 48 pads + timestamps
  EXPECT_EQ(remote["choices"][0]["message"]["content"], inline_["choices"][0]["message"]["content"]);
  expect_error(post(s, "/v1/chat/completions", video_chat("http://127.0.0.1:" + std::to_string(port) + "/missing.mkv")),
               400, "cannot fetch it");
  media.stop();
  serving.join();
}

TEST(ServerHttp, CompletionsModelsTokenizeDetokenizeTemplate) {
  auto& s = shared_server();
  Tokenizer tokenizer(tiny());
  const Json c = json_of(post(s, "/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 3}, {"temperature", 0}}));
  EXPECT_EQ(c["object"], "text_completion");
  EXPECT_EQ(c["usage"]["prompt_tokens"], tokenizer.encode("Once upon a time").size());
  EXPECT_EQ(c["usage"]["completion_tokens"], 3);

  // Streamed, with echo: the prompt first, then the same greedy text, a last chunk with the reason.
  auto streamed = post(s, "/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 3}, {"temperature", 0},
                                              {"stream", true}, {"echo", true}});
  const auto events = sse_events(streamed->body);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string streamed_text;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const Json e = Json::parse(events[i]);
    EXPECT_EQ(e["object"], "text_completion");
    streamed_text += e["choices"][0]["text"].get<std::string>();
    EXPECT_EQ(e["choices"][0]["finish_reason"].is_null(), i + 2 < events.size());
  }
  EXPECT_EQ(streamed_text, "Once upon a time" + c["choices"][0]["text"].get<std::string>());

  const Json models = json_of(s.client().Get("/v1/models"));
  EXPECT_EQ(models["object"], "list");
  ASSERT_EQ(models["data"].size(), 1u);
  EXPECT_EQ(models["data"][0]["id"], "tiny");
  EXPECT_EQ(models["data"][0]["context_length"], tiny()->info().context_length);
  EXPECT_EQ(models["data"][0]["modalities"], (Json{"text", "image"}));

  const Json tokens = json_of(post(s, "/tokenize", {{"content", "Hello world"}}));
  EXPECT_EQ(tokens["tokens"], tokenizer.encode("Hello world"));
  const Json text = json_of(post(s, "/detokenize", {{"tokens", tokens["tokens"]}}));
  EXPECT_EQ(text["content"], "Hello world");
  expect_error(post(s, "/detokenize", {{"tokens", {1, -5}}}), 400, "tokens[1] must be a token id");

  const Json messages = {{{"role", "user"}, {"content", "Hi"}}};
  const Json prompt = json_of(post(s, "/apply-template", {{"messages", messages}}));
  EXPECT_EQ(prompt["prompt"], tokenizer.apply_chat_template(messages.dump()));
}

TEST(ServerHttp, MetricsCountRequestsAndTokens) {
  auto& s = shared_server();
  const double before = metric(s, "qvl_generated_tokens_total");
  ASSERT_EQ(post(s, "/v1/chat/completions", chat("Hi", 3))->status, 200);
  EXPECT_EQ(metric(s, "qvl_generated_tokens_total"), before + 3);
  EXPECT_EQ(metric(s, "qvl_slots_total"), 2);
  EXPECT_EQ(metric(s, "qvl_ready"), 1);
  EXPECT_GT(metric(s, "qvl_kv_cache_bytes_budget"), 0);
  auto r = s.client().Get("/metrics");
  EXPECT_NE(r->body.find("qvl_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"}"), std::string::npos);
  EXPECT_NE(r->body.find("qvl_time_to_first_token_seconds_count"), std::string::npos);
}

TEST(ServerHttp, WebPageIsServed) {
  auto r = shared_server().client().Get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(r->body, test::read_file(std::string(QVL_SOURCE_DIR) + "/src/server/webui/index.html"));
}

// ---- tool calls through the test hook ------------------------------------------------------

TEST(ServerHttp, ToolCallRoundTripThroughTheTestReplyHook) {
  ServerOptions o = default_options();
  o.test_reply = "Checking.<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
  o.test_reply_set = true;
  TestServer s(o);
  const Json tools = {{{"type", "function"},
                       {"function", {{"name", "get_weather"}, {"parameters", {{"type", "object"}}}}}}};
  const Json j = json_of(post(s, "/v1/chat/completions", chat("Weather in Paris?", 2, {{"tools", tools}})));
  const Json& choice = j["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "tool_calls");
  EXPECT_EQ(choice["message"]["content"], "Checking.");
  ASSERT_EQ(choice["message"]["tool_calls"].size(), 1u);
  EXPECT_EQ(choice["message"]["tool_calls"][0]["type"], "function");
  EXPECT_EQ(choice["message"]["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(choice["message"]["tool_calls"][0]["function"]["arguments"], R"({"city":"Paris"})");

  // The assistant's call and the tool's result go back in the next request's history (also with
  // content null, as OpenAI clients send a turn that only calls tools).
  Json call_only = choice["message"];
  call_only["content"] = nullptr;
  const Json with_null = json_of(post(s, "/apply-template", {{"messages", {{{"role", "user"}, {"content", "Weather?"}}, call_only,
                                                                             {{"role", "tool"}, {"content", "18 C"}}}},
                                                              {"tools", tools}}));
  EXPECT_NE(with_null.value("prompt", "").find("<tool_call>\n{\"name\": \"get_weather\""), std::string::npos)
      << with_null.dump();
  Json messages = {{{"role", "user"}, {"content", "Weather in Paris?"}}, choice["message"],
                   {{"role", "tool"}, {"tool_call_id", choice["message"]["tool_calls"][0]["id"]}, {"content", "18 C"}}};
  const Json prompt = json_of(post(s, "/apply-template", {{"messages", messages}, {"tools", tools}}));
  EXPECT_NE(prompt["prompt"].get<std::string>().find("<tool_response>\n18 C\n</tool_response>"), std::string::npos)
      << prompt.dump();

  // Streamed: text before the call, then one tool_calls delta, then finish_reason tool_calls.
  auto r = post(s, "/v1/chat/completions", chat("Weather?", 2, {{"tools", tools}, {"stream", true}}));
  const auto events = sse_events(r->body);
  ASSERT_GE(events.size(), 4u);
  const Json call = Json::parse(events[events.size() - 3])["choices"][0]["delta"];
  EXPECT_EQ(call["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(Json::parse(events[events.size() - 2])["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_EQ(r->body.find("<tool_call>"), std::string::npos);
}

// ---- auth, CORS -----------------------------------------------------------------------------

TEST(ServerHttp, EveryRouteButHealthNeedsTheKey) {
  ServerOptions o = default_options();
  o.api_key = "sk-test-123";
  TestServer s(o);
  struct Route {
    const char* method;
    const char* path;
  };
  const Route routes[] = {{"POST", "/v1/chat/completions"}, {"POST", "/v1/completions"}, {"GET", "/v1/models"},
                          {"POST", "/tokenize"},            {"POST", "/detokenize"},      {"POST", "/apply-template"},
                          {"GET", "/metrics"},              {"GET", "/nonexistent"}};
  for (const auto& route : routes) {
    for (const httplib::Headers& h : {httplib::Headers{}, httplib::Headers{{"Authorization", "Bearer sk-test-124"}},
                                      httplib::Headers{{"Authorization", "sk-test-123"}}}) {
      auto c = s.client();
      auto r = std::string(route.method) == "GET" ? c.Get(route.path, h) : c.Post(route.path, h, "{}", "application/json");
      expect_error(r, 401, "API key");
      EXPECT_EQ(json_of(r)["error"]["type"], "authentication_error") << route.path;
    }
  }
  const httplib::Headers key{{"Authorization", "Bearer sk-test-123"}};
  // A refused request's body is not left in a kept-alive connection to be read as the next request.
  auto kept = s.client();
  kept.set_keep_alive(true);
  for (int i = 0; i < 3; ++i) {
    const std::string body = chat("Hello there, a body of some length.", 1).dump();
    auto refused = kept.Post("/v1/chat/completions", body, "application/json");
    ASSERT_TRUE(refused) << "round " << i;
    EXPECT_EQ(refused->status, 401);
    auto accepted = kept.Post("/v1/chat/completions", key, body, "application/json");
    ASSERT_TRUE(accepted) << "round " << i;
    EXPECT_EQ(accepted->status, 200) << accepted->body;
    auto unrouted = kept.Post("/v1/nowhere", key, body, "application/json");
    ASSERT_TRUE(unrouted) << "round " << i;
    EXPECT_EQ(unrouted->status, 404);
  }
  EXPECT_EQ(s.client().Get("/health")->status, 200);
  EXPECT_EQ(s.client().Get("/v1/models", key)->status, 200);
  EXPECT_EQ(post(s, "/v1/chat/completions", chat("Hi", 1), key)->status, 200);
  EXPECT_EQ(s.client().Get("/")->status, 200) << "the page loads before the key is typed into it";
}

TEST(ServerHttp, CorsHeadersOnlyWhenAsked) {
  auto plain = shared_server().client().Get("/health", {{"Origin", "http://elsewhere.test"}});
  EXPECT_FALSE(plain->has_header("Access-Control-Allow-Origin"));

  ServerOptions o = default_options();
  o.cors_origin = "http://app.test";
  o.api_key = "k";
  TestServer s(o);
  auto r = s.client().Get("/health", {{"Origin", "http://app.test"}});
  EXPECT_EQ(r->get_header_value("Access-Control-Allow-Origin"), "http://app.test");
  auto preflight = s.client().Options("/v1/chat/completions", {{"Origin", "http://app.test"},
                                                               {"Access-Control-Request-Method", "POST"}});
  ASSERT_TRUE(preflight);
  EXPECT_EQ(preflight->status, 204);
  EXPECT_EQ(preflight->get_header_value("Access-Control-Allow-Origin"), "http://app.test");
  EXPECT_NE(preflight->get_header_value("Access-Control-Allow-Headers").find("Authorization"), std::string::npos);
}

// ---- queue, cancellation --------------------------------------------------------------------

TEST(ServerHttp, FullQueueGets503AndHangingUpFreesTheSlots) {
  ServerOptions o = default_options();
  o.slots = 1;
  o.queue = 1;
  TestServer s(o);
  // Two endless streams: one runs, one waits. A third request finds no place.
  const std::string endless = endless_chat({{"stream", true}}).dump();
  RawConnection running(s.port()), waiting(s.port());
  running.post("/v1/chat/completions", endless);
  EXPECT_NE(running.read_until("\"content\":\"").find("data: "), std::string::npos);
  // The engine publishes its counts after each step: wait until they show the running request, so
  // that queue_depth (in flight minus running) can only reach 1 through the waiting one.
  EXPECT_EQ(wait_metric(s, "qvl_slots_busy", 1), 1);
  waiting.post("/v1/chat/completions", endless);
  EXPECT_EQ(wait_metric(s, "qvl_queue_depth", 1), 1);
  auto refused = post(s, "/v1/chat/completions", chat("Hi", 1));
  expect_error(refused, 503, "busy");
  EXPECT_EQ(refused->get_header_value("Retry-After"), "1");
  EXPECT_EQ(metric(s, "qvl_slots_busy"), 1);

  // The running client hangs up: its slot goes to the waiting one, then that one hangs up too.
  running.close_now();
  EXPECT_EQ(wait_metric(s, "qvl_queue_depth", 0), 0);
  EXPECT_EQ(waiting.read_until("\"content\":\"").find("HTTP/1.1 200"), 0u);
  EXPECT_EQ(wait_metric(s, "qvl_slots_busy", 1), 1);
  waiting.close_now();
  EXPECT_EQ(wait_metric(s, "qvl_slots_busy", 0), 0);
  EXPECT_EQ(post(s, "/v1/chat/completions", chat("Hi", 1))->status, 200);
}

TEST(ServerHttp, StopEndsARunningStreamAndServeReturns) {
  ServerOptions o = default_options();
  o.grace_seconds = 0.2;
  auto s = std::make_unique<TestServer>(o);
  RawConnection stream(s->port());
  stream.post("/v1/chat/completions", endless_chat({{"stream", true}}).dump());
  stream.read_until("\"content\":\"");
  s.reset();  // stop(): past the grace period the stream is cancelled and ends properly
  const std::string rest = stream.read_until("data: [DONE]\n\n");
  EXPECT_NE(rest.find("shutting down"), std::string::npos) << rest.substr(rest.size() > 400 ? rest.size() - 400 : 0);
  EXPECT_NE(rest.find("data: [DONE]\n\n"), std::string::npos);
}

TEST(ServerHttp, DeadlineCancelsTheRequest) {
  ServerOptions o = default_options();
  o.request_timeout_seconds = 0.3;
  TestServer s(o);
  auto r = post(s, "/v1/chat/completions", endless_chat());
  expect_error(r, 504, "time limit");
  EXPECT_EQ(wait_metric(s, "qvl_slots_busy", 0), 0);
}

// ---- health while loading -------------------------------------------------------------------

TEST(ServerHttp, HealthSaysLoadingUntilTheModelIsReady) {
  ServerOptions o = default_options();
  o.host = "127.0.0.1";
  o.port = 0;
  o.model_path = test::tiny_model_dir();
  o.test_load_delay_ms = 1500;
  Server server(o);
  const int port = server.bind();
  std::thread serving([&] { server.serve(); });
  server.start_loading();
  httplib::Client c("127.0.0.1", port);
  auto loading = c.Get("/health");
  expect_error(loading, 503, "Loading model");
  expect_error(c.Post("/v1/chat/completions", chat("Hi", 1).dump(), "application/json"), 503, "Loading model");
  auto ok = c.Get("/health");
  for (int i = 0; i < 300 && ok && ok->status != 200; ++i) {
    std::this_thread::sleep_for(20ms);
    ok = c.Get("/health");
  }
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(json_of(ok), (Json{{"status", "ok"}}));
  server.stop();
  serving.join();
}

// ---- hostile requests -----------------------------------------------------------------------

std::string crc32_be(const std::string& bytes) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char b : bytes) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  crc ^= 0xffffffffu;
  return {char(crc >> 24), char(crc >> 16), char(crc >> 8), char(crc)};
}

// A PNG whose header declares width x height pixels (and no pixel data).
std::string png_header(uint32_t width, uint32_t height) {
  auto be32 = [](uint32_t v) { return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; };
  const std::string ihdr = "IHDR" + be32(width) + be32(height) + std::string("\x08\x02\x00\x00\x00", 5);
  return std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + ihdr + crc32_be(ihdr);
}

Json image_chat(const std::string& url) {
  return {{"messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}, {"image_url", {{"url", url}}}},
                                                        {{"type", "text"}, {"text", "What?"}}}}}}},
          {"max_tokens", 1}};
}

int closed_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t length = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &length);
  close(fd);  // nothing listens there now
  return ntohs(a.sin_port);
}

TEST(ServerHttp, HostileRequestsGetClearErrorsAndTheServerGoesOn) {
  namespace fs = std::filesystem;
  const std::string media = test::temp_dir() + "/media";
  fs::create_directories(media);
  fs::copy_file(test::golden_dir() + "/images/b_320x256.png", media + "/ok.png", fs::copy_options::overwrite_existing);
  ServerOptions o = default_options();
  o.media_path = media;
  o.max_body_bytes = int64_t{8} << 20;
  TestServer s(o);
  auto next_request_works = [&](const std::string& after) {
    auto r = post(s, "/v1/chat/completions", chat("Hi", 1));
    ASSERT_TRUE(r) << "no answer after " << after;
    EXPECT_EQ(r->status, 200) << "after " << after << ": " << r->body;
  };
  struct Case {
    std::string name, body;
    int status;
    std::string fragment;
  };
  std::string many = R"({"messages":[)";
  for (int i = 0; i < 10000; ++i) many += std::string(i ? "," : "") + R"({"role":"user","content":"x"})";
  many += "]}";
  std::string long_prompt;
  for (int i = 0; i < 40000; ++i) long_prompt += " hello";
  const std::vector<Case> cases = {
      {"malformed JSON", R"({"messages": [)", 400, "malformed JSON"},
      {"wrong type", R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": "ten"})", 400,
       "'max_tokens' must be an integer, not a string"},
      {"unknown role", R"({"messages": [{"role": "wizard", "content": "x"}]})", 400, "unknown role 'wizard'"},
      {"10^4 messages", many, 400, "holds 10000 messages"},
      {"huge image header", image_chat("data:image/png;base64," + base64(png_header(100000, 100000))).dump(), 400,
       "100000x100000"},
      {"invalid base64", image_chat("data:image/png;base64,iVBOR!!!").dump(), 400, "not base64"},
      {"file:// escaping", image_chat("file://" + media + "/../../../../etc/passwd").dump(), 400,
       "outside the media root"},
      {"file:// symlink", "", 0, ""},
      {"closed port", image_chat("http://127.0.0.1:" + std::to_string(closed_port()) + "/a.png").dump(), 400,
       "cannot fetch it"},
      {"longer than the context", chat(long_prompt, 1).dump(), 400, "the context holds"},
      {"n=2", chat("x", 1, {{"n", 2}}).dump(), 400, "'n' must be 1"},
      {"json schema", chat("x", 1, {{"response_format", {{"type", "json_schema"}}}}).dump(), 400, "not supported yet"},
  };
  fs::create_symlink("/etc/hostname", media + "/link.png");
  for (auto c : cases) {
    if (c.name == "file:// symlink") {
      c.body = image_chat("file://link.png").dump();
      c.status = 400;
      c.fragment = "outside the media root";
    }
    expect_error(s.client().Post("/v1/chat/completions", c.body, "application/json"), c.status, c.fragment);
    next_request_works(c.name);
  }
  // A file inside the media folder works.
  EXPECT_EQ(post(s, "/v1/chat/completions", image_chat("file://ok.png"))->status, 200);
  // 100 MB body: refused from its length.
  const std::string huge(size_t(100) << 20, ' ');
  expect_error(s.client().Post("/v1/chat/completions", huge, "application/json"), 413, "exceeds the server's limit");
  next_request_works("100 MB body");
  // Remote media switched off.
  ServerOptions off = default_options();
  off.remote_media = false;
  TestServer no_remote(off);
  expect_error(post(no_remote, "/v1/chat/completions", image_chat("http://127.0.0.1:1/a.png")), 400, "--no-remote-media");
  const Json remote_video = {{"messages", {{{"role", "user"},
                                            {"content", {{{"type", "video_url"}, {"video_url", {{"url", "http://127.0.0.1:1/v.mp4"}}}}}}}}}};
  expect_error(post(no_remote, "/v1/chat/completions", remote_video), 400, "remote videos are switched off");
}

}  // namespace
}  // namespace qvl::server
