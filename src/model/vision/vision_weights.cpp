#include "model/vision/vision_weights.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/check.h"
#include "model/vision/vision_types.h"
#include "model/weight_view.h"

namespace qvl {

namespace {

// One row of the name table: a checkpoint tensor (name relative to the prefix), the shape it
// must have, and where it goes: a matrix used in place, or a small vector converted to fp32.
struct TensorSlot {
  std::string name;
  std::vector<int64_t> shape;
  kernels::WeightMatrix* matrix = nullptr;  // viewed as [shape[0], prod(shape[1:])]
  std::vector<float>* vector = nullptr;
  bool packable = false;  // a qvl GGUF may hold it pre-quantized (the matmul weights)
};

void add_matrix(std::vector<TensorSlot>& table, std::string name, std::vector<int64_t> shape,
                kernels::WeightMatrix* dst, bool packable = true) {
  table.push_back(TensorSlot{std::move(name), std::move(shape), dst, nullptr, packable});
}

void add_vector(std::vector<TensorSlot>& table, std::string name, int64_t n, std::vector<float>* dst) {
  table.push_back(TensorSlot{std::move(name), {n}, nullptr, dst});
}

void add_merger(std::vector<TensorSlot>& table, const std::string& p, int64_t norm_dim, int64_t merged, int64_t out,
                VisionPatchMergerWeights& m) {
  add_vector(table, p + "norm.weight", norm_dim, &m.norm_weight);
  add_vector(table, p + "norm.bias", norm_dim, &m.norm_bias);
  add_matrix(table, p + "linear_fc1.weight", {merged, merged}, &m.fc1);
  add_vector(table, p + "linear_fc1.bias", merged, &m.fc1_bias);
  add_matrix(table, p + "linear_fc2.weight", {out, merged}, &m.fc2);
  add_vector(table, p + "linear_fc2.bias", out, &m.fc2_bias);
}

}  // namespace

void validate_vision_config(const VisionConfig& c) {
  auto positive = [](const char* name, int64_t v) {
    if (v <= 0) fail(ErrorKind::kInvalidFile, "vision_config.", name, " must be positive, got ", v);
  };
  positive("depth", c.depth);
  positive("hidden_size", c.hidden_size);
  positive("num_heads", c.num_heads);
  positive("intermediate_size", c.intermediate_size);
  positive("patch_size", c.patch_size);
  positive("temporal_patch_size", c.temporal_patch_size);
  positive("spatial_merge_size", c.spatial_merge_size);
  positive("in_channels", c.in_channels);
  positive("out_hidden_size", c.out_hidden_size);
  positive("num_position_embeddings", c.num_position_embeddings);
  if (c.hidden_size % c.num_heads != 0)
    fail(ErrorKind::kInvalidFile, "vision_config.hidden_size (", c.hidden_size, ") is not a multiple of num_heads (",
         c.num_heads, ")");
  const int64_t head_dim = c.hidden_size / c.num_heads;
  if (head_dim % 4 != 0)
    fail(ErrorKind::kUnsupported, "vision head_dim ", head_dim,
         " is not a multiple of 4 (the 2-D rotary embedding splits it into row and column halves)");
  const int64_t side = vision::pos_grid_side(c.num_position_embeddings);
  if (side * side != c.num_position_embeddings)
    fail(ErrorKind::kInvalidFile, "vision_config.num_position_embeddings (", c.num_position_embeddings,
         ") is not a perfect square");
  std::set<int> seen;
  for (int idx : c.deepstack_visual_indexes) {
    if (idx < 0 || idx >= c.depth)
      fail(ErrorKind::kInvalidFile, "vision_config.deepstack_visual_indexes entry ", idx,
           " is outside [0, depth=", c.depth, ")");
    if (!seen.insert(idx).second)
      fail(ErrorKind::kInvalidFile, "vision_config.deepstack_visual_indexes lists block ", idx, " twice");
  }
  vision::parse_block_activation(c.hidden_act);  // fails on an unknown activation
  if (!(c.layer_norm_eps > 0.0) || !std::isfinite(c.layer_norm_eps))
    fail(ErrorKind::kInvalidFile, "vision layer_norm_eps must be positive, got ", c.layer_norm_eps);
  if (!(c.rope_theta > 0.0) || !std::isfinite(c.rope_theta))
    fail(ErrorKind::kInvalidFile, "vision rope_theta must be positive, got ", c.rope_theta);
}

VisionWeights load_vision_weights(const VisionConfig& c, Checkpoint& ckpt, const std::string& prefix) {
  validate_vision_config(c);
  const int64_t d = c.hidden_size, inter = c.intermediate_size, out = c.out_hidden_size;
  const int64_t merged = d * c.spatial_merge_size * c.spatial_merge_size;

  VisionWeights w;
  w.blocks.resize(static_cast<size_t>(c.depth));
  w.deepstack_merger_list.resize(c.deepstack_visual_indexes.size());

  // The name table: every tensor of the vision tower, in checkpoint naming.
  std::vector<TensorSlot> table;
  add_matrix(table, "patch_embed.proj.weight", {d, c.in_channels, c.temporal_patch_size, c.patch_size, c.patch_size},
             &w.patch_embed.proj, /*packable=*/false);
  add_vector(table, "patch_embed.proj.bias", d, &w.patch_embed.proj_bias);
  add_matrix(table, "pos_embed.weight", {c.num_position_embeddings, d}, &w.pos_embed, /*packable=*/false);
  for (int64_t i = 0; i < c.depth; ++i) {
    const std::string p = "blocks." + std::to_string(i) + ".";
    VisionBlockWeights& b = w.blocks[static_cast<size_t>(i)];
    add_vector(table, p + "norm1.weight", d, &b.norm1_weight);
    add_vector(table, p + "norm1.bias", d, &b.norm1_bias);
    add_matrix(table, p + "attn.qkv.weight", {3 * d, d}, &b.attn_qkv);
    add_vector(table, p + "attn.qkv.bias", 3 * d, &b.attn_qkv_bias);
    add_matrix(table, p + "attn.proj.weight", {d, d}, &b.attn_proj);
    add_vector(table, p + "attn.proj.bias", d, &b.attn_proj_bias);
    add_vector(table, p + "norm2.weight", d, &b.norm2_weight);
    add_vector(table, p + "norm2.bias", d, &b.norm2_bias);
    add_matrix(table, p + "mlp.linear_fc1.weight", {inter, d}, &b.mlp_fc1);
    add_vector(table, p + "mlp.linear_fc1.bias", inter, &b.mlp_fc1_bias);
    add_matrix(table, p + "mlp.linear_fc2.weight", {d, inter}, &b.mlp_fc2);
    add_vector(table, p + "mlp.linear_fc2.bias", d, &b.mlp_fc2_bias);
  }
  w.merger.postshuffle_norm = false;
  add_merger(table, "merger.", d, merged, out, w.merger);
  for (size_t j = 0; j < w.deepstack_merger_list.size(); ++j) {
    w.deepstack_merger_list[j].postshuffle_norm = true;
    add_merger(table, "deepstack_merger_list." + std::to_string(j) + ".", merged, merged, out,
               w.deepstack_merger_list[j]);
  }

  for (const TensorSlot& slot : table) {
    const TensorView& t = ckpt.get(prefix + slot.name, slot.shape);
    if (slot.matrix != nullptr && slot.packable) {
      *slot.matrix = as_matrix(t);
    } else if (slot.matrix != nullptr) {
      if (t.packed_format != 0) fail(ErrorKind::kInvalidFile, "tensor '", t.name, "' must not be quantized");
      int64_t cols = 1;
      for (size_t k = 1; k < slot.shape.size(); ++k) cols *= slot.shape[k];
      *slot.matrix = kernels::WeightMatrix{t.dtype, slot.shape[0], cols, t.data};
    } else {
      *slot.vector = as_f32(t);
    }
  }

  // Anything else under the prefix would be silently ignored: refuse it here, naming it.
  std::vector<std::string> stray;
  for (const std::string& name : ckpt.unused())
    if (name.compare(0, prefix.size(), prefix) == 0) stray.push_back(name);
  if (!stray.empty()) {
    std::string list;
    for (size_t i = 0; i < stray.size() && i < 5; ++i) list += (i ? ", " : "") + stray[i];
    if (stray.size() > 5) list += cat(", ... (", stray.size(), " in all)");
    fail(ErrorKind::kInvalidFile, "checkpoint '", ckpt.dir(), "' has vision tensors the config (depth ", c.depth, ", ",
         c.deepstack_visual_indexes.size(), " deepstack mergers) does not use: ", list);
  }
  return w;
}

}  // namespace qvl
