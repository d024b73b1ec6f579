#include "core/json_util.h"

#include "core/check.h"
#include "core/mapped_file.h"

namespace qvl {

namespace {

// nlohmann parses iteratively, but dump(), copies and comparisons recurse: a 400 KB file of
// nested brackets overflowed the stack while formatting an error message (found by fuzz_configs).
// Real checkpoint JSON nests fewer than 10 levels.
constexpr int kMaxJsonDepth = 512;

void check_json_depth(const std::string& text, const std::string& what, ErrorKind kind) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        fail(kind, what, ": JSON nests deeper than ", kMaxJsonDepth, " levels (at byte ", i, ")");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

template <class J>
J parse_checked(const std::string& text, const std::string& what, ErrorKind kind) {
  check_json_depth(text, what, kind);
  try {
    return J::parse(text);
  } catch (const typename J::exception& e) {  // parse_error, or out_of_range for a number like 1e400
    fail(kind, what, ": malformed JSON (", plain_json_message(e.what()), ")");
  }
}

}  // namespace

std::string plain_json_message(const char* what) {
  std::string_view text(what);
  if (text.rfind("[json.exception.", 0) == 0) {
    const size_t end = text.find("] ");
    if (end != std::string_view::npos) text.remove_prefix(end + 2);
  }
  return std::string(text);
}

Json parse_json(const std::string& text, const std::string& what) {
  return parse_checked<Json>(text, what, ErrorKind::kInvalidFile);
}

OrderedJson parse_json_ordered(const std::string& text, const std::string& what) {
  return parse_checked<OrderedJson>(text, what, ErrorKind::kInvalidArgument);
}

Json load_json_file(const std::string& path, size_t max_bytes) {
  return parse_json(read_text_file(path, max_bytes), path);
}

const Json& json_require(const Json& obj, const char* key, const std::string& what) {
  if (!obj.is_object()) fail(ErrorKind::kInvalidFile, what, ": expected a JSON object");
  auto it = obj.find(key);
  if (it == obj.end()) fail(ErrorKind::kInvalidFile, what, ": missing key '", key, "'");
  return *it;
}

int64_t json_int(const Json& obj, const char* key, const std::string& what) {
  const Json& v = json_require(obj, key, what);
  if (!v.is_number_integer())
    fail(ErrorKind::kInvalidFile, what, ": '", key, "' must be an integer, got ", v.dump());
  return v.get<int64_t>();
}

int64_t json_int_or(const Json& obj, const char* key, int64_t fallback, const std::string& what) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return fallback;
  return json_int(obj, key, what);
}

double json_number(const Json& obj, const char* key, const std::string& what) {
  const Json& v = json_require(obj, key, what);
  if (!v.is_number())
    fail(ErrorKind::kInvalidFile, what, ": '", key, "' must be a number, got ", v.dump());
  return v.get<double>();
}

double json_number_or(const Json& obj, const char* key, double fallback, const std::string& what) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return fallback;
  return json_number(obj, key, what);
}

bool json_bool_or(const Json& obj, const char* key, bool fallback, const std::string& what) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return fallback;
  const Json& v = obj[key];
  if (!v.is_boolean())
    fail(ErrorKind::kInvalidFile, what, ": '", key, "' must be true or false, got ", v.dump());
  return v.get<bool>();
}

std::string json_string_or(const Json& obj, const char* key, const std::string& fallback,
                           const std::string& what) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return fallback;
  const Json& v = obj[key];
  if (!v.is_string())
    fail(ErrorKind::kInvalidFile, what, ": '", key, "' must be a string, got ", v.dump());
  return v.get<std::string>();
}

}  // namespace qvl
