// qvl: run Qwen3-VL / Qwen3 checkpoints from the command line.
#include <iostream>
#include <map>

#include "commands.h"
#include "options.h"
#include "progress.h"
#include "qvl/qvl.hpp"

#ifndef QVL_VERSION
#error "QVL_VERSION must be defined (tools/CMakeLists.txt passes the project version)"
#endif

namespace {

std::string subcommand_list(const CLI::App& app) {
  std::string names;
  for (const auto* sub : app.get_subcommands({})) names += (names.empty() ? "" : ", ") + sub->get_name();
  return names;
}

CLI::App* find_subcommand(CLI::App& app, const std::string& name) {
  for (auto* sub : app.get_subcommands({}))
    if (sub->get_name() == name) return sub;
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"qvl " QVL_VERSION ": Qwen3-VL inference on the CPU", "qvl"};
  app.set_version_flag("--version", "qvl " QVL_VERSION);
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
  add(qvl::cli::add_serve_command);
  app.footer("Run 'qvl SUBCOMMAND --help' for a subcommand's options.");  // after them: theirs stay bare

  // `qvl` alone and `qvl help [SUBCOMMAND]` print usage; an unknown first word is named with the
  // valid ones (CLI11 would only say that a subcommand is required).
  const std::string first = argc > 1 ? argv[1] : "";
  if (argc == 1) {
    std::cerr << app.help();
    return 1;
  }
  if (first == "help") {
    CLI::App* sub = argc > 2 ? find_subcommand(app, argv[2]) : nullptr;
    if (argc > 2 && sub == nullptr) {
      std::cerr << "qvl: error: unknown subcommand '" << argv[2] << "'; valid: " << subcommand_list(app) << "\n";
      return 1;
    }
    std::cout << (sub ? sub->help("qvl") : app.help());
    return 0;
  }
  if (!first.empty() && first[0] != '-' && find_subcommand(app, first) == nullptr) {
    std::cerr << "qvl: error: unknown subcommand '" << first << "'; valid: " << subcommand_list(app)
              << " (qvl help lists them)\n";
    return 1;
  }

  app.require_subcommand(1);
  std::vector<std::string> args = qvl::cli::with_long_flag_names(argc, argv);
  std::vector<char*> arg_pointers;
  for (auto& arg : args) arg_pointers.push_back(arg.data());
  try {
    app.parse(static_cast<int>(arg_pointers.size()), arg_pointers.data());
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    const auto parsed = app.get_subcommands();
    const std::string sub = parsed.empty() ? "" : parsed.front()->get_name() + " ";
    std::cerr << "qvl: error: " << e.what() << "\n(run 'qvl " << sub << "--help' for the options)\n";
    return 1;
  }
  try {
    for (auto* sub : app.get_subcommands())
      if (runners.count(sub)) return runners[sub]();
  } catch (const qvl::Error& e) {
    std::cerr << "qvl: error (" << qvl::error_kind_name(e.kind()) << "): " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    // Every library failure should be a qvl::Error; anything else still ends with a message and status 1.
    std::cerr << "qvl: error: " << e.what() << "\n";
    return 1;
  }
  return 1;
}
