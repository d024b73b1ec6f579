// What the builtin_*.cpp files share beyond builtins.h: argument checks, result builders that
// charge the budget, and the few pieces one section borrows from another.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/check.h"
#include "jinja/budget.h"
#include "jinja/builtins.h"
#include "jinja/call.h"
#include "jinja/value.h"

namespace qvl::jinja {

// Python's TypeError/ValueError: the data handed to the template does not fit it.
template <typename... Parts>
[[noreturn]] void type_error(Parts&&... parts) {
  fail(ErrorKind::kInvalidArgument, std::forward<Parts>(parts)...);
}
// An int result beyond 64 bits (Python would switch to big integers).
[[noreturn]] void overflow();

// Python str() of a value, bounded by the output limit.
std::string str_of(Budget& budget, const Value& v);
// A string or list result, checked against the size limits and charged to the budget.
Value make_text(Budget& budget, std::string text);
Value make_list(Budget& budget, std::vector<Value> items, bool is_tuple = false);
// `receiver.name` as a callable (a method call is evaluated by call_method).
Value bound_method(const Value& receiver, const std::string& name);
// Argument conversions; a wrong type fails with a TypeError naming `what`.
int64_t int_arg(const Value& v, const char* what);
const std::string& string_arg(const Value& v, const char* what);
// Whether an optional argument was given as something other than None or Undefined.
bool present(const Value* v);
std::optional<std::string> optional_string_arg(const Value* v, const char* what);

// Three-way comparison for ordering; nullopt when Python would raise TypeError (builtin_arithmetic.cpp).
std::optional<int> order(const Value& a, const Value& b);
// jinja2's attribute getter for map/selectattr/sort: "a.b.0" walks items, digits as indices
// (builtin_access.cpp).
Value get_attribute_path(const Value& obj, const std::string& path);
// Calls method `name` bound to `self`: str, dict and list methods and loop.cycle (builtin_methods.cpp).
Value call_method(Budget& budget, const Value& self, const std::string& name, const Args& args);

}  // namespace qvl::jinja
