#include "jinja/interpreter.h"

#include <algorithm>

#include "core/check.h"
#include "jinja/builtin_helpers.h"
#include "jinja/builtins.h"

namespace qvl::jinja {
namespace {

// Restores a member on scope exit (also when an error unwinds through).
template <class T>
class Restore {
 public:
  Restore(T& ref, T value) : ref_(ref), saved_(std::move(ref)) { ref_ = std::move(value); }
  ~Restore() { ref_ = std::move(saved_); }
  Restore(const Restore&) = delete;
  Restore& operator=(const Restore&) = delete;

 private:
  T& ref_;
  T saved_;
};

}  // namespace

class Interpreter::DepthGuard {
 public:
  explicit DepthGuard(Interpreter& in) : in_(in) {
    if (++in_.depth_ > in_.limits_.max_call_depth)
      fail(ErrorKind::kLimitExceeded, "evaluation nests deeper than ", in_.limits_.max_call_depth,
           " levels (runaway macro recursion?)");
  }
  ~DepthGuard() { --in_.depth_; }

 private:
  Interpreter& in_;
};

Interpreter::Interpreter(const Limits& limits) : limits_(limits), budget_(limits) {}

std::string Interpreter::render(const TemplateAst& ast, std::shared_ptr<Frame> variables) {
  root_ = std::move(variables);
  scope_ = root_;
  std::string out;
  out_ = &out;
  try {
    exec_body(ast.body);
  } catch (const TemplateRaised& raised) {
    // raise_exception() is the template author's own message for bad input; pass it on as is.
    throw Error(ErrorKind::kInvalidArgument, raised.message);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kInternal) throw;
    throw Error(e.kind(), cat("chat template error at line ", line_, ": ", e.what()));
  }
  out_ = nullptr;
  return out;
}

void Interpreter::write(std::string_view text) {
  output_bytes_ += text.size();
  if (output_bytes_ > limits_.max_output_bytes)
    fail(ErrorKind::kLimitExceeded, "output exceeds the ", limits_.max_output_bytes, "-byte limit");
  out_->append(text);
}

// ---- statements ------------------------------------------------------------------------------

