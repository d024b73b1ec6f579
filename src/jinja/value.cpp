#include "jinja/value.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"
#include "jinja/pystr.h"

namespace qvl::jinja {
namespace {

constexpr size_t kIndexThreshold = 8;  // dicts larger than this get a hash index

void check_depth(int depth) {
  if (depth > kMaxValueDepth)
    fail(ErrorKind::kLimitExceeded, "value nesting deeper than ", kMaxValueDepth, " levels");
}

void check_size(const std::string& out, size_t max_bytes) {
  if (out.size() > max_bytes)
    fail(ErrorKind::kLimitExceeded, "a string would exceed the ", max_bytes, "-byte limit");
}

void append_container_repr(std::string& out, const Value& v, size_t max_bytes) {
  switch (v.kind()) {
    case Value::Kind::kArray: {
      const ArrayData& a = v.as_array();
      out.push_back(a.is_tuple ? '(' : '[');
      for (size_t i = 0; i < a.items.size(); ++i) {
        if (i) out += ", ";
        append_repr(out, a.items[i], max_bytes);
        check_size(out, max_bytes);
      }
      if (a.is_tuple && a.items.size() == 1) out.push_back(',');
      out.push_back(a.is_tuple ? ')' : ']');
      return;
    }
    case Value::Kind::kObject:
    case Value::Kind::kNamespace: {
      const ObjectData& o = v.is_object() ? v.as_object() : v.as_namespace().attrs;
      if (v.is_namespace()) out += "<Namespace ";
      out.push_back('{');
      for (size_t i = 0; i < o.entries.size(); ++i) {
        if (i) out += ", ";
        pystr::append_repr(out, o.entries[i].first);
        out += ": ";
        append_repr(out, o.entries[i].second, max_bytes);
        check_size(out, max_bytes);
      }
      out.push_back('}');
      if (v.is_namespace()) out.push_back('>');
      return;
    }
    default:
      QVL_ASSERT(false);
  }
}

void append_json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto escape_u = [&](uint32_t unit) {
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out.push_back(kHex[(unit >> shift) & 0xF]);
  };
  out.push_back('"');
  const auto escape_simple = [&](char32_t c) {
    switch (c) {
      case '"': out += "\\\""; return true;
      case '\\': out += "\\\\"; return true;
      case '\n': out += "\\n"; return true;
      case '\r': out += "\\r"; return true;
      case '\t': out += "\\t"; return true;
      case '\b': out += "\\b"; return true;
      case '\f': out += "\\f"; return true;
      default: return false;
    }
  };
  if (!ensure_ascii) {
    for (char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      if (escape_simple(c)) continue;
      if (c < 0x20) {
        escape_u(c);
      } else {
        out.push_back(ch);
      }
    }
  } else {
    // Python escapes everything outside printable ASCII (0x7f included), astral planes as pairs.
    for (char32_t cp : pystr::decode(s)) {
      if (escape_simple(cp)) continue;
      if (cp >= 0x20 && cp < 0x7F) {
        out.push_back(static_cast<char>(cp));
      } else if (cp < 0x10000) {
        escape_u(cp);
      } else {
        const uint32_t v = cp - 0x10000;
        escape_u(0xD800 + (v >> 10));
        escape_u(0xDC00 + (v & 0x3FF));
      }
    }
  }
  out.push_back('"');
}

void dump_json(std::string& out, const Value& v, const JsonDumpOptions& opt, int level, size_t max_bytes) {
  const auto newline_indent = [&](int lvl) {
    out.push_back('\n');
    for (int i = 0; i < lvl; ++i) out += opt.indent;
  };
  switch (v.kind()) {
    case Value::Kind::kNone: out += "null"; return;
    case Value::Kind::kBool: out += v.as_bool() ? "true" : "false"; return;
    case Value::Kind::kInt: out += std::to_string(v.as_int()); return;
    case Value::Kind::kFloat: {
      const double d = v.as_float();
      if (std::isnan(d)) out += "NaN";
      else if (std::isinf(d)) out += d < 0 ? "-Infinity" : "Infinity";
      else out += pystr::float_repr(d);
      return;
    }
    case Value::Kind::kString: append_json_string(out, v.as_string(), opt.ensure_ascii); return;
    case Value::Kind::kArray: {
      const auto& items = v.as_array().items;
      if (items.empty()) {
        out += "[]";
        return;
      }
      out.push_back('[');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += opt.item_separator;
        if (opt.indent_set) newline_indent(level + 1);
        dump_json(out, items[i], opt, level + 1, max_bytes);
        check_size(out, max_bytes);
      }
      if (opt.indent_set) newline_indent(level);
      out.push_back(']');
      return;
    }
    case Value::Kind::kObject: {
      const auto& entries = v.as_object().entries;
      if (entries.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<std::string, Value>*> order;
      order.reserve(entries.size());
      for (const auto& e : entries) order.push_back(&e);
      if (opt.sort_keys)
        std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->first < b->first; });
      out.push_back('{');
      for (size_t i = 0; i < order.size(); ++i) {
        if (i) out += opt.item_separator;
        if (opt.indent_set) newline_indent(level + 1);
        append_json_string(out, order[i]->first, opt.ensure_ascii);
        out += opt.key_separator;
        dump_json(out, order[i]->second, opt, level + 1, max_bytes);
        check_size(out, max_bytes);
      }
      if (opt.indent_set) newline_indent(level);
      out.push_back('}');
      return;
    }
    default:
      fail(ErrorKind::kInvalidArgument, "Object of type ", type_name(v), " is not JSON serializable");
  }
}

