#include "model/vision/vision_weights.h"

#include "core/check.h"
#include "model/vision/vision_tensors.h"

namespace qvl {

VisionWeights load_vision_weights(const VisionConfig& c, Checkpoint& ckpt, const std::string& prefix) {
  validate_vision_config(c);
  VisionWeights w;
  w.blocks.resize(static_cast<size_t>(c.depth));
  w.merger.postshuffle_norm = false;
  w.deepstack_merger_list.resize(c.deepstack_visual_indexes.size());
  for (auto& merger : w.deepstack_merger_list) merger.postshuffle_norm = true;
  for (const TensorSpec& spec : vision_tensor_specs(c, prefix)) load_tensor(ckpt, spec, vision_tensor_field(w, spec));
  // Anything else under the prefix would be silently ignored: refuse it here, naming it.
  refuse_stray_tensors(ckpt, prefix, "vision",
                       cat("(depth ", c.depth, ", ", c.deepstack_visual_indexes.size(), " deepstack mergers)"));
  return w;
}

}  // namespace qvl
