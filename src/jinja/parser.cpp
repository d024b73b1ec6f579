#include "jinja/parser.h"

#include <algorithm>
#include <initializer_list>

#include "core/check.h"
#include "jinja/builtins.h"
#include "jinja/lexer.h"

namespace qvl::jinja {
namespace {

using Names = std::initializer_list<std::string_view>;

bool contains_name(Names names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, const Limits& limits) : tokens_(std::move(tokens)), limits_(limits) {}

  std::unique_ptr<TemplateAst> parse() {
    auto ast = std::make_unique<TemplateAst>();
    std::string end_tag;
    ast->body = parse_body({}, current(), end_tag);
    return ast;
  }

 private:
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  const Limits& limits_;
  int depth_ = 0;
  int loop_depth_ = 0;  // for loops enclosing the current statement, within the current macro

  // Bounds recursion on hostile input such as "((((((...".
  class DepthGuard {
   public:
    explicit DepthGuard(Parser& p) : p_(p) {
      if (++p_.depth_ > p_.limits_.max_parse_depth) {
        const Token& t = p_.current();
        fail(ErrorKind::kLimitExceeded, "chat template nests deeper than ", p_.limits_.max_parse_depth,
             " levels at line ", t.line, ", column ", t.column);
      }
    }
    ~DepthGuard() { --p_.depth_; }

   private:
    Parser& p_;
  };

  // Records a finished node's subtree height and bounds it. Chains such as a ~ b ~ c or
  // x|f|g|h are parsed by loops rather than recursion, so DepthGuard alone would not bound them.
  ExprPtr seal(ExprPtr node) {
    int child = 0;
    const auto see = [&](const ExprPtr& e) {
      if (e) child = std::max(child, e->height);
    };
    const auto see_args = [&](const CallArgs& args) {
      for (const auto& e : args.positional) see(e);
      for (const auto& [name, e] : args.keyword) see(e);
    };
    switch (node->kind) {
      case ExprKind::kLiteral:
      case ExprKind::kName: break;
      case ExprKind::kList: for (const auto& e : static_cast<ListExpr&>(*node).items) see(e); break;
      case ExprKind::kDict:
        for (const auto& [k, v] : static_cast<DictExpr&>(*node).entries) see(k), see(v);
        break;
      case ExprKind::kGetAttr: see(static_cast<GetAttrExpr&>(*node).object); break;
      case ExprKind::kGetItem: {
        auto& e = static_cast<GetItemExpr&>(*node);
        see(e.object), see(e.key);
        break;
      }
      case ExprKind::kSlice: {
        auto& e = static_cast<SliceExpr&>(*node);
        see(e.object), see(e.start), see(e.stop), see(e.step);
        break;
      }
      case ExprKind::kUnary: see(static_cast<UnaryExpr&>(*node).operand); break;
      case ExprKind::kBinary: {
        auto& e = static_cast<BinaryExpr&>(*node);
        see(e.left), see(e.right);
        break;
      }
      case ExprKind::kCompare: {
        auto& e = static_cast<CompareExpr&>(*node);
        see(e.first);
        for (const auto& [op, operand] : e.rest) see(operand);
        break;
      }
      case ExprKind::kCondition: {
        auto& e = static_cast<ConditionExpr&>(*node);
        see(e.condition), see(e.then_value), see(e.else_value);
        break;
      }
      case ExprKind::kCall: {
        auto& e = static_cast<CallExpr&>(*node);
        see(e.callee), see_args(e.args);
        break;
      }
      case ExprKind::kFilter: {
        auto& e = static_cast<FilterExpr&>(*node);
        see(e.operand), see_args(e.args);
        break;
      }
      case ExprKind::kTest: {
        auto& e = static_cast<TestExpr&>(*node);
        see(e.operand), see_args(e.args);
        break;
      }
    }
    node->height = child + 1;
    if (node->height > limits_.max_parse_depth)
      fail(ErrorKind::kLimitExceeded, "chat template expression nests deeper than ", limits_.max_parse_depth,
           " levels at line ", node->line, ", column ", node->column);
    return node;
  }

