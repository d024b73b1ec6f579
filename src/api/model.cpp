#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/error_boundary.h"
#include "core/check.h"
#include "core/json_util.h"
#include "formats/llama_gguf.h"
#include "model/text/kv_cache.h"
#include "model/text/text_tensors.h"
#include "model/weight_view.h"
#include "api/model_impl.h"

namespace qvl {

namespace fs = std::filesystem;

Model::Model() : impl_(std::make_unique<Impl>()) {}
Model::~Model() = default;

const ModelInfo& Model::info() const { return impl_->info; }
const std::string& Model::dir() const { return impl_->dir; }

const ChatTemplate& Model::Impl::require_chat_template() const {
  if (!chat_template)
    fail(ErrorKind::kNotFound, "the model in '", dir,
         "' has no chat template (chat_template.json, chat_template.jinja or tokenizer_config.json)");
  return *chat_template;
}

namespace {

const std::string& require_metadata(const Checkpoint& ckpt, const std::string& key) {
  const std::string* v = ckpt.metadata_string(key);
  if (v == nullptr) fail(ErrorKind::kInvalidFile, ckpt.dir(), ": GGUF file lacks '", key, "' (not written by qvl quantize?)");
  return *v;
}

// A qvl GGUF whose text layers are already quantized cannot take another weights_type.
void check_stored_text_format(const Model::Impl& m, const std::string& weights_type) {
  if (weights_type.empty()) return;
  const TensorView* probe = m.checkpoint->view(text_tensor_prefix(m.config) + "layers.0.mlp.gate_proj.weight");
  if (probe == nullptr || probe->ggml_block_type != 0) return;  // missing: the loader says so; ggml: decoded at load
  const kernels::WeightMatrix stored = as_matrix(*probe);
  if (!stored.quantized() || (weights_type != "f32" && weight_format_option(weights_type) == stored.format)) return;
  const std::string stored_name(kernels::weight_format_name(stored.format));
  fail(ErrorKind::kInvalidArgument, "weights type '", weights_type, "' cannot be applied: the text weights in '", m.dir,
       "' are already quantized as ", stored_name, " (give no weights type, or ", stored_name, ")");
}

}  // namespace

std::shared_ptr<Model> Model::load(const std::string& dir, const ModelOptions& options) {
  return translate_exceptions(
      "loading the model from '" + dir + "'", [&] { return load_checked(dir, options); }, ErrorKind::kInvalidFile);
}

std::shared_ptr<Model> Model::load_checked(const std::string& dir, const ModelOptions& options) {
  if (options.context_length < 0)
    fail(ErrorKind::kInvalidArgument, "context length must be positive (got ", options.context_length, ")");
  std::shared_ptr<Model> model(new Model());
  Impl& m = *model->impl_;
  m.dir = dir;
  std::string gguf_text, gguf_mmproj;
  if (find_llama_gguf_pair(dir, options.mmproj, &gguf_text, &gguf_mmproj)) {
    // A llama.cpp GGUF (+ projector): the side files are rebuilt from its metadata.
    LlamaGgufModel g = open_llama_gguf(gguf_text, gguf_mmproj);
    m.config = parse_model_config(g.config_json, gguf_text + " (config from its GGUF metadata)");
    m.generation = parse_generation_config(g.generation_config_json, gguf_text + " (generation settings)");
    m.tokenizer = BpeTokenizer::from_json_text(g.tokenizer_json, gguf_text + " (tokenizer.ggml.*)");
    if (!g.chat_template.empty()) m.chat_template.emplace(g.chat_template);
    if (!g.preprocessor_config_json.empty())
      m.preprocessor = parse_preprocessor_config(g.preprocessor_config_json, gguf_mmproj + " (clip.vision.*)");
    m.checkpoint = std::move(g.checkpoint);
    m.info.notes = std::move(g.notes);
  } else if (!options.mmproj.empty()) {
    fail(ErrorKind::kInvalidArgument, "a vision projector (mmproj) goes with a llama.cpp text GGUF; '", dir,
         "' is not one");
  } else if (fs::is_regular_file(dir)) {
    // A single-file GGUF from `qvl quantize`: the side files travel as metadata strings.
    m.checkpoint = Checkpoint::open(dir);
    const Checkpoint& c = *m.checkpoint;
    m.config = parse_model_config(require_metadata(c, "qvl.config_json"), dir + " config");
    if (const std::string* g = c.metadata_string("qvl.generation_config_json")) m.generation = parse_generation_config(*g, dir);
    m.tokenizer = BpeTokenizer::from_json_text(require_metadata(c, "qvl.tokenizer_json"), dir + " tokenizer");
    if (const std::string* t = c.metadata_string("qvl.chat_template")) {
      m.chat_template.emplace(*t);
      if (const std::string* v = c.metadata_string("qvl.chat_template_variables"))
        m.chat_template->set_default_variables(parse_json(*v, dir + " chat template variables"));
    }
    if (const std::string* p = c.metadata_string("qvl.preprocessor_config_json"))
      m.preprocessor = parse_preprocessor_config(*p, dir + " preprocessor config");
  } else {
    m.config = load_model_config(dir);
    m.generation = load_generation_config(dir);
    m.checkpoint = Checkpoint::open(dir);
    m.tokenizer = BpeTokenizer::load((fs::path(dir) / "tokenizer.json").string());
    try {
      m.chat_template = ChatTemplate::from_model_dir(dir);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::kNotFound) throw;  // a broken template is an error; a missing one is not
    }
    m.preprocessor = load_preprocessor_config(dir);
  }
  // Video settings: the folder's video_preprocessor_config.json, else the image settings with
  // Qwen3VLVideoProcessor's defaults (fps 2, 4..768 frames, 4096..25165824 pixels per clip).
  std::error_code video_ec;
  if (fs::is_regular_file(fs::path(dir) / "video_preprocessor_config.json", video_ec)) {
    m.video_preprocessor = load_video_preprocessor_config(dir);
  } else {
    m.video_preprocessor.image = m.preprocessor;
    m.video_preprocessor.image.min_pixels = 4096;
    m.video_preprocessor.image.max_pixels = 25165824;
  }
  // Checked before the (slow) weight loading so a typo fails fast.
  const int64_t max_context =
      m.config.text.max_position_embeddings > 0 ? m.config.text.max_position_embeddings : 32768;
  if (options.context_length > max_context)
    fail(ErrorKind::kInvalidArgument, "context length ", options.context_length, " exceeds the model's maximum of ",
         max_context);
  check_stored_text_format(m, options.weights_type);
  // "f32": every weight exact, llama.cpp's quantized blocks decoded instead of run packed.
  const bool exact_f32 = options.weights_type == "f32";
  if (exact_f32) m.checkpoint->set_pack_ggml_blocks(false);
  const kernels::KvType kv_requested =
      options.kv_cache_type.empty() ? kernels::KvType::kF16 : kernels::parse_kv_type(options.kv_cache_type);
  const int threads = options.threads > 0 ? options.threads : default_thread_count();
  m.pool = std::make_unique<ThreadPool>(threads);
  m.checkpoint->set_thread_pool(m.pool.get());
  TextWeightFormats formats;
  formats.layers = weight_format_option(exact_f32 ? "" : options.weights_type);
  formats.head = eight_bit_companion_format(options.head_weights_type, formats.layers);
  // Vision attention: bf16 by default where it is the faster kernel.
  const kernels::AttentionPrecision vision_attention =
      !options.vision_attention.empty() ? kernels::parse_attention_precision(options.vision_attention)
      : kernels::attention_bf16_preferred()   ? kernels::AttentionPrecision::kBF16
                                              : kernels::AttentionPrecision::kF32;
  m.qwen = std::make_unique<Qwen3VL>(m.config, *m.checkpoint, formats, weight_format_option(options.vision_weights_type),
                                     m.pool.get(), vision_attention);
  m.checkpoint->check_all_used();

