#include "jinja/builtins.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <optional>
#include <unordered_map>

#include "core/check.h"
#include "jinja/pystr.h"

namespace qvl::jinja {
namespace {

// Python's TypeError/ValueError: the data handed to the template does not fit it.
template <typename... Parts>
[[noreturn]] void type_error(Parts&&... parts) {
  fail(ErrorKind::kInvalidArgument, std::forward<Parts>(parts)...);
}

std::string str_of(Budget& in, const Value& v) { return to_str(v, in.limits().max_output_bytes); }

Value make_text(Budget& in, std::string text) {
  in.check_string_size(text.size());
  in.charge(text.size() / 16);
  return Value(std::move(text));
}

Value make_list(Budget& in, std::vector<Value> items, bool is_tuple = false) {
  in.check_collection_size(items.size());
  in.charge(items.size());
  return make_array(std::move(items), is_tuple);
}

Value bound_method(const Value& receiver, const std::string& name) {
  CallableData method;
  method.kind = CallableData::Kind::kMethod;
  method.name = name;
  method.receiver = receiver;
  return make_callable(std::move(method));
}

int64_t int_arg(const Value& v, const char* what) {
  if (v.is_int() || v.is_bool()) return v.to_int();
  type_error(what, " must be an integer, not '", type_name(v), "'");
}

const std::string& string_arg(const Value& v, const char* what) {
  if (!v.is_string()) type_error(what, " must be a string, not '", type_name(v), "'");
  return v.as_string();
}

bool present(const Value* v) { return v && !v->is_none() && !v->is_undefined(); }

std::optional<std::string> optional_string_arg(const Value* v, const char* what) {
  if (!present(v)) return std::nullopt;
  return string_arg(*v, what);
}

// ---- Python number parsing (int() and float() of a str) ------------------------------------

// Removes underscores that sit between two digits; fails on any other underscore.
bool strip_digit_underscores(std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '_') {
      out.push_back(s[i]);
      continue;
    }
    if (i == 0 || i + 1 >= s.size() || !std::isalnum(static_cast<unsigned char>(s[i - 1])) ||
        !std::isalnum(static_cast<unsigned char>(s[i + 1])))
      return false;
  }
  s = std::move(out);
  return true;
}

std::optional<int64_t> parse_python_int(const std::string& text, int base) {
  std::string s = pystr::strip(text, std::nullopt, true, true);
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.erase(0, 1);
  }
  if (base == 0 || base == 16 || base == 8 || base == 2) {
    if (s.size() > 2 && s[0] == '0') {
      const char p = static_cast<char>(s[1] | 0x20);
      const int prefixed = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
      if (prefixed && (base == 0 || base == prefixed)) {
        base = prefixed;
        s.erase(0, 2);
        if (!s.empty() && s[0] == '_') s.erase(0, 1);
      }
    }
    if (base == 0) base = 10;
  }
  if (s.empty() || !strip_digit_underscores(s)) return std::nullopt;
  uint64_t magnitude = 0;
  const auto result = std::from_chars(s.data(), s.data() + s.size(), magnitude, base);
  if (result.ec != std::errc() || result.ptr != s.data() + s.size()) return std::nullopt;
  if (magnitude > uint64_t(INT64_MAX) + (negative ? 1 : 0)) return std::nullopt;
  return negative ? int64_t(0 - magnitude) : int64_t(magnitude);
}

std::optional<double> parse_python_float(const std::string& text) {
  std::string s = pystr::strip(text, std::nullopt, true, true);
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.erase(0, 1);
  }
  std::string lowered = pystr::lower(s);
  double value = 0;
  if (lowered == "inf" || lowered == "infinity") {
    value = HUGE_VAL;
  } else if (lowered == "nan") {
    value = NAN;
  } else {
    if (s.empty() || !strip_digit_underscores(s)) return std::nullopt;
    if (s[0] != '.' && !std::isdigit(static_cast<unsigned char>(s[0]))) return std::nullopt;
    const auto result = std::from_chars(s.data(), s.data() + s.size(), value);
    if (result.ec != std::errc() || result.ptr != s.data() + s.size()) return std::nullopt;
  }
  return negative ? -value : value;
}

// ---- Python arithmetic -----------------------------------------------------------------------

[[noreturn]] void overflow() { fail(ErrorKind::kUnsupported, "integer overflow (beyond 64 bits)"); }

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

Value repeat(Budget& in, const Value& sequence, int64_t times) {
  if (times < 0) times = 0;
  if (sequence.is_string()) {
    const std::string& s = sequence.as_string();
    if (!s.empty() && uint64_t(times) > in.limits().max_output_bytes / s.size())
      in.check_string_size(in.limits().max_output_bytes + 1);
    std::string out;
    out.reserve(s.size() * size_t(times));
    for (int64_t i = 0; i < times; ++i) out += s;
    return make_text(in, std::move(out));
  }
  const ArrayData& a = sequence.as_array();
  if (!a.items.empty() && uint64_t(times) > in.limits().max_collection_items / a.items.size())
    in.check_collection_size(in.limits().max_collection_items + 1);
  std::vector<Value> items;
  items.reserve(a.items.size() * size_t(times));
  for (int64_t i = 0; i < times; ++i) items.insert(items.end(), a.items.begin(), a.items.end());
  return make_list(in, std::move(items), a.is_tuple);
}

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

const char* compare_symbol(CompareOp op) {
  switch (op) {
    case CompareOp::kLt: return "<";
    case CompareOp::kLe: return "<=";
    case CompareOp::kGt: return ">";
    case CompareOp::kGe: return ">=";
    default: return "?";
  }
}

// ---- attribute access --------------------------------------------------------------------------

