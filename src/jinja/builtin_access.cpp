// Python object access: attributes (a.b), items (a[b]), slices, iteration, `in` and len().
#include "jinja/builtins.h"

#include <algorithm>
#include <optional>

#include "jinja/builtin_helpers.h"
#include "jinja/pystr.h"

namespace qvl::jinja {
namespace {

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

}  // namespace

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

Value slice(Budget& budget, const Value& obj, const Value* start_v, const Value* stop_v, const Value* step_v) {
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
  budget.charge(picks.size());
  if (is_string) {
    std::u32string out;
    out.reserve(picks.size());
    for (size_t i : picks) out.push_back(cps[i]);
    return make_text(budget, pystr::encode(out));
  }
  const ArrayData& a = obj.as_array();
  std::vector<Value> out;
  out.reserve(picks.size());
  for (size_t i : picks) out.push_back(a.items[i]);
  return make_list(budget, std::move(out), a.is_tuple);
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
