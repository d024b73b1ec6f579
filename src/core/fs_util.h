// std::filesystem calls that report failures as qvl::Error (kIo with the OS reason) instead of
// throwing std::filesystem::filesystem_error.
#pragma once

#include <string>

namespace qvl {

// Creates `dir` and its missing parents; an existing directory is fine. Fails with
// kIo "cannot create directory 'dir': <OS reason>" (e.g. when a regular file has that name).
void create_directories_or_fail(const std::string& dir);

// Copies `from` to `to`, replacing `to`; kIo naming both paths and the OS reason on failure.
void copy_file_or_fail(const std::string& from, const std::string& to);

}  // namespace qvl
