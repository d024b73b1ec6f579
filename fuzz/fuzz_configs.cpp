// libFuzzer target: config.json, generation_config.json and preprocessor_config.json parsing.
#include <cstddef>
#include <cstdint>
#include <string>

#include "formats/model_config.h"
#include "image/preprocess.h"
#include "qvl/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try { qvl::parse_model_config(text, "config.json"); } catch (const qvl::Error&) {}
  try { qvl::parse_generation_config(text, "generation_config.json"); } catch (const qvl::Error&) {}
  try { qvl::parse_preprocessor_config(text, "preprocessor_config.json"); } catch (const qvl::Error&) {}
  return 0;
}