bool is_dict_method(std::string_view name) {
  return name == "items" || name == "keys" || name == "values" || name == "get";
}
// Mutating methods: jinja2's immutable sandbox refuses them, which yields an Undefined.
bool is_unsafe_dict_method(std::string_view name) {
  return name == "pop" || name == "popitem" || name == "setdefault" || name == "update" || name == "clear";
}
bool is_list_method(std::string_view name) { return name == "index" || name == "count"; }
bool is_unsafe_list_method(std::string_view name) {
  return name == "append" || name == "pop" || name == "insert" || name == "extend" || name == "remove" ||
         name == "reverse" || name == "sort" || name == "clear";
}
bool is_str_method(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "startswith", "endswith", "strip",   "lstrip",  "rstrip",  "split",   "rsplit",  "splitlines",
      "replace",    "upper",    "lower",   "title",   "capitalize", "find", "rfind",   "count",
      "join",       "isdigit",  "isalpha", "isalnum", "isspace", "islower", "isupper", "format"};
  return std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
}

Value loop_attr(const Value& loop_value, const std::string& name) {
  const LoopData& loop = loop_value.as_loop();
  const auto n = static_cast<int64_t>(loop.items->items.size());
  const int64_t i = loop.index0;
  if (name == "index") return Value(i + 1);
  if (name == "index0") return Value(i);
  if (name == "revindex") return Value(n - i);
  if (name == "revindex0") return Value(n - i - 1);
  if (name == "first") return Value(i == 0);
  if (name == "last") return Value(i == n - 1);
  if (name == "length") return Value(n);
  if (name == "depth") return Value(int64_t(loop.depth0 + 1));
  if (name == "depth0") return Value(int64_t(loop.depth0));
  if (name == "previtem")
    return i > 0 ? loop.items->items[size_t(i - 1)] : Value::undefined("there is no previous item");
  if (name == "nextitem")
    return i + 1 < n ? loop.items->items[size_t(i + 1)] : Value::undefined("there is no next item");
  if (name == "cycle") return bound_method(loop_value, name);
  return Value::undefined("'LoopContext object' has no attribute '" + name + "'");
}

// jinja2's attribute getter for map/selectattr/sort: "a.b.0" walks items, digits as indices.
Value get_attribute_path(const Value& obj, const std::string& path) {
  Value v = obj;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    v = numeric ? get_item(v, Value(int64_t(std::stoll(part)))) : get_item(v, Value(part));
    if (dot == std::string::npos) return v;
    start = dot + 1;
  }
}

// ---- filters -----------------------------------------------------------------------------------

using FilterFn = Value (*)(Budget&, const Value&, const Args&);

Value filter_abs(Budget&, const Value& v, const Args& args) {
  args.bind("abs", {});
  if (v.is_float()) return Value(std::fabs(v.as_float()));
  if (v.is_int() || v.is_bool()) {
    const int64_t x = v.to_int();
    if (x == INT64_MIN) overflow();
    return Value(x < 0 ? -x : x);
  }
  if (v.is_undefined()) undefined_error(v);
  type_error("bad operand type for abs(): '", type_name(v), "'");
}

Value filter_attr(Budget& in, const Value& v, const Args& args) {
  const auto a = args.bind("attr", {"name"}, 1);
  return get_attr(v, str_of(in, *a[0]));
}

Value filter_capitalize(Budget& in, const Value& v, const Args& args) {
  args.bind("capitalize", {});
  return make_text(in, pystr::capitalize(str_of(in, v)));
}

Value filter_length(Budget&, const Value& v, const Args& args) {
  args.bind("length", {});
  return Value(int64_t(length(v)));
}

Value filter_default(Budget&, const Value& v, const Args& args) {
  const auto a = args.bind("default", {"default_value", "boolean"});
  const bool use_default = v.is_undefined() || (a[1] && truthy(*a[1]) && !truthy(v));
  if (!use_default) return v;
  return a[0] ? *a[0] : Value(std::string());
}

Value case_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value(pystr::lower(v.as_string()));
  return v;
}

void sort_values(std::vector<Value>& items, const std::function<Value(const Value&)>& key, bool reverse) {
  std::vector<std::pair<Value, size_t>> keyed;
  keyed.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) keyed.emplace_back(key(items[i]), i);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    const auto c = order(reverse ? y.first : x.first, reverse ? x.first : y.first);
    if (!c)
      type_error("'<' not supported between instances of '", type_name(x.first), "' and '", type_name(y.first), "'");
    return *c < 0;
  });
  std::vector<Value> sorted;
  sorted.reserve(items.size());
  for (const auto& [k, index] : keyed) sorted.push_back(items[index]);
  items = std::move(sorted);
}

Value filter_dictsort(Budget& in, const Value& v, const Args& args) {
  const auto a = args.bind("dictsort", {"case_sensitive", "by", "reverse"});
  if (!v.is_object()) type_error("dictsort: expected a mapping, got '", type_name(v), "'");
  const bool case_sensitive = a[0] && truthy(*a[0]);
  const std::string by = a[1] ? string_arg(*a[1], "dictsort by") : "key";
  if (by != "key" && by != "value") type_error("dictsort: 'by' must be 'key' or 'value'");
  std::vector<Value> pairs;
  for (const auto& [key, value] : v.as_object().entries) pairs.push_back(make_array({Value(key), value}, true));
  const size_t pick = by == "key" ? 0 : 1;
  sort_values(pairs, [&](const Value& pair) { return case_key(pair.as_array().items[pick], case_sensitive); },
              a[2] && truthy(*a[2]));
  return make_list(in, std::move(pairs));
}

