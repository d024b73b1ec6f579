#include "core/fs_util.h"

#include <filesystem>
#include <system_error>

#include "core/check.h"

namespace qvl {

namespace fs = std::filesystem;

void create_directories_or_fail(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  // create_directories reports "exists" as success only for a directory; say what is in the way.
  if (!ec && !fs::is_directory(dir, ec)) ec = std::make_error_code(std::errc::not_a_directory);
  if (ec) fail(ErrorKind::kIo, "cannot create directory '", dir, "': ", ec.message());
}

void copy_file_or_fail(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) fail(ErrorKind::kIo, "cannot copy '", from, "' to '", to, "': ", ec.message());
}

}  // namespace qvl
