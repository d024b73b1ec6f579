// std::filesystem calls that report failures as qvl::Error (kIo with the OS reason) instead of
// throwing std::filesystem::filesystem_error.
#pragma once

#include <filesystem>
#include <string>

namespace qvl {

// Creates `dir` and its missing parents; an existing directory is fine. Fails with
// kIo "cannot create directory 'dir': <OS reason>" (e.g. when a regular file has that name).
void create_directories_or_fail(const std::string& dir);

// Copies `from` to `to`, replacing `to`; kIo naming both paths and the OS reason on failure.
void copy_file_or_fail(const std::string& from, const std::string& to);

// `path` after `..` and symlinks (absolute against the working directory), which must lie inside
// `root` (already canonical) when one is set: kInvalidArgument naming the path, where it resolves
// and the root. An empty root returns `path` unchanged. Used where untrusted requests name files.
std::filesystem::path confine_to_root(const std::filesystem::path& path, const std::filesystem::path& root);

}  // namespace qvl
