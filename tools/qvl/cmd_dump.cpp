// qvl dump FIXTURE_DIR OUT_DIR: the golden-format dump of every case in a fixture directory.
#include <iostream>
#include <memory>

#include "commands.h"
#include "options.h"
#include "devtools/golden_dump.h"

namespace qvl::cli {

Runner add_dump_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("dump", "Run every case of a fixture directory and write golden-format outputs");
  auto fixture = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto options = std::make_shared<DumpOptions>();
  cmd->add_option("fixture_dir", *fixture, "Directory with manifest.json and <case>.json files")->required();
  cmd->add_option("out_dir", *out, "Where to write the dump")->required();
  add_threads_option(*cmd, options->threads);
  add_choice_option(*cmd, "--weights", options->weights_type, {"f32", "q8_0", "q4_0", "q4_k"},
                    "f32: every weight decoded to f32 at load (the exact path); q8_0, q4_0, q4_k: the text weights "
                    "quantized at load, to measure what it costs (default: weights as stored, llama.cpp's "
                    "quantized blocks on the int8 kernels)");
  add_choice_option(*cmd, "--vision-attn", options->vision_attention, {"bf16", "f32"},
                    "Vision tower attention arithmetic (default f32, what the strict goldens are checked with; "
                    "bf16 is the fast mode, to check loose)");
  return [=] {
    int failures = dump_fixture(*fixture, *out, *options, std::cerr);
    if (failures > 0) std::cerr << failures << " case(s) failed\n";
    return failures > 0 ? 1 : 0;
  };
}

}  // namespace qvl::cli
