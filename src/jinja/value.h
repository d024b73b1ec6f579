// Value model of the Jinja2 subset interpreter behind ChatTemplate.
//
// Values mirror the Python objects a Hugging Face chat template sees: None, bool, int, float,
// str, list/tuple, dict (insertion-ordered), jinja2's Undefined, namespace() objects, the `loop`
// object and callables (macros, builtins, bound methods). Containers are immutable and shared
// (the sandbox transformers uses forbids mutating them), so copying a Value is cheap; only
// namespace() objects are mutable and have reference semantics, as in Python.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace qvl::jinja {

class Value;
struct ArrayData;
struct ObjectData;
struct NamespaceData;
struct CallableData;
struct LoopData;

// jinja2's default Undefined: renders as "", is falsy and iterates as empty, but any attribute
// access or arithmetic on it fails. `hint` says what was missing, for that error.
// Deepest list/dict nesting a value may have, from input or built by a template. Bounds the
// recursion of repr, tojson, comparison and destruction.
inline constexpr int kMaxValueDepth = 256;

struct Undefined {
  std::shared_ptr<const std::string> hint;
};
struct None {};

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kArray, kObject, kNamespace, kCallable, kLoop };

  Value() : data_(Undefined{}) {}
  static Value undefined(std::string hint);
  static Value none() { return Value(Data(None{})); }
  Value(bool b) : data_(b) {}
  Value(int v) : data_(int64_t(v)) {}
  Value(int64_t v) : data_(v) {}
  Value(double v) : data_(v) {}
  Value(std::string s) : data_(std::make_shared<const std::string>(std::move(s))) {}
  Value(const char* s) : Value(std::string(s)) {}
  Value(std::string_view s) : Value(std::string(s)) {}
  Value(std::shared_ptr<const ArrayData> a) : data_(std::move(a)) {}
  Value(std::shared_ptr<const ObjectData> o) : data_(std::move(o)) {}
  Value(std::shared_ptr<NamespaceData> n) : data_(std::move(n)) {}
  Value(std::shared_ptr<const CallableData> c) : data_(std::move(c)) {}
  Value(std::shared_ptr<const LoopData> l) : data_(std::move(l)) {}

  Kind kind() const { return Kind(data_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  bool is_number() const { return is_bool() || is_int() || is_float(); }  // Python: bool is an int
  bool is_string() const { return kind() == Kind::kString; }
  bool is_array() const { return kind() == Kind::kArray; }
  bool is_object() const { return kind() == Kind::kObject; }
  bool is_namespace() const { return kind() == Kind::kNamespace; }
  bool is_callable() const { return kind() == Kind::kCallable; }
  bool is_loop() const { return kind() == Kind::kLoop; }

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const { return std::get<int64_t>(data_); }
  double as_float() const { return std::get<double>(data_); }
  const std::string& as_string() const { return *std::get<std::shared_ptr<const std::string>>(data_); }
  const ArrayData& as_array() const { return *std::get<std::shared_ptr<const ArrayData>>(data_); }
  const std::shared_ptr<const ArrayData>& array_ptr() const { return std::get<std::shared_ptr<const ArrayData>>(data_); }
  const ObjectData& as_object() const { return *std::get<std::shared_ptr<const ObjectData>>(data_); }
  NamespaceData& as_namespace() const { return *std::get<std::shared_ptr<NamespaceData>>(data_); }
  const CallableData& as_callable() const { return *std::get<std::shared_ptr<const CallableData>>(data_); }
  const LoopData& as_loop() const { return *std::get<std::shared_ptr<const LoopData>>(data_); }
  const std::string& undefined_hint() const;

  // Identity of shared objects (Python `is`), for the `sameas` test.
  const void* identity() const;

  // Nesting depth (scalars 0) and whether a namespace is reachable; see ObjectData.
  int depth() const;
  bool contains_namespace() const;

  // int or bool (Python bool is an int) as int64; float as double.
  int64_t to_int() const { return is_bool() ? int64_t(as_bool()) : as_int(); }
  double to_double() const;

 private:
  // Strings are shared like containers: copying a Value never copies text, so repeating a big
  // string in a list or variable costs a pointer, not its size.
  using Data = std::variant<Undefined, None, bool, int64_t, double, std::shared_ptr<const std::string>,
                            std::shared_ptr<const ArrayData>,
                            std::shared_ptr<const ObjectData>, std::shared_ptr<NamespaceData>,
                            std::shared_ptr<const CallableData>, std::shared_ptr<const LoopData>>;
  explicit Value(Data d) : data_(std::move(d)) {}
  Data data_;
};

// list or tuple (tuples come from `(a, b)` literals and dict items; they differ only in repr).
struct ArrayData {
  std::vector<Value> items;
  bool is_tuple = false;
  int depth = 1;
  bool has_namespace = false;
};

// dict with Python's insertion order. Small dicts are scanned; large ones get a hash index.
struct ObjectData {
  std::vector<std::pair<std::string, Value>> entries;
  int depth = 1;
  bool has_namespace = false;

  const Value* find(std::string_view key) const;
  void set(std::string key, Value value);  // replaces an existing key in place (Python dict order)

 private:
  std::unordered_map<std::string, size_t> index_;
};

// namespace(): the one mutable object. It never holds another namespace (assignment checks),
// so reference cycles, and the unbounded recursion they would cause, cannot form.
struct NamespaceData {
  ObjectData attrs;
};

struct LoopData {
  std::shared_ptr<const ArrayData> items;  // the (filtered) sequence being iterated
  int64_t index0 = 0;
  int depth0 = 0;
};

struct MacroStmt;  // ast.h
struct Frame;      // call.h

struct CallableData {
  enum class Kind { kBuiltin, kMethod, kMacro };
  Kind kind = Kind::kBuiltin;
  std::string name;                  // builtin function or method name
  Value receiver;                    // kMethod: the object the method is bound to
  const MacroStmt* macro = nullptr;  // kMacro: its definition (owned by the parsed template)
  // kMacro: scope the macro was defined in. Weak, because that scope holds the macro: a strong
  // reference would be a cycle that leaks every frame defining a macro.
  std::weak_ptr<Frame> closure;
};

// Builders that maintain ArrayData/ObjectData's depth and namespace bookkeeping.
Value make_array(std::vector<Value> items, bool is_tuple = false);
Value make_object(std::vector<std::pair<std::string, Value>> entries);
Value make_callable(CallableData data);

// Python truthiness.
bool truthy(const Value& v);
// Python str(): what `{{ v }}` prints (Undefined prints as ""). Fails (kLimitExceeded) rather
// than produce more than max_bytes (a list holding one big string many times has a huge repr).
std::string to_str(const Value& v, size_t max_bytes);
void append_str(std::string& out, const Value& v, size_t max_bytes);
// Python repr() (strings quoted), used inside container reprs.
void append_repr(std::string& out, const Value& v, size_t max_bytes);
// Python ==, with bool/int/float compared numerically and dicts compared order-free.
bool equals(const Value& a, const Value& b);
// Python's type name for error messages ("str", "int", "dict", ...).
const char* type_name(const Value& v);

// json.dumps options; transformers' `tojson` filter defaults to ensure_ascii=False.
struct JsonDumpOptions {
  bool ensure_ascii = false;
  bool indent_set = false;  // Python indent=None when false
  std::string indent;       // the indent unit when indent_set
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};
// Python json.dumps. Fails (kInvalidArgument) on values JSON cannot hold (Undefined, namespace)
// and (kLimitExceeded) on output beyond max_bytes.
std::string to_json(const Value& v, const JsonDumpOptions& options, size_t max_bytes);

// Converts request data into Values, keeping the JSON document's key order. Fails on nesting
// deeper than max_depth and on integers beyond int64.
Value from_json(const nlohmann::json& j, int max_depth);
Value from_json(const nlohmann::ordered_json& j, int max_depth);

}  // namespace qvl::jinja
