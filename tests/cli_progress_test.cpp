// The CLI's progress printer: on a terminal one line rewritten in place, ended by a newline at
// 100 % or before other output; elsewhere a plain line per tenth of the work and no "\r".
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "progress.h"

namespace qvl::cli {
namespace {

// What a printer writes, captured through an in-memory FILE.
class Captured {
 public:
  Captured() : file_(open_memstream(&data_, &size_)) {}
  ~Captured() {
    if (file_) std::fclose(file_);
    std::free(data_);
  }
  std::FILE* file() { return file_; }
  std::string text() {
    std::fflush(file_);
    return std::string(data_, size_);
  }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
  std::FILE* file_;
};

TEST(ProgressPrinter, PlainLinesAtEachTenthWhenNotATerminal) {
  Captured out;
  {
    ProgressPrinter printer(out.file(), /*terminal=*/false);
    for (int64_t done : {0, 5, 9, 10, 19, 55, 99, 100}) printer.update("prefill (tokens)", done, 100);
  }
  EXPECT_EQ(out.text(),
            "prefill (tokens): 0% (0/100)\n"
            "prefill (tokens): 10% (10/100)\n"
            "prefill (tokens): 55% (55/100)\n"
            "prefill (tokens): 99% (99/100)\n"
            "prefill (tokens): 100% (100/100)\n");
}

TEST(ProgressPrinter, OneLineRewrittenOnATerminal) {
  Captured out;
  ProgressPrinter printer(out.file(), /*terminal=*/true);
  printer.update("encoding images (vision blocks)", 0, 4);
  printer.update("encoding images (vision blocks)", 0, 4);  // no change: nothing printed
  printer.update("encoding images (vision blocks)", 2, 4);
  printer.update("encoding images (vision blocks)", 4, 4);  // 100 % ends the line
  printer.end_line();                                       // nothing left to end
  EXPECT_EQ(out.text(),
            "\rencoding images (vision blocks):   0% (0/4)\033[K"
            "\rencoding images (vision blocks):  50% (2/4)\033[K"
            "\rencoding images (vision blocks): 100% (4/4)\033[K\n");
}

TEST(ProgressPrinter, AnOpenLineEndsBeforeOtherOutputAndForNewWork) {
  Captured out;
  {
    ProgressPrinter printer(out.file(), /*terminal=*/true);
    printer.update("a", 1, 3);
    printer.update("b", 1, 2);  // another label: the line of "a" ends first
    printer.end_line();         // e.g. before an error message
    printer.update("b", 0, 2);  // counting again from 0 is new work
  }                             // the destructor ends the open line
  EXPECT_EQ(out.text(),
            "\ra:  33% (1/3)\033[K\n"
            "\rb:  50% (1/2)\033[K\n"
            "\rb:   0% (0/2)\033[K\n");
}

}  // namespace
}  // namespace qvl::cli
