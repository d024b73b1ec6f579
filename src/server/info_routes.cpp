// The routes around generation: /health, /metrics, /v1/models, /tokenize, /detokenize,
// /apply-template, and the chat page at /.
#include <filesystem>

#include "server/api_error.h"
#include "server/server_state.h"
#include "server/webui_page.h"

namespace qvl::server {

namespace {

void send_json(httplib::Response& res, const nlohmann::json& body) {
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

const OrderedJson& require_field(const OrderedJson& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) bad_request(key, std::string("'") + key + "' is required");
  return *it;
}

}  // namespace

void add_info_routes(ServerState& st) {
  st.http.Get("/health", [&st](const httplib::Request&, httplib::Response& res) {
    if (st.draining) return send_error(res, ApiError(503, "Shutting down"));
    if (!st.ready) return send_error(res, ApiError(503, "Loading model"));
    send_json(res, {{"status", "ok"}});
  });

  st.http.Get("/metrics", [&st](const httplib::Request&, httplib::Response& res) {
    GaugeValues g;
    g.ready = st.ready;
    g.slots = st.options.slots;
    if (st.ready) {
      const EngineStats e = st.slots->engine_stats();
      g.busy_slots = e.running;
      g.queue_depth = std::max<int64_t>(0, st.slots->in_flight() - e.running);
      g.kv_bytes_in_use = e.kv_reserved_tokens * static_cast<int64_t>(e.kv_bytes_per_token);
      g.kv_bytes_budget = e.kv_budget_tokens * static_cast<int64_t>(e.kv_bytes_per_token);
      g.vision_cache_bytes = e.vision_cache_bytes;
    }
    res.set_content(st.metrics.render(g), "text/plain; version=0.0.4; charset=utf-8");
  });

  st.http.Get("/v1/models", [&st](const httplib::Request&, httplib::Response& res) {
    const ModelInfo& info = st.model->info();
    nlohmann::json modalities = info.has_vision ? nlohmann::json{"text", "image"} : nlohmann::json{"text"};
    nlohmann::json model = {{"id", st.model_id},
                            {"object", "model"},
                            {"created", 0},
                            {"owned_by", "qvl"},
                            {"context_length", info.context_length},
                            {"modalities", modalities},
                            {"meta",
                             {{"model_type", info.model_type},
                              {"weights_type", info.weights_type},
                              {"kv_cache_type", info.kv_cache_type},
                              {"slots", st.options.slots}}}};
    send_json(res, {{"object", "list"}, {"data", {model}}});
  });

  st.http.Post("/tokenize", [&st](const httplib::Request& req, httplib::Response& res) {
    const OrderedJson body = parse_body(req.body);
    const OrderedJson& content = require_field(body, "content");
    if (!content.is_string()) bad_request("content", "'content' must be a string");
    const bool with_pieces = body.value("with_pieces", false);
    std::vector<int32_t> ids;
    try {
      ids = st.tokenizer->encode(content.get<std::string>());
    } catch (const Error& e) {
      throw ApiError(status_for(e.kind()), e.what(), "content");
    }
    nlohmann::json tokens = nlohmann::json::array();
    for (int32_t id : ids) {
      if (with_pieces) tokens.push_back({{"id", id}, {"piece", st.tokenizer->decode({id})}});
      else tokens.push_back(id);
    }
    send_json(res, {{"tokens", tokens}});
  });

  st.http.Post("/detokenize", [&st](const httplib::Request& req, httplib::Response& res) {
    const OrderedJson body = parse_body(req.body);
    const OrderedJson& tokens = require_field(body, "tokens");
    if (!tokens.is_array()) bad_request("tokens", "'tokens' must be an array of token ids");
    const int64_t vocab = st.model->info().vocab_size;
    std::vector<int32_t> ids;
    for (size_t i = 0; i < tokens.size(); ++i) {
      const auto& t = tokens[i];
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= vocab)
        bad_request("tokens[" + std::to_string(i) + "]",
                    "tokens[" + std::to_string(i) + "] must be a token id from 0 to " + std::to_string(vocab - 1));
      ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
    send_json(res, {{"content", st.tokenizer->decode(ids)}});
  });

  st.http.Post("/apply-template", [&st](const httplib::Request& req, httplib::Response& res) {
    const ChatRequest request = parse_chat_request(req.body, st.limits);
    try {
      send_json(res, {{"prompt", st.tokenizer->apply_chat_template(request.messages.dump(), true,
                                                                     request.template_variables.dump())}});
    } catch (const Error& e) {
      throw ApiError(status_for(e.kind()), e.what(), "messages");
    }
  });

  if (st.options.webui)
    st.http.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(reinterpret_cast<const char*>(kWebuiPage), kWebuiPageSize, "text/html; charset=utf-8");
    });
}

}  // namespace qvl::server
