// qvl public C++ API: load a Qwen3-VL / Qwen3 checkpoint folder once, then tokenize, process
// images and generate. Shaped like ONNX Runtime GenAI (Model, Tokenizer, Processor,
// GeneratorParams, Generator). Every failure is a qvl::Error (see error.hpp).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qvl/error.hpp"
#include "qvl/image.hpp"
#include "qvl/video.hpp"

namespace qvl {

struct ModelOptions {
  int threads = 0;              // worker threads; 0 = every core available to the process
  // KV cache positions per generator; 0 = min(config max, 32768). Negative or above the model's
  // max_position_embeddings is kInvalidArgument.
  int64_t context_length = 0;
  // Text decoder weights: "" keeps them as stored (bf16/f16/f32; llama.cpp's Q8_0, Q4_0, Q4_K
  // and Q6_K blocks run packed as stored, other ggml types decoded to f32); "f32" keeps every
  // weight exact in floating point (ggml blocks decoded to f32: the reference path, slow);
  // "q8_0", "q4_0" or "q4_k" quantizes at load. For a file whose text weights are already quantized (`qvl quantize`),
  // only "" or that same type is accepted (kInvalidArgument otherwise). head_weights_type does the same for embed_tokens/lm_head ("" = q8_0
  // when the layers are quantized, else as stored), and also takes "q6_k" (ggml's Q6_K).
  std::string weights_type;
  std::string head_weights_type;
  // Vision tower blocks and mergers: "" keeps them as stored (the default: vision quality first);
  // "q8_0" quantizes at load (about 2x faster image encoding).
  std::string vision_weights_type;
  // Arithmetic of the vision tower's attention: "bf16" (q, k, v and the softmax weights rounded
  // to bf16, fp32 sums and softmax: the attention ~3.5x faster on CPUs with AVX512_BF16, ~2.3x on
  // AVX2; vision embeddings within ~2e-2 of max |f32| on the synthetic 4B), "f32" (the
  // reference), or "" = bf16 where it is the faster kernel (AVX512_BF16, or AVX2), else f32.
  std::string vision_attention;
  // Element type of every generator's KV cache: "" or "f16" (the default: half the bytes of
  // fp32, what long-context decode streams), "f32" (exact; the golden tests use it) or "q8_0"
  // (blocks of 32 int8 + an fp32 scale, ~0.28 of fp32; needs head_dim % 32 == 0, else f16).
  std::string kv_cache_type;
  // A llama.cpp text GGUF's vision projector (the "mmproj" file), as llama.cpp's --mmproj takes
  // it. Empty: a folder given as the model may hold it beside the text GGUF; without one a
  // Qwen3-VL text GGUF runs text only.
  std::string mmproj;
};

struct ModelInfo {
  std::string model_type;       // "qwen3_vl" or "qwen3"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t context_length = 0;      // KV cache positions each generator holds
  int64_t max_context_length = 0;  // the checkpoint's max_position_embeddings (32768 when absent)
  bool has_vision = false;
  std::vector<int32_t> eos_token_ids;
  uint64_t weight_bytes = 0;    // bytes of weights as loaded
  uint64_t decode_weight_bytes = 0;  // weight bytes one decode step reads (text layers + lm_head)
  uint64_t kv_bytes_per_token = 0;   // KV cache bytes per context position
  // What the KV cache really holds: "f16", "f32" or "q8_0" ("f16" when q8_0 was asked for a
  // head_dim that is not a multiple of 32), so callers can say when a request was not honoured.
  std::string kv_cache_type;
  // How the text matrices are held, in lower case: "bf16", "f16", "f32", "q8_0", "q4_0", "q4_k",
  // or for llama.cpp files "ggml_q4_k" / "ggml_q6_k" (their blocks, packed as stored).
  std::string weights_type;
  // The vision tower's attention arithmetic in use: "bf16" or "f32" ("" without a vision tower).
  std::string vision_attention;
  int threads = 1;
  // Things about the load the user should hear (e.g. "text only: images need --mmproj").
  std::vector<std::string> notes;
};

// A loaded checkpoint. Immutable after load: share one between any number of generators.
class Model {
 public:
  static std::shared_ptr<Model> load(const std::string& dir, const ModelOptions& options = {});
  ~Model();
  const ModelInfo& info() const;
  const std::string& dir() const;

