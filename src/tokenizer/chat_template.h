// Renders a checkpoint's chat template (Jinja2 source) the way transformers'
// `apply_chat_template(..., tokenize=False)` does.
//
// transformers compiles the template with jinja2's ImmutableSandboxedEnvironment(trim_blocks=True,
// lstrip_blocks=True) plus the loopcontrols extension, adds the globals raise_exception and
// strftime_now, replaces the tojson filter by json.dumps(x, ensure_ascii=False, ...), and renders
// with messages, tools, documents, add_generation_prompt, the tokenizer's special tokens and any
// extra keyword arguments. qvl parses the template once with its own interpreter for the Jinja2
// subset chat templates use (src/jinja/) and renders it with the same semantics.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "jinja/limits.h"

namespace qvl {

namespace jinja {
struct TemplateAst;
}

// Time and memory bounds for parsing and rendering; see jinja/limits.h.
using ChatTemplateLimits = jinja::Limits;

class ChatTemplate {
 public:
  // Parses `source`. Syntax errors fail with qvl::Error(kInvalidFile) naming line and column;
  // Jinja2 features outside the supported subset fail with kUnsupported.
  explicit ChatTemplate(std::string source, ChatTemplateLimits limits = {});

  // Loads the template of a Hugging Face checkpoint directory, trying chat_template.json
  // ({"chat_template": "..."}), then chat_template.jinja, then the "chat_template" entry of
  // tokenizer_config.json (a string, or a list of {name, template} from which `template_name`,
  // by default "default", is taken). No template anywhere -> qvl::Error(kNotFound).
  // The special tokens of tokenizer_config.json (bos_token, eos_token, ...) become default
  // variables, as transformers passes them to every render.
  static ChatTemplate from_model_dir(const std::string& dir, const std::string& template_name = "");

  // messages: JSON array of {role, content, ...}; content is a string or a list of items
  // ({"type":"text","text":...}, {"type":"image",...}, {"type":"video",...}).
  // extra: more top-level variables (tools, documents, enable_thinking, add_vision_id, ...);
  // `tools` and `documents` are None unless given. Errors while rendering fail with
  // qvl::Error: raise_exception(msg) in the template gives kInvalidArgument with exactly msg;
  // exceeded limits give kLimitExceeded.
  //
  // nlohmann::json keeps object keys sorted, whereas Python dicts keep insertion order, which
  // `tojson` output shows (e.g. tool schemas). render_ordered() takes ordered_json to keep the
  // caller's key order; with render() keys come out sorted.
  std::string render(const nlohmann::json& messages, bool add_generation_prompt,
                     const nlohmann::json& extra = nlohmann::json::object()) const;
  std::string render_ordered(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                             const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;

  const std::string& source() const { return source_; }

  // Variables every render sees unless `extra` gives them too (a JSON object).
  const nlohmann::json& default_variables() const { return default_variables_; }
  void set_default_variables(nlohmann::json variables);

 private:
  template <class Json>
  std::string render_impl(const Json& messages, bool add_generation_prompt, const Json& extra) const;

  std::string source_;
  ChatTemplateLimits limits_;
  std::shared_ptr<const jinja::TemplateAst> ast_;
  nlohmann::json default_variables_ = nlohmann::json::object();
};

}  // namespace qvl
