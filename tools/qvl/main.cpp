// qvl: run Qwen3-VL / Qwen3 checkpoints from the command line.
#include <iostream>
#include <map>

#include "commands.h"
#include "qvl/qvl.hpp"

int main(int argc, char** argv) {
  CLI::App app{"qvl: Qwen3-VL inference on the CPU"};
  app.require_subcommand(1);
  std::map<CLI::App*, qvl::cli::Runner> runners;
  auto add = [&](qvl::cli::Runner (*make)(CLI::App&)) {
    size_t before = app.get_subcommands({}).size();
    qvl::cli::Runner r = make(app);
    runners[app.get_subcommands({})[before]] = r;
  };
  add(qvl::cli::add_run_command);
  add(qvl::cli::add_chat_command);
  add(qvl::cli::add_dump_command);
  add(qvl::cli::add_synth_command);
  add(qvl::cli::add_bench_command);
  add(qvl::cli::add_quantize_command);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto* sub : app.get_subcommands())
      if (runners.count(sub)) return runners[sub]();
  } catch (const qvl::Error& e) {
    std::cerr << "qvl: error (" << qvl::error_kind_name(e.kind()) << "): " << e.what() << "\n";
    return 1;
  }
  return 1;
}
