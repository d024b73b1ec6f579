#include "core/json_util.h"

#include "core/check.h"
#include "core/mapped_file.h"

namespace qvl {

Json parse_json(const std::string& text, const std::string& what) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    fail(ErrorKind::kInvalidFile, what, ": malformed JSON (", e.what(), ")");
  }
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
