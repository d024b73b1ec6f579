#include "core/staged_output.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "core/check.h"

namespace qvl {

namespace fs = std::filesystem;

namespace {

std::string reason(const std::error_code& ec) { return ec.message(); }

double gigabytes(uint64_t bytes) { return std::round(static_cast<double>(bytes) / 1e8) / 10; }

// The folder the target will live in ("." for a bare name).
fs::path parent_of(const fs::path& target) {
  const fs::path parent = target.parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

}  // namespace

StagedOutput::StagedOutput(std::string target, Kind kind, const std::vector<std::string>& inputs)
    : target_(std::move(target)), kind_(kind) {
  if (target_.empty()) fail(ErrorKind::kInvalidArgument, "the output path is empty");
  const fs::path t(target_);
  const fs::path parent = parent_of(t);
  std::error_code ec;
  if (!fs::is_directory(parent, ec)) {
    if (fs::exists(parent, ec))
      fail(ErrorKind::kIo, "cannot write '", target_, "': '", parent.string(), "' is not a folder");
    fail(ErrorKind::kNotFound, "cannot write '", target_, "': the folder '", parent.string(), "' does not exist");
  }
  if (::access(parent.c_str(), W_OK | X_OK) != 0)
    fail(ErrorKind::kIo, "cannot write into '", parent.string(), "': ", std::strerror(errno));

  const fs::file_status st = fs::status(t, ec);
  if (kind_ == Kind::kFile) {
    if (fs::is_directory(st)) fail(ErrorKind::kInvalidArgument, "the output '", target_, "' is a directory; name a file");
    for (const auto& in : inputs)
      if (fs::exists(st) && fs::equivalent(t, in, ec))
        fail(ErrorKind::kInvalidArgument, "the output '", target_, "' is one of the inputs ('", in,
             "'); choose another output path");
  } else {
    if (fs::exists(st) && !fs::is_directory(st))
      fail(ErrorKind::kInvalidArgument, "the output folder '", target_, "' exists and is not a folder");
    if (fs::is_directory(st) && !fs::is_empty(t, ec))
      fail(ErrorKind::kInvalidArgument, "the output folder '", target_,
           "' exists and is not empty; remove it or choose another folder");
  }

  // A hidden sibling on the same file system, so that the final rename is atomic.
  staging_ = (parent / ("." + t.filename().string() + ".partial-" + std::to_string(::getpid()))).string();
  if (kind_ == Kind::kFile) {
    const int fd = ::open(staging_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail(ErrorKind::kIo, "cannot create '", staging_, "': ", std::strerror(errno));
    ::close(fd);
  } else {
    fs::remove_all(staging_, ec);  // a leftover of an earlier run with the same pid
    if (!fs::create_directory(staging_, ec))
      fail(ErrorKind::kIo, "cannot create the folder '", staging_, "': ", reason(ec));
  }
}

StagedOutput::~StagedOutput() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(staging_, ec);  // best effort: the error being reported matters more
}

void StagedOutput::require_free_space(uint64_t bytes) const {
  std::error_code ec;
  const fs::space_info space = fs::space(parent_of(fs::path(target_)), ec);
  if (ec) return;  // unknown: let the write itself report a full disk
  if (space.available < bytes)
    fail(ErrorKind::kLimitExceeded, "writing '", target_, "' needs ", gigabytes(bytes), " GB but only ",
         gigabytes(space.available), " GB are free there");
}

void StagedOutput::commit() {
  QVL_ASSERT(!committed_);
  if (::rename(staging_.c_str(), target_.c_str()) != 0)
    fail(ErrorKind::kIo, "cannot move '", staging_, "' to '", target_, "': ", std::strerror(errno));
  committed_ = true;
}

}  // namespace qvl
