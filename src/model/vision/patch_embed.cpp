// Patch embedding: a Conv3d [D, C, T, P, P] whose stride equals its kernel sees each
// flattened (c, t, py, px) pixel row exactly once, so it is a matmul with the weight viewed
// as [D, C*T*P*P], plus the bias.
#include "core/check.h"
#include "kernels/kernels.h"
#include "model/vision/vision_internal.h"

namespace qvl::vision {

void patch_embed(const VisionPatchEmbedWeights& w, const float* pixels, int64_t rows, float* out, ThreadPool* pool) {
  QVL_ASSERT(static_cast<int64_t>(w.proj_bias.size()) == w.proj.rows);
  if (rows == 0) return;
  kernels::matmul(pixels, rows, w.proj, w.proj_bias.data(), out, pool);
}

}  // namespace qvl::vision
