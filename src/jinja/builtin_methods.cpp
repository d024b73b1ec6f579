// The Python methods templates call on values: str methods, dict.get/items/keys/values,
// list.index/count and loop.cycle.
#include "jinja/builtins.h"

#include <algorithm>

#include "core/check.h"
#include "jinja/builtin_helpers.h"
#include "jinja/pystr.h"

namespace qvl::jinja {
namespace {

Value string_method(Budget& budget, const std::string& s, const std::string& name, const Args& args) {
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
    return make_text(budget,
                     pystr::strip(s, optional_string_arg(a[0], "strip chars"), name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    const auto a = args.bind(name, {"sep", "maxsplit"});
    const int64_t maxsplit = a[1] ? int_arg(*a[1], "maxsplit") : -1;
    const auto sep = optional_string_arg(a[0], "separator");
    const std::vector<std::string> parts = name == "split" ? pystr::split(s, sep, maxsplit) : pystr::rsplit(s, sep, maxsplit);
    budget.check_collection_size(parts.size());
    std::vector<Value> items(parts.begin(), parts.end());
    return make_list(budget, std::move(items));
  }
  if (name == "splitlines") {
    const auto a = args.bind(name, {"keepends"});
    const std::vector<std::string> lines = pystr::splitlines(s, a[0] && truthy(*a[0]));
    std::vector<Value> items(lines.begin(), lines.end());
    return make_list(budget, std::move(items));
  }
  if (name == "replace") {
    const auto a = args.bind(name, {"old", "new", "count"}, 2);
    const int64_t count = a[2] ? int_arg(*a[2], "count") : -1;
    return make_text(budget, pystr::replace(s, string_arg(*a[0], "replace old"), string_arg(*a[1], "replace new"),
                                            count, budget.limits().max_output_bytes));
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    args.bind(name, {});
    if (name == "upper") return make_text(budget, pystr::upper(s));
    if (name == "lower") return make_text(budget, pystr::lower(s));
    if (name == "title") return make_text(budget, pystr::title(s));
    return make_text(budget, pystr::capitalize(s));
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
      budget.check_string_size(out.size());
    }
    return make_text(budget, std::move(out));
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

Value dict_method(Budget& budget, const ObjectData& obj, const std::string& name, const Args& args) {
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
  return make_list(budget, std::move(out));
}

Value list_method(const ArrayData& list, const std::string& name, const Args& args) {
  const auto a = args.bind(name, {"value"}, 1);
  if (name == "count")
    return Value(int64_t(std::count_if(list.items.begin(), list.items.end(), [&](const Value& v) { return equals(v, *a[0]); })));
  for (size_t i = 0; i < list.items.size(); ++i)
    if (equals(list.items[i], *a[0])) return Value(int64_t(i));
  type_error("list.index(x): x not in list");
}

}  // namespace

Value call_method(Budget& budget, const Value& self, const std::string& name, const Args& args) {
  if (self.is_string()) return string_method(budget, self.as_string(), name, args);
  if (self.is_object()) return dict_method(budget, self.as_object(), name, args);
  if (self.is_array()) return list_method(self.as_array(), name, args);
  if (self.is_loop() && name == "cycle") {
    if (args.positional.empty()) type_error("no items for cycling given");
    const size_t n = args.positional.size();
    return args.positional[size_t(self.as_loop().index0) % n];
  }
  fail(ErrorKind::kInternal, "unknown method ", name);
}

}  // namespace qvl::jinja