template <class Json>
Value convert_json(const Json& j, int depth, int max_depth) {
  if (depth > max_depth) fail(ErrorKind::kLimitExceeded, "chat template input nested deeper than ", max_depth, " levels");
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value::none();
    case nlohmann::json::value_t::boolean: return Value(j.template get<bool>());
    case nlohmann::json::value_t::number_integer: return Value(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      const auto u = j.template get<uint64_t>();
      if (u > uint64_t(std::numeric_limits<int64_t>::max()))
        fail(ErrorKind::kUnsupported, "chat template input: integer ", u, " does not fit in 64 bits");
      return Value(int64_t(u));
    }
    case nlohmann::json::value_t::number_float: return Value(j.template get<double>());
    case nlohmann::json::value_t::string: return Value(j.template get_ref<const std::string&>());
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& item : j) items.push_back(convert_json(item, depth + 1, max_depth));
      return make_array(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      std::vector<std::pair<std::string, Value>> entries;
      entries.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it)
        entries.emplace_back(it.key(), convert_json(it.value(), depth + 1, max_depth));
      return make_object(std::move(entries));
    }
    default:
      fail(ErrorKind::kUnsupported, "chat template input: unsupported JSON value type ", j.type_name());
  }
}

}  // namespace

Value Value::undefined(std::string hint) {
  return Value(Data(Undefined{std::make_shared<const std::string>(std::move(hint))}));
}

const std::string& Value::undefined_hint() const {
  static const std::string kEmpty;
  const auto& hint = std::get<Undefined>(data_).hint;
  return hint ? *hint : kEmpty;
}

const void* Value::identity() const {
  switch (kind()) {
    case Kind::kArray: return std::get<std::shared_ptr<const ArrayData>>(data_).get();
    case Kind::kObject: return std::get<std::shared_ptr<const ObjectData>>(data_).get();
    case Kind::kNamespace: return std::get<std::shared_ptr<NamespaceData>>(data_).get();
    case Kind::kCallable: return std::get<std::shared_ptr<const CallableData>>(data_).get();
    case Kind::kLoop: return std::get<std::shared_ptr<const LoopData>>(data_).get();
    default: return nullptr;
  }
}

int Value::depth() const {
  switch (kind()) {
    case Kind::kArray: return as_array().depth;
    case Kind::kObject: return as_object().depth;
    case Kind::kNamespace: {
      int d = 0;
      for (const auto& [key, value] : as_namespace().attrs.entries) d = std::max(d, value.depth());
      return d + 1;
    }
    default: return 0;
  }
}

bool Value::contains_namespace() const {
  switch (kind()) {
    case Kind::kArray: return as_array().has_namespace;
    case Kind::kObject: return as_object().has_namespace;
    case Kind::kNamespace: return true;
    default: return false;
  }
}

double Value::to_double() const {
  if (is_float()) return as_float();
  return static_cast<double>(to_int());
}

const Value* ObjectData::find(std::string_view key) const {
  if (index_.empty()) {
    for (const auto& entry : entries)
      if (entry.first == key) return &entry.second;
    return nullptr;
  }
  const auto it = index_.find(std::string(key));
  return it == index_.end() ? nullptr : &entries[it->second].second;
}

void ObjectData::set(std::string key, Value value) {
  depth = std::max(depth, value.depth() + 1);
  has_namespace = has_namespace || value.contains_namespace();
  if (Value* existing = const_cast<Value*>(find(key))) {
    *existing = std::move(value);
    return;
  }
  entries.emplace_back(std::move(key), std::move(value));
  if (!index_.empty()) {
    index_.emplace(entries.back().first, entries.size() - 1);
  } else if (entries.size() > kIndexThreshold) {
    for (size_t i = 0; i < entries.size(); ++i) index_.emplace(entries[i].first, i);
  }
}

Value make_array(std::vector<Value> items, bool is_tuple) {
  auto data = std::make_shared<ArrayData>();
  int depth = 0;
  bool has_namespace = false;
  for (const Value& item : items) {
    depth = std::max(depth, item.depth());
    has_namespace = has_namespace || item.contains_namespace();
  }
  check_depth(depth + 1);
  data->items = std::move(items);
  data->is_tuple = is_tuple;
  data->depth = depth + 1;
  data->has_namespace = has_namespace;
  return Value(std::shared_ptr<const ArrayData>(std::move(data)));
}

