#include "progress.h"

#include <unistd.h>

#include <algorithm>

namespace qvl::cli {

ProgressPrinter::ProgressPrinter() : ProgressPrinter(stderr, isatty(fileno(stderr)) != 0) {}

ProgressPrinter::ProgressPrinter(std::FILE* out, bool terminal) : out_(out), terminal_(terminal) {}

ProgressPrinter::~ProgressPrinter() { end_line(); }

void ProgressPrinter::update(const std::string& label, int64_t done, int64_t total) {
  if (label != label_ || done < last_done_) {
    end_line();
    label_ = label;
    last_shown_ = -1;
  }
  last_done_ = done;
  const int percent = total > 0 ? static_cast<int>(100 * std::min(done, total) / total) : 100;
  const int shown = terminal_ ? percent : percent / 10;
  if (shown == last_shown_) return;
  last_shown_ = shown;
  const long long d = done, t = total;
  if (terminal_) {
    // "\033[K" clears what a longer earlier line left on the right.
    std::fprintf(out_, "\r%s: %3d%% (%lld/%lld)\033[K", label.c_str(), percent, d, t);
    line_open_ = true;
    if (percent == 100) end_line();
  } else {
    std::fprintf(out_, "%s: %d%% (%lld/%lld)\n", label.c_str(), percent, d, t);
  }
  std::fflush(out_);
}

void ProgressPrinter::end_line() {
  if (!line_open_) return;
  std::fputc('\n', out_);
  std::fflush(out_);
  line_open_ = false;
}

}  // namespace qvl::cli
