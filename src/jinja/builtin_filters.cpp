// jinja2's filters (`x | name(args)`) as transformers configures them, plus int()/float() parsing of strings.
#include "jinja/builtins.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <functional>
#include <optional>
#include <unordered_map>

#include "jinja/builtin_helpers.h"
#include "jinja/pystr.h"

namespace qvl::jinja {
namespace {

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

Value filter_attr(Budget& budget, const Value& v, const Args& args) {
  const auto a = args.bind("attr", {"name"}, 1);
  return get_attr(v, str_of(budget, *a[0]));
}

Value filter_capitalize(Budget& budget, const Value& v, const Args& args) {
  args.bind("capitalize", {});
  return make_text(budget, pystr::capitalize(str_of(budget, v)));
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

Value filter_dictsort(Budget& budget, const Value& v, const Args& args) {
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
  return make_list(budget, std::move(pairs));
}

Value filter_escape(Budget& budget, const Value& v, const Args& args) {
  args.bind("escape", {});
  std::string out;
  for (char c : str_of(budget, v)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return make_text(budget, std::move(out));
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

Value filter_indent(Budget& budget, const Value& v, const Args& args) {
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
    budget.check_string_size(out.size());
  }
  if (first) out = indentation + out;
  return make_text(budget, std::move(out));
}

Value filter_items(Budget& budget, const Value& v, const Args& args) {
  args.bind("items", {});
  if (v.is_undefined()) return make_array({});
  if (!v.is_object()) type_error("Can only get item pairs from a mapping.");
  std::vector<Value> pairs;
  pairs.reserve(v.as_object().entries.size());
  for (const auto& [key, value] : v.as_object().entries) pairs.push_back(make_array({Value(key), value}, true));
  return make_list(budget, std::move(pairs));
}

Value filter_join(Budget& budget, const Value& v, const Args& args) {
  const auto a = args.bind("join", {"d", "attribute"});
  const std::string separator = a[0] ? str_of(budget, *a[0]) : std::string();
  std::string out;
  bool first = true;
  for (const Value& item : iterate(v)) {
    if (!first) out += separator;
    first = false;
    append_str(out, present(a[1]) ? get_attribute_path(item, str_of(budget, *a[1])) : item,
               budget.limits().max_output_bytes);
    budget.check_string_size(out.size());
  }
  return make_text(budget, std::move(out));
}

Value filter_list(Budget& budget, const Value& v, const Args& args) {
  args.bind("list", {});
  return make_list(budget, iterate(v));
}

Value filter_lower(Budget& budget, const Value& v, const Args& args) {
  args.bind("lower", {});
  return make_text(budget, pystr::lower(str_of(budget, v)));
}

Value filter_upper(Budget& budget, const Value& v, const Args& args) {
  args.bind("upper", {});
  return make_text(budget, pystr::upper(str_of(budget, v)));
}

// jinja2's title filter: capitalizes after whitespace and after - ( { [ <, lowercases the rest.
Value filter_title(Budget& budget, const Value& v, const Args& args) {
  args.bind("title", {});
  std::u32string cps = pystr::decode(str_of(budget, v));
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
  return make_text(budget, pystr::encode(cps));
}

Value filter_map(Budget& budget, const Value& v, const Args& args) {
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
    const std::string path = str_of(budget, *attribute);
    for (const Value& item : items) {
      Value mapped = get_attribute_path(item, path);
      if (mapped.is_undefined() && fallback) mapped = *fallback;
      out.push_back(std::move(mapped));
      budget.charge(1);
    }
    return make_list(budget, std::move(out));
  }
  if (args.positional.empty()) type_error("map requires a filter argument");
  const std::string filter = string_arg(args.positional[0], "map filter name");
  if (!is_filter_name(filter)) type_error("no filter named '", filter, "'");
  Args rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.keyword = args.keyword;
  for (const Value& item : items) out.push_back(apply_filter(budget, filter, item, rest));
  return make_list(budget, std::move(out));
}

Value min_max(Budget& budget, const Value& v, const Args& args, bool want_max) {
  const auto a = args.bind(want_max ? "max" : "min", {"case_sensitive", "attribute"});
  const bool case_sensitive = a[0] && truthy(*a[0]);
  const std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  const auto key = [&](const Value& item) {
    return case_key(present(a[1]) ? get_attribute_path(item, str_of(budget, *a[1])) : item, case_sensitive);
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
Value filter_max(Budget& budget, const Value& v, const Args& args) { return min_max(budget, v, args, true); }
Value filter_min(Budget& budget, const Value& v, const Args& args) { return min_max(budget, v, args, false); }

// select/reject/selectattr/rejectattr share one implementation.
Value select_items(Budget& budget, const Value& v, const Args& args, bool by_attribute, bool keep_matches) {
  size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.positional.empty()) type_error("selectattr/rejectattr need an attribute name");
    attribute = str_of(budget, args.positional[next++]);
  }
  std::string test;
  if (next < args.positional.size()) test = string_arg(args.positional[next++], "test name");
  if (!test.empty() && !is_test_name(test)) type_error("no test named '", test, "'");
  Args test_args;
  test_args.positional.assign(args.positional.begin() + long(next), args.positional.end());
  test_args.keyword = args.keyword;
  std::vector<Value> out;
  for (const Value& item : iterate(v)) {
    budget.charge(1);
    const Value subject = by_attribute ? get_attribute_path(item, attribute) : item;
    const bool matches = test.empty() ? truthy(subject) : apply_test(budget, test, subject, test_args);
    if (matches == keep_matches) out.push_back(item);
  }
  return make_list(budget, std::move(out));
}
Value filter_select(Budget& budget, const Value& v, const Args& a) { return select_items(budget, v, a, false, true); }
Value filter_reject(Budget& budget, const Value& v, const Args& a) { return select_items(budget, v, a, false, false); }
Value filter_selectattr(Budget& budget, const Value& v, const Args& a) {
  return select_items(budget, v, a, true, true);
}
Value filter_rejectattr(Budget& budget, const Value& v, const Args& a) {
  return select_items(budget, v, a, true, false);
}

Value filter_replace(Budget& budget, const Value& v, const Args& args) {
  const auto a = args.bind("replace", {"old", "new", "count"}, 2);
  const int64_t count = present(a[2]) ? int_arg(*a[2], "replace count") : -1;
  return make_text(budget, pystr::replace(str_of(budget, v), str_of(budget, *a[0]), str_of(budget, *a[1]), count,
                                          budget.limits().max_output_bytes));
}

Value filter_reverse(Budget& budget, const Value& v, const Args& args) {
  args.bind("reverse", {});
  if (v.is_string()) {
    std::u32string cps = pystr::decode(v.as_string());
    std::reverse(cps.begin(), cps.end());
    return make_text(budget, pystr::encode(cps));
  }
  std::vector<Value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  return make_list(budget, std::move(items));
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

Value filter_safe(Budget& budget, const Value& v, const Args& args) {
  args.bind("safe", {});
  // jinja2 returns Markup(str(v)): a str. Autoescaping is off, so the marking itself is moot.
  if (v.is_string()) return v;
  return make_text(budget, str_of(budget, v));
}

Value filter_sort(Budget& budget, const Value& v, const Args& args) {
  const auto a = args.bind("sort", {"reverse", "case_sensitive", "attribute"});
  std::vector<Value> items = iterate(v);
  const bool case_sensitive = a[1] && truthy(*a[1]);
  const std::string attribute = present(a[2]) ? str_of(budget, *a[2]) : std::string();
  budget.charge(items.size());
  sort_values(items, [&](const Value& item) {
    return case_key(attribute.empty() ? item : get_attribute_path(item, attribute), case_sensitive);
  }, a[0] && truthy(*a[0]));
  return make_list(budget, std::move(items));
}

Value filter_string(Budget& budget, const Value& v, const Args& args) {
  args.bind("string", {});
  if (v.is_string()) return v;
  return make_text(budget, str_of(budget, v));
}

Value filter_sum(Budget& budget, const Value& v, const Args& args) {
  const auto a = args.bind("sum", {"attribute", "start"});
  Value total = a[1] ? *a[1] : Value(int64_t(0));
  for (const Value& item : iterate(v))
    total = arithmetic(budget, BinaryOp::kAdd, total,
                       present(a[0]) ? get_attribute_path(item, str_of(budget, *a[0])) : item);
  return total;
}

// transformers' override: json.dumps(x, ensure_ascii=False, indent=None, separators=None,
// sort_keys=False), i.e. key order kept and no HTML escaping (unlike jinja2's own tojson).
Value filter_tojson(Budget& budget, const Value& v, const Args& args) {
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
  return make_text(budget, to_json(v, options, budget.limits().max_output_bytes));
}

Value filter_trim(Budget& budget, const Value& v, const Args& args) {
  const auto a = args.bind("trim", {"chars"});
  return make_text(budget, pystr::strip(str_of(budget, v), optional_string_arg(a[0], "trim chars"), true, true));
}

Value filter_unique(Budget& budget, const Value& v, const Args& args) {
  const auto a = args.bind("unique", {"case_sensitive", "attribute"});
  const bool case_sensitive = a[0] && truthy(*a[0]);
  std::vector<Value> out, seen;
  for (const Value& item : iterate(v)) {
    const Value key = case_key(present(a[1]) ? get_attribute_path(item, str_of(budget, *a[1])) : item, case_sensitive);
    budget.charge(seen.size() + 1);
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); })) continue;
    seen.push_back(key);
    out.push_back(item);
  }
  return make_list(budget, std::move(out));
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

}  // namespace

bool is_filter_name(std::string_view name) { return filter_table().count(name) > 0; }

Value apply_filter(Budget& budget, const std::string& name, const Value& input, const Args& args) {
  const auto it = filter_table().find(name);
  if (it == filter_table().end()) type_error("no filter named '", name, "'");
  if (!it->second) fail(ErrorKind::kUnsupported, "the '", name, "' filter is not supported in chat templates");
  return it->second(budget, input, args);
}

}  // namespace qvl::jinja