Value filter_escape(Budget& in, const Value& v, const Args& args) {
  args.bind("escape", {});
  std::string out;
  for (char c : str_of(in, v)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return make_text(in, std::move(out));
}

Value filter_first(Budget&, const Value& v, const Args& args) {
  args.bind("first", {});
  if (v.is_array()) {
    const auto& items = v.as_array().items;
    return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
  }
  const std::vector<Value> items = iterate(v);
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value filter_last(Budget&, const Value& v, const Args& args) {
  args.bind("last", {});
  if (v.is_array()) {
    const auto& items = v.as_array().items;
    return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
  }
  const std::vector<Value> items = iterate(v);
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

Value filter_float(Budget&, const Value& v, const Args& args) {
  const auto a = args.bind("float", {"default"});
  const Value fallback = a[0] ? *a[0] : Value(0.0);
  if (v.is_undefined()) undefined_error(v);  // float(Undefined) raises, it is not "invalid"
  if (v.is_float()) return v;
  if (v.is_int() || v.is_bool()) return Value(v.to_double());
  if (v.is_string()) {
    if (const auto parsed = parse_python_float(v.as_string())) return Value(*parsed);
  }
  return fallback;
}

Value filter_int(Budget&, const Value& v, const Args& args) {
  const auto a = args.bind("int", {"default", "base"});
  const Value fallback = a[0] ? *a[0] : Value(int64_t(0));
  const int base = a[1] ? static_cast<int>(int_arg(*a[1], "int base")) : 10;
  if (base != 0 && (base < 2 || base > 36)) type_error("int() base must be >= 2 and <= 36, or 0");
  if (v.is_undefined()) undefined_error(v);  // int(Undefined) raises, it is not "invalid"
  if (v.is_int()) return v;
  if (v.is_bool()) return Value(v.to_int());
  if (v.is_float()) {
    const double d = std::trunc(v.as_float());
    if (!std::isfinite(d) || d < -9.2233720368547758e18 || d >= 9.2233720368547758e18) return fallback;
    return Value(int64_t(d));
  }
  if (v.is_string()) {
    if (const auto parsed = parse_python_int(v.as_string(), base)) return Value(*parsed);
    if (const auto as_float = parse_python_float(v.as_string())) {
      const double d = std::trunc(*as_float);
      if (std::isfinite(d) && d >= -9.2233720368547758e18 && d < 9.2233720368547758e18) return Value(int64_t(d));
    }
  }
  return fallback;
}

Value filter_indent(Budget& in, const Value& v, const Args& args) {
  const auto a = args.bind("indent", {"width", "first", "blank"});
  std::string indentation = "    ";
  if (a[0]) indentation = a[0]->is_string() ? a[0]->as_string() : std::string(size_t(std::max<int64_t>(0, int_arg(*a[0], "indent width"))), ' ');
  const bool first = a[1] && truthy(*a[1]);
  const bool blank = a[2] && truthy(*a[2]);
  if (v.is_undefined()) undefined_error(v);
  if (!v.is_string()) type_error("indent: expected a string, got '", type_name(v), "'");
  const std::vector<std::string> lines = pystr::splitlines(v.as_string() + "\n", false);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      out.push_back('\n');
      if (blank || !lines[i].empty()) out += indentation;
    }
    out += lines[i];
    in.check_string_size(out.size());
  }
  if (first) out = indentation + out;
  return make_text(in, std::move(out));
}

Value filter_items(Budget& in, const Value& v, const Args& args) {
  args.bind("items", {});
  if (v.is_undefined()) return make_array({});
  if (!v.is_object()) type_error("Can only get item pairs from a mapping.");
  std::vector<Value> pairs;
  pairs.reserve(v.as_object().entries.size());
  for (const auto& [key, value] : v.as_object().entries) pairs.push_back(make_array({Value(key), value}, true));
  return make_list(in, std::move(pairs));
}

Value filter_join(Budget& in, const Value& v, const Args& args) {
  const auto a = args.bind("join", {"d", "attribute"});
  const std::string separator = a[0] ? str_of(in, *a[0]) : std::string();
  std::string out;
  bool first = true;
  for (const Value& item : iterate(v)) {
    if (!first) out += separator;
    first = false;
    append_str(out, present(a[1]) ? get_attribute_path(item, str_of(in, *a[1])) : item, in.limits().max_output_bytes);
    in.check_string_size(out.size());
  }
  return make_text(in, std::move(out));
}

Value filter_list(Budget& in, const Value& v, const Args& args) {
  args.bind("list", {});
  return make_list(in, iterate(v));
}

Value filter_lower(Budget& in, const Value& v, const Args& args) {
  args.bind("lower", {});
  return make_text(in, pystr::lower(str_of(in, v)));
}

Value filter_upper(Budget& in, const Value& v, const Args& args) {
  args.bind("upper", {});
  return make_text(in, pystr::upper(str_of(in, v)));
}

// jinja2's title filter: capitalizes after whitespace and after - ( { [ <, lowercases the rest.
Value filter_title(Budget& in, const Value& v, const Args& args) {
  args.bind("title", {});
  std::u32string cps = pystr::decode(str_of(in, v));
  bool word_start = true;
  for (char32_t& cp : cps) {
    const bool boundary = pystr::is_space(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
    if (boundary) {
      word_start = true;
      continue;
    }
    std::string one;
    pystr::append_utf8(one, cp);
    const std::u32string changed = pystr::decode(word_start ? pystr::upper(one) : pystr::lower(one));
    if (changed.size() == 1) cp = changed[0];
    word_start = false;
  }
  return make_text(in, pystr::encode(cps));
}

Value filter_map(Budget& in, const Value& v, const Args& args) {
  std::vector<Value> out;
  const std::vector<Value> items = iterate(v);
  const Value* attribute = nullptr;
  const Value* fallback = nullptr;
  for (const auto& [name, value] : args.keyword) {
    if (name == "attribute") attribute = &value;
    else if (name == "default") fallback = &value;
    else if (args.positional.empty()) type_error("map() got an unexpected keyword argument '", name, "'");
  }
  if (attribute) {
    const std::string path = str_of(in, *attribute);
    for (const Value& item : items) {
      Value mapped = get_attribute_path(item, path);
      if (mapped.is_undefined() && fallback) mapped = *fallback;
      out.push_back(std::move(mapped));
      in.charge(1);
    }
    return make_list(in, std::move(out));
  }
  if (args.positional.empty()) type_error("map requires a filter argument");
  const std::string filter = string_arg(args.positional[0], "map filter name");
  if (!is_filter_name(filter)) type_error("no filter named '", filter, "'");
  Args rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.keyword = args.keyword;
  for (const Value& item : items) out.push_back(apply_filter(in, filter, item, rest));
  return make_list(in, std::move(out));
}

Value min_max(Budget& in, const Value& v, const Args& args, bool want_max) {
  const auto a = args.bind(want_max ? "max" : "min", {"case_sensitive", "attribute"});
  const bool case_sensitive = a[0] && truthy(*a[0]);
  const std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  const auto key = [&](const Value& item) {
    return case_key(present(a[1]) ? get_attribute_path(item, str_of(in, *a[1])) : item, case_sensitive);
  };
  size_t best = 0;
  Value best_key = key(items[0]);
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = key(items[i]);
    const auto c = order(k, best_key);
    if (!c) type_error("'<' not supported between instances of '", type_name(k), "' and '", type_name(best_key), "'");
    if (want_max ? *c > 0 : *c < 0) {
      best = i;
      best_key = std::move(k);
    }
  }
  return items[best];
}
Value filter_max(Budget& in, const Value& v, const Args& args) { return min_max(in, v, args, true); }
Value filter_min(Budget& in, const Value& v, const Args& args) { return min_max(in, v, args, false); }

// select/reject/selectattr/rejectattr share one implementation.
Value select_items(Budget& in, const Value& v, const Args& args, bool by_attribute, bool keep_matches) {
  size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.positional.empty()) type_error("selectattr/rejectattr need an attribute name");
    attribute = str_of(in, args.positional[next++]);
  }
  std::string test;
  if (next < args.positional.size()) test = string_arg(args.positional[next++], "test name");
  if (!test.empty() && !is_test_name(test)) type_error("no test named '", test, "'");
  Args test_args;
  test_args.positional.assign(args.positional.begin() + long(next), args.positional.end());
  test_args.keyword = args.keyword;
  std::vector<Value> out;
  for (const Value& item : iterate(v)) {
    in.charge(1);
    const Value subject = by_attribute ? get_attribute_path(item, attribute) : item;
    const bool matches = test.empty() ? truthy(subject) : apply_test(in, test, subject, test_args);
    if (matches == keep_matches) out.push_back(item);
  }
  return make_list(in, std::move(out));
}
Value filter_select(Budget& in, const Value& v, const Args& a) { return select_items(in, v, a, false, true); }
Value filter_reject(Budget& in, const Value& v, const Args& a) { return select_items(in, v, a, false, false); }
Value filter_selectattr(Budget& in, const Value& v, const Args& a) { return select_items(in, v, a, true, true); }
Value filter_rejectattr(Budget& in, const Value& v, const Args& a) { return select_items(in, v, a, true, false); }