  struct Impl;  // the library's side; reached from inside it through ModelInternals

 private:
  friend struct ModelInternals;
  Model();
  static std::shared_ptr<Model> load_checked(const std::string& dir, const ModelOptions& options);
  std::unique_ptr<Impl> impl_;
};

// Incremental detokenizer: returns only complete UTF-8 text, never half a character. Made with
// stop strings (Tokenizer::create_stream(params.stop)), it never returns one: text that could
// begin a stop string is held back until the next tokens show it does not, and at the first stop
// string the stream stops (stopped()); the Generator then reports "stop" for the same token.
class TokenizerStream {
 public:
  ~TokenizerStream();
  TokenizerStream(TokenizerStream&&) noexcept;
  std::string decode(int32_t token);
  std::string flush();
  bool stopped() const;  // a stop string was reached

 private:
  friend class Tokenizer;
  struct Impl;
  explicit TokenizerStream(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Tokenizer {
 public:
  explicit Tokenizer(std::shared_ptr<const Model> model);
  std::vector<int32_t> encode(std::string_view text) const;  // special tokens in the text are matched
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;
  int32_t token_to_id(std::string_view token) const;          // -1 if unknown
  // messages_json: an OpenAI/HF-style message array. extra_json: extra template variables
  // (e.g. {"enable_thinking": false, "tools": [...]}).
  std::string apply_chat_template(const std::string& messages_json, bool add_generation_prompt = true,
                                  const std::string& extra_json = "{}") const;
  TokenizerStream create_stream(bool skip_special_tokens = true) const;
  TokenizerStream create_stream(const std::vector<std::string>& stop, bool skip_special_tokens = true) const;

 private:
  std::shared_ptr<const Model> model_;
};


// Token ids and vision tensors for one prompt, ready for Generator::append_inputs.
struct ProcessedInputs {
  std::string prompt_text;                              // rendered template (before pad expansion)
  std::vector<int32_t> input_ids;                       // image pads expanded
  std::vector<std::array<int64_t, 3>> image_grid_thw;   // per image, in patches
  std::vector<int64_t> image_tokens;                    // per image: its placeholder tokens
  std::vector<float> pixel_values;                      // [pixel_rows, pixel_cols]
  int64_t pixel_rows = 0, pixel_cols = 0;
  // Videos, in prompt order. Each becomes, per temporal group g of two sampled frames, the text
  // "<t seconds>" then <|vision_start|>, h*w/4 <|video_pad|> tokens and <|vision_end|>.
  std::vector<std::array<int64_t, 3>> video_grid_thw;   // per video: [groups, h, w] in patches
  std::vector<int64_t> video_tokens;                    // per video: its <|video_pad|> tokens
  std::vector<float> pixel_values_videos;               // [video_pixel_rows, pixel_cols]
  int64_t video_pixel_rows = 0;
  std::vector<std::vector<int64_t>> video_frame_indices;     // per video: sampled source frames
  std::vector<std::vector<std::string>> video_timestamps;    // per video: "<t seconds>" per group
  // Things in the messages that were accepted but ignored (an unknown role or content item type),
  // one sentence each, for the caller to show.
  std::vector<std::string> warnings;
};

struct ProcessorOptions {
  std::optional<int64_t> min_pixels;  // override preprocessor_config.json's size.shortest_edge
  std::optional<int64_t> max_pixels;  // override size.longest_edge
  // When set, image paths named inside messages (relative ones taken from base_dir as always)
  // must resolve (after `..` and symlinks) to files inside this directory, else kInvalidArgument
  // naming the path and the root; a server taking messages from clients should set it. Empty
  // (the default): any readable path, absolute or relative to base_dir, `..` included.
  std::string media_root;
  // Video sampling and size settings for every video (a video item's own "fps", "min_frames",
  // "max_frames", "min_pixels", "max_pixels", "video_start", "video_end" keys override them).
  VideoOptions video;
  // Called while a video file is decoded: (frames decoded, frames in the file); empty = none.
  std::function<void(int64_t done, int64_t total)> video_progress;
};

class Processor {
 public:
  explicit Processor(std::shared_ptr<const Model> model, const ProcessorOptions& options = {});
  // Renders the chat template over messages. Image items in messages take their pixels from
  // `images` in order; an image item without a matching entry is loaded from its "image"
  // path (relative paths resolve against base_dir; see ProcessorOptions::media_root).
  // Invalid UTF-8 in any text is kInvalidArgument naming the byte and its offset.
  ProcessedInputs process(const std::string& messages_json, const std::vector<Image>& images = {},
                          bool add_generation_prompt = true, const std::string& base_dir = ".",
                          const std::string& extra_json = "{}") const;
  // Convenience: one user turn, the images first, then the text.
  ProcessedInputs process_prompt(const std::string& text, const std::vector<Image>& images = {},
                                 const std::string& system = "") const;

 private:
  std::shared_ptr<const Model> model_;
  ProcessorOptions options_;
};

// Checked when a Generator is built and by set_params: a value out of range (NaN included) is
// kInvalidArgument naming the parameter.
struct GeneratorParams {
  int64_t max_new_tokens = 256;  // >= 1
  bool do_sample = false;        // false: greedy (ties → lowest id)
  float temperature = 1.0f;
  int64_t top_k = 0;             // 0 = off
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;
  // Stop strings: generation stops at the token that completes one ("stop"). Text streamed
  // through Tokenizer::create_stream(stop) or reported by the Engine never contains them.
  std::vector<std::string> stop;
  bool stop_at_eos = true;

  // Defaults from the checkpoint's generation_config.json.
  static GeneratorParams from_model(const Model& model);
};

struct GeneratorStats {
  int64_t prompt_tokens = 0;      // tokens evaluated in prefill calls
  int64_t evaluated_tokens = 0;   // every row run through the decoder (prefill + decode)
  int64_t generated_tokens = 0;
  int64_t images = 0;
  double vision_seconds = 0, prefill_seconds = 0, decode_seconds = 0;
};

// Progress of long work inside a Generator call (append_inputs, append_tokens, set_inputs),
// reported between units of work: vision-tower blocks while encoding images (every image of the
// call goes through each block together, so total = the tower's depth), then prompt tokens
// while prefilling (per chunk of 256). Each stage reports done = 0 first and done = total last;
// decoding single tokens reports nothing.
struct Progress {
  enum class Stage { kImageEncode, kPrefill };
  Stage stage;
  int64_t done = 0;   // units finished
  int64_t total = 0;  // units in this stage of this call
};
// Return false to cancel: the call throws Error(kCancelled) and the sequence is left as it was
// before the call (cache, tokens, positions, logits, stats), so the next call works. Called on the
// thread that made the call; it must not call into the same Generator.
using ProgressCallback = std::function<bool(const Progress&)>;

// One sequence: its own KV cache over a shared Model. A call that fails (an input that does not
// fit, a cancel) leaves the sequence as it was.
class Generator {
 public:
  Generator(std::shared_ptr<const Model> model, const GeneratorParams& params);
  ~Generator();

  void set_params(const GeneratorParams& params);
  void append_tokens(const std::vector<int32_t>& ids);  // text tokens (no image pads)
  void append_inputs(const ProcessedInputs& inputs);    // encodes the images, then prefill
  // Makes the sequence hold exactly `conversation` (e.g. a whole chat re-rendered each turn),
  // keeping the cached prefix it shares with the current sequence: only the new suffix (and
  // only images inside it) is evaluated.
  void set_inputs(const ProcessedInputs& conversation);
  // Chooses the next token. Every call yields one (next_token()), including the last: when the
  // cache has no slot left to evaluate it in, generation ends there ("length", context_full()).
  void generate_next_token();
  bool is_done() const;
  int32_t next_token() const;                           // the token chosen by the last step
  const std::vector<int32_t>& sequence() const;         // every token in the cache + the next one
  void rewind_to(size_t length);                        // keep the first `length` tokens
  const std::vector<float>& last_logits() const;        // logits that chose next_token()
  const GeneratorStats& stats() const;
  std::string stop_reason() const;                      // "eos", "stop", "length" or ""
  // True when generation stopped ("length") because the context is full rather than at
  // max_new_tokens.
  bool context_full() const;
  void set_progress_callback(ProgressCallback callback);  // empty = no reports

  struct Impl;  // the library's side; reached from inside it through GeneratorInternals

 private:
  friend struct GeneratorInternals;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qvl
