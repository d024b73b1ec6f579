// JSON loading with errors that name the file and the key (nlohmann::json underneath).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace qvl {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;  // keeps key order (tojson in chat templates)

// An nlohmann exception's message without its "[json.exception.type_error.316] " prefix.
std::string plain_json_message(const char* what);

// Parses a JSON file; malformed text is reported with the file name and parser position.
Json load_json_file(const std::string& path, size_t max_bytes = size_t(64) << 20);
Json parse_json(const std::string& text, const std::string& what);
// Caller-supplied JSON (chat messages, template variables) with key order kept; malformed or
// too deeply nested text is kInvalidArgument.
OrderedJson parse_json_ordered(const std::string& text, const std::string& what);

// Typed accessors: `what` names the document (e.g. "config.json") in the error.
const Json& json_require(const Json& obj, const char* key, const std::string& what);
int64_t json_int(const Json& obj, const char* key, const std::string& what);
int64_t json_int_or(const Json& obj, const char* key, int64_t fallback, const std::string& what);
double json_number(const Json& obj, const char* key, const std::string& what);
double json_number_or(const Json& obj, const char* key, double fallback, const std::string& what);
bool json_bool_or(const Json& obj, const char* key, bool fallback, const std::string& what);
std::string json_string_or(const Json& obj, const char* key, const std::string& fallback,
                           const std::string& what);

}  // namespace qvl
