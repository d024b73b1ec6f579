#include "core/fs_util.h"

#include <algorithm>
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

fs::path confine_to_root(const fs::path& path, const fs::path& root) {
  if (root.empty()) return path;
  std::error_code ec;
  const fs::path absolute = fs::absolute(path, ec);
  const fs::path resolved = ec ? fs::path() : fs::weakly_canonical(absolute, ec);
  if (ec) fail(ErrorKind::kIo, "cannot resolve image path '", path.string(), "': ", ec.message());
  const auto [root_end, unused] = std::mismatch(root.begin(), root.end(), resolved.begin(), resolved.end());
  if (root_end != root.end())
    fail(ErrorKind::kInvalidArgument, "image path '", path.string(), "' resolves to '", resolved.string(),
         "', outside the media root '", root.string(), "'");
  return resolved;
}

}  // namespace qvl
