// Subcommands of the `qvl` command-line tool. Each registers its options on the app and
// returns the function that runs it.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace qvl::cli {

using Runner = std::function<int()>;

Runner add_run_command(CLI::App& app);
Runner add_dump_command(CLI::App& app);
Runner add_chat_command(CLI::App& app);
Runner add_synth_command(CLI::App& app);
Runner add_bench_command(CLI::App& app);
Runner add_quantize_command(CLI::App& app);
Runner add_serve_command(CLI::App& app);

}  // namespace qvl::cli