Value filter_replace(Budget& in, const Value& v, const Args& args) {
  const auto a = args.bind("replace", {"old", "new", "count"}, 2);
  const int64_t count = present(a[2]) ? int_arg(*a[2], "replace count") : -1;
  return make_text(in, pystr::replace(str_of(in, v), str_of(in, *a[0]), str_of(in, *a[1]), count,
                                      in.limits().max_output_bytes));
}

Value filter_reverse(Budget& in, const Value& v, const Args& args) {
  args.bind("reverse", {});
  if (v.is_string()) {
    std::u32string cps = pystr::decode(v.as_string());
    std::reverse(cps.begin(), cps.end());
    return make_text(in, pystr::encode(cps));
  }
  std::vector<Value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  return make_list(in, std::move(items));
}

Value filter_round(Budget&, const Value& v, const Args& args) {
  const auto a = args.bind("round", {"precision", "method"});
  const int64_t precision = a[0] ? int_arg(*a[0], "round precision") : 0;
  const std::string method = a[1] ? string_arg(*a[1], "round method") : "common";
  if (method != "common" && method != "ceil" && method != "floor")
    type_error("method must be 'common', 'ceil' or 'floor'");
  if (!v.is_number()) {
    if (v.is_undefined()) undefined_error(v);
    type_error("round: expected a number, got '", type_name(v), "'");
  }
  if (method == "common") {
    if (!v.is_float()) return Value(v.to_int());  // Python round(int, n) stays an int
    const double x = v.as_float();
    if (!std::isfinite(x) || precision > 300) return Value(x);
    if (precision >= 0) {
      // printf rounds the exact binary value half-to-even, which is what Python's round() does.
      char buf[512];
      std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(precision), x);
      return Value(std::strtod(buf, nullptr));
    }
    const double scale = std::pow(10.0, double(-precision));
    return Value(std::nearbyint(x / scale) * scale);
  }
  const double scale = std::pow(10.0, double(precision));
  const double scaled = v.to_double() * scale;
  return Value((method == "ceil" ? std::ceil(scaled) : std::floor(scaled)) / scale);
}

Value filter_safe(Budget& in, const Value& v, const Args& args) {
  args.bind("safe", {});
  // jinja2 returns Markup(str(v)): a str. Autoescaping is off, so the marking itself is moot.
  if (v.is_string()) return v;
  return make_text(in, str_of(in, v));
}

Value filter_sort(Budget& in, const Value& v, const Args& args) {
  const auto a = args.bind("sort", {"reverse", "case_sensitive", "attribute"});
  std::vector<Value> items = iterate(v);
  const bool case_sensitive = a[1] && truthy(*a[1]);
  const std::string attribute = present(a[2]) ? str_of(in, *a[2]) : std::string();
  in.charge(items.size());
  sort_values(items, [&](const Value& item) {
    return case_key(attribute.empty() ? item : get_attribute_path(item, attribute), case_sensitive);
  }, a[0] && truthy(*a[0]));
  return make_list(in, std::move(items));
}

Value filter_string(Budget& in, const Value& v, const Args& args) {
  args.bind("string", {});
  if (v.is_string()) return v;
  return make_text(in, str_of(in, v));
}

