// libFuzzer target: GGUF metadata, tensor table and data offsets.
#include <cstddef>
#include <cstdint>

#include "formats/gguf.h"
#include "qvl/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto contents = qvl::parse_gguf(reinterpret_cast<const std::byte*>(data), size, "fuzz");
    volatile uint8_t sink = 0;
    for (const auto& [name, t] : contents.tensors)
      if (t.nbytes > 0) sink = sink + static_cast<uint8_t>(t.data[t.nbytes - 1]);
  } catch (const qvl::Error&) {
  }
  return 0;
}
