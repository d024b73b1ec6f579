// Python arithmetic and comparisons (+ - * / // % **, < <= > >=), with jinja2's Undefined rules.
#include "jinja/builtins.h"

#include <climits>
#include <cmath>

#include "core/check.h"
#include "jinja/builtin_helpers.h"

namespace qvl::jinja {
namespace {

int64_t int_floordiv(int64_t a, int64_t b) {
  if (b == 0) type_error("integer division or modulo by zero");
  if (a == INT64_MIN && b == -1) overflow();
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t int_mod(int64_t a, int64_t b) {
  if (b == 0) type_error("integer division or modulo by zero");
  if (b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

// Python's float divmod, which // and % on floats follow.
std::pair<double, double> float_divmod(double a, double b) {
  if (b == 0) type_error("float division by zero");
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0) {
    if ((b < 0) != (mod < 0)) {
      mod += b;
      div -= 1.0;
    }
  } else {
    mod = std::copysign(0.0, b);
  }
  double floordiv;
  if (div != 0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = std::copysign(0.0, a / b);
  }
  return {floordiv, mod};
}

int64_t int_pow(int64_t base, int64_t exponent) {
  int64_t result = 1;
  while (exponent > 0) {
    if (exponent & 1)
      if (__builtin_mul_overflow(result, base, &result)) overflow();
    exponent >>= 1;
    if (exponent > 0 && __builtin_mul_overflow(base, base, &base)) overflow();
  }
  return result;
}

const char* op_symbol(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd: return "+";
    case BinaryOp::kSub: return "-";
    case BinaryOp::kMul: return "*";
    case BinaryOp::kDiv: return "/";
    case BinaryOp::kFloorDiv: return "//";
    case BinaryOp::kMod: return "%";
    case BinaryOp::kPow: return "**";
    default: return "?";
  }
}

Value numeric(BinaryOp op, const Value& a, const Value& b) {
  if (a.is_float() || b.is_float() || op == BinaryOp::kDiv) {
    const double x = a.to_double(), y = b.to_double();
    switch (op) {
      case BinaryOp::kAdd: return Value(x + y);
      case BinaryOp::kSub: return Value(x - y);
      case BinaryOp::kMul: return Value(x * y);
      case BinaryOp::kDiv:
        if (y == 0) type_error("division by zero");
        return Value(x / y);
      case BinaryOp::kFloorDiv: return Value(float_divmod(x, y).first);
      case BinaryOp::kMod: return Value(float_divmod(x, y).second);
      case BinaryOp::kPow:
        if (x == 0 && y < 0) type_error("0.0 cannot be raised to a negative power");
        return Value(std::pow(x, y));
      default: break;
    }
    QVL_ASSERT(false);
  }
  const int64_t x = a.to_int(), y = b.to_int();
  int64_t r = 0;
  switch (op) {
    case BinaryOp::kAdd:
      if (__builtin_add_overflow(x, y, &r)) overflow();
      return Value(r);
    case BinaryOp::kSub:
      if (__builtin_sub_overflow(x, y, &r)) overflow();
      return Value(r);
    case BinaryOp::kMul:
      if (__builtin_mul_overflow(x, y, &r)) overflow();
      return Value(r);
    case BinaryOp::kFloorDiv: return Value(int_floordiv(x, y));
    case BinaryOp::kMod: return Value(int_mod(x, y));
    case BinaryOp::kPow:
      if (y < 0) {
        if (x == 0) type_error("0.0 cannot be raised to a negative power");
        return Value(std::pow(double(x), double(y)));
      }
      return Value(int_pow(x, y));
    default: break;
  }
  QVL_ASSERT(false);
}

Value repeat(Budget& budget, const Value& sequence, int64_t times) {
  if (times < 0) times = 0;
  if (sequence.is_string()) {
    const std::string& s = sequence.as_string();
    if (!s.empty() && uint64_t(times) > budget.limits().max_output_bytes / s.size())
      budget.check_string_size(budget.limits().max_output_bytes + 1);
    std::string out;
    out.reserve(s.size() * size_t(times));
    for (int64_t i = 0; i < times; ++i) out += s;
    return make_text(budget, std::move(out));
  }
  const ArrayData& a = sequence.as_array();
  if (!a.items.empty() && uint64_t(times) > budget.limits().max_collection_items / a.items.size())
    budget.check_collection_size(budget.limits().max_collection_items + 1);
  std::vector<Value> items;
  items.reserve(a.items.size() * size_t(times));
  for (int64_t i = 0; i < times; ++i) items.insert(items.end(), a.items.begin(), a.items.end());
  return make_list(budget, std::move(items), a.is_tuple);
}

const char* compare_symbol(CompareOp op) {
  switch (op) {
    case CompareOp::kLt: return "<";
    case CompareOp::kLe: return "<=";
    case CompareOp::kGt: return ">";
    case CompareOp::kGe: return ">=";
    default: return "?";
  }
}

}  // namespace

// Three-way comparison for ordering; nullopt when Python would raise TypeError.
std::optional<int> order(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      const double x = a.to_double(), y = b.to_double();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    const int64_t x = a.to_int(), y = b.to_int();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.as_string().compare(b.as_string());  // UTF-8 byte order is code point order
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_array() && b.is_array() && a.as_array().is_tuple == b.as_array().is_tuple) {
    const auto& x = a.as_array().items;
    const auto& y = b.as_array().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (equals(x[i], y[i])) continue;
      return order(x[i], y[i]);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  return std::nullopt;
}

Value arithmetic(Budget& budget, BinaryOp op, const Value& a, const Value& b) {
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  if (a.is_number() && b.is_number()) return numeric(op, a, b);
  if (op == BinaryOp::kAdd) {
    if (a.is_string() && b.is_string()) {
      budget.check_string_size(a.as_string().size() + b.as_string().size());
      return make_text(budget, a.as_string() + b.as_string());
    }
    if (a.is_array() && b.is_array() && a.as_array().is_tuple == b.as_array().is_tuple) {
      std::vector<Value> items = a.as_array().items;
      budget.check_collection_size(items.size() + b.as_array().items.size());
      items.insert(items.end(), b.as_array().items.begin(), b.as_array().items.end());
      return make_list(budget, std::move(items), a.as_array().is_tuple);
    }
    if (a.is_string()) type_error("can only concatenate str (not \"", type_name(b), "\") to str");
  }
  if (op == BinaryOp::kMul) {
    if ((a.is_string() || a.is_array()) && (b.is_int() || b.is_bool())) return repeat(budget, a, b.to_int());
    if ((b.is_string() || b.is_array()) && (a.is_int() || a.is_bool())) return repeat(budget, b, a.to_int());
  }
  if (op == BinaryOp::kMod && a.is_string())
    fail(ErrorKind::kUnsupported, "printf-style '%' string formatting is not supported in chat templates");
  type_error("unsupported operand type(s) for ", op_symbol(op), ": '", type_name(a), "' and '", type_name(b), "'");
}

bool compare(CompareOp op, const Value& a, const Value& b) {
  switch (op) {
    case CompareOp::kEq: return equals(a, b);
    case CompareOp::kNe: return !equals(a, b);
    case CompareOp::kIn: return contains(b, a);
    case CompareOp::kNotIn: return !contains(b, a);
    default: break;
  }
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  // NaN is unordered: every ordering comparison with it is false, as in Python.
  if ((a.is_float() && std::isnan(a.as_float())) || (b.is_float() && std::isnan(b.as_float()))) return false;
  const auto c = order(a, b);
  if (!c)
    type_error("'", compare_symbol(op), "' not supported between instances of '", type_name(a), "' and '",
               type_name(b), "'");
  switch (op) {
    case CompareOp::kLt: return *c < 0;
    case CompareOp::kLe: return *c <= 0;
    case CompareOp::kGt: return *c > 0;
    case CompareOp::kGe: return *c >= 0;
    default: QVL_ASSERT(false);
  }
}

}  // namespace qvl::jinja