  const Token& current() const { return tokens_[pos_]; }
  const Token& peek(size_t ahead = 1) const { return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)]; }
  const Token& advance() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case TokenType::kName:
      case TokenType::kOperator:
      case TokenType::kInteger:
      case TokenType::kFloat: return "'" + t.text + "'";
      default: return token_type_name(t.type);
    }
  }

  [[noreturn]] void error(const Token& at, const std::string& message) const {
    syntax_error(at.line, at.column, message);
  }
  [[noreturn]] void unsupported(const Token& at, const std::string& what) const {
    fail(ErrorKind::kUnsupported, "chat template uses ", what, ", which qvl does not support (line ", at.line,
         ", column ", at.column, ")");
  }

  bool is_op(std::string_view op) const { return current().type == TokenType::kOperator && current().text == op; }
  bool is_name(std::string_view name) const { return current().type == TokenType::kName && current().text == name; }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!is_name(name)) return false;
    advance();
    return true;
  }
  void expect_op(std::string_view op) {
    if (!skip_op(op)) error(current(), "expected '" + std::string(op) + "', got " + describe(current()));
  }
  void expect_name(std::string_view name) {
    if (!skip_name(name)) error(current(), "expected '" + std::string(name) + "', got " + describe(current()));
  }
  const Token& expect(TokenType type) {
    if (current().type != type)
      error(current(), std::string("expected ") + token_type_name(type) + ", got " + describe(current()));
    return advance();
  }
  std::string expect_identifier() { return expect(TokenType::kName).text; }

  // ---- statements ------------------------------------------------------------------------

  // Parses until a `{% name %}` with name in `end_tags` (returned in `end_tag`, with the cursor
  // just after the name) or the end of the template (only allowed when end_tags is empty).
  Body parse_body(Names end_tags, const Token& opener, std::string& end_tag) {
    Body body;
    while (true) {
      const Token& t = current();
      switch (t.type) {
        case TokenType::kData:
          body.push_back(std::make_unique<TextStmt>(t.line, t.text));
          advance();
          break;
        case TokenType::kVariableBegin: {
          advance();
          auto value = parse_tuple(true, {}, false);
          expect(TokenType::kVariableEnd);
          body.push_back(std::make_unique<OutputStmt>(t.line, std::move(value)));
          break;
        }
        case TokenType::kBlockBegin: {
          const Token& name = peek();
          if (name.type == TokenType::kName && contains_name(end_tags, name.text)) {
            advance();
            end_tag = advance().text;
            return body;
          }
          advance();
          body.push_back(parse_statement());
          break;
        }
        case TokenType::kEnd: {
          if (end_tags.size() == 0) return body;
          std::string wanted;
          for (std::string_view tag : end_tags) wanted += (wanted.empty() ? "'" : " or '") + std::string(tag) + "'";
          error(opener, "unexpected end of template: the tag opened here is never closed (looking for " + wanted +
                            ")");
        }
        default:
          error(t, "unexpected " + describe(t));
      }
    }
  }

  StmtPtr parse_statement() {
    DepthGuard guard(*this);
    const Token& keyword = current();
    if (keyword.type != TokenType::kName) error(keyword, "tag name expected, got " + describe(keyword));
    const std::string& name = keyword.text;
    if (name == "if") return parse_if();
    if (name == "for") return parse_for();
    if (name == "set") return parse_set();
    if (name == "macro") return parse_macro();
    if (name == "with") return parse_with();
    if (name == "generation") {
      // transformers' AssistantTracker extension: marks assistant text; renders its body.
      advance();
      expect(TokenType::kBlockEnd);
      auto stmt = std::make_unique<ScopeStmt>(keyword.line);
      std::string end_tag;
      stmt->body = parse_body({"endgeneration"}, keyword, end_tag);
      expect(TokenType::kBlockEnd);
      return stmt;
    }
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) error(keyword, "'" + name + "' outside of a loop");
      advance();
      expect(TokenType::kBlockEnd);
      return std::make_unique<LoopControlStmt>(name == "break" ? StmtKind::kBreak : StmtKind::kContinue,
                                               keyword.line);
    }
    static constexpr std::string_view kUnsupportedTags[] = {"call", "filter", "include", "import", "from",
                                                            "extends", "block", "autoescape", "do", "trans"};
    for (std::string_view tag : kUnsupportedTags)
      if (name == tag) unsupported(keyword, "the '" + name + "' tag");
    error(keyword, "unknown tag '" + name + "'");
  }

  void expect_block_end() { expect(TokenType::kBlockEnd); }

  StmtPtr parse_if() {
    const Token& keyword = advance();
    auto stmt = std::make_unique<IfStmt>(keyword.line);
    auto condition = parse_tuple(false, {}, false);
    expect_block_end();
    while (true) {
      std::string end_tag;
      Body body = parse_body({"elif", "else", "endif"}, keyword, end_tag);
      stmt->branches.emplace_back(std::move(condition), std::move(body));
      if (end_tag == "elif") {
        condition = parse_tuple(false, {}, false);
        expect_block_end();
        continue;
      }
      if (end_tag == "else") {
        expect_block_end();
        stmt->else_body = parse_body({"endif"}, keyword, end_tag);
      }
      expect_block_end();
      return stmt;
    }
  }

  AssignTarget parse_assign_target(Names end_names, bool allow_namespace) {
    AssignTarget target;
    const bool parenthesized = skip_op("(");
    target.names.push_back(expect_identifier());
    if (allow_namespace && !parenthesized && is_op(".")) {
      advance();
      target.namespace_attr = expect_identifier();
      return target;
    }
    while (skip_op(",")) {
      target.unpack = true;
      if (current().type != TokenType::kName || contains_name(end_names, current().text)) break;
      target.names.push_back(expect_identifier());
    }
    if (parenthesized) expect_op(")");
    for (const auto& n : target.names)
      if (n == "true" || n == "false" || n == "none" || n == "True" || n == "False" || n == "None")
        error(current(), "cannot assign to '" + n + "'");
    return target;
  }

  StmtPtr parse_for() {
    const Token& keyword = advance();
    auto stmt = std::make_unique<ForStmt>(keyword.line);
    stmt->target = parse_assign_target({"in"}, false);
    expect_name("in");
    stmt->iterable = parse_tuple(false, {"recursive"}, false);
    if (skip_name("if")) stmt->filter = parse_expression(true);
    if (is_name("recursive")) unsupported(current(), "recursive for loops");
    expect_block_end();
    std::string end_tag;
    ++loop_depth_;
    stmt->body = parse_body({"endfor", "else"}, keyword, end_tag);
    --loop_depth_;
    if (end_tag == "else") {
      expect_block_end();
      stmt->else_body = parse_body({"endfor"}, keyword, end_tag);
    }
    expect_block_end();
    return stmt;
  }

  StmtPtr parse_set() {
    const Token& keyword = advance();
    auto stmt = std::make_unique<SetStmt>(keyword.line);
    stmt->target = parse_assign_target({}, true);
    if (skip_op("=")) {
      stmt->value = parse_tuple(true, {}, false);
      expect_block_end();
      return stmt;
    }
    if (is_op("|")) unsupported(current(), "filters on a {% set %} block");
    if (stmt->target.unpack) error(current(), "expected '='");
    expect_block_end();
    std::string end_tag;
    stmt->body = parse_body({"endset"}, keyword, end_tag);
    expect_block_end();
    return stmt;
  }

  StmtPtr parse_macro() {
    const Token& keyword = advance();
    auto stmt = std::make_unique<MacroStmt>(keyword.line);
    stmt->name = expect_identifier();
    expect_op("(");
    bool has_default = false;
    while (!is_op(")")) {
      if (!stmt->params.empty()) expect_op(",");
      if (is_op(")")) break;
      const Token& param = current();
      std::string param_name = expect_identifier();
      ExprPtr default_value;
      if (skip_op("=")) {
        default_value = parse_expression(true);
        has_default = true;
      } else if (has_default) {
        error(param, "non-default argument follows default argument");
      }
      stmt->params.emplace_back(std::move(param_name), std::move(default_value));
    }
    expect_op(")");
    expect_block_end();
    const int outer_loops = loop_depth_;
    loop_depth_ = 0;  // break/continue cannot cross a macro boundary
    std::string end_tag;
    stmt->body = parse_body({"endmacro"}, keyword, end_tag);
    loop_depth_ = outer_loops;
    expect_block_end();
    return stmt;
  }

  StmtPtr parse_with() {
    const Token& keyword = advance();
    auto stmt = std::make_unique<WithStmt>(keyword.line);
    while (current().type != TokenType::kBlockEnd) {
      if (!stmt->assignments.empty()) expect_op(",");
      std::string name = expect_identifier();
      expect_op("=");
      stmt->assignments.emplace_back(std::move(name), parse_expression(true));
    }
    expect_block_end();
    std::string end_tag;
    stmt->body = parse_body({"endwith"}, keyword, end_tag);
    expect_block_end();
    return stmt;
  }

  // ---- expressions -----------------------------------------------------------------------

  bool is_tuple_end(Names extra_end) const {
    const Token& t = current();
    if (t.type == TokenType::kVariableEnd || t.type == TokenType::kBlockEnd || t.type == TokenType::kEnd)
      return true;
    if (t.type == TokenType::kOperator && t.text == ")") return true;
    return t.type == TokenType::kName && contains_name(extra_end, t.text);
  }

  // `a, b` is a tuple wherever jinja2 allows it: {{ }}, set values, for iterables, parentheses.
  ExprPtr parse_tuple(bool with_condexpr, Names extra_end, bool explicit_parentheses) {
    const Token& start = current();
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      items.push_back(with_condexpr ? parse_expression(true) : parse_or());
      if (is_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items.front());
      if (!explicit_parentheses) error(current(), "expected an expression, got " + describe(current()));
    }
    auto tuple = std::make_unique<ListExpr>(start.line, start.column, true);
    tuple->items = std::move(items);
    return seal(std::move(tuple));
  }

  ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

  ExprPtr parse_condexpr() {
    DepthGuard guard(*this);
    ExprPtr expr = parse_or();
    while (is_name("if")) {
      const Token& keyword = advance();
      auto cond = std::make_unique<ConditionExpr>(keyword.line, keyword.column);
      cond->then_value = std::move(expr);
      cond->condition = parse_or();
      if (skip_name("else")) cond->else_value = parse_condexpr();
      expr = seal(std::move(cond));
    }
    return expr;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      const Token& op = advance();
      left = seal(std::make_unique<BinaryExpr>(op.line, op.column, BinaryOp::kOr, std::move(left), parse_and()));
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      const Token& op = advance();
      left = seal(std::make_unique<BinaryExpr>(op.line, op.column, BinaryOp::kAnd, std::move(left), parse_not()));
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      const Token& op = advance();
      return seal(std::make_unique<UnaryExpr>(op.line, op.column, UnaryOp::kNot, parse_not()));
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const Token& start = current();
    ExprPtr first = parse_math1();
    std::unique_ptr<CompareExpr> compare;
    while (true) {
      CompareOp op;
      const Token& t = current();
      if (t.type == TokenType::kOperator && t.text == "==") op = CompareOp::kEq;
      else if (t.type == TokenType::kOperator && t.text == "!=") op = CompareOp::kNe;
      else if (t.type == TokenType::kOperator && t.text == "<") op = CompareOp::kLt;
      else if (t.type == TokenType::kOperator && t.text == "<=") op = CompareOp::kLe;
      else if (t.type == TokenType::kOperator && t.text == ">") op = CompareOp::kGt;
      else if (t.type == TokenType::kOperator && t.text == ">=") op = CompareOp::kGe;
      else if (is_name("in")) op = CompareOp::kIn;
      else if (is_name("not") && peek().type == TokenType::kName && peek().text == "in") {
        advance();
        op = CompareOp::kNotIn;
      } else {
        break;
      }
      advance();
      if (!compare) compare = std::make_unique<CompareExpr>(start.line, start.column, std::move(first));
      compare->rest.emplace_back(op, parse_math1());
    }
    if (compare) return seal(std::move(compare));
    return first;
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& op = advance();
      left = seal(std::make_unique<BinaryExpr>(op.line, op.column, op.text == "+" ? BinaryOp::kAdd : BinaryOp::kSub,
                                          std::move(left), parse_concat()));
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (is_op("~")) {
      const Token& op = advance();
      left = seal(std::make_unique<BinaryExpr>(op.line, op.column, BinaryOp::kConcat, std::move(left), parse_math2()));
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& op = advance();
      const BinaryOp kind = op.text == "*"    ? BinaryOp::kMul
                            : op.text == "/"  ? BinaryOp::kDiv
                            : op.text == "//" ? BinaryOp::kFloorDiv
                                              : BinaryOp::kMod;
      left = seal(std::make_unique<BinaryExpr>(op.line, op.column, kind, std::move(left), parse_pow()));
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      const Token& op = advance();
      left = seal(std::make_unique<BinaryExpr>(op.line, op.column, BinaryOp::kPow, std::move(left), parse_unary(true)));
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    const Token& t = current();
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      advance();
      node = seal(std::make_unique<UnaryExpr>(t.line, t.column, t.text == "-" ? UnaryOp::kNegate : UnaryOp::kPlus,
                                         parse_unary(false)));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    DepthGuard guard(*this);
    const Token& t = current();
    switch (t.type) {
      case TokenType::kName: {
        advance();
        if (t.text == "true" || t.text == "True") return seal(std::make_unique<LiteralExpr>(t.line, t.column, Value(true)));
        if (t.text == "false" || t.text == "False")
          return seal(std::make_unique<LiteralExpr>(t.line, t.column, Value(false)));
        if (t.text == "none" || t.text == "None") return seal(std::make_unique<LiteralExpr>(t.line, t.column, Value::none()));
        return seal(std::make_unique<NameExpr>(t.line, t.column, t.text));
      }
      case TokenType::kString: {
        std::string text;
        while (current().type == TokenType::kString) text += advance().text;  // "a" "b" concatenates
        return seal(std::make_unique<LiteralExpr>(t.line, t.column, Value(std::move(text))));
      }
      case TokenType::kInteger:
        advance();
        return seal(std::make_unique<LiteralExpr>(t.line, t.column, Value(t.int_value)));
      case TokenType::kFloat:
        advance();
        return seal(std::make_unique<LiteralExpr>(t.line, t.column, Value(t.float_value)));
      case TokenType::kOperator:
        if (t.text == "(") {
          advance();
          ExprPtr inner = parse_tuple(true, {}, true);
          expect_op(")");
          return inner;
        }
        if (t.text == "[") return parse_list();
        if (t.text == "{") return parse_dict();
        break;
      default:
        break;
    }
    error(t, "unexpected " + describe(t));
  }

  ExprPtr parse_list() {
    const Token& open = advance();
    auto list = std::make_unique<ListExpr>(open.line, open.column, false);
    while (!is_op("]")) {
      if (!list->items.empty()) expect_op(",");
      if (is_op("]")) break;
      list->items.push_back(parse_expression(true));
    }
    expect_op("]");
    return seal(std::move(list));
  }

  ExprPtr parse_dict() {
    const Token& open = advance();
    auto dict = std::make_unique<DictExpr>(open.line, open.column);
    while (!is_op("}")) {
      if (!dict->entries.empty()) expect_op(",");
      if (is_op("}")) break;
      ExprPtr key = parse_expression(true);
      expect_op(":");
      dict->entries.emplace_back(std::move(key), parse_expression(true));
    }
    expect_op("}");
    return seal(std::move(dict));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".") || is_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        node = parse_filter(std::move(node));
      } else if (is_name("is")) {
        node = parse_test(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Token& op = advance();
    if (op.text == ".") {
      const Token& attr = current();
      if (attr.type == TokenType::kName) {
        advance();
        return seal(std::make_unique<GetAttrExpr>(op.line, op.column, std::move(node), attr.text));
      }
      if (attr.type == TokenType::kInteger) {  // foo.0 is foo[0]
        advance();
        return seal(std::make_unique<GetItemExpr>(op.line, op.column, std::move(node),
                                             seal(std::make_unique<LiteralExpr>(attr.line, attr.column,
                                                                           Value(attr.int_value)))));
      }
      error(attr, "expected name or number after '.', got " + describe(attr));
    }
    // '[' index or slice ']'
    ExprPtr start, stop, step;
    bool is_slice = false;
    if (!is_op(":")) start = parse_expression(true);
    if (skip_op(":")) {
      is_slice = true;
      if (!is_op("]") && !is_op(":")) stop = parse_expression(true);
      if (skip_op(":") && !is_op("]")) step = parse_expression(true);
    }
    if (is_op(",")) unsupported(current(), "tuple subscripts");
    expect_op("]");
    if (!is_slice) return seal(std::make_unique<GetItemExpr>(op.line, op.column, std::move(node), std::move(start)));
    auto slice = std::make_unique<SliceExpr>(op.line, op.column);
    slice->object = std::move(node);
    slice->start = std::move(start);
    slice->stop = std::move(stop);
    slice->step = std::move(step);
    return seal(std::move(slice));
  }

  CallArgs parse_call_args() {
    expect_op("(");
    CallArgs args;
    while (!is_op(")")) {
      if (!args.positional.empty() || !args.keyword.empty()) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (is_op("*") || is_op("**")) unsupported(current(), "*args/**kwargs in calls");
      if (current().type == TokenType::kName && peek().type == TokenType::kOperator && peek().text == "=") {
        std::string name = advance().text;
        advance();
        for (const auto& [existing, unused] : args.keyword)
          if (existing == name) error(current(), "keyword argument '" + name + "' repeated");
        args.keyword.emplace_back(std::move(name), parse_expression(true));
      } else {
        if (!args.keyword.empty()) error(current(), "positional argument follows keyword argument");
        args.positional.push_back(parse_expression(true));
      }
    }
    expect_op(")");
    return args;
  }

  ExprPtr parse_call(ExprPtr callee) {
    const Token& open = current();
    auto call = std::make_unique<CallExpr>(open.line, open.column, std::move(callee));
    call->args = parse_call_args();
    return seal(std::move(call));
  }

  std::string parse_dotted_name() {
    std::string name = expect_identifier();
    while (is_op(".")) {
      advance();
      name.push_back('.');
      name += expect_identifier();
    }
    return name;
  }

  ExprPtr parse_filter(ExprPtr node) {
    const Token& bar = advance();
    const Token& name_token = current();
    std::string name = parse_dotted_name();
    if (!is_filter_name(name)) error(name_token, "no filter named '" + name + "'");
    auto filter = std::make_unique<FilterExpr>(bar.line, bar.column, std::move(node), std::move(name));
    if (is_op("(")) filter->args = parse_call_args();
    return seal(std::move(filter));
  }

  ExprPtr parse_test(ExprPtr node) {
    const Token& keyword = advance();
    const bool negated = skip_name("not");
    const Token& name_token = current();
    std::string name = parse_dotted_name();
    if (!is_test_name(name)) error(name_token, "no test named '" + name + "'");
    auto test = std::make_unique<TestExpr>(keyword.line, keyword.column, std::move(node), std::move(name));
    const Token& t = current();
    if (is_op("(")) {
      test->args = parse_call_args();
    } else if ((t.type == TokenType::kName || t.type == TokenType::kString || t.type == TokenType::kInteger ||
                t.type == TokenType::kFloat || is_op("(") || is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      // `x is divisibleby 3`, `x is sameas none`: one argument without parentheses.
      if (is_name("is")) error(t, "you cannot chain multiple tests with 'is'");
      test->args.positional.push_back(parse_postfix(parse_primary()));
    }
    if (!negated) return seal(std::move(test));
    ExprPtr sealed = seal(std::move(test));
    return seal(std::make_unique<UnaryExpr>(keyword.line, keyword.column, UnaryOp::kNot, std::move(sealed)));
  }
};

}  // namespace

std::unique_ptr<TemplateAst> parse_template(std::string_view source, const Limits& limits) {
  return Parser(tokenize(source), limits).parse();
}

}  // namespace qvl::jinja
