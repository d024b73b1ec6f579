#include "model/text/text_mlp.h"

namespace qvl {

void text_mlp_forward(const TextMlpWeights& w, const float* x, int64_t n, float* out, float* scratch,
                      ThreadPool* pool) {
  const int64_t ff = w.gate_proj.rows;
  float* gate = scratch;
  float* up = scratch + n * ff;
  const kernels::MatmulTarget gate_up[] = {{&w.gate_proj, nullptr, gate}, {&w.up_proj, nullptr, up}};
  kernels::matmul_fused(x, n, gate_up, pool);
  for_each_row(pool, n, 8 * ff, [&](int64_t i0, int64_t i1, int) {
    kernels::silu_mul(gate + i0 * ff, up + i0 * ff, (i1 - i0) * ff);
  });
  kernels::matmul(gate, n, w.down_proj, nullptr, out, pool);
}

}  // namespace qvl
