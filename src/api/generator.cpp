#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error_boundary.h"
#include "core/check.h"
#include "api/generator_impl.h"
#include "api/vision_inputs.h"

namespace qvl {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Prefill runs in chunks so that activation buffers stay bounded for long prompts.
constexpr int64_t kPrefillChunk = 256;

}  // namespace

Generator::Impl::Impl(std::shared_ptr<const Model> model_in, const GeneratorParams& p)
    : model(std::move(model_in)),
      m(ModelInternals::of(*model)),
      params(p),
      sampler(p),
      cache(m.config.text.num_hidden_layers, m.info.context_length, m.config.text.num_key_value_heads,
            m.config.text.head_dim, m.kv_type) {
  // Room for a whole context, so that decode steps never grow these.
  const size_t positions = static_cast<size_t>(cache.capacity()) + 1;
  sequence.reserve(positions);
  next_position_after.reserve(positions);
  generated.reserve(positions);
}

void Generator::Impl::evaluate(std::span<const int32_t> ids, std::span<const Position3> positions,
                               const VisionOutput* vision, bool report_prefill) {
  const int64_t n = static_cast<int64_t>(ids.size()), hd = m.config.text.hidden_size;
  if (cache.size() + n > cache.capacity())
    fail(ErrorKind::kLimitExceeded, "the sequence would hold ", cache.size() + n, " tokens, more than the context of ",
         cache.capacity(), " tokens");
  stats.evaluated_tokens += n;
  logits.resize(static_cast<size_t>(m.config.text.vocab_size));
  last_hidden.resize(static_cast<size_t>(hd));
  const Qwen3VL& model = *m.qwen;
  const VisionTokenIds vision_ids = model.vision_ids();
  int64_t vision_row = 0;
  if (report_prefill) report(Progress::Stage::kPrefill, 0, n);
  for (int64_t c0 = 0; c0 < n; c0 += kPrefillChunk) {
    const int64_t c1 = std::min(n, c0 + kPrefillChunk);
    inputs.clear(model);
    for (int64_t i = c0; i < c1; ++i) {
      const int32_t id = ids[static_cast<size_t>(i)];
      if (vision != nullptr && is_vision_pad(id, vision_ids)) inputs.add_vision_row(*vision, vision_row++, positions[size_t(i)]);
      else inputs.add_token(model, id, positions[static_cast<size_t>(i)]);
    }
    const bool last_chunk = c1 == n;
    const DecoderSequence rows{&cache, 0, inputs.rows(), last_chunk ? last_hidden.data() : nullptr,
                               last_chunk ? logits.data() : nullptr};
    model.decoder().forward_batch(inputs.embeds(), inputs.rows(), inputs.positions(), {&rows, 1}, inputs.deepstack(),
                                  workspace, m.pool.get());
    if (report_prefill) report(Progress::Stage::kPrefill, c1, n);
  }
  for (float v : logits)
    if (!std::isfinite(v))
      fail(ErrorKind::kInvalidFile, "the model produced a non-finite logit; the weights may hold NaN or Inf");
}

void Generator::Impl::flush_pending() {
  if (!has_pending) return;
  const int32_t token = sequence.back();
  // A token's position is the one that follows its predecessor.
  const int64_t pos = sequence.size() >= 2 ? next_position_after[sequence.size() - 2] : 0;
  auto t0 = Clock::now();
  const Position3 position{pos, pos, pos};
  evaluate({&token, 1}, {&position, 1}, nullptr);
  stats.decode_seconds += seconds_since(t0);
  has_pending = false;
}

void Generator::Impl::report(Progress::Stage stage, int64_t done, int64_t total) const {
  if (!progress || progress(Progress{stage, done, total})) return;
  const bool image = stage == Progress::Stage::kImageEncode;
  fail(ErrorKind::kCancelled, "cancelled by the progress callback while ", image ? "encoding images" : "prefilling",
       " (", done, " of ", total, image ? " vision blocks" : " tokens", " done); the sequence is unchanged");
}