Value filter_sum(Budget& in, const Value& v, const Args& args) {
  const auto a = args.bind("sum", {"attribute", "start"});
  Value total = a[1] ? *a[1] : Value(int64_t(0));
  for (const Value& item : iterate(v))
    total = arithmetic(in, BinaryOp::kAdd, total, present(a[0]) ? get_attribute_path(item, str_of(in, *a[0])) : item);
  return total;
}

// transformers' override: json.dumps(x, ensure_ascii=False, indent=None, separators=None,
// sort_keys=False), i.e. key order kept and no HTML escaping (unlike jinja2's own tojson).
Value filter_tojson(Budget& in, const Value& v, const Args& args) {
  const auto a = args.bind("tojson", {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonDumpOptions options;
  options.ensure_ascii = a[0] && truthy(*a[0]);
  if (present(a[1])) {
    options.indent_set = true;
    if (a[1]->is_string()) {
      options.indent = a[1]->as_string();
    } else {
      options.indent.assign(size_t(std::max<int64_t>(0, int_arg(*a[1], "tojson indent"))), ' ');
    }
    options.item_separator = ",";  // Python drops the space after ',' when indenting
  }
  if (present(a[2])) {
    const std::vector<Value> seps = iterate(*a[2]);
    if (seps.size() != 2 || !seps[0].is_string() || !seps[1].is_string())
      type_error("tojson separators must be a pair of strings");
    options.item_separator = seps[0].as_string();
    options.key_separator = seps[1].as_string();
  }
  options.sort_keys = a[3] && truthy(*a[3]);
  return make_text(in, to_json(v, options, in.limits().max_output_bytes));
}

Value filter_trim(Budget& in, const Value& v, const Args& args) {
  const auto a = args.bind("trim", {"chars"});
  return make_text(in, pystr::strip(str_of(in, v), optional_string_arg(a[0], "trim chars"), true, true));
}

Value filter_unique(Budget& in, const Value& v, const Args& args) {
  const auto a = args.bind("unique", {"case_sensitive", "attribute"});
  const bool case_sensitive = a[0] && truthy(*a[0]);
  std::vector<Value> out, seen;
  for (const Value& item : iterate(v)) {
    const Value key = case_key(present(a[1]) ? get_attribute_path(item, str_of(in, *a[1])) : item, case_sensitive);
    in.charge(seen.size() + 1);
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); })) continue;
    seen.push_back(key);
    out.push_back(item);
  }
  return make_list(in, std::move(out));
}

const std::unordered_map<std::string_view, FilterFn>& filter_table() {
  static const std::unordered_map<std::string_view, FilterFn> table = {
      {"abs", filter_abs},
      {"attr", filter_attr},
      {"capitalize", filter_capitalize},
      {"count", filter_length},
      {"d", filter_default},
      {"default", filter_default},
      {"dictsort", filter_dictsort},
      {"e", filter_escape},
      {"escape", filter_escape},
      {"first", filter_first},
      {"float", filter_float},
      {"forceescape", filter_escape},
      {"indent", filter_indent},
      {"int", filter_int},
      {"items", filter_items},
      {"join", filter_join},
      {"last", filter_last},
      {"length", filter_length},
      {"list", filter_list},
      {"lower", filter_lower},
      {"map", filter_map},
      {"max", filter_max},
      {"min", filter_min},
      {"reject", filter_reject},
      {"rejectattr", filter_rejectattr},
      {"replace", filter_replace},
      {"reverse", filter_reverse},
      {"round", filter_round},
      {"safe", filter_safe},
      {"select", filter_select},
      {"selectattr", filter_selectattr},
      {"sort", filter_sort},
      {"string", filter_string},
      {"sum", filter_sum},
      {"title", filter_title},
      {"tojson", filter_tojson},
      {"trim", filter_trim},
      {"unique", filter_unique},
      {"upper", filter_upper},
      // Real jinja2 filters outside the subset: accepted by the parser, kUnsupported if used.
      {"batch", nullptr},
      {"center", nullptr},
      {"filesizeformat", nullptr},
      {"format", nullptr},
      {"groupby", nullptr},
      {"pprint", nullptr},
      {"random", nullptr},
      {"slice", nullptr},
      {"striptags", nullptr},
      {"truncate", nullptr},
      {"urlencode", nullptr},
      {"urlize", nullptr},
      {"wordcount", nullptr},
      {"wordwrap", nullptr},
      {"xmlattr", nullptr},
  };
  return table;
}

// ---- tests -------------------------------------------------------------------------------------

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

// ---- methods -----------------------------------------------------------------------------------

