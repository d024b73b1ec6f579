// libFuzzer target: the safetensors header and tensor table.
#include <cstddef>
#include <cstdint>

#include "formats/safetensors.h"
#include "qvl/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto tensors = qvl::parse_safetensors(reinterpret_cast<const std::byte*>(data), size, "fuzz");
    // Touch every view's last byte: a view past the buffer would fault under ASan.
    volatile uint8_t sink = 0;
    for (const auto& [name, t] : tensors)
      if (t.nbytes > 0) sink = sink + static_cast<uint8_t>(t.data[t.nbytes - 1]);
  } catch (const qvl::Error&) {
  }
  return 0;
}
