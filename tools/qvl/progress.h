// Progress of long work (image encoding, prefill, quantize, synth) on stderr, one printer for
// every subcommand. On a terminal it is one line rewritten in place ("\r"); otherwise (a log file,
// a pipe) a plain line each time the work passes another tenth, so logs hold no carriage returns.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace qvl::cli {

class ProgressPrinter {
 public:
  // Writes to stderr, in place when stderr is a terminal.
  ProgressPrinter();
  ProgressPrinter(std::FILE* out, bool terminal);
  ~ProgressPrinter();  // ends an open line (also while an error unwinds past it)
  ProgressPrinter(const ProgressPrinter&) = delete;
  ProgressPrinter& operator=(const ProgressPrinter&) = delete;

  // `done` of `total` units of the work named `label` are finished. A new label, or a count that
  // goes back, starts a new piece of work.
  void update(const std::string& label, int64_t done, int64_t total);
  // Ends an open line, so that what is printed next (an error, the answer) starts a line.
  void end_line();

 private:
  std::FILE* out_;
  bool terminal_;
  bool line_open_ = false;
  std::string label_;
  int64_t last_done_ = -1;
  int last_shown_ = -1;  // percent on a terminal, tenth otherwise
};


}  // namespace qvl::cli