Value string_method(Budget& in, const std::string& s, const std::string& name, const Args& args) {
  const auto affix = [&](bool prefix) {
    const auto a = args.bind(name, {"prefix", "start", "end"}, 1);
    if (a[1] || a[2]) fail(ErrorKind::kUnsupported, "str.", name, "() with start/end");
    const auto matches = [&](const Value& candidate) {
      const std::string& c = string_arg(candidate, "startswith/endswith argument");
      return prefix ? s.compare(0, c.size(), c) == 0 && s.size() >= c.size()
                    : s.size() >= c.size() && s.compare(s.size() - c.size(), c.size(), c) == 0;
    };
    if (a[0]->is_array()) {
      for (const Value& candidate : a[0]->as_array().items)
        if (matches(candidate)) return Value(true);
      return Value(false);
    }
    return Value(matches(*a[0]));
  };
  if (name == "startswith") return affix(true);
  if (name == "endswith") return affix(false);
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const auto a = args.bind(name, {"chars"});
    return make_text(in, pystr::strip(s, optional_string_arg(a[0], "strip chars"), name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    const auto a = args.bind(name, {"sep", "maxsplit"});
    const int64_t maxsplit = a[1] ? int_arg(*a[1], "maxsplit") : -1;
    const auto sep = optional_string_arg(a[0], "separator");
    const std::vector<std::string> parts = name == "split" ? pystr::split(s, sep, maxsplit) : pystr::rsplit(s, sep, maxsplit);
    in.check_collection_size(parts.size());
    std::vector<Value> items(parts.begin(), parts.end());
    return make_list(in, std::move(items));
  }
  if (name == "splitlines") {
    const auto a = args.bind(name, {"keepends"});
    const std::vector<std::string> lines = pystr::splitlines(s, a[0] && truthy(*a[0]));
    std::vector<Value> items(lines.begin(), lines.end());
    return make_list(in, std::move(items));
  }
  if (name == "replace") {
    const auto a = args.bind(name, {"old", "new", "count"}, 2);
    const int64_t count = a[2] ? int_arg(*a[2], "count") : -1;
    return make_text(in, pystr::replace(s, string_arg(*a[0], "replace old"), string_arg(*a[1], "replace new"), count,
                                        in.limits().max_output_bytes));
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    args.bind(name, {});
    if (name == "upper") return make_text(in, pystr::upper(s));
    if (name == "lower") return make_text(in, pystr::lower(s));
    if (name == "title") return make_text(in, pystr::title(s));
    return make_text(in, pystr::capitalize(s));
  }
  if (name == "find" || name == "rfind") {
    const auto a = args.bind(name, {"sub", "start", "end"}, 1);
    if (a[1] || a[2]) fail(ErrorKind::kUnsupported, "str.", name, "() with start/end");
    const std::string& sub = string_arg(*a[0], "find argument");
    const size_t at = name == "find" ? s.find(sub) : s.rfind(sub);
    if (at == std::string::npos) return Value(int64_t(-1));
    return Value(int64_t(pystr::length(std::string_view(s).substr(0, at))));  // in code points
  }
  if (name == "count") {
    const auto a = args.bind(name, {"sub"}, 1);
    return Value(int64_t(pystr::count(s, string_arg(*a[0], "count argument"))));
  }
  if (name == "join") {
    const auto a = args.bind(name, {"iterable"}, 1);
    std::string out;
    bool first = true;
    for (const Value& item : iterate(*a[0])) {
      if (!first) out += s;
      first = false;
      if (!item.is_string()) type_error("sequence item: expected str instance, ", type_name(item), " found");
      out += item.as_string();
      in.check_string_size(out.size());
    }
    return make_text(in, std::move(out));
  }
  if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace") {
    args.bind(name, {});
    const std::u32string cps = pystr::decode(s);
    if (cps.empty()) return Value(false);
    for (char32_t cp : cps) {
      const bool ok = name == "isdigit"   ? pystr::is_digit(cp)
                      : name == "isalpha" ? pystr::is_alpha(cp)
                      : name == "isalnum" ? pystr::is_alpha(cp) || pystr::is_numeric(cp)
                                          : pystr::is_space(cp);
      if (!ok) return Value(false);
    }
    return Value(true);
  }
  if (name == "islower") return Value(pystr::is_lower(s));
  if (name == "isupper") return Value(pystr::is_upper(s));
  fail(ErrorKind::kUnsupported, "str.", name, "() is not supported in chat templates");
}

Value dict_method(Budget& in, const ObjectData& obj, const std::string& name, const Args& args) {
  if (name == "get") {
    const auto a = args.bind("get", {"key", "default"}, 1);
    if (a[0]->is_string())
      if (const Value* v = obj.find(a[0]->as_string())) return *v;
    return a[1] ? *a[1] : Value::none();
  }
  args.bind(name, {});
  std::vector<Value> out;
  out.reserve(obj.entries.size());
  for (const auto& [key, value] : obj.entries) {
    if (name == "keys") out.emplace_back(key);
    else if (name == "values") out.push_back(value);
    else out.push_back(make_array({Value(key), value}, true));
  }
  return make_list(in, std::move(out));
}

Value list_method(const ArrayData& list, const std::string& name, const Args& args) {
  const auto a = args.bind(name, {"value"}, 1);
  if (name == "count")
    return Value(int64_t(std::count_if(list.items.begin(), list.items.end(), [&](const Value& v) { return equals(v, *a[0]); })));
  for (size_t i = 0; i < list.items.size(); ++i)
    if (equals(list.items[i], *a[0])) return Value(int64_t(i));
  type_error("list.index(x): x not in list");
}

// ---- globals -----------------------------------------------------------------------------------

Value global_range(Budget& in, const Args& args) {
  if (!args.keyword.empty()) type_error("range() takes no keyword arguments");
  const auto& p = args.positional;
  if (p.empty() || p.size() > 3) type_error("range expected 1 to 3 arguments, got ", p.size());
  int64_t start = 0, stop = 0, step = 1;
  if (p.size() == 1) {
    stop = int_arg(p[0], "range() argument");
  } else {
    start = int_arg(p[0], "range() argument");
    stop = int_arg(p[1], "range() argument");
    if (p.size() == 3) step = int_arg(p[2], "range() argument");
  }
  if (step == 0) type_error("range() arg 3 must not be zero");
  // Count without overflow: ceil((stop - start) / step) for the matching direction.
  const long double span = static_cast<long double>(stop) - static_cast<long double>(start);
  const long double n = std::max<long double>(0, std::ceil(span / static_cast<long double>(step)));
  if (n > static_cast<long double>(in.limits().max_range))
    fail(ErrorKind::kLimitExceeded, "range() of ", static_cast<double>(n), " items exceeds the limit of ",
         in.limits().max_range);
  std::vector<Value> items;
  items.reserve(static_cast<size_t>(n));
  for (int64_t i = 0, v = start; i < static_cast<int64_t>(n); ++i, v += step) items.emplace_back(v);
  return make_list(in, std::move(items));
}

std::vector<std::pair<std::string, Value>> mapping_args(const char* callee, const Args& args) {
  if (args.positional.size() > 1) type_error(callee, "() takes at most 1 positional argument");
  std::vector<std::pair<std::string, Value>> entries;
  if (!args.positional.empty()) {
    if (!args.positional[0].is_object()) type_error(callee, "() argument must be a mapping");
    entries = args.positional[0].as_object().entries;
  }
  for (const auto& kw : args.keyword) entries.push_back(kw);
  return entries;
}

