#include "core/error_boundary.h"

#include <filesystem>
#include <new>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/json_util.h"
#include "core/utf8.h"

namespace qvl {

void rethrow_as_error(std::string_view operation, ErrorKind json_kind) {
  try {
    throw;
  } catch (const Error&) {
    throw;
  } catch (const nlohmann::json::exception& e) {
    fail(json_kind, operation, ": ", plain_json_message(e.what()));
  } catch (const std::filesystem::filesystem_error& e) {
    std::string paths;
    if (!e.path1().empty()) paths += " '" + e.path1().string() + "'";
    if (!e.path2().empty()) paths += " and '" + e.path2().string() + "'";
    fail(ErrorKind::kIo, operation, ": file system error on", paths.empty() ? " a path" : paths, ": ", e.code().message());
  } catch (const std::bad_alloc&) {
    fail(ErrorKind::kLimitExceeded, "out of memory while ", operation);
  } catch (const std::exception& e) {
    fail(ErrorKind::kInternal, "internal error while ", operation, " (please report it): ", e.what());
  } catch (...) {
    fail(ErrorKind::kInternal, "internal error while ", operation, " (please report it): an unknown exception");
  }
}

void require_utf8(std::string_view text, std::string_view what) {
  const size_t bad = utf8::first_invalid_offset(text);
  if (bad == std::string_view::npos) return;
  static const char* const kHex = "0123456789ABCDEF";
  const auto byte = static_cast<unsigned char>(text[bad]);
  fail(ErrorKind::kInvalidArgument, what, " is not valid UTF-8 (byte 0x", kHex[byte >> 4], kHex[byte & 15],
       " at offset ", bad, ")");
}

}  // namespace qvl