Generator::Impl::Snapshot Generator::Impl::snapshot(int64_t first_saved_row) {
  Snapshot s{sequence, next_position_after, has_pending, context_full, prompt_end, logits, last_hidden, stats,
             stop_reason, cache.size(), std::min(first_saved_row, cache.size()), {}, {}};
  const size_t bytes = static_cast<size_t>(s.cache_size - s.first_saved_row) * cache.row_bytes();
  if (bytes == 0) return s;
  for (int64_t layer = 0; layer < m.config.text.num_hidden_layers; ++layer) {
    const uint8_t* k = cache.keys(layer, s.first_saved_row);
    const uint8_t* v = cache.values(layer, s.first_saved_row);
    s.keys.emplace_back(k, k + bytes);
    s.values.emplace_back(v, v + bytes);
  }
  return s;
}

void Generator::Impl::restore(Snapshot& s) {
  // Assigned, not moved: the vectors keep the capacity reserved for a whole context.
  sequence.assign(s.sequence.begin(), s.sequence.end());
  next_position_after.assign(s.next_position_after.begin(), s.next_position_after.end());
  has_pending = s.has_pending;
  context_full = s.context_full;
  prompt_end = s.prompt_end;
  logits = std::move(s.logits);
  last_hidden = std::move(s.last_hidden);
  stats = s.stats;
  stop_reason = std::move(s.stop_reason);
  for (size_t layer = 0; layer < s.keys.size(); ++layer) {
    std::copy(s.keys[layer].begin(), s.keys[layer].end(), cache.keys(static_cast<int64_t>(layer), s.first_saved_row));
    std::copy(s.values[layer].begin(), s.values[layer].end(), cache.values(static_cast<int64_t>(layer), s.first_saved_row));
  }
  cache.set_size(s.cache_size);
}

namespace {

void check_token_ids(const Model::Impl& m, const std::vector<int32_t>& ids) {
  if (ids.empty()) fail(ErrorKind::kInvalidArgument, "no tokens to append");
  for (int32_t id : ids)
    if (id < 0 || id >= m.config.text.vocab_size)
      fail(ErrorKind::kInvalidArgument, "token id ", id, " is outside the vocabulary (0..", m.config.text.vocab_size - 1, ")");
}

}  // namespace

Generator::Generator(std::shared_ptr<const Model> model, const GeneratorParams& params) {
  if (!model) fail(ErrorKind::kInvalidArgument, "Generator needs a loaded model");
  impl_ = translate_exceptions("creating a generator", [&] { return std::make_unique<Impl>(std::move(model), params); });
}

Generator::~Generator() = default;

void Generator::set_params(const GeneratorParams& params) {
  translate_exceptions("setting generator parameters", [&] {
    impl_->sampler = Sampler(params);  // validates them before anything changes
    impl_->params = params;
  });
}

void Generator::set_progress_callback(ProgressCallback callback) { impl_->progress = std::move(callback); }

void Generator::append_tokens(const std::vector<int32_t>& ids) {
  ProcessedInputs inputs;
  inputs.input_ids = ids;
  append_inputs(inputs);
}

void Generator::append_inputs(const ProcessedInputs& inputs) {
  Impl& g = *impl_;
  translate_exceptions("appending inputs", [&] {
    // Appending writes only past the cached rows: no row needs saving.
    g.all_or_nothing(g.cache.size(), [&] { g.append(inputs); });
  });
}

