// jinja2's tests (`x is name(args)`).
#include "jinja/builtins.h"

#include <unordered_map>

#include "core/check.h"
#include "jinja/builtin_helpers.h"
#include "jinja/pystr.h"

namespace qvl::jinja {
namespace {

enum class TestId {
  kDefined, kUndefined, kNone, kBoolean, kFalse, kTrue, kInteger, kFloat, kNumber, kString, kMapping,
  kIterable, kSequence, kCallable, kSameAs, kEscaped, kEven, kOdd, kDivisibleBy, kLower, kUpper, kEq, kNe,
  kLt, kLe, kGt, kGe, kIn, kFilter, kTest,
};

const std::unordered_map<std::string_view, TestId>& test_table() {
  static const std::unordered_map<std::string_view, TestId> table = {
      {"defined", TestId::kDefined}, {"undefined", TestId::kUndefined}, {"none", TestId::kNone},
      {"boolean", TestId::kBoolean}, {"false", TestId::kFalse},         {"true", TestId::kTrue},
      {"integer", TestId::kInteger}, {"float", TestId::kFloat},         {"number", TestId::kNumber},
      {"string", TestId::kString},   {"mapping", TestId::kMapping},     {"iterable", TestId::kIterable},
      {"sequence", TestId::kSequence}, {"callable", TestId::kCallable}, {"sameas", TestId::kSameAs},
      {"escaped", TestId::kEscaped}, {"even", TestId::kEven},           {"odd", TestId::kOdd},
      {"divisibleby", TestId::kDivisibleBy}, {"lower", TestId::kLower}, {"upper", TestId::kUpper},
      {"eq", TestId::kEq},           {"equalto", TestId::kEq},          {"==", TestId::kEq},
      {"ne", TestId::kNe},           {"!=", TestId::kNe},               {"lt", TestId::kLt},
      {"lessthan", TestId::kLt},     {"<", TestId::kLt},                {"le", TestId::kLe},
      {"<=", TestId::kLe},           {"gt", TestId::kGt},               {"greaterthan", TestId::kGt},
      {">", TestId::kGt},            {"ge", TestId::kGe},               {">=", TestId::kGe},
      {"in", TestId::kIn},           {"filter", TestId::kFilter},       {"test", TestId::kTest},
  };
  return table;
}

}  // namespace

bool is_test_name(std::string_view name) { return test_table().count(name) > 0; }

bool apply_test(Budget& budget, const std::string& name, const Value& v, const Args& args) {
  const auto it = test_table().find(name);
  if (it == test_table().end()) type_error("no test named '", name, "'");
  const auto one_arg = [&]() -> const Value& { return *args.bind(name, {"other"}, 1)[0]; };
  switch (it->second) {
    case TestId::kDefined: args.bind(name, {}); return !v.is_undefined();
    case TestId::kUndefined: args.bind(name, {}); return v.is_undefined();
    case TestId::kNone: args.bind(name, {}); return v.is_none();
    case TestId::kBoolean: args.bind(name, {}); return v.is_bool();
    case TestId::kFalse: args.bind(name, {}); return v.is_bool() && !v.as_bool();
    case TestId::kTrue: args.bind(name, {}); return v.is_bool() && v.as_bool();
    case TestId::kInteger: args.bind(name, {}); return v.is_int();
    case TestId::kFloat: args.bind(name, {}); return v.is_float();
    case TestId::kNumber: args.bind(name, {}); return v.is_number();
    case TestId::kString: args.bind(name, {}); return v.is_string();
    case TestId::kMapping: args.bind(name, {}); return v.is_object();
    case TestId::kIterable: args.bind(name, {}); return v.is_string() || v.is_array() || v.is_object() || v.is_undefined();
    case TestId::kSequence:  // jinja2's Undefined has a length, so it passes as a sequence too
      args.bind(name, {});
      return v.is_string() || v.is_array() || v.is_object() || v.is_undefined();
    case TestId::kCallable: args.bind(name, {}); return v.is_callable();
    case TestId::kEscaped: args.bind(name, {}); return false;
    case TestId::kSameAs: {
      const Value& other = one_arg();
      if (v.kind() != other.kind()) return false;
      if (v.identity() || other.identity()) return v.identity() == other.identity();
      return equals(v, other);
    }
    case TestId::kEven:
    case TestId::kOdd: {
      args.bind(name, {});
      // jinja2: value % 2 == 1 (odd) / == 0 (even), so -0.5 (% 2 == 1.5) is neither.
      const Value r = arithmetic(budget, BinaryOp::kMod, v, Value(int64_t(2)));
      return equals(r, Value(int64_t(it->second == TestId::kOdd ? 1 : 0)));
    }
    case TestId::kDivisibleBy: return !truthy(arithmetic(budget, BinaryOp::kMod, v, one_arg()));
    case TestId::kLower: args.bind(name, {}); return pystr::is_lower(str_of(budget, v));
    case TestId::kUpper: args.bind(name, {}); return pystr::is_upper(str_of(budget, v));
    case TestId::kEq: return compare(CompareOp::kEq, v, one_arg());
    case TestId::kNe: return compare(CompareOp::kNe, v, one_arg());
    case TestId::kLt: return compare(CompareOp::kLt, v, one_arg());
    case TestId::kLe: return compare(CompareOp::kLe, v, one_arg());
    case TestId::kGt: return compare(CompareOp::kGt, v, one_arg());
    case TestId::kGe: return compare(CompareOp::kGe, v, one_arg());
    case TestId::kIn: return contains(one_arg(), v);
    case TestId::kFilter: args.bind(name, {}); return v.is_string() && is_filter_name(v.as_string());
    case TestId::kTest: args.bind(name, {}); return v.is_string() && is_test_name(v.as_string());
  }
  QVL_ASSERT(false);
}

}  // namespace qvl::jinja
