// Argument checks and result builders shared by the builtin_*.cpp files.
#include "jinja/builtins.h"

#include "jinja/builtin_helpers.h"

namespace qvl::jinja {

std::string str_of(Budget& budget, const Value& v) { return to_str(v, budget.limits().max_output_bytes); }

Value make_text(Budget& budget, std::string text) {
  budget.check_string_size(text.size());
  budget.charge(text.size() / 16);
  return Value(std::move(text));
}

Value make_list(Budget& budget, std::vector<Value> items, bool is_tuple) {
  budget.check_collection_size(items.size());
  budget.charge(items.size());
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

[[noreturn]] void overflow() { fail(ErrorKind::kUnsupported, "integer overflow (beyond 64 bits)"); }

void undefined_error(const Value& undefined) {
  const std::string& hint = undefined.undefined_hint();
  type_error(hint.empty() ? std::string("value is undefined") : hint);
}

}  // namespace qvl::jinja