void Generator::Impl::append(const ProcessedInputs& given) {
  // Videos become one image-like grid per temporal group (vision_inputs.h).
  ProcessedInputs folded;
  if (!given.video_grid_thw.empty())
    folded = fold_videos(given, m.qwen->vision_ids(), m.qwen->merge_size(), /*copy_pixels=*/false);
  const ProcessedInputs& inputs = given.video_grid_thw.empty() ? given : folded;
  // Without images the folded rows are the videos' own, in the same order (not copied).
  const float* pixels = inputs.pixel_values.empty() && inputs.pixel_rows > 0 ? given.pixel_values_videos.data()
                                                                               : inputs.pixel_values.data();
  check_token_ids(m, inputs.input_ids);
  const int64_t needed = static_cast<int64_t>(sequence.size() + inputs.input_ids.size());
  if (needed > cache.capacity())
    fail(ErrorKind::kLimitExceeded, "the prompt needs ", needed, " tokens but the context holds ", cache.capacity(),
         " (raise the context length)");

  // Images first: encoding them changes nothing here, so a cancel there needs no undoing.
  const Qwen3VL& model = *m.qwen;
  VisionOutput vision;
  if (!inputs.image_grid_thw.empty()) {
    report(Progress::Stage::kImageEncode, 0, model.vision_depth());
    auto t0 = Clock::now();
    vision = model.encode_images(pixels, inputs.pixel_rows, inputs.image_grid_thw, m.pool.get(),
                                 [&](int64_t done, int64_t total) { report(Progress::Stage::kImageEncode, done, total); });
    stats.vision_seconds += seconds_since(t0);
    // A video counts once, not once per temporal group.
    stats.images += static_cast<int64_t>(given.video_grid_thw.empty()
                                             ? inputs.image_grid_thw.size()
                                             : given.image_grid_thw.size() + given.video_grid_thw.size());
  }
  const int64_t pads = model.image_tokens(inputs.input_ids);
  if (pads != vision.tokens)
    fail(ErrorKind::kInvalidArgument, "the input holds ", pads, " image placeholder tokens but the images give ",
         vision.tokens);
  flush_pending();
  MropePositions pos = model.positions(inputs.input_ids, inputs.image_grid_thw, next_position());
  auto t0 = Clock::now();
  evaluate(inputs.input_ids, pos.positions, &vision, /*report_prefill=*/true);
  stats.prefill_seconds += seconds_since(t0);
  stats.prompt_tokens += static_cast<int64_t>(inputs.input_ids.size());

  // Record the position that follows each token (text: +1; an image: its max + 1).
  for (size_t i = 0; i < inputs.input_ids.size(); ++i) {
    const int64_t after = i + 1 < inputs.input_ids.size() ? pos.positions[i + 1][0] : pos.next_position;
    sequence.push_back(inputs.input_ids[i]);
    next_position_after.push_back(after);
  }
  if (observe_prompt) observe_prompt(PromptIntermediates{pos.positions, vision, last_hidden});
  prompt_end = sequence.size();
  clear_stop();
}

void Generator::set_inputs(const ProcessedInputs& conversation) {
  Impl& g = *impl_;
  translate_exceptions("setting the conversation", [&] {
    const auto& ids = conversation.input_ids;
    const VisionTokenIds vision_ids = g.m.qwen->vision_ids();
    size_t common = 0;
    while (common < ids.size() && common < g.sequence.size() && ids[common] == g.sequence[common]) ++common;
    if (common == ids.size() && common > 0) --common;  // re-run the last token to get fresh logits
    // The kept prefix must not end inside or right after an image: its last token is re-run alone.
    while (common > 0 && is_vision_pad(ids[common - 1], vision_ids)) --common;
    // Cache rows from the last kept token on are rewritten: a failed call puts them back.
    g.all_or_nothing(common > 0 ? static_cast<int64_t>(common) - 1 : 0, [&] { g.replace_suffix(conversation, common); });
  });
}

void Generator::Impl::replace_suffix(const ProcessedInputs& given, size_t common) {
  ProcessedInputs folded;
  if (!given.video_grid_thw.empty()) folded = fold_videos(given, m.qwen->vision_ids(), m.qwen->merge_size());
  const ProcessedInputs& conversation = given.video_grid_thw.empty() ? given : folded;
  const auto& ids = conversation.input_ids;
  const VisionTokenIds vision_ids = m.qwen->vision_ids();
  // The suffix keeps the images whose pads lie in it.
  ProcessedInputs suffix;
  suffix.input_ids.assign(ids.begin() + static_cast<std::ptrdiff_t>(common), ids.end());
  suffix.pixel_cols = conversation.pixel_cols;
  const int64_t merge = m.qwen->merge_size();
  size_t image = 0;
  int64_t row = 0;
  for (size_t i = 0; i < ids.size();) {
    if (!is_vision_pad(ids[i], vision_ids)) {
      ++i;
      continue;
    }
    if (image >= conversation.image_grid_thw.size())
      fail(ErrorKind::kInvalidArgument, "the inputs hold more image placeholders than images");
    const auto& grid = conversation.image_grid_thw[image++];
    const int64_t rows = grid[0] * grid[1] * grid[2];
    if (i >= common) {
      suffix.image_grid_thw.push_back(grid);
      suffix.pixel_values.insert(suffix.pixel_values.end(),
                                 conversation.pixel_values.begin() + row * conversation.pixel_cols,
                                 conversation.pixel_values.begin() + (row + rows) * conversation.pixel_cols);
      suffix.pixel_rows += rows;
    }
    row += rows;
    i += static_cast<size_t>(rows / (merge * merge));
  }
  if (row != conversation.pixel_rows)
    fail(ErrorKind::kInvalidArgument, "the inputs' pixel rows (", conversation.pixel_rows, ") do not match their images (", row, ")");
  rewind(common);
  if (common > 0) {
    // rewind left the last kept token pending; evaluate it with the suffix in one pass.
    suffix.input_ids.insert(suffix.input_ids.begin(), sequence.back());
    sequence.pop_back();
    next_position_after.pop_back();
    has_pending = false;
  }
  append(suffix);
}

