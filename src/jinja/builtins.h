// The Python/jinja2 runtime behind templates, one file per part: attribute and item access,
// iteration (builtin_access.cpp), operators (builtin_arithmetic.cpp), filters (builtin_filters.cpp),
// tests (builtin_tests.cpp), str/dict/list methods (builtin_methods.cpp) and the global functions
// (builtin_globals.cpp). They depend on values and the render's Budget, not on the interpreter.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "jinja/ast.h"
#include "jinja/budget.h"
#include "jinja/call.h"
#include "jinja/value.h"

namespace qvl::jinja {

// Names the parser accepts after `|` and `is`. Names of real jinja2 filters that qvl does not
// implement are accepted too and fail with kUnsupported only if they are actually evaluated.
bool is_filter_name(std::string_view name);
bool is_test_name(std::string_view name);

Value apply_filter(Budget& budget, const std::string& name, const Value& input, const Args& args);
bool apply_test(Budget& budget, const std::string& name, const Value& input, const Args& args);
// Builtin functions (range, namespace, ...) and bound methods ("abc".upper, d.items, ...).
Value call_builtin(Budget& budget, const CallableData& fn, const Args& args);
// Registers range, namespace, dict, raise_exception and strftime_now.
void install_globals(Frame& frame);

// jinja2's sandboxed getattr (a.b) and getitem (a[b]).
Value get_attr(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key);
// Python slicing of str/list/tuple; absent bounds are null.
Value slice(Budget& budget, const Value& obj, const Value* start, const Value* stop, const Value* step);
// Python iteration: list items, dict keys, str characters; Undefined iterates as empty.
std::vector<Value> iterate(const Value& v);
// Python `needle in haystack`.
bool contains(const Value& haystack, const Value& needle);
// Python arithmetic (+ - * / // % **) and comparisons, with jinja2's Undefined rules.
Value arithmetic(Budget& budget, BinaryOp op, const Value& a, const Value& b);
bool compare(CompareOp op, const Value& a, const Value& b);
// Python len().
size_t length(const Value& v);

// jinja2's UndefinedError for an operation on an Undefined value.
[[noreturn]] void undefined_error(const Value& undefined);

}  // namespace qvl::jinja
