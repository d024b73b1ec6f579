// Qwen3 SwiGLU MLP: down_proj(silu(gate_proj(x)) * up_proj(x)).
#pragma once

#include "core/thread_pool.h"
#include "model/text/text_weights.h"

namespace qvl {

// x: [n, hidden]; out: [n, hidden]; scratch: 2 * n * intermediate floats.
void text_mlp_forward(const TextMlpWeights& w, const float* x, int64_t n, float* out, float* scratch,
                      ThreadPool* pool);

}  // namespace qvl