Value global_namespace(const Args& args) {
  auto ns = std::make_shared<NamespaceData>();
  for (auto& [key, value] : mapping_args("namespace", args)) {
    if (value.contains_namespace()) fail(ErrorKind::kUnsupported, "storing a namespace inside a namespace");
    ns->attrs.set(std::move(key), std::move(value));
  }
  return Value(std::move(ns));
}

Value global_strftime_now(const Args& args) {
  const auto a = args.bind("strftime_now", {"format"}, 1);
  const std::string& format = string_arg(*a[0], "strftime_now format");
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  if (format.empty()) return Value(std::string());
  for (size_t size = 256; size <= 65536; size *= 4) {
    std::string buffer(size, '\0');
    const size_t written = std::strftime(buffer.data(), buffer.size(), format.c_str(), &local);
    if (written > 0) {
      buffer.resize(written);
      return Value(std::move(buffer));
    }
  }
  return Value(std::string());  // formats that expand to nothing, like "%p" in some locales
}

constexpr std::string_view kGlobalNames[] = {"range", "namespace", "dict", "raise_exception", "strftime_now"};

}  // namespace

// ---- public entry points -------------------------------------------------------------------------

void undefined_error(const Value& undefined) {
  const std::string& hint = undefined.undefined_hint();
  type_error(hint.empty() ? std::string("value is undefined") : hint);
}

bool is_filter_name(std::string_view name) { return filter_table().count(name) > 0; }
bool is_test_name(std::string_view name) { return test_table().count(name) > 0; }

Value apply_filter(Budget& in, const std::string& name, const Value& input, const Args& args) {
  const auto it = filter_table().find(name);
  if (it == filter_table().end()) type_error("no filter named '", name, "'");
  if (!it->second) fail(ErrorKind::kUnsupported, "the '", name, "' filter is not supported in chat templates");
  return it->second(in, input, args);
}

bool apply_test(Budget& in, const std::string& name, const Value& v, const Args& args) {
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
      const Value r = arithmetic(in, BinaryOp::kMod, v, Value(int64_t(2)));
      return equals(r, Value(int64_t(it->second == TestId::kOdd ? 1 : 0)));
    }
    case TestId::kDivisibleBy: return !truthy(arithmetic(in, BinaryOp::kMod, v, one_arg()));
    case TestId::kLower: args.bind(name, {}); return pystr::is_lower(str_of(in, v));
    case TestId::kUpper: args.bind(name, {}); return pystr::is_upper(str_of(in, v));
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

Value call_builtin(Budget& in, const CallableData& fn, const Args& args) {
  if (fn.kind == CallableData::Kind::kMethod) {
    const Value& self = fn.receiver;
    if (self.is_string()) return string_method(in, self.as_string(), fn.name, args);
    if (self.is_object()) return dict_method(in, self.as_object(), fn.name, args);
    if (self.is_array()) return list_method(self.as_array(), fn.name, args);
    if (self.is_loop() && fn.name == "cycle") {
      if (args.positional.empty()) type_error("no items for cycling given");
      const size_t n = args.positional.size();
      return args.positional[size_t(self.as_loop().index0) % n];
    }
    fail(ErrorKind::kInternal, "unknown method ", fn.name);
  }
  const std::string& name = fn.name;
  if (name == "range") return global_range(in, args);
  if (name == "namespace") return global_namespace(args);
  if (name == "dict") return make_object(mapping_args("dict", args));
  if (name == "raise_exception") {
    const auto a = args.bind("raise_exception", {"message"}, 1);
    throw TemplateRaised{str_of(in, *a[0])};
  }
  if (name == "strftime_now") return global_strftime_now(args);
  fail(ErrorKind::kInternal, "unknown builtin ", name);
}

void install_globals(Frame& frame) {
  for (std::string_view name : kGlobalNames) {
    CallableData fn;
    fn.kind = CallableData::Kind::kBuiltin;
    fn.name = std::string(name);
    frame.vars[std::string(name)] = make_callable(std::move(fn));
  }
}

Value get_attr(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined: undefined_error(obj);
    case Value::Kind::kObject:
      // jinja2 tries Python attributes before keys: d.items is the method even if "items" is a key.
      if (is_dict_method(name)) return bound_method(obj, name);
      if (is_unsafe_dict_method(name))
        return Value::undefined("access to attribute '" + name + "' of 'dict' object is unsafe");
      if (const Value* v = obj.as_object().find(name)) return *v;
      return Value::undefined("'dict object' has no attribute '" + name + "'");
    case Value::Kind::kNamespace:
      if (const Value* v = obj.as_namespace().attrs.find(name)) return *v;
      return Value::undefined("'Namespace object' has no attribute '" + name + "'");
    case Value::Kind::kString:
      if (is_str_method(name)) return bound_method(obj, name);
      break;
    case Value::Kind::kArray:
      if (is_list_method(name)) return bound_method(obj, name);
      if (is_unsafe_list_method(name))
        return Value::undefined("access to attribute '" + name + "' of 'list' object is unsafe");
      break;
    case Value::Kind::kLoop: return loop_attr(obj, name);
    default: break;
  }
  return Value::undefined(cat("'", type_name(obj), " object' has no attribute '", name, "'"));
}