Value make_object(std::vector<std::pair<std::string, Value>> entries) {
  auto data = std::make_shared<ObjectData>();
  for (auto& [key, value] : entries) data->set(std::move(key), std::move(value));
  check_depth(data->depth);
  return Value(std::shared_ptr<const ObjectData>(std::move(data)));
}

Value make_callable(CallableData data) {
  return Value(std::shared_ptr<const CallableData>(std::make_shared<CallableData>(std::move(data))));
}

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return false;
    case Value::Kind::kBool: return v.as_bool();
    case Value::Kind::kInt: return v.as_int() != 0;
    case Value::Kind::kFloat: return v.as_float() != 0.0;
    case Value::Kind::kString: return !v.as_string().empty();
    case Value::Kind::kArray: return !v.as_array().items.empty();
    case Value::Kind::kObject: return !v.as_object().entries.empty();
    default: return true;
  }
}

void append_str(std::string& out, const Value& v, size_t max_bytes) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return;
    case Value::Kind::kNone: out += "None"; return;
    case Value::Kind::kBool: out += v.as_bool() ? "True" : "False"; return;
    case Value::Kind::kInt: out += std::to_string(v.as_int()); return;
    case Value::Kind::kFloat: out += pystr::float_repr(v.as_float()); return;
    case Value::Kind::kString: out += v.as_string(); return;
    case Value::Kind::kArray:
    case Value::Kind::kObject:
    case Value::Kind::kNamespace: append_container_repr(out, v, max_bytes); return;
    case Value::Kind::kCallable: {
      const CallableData& c = v.as_callable();
      if (c.kind == CallableData::Kind::kMacro) out += "<Macro '" + c.name + "'>";
      else if (c.kind == CallableData::Kind::kMethod) out += "<built-in method " + c.name + ">";
      else out += "<function " + c.name + ">";
      return;
    }
    case Value::Kind::kLoop: {
      const LoopData& l = v.as_loop();
      out += "<LoopContext " + std::to_string(l.index0 + 1) + "/" + std::to_string(l.items->items.size()) + ">";
      return;
    }
  }
}

std::string to_str(const Value& v, size_t max_bytes) {
  if (v.is_string()) return v.as_string();
  std::string out;
  append_str(out, v, max_bytes);
  check_size(out, max_bytes);
  return out;
}

void append_repr(std::string& out, const Value& v, size_t max_bytes) {
  if (v.is_string()) {
    pystr::append_repr(out, v.as_string());
  } else if (v.is_undefined()) {
    out += "Undefined";
  } else {
    append_str(out, v, max_bytes);
  }
}

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.to_double() == b.to_double();
    return a.to_int() == b.to_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return true;
    case Value::Kind::kString: return a.as_string() == b.as_string();
    case Value::Kind::kArray: {
      const ArrayData& x = a.as_array();
      const ArrayData& y = b.as_array();
      if (x.is_tuple != y.is_tuple || x.items.size() != y.items.size()) return false;
      for (size_t i = 0; i < x.items.size(); ++i)
        if (!equals(x.items[i], y.items[i])) return false;
      return true;
    }
    case Value::Kind::kObject: {
      const ObjectData& x = a.as_object();
      const ObjectData& y = b.as_object();
      if (x.entries.size() != y.entries.size()) return false;
      for (const auto& [key, value] : x.entries) {
        const Value* other = y.find(key);
        if (!other || !equals(value, *other)) return false;
      }
      return true;
    }
    default: return a.identity() == b.identity();
  }
}

const char* type_name(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return "Undefined";
    case Value::Kind::kNone: return "NoneType";
    case Value::Kind::kBool: return "bool";
    case Value::Kind::kInt: return "int";
    case Value::Kind::kFloat: return "float";
    case Value::Kind::kString: return "str";
    case Value::Kind::kArray: return v.as_array().is_tuple ? "tuple" : "list";
    case Value::Kind::kObject: return "dict";
    case Value::Kind::kNamespace: return "Namespace";
    case Value::Kind::kCallable: return "function";
    case Value::Kind::kLoop: return "LoopContext";
  }
  return "object";
}

std::string to_json(const Value& v, const JsonDumpOptions& options, size_t max_bytes) {
  std::string out;
  dump_json(out, v, options, 0, max_bytes);
  check_size(out, max_bytes);
  return out;
}

Value from_json(const nlohmann::json& j, int max_depth) { return convert_json(j, 1, max_depth); }
Value from_json(const nlohmann::ordered_json& j, int max_depth) { return convert_json(j, 1, max_depth); }

}  // namespace qvl::jinja
