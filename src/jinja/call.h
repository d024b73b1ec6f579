// What the interpreter and the builtins exchange on a call: the scope globals live in (Frame),
// the evaluated arguments (Args), and what raise_exception() throws (TemplateRaised).
#pragma once

#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "jinja/value.h"

namespace qvl::jinja {

struct Frame {
  explicit Frame(std::shared_ptr<Frame> p = nullptr) : parent(std::move(p)) {}
  std::shared_ptr<Frame> parent;
  std::unordered_map<std::string, Value> vars;
};

// Evaluated call arguments, bound Python-style by the callee.
struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // Binds to `params` in order (positional first, then by keyword); absent ones are null.
  // Fails on too many positionals, unknown or repeated keywords, or fewer than `required`.
  std::vector<const Value*> bind(std::string_view callee, std::initializer_list<std::string_view> params,
                                 size_t required = 0) const;
};

// What `raise_exception(msg)` throws inside the interpreter; render() turns it into
// qvl::Error(kInvalidArgument, msg) without adding position information.
struct TemplateRaised {
  std::string message;
};

}  // namespace qvl::jinja
