// POST /v1/chat/completions and POST /v1/completions: request → engine inputs → a JSON answer or
// an SSE stream. A request that finds every slot and queue place taken gets 503 + Retry-After; a
// client that goes away cancels its request within a step; past the deadline a request is
// cancelled and answered with a timeout error.
#include <chrono>
#include <map>
#include <random>

#include "server/api_error.h"
#include "server/client_connection.h"
#include "server/responses.h"
#include "server/server_state.h"
#include "server/tool_calls.h"

namespace qvl::server {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPollInterval = std::chrono::milliseconds(20);

GeneratorParams make_params(const ServerState& st, const SamplingRequest& s) {
  GeneratorParams p = GeneratorParams::from_model(*st.model);
  const int64_t context = st.model->info().context_length;
  const int64_t fallback = st.options.default_max_tokens > 0 ? st.options.default_max_tokens : context;
  p.max_new_tokens = std::min(s.max_tokens.value_or(fallback), context);
  if (s.temperature) {
    p.do_sample = *s.temperature > 0;
    p.temperature = p.do_sample ? static_cast<float>(*s.temperature) : 1.0f;
  }
  if (s.top_p) p.top_p = static_cast<float>(*s.top_p);
  if (s.top_k) p.top_k = *s.top_k;
  if (s.min_p) p.min_p = static_cast<float>(*s.min_p);
  if (s.presence_penalty) p.presence_penalty = static_cast<float>(*s.presence_penalty);
  if (s.frequency_penalty) p.frequency_penalty = static_cast<float>(*s.frequency_penalty);
  if (s.repetition_penalty) p.repetition_penalty = static_cast<float>(*s.repetition_penalty);
  p.seed = s.seed ? *s.seed : std::random_device{}();
  p.stop = s.stop;
  return p;
}

void check_fits_context(const ServerState& st, const ProcessedInputs& inputs) {
  const int64_t n = static_cast<int64_t>(inputs.input_ids.size());
  const int64_t context = st.model->info().context_length;
  if (n >= context)
    throw ApiError(400,
                   "the prompt has " + std::to_string(n) + " tokens; the context holds " + std::to_string(context) +
                       " (start the server with a larger -c, or send less)",
                   "messages", "context_length_exceeded");
}

ProcessedInputs process_chat(const ServerState& st, const ChatRequest& request) {
  std::vector<Image> images;
  images.reserve(request.image_urls.size());
  for (const auto& url : request.image_urls) images.push_back(load_request_image(url, st.media));
  // Videos: data URLs, file:// only under the media folder (the processor decodes both), and
  // http(s):// URLs downloaded here and handed to the processor as data URLs.
  const size_t max_video_bytes = st.media.max_image_bytes * 8;
  std::map<std::string, std::string> downloaded;  // URL -> data URL
  for (const auto& url : request.video_urls) {
    if (url.rfind("data:", 0) == 0) {
      if (url.size() > 4 * max_video_bytes / 3 + 64)
        throw ApiError(413, "a video data URL is larger than the limit of " + std::to_string(max_video_bytes) + " bytes",
                       "messages");
      continue;
    }
    if (url.rfind("file://", 0) == 0 && !st.media.media_root.empty()) continue;
    if (url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0) {
      if (!downloaded.count(url)) downloaded[url] = fetch_video_as_data_url(url, st.media, max_video_bytes);
      continue;
    }
    bad_request("messages", "video '" + describe_url(url) +
                                "': a video URL must be a data: URL, an http(s):// URL or a file:// URL under the "
                                "server's media folder");
  }
  OrderedJson messages = request.messages;
  if (!downloaded.empty()) {
    for (auto& message : messages) {
      if (!message.contains("content") || !message["content"].is_array()) continue;
      for (auto& part : message["content"]) {
        if (!part.is_object() || !part.contains("video") || !part["video"].is_string()) continue;
        const auto it = downloaded.find(part["video"].get<std::string>());
        if (it != downloaded.end()) part["video"] = it->second;
      }
    }
  }
  ProcessorOptions options = st.options.images;
  if (request.min_pixels) options.min_pixels = request.min_pixels;
  if (request.max_pixels) options.max_pixels = request.max_pixels;
  if (options.min_pixels && options.max_pixels && *options.min_pixels > *options.max_pixels)
    bad_request("min_pixels", "min_pixels (" + std::to_string(*options.min_pixels) + ") exceeds max_pixels (" +
                                  std::to_string(*options.max_pixels) + ")");
  options.media_root = st.media.media_root;
  try {
    Processor processor(st.model, options);
    ProcessedInputs inputs = processor.process(messages.dump(), images, true,
                                               st.media.media_root.empty() ? "." : st.media.media_root,
                                               request.template_variables.dump());
    check_fits_context(st, inputs);
    return inputs;
  } catch (const Error& e) {
    throw ApiError(status_for(e.kind()), e.what(), "messages");
  }
}

// One accepted request on its way through the engine, shared by the handler and the stream.
struct Generation {
  ServerState& st;
  std::shared_ptr<RequestStream> stream;
  ResponseIdentity who;
  Clock::time_point deadline, last_check = Clock::now();
  ClientConnection client;
  bool stream_mode = false, include_usage = false, chat = true, tools = false;
  int top_logprobs = -1;
  std::string echo;  // completions with echo: the prompt, before the answer