  if (m.tokenizer->vocab_size() > m.config.text.vocab_size)
    fail(ErrorKind::kInvalidFile, "tokenizer.json has ", m.tokenizer->vocab_size(),
         " tokens but the model's vocab_size is ", m.config.text.vocab_size);

  ModelInfo& info = m.info;
  info.model_type = m.config.model_type;
  info.vocab_size = m.config.text.vocab_size;
  info.hidden_size = m.config.text.hidden_size;
  info.num_layers = m.config.text.num_hidden_layers;
  info.max_context_length = max_context;
  info.context_length = options.context_length > 0 ? options.context_length : std::min<int64_t>(max_context, 32768);
  info.has_vision = m.qwen->has_vision();
  if (info.has_vision) info.vision_attention = std::string(kernels::attention_precision_name(vision_attention));
  auto add_eos = [&](int64_t id) {
    if (std::find(info.eos_token_ids.begin(), info.eos_token_ids.end(), id) == info.eos_token_ids.end())
      info.eos_token_ids.push_back(static_cast<int32_t>(id));
  };
  for (int64_t id : m.generation.eos_token_ids) add_eos(id);
  for (int64_t id : m.config.eos_token_ids) add_eos(id);
  const TextWeights& tw = m.qwen->decoder().weights();
  // Every tensor as held now (quantized or not), from the towers' tensor tables.
  const TextWeightBytes text_bytes = text_weight_bytes(m.config, tw);
  info.weight_bytes = (m.qwen->has_vision() ? m.qwen->vision().weight_bytes() : 0) + text_bytes.all;
  info.decode_weight_bytes = text_bytes.per_token;
  m.kv_type = KvCache::effective_type(kv_requested, m.config.text.head_dim);
  info.kv_cache_type = std::string(kernels::kv_type_name(m.kv_type));
  info.kv_bytes_per_token = static_cast<uint64_t>(2 * m.config.text.num_hidden_layers) *
                            kernels::kv_bytes(m.kv_type, m.config.text.num_key_value_heads * m.config.text.head_dim);
  const kernels::WeightMatrix& probe = tw.layers.at(0).mlp.gate_proj;
  info.weights_type = kernels::weight_type_name(probe.format, probe.dtype);
  info.threads = threads;
  return model;
}

GeneratorParams GeneratorParams::from_model(const Model& model) {
  const GenerationConfig& g = ModelInternals::of(model).generation;
  GeneratorParams p;
  p.do_sample = g.do_sample;
  p.temperature = static_cast<float>(g.temperature);
  p.top_k = g.top_k;
  p.top_p = static_cast<float>(g.top_p);
  p.min_p = static_cast<float>(g.min_p);
  p.repetition_penalty = static_cast<float>(g.repetition_penalty);
  p.presence_penalty = static_cast<float>(g.presence_penalty);
  p.frequency_penalty = static_cast<float>(g.frequency_penalty);
  if (g.max_new_tokens) p.max_new_tokens = *g.max_new_tokens;
  return p;
}

}  // namespace qvl
