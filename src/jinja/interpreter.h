// Interpreter of the Jinja2 subset: walks a parsed template and writes the rendered text.
//
// Scoping follows jinja2: `if` shares its enclosing scope, every `for` iteration and every
// macro call gets a fresh child scope (so `set` inside a loop does not leak out, which is what
// namespace() exists for), and lookups walk outwards to the render variables and globals.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "jinja/ast.h"
#include "jinja/limits.h"
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

class Interpreter {
 public:
  explicit Interpreter(const Limits& limits);

  // Renders `ast` with `variables` as the outermost scope. One Interpreter renders once.
  // Errors come out as qvl::Error prefixed with the template line being evaluated.
  std::string render(const TemplateAst& ast, std::shared_ptr<Frame> variables);

  // Accounting used by the builtins, so that filters building strings or lists are bounded too.
  const Limits& limits() const { return limits_; }
  void charge(uint64_t units);
  void check_string_size(size_t bytes) const;
  void check_collection_size(size_t items) const;
  void count_iteration();

 private:
  enum class Flow { kNormal, kBreak, kContinue };
  class DepthGuard;

  Flow exec_body(const Body& body);
  Flow exec(const Stmt& stmt);
  Flow exec_for(const ForStmt& stmt);
  void exec_set(const SetStmt& stmt);
  void assign(const AssignTarget& target, const Value& value, Frame& frame);
  std::string capture(const Body& body, std::shared_ptr<Frame> scope);
  void write(std::string_view text);

  Value eval(const Expr& expr);
  Value eval_binary(const BinaryExpr& expr);
  Value eval_compare(const CompareExpr& expr);
  Value eval_slice(const SliceExpr& expr);
  Args eval_args(const CallArgs& args);
  Value lookup(const std::string& name) const;
  Value call(const Value& callee, const Args& args);
  Value call_macro(const CallableData& macro, const Args& args);

  const Limits& limits_;
  std::shared_ptr<Frame> scope_;
  std::shared_ptr<Frame> root_;
  std::string* out_ = nullptr;
  uint64_t output_bytes_ = 0;  // everything written, including captured blocks and macro output
  uint64_t iterations_ = 0;
  uint64_t work_ = 0;
  int depth_ = 0;
  int line_ = 0;  // line of the node being evaluated, for error messages
};

}  // namespace qvl::jinja