  std::string text;                   // the answer so far (for the non-streaming response)
  std::vector<TokenLogprobs> logprobs;
  ToolCallStreamFilter filter;
  bool finished = false, cancelled_for_deadline = false, started = false;
  RequestEvent last;                  // the finished event

  Generation(ServerState& s, const httplib::Request& req)
      : st(s), client(req.local_addr, req.local_port, req.remote_addr, req.remote_port) {}

  ~Generation() {
    if (!finished && stream) st.slots->cancel(*stream);
  }

  // The next event; false when the client left (the request is then cancelled). The client and
  // the deadline are checked at least every kPollInterval, whether or not events keep coming.
  bool wait(RequestEvent& e) {
    for (;;) {
      const bool got = stream->next(e, kPollInterval);
      const auto now = Clock::now();
      if (!got || now - last_check >= kPollInterval) {
        last_check = now;
        if (client.closed()) {
          st.slots->cancel(*stream);
          return false;
        }
        if (!cancelled_for_deadline && now > deadline) {
          cancelled_for_deadline = true;
          st.slots->cancel(*stream);
        }
      }
      if (got) return true;
    }
  }

  // A token's text for logprobs; an id past the vocabulary (a padded embedding row, which a
  // random model can sample) is empty text, as in the streamed answer.
  std::string token_text(int32_t token) const {
    try {
      return st.tokenizer->decode({token});
    } catch (const Error&) {
      return {};
    }
  }

  void add_logprobs(const RequestEvent& e) {
    if (top_logprobs < 0 || e.token < 0) return;
    TokenLogprobs t;
    t.token = token_text(e.token);
    t.logprob = e.logprob;
    for (const auto& alt : e.top_logprobs) t.top.emplace_back(token_text(alt.token), alt.logprob);
    logprobs.push_back(std::move(t));
  }

  // The error a finished event that is not a normal end stands for, if any.
  std::optional<ApiError> failure() const {
    if (last.finish_reason == "error") return ApiError(400, last.error.empty() ? "generation failed" : last.error);
    if (last.finish_reason == "cancelled") {
      if (cancelled_for_deadline)
        return ApiError(504, "the request exceeded the server's time limit of " +
                                 std::to_string(static_cast<int64_t>(st.options.request_timeout_seconds)) + " s");
      return ApiError(503, "the request was cancelled: the server is shutting down");
    }
    return std::nullopt;
  }

  std::string final_text() const { return st.options.test_reply_set ? st.options.test_reply : text; }

