// libFuzzer target: the chat-template interpreter (Jinja2 subset) on hostile templates and data.
//
// Input layout: byte 0 holds flags, the rest is split at NUL bytes.
//   flags & 1 == 0: parts = [template source, messages JSON, extra JSON], rendered with small limits;
//   flags & 1 == 1: parts = [messages JSON, extra JSON] rendered with the real Qwen3-VL template
//                   (tests/data/tiny-qwen3-vl, loaded once, with its default special-token variables).
//   flags & 2: add_generation_prompt; flags & 4: render_ordered (keeps key order) instead of render.
// A part that is not valid JSON becomes the content of one user message (messages) or is dropped
// (extra), so that the interpreter is reached even when the JSON is broken.
// Anything other than a qvl::Error escaping is a bug (the API promises qvl::Error only).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/utf8.h"
#include "fuzz_common.h"
#include "qvl/error.hpp"
#include "tokenizer/chat_template.h"

namespace {

qvl::ChatTemplateLimits small_limits() {
  qvl::ChatTemplateLimits l;
  l.max_output_bytes = size_t(1) << 20;
  l.max_loop_iterations = 20'000;
  l.max_work = 2'000'000;
  l.max_range = 10'000;
  l.max_collection_items = 20'000;
  return l;
}

const qvl::ChatTemplate& real_template() {
  static const std::unique_ptr<qvl::ChatTemplate> t = [] {
    const std::string dir = qvl::fuzz::test_data_dir() + "/tiny-qwen3-vl";
    try {
      const qvl::ChatTemplate loaded = qvl::ChatTemplate::from_model_dir(dir);
      auto out = std::make_unique<qvl::ChatTemplate>(loaded.source(), small_limits());
      out->set_default_variables(loaded.default_variables());
      return out;
    } catch (const qvl::Error& e) {
      std::fprintf(stderr, "fuzz_chat_template: cannot load the template of %s: %s\n", dir.c_str(), e.what());
      std::abort();
    }
  }();
  return *t;
}

std::vector<std::string> split_nul(const uint8_t* data, size_t size) {
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0) parts.emplace_back();
    else parts.back().push_back(static_cast<char>(data[i]));
  }
  return parts;
}

template <class Json>
Json messages_from(const std::string& text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) return j;
  std::string content;
  qvl::utf8::append_lossy(text, content);  // JSON text is always valid UTF-8
  return Json::array({Json{{"role", "user"}, {"content", content}}});
}

template <class Json>
Json extra_from(const std::string* text) {
  if (text == nullptr) return Json::object();
  Json j = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? Json::object() : j;
}

void render(const qvl::ChatTemplate& t, const std::string& messages, const std::string* extra, uint8_t flags) {
  const bool add_generation_prompt = flags & 2;
  try {
    if (flags & 4) {
      using J = nlohmann::ordered_json;
      (void)t.render_ordered(messages_from<J>(messages), add_generation_prompt, extra_from<J>(extra));
    } else {
      using J = nlohmann::json;
      (void)t.render(messages_from<J>(messages), add_generation_prompt, extra_from<J>(extra));
    }
  } catch (const qvl::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)real_template();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  std::vector<std::string> parts = split_nul(data + 1, size - 1);
  if (flags & 1) {
    render(real_template(), parts[0], parts.size() > 1 ? &parts[1] : nullptr, flags);
    return 0;
  }
  std::unique_ptr<qvl::ChatTemplate> t;
  try {
    t = std::make_unique<qvl::ChatTemplate>(parts[0], small_limits());
  } catch (const qvl::Error&) {
    return 0;
  }
  render(*t, parts.size() > 1 ? parts[1] : std::string("[]"), parts.size() > 2 ? &parts[2] : nullptr, flags);
  return 0;
}