Value get_item(const Value& obj, const Value& key) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined: undefined_error(obj);
    case Value::Kind::kObject:
      // jinja2 tries keys before attributes for subscripts: d['items'] is the key if present.
      if (key.is_string()) {
        if (const Value* v = obj.as_object().find(key.as_string())) return *v;
        return get_attr(obj, key.as_string());
      }
      return Value::undefined(cat("'dict object' has no item ", to_str(key, 256)));
    case Value::Kind::kArray:
    case Value::Kind::kString: {
      if (key.is_string()) return get_attr(obj, key.as_string());
      if (!key.is_int() && !key.is_bool()) break;
      int64_t index = key.to_int();
      if (obj.is_array()) {
        const auto n = static_cast<int64_t>(obj.as_array().items.size());
        if (index < 0) index += n;
        if (index < 0 || index >= n) return Value::undefined(cat("list object has no element ", key.to_int()));
        return obj.as_array().items[size_t(index)];
      }
      const std::string& s = obj.as_string();
      if (pystr::is_ascii(s)) {
        const auto n = static_cast<int64_t>(s.size());
        if (index < 0) index += n;
        if (index < 0 || index >= n) return Value::undefined(cat("str object has no element ", key.to_int()));
        return Value(s.substr(size_t(index), 1));
      }
      const std::u32string cps = pystr::decode(s);
      const auto n = static_cast<int64_t>(cps.size());
      if (index < 0) index += n;
      if (index < 0 || index >= n) return Value::undefined(cat("str object has no element ", key.to_int()));
      return Value(pystr::encode(std::u32string(1, cps[size_t(index)])));
    }
    case Value::Kind::kNamespace:
    case Value::Kind::kLoop:
      if (key.is_string()) return get_attr(obj, key.as_string());
      break;
    default: break;
  }
  return Value::undefined(cat("'", type_name(obj), " object' has no item ", to_str(key, 256)));
}

Value slice(Budget& in, const Value& obj, const Value* start_v, const Value* stop_v, const Value* step_v) {
  if (obj.is_undefined()) undefined_error(obj);
  const auto bound = [](const Value* v) -> std::optional<int64_t> {
    if (!v || v->is_none()) return std::nullopt;
    return int_arg(*v, "slice index");
  };
  const std::optional<int64_t> step_opt = bound(step_v);
  const int64_t step = step_opt.value_or(1);
  if (step == 0) type_error("slice step cannot be zero");
  if (step == INT64_MIN) overflow();

  std::u32string cps;
  const bool is_string = obj.is_string();
  if (is_string) {
    cps = pystr::decode(obj.as_string());
  } else if (!obj.is_array()) {
    type_error("'", type_name(obj), "' object is not subscriptable");
  }
  const int64_t n = is_string ? int64_t(cps.size()) : int64_t(obj.as_array().items.size());
  // Python's PySlice_AdjustIndices.
  const auto adjust = [&](std::optional<int64_t> v, int64_t fallback) {
    if (!v) return fallback;
    int64_t i = *v;
    if (i < 0) {
      i += n;
      if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= n) {
      i = step < 0 ? n - 1 : n;
    }
    return i;
  };
  const int64_t start = adjust(bound(start_v), step < 0 ? n - 1 : 0);
  const int64_t stop = adjust(bound(stop_v), step < 0 ? -1 : n);
  std::vector<size_t> picks;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) picks.push_back(size_t(i));
  in.charge(picks.size());
  if (is_string) {
    std::u32string out;
    out.reserve(picks.size());
    for (size_t i : picks) out.push_back(cps[i]);
    return make_text(in, pystr::encode(out));
  }
  const ArrayData& a = obj.as_array();
  std::vector<Value> out;
  out.reserve(picks.size());
  for (size_t i : picks) out.push_back(a.items[i]);
  return make_list(in, std::move(out), a.is_tuple);
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return {};
    case Value::Kind::kArray: return v.as_array().items;
    case Value::Kind::kObject: {
      std::vector<Value> keys;
      keys.reserve(v.as_object().entries.size());
      for (const auto& [key, value] : v.as_object().entries) keys.emplace_back(key);
      return keys;
    }
    case Value::Kind::kString: {
      std::vector<Value> chars;
      const std::string& s = v.as_string();
      for (size_t i = 0; i < s.size();) {
        const size_t start = i;
        pystr::next_code_point(s, i);
        chars.emplace_back(s.substr(start, i - start));
      }
      return chars;
    }
    default: type_error("'", type_name(v), "' object is not iterable");
  }
}

bool contains(const Value& haystack, const Value& needle) {
  switch (haystack.kind()) {
    case Value::Kind::kUndefined: return false;
    case Value::Kind::kString:
      if (!needle.is_string())
        type_error("'in <string>' requires string as left operand, not ", type_name(needle));
      return haystack.as_string().find(needle.as_string()) != std::string::npos;
    case Value::Kind::kArray:
      for (const Value& item : haystack.as_array().items)
        if (equals(item, needle)) return true;
      return false;
    case Value::Kind::kObject:
      return needle.is_string() && haystack.as_object().find(needle.as_string()) != nullptr;
    default: type_error("argument of type '", type_name(haystack), "' is not iterable");
  }
}

Value arithmetic(Budget& in, BinaryOp op, const Value& a, const Value& b) {
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  if (a.is_number() && b.is_number()) return numeric(op, a, b);
  if (op == BinaryOp::kAdd) {
    if (a.is_string() && b.is_string()) {
      in.check_string_size(a.as_string().size() + b.as_string().size());
      return make_text(in, a.as_string() + b.as_string());
    }
    if (a.is_array() && b.is_array() && a.as_array().is_tuple == b.as_array().is_tuple) {
      std::vector<Value> items = a.as_array().items;
      in.check_collection_size(items.size() + b.as_array().items.size());
      items.insert(items.end(), b.as_array().items.begin(), b.as_array().items.end());
      return make_list(in, std::move(items), a.as_array().is_tuple);
    }
    if (a.is_string()) type_error("can only concatenate str (not \"", type_name(b), "\") to str");
  }
  if (op == BinaryOp::kMul) {
    if ((a.is_string() || a.is_array()) && (b.is_int() || b.is_bool())) return repeat(in, a, b.to_int());
    if ((b.is_string() || b.is_array()) && (a.is_int() || a.is_bool())) return repeat(in, b, a.to_int());
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

size_t length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return 0;
    case Value::Kind::kString: return pystr::length(v.as_string());
    case Value::Kind::kArray: return v.as_array().items.size();
    case Value::Kind::kObject: return v.as_object().entries.size();
    default: type_error("object of type '", type_name(v), "' has no len()");
  }
}

}  // namespace qvl::jinja