  void log_details() const {
    auto& d = current_log_details();
    d.prompt_tokens = last.stats.prompt_tokens;
    d.cached_tokens = last.stats.cached_tokens;
    d.generated_tokens = last.stats.generated_tokens;
  }
};

// ---- non-streaming ---------------------------------------------------------------------------

void answer_whole(Generation& g, httplib::Response& res) {
  RequestEvent e;
  while (!g.finished) {
    if (!g.wait(e)) {  // the client left: nobody to answer; logged as nginx's "client closed request"
      res.status = 499;
      return;
    }
    if (e.token >= 0) g.add_logprobs(e);
    g.text += e.text;
    if (e.finished) g.finished = true, g.last = e;
  }
  g.log_details();
  if (auto error = g.failure()) return send_error(res, *error);
  const std::string text = g.final_text();
  const Json logprobs = g.top_logprobs >= 0 ? logprobs_json(g.logprobs) : Json(nullptr);
  const std::string reason = openai_finish_reason(g.last.finish_reason);
  Json body;
  if (g.chat) {
    ExtractedAnswer answer = g.tools ? extract_tool_calls(text) : ExtractedAnswer{text, {}};
    body = chat_completion_json(g.who, answer.content, answer.calls, reason, g.last.stats, logprobs);
  } else {
    body = text_completion_json(g.who, g.echo + text, reason, g.last.stats, logprobs);
  }
  res.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
}

// ---- streaming -------------------------------------------------------------------------------

// Writes the SSE events of one engine event (or of the end); false when the client is gone.
bool write(httplib::DataSink& sink, const std::string& data) { return sink.write(data.data(), data.size()); }

bool stream_piece(Generation& g, httplib::DataSink& sink, const std::string& piece, const Json& logprobs) {
  if (!g.chat) return piece.empty() || write(sink, sse_event(text_chunk_json(g.who, piece, nullptr)));
  const std::string safe = g.tools ? g.filter.push(piece) : piece;
  if (safe.empty() && logprobs.is_null()) return true;
  return write(sink, sse_event(chat_chunk_json(g.who, {{"content", safe}}, nullptr, logprobs)));
}

bool stream_end(Generation& g, httplib::DataSink& sink) {
  if (auto error = g.failure()) return write(sink, sse_event(error_body(*error))) && write(sink, kSseDone);
  std::string reason = openai_finish_reason(g.last.finish_reason);
  if (g.st.options.test_reply_set && !stream_piece(g, sink, g.st.options.test_reply, nullptr)) return false;
  if (g.chat && g.tools) {
    const std::string held = g.filter.flush();
    if (g.filter.saw_tool_call()) {
      ExtractedAnswer answer = extract_tool_calls(g.filter.answer());
      if (!answer.calls.empty()) {
        if (!write(sink, sse_event(chat_chunk_json(g.who, {{"tool_calls", tool_calls_delta(answer.calls)}}, nullptr))))
          return false;
        reason = "tool_calls";
      } else {
        // Not a well-formed call after all: what was held back is content.
        const std::string rest = g.filter.answer().substr(g.filter.answer().find("<tool_call>"));
        if (!write(sink, sse_event(chat_chunk_json(g.who, {{"content", rest}}, nullptr)))) return false;
      }
    } else if (!held.empty() && !write(sink, sse_event(chat_chunk_json(g.who, {{"content", held}}, nullptr)))) {
      return false;
    }
  }
  const Json last = g.chat ? chat_chunk_json(g.who, Json::object(), reason) : text_chunk_json(g.who, "", reason);
  if (!write(sink, sse_event(last))) return false;
  if (g.include_usage &&
      !write(sink, sse_event(usage_chunk_json(g.who, g.chat ? "chat.completion.chunk" : "text_completion", g.last.stats))))
    return false;
  return write(sink, kSseDone);
}

void answer_stream(const std::shared_ptr<Generation>& g, httplib::Response& res) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  auto provider = [g](size_t, httplib::DataSink& sink) -> bool {
    if (g->started) return false;  // a previous call ended without finishing: the client is gone
    g->started = true;
    if (g->chat && !write(sink, sse_event(chat_chunk_json(g->who, {{"role", "assistant"}, {"content", ""}}, nullptr))))
      return false;
    if (!g->chat && !g->echo.empty() && !write(sink, sse_event(text_chunk_json(g->who, g->echo, nullptr))))
      return false;
    RequestEvent e;
    while (!g->finished) {
      if (!g->wait(e)) return false;
      if (e.finished) g->finished = true, g->last = e;
      Json logprobs = nullptr;
      if (g->top_logprobs >= 0 && e.token >= 0) {
        g->logprobs.clear();
        g->add_logprobs(e);
        logprobs = logprobs_json(g->logprobs);
      }
      const std::string piece = g->st.options.test_reply_set ? std::string() : e.text;
      if ((!piece.empty() || !logprobs.is_null()) && !stream_piece(*g, sink, piece, logprobs)) {
        g->st.slots->cancel(*g->stream);
        return false;
      }
    }
    g->log_details();
    if (!stream_end(*g, sink)) return false;
    sink.done();
    return true;
  };
  res.set_chunked_content_provider("text/event-stream", provider);
}

