#include "model/vision/vision_tensors.h"

#include "core/check.h"

namespace qvl {

namespace {

using Shape = std::vector<int64_t>;
using R = TensorRole;
using Q = QuantClass;
using Rep = VisionRepeat;

int64_t merged(const VisionConfig& c) { return c.hidden_size * c.spatial_merge_size * c.spatial_merge_size; }

Shape hidden(const VisionConfig& c, size_t) { return {c.hidden_size}; }
Shape qkv(const VisionConfig& c, size_t) { return {3 * c.hidden_size, c.hidden_size}; }
Shape qkv_bias(const VisionConfig& c, size_t) { return {3 * c.hidden_size}; }
Shape hidden_by_hidden(const VisionConfig& c, size_t) { return {c.hidden_size, c.hidden_size}; }
Shape inter(const VisionConfig& c, size_t) { return {c.intermediate_size}; }
Shape inter_by_hidden(const VisionConfig& c, size_t) { return {c.intermediate_size, c.hidden_size}; }
Shape hidden_by_inter(const VisionConfig& c, size_t) { return {c.hidden_size, c.intermediate_size}; }
// The final merger normalizes each patch (D) before the 2x2 shuffle, the DeepStack mergers after it (4D).
Shape merger_norm(const VisionConfig& c, size_t index) { return {index == 0 ? c.hidden_size : merged(c)}; }
Shape merged_by_merged(const VisionConfig& c, size_t) { return {merged(c), merged(c)}; }
Shape merged_only(const VisionConfig& c, size_t) { return {merged(c)}; }
Shape out_by_merged(const VisionConfig& c, size_t) { return {c.out_hidden_size, merged(c)}; }
Shape out_only(const VisionConfig& c, size_t) { return {c.out_hidden_size}; }

VisionBlockWeights& block(VisionWeights& w, size_t i) { return w.blocks.at(i); }
VisionPatchMergerWeights& merger(VisionWeights& w, size_t i) {
  return i == 0 ? w.merger : w.deepstack_merger_list.at(i - 1);
}

}  // namespace

const std::vector<VisionTensorRow>& vision_tensor_rows() {
  static const std::vector<VisionTensorRow> kRows = {
      {"{p}patch_embed.proj.weight", R::kConvolution, Q::kNever, Rep::kOnce,
       [](const VisionConfig& c, size_t) -> Shape {
         return {c.hidden_size, c.in_channels, c.temporal_patch_size, c.patch_size, c.patch_size};
       },
       [](VisionWeights& w, size_t) { return TensorField(w.patch_embed.proj); }},
      {"{p}patch_embed.proj.bias", R::kBias, Q::kNever, Rep::kOnce, hidden,
       [](VisionWeights& w, size_t) { return TensorField(w.patch_embed.proj_bias); }},
      {"{p}pos_embed.weight", R::kPositionTable, Q::kNever, Rep::kOnce,
       [](const VisionConfig& c, size_t) -> Shape { return {c.num_position_embeddings, c.hidden_size}; },
       [](VisionWeights& w, size_t) { return TensorField(w.pos_embed); }},
      {"{p}blocks.{i}.norm1.weight", R::kNormWeight, Q::kNever, Rep::kPerBlock, hidden,
       [](VisionWeights& w, size_t i) { return TensorField(block(w, i).norm1_weight); }},
      {"{p}blocks.{i}.norm1.bias", R::kBias, Q::kNever, Rep::kPerBlock, hidden,
       [](VisionWeights& w, size_t i) { return TensorField(block(w, i).norm1_bias); }},
      {"{p}blocks.{i}.norm2.weight", R::kNormWeight, Q::kNever, Rep::kPerBlock, hidden,
       [](VisionWeights& w, size_t i) { return TensorField(block(w, i).norm2_weight); }},
      {"{p}blocks.{i}.norm2.bias", R::kBias, Q::kNever, Rep::kPerBlock, hidden,
       [](VisionWeights& w, size_t i) { return TensorField(block(w, i).norm2_bias); }},
      {"{p}blocks.{i}.attn.qkv.weight", R::kLinear, Q::kVision, Rep::kPerBlock, qkv,
       [](VisionWeights& w, size_t i) { return TensorField(block(w, i).attn_qkv); }},
      {"{p}blocks.{i}.attn.qkv.bias", R::kBias, Q::kNever, Rep::kPerBlock, qkv_bias,
       [](VisionWeights& w, size_t i) { return TensorField(block(w, i).attn_qkv_bias); }},
      {"{p}blocks.{i}.attn.proj.weight", R::kLinear, Q::kVision, Rep::kPerBlock, hidden_by_hidden,
       [](VisionWeights& w, size_t i) { return TensorField(block(w, i).attn_proj); }},
      {"{p}blocks.{i}.attn.proj.bias", R::kBias, Q::kNever, Rep::kPerBlock, hidden,
       [](VisionWeights& w, size_t i) { return TensorField(block(w, i).attn_proj_bias); }},
      {"{p}blocks.{i}.mlp.linear_fc1.weight", R::kLinear, Q::kVision, Rep::kPerBlock, inter_by_hidden,
       [](VisionWeights& w, size_t i) { return TensorField(block(w, i).mlp_fc1); }},
      {"{p}blocks.{i}.mlp.linear_fc1.bias", R::kBias, Q::kNever, Rep::kPerBlock, inter,
       [](VisionWeights& w, size_t i) { return TensorField(block(w, i).mlp_fc1_bias); }},
      {"{p}blocks.{i}.mlp.linear_fc2.weight", R::kLinear, Q::kVision, Rep::kPerBlock, hidden_by_inter,
       [](VisionWeights& w, size_t i) { return TensorField(block(w, i).mlp_fc2); }},
      {"{p}blocks.{i}.mlp.linear_fc2.bias", R::kBias, Q::kNever, Rep::kPerBlock, hidden,
       [](VisionWeights& w, size_t i) { return TensorField(block(w, i).mlp_fc2_bias); }},
      {"{p}{m}norm.weight", R::kNormWeight, Q::kNever, Rep::kPerMerger, merger_norm,
       [](VisionWeights& w, size_t i) { return TensorField(merger(w, i).norm_weight); }},
      {"{p}{m}norm.bias", R::kBias, Q::kNever, Rep::kPerMerger, merger_norm,
       [](VisionWeights& w, size_t i) { return TensorField(merger(w, i).norm_bias); }},
      {"{p}{m}linear_fc1.weight", R::kLinear, Q::kVision, Rep::kPerMerger, merged_by_merged,
       [](VisionWeights& w, size_t i) { return TensorField(merger(w, i).fc1); }},
      {"{p}{m}linear_fc1.bias", R::kBias, Q::kNever, Rep::kPerMerger, merged_only,
       [](VisionWeights& w, size_t i) { return TensorField(merger(w, i).fc1_bias); }},
      {"{p}{m}linear_fc2.weight", R::kLinear, Q::kVision, Rep::kPerMerger, out_by_merged,
       [](VisionWeights& w, size_t i) { return TensorField(merger(w, i).fc2); }},
      {"{p}{m}linear_fc2.bias", R::kBias, Q::kNever, Rep::kPerMerger, out_only,
       [](VisionWeights& w, size_t i) { return TensorField(merger(w, i).fc2_bias); }},
  };
  return kRows;
}

std::vector<TensorSpec> vision_tensor_specs(const VisionConfig& c, const std::string& prefix) {
  auto count_of = [&](const VisionTensorRow& row) -> size_t {
    switch (row.repeat) {
      case Rep::kPerBlock: return static_cast<size_t>(c.depth);
      case Rep::kPerMerger: return 1 + c.deepstack_visual_indexes.size();
      case Rep::kOnce: break;
    }
    return 1;
  };
  auto spec_of = [&](const VisionTensorRow& row, size_t r, size_t i) {
    const std::string merger_name = i == 0 ? "merger." : "deepstack_merger_list." + std::to_string(i - 1) + ".";
    std::string name = expand_tensor_name(row.name, "p", prefix);
    name = expand_tensor_name(std::move(name), "i", std::to_string(i));
    name = expand_tensor_name(std::move(name), "m", merger_name);
    return TensorSpec{std::move(name), row.shape(c, i), row.role, row.quant, r, i};
  };
  return expand_tensor_table(vision_tensor_rows(), count_of, spec_of);
}

TensorField vision_tensor_field(VisionWeights& w, const TensorSpec& spec) {
  return vision_tensor_rows().at(spec.row).field(w, spec.index);
}

uint64_t vision_weight_bytes(const VisionConfig& config, const VisionWeights& w) {
  uint64_t total = 0;
  auto& fields = const_cast<VisionWeights&>(w);  // only read through the fields below
  for (const TensorSpec& s : vision_tensor_specs(config)) total += held_bytes(vision_tensor_field(fields, s));
  return total;
}

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
