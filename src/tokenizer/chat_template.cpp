#include "tokenizer/chat_template.h"

#include <filesystem>

#include "core/check.h"
#include "core/json_util.h"
#include "core/mapped_file.h"
#include "jinja/builtins.h"
#include "jinja/interpreter.h"
#include "jinja/parser.h"

namespace qvl {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxTemplateFileBytes = size_t(16) << 20;
// Request data may nest this deep; the rest of jinja::kMaxValueDepth is headroom for templates.
constexpr int kMaxInputDepth = jinja::kMaxValueDepth / 2;

// The "chat_template" entry of a config: a string, or transformers' list of {name, template}.
std::string pick_template(const Json& entry, const std::string& wanted_name, const std::string& file) {
  const std::string name = wanted_name.empty() ? "default" : wanted_name;
  if (entry.is_string()) {
    if (name != "default")
      fail(ErrorKind::kNotFound, file, " has a single chat template, not one named '", wanted_name, "'");
    return entry.get<std::string>();
  }
  if (!entry.is_array()) fail(ErrorKind::kInvalidFile, file, ": \"chat_template\" must be a string or a list");
  std::string names;
  for (const Json& item : entry) {
    if (!item.is_object() || !item.contains("name") || !item.contains("template") || !item["name"].is_string() ||
        !item["template"].is_string())
      fail(ErrorKind::kInvalidFile, file, ": \"chat_template\" list entries must be {\"name\", \"template\"} strings");
    if (item["name"] == name) return item["template"].get<std::string>();
    names += (names.empty() ? "" : ", ") + item["name"].get<std::string>();
  }
  fail(ErrorKind::kNotFound, file, " has no chat template named '", name, "' (it has: ", names, ")");
}

// transformers passes the tokenizer's special tokens (its special_tokens_map) to every render.
Json special_token_variables(const Json& tokenizer_config) {
  Json vars = Json::object();
  if (!tokenizer_config.is_object()) return vars;
  const auto token_text = [](const Json& v) -> const Json* {
    if (v.is_string()) return &v;
    if (v.is_object() && v.contains("content") && v["content"].is_string()) return &v["content"];
    return nullptr;  // null (unset) tokens are not passed at all
  };
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
    const auto it = tokenizer_config.find(key);
    if (it == tokenizer_config.end()) continue;
    if (const Json* text = token_text(*it)) vars[key] = *text;
  }
  const auto extra = tokenizer_config.find("additional_special_tokens");
  if (extra != tokenizer_config.end() && extra->is_array()) {
    Json list = Json::array();
    for (const Json& item : *extra)
      if (const Json* text = token_text(item)) list.push_back(*text);
    vars["additional_special_tokens"] = std::move(list);
  }
  return vars;
}

}  // namespace

ChatTemplate::ChatTemplate(std::string source, ChatTemplateLimits limits)
    : source_(std::move(source)), limits_(limits), ast_(jinja::parse_template(source_, limits_)) {}

ChatTemplate ChatTemplate::from_model_dir(const std::string& dir, const std::string& template_name) {
  const auto in_dir = [&](const char* name) { return (fs::path(dir) / name).string(); };
  const std::string tokenizer_config_path = in_dir("tokenizer_config.json");
  Json tokenizer_config;
  if (fs::exists(tokenizer_config_path)) tokenizer_config = load_json_file(tokenizer_config_path);

  std::string source;
  bool found = false;
  const fs::path named = fs::path(dir) / "additional_chat_templates" / (template_name + ".jinja");
  if (!template_name.empty() && template_name != "default" && fs::exists(named)) {
    // Newer checkpoints keep non-default templates as separate files.
    source = read_text_file(named.string(), kMaxTemplateFileBytes);
    found = true;
  } else if (const std::string path = in_dir("chat_template.json"); fs::exists(path)) {
    const Json config = load_json_file(path);
    if (!config.is_object() || !config.contains("chat_template"))
      fail(ErrorKind::kInvalidFile, path, ": missing key 'chat_template'");
    source = pick_template(config["chat_template"], template_name, path);
    found = true;
  } else if (const std::string jinja_path = in_dir("chat_template.jinja"); fs::exists(jinja_path)) {
    if (!template_name.empty() && template_name != "default")
      fail(ErrorKind::kNotFound, "no chat template named '", template_name, "' in ", dir);
    source = read_text_file(jinja_path, kMaxTemplateFileBytes);
    found = true;
  } else if (tokenizer_config.is_object() && tokenizer_config.contains("chat_template") &&
             !tokenizer_config["chat_template"].is_null()) {
    source = pick_template(tokenizer_config["chat_template"], template_name, tokenizer_config_path);
    found = true;
  }
  if (!found)
    fail(ErrorKind::kNotFound, "no chat template in '", dir,
         "' (looked for chat_template.json, chat_template.jinja and tokenizer_config.json's \"chat_template\")");
  ChatTemplate result(std::move(source));
  result.set_default_variables(special_token_variables(tokenizer_config));
  return result;
}

void ChatTemplate::set_default_variables(nlohmann::json variables) {
  if (!variables.is_object()) fail(ErrorKind::kInvalidArgument, "chat template default variables must be a JSON object");
  default_variables_ = std::move(variables);
}

template <class Json>
std::string ChatTemplate::render_impl(const Json& messages, bool add_generation_prompt, const Json& extra) const {
  if (!messages.is_array()) fail(ErrorKind::kInvalidArgument, "chat template: messages must be a JSON array");
  if (!extra.is_object() && !extra.is_null())
    fail(ErrorKind::kInvalidArgument, "chat template: extra variables must be a JSON object");
  auto globals = std::make_shared<jinja::Frame>();
  jinja::install_globals(*globals);
  auto variables = std::make_shared<jinja::Frame>(globals);
  for (auto it = default_variables_.begin(); it != default_variables_.end(); ++it)
    variables->vars[it.key()] = jinja::from_json(it.value(), kMaxInputDepth);
  // transformers always passes these two, as None when the caller has none.
  variables->vars["tools"] = jinja::Value::none();
  variables->vars["documents"] = jinja::Value::none();
  if (extra.is_object())
    for (auto it = extra.begin(); it != extra.end(); ++it)
      variables->vars[it.key()] = jinja::from_json(it.value(), kMaxInputDepth);
  variables->vars["messages"] = jinja::from_json(messages, kMaxInputDepth);
  variables->vars["add_generation_prompt"] = jinja::Value(add_generation_prompt);
  jinja::Interpreter interpreter(limits_);
  return interpreter.render(*ast_, std::move(variables));
}

std::string ChatTemplate::render(const nlohmann::json& messages, bool add_generation_prompt,
                                 const nlohmann::json& extra) const {
  return render_impl(messages, add_generation_prompt, extra);
}

std::string ChatTemplate::render_ordered(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                         const nlohmann::ordered_json& extra) const {
  return render_impl(messages, add_generation_prompt, extra);
}

}  // namespace qvl