Interpreter::Flow Interpreter::exec_body(const Body& body) {
  for (const StmtPtr& stmt : body) {
    const Flow flow = exec(*stmt);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec(const Stmt& stmt) {
  DepthGuard guard(*this);
  budget_.charge(1);
  line_ = stmt.line;
  switch (stmt.kind) {
    case StmtKind::kText:
      write(static_cast<const TextStmt&>(stmt).text);
      return Flow::kNormal;
    case StmtKind::kOutput: {
      const Value value = eval(*static_cast<const OutputStmt&>(stmt).value);
      if (value.is_string()) {
        write(value.as_string());
      } else {
        write(to_str(value, limits_.max_output_bytes));
      }
      return Flow::kNormal;
    }
    case StmtKind::kIf: {
      const auto& s = static_cast<const IfStmt&>(stmt);
      for (const auto& [condition, body] : s.branches)
        if (truthy(eval(*condition))) return exec_body(body);
      return exec_body(s.else_body);
    }
    case StmtKind::kFor: return exec_for(static_cast<const ForStmt&>(stmt));
    case StmtKind::kSet: exec_set(static_cast<const SetStmt&>(stmt)); return Flow::kNormal;
    case StmtKind::kMacro: {
      const auto& s = static_cast<const MacroStmt&>(stmt);
      CallableData macro;
      macro.kind = CallableData::Kind::kMacro;
      macro.name = s.name;
      macro.macro = &s;
      macro.closure = scope_;
      scope_->vars[s.name] = make_callable(std::move(macro));
      return Flow::kNormal;
    }
    case StmtKind::kBreak: return Flow::kBreak;
    case StmtKind::kContinue: return Flow::kContinue;
    case StmtKind::kWith: {
      const auto& s = static_cast<const WithStmt&>(stmt);
      auto frame = std::make_shared<Frame>(scope_);
      for (const auto& [name, value] : s.assignments) frame->vars[name] = eval(*value);  // outer scope
      Restore<std::shared_ptr<Frame>> in_frame(scope_, frame);
      return exec_body(s.body);
    }
    case StmtKind::kScope: {
      Restore<std::shared_ptr<Frame>> in_frame(scope_, std::make_shared<Frame>(scope_));
      return exec_body(static_cast<const ScopeStmt&>(stmt).body);
    }
  }
  QVL_ASSERT(false);
}

Interpreter::Flow Interpreter::exec_for(const ForStmt& stmt) {
  const Value iterable = eval(*stmt.iterable);
  std::shared_ptr<const ArrayData> items;
  if (iterable.is_array() && !stmt.filter) {
    items = iterable.array_ptr();  // iterate the list itself, no copy
  } else {
    std::vector<Value> all = iterate(iterable);
    budget_.charge(all.size());
    if (stmt.filter) {
      // `for x in xs if cond`: jinja2 filters first, so loop.index/length count kept items only.
      std::vector<Value> kept;
      for (Value& item : all) {
        budget_.count_iteration();
        auto frame = std::make_shared<Frame>(scope_);
        assign(stmt.target, item, *frame);
        Restore<std::shared_ptr<Frame>> in_frame(scope_, frame);
        if (truthy(eval(*stmt.filter))) kept.push_back(std::move(item));
      }
      all = std::move(kept);
    }
    auto data = std::make_shared<ArrayData>();
    data->items = std::move(all);
    items = std::move(data);
  }
  if (items->items.empty()) return exec_body(stmt.else_body);

  const std::shared_ptr<Frame> outer = scope_;
  Restore<std::shared_ptr<Frame>> restore_scope(scope_, scope_);
  for (size_t i = 0; i < items->items.size(); ++i) {
    budget_.count_iteration();
    // Each iteration starts from a fresh scope: jinja2 does not carry `set` across iterations.
    auto frame = std::make_shared<Frame>(outer);
    assign(stmt.target, items->items[i], *frame);
    auto loop = std::make_shared<LoopData>();
    loop->items = items;
    loop->index0 = static_cast<int64_t>(i);
    frame->vars["loop"] = Value(std::shared_ptr<const LoopData>(std::move(loop)));
    scope_ = frame;
    if (exec_body(stmt.body) == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

void Interpreter::exec_set(const SetStmt& stmt) {
  if (stmt.value) {
    assign(stmt.target, eval(*stmt.value), *scope_);
    return;
  }
  std::string text = capture(stmt.body, std::make_shared<Frame>(scope_));
  assign(stmt.target, Value(std::move(text)), *scope_);
}

void Interpreter::assign(const AssignTarget& target, const Value& value, Frame& frame) {
  if (!target.namespace_attr.empty()) {
    const Value ns = lookup(target.names[0]);
    if (!ns.is_namespace())
      fail(ErrorKind::kInvalidArgument, "cannot assign attribute '", target.namespace_attr, "' on '",
           target.names[0], "', which is not a namespace()");
    // A namespace holding a namespace could form a reference cycle; no chat template needs it.
    if (value.contains_namespace()) fail(ErrorKind::kUnsupported, "storing a namespace inside a namespace");
    if (value.depth() >= kMaxValueDepth)
      fail(ErrorKind::kLimitExceeded, "value nesting deeper than ", kMaxValueDepth, " levels");
    ns.as_namespace().attrs.set(target.namespace_attr, value);
    return;
  }
  if (!target.unpack) {
    frame.vars[target.names[0]] = value;
    return;
  }
  const std::vector<Value> parts = iterate(value);
  if (parts.size() != target.names.size())
    fail(ErrorKind::kInvalidArgument, parts.size() > target.names.size() ? "too many" : "not enough",
         " values to unpack (expected ", target.names.size(), ", got ", parts.size(), ")");
  for (size_t i = 0; i < parts.size(); ++i) frame.vars[target.names[i]] = parts[i];
}

std::string Interpreter::capture(const Body& body, std::shared_ptr<Frame> scope) {
  std::string buffer;
  Restore<std::string*> to_buffer(out_, &buffer);
  Restore<std::shared_ptr<Frame>> in_scope(scope_, std::move(scope));
  exec_body(body);
  return buffer;
}

// ---- expressions -----------------------------------------------------------------------------

Value Interpreter::lookup(const std::string& name) const {
  for (const Frame* frame = scope_.get(); frame; frame = frame->parent.get()) {
    const auto it = frame->vars.find(name);
    if (it != frame->vars.end()) return it->second;
  }
  return Value::undefined("'" + name + "' is undefined");
}

Args Interpreter::eval_args(const CallArgs& call_args) {
  Args args;
  args.positional.reserve(call_args.positional.size());
  for (const ExprPtr& arg : call_args.positional) args.positional.push_back(eval(*arg));
  for (const auto& [name, arg] : call_args.keyword) args.keyword.emplace_back(name, eval(*arg));
  return args;
}

Value Interpreter::eval(const Expr& expr) {
  DepthGuard guard(*this);
  budget_.charge(1);
  line_ = expr.line;
  switch (expr.kind) {
    case ExprKind::kLiteral: return static_cast<const LiteralExpr&>(expr).value;
    case ExprKind::kName: return lookup(static_cast<const NameExpr&>(expr).name);
    case ExprKind::kList: {
      const auto& e = static_cast<const ListExpr&>(expr);
      std::vector<Value> items;
      items.reserve(e.items.size());
      for (const ExprPtr& item : e.items) items.push_back(eval(*item));
      return make_array(std::move(items), e.is_tuple);
    }
    case ExprKind::kDict: {
      const auto& e = static_cast<const DictExpr&>(expr);
      std::vector<std::pair<std::string, Value>> entries;
      entries.reserve(e.entries.size());
      for (const auto& [key_expr, value_expr] : e.entries) {
        const Value key = eval(*key_expr);
        if (!key.is_string()) fail(ErrorKind::kUnsupported, "dict literal keys must be strings, not ", type_name(key));
        entries.emplace_back(key.as_string(), eval(*value_expr));
      }
      return make_object(std::move(entries));
    }
    case ExprKind::kGetAttr: {
      const auto& e = static_cast<const GetAttrExpr&>(expr);
      return get_attr(eval(*e.object), e.attr);
    }
    case ExprKind::kGetItem: {
      const auto& e = static_cast<const GetItemExpr&>(expr);
      const Value object = eval(*e.object);
      return get_item(object, eval(*e.key));
    }
    case ExprKind::kSlice: return eval_slice(static_cast<const SliceExpr&>(expr));
    case ExprKind::kUnary: {
      const auto& e = static_cast<const UnaryExpr&>(expr);
      const Value operand = eval(*e.operand);
      if (e.op == UnaryOp::kNot) return Value(!truthy(operand));
      if (operand.is_undefined()) undefined_error(operand);
      if (operand.is_float()) return Value(e.op == UnaryOp::kNegate ? -operand.as_float() : operand.as_float());
      if (operand.is_int() || operand.is_bool()) {
        const int64_t v = operand.to_int();
        if (e.op == UnaryOp::kPlus) return Value(v);
        if (v == INT64_MIN) fail(ErrorKind::kUnsupported, "integer overflow");
        return Value(-v);
      }
      fail(ErrorKind::kInvalidArgument, "bad operand type for unary ", e.op == UnaryOp::kNegate ? "-" : "+", ": '",
           type_name(operand), "'");
    }
    case ExprKind::kBinary: return eval_binary(static_cast<const BinaryExpr&>(expr));
    case ExprKind::kCompare: return eval_compare(static_cast<const CompareExpr&>(expr));
    case ExprKind::kCondition: {
      const auto& e = static_cast<const ConditionExpr&>(expr);
      if (truthy(eval(*e.condition))) return eval(*e.then_value);
      if (e.else_value) return eval(*e.else_value);
      return Value::undefined("the inline if-expression evaluated to false and no else section was defined");
    }
    case ExprKind::kCall: {
      const auto& e = static_cast<const CallExpr&>(expr);
      const Value callee = eval(*e.callee);
      if (!callee.is_callable()) {
        if (callee.is_undefined()) undefined_error(callee);
        fail(ErrorKind::kInvalidArgument, "'", type_name(callee), "' object is not callable");
      }
      const Args args = eval_args(e.args);
      line_ = expr.line;
      return call(callee, args);
    }
    case ExprKind::kFilter: {
      const auto& e = static_cast<const FilterExpr&>(expr);
      const Value input = eval(*e.operand);
      const Args args = eval_args(e.args);
      line_ = expr.line;
      return apply_filter(budget_, e.name, input, args);
    }
    case ExprKind::kTest: {
      const auto& e = static_cast<const TestExpr&>(expr);
      const Value input = eval(*e.operand);
      const Args args = eval_args(e.args);
      line_ = expr.line;
      return Value(apply_test(budget_, e.name, input, args));
    }
  }
  QVL_ASSERT(false);
}

Value Interpreter::eval_binary(const BinaryExpr& expr) {
  // and/or return an operand, as in Python, and short-circuit.
  if (expr.op == BinaryOp::kAnd || expr.op == BinaryOp::kOr) {
    Value left = eval(*expr.left);
    if (truthy(left) == (expr.op == BinaryOp::kOr)) return left;
    return eval(*expr.right);
  }
  const Value left = eval(*expr.left);
  const Value right = eval(*expr.right);
  if (expr.op == BinaryOp::kConcat) {
    std::string text = to_str(left, limits_.max_output_bytes);
    append_str(text, right, limits_.max_output_bytes);
    return make_text(budget_, std::move(text));
  }
  return arithmetic(budget_, expr.op, left, right);
}

Value Interpreter::eval_compare(const CompareExpr& expr) {
  Value left = eval(*expr.first);
  for (const auto& [op, right_expr] : expr.rest) {
    Value right = eval(*right_expr);
    if (!compare(op, left, right)) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

Value Interpreter::eval_slice(const SliceExpr& expr) {
  const Value object = eval(*expr.object);
  Value start, stop, step;
  if (expr.start) start = eval(*expr.start);
  if (expr.stop) stop = eval(*expr.stop);
  if (expr.step) step = eval(*expr.step);
  return slice(budget_, object, expr.start ? &start : nullptr, expr.stop ? &stop : nullptr,
               expr.step ? &step : nullptr);
}

Value Interpreter::call(const Value& callee, const Args& args) {
  const CallableData& fn = callee.as_callable();
  if (fn.kind == CallableData::Kind::kMacro) return call_macro(fn, args);
  return call_builtin(budget_, fn, args);
}

Value Interpreter::call_macro(const CallableData& fn, const Args& args) {
  DepthGuard guard(*this);
  const MacroStmt& macro = *fn.macro;
  if (args.positional.size() > macro.params.size())
    fail(ErrorKind::kInvalidArgument, "macro '", macro.name, "' takes not more than ", macro.params.size(),
         " argument(s)");
  std::shared_ptr<Frame> closure = fn.closure.lock();
  auto frame = std::make_shared<Frame>(closure ? closure : root_);
  std::vector<bool> given(macro.params.size(), false);
  for (size_t i = 0; i < args.positional.size(); ++i) {
    frame->vars[macro.params[i].first] = args.positional[i];
    given[i] = true;
  }
  for (const auto& keyword : args.keyword) {
    // Not a structured binding: clang 14 cannot capture one in the lambda below.
    const auto& name = keyword.first;
    const auto& value = keyword.second;
    const auto it = std::find_if(macro.params.begin(), macro.params.end(),
                                 [&](const auto& param) { return param.first == name; });
    if (it == macro.params.end())
      fail(ErrorKind::kInvalidArgument, "macro '", macro.name, "' has no parameter named '", name, "'");
    const size_t index = static_cast<size_t>(it - macro.params.begin());
    if (given[index]) fail(ErrorKind::kInvalidArgument, "macro '", macro.name, "' got multiple values for '", name, "'");
    frame->vars[name] = value;
    given[index] = true;
  }
  {
    // Defaults are evaluated at call time inside the macro, so they can use earlier parameters.
    Restore<std::shared_ptr<Frame>> in_frame(scope_, frame);
    for (size_t i = 0; i < macro.params.size(); ++i) {
      if (given[i]) continue;
      const auto& [name, default_value] = macro.params[i];
      frame->vars[name] =
          default_value ? eval(*default_value) : Value::undefined("parameter '" + name + "' was not provided");
    }
  }
  return Value(capture(macro.body, frame));
}

}  // namespace qvl::jinja