void Generator::generate_next_token() {
  Impl& g = *impl_;
  if (g.sequence.empty()) fail(ErrorKind::kInvalidArgument, "append a prompt before generating");
  if (is_done())
    fail(ErrorKind::kInvalidArgument, "generation is done (", g.stop_reason, g.context_full ? ": the context is full" : "",
         ")");
  // No snapshot here (a copy of the logits per token would cost): sampling does not fail, and a
  // decode step that does (non-finite logits) means the weights are unusable anyway.
  translate_exceptions("generating a token", [&] { g.generate(); });
}

void Generator::Impl::generate() {
  flush_pending();
  sampled_logits.assign(logits.begin(), logits.end());  // last_logits() stays as the model gave them
  generated.assign(sequence.begin() + static_cast<std::ptrdiff_t>(prompt_end), sequence.end());
  const int32_t token = sampler.sample(sampled_logits, sequence, generated);
  generated.push_back(token);
  const int64_t pos = next_position();
  sequence.push_back(token);
  next_position_after.push_back(pos + 1);
  has_pending = true;
  ++stats.generated_tokens;

  const auto& eos = m.info.eos_token_ids;
  if (params.stop_at_eos && std::find(eos.begin(), eos.end(), token) != eos.end()) stop_reason = "eos";
  else if (static_cast<int64_t>(sequence.size() - prompt_end) >= params.max_new_tokens) stop_reason = "length";
  else if (matches_stop_string(generated)) stop_reason = "stop";
  else if (cache.size() >= cache.capacity()) {
    // The token is emitted, but there is no cache slot left to evaluate it in for another step.
    stop_reason = "length";
    context_full = true;
  }
}

bool Generator::Impl::matches_stop_string(const std::vector<int32_t>& generated) const {
  if (params.stop.empty()) return false;
  // The generated ids are decoded as a whole, not token by token, so that a stop string matches
  // the text exactly even where it spans tokens or a character is split over several tokens.
  const std::string text = m.tokenizer->decode(generated, true);
  for (const auto& s : params.stop)
    if (!s.empty() && text.find(s) != std::string::npos) return true;
  return false;
}

bool Generator::is_done() const { return !impl_->stop_reason.empty(); }

int32_t Generator::next_token() const {
  if (!impl_->has_pending) fail(ErrorKind::kInvalidArgument, "no token has been generated yet");
  return impl_->sequence.back();
}

const std::vector<int32_t>& Generator::sequence() const { return impl_->sequence; }

void Generator::rewind_to(size_t length) { impl_->rewind(length); }

void Generator::Impl::rewind(size_t length) {
  if (length > sequence.size())
    fail(ErrorKind::kInvalidArgument, "cannot rewind to ", length, " tokens: the sequence has ", sequence.size());
  if (length == 0) {
    sequence.clear();
    next_position_after.clear();
    cache.set_size(0);
    has_pending = false;
  } else {
    // Keep length-1 tokens in the cache and re-evaluate the last kept one on the next step,
    // so the logits that follow it are fresh.
    if (is_vision_pad(sequence[length - 1], m.qwen->vision_ids()))
      fail(ErrorKind::kInvalidArgument, "cannot rewind into the middle of an image");
    sequence.resize(length);
    next_position_after.resize(length);
    cache.set_size(std::min<int64_t>(cache.size(), static_cast<int64_t>(length) - 1));
    has_pending = true;
  }
  prompt_end = std::min(prompt_end, sequence.size());
  clear_stop();
}

const std::vector<float>& Generator::last_logits() const { return impl_->logits; }
const GeneratorStats& Generator::stats() const { return impl_->stats; }
std::string Generator::stop_reason() const { return impl_->stop_reason; }
bool Generator::context_full() const { return impl_->context_full; }

}  // namespace qvl
