#include "devtools/quantize_checkpoint.h"

#include <filesystem>
#include <map>

#include "core/check.h"
#include "core/mapped_file.h"
#include "core/staged_output.h"
#include "core/thread_pool.h"
#include "formats/checkpoint.h"
#include "formats/gguf.h"
#include "formats/model_config.h"
#include "kernels/kernels.h"
#include "model/qwen3_vl.h"
#include "model/weight_view.h"
#include "tokenizer/chat_template.h"

namespace qvl {

namespace fs = std::filesystem;

namespace {

GgmlType ggml_type_of(DType t, const std::string& name) {
  switch (t) {
    case DType::kF32: return GgmlType::kF32;
    case DType::kF16: return GgmlType::kF16;
    case DType::kBF16: return GgmlType::kBF16;
    default: fail(ErrorKind::kUnsupported, "tensor '", name, "' has dtype ", dtype_name(t), ", which GGUF output does not take");
  }
}

}  // namespace

void quantize_checkpoint(const std::string& in_dir, const std::string& out_path, const QuantizeOptions& options,
                         const std::function<void(uint64_t, uint64_t)>& progress) {
  if (!fs::is_directory(in_dir)) fail(ErrorKind::kNotFound, "'", in_dir, "' is not a checkpoint folder");
  // Refuse an output that is one of the inputs, and find an unwritable output, before minutes of work.
  std::vector<std::string> inputs;
  for (const auto& entry : fs::directory_iterator(in_dir))
    if (entry.is_regular_file()) inputs.push_back(entry.path().string());
  StagedOutput output(out_path, StagedOutput::Kind::kFile, inputs);
  const ModelConfig config = load_model_config(in_dir);
  auto ckpt = Checkpoint::open(in_dir);
  const kernels::WeightFormat layers = weight_format_option(options.type);
  const kernels::WeightFormat head = eight_bit_companion_format(options.head_type, layers);
  const kernels::WeightFormat vision = eight_bit_companion_format(options.vision_type, layers);
  ThreadPool pool(options.threads > 0 ? options.threads : default_thread_count());

  GgufWriter w;
  const bool vl = config.model_type == "qwen3_vl";
  const std::string arch = vl ? "qwen3vl" : "qwen3";
  const TextConfig& t = config.text;
  w.set("general.architecture", arch);
  w.set("general.name", fs::path(in_dir).filename().string());
  w.set("general.quantization_version", uint64_t{2});
  w.set("qvl.weights_type", options.type);
  w.set("qvl.vision_weights_type", std::string(kernels::weight_format_name(vision)));
  w.set(arch + ".block_count", static_cast<uint64_t>(t.num_hidden_layers));
  w.set(arch + ".context_length", static_cast<uint64_t>(t.max_position_embeddings));
  w.set(arch + ".embedding_length", static_cast<uint64_t>(t.hidden_size));
  w.set(arch + ".feed_forward_length", static_cast<uint64_t>(t.intermediate_size));
  w.set(arch + ".attention.head_count", static_cast<uint64_t>(t.num_attention_heads));
  w.set(arch + ".attention.head_count_kv", static_cast<uint64_t>(t.num_key_value_heads));
  w.set(arch + ".attention.key_length", static_cast<uint64_t>(t.head_dim));
  w.set(arch + ".rope.freq_base", t.rope_theta);
  auto side_file = [&](const char* file, const char* key, bool required) {
    const fs::path p = fs::path(in_dir) / file;
    if (!fs::exists(p)) {
      if (required) fail(ErrorKind::kNotFound, "'", p.string(), "' is missing");
      return;
    }
    w.set(key, read_text_file(p.string()));
  };
  side_file("config.json", "qvl.config_json", true);
  side_file("tokenizer.json", "qvl.tokenizer_json", true);
  side_file("generation_config.json", "qvl.generation_config_json", false);
  side_file("preprocessor_config.json", "qvl.preprocessor_config_json", false);
  try {
    ChatTemplate tmpl = ChatTemplate::from_model_dir(in_dir);
    w.set("qvl.chat_template", tmpl.source());
    w.set("qvl.chat_template_variables", tmpl.default_variables().dump());
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kNotFound) throw;
  }

  // Which matrices to quantize, and in which format, is the tensor tables' word; a tensor no
  // table names is copied as stored (the loader then refuses it, naming it).
  const QuantFormats by_class{layers, head, vision};
  std::map<std::string, QuantClass> quant_class;
  for (const TensorSpec& s : model_tensor_specs(config)) quant_class[s.name] = s.quant;
  std::vector<kernels::QuantizedMatrix> keep;  // buffers the writer points into
  keep.reserve(ckpt->tensor_count());
  const uint64_t total = ckpt->total_bytes();
  uint64_t done = 0;
  for (const std::string& name : ckpt->names()) {
    const TensorView& v = *ckpt->view(name);
    done += v.nbytes;
    if (name == "lm_head.weight" && t.tie_word_embeddings) continue;  // a tied copy: the loader uses embed_tokens
    const auto known = quant_class.find(name);
    const kernels::WeightFormat f = known == quant_class.end() ? kernels::WeightFormat::kDense : by_class.of(known->second);
    if (f != kernels::WeightFormat::kDense && v.shape.size() == 2 && kernels::can_quantize(f, v.shape[0], v.shape[1])) {
      keep.push_back(quantize_weights(kernels::WeightMatrix{v.dtype, v.shape[0], v.shape[1], v.data}, f, &pool));
      const auto& q = keep.back();
      w.add_tensor(name, GgmlType::kI8, {static_cast<int64_t>(q.size_bytes())}, q.bytes(), q.size_bytes());
      w.set("qvl.format." + name, static_cast<uint64_t>(f));
      w.set("qvl.shape." + name, std::vector<int64_t>{v.shape[0], v.shape[1]});
    } else {
      std::vector<int64_t> dims(v.shape.rbegin(), v.shape.rend());  // GGUF: innermost first
      if (dims.empty()) dims = {1};
      w.add_tensor(name, ggml_type_of(v.dtype, name), dims, v.data, v.nbytes);
    }
    if (progress) progress(done, total);
  }
  w.write(output.path());
  output.commit();
}

}  // namespace qvl
