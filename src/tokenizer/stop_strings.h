// Streams generated text without ever emitting a stop string: text that could be the start of
// one is held back until the next pieces show it is not.
#pragma once

#include <string>
#include <vector>

namespace qvl {

class StopStringFilter {
 public:
  explicit StopStringFilter(std::vector<std::string> stops);

  // Adds newly decoded text; returns what can be emitted now. After a stop string is seen,
  // stopped() is true and nothing more is returned.
  std::string push(const std::string& text);
  // The held-back rest once generation ends for another reason.
  std::string finish();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace qvl
