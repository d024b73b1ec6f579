// Interpreter of the Jinja2 subset: walks a parsed template and writes the rendered text.
//
// Scoping follows jinja2: `if` shares its enclosing scope, every `for` iteration and every
// macro call gets a fresh child scope (so `set` inside a loop does not leak out, which is what
// namespace() exists for), and lookups walk outwards to the render variables and globals.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "jinja/ast.h"
#include "jinja/budget.h"
#include "jinja/call.h"
#include "jinja/limits.h"
#include "jinja/value.h"

namespace qvl::jinja {

class Interpreter {
 public:
  explicit Interpreter(const Limits& limits);

  // Renders `ast` with `variables` as the outermost scope. One Interpreter renders once.
  // Errors come out as qvl::Error prefixed with the template line being evaluated.
  std::string render(const TemplateAst& ast, std::shared_ptr<Frame> variables);

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
  Budget budget_;  // work, loop iterations and sizes, shared with the builtins
  std::shared_ptr<Frame> scope_;
  std::shared_ptr<Frame> root_;
  std::string* out_ = nullptr;
  uint64_t output_bytes_ = 0;  // everything written, including captured blocks and macro output
  int depth_ = 0;
  int line_ = 0;  // line of the node being evaluated, for error messages
};

}  // namespace qvl::jinja
