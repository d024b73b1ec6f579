// Syntax tree of the Jinja2 subset, produced by the parser and walked by the interpreter.
// Nodes are immutable after parsing, so one parsed template can render on many threads.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "jinja/value.h"

namespace qvl::jinja {

// ---- expressions ---------------------------------------------------------------------------

enum class ExprKind {
  kLiteral, kName, kList, kDict, kGetAttr, kGetItem, kSlice, kUnary, kBinary, kCompare, kCondition,
  kCall, kFilter, kTest,
};
enum class UnaryOp { kNot, kNegate, kPlus };
enum class BinaryOp { kAnd, kOr, kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow, kConcat };
enum class CompareOp { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

struct Expr {
  Expr(ExprKind k, int l, int c) : kind(k), line(l), column(c) {}
  virtual ~Expr() = default;
  ExprKind kind;
  int line;
  int column;
  int height = 1;  // of this subtree; the parser bounds it so evaluation and destruction recursion stay shallow
};
using ExprPtr = std::unique_ptr<Expr>;

struct CallArgs {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
};

struct LiteralExpr : Expr {
  LiteralExpr(int l, int c, Value v) : Expr(ExprKind::kLiteral, l, c), value(std::move(v)) {}
  Value value;  // None, bool, int, float or str
};
struct NameExpr : Expr {
  NameExpr(int l, int c, std::string n) : Expr(ExprKind::kName, l, c), name(std::move(n)) {}
  std::string name;
};
struct ListExpr : Expr {  // [a, b] or (a, b)
  ListExpr(int l, int c, bool tuple) : Expr(ExprKind::kList, l, c), is_tuple(tuple) {}
  std::vector<ExprPtr> items;
  bool is_tuple;
};
struct DictExpr : Expr {
  DictExpr(int l, int c) : Expr(ExprKind::kDict, l, c) {}
  std::vector<std::pair<ExprPtr, ExprPtr>> entries;
};
struct GetAttrExpr : Expr {  // a.b
  GetAttrExpr(int l, int c, ExprPtr o, std::string a)
      : Expr(ExprKind::kGetAttr, l, c), object(std::move(o)), attr(std::move(a)) {}
  ExprPtr object;
  std::string attr;
};
struct GetItemExpr : Expr {  // a[b], a.0
  GetItemExpr(int l, int c, ExprPtr o, ExprPtr k)
      : Expr(ExprKind::kGetItem, l, c), object(std::move(o)), key(std::move(k)) {}
  ExprPtr object;
  ExprPtr key;
};
struct SliceExpr : Expr {  // a[start:stop:step], each part optional
  SliceExpr(int l, int c) : Expr(ExprKind::kSlice, l, c) {}
  ExprPtr object, start, stop, step;
};
struct UnaryExpr : Expr {
  UnaryExpr(int l, int c, UnaryOp o, ExprPtr e) : Expr(ExprKind::kUnary, l, c), op(o), operand(std::move(e)) {}
  UnaryOp op;
  ExprPtr operand;
};
struct BinaryExpr : Expr {
  BinaryExpr(int l, int c, BinaryOp o, ExprPtr a, ExprPtr b)
      : Expr(ExprKind::kBinary, l, c), op(o), left(std::move(a)), right(std::move(b)) {}
  BinaryOp op;
  ExprPtr left, right;
};
struct CompareExpr : Expr {  // a < b <= c chains like Python
  CompareExpr(int l, int c, ExprPtr f) : Expr(ExprKind::kCompare, l, c), first(std::move(f)) {}
  ExprPtr first;
  std::vector<std::pair<CompareOp, ExprPtr>> rest;
};
struct ConditionExpr : Expr {  // a if cond else b (else part optional: yields Undefined)
  ConditionExpr(int l, int c) : Expr(ExprKind::kCondition, l, c) {}
  ExprPtr condition, then_value, else_value;
};
struct CallExpr : Expr {
  CallExpr(int l, int c, ExprPtr f) : Expr(ExprKind::kCall, l, c), callee(std::move(f)) {}
  ExprPtr callee;
  CallArgs args;
};
struct FilterExpr : Expr {  // operand | name(args)
  FilterExpr(int l, int c, ExprPtr o, std::string n)
      : Expr(ExprKind::kFilter, l, c), operand(std::move(o)), name(std::move(n)) {}
  ExprPtr operand;
  std::string name;
  CallArgs args;
};
struct TestExpr : Expr {  // operand is name(args); `is not` wraps it in UnaryOp::kNot
  TestExpr(int l, int c, ExprPtr o, std::string n)
      : Expr(ExprKind::kTest, l, c), operand(std::move(o)), name(std::move(n)) {}
  ExprPtr operand;
  std::string name;
  CallArgs args;
};

// ---- statements ----------------------------------------------------------------------------

enum class StmtKind { kText, kOutput, kIf, kFor, kSet, kMacro, kBreak, kContinue, kWith, kScope };

struct Stmt {
  Stmt(StmtKind k, int l) : kind(k), line(l) {}
  virtual ~Stmt() = default;
  StmtKind kind;
  int line;
};
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

// Left side of `set` / `for`: a name, a tuple of names to unpack, or `namespace_var.attr`.
struct AssignTarget {
  std::vector<std::string> names;
  bool unpack = false;
  std::string namespace_attr;  // non-empty: assigns names[0].namespace_attr
};

struct TextStmt : Stmt {
  TextStmt(int l, std::string t) : Stmt(StmtKind::kText, l), text(std::move(t)) {}
  std::string text;
};
struct OutputStmt : Stmt {  // {{ value }}
  OutputStmt(int l, ExprPtr v) : Stmt(StmtKind::kOutput, l), value(std::move(v)) {}
  ExprPtr value;
};
struct IfStmt : Stmt {
  explicit IfStmt(int l) : Stmt(StmtKind::kIf, l) {}
  std::vector<std::pair<ExprPtr, Body>> branches;  // if + elifs
  Body else_body;
};
struct ForStmt : Stmt {
  explicit ForStmt(int l) : Stmt(StmtKind::kFor, l) {}
  AssignTarget target;
  ExprPtr iterable;
  ExprPtr filter;  // `for x in xs if cond`; may be null
  Body body;
  Body else_body;  // rendered when nothing was iterated
};
struct SetStmt : Stmt {
  explicit SetStmt(int l) : Stmt(StmtKind::kSet, l) {}
  AssignTarget target;
  ExprPtr value;  // null for the block form {% set x %}...{% endset %}, which captures `body`
  Body body;
};
struct MacroStmt : Stmt {
  explicit MacroStmt(int l) : Stmt(StmtKind::kMacro, l) {}
  std::string name;
  std::vector<std::pair<std::string, ExprPtr>> params;  // default may be null
  Body body;
};
struct WithStmt : Stmt {  // {% with a = 1 %}...{% endwith %}: body in a child scope
  explicit WithStmt(int l) : Stmt(StmtKind::kWith, l) {}
  std::vector<std::pair<std::string, ExprPtr>> assignments;
  Body body;
};
struct ScopeStmt : Stmt {  // transformers' {% generation %}...{% endgeneration %}: renders its body
  explicit ScopeStmt(int l) : Stmt(StmtKind::kScope, l) {}
  Body body;
};
struct LoopControlStmt : Stmt {  // {% break %} / {% continue %} (jinja2.ext.loopcontrols)
  LoopControlStmt(StmtKind k, int l) : Stmt(k, l) {}
};

struct TemplateAst {
  Body body;
};

}  // namespace qvl::jinja