// ---- shared ----------------------------------------------------------------------------------

void run_generation(ServerState& st, const httplib::Request& req, httplib::Response& res, ProcessedInputs inputs,
                    const SamplingRequest& sampling, std::shared_ptr<Generation> g) {
  auto& details = current_log_details();
  details.prompt_tokens = static_cast<int64_t>(inputs.input_ids.size());
  if (st.options.log_prompts) details.prompt = inputs.prompt_text;
  const GeneratorParams params = make_params(st, sampling);
  RequestOptions options;
  options.top_logprobs = sampling.top_logprobs;
  g->stream = st.slots->submit(std::move(inputs), params, options);
  if (!g->stream) {
    st.metrics.count_rejected("queue_full");
    res.set_header("Retry-After", "1");
    throw ApiError(503, "the server is busy: every slot and queue place is taken; retry later", "", "queue_full");
  }
  g->stream_mode = sampling.stream;
  g->include_usage = sampling.include_usage;
  g->top_logprobs = sampling.top_logprobs;
  if (g->stream_mode) answer_stream(g, res);
  else answer_whole(*g, res);
}

}  // namespace

void add_generation_routes(ServerState& st) {
  st.http.Post("/v1/chat/completions", [&st](const httplib::Request& req, httplib::Response& res) {
    const auto arrival = Clock::now();
    ChatRequest request = parse_chat_request(req.body, st.limits);
    ProcessedInputs inputs = process_chat(st, request);
    auto g = std::make_shared<Generation>(st, req);
    g->who = new_identity("chatcmpl", st.model_id);
    g->deadline = arrival + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(st.options.request_timeout_seconds));
    g->tools = request.tools_enabled;
    run_generation(st, req, res, std::move(inputs), request.sampling, g);
  });
  st.http.Post("/v1/completions", [&st](const httplib::Request& req, httplib::Response& res) {
    const auto arrival = Clock::now();
    CompletionRequest request = parse_completion_request(req.body, st.limits);
    ProcessedInputs inputs;
    inputs.prompt_text = request.prompt;
    try {
      inputs.input_ids = st.tokenizer->encode(request.prompt);
    } catch (const Error& e) {
      throw ApiError(status_for(e.kind()), e.what(), "prompt");
    }
    check_fits_context(st, inputs);
    auto g = std::make_shared<Generation>(st, req);
    g->who = new_identity("cmpl", st.model_id);
    g->deadline = arrival + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(st.options.request_timeout_seconds));
    g->chat = false;
    if (request.echo) g->echo = request.prompt;
    run_generation(st, req, res, std::move(inputs), request.sampling, g);
  });
}

}  // namespace qvl::server
