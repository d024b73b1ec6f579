// The global functions transformers gives chat templates: range, namespace, dict,
// raise_exception and strftime_now.
#include "jinja/builtins.h"

#include <algorithm>
#include <cmath>
#include <ctime>

#include "core/check.h"
#include "jinja/builtin_helpers.h"

namespace qvl::jinja {
namespace {

Value global_range(Budget& budget, const Args& args) {
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
  if (n > static_cast<long double>(budget.limits().max_range))
    fail(ErrorKind::kLimitExceeded, "range() of ", static_cast<double>(n), " items exceeds the limit of ",
         budget.limits().max_range);
  std::vector<Value> items;
  items.reserve(static_cast<size_t>(n));
  for (int64_t i = 0, v = start; i < static_cast<int64_t>(n); ++i, v += step) items.emplace_back(v);
  return make_list(budget, std::move(items));
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

Value call_builtin(Budget& budget, const CallableData& fn, const Args& args) {
  if (fn.kind == CallableData::Kind::kMethod) return call_method(budget, fn.receiver, fn.name, args);
  const std::string& name = fn.name;
  if (name == "range") return global_range(budget, args);
  if (name == "namespace") return global_namespace(args);
  if (name == "dict") return make_object(mapping_args("dict", args));
  if (name == "raise_exception") {
    const auto a = args.bind("raise_exception", {"message"}, 1);
    throw TemplateRaised{str_of(budget, *a[0])};
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

}  // namespace qvl::jinja
