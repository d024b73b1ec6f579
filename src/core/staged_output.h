// Outputs that land whole or not at all. Long writers (quantize, synthetic checkpoints)
// write to a staging path beside the target and rename it onto the target only when complete,
// so a failed or interrupted run leaves no truncated file behind, and an output that would
// overwrite one of its own inputs is refused before any work starts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qvl {

class StagedOutput {
 public:
  enum class Kind { kFile, kDirectory };

  // Checks, before any work: the target's parent folder exists and is writable; a file target is
  // not a directory and is none of `inputs` (same file, also through links); a directory target
  // is absent or empty. Then creates the staging file or folder (kIo with the OS reason if that
  // fails).
  StagedOutput(std::string target, Kind kind, const std::vector<std::string>& inputs = {});
  ~StagedOutput();  // removes the staging path unless committed
  StagedOutput(const StagedOutput&) = delete;
  StagedOutput& operator=(const StagedOutput&) = delete;

  const std::string& path() const { return staging_; }  // where the writer writes
  const std::string& target() const { return target_; }

  // kLimitExceeded when the target's file system has fewer than `bytes` free.
  void require_free_space(uint64_t bytes) const;

  // Renames the staging path onto the target (replacing a file, or an empty folder).
  void commit();

 private:
  std::string target_, staging_;
  Kind kind_;
  bool committed_ = false;
};

}  // namespace qvl
