// Patch merger: merge^2 consecutive patch rows (one 2x2 block in the processor's order) become
// one token. The final merger normalizes each patch over D and then concatenates the block
// (use_postshuffle_norm=False); the DeepStack mergers concatenate first and normalize over
// merge^2*D (use_postshuffle_norm=True). Then fc1 -> exact (erf) GELU -> fc2.
#include "core/check.h"
#include "kernels/kernels.h"
#include "model/vision/vision_internal.h"

namespace qvl::vision {

void patch_merger_forward(const VisionPatchMergerWeights& w, int64_t hidden, int64_t unit, float eps, const float* x,
                          int64_t patches, float* out, float* norm_buf, float* hidden_buf, ThreadPool* pool) {
  QVL_ASSERT(unit > 0 && patches % unit == 0);
  const int64_t tokens = patches / unit, merged = hidden * unit;
  QVL_ASSERT(w.fc1.cols == merged && w.fc2.cols == merged);
  if (tokens == 0) return;
  const int64_t norm_dim = w.postshuffle_norm ? merged : hidden;
  const int64_t norm_rows = w.postshuffle_norm ? tokens : patches;
  QVL_ASSERT(static_cast<int64_t>(w.norm_weight.size()) == norm_dim);
  parallel_rows(
      pool, norm_rows,
      [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
          kernels::layer_norm(x + r * norm_dim, w.norm_weight.data(), w.norm_bias.data(), norm_dim, eps,
                              norm_buf + r * norm_dim);
      },
      16);
  // norm_buf is now [tokens, merged] either way (rows are contiguous).
  kernels::matmul(norm_buf, tokens, w.fc1, w.fc1_bias.data(), hidden_buf, pool);
  parallel_rows(
      pool, tokens, [&](int64_t r0, int64_t r1) { kernels::gelu_erf(hidden_buf + r0 * merged, (r1 - r0) * merged); },
      4);
  kernels::matmul(hidden_buf, tokens, w.fc2, w.fc2_bias.data(), out, pool);
}

}  // namespace qvl::vision
