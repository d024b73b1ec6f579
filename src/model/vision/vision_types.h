// Plain types and config rules shared by the vision tower's parts: the image grid, the block
// activation and the position table's side. Kept apart from vision_encoder.h and
// vision_internal.h so the weight loader (vision_tensors.cpp) and the components can use them
// without including each other; vision_encoder.h re-exports GridTHW.
#pragma once

#include <cstdint>
#include <string>

namespace qvl {

struct GridTHW {
  int64_t t, h, w;  // in patches
};

}  // namespace qvl

namespace qvl::vision {

enum class Activation { kGeluTanh, kGeluErf };

// Maps config.json's vision `hidden_act` to an activation; fails (kUnsupported) on others.
Activation parse_block_activation(const std::string& name);

// floor(sqrt(n)) computed exactly on integers.
int64_t pos_grid_side(int64_t n);

}  // namespace qvl::vision
