// Continuous batching. Each step gathers one row per decoding sequence plus prefill chunks of
// admitted prompts (up to max_step_tokens rows), runs them through the decoder in one pass over
// the weights, then samples and reports for every sequence whose last row produced logits.
#include "qvl/engine.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "core/check.h"
#include "api/vision_inputs.h"
#include "tokenizer/stop_strings.h"
#include "engine/vision_cache.h"
#include "model/mrope_positions.h"
#include "model/text/kv_cache.h"
#include "api/model_impl.h"
#include "api/sampler.h"

namespace qvl {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// What identifies a prompt position's content for prefix reuse: the token id, or for an image
// placeholder the image (its hash) and the placeholder's index inside it.
uint64_t image_token_key(uint64_t image_hash, int64_t index) {
  return (image_hash ^ (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(index + 1))) | (uint64_t{1} << 63);
}

// A callback that throws must not take the engine down: the exception ends at the boundary.
void deliver(const RequestCallback& callback, const RequestEvent& event) {
  if (!callback) return;
  try {
    callback(event);
  } catch (...) {
  }
}

struct Request {
  RequestId id = 0;
  ProcessedInputs inputs;
  GeneratorParams params;
  RequestOptions options;
  RequestCallback callback;
  Clock::time_point submitted;
};

struct Sequence {
  Sequence(const GeneratorParams& p, const BpeTokenizer& tokenizer)
      : params(p), sampler(p), stream(tokenizer, true), stops(p.stop) {}

  RequestId id = 0;
  GeneratorParams params;
  Sampler sampler;
  RequestCallback callback;
  Clock::time_point submitted;
  std::unique_ptr<KvCache> cache;    // its capacity is what the sequence holds of the KV budget

  std::vector<int32_t> tokens;       // prompt, then generated tokens
  std::vector<uint64_t> content;     // per token: what prefix reuse compares
  int64_t prompt_length = 0;
  std::vector<Position3> prompt_positions;
  int64_t next_position = 0;         // the position of the next token to generate
  // Per prompt token: the image it belongs to (index into images) and its row there, or -1.
  std::vector<int32_t> image_of;
  std::vector<int64_t> image_row;
  std::vector<std::shared_ptr<const VisionOutput>> images;
  // Images still in the vision tower: one block runs per engine step, between decode batches.
  std::unique_ptr<VisionEncodeJob> encoding;
  struct EncodingImage {
    size_t index;     // into `images`
    int64_t tokens;   // its rows of the job's output, in order
    uint64_t hash;    // its vision-cache key
  };
  std::vector<EncodingImage> encoding_images;

  bool pending = false;              // tokens.back() was sampled and is not in the cache yet
  std::string finish_reason;         // set when sampling ends the sequence
  bool context_full = false;
  std::vector<int32_t> generated;
  std::vector<float> logits;
  BpeTokenizer::StreamDecoder stream;
  StopStringFilter stops;
  RequestStats stats;
  bool first_token_reported = false;
  int top_logprobs = -1;             // RequestOptions::top_logprobs
  std::vector<float> raw_logits;     // with top_logprobs >= 0: the logits before sampling warps them
  std::vector<TokenLogprob> top;     // the alternatives of the token being reported

  int64_t evaluated() const { return cache->size(); }
  int64_t reserved() const { return cache->capacity(); }
  bool prefilling() const { return !encoding && evaluated() < prompt_length; }
};

}  // namespace

struct Engine::Impl {
  Impl(std::shared_ptr<const Model> model_in, const EngineOptions& o)
      : model(std::move(model_in)), m(ModelInternals::of(*model)), options(o), vision_cache(o.vision_cache_bytes) {}

  std::shared_ptr<const Model> model;
  const Model::Impl& m;
  EngineOptions options;
  int64_t kv_budget = 0;

  // Shared with submitting threads.
  mutable std::mutex mutex;
  std::condition_variable wake, idle;
  std::deque<Request> incoming;
  std::set<RequestId> cancel_requests;
  RequestId next_id = 1;
  int64_t unfinished = 0;  // submitted and not yet reported finished
  bool stopping = false;
  EngineStats public_stats;
  std::thread worker;

  // Owned by the stepping thread.
  std::deque<Request> queue;
  std::vector<std::unique_ptr<Sequence>> running;   // in admission order
  std::deque<std::unique_ptr<Sequence>> finished;   // kept for prefix reuse, oldest first
  int64_t reserved = 0;                             // KV positions of running + finished
  VisionCache vision_cache;
  int64_t steps = 0;
  double last_step_seconds = 0;

  // Step buffers, kept so that a steady step allocates nothing.
  DecoderInputs inputs;
  std::vector<DecoderSequence> batch;
  std::vector<Sequence*> batch_owner;
  DecoderWorkspace workspace;

  void finish(Sequence& s, const std::string& reason, bool context_full = false, const std::string& error = {});
  // The finished event of a request that never ran ("error" or "cancelled").
  void report_unadmitted(Request& r, const std::string& reason, const std::string& error = {});
  void report_error(Request& r, const std::string& error) { report_unadmitted(r, "error", error); }
  enum class Admission { kAdmitted, kWait, kRejected };
  Admission admit(Request& r);
  bool step();
  void emit_token(Sequence& s, int32_t token);
  static void fill_logprobs(Sequence& s, int32_t token, RequestEvent& e);
  void release(std::unique_ptr<Sequence> s, bool keep);
  // Reports a running sequence finished, gives back its KV memory (keeping it for prefix reuse
  // when `keep`), and returns the next position in `running`.
  using Running = std::vector<std::unique_ptr<Sequence>>::iterator;
  Running retire(Running it, const std::string& reason, bool keep, const std::string& error = {});
  void advance_encoding(Sequence& s);
  void evict_finished(int64_t needed);
  void publish_stats();
};

// ---- reporting -----------------------------------------------------------------------------

void Engine::Impl::report_unadmitted(Request& r, const std::string& reason, const std::string& error) {
  RequestEvent e;
  e.id = r.id;
  e.finished = true;
  e.finish_reason = reason;
  e.error = error;
  e.stats.queue_seconds = e.stats.total_seconds = seconds_between(r.submitted, Clock::now());
  deliver(r.callback, e);
  std::lock_guard<std::mutex> lock(mutex);
  --unfinished;
}

void Engine::Impl::finish(Sequence& s, const std::string& reason, bool context_full, const std::string& error) {
  RequestEvent e;
  e.id = s.id;
  e.text = s.stops.push(s.stream.flush());  // the decoder's tail, through the stop filter like the rest
  e.text += s.stops.finish();
  e.finished = true;
  e.finish_reason = reason;
  e.context_full = context_full;
  e.error = error;
  s.stats.generated_tokens = static_cast<int64_t>(s.generated.size());
  s.stats.total_seconds = seconds_between(s.submitted, Clock::now());
  e.stats = s.stats;
  deliver(s.callback, e);
  std::lock_guard<std::mutex> lock(mutex);
  --unfinished;
}

void Engine::Impl::emit_token(Sequence& s, int32_t token) {
  if (!s.first_token_reported) {
    s.first_token_reported = true;
    s.stats.ttft_seconds = seconds_between(s.submitted, Clock::now());
  }
  RequestEvent e;
  e.id = s.id;
  e.token = token;
  e.text = s.stops.push(s.stream.put(token));
  if (s.top_logprobs >= 0) fill_logprobs(s, token, e);
  deliver(s.callback, e);
}

void Engine::Impl::fill_logprobs(Sequence& s, int32_t token, RequestEvent& e) {
  const std::vector<float>& raw = s.raw_logits;
  float max = raw[0];
  for (float v : raw) max = std::max(max, v);
  double sum = 0;
  for (float v : raw) sum += std::exp(static_cast<double>(v - max));
  const float log_z = max + static_cast<float>(std::log(sum));
  e.logprob = token >= 0 && static_cast<size_t>(token) < raw.size() ? raw[static_cast<size_t>(token)] - log_z : 0.0f;
  // The k largest logits (ties: lower id first), kept sorted in a small array.
  const size_t k = std::min(static_cast<size_t>(s.top_logprobs), raw.size());
  s.top.clear();
  for (size_t i = 0; i < raw.size() && k > 0; ++i) {
    if (s.top.size() == k && raw[i] <= s.top.back().logprob) continue;
    if (s.top.size() == k) s.top.pop_back();
    auto at = std::upper_bound(s.top.begin(), s.top.end(), raw[i],
                               [](float v, const TokenLogprob& t) { return v > t.logprob; });
    s.top.insert(at, TokenLogprob{static_cast<int32_t>(i), raw[i]});
  }
  for (auto& t : s.top) t.logprob -= log_z;
  e.top_logprobs = s.top;
}

// ---- images ----------------------------------------------------------------------------------

void Engine::Impl::advance_encoding(Sequence& s) {
  const auto t0 = Clock::now();
  s.encoding->run_block(m.pool.get());
  s.stats.vision_seconds += seconds_between(t0, Clock::now());
  if (!s.encoding->done()) return;
  // Split the output per image: each is cached and referenced on its own.
  const VisionOutput out = s.encoding->take_output();
  s.encoding.reset();
  const int64_t hd = out.hidden;
  int64_t row = 0;
  for (const auto& image : s.encoding_images) {
    const int64_t tokens = image.tokens;
    auto e = std::make_shared<VisionOutput>();
    e->tokens = tokens;
    e->hidden = hd;
    e->embeds.assign(out.embeds.begin() + row * hd, out.embeds.begin() + (row + tokens) * hd);
    for (const auto& layer : out.deepstack)
      e->deepstack.emplace_back(layer.begin() + row * hd, layer.begin() + (row + tokens) * hd);
    row += tokens;
    vision_cache.insert(image.hash, e);
    s.images[image.index] = std::move(e);
  }
}

Engine::Impl::Running Engine::Impl::retire(Running it, const std::string& reason, bool keep, const std::string& error) {
  finish(**it, reason, (*it)->context_full, error);
  release(std::move(*it), keep);
  return running.erase(it);
}

// ---- KV budget -----------------------------------------------------------------------------

void Engine::Impl::release(std::unique_ptr<Sequence> s, bool keep) {
  if (keep && options.keep_finished > 0 && s->evaluated() > 0) {
    finished.push_back(std::move(s));
    while (static_cast<int>(finished.size()) > options.keep_finished) {
      reserved -= finished.front()->reserved();
      finished.pop_front();
    }
  } else {
    reserved -= s->reserved();  // the cache's memory goes back to the system with s
  }
}

void Engine::Impl::evict_finished(int64_t needed) {
  while (!finished.empty() && reserved + needed > kv_budget) {
    reserved -= finished.front()->reserved();
    finished.pop_front();
  }
}

// ---- admission -----------------------------------------------------------------------------

Engine::Impl::Admission Engine::Impl::admit(Request& r) {
  // Videos become one image-like grid per temporal group (api/vision_inputs.h), each cached alone.
  if (!r.inputs.video_grid_thw.empty()) {
    try {
      ProcessedInputs folded = fold_videos(r.inputs, m.qwen->vision_ids(), m.qwen->merge_size(), /*copy_pixels=*/false);
      // Without images the rows are the videos' own in the same order: moved, not copied.
      if (folded.pixel_values.empty()) folded.pixel_values = std::move(r.inputs.pixel_values_videos);
      r.inputs = std::move(folded);
    } catch (const Error& e) {
      return report_error(r, e.what()), Admission::kRejected;
    }
  }
  const auto& ids = r.inputs.input_ids;
  const VisionTokenIds vision_ids = m.qwen->vision_ids();
  const int64_t n = static_cast<int64_t>(ids.size());
  const int64_t context = m.info.context_length;
  if (n == 0) return report_error(r, "the prompt is empty"), Admission::kRejected;
  if (n >= context)
    return report_error(r, cat("the prompt has ", n, " tokens; the context holds ", context)), Admission::kRejected;
  const int64_t max_new = std::max<int64_t>(1, r.params.max_new_tokens);
  const int64_t need = std::min(context, n + max_new);
  if (need > kv_budget)
    return report_error(r, cat("the request needs ", need, " KV positions but the engine's budget is ", kv_budget)),
           Admission::kRejected;
  evict_finished(need);
  if (reserved + need > kv_budget) return Admission::kWait;

  auto s = std::make_unique<Sequence>(r.params, *m.tokenizer);
  s->id = r.id;
  s->callback = std::move(r.callback);
  s->submitted = r.submitted;
  s->stats.queue_seconds = seconds_between(s->submitted, Clock::now());
  s->tokens = ids;
  s->prompt_length = n;
  s->stats.prompt_tokens = n;

  // Images: their rows, hashes and the content key of every prompt position.
  const auto& grids = r.inputs.image_grid_thw;
  const int64_t merge = m.qwen->merge_size();
  std::vector<uint64_t> hashes;
  std::vector<int64_t> first_pixel_row;
  int64_t pixel_row = 0;
  for (const auto& g : grids) {
    const int64_t rows = g[0] * g[1] * g[2];
    if (pixel_row + rows > r.inputs.pixel_rows)
      return report_error(r, "the inputs' pixel rows do not cover their images"), Admission::kRejected;
    hashes.push_back(hash_image(r.inputs.pixel_values.data() + pixel_row * r.inputs.pixel_cols, rows,
                                r.inputs.pixel_cols, g));
    first_pixel_row.push_back(pixel_row);
    pixel_row += rows;
  }
  s->content.resize(static_cast<size_t>(n));
  s->image_of.assign(static_cast<size_t>(n), -1);
  s->image_row.assign(static_cast<size_t>(n), 0);
  {
    size_t image = 0;
    for (int64_t i = 0; i < n;) {
      if (!is_vision_pad(ids[static_cast<size_t>(i)], vision_ids)) {
        s->content[static_cast<size_t>(i)] = static_cast<uint32_t>(ids[static_cast<size_t>(i)]);
        ++i;
        continue;
      }
      if (image >= grids.size())
        return report_error(r, "the prompt holds more image placeholders than images"), Admission::kRejected;
      const auto& g = grids[image];
      const int64_t tokens = g[0] * g[1] * g[2] / (merge * merge);
      if (i + tokens > n) return report_error(r, "an image's placeholders are cut short"), Admission::kRejected;
      for (int64_t k = 0; k < tokens; ++k) {
        s->content[static_cast<size_t>(i + k)] = image_token_key(hashes[image], k);
        s->image_of[static_cast<size_t>(i + k)] = static_cast<int32_t>(image);
        s->image_row[static_cast<size_t>(i + k)] = k;
      }
      i += tokens;
      ++image;
    }
    if (image != grids.size())
      return report_error(r, cat(grids.size(), " images given but the prompt places ", image)), Admission::kRejected;
  }
  if (!grids.empty() && !m.qwen->has_vision())
    return report_error(r, "this model has no vision encoder"), Admission::kRejected;
  try {
    MropePositions pos = m.qwen->positions(ids, grids, 0);
    s->prompt_positions = std::move(pos.positions);
    s->next_position = pos.next_position;
  } catch (const Error& e) {
    return report_error(r, e.what()), Admission::kRejected;
  }

  // Prefix reuse: the longest evaluated prefix another sequence shares with this prompt. The
  // last prompt token is always evaluated (its logits choose the first token), and a reused
  // prefix never ends inside an image.
  const Sequence* donor = nullptr;
  int64_t reuse = 0;
  auto consider = [&](const Sequence& d) {
    const int64_t limit = std::min(d.evaluated(), n - 1);
    int64_t k = 0;
    while (k < limit && d.content[static_cast<size_t>(k)] == s->content[static_cast<size_t>(k)]) ++k;
    if (k > reuse) reuse = k, donor = &d;
  };
  for (const auto& d : running) consider(*d);
  for (const auto& d : finished) consider(*d);
  while (reuse > 0 && s->image_of[static_cast<size_t>(reuse)] >= 0 && s->image_row[static_cast<size_t>(reuse)] > 0)
    --reuse;

  // Encode the images the prefix does not cover (those in the vision cache are taken from it).
  s->images.resize(grids.size());
  std::vector<size_t> to_encode;
  for (size_t img = 0; img < grids.size(); ++img) {
    bool needed = false;
    for (int64_t i = reuse; i < n && !needed; ++i) needed = s->image_of[static_cast<size_t>(i)] == int32_t(img);
    if (!needed) {
      ++s->stats.cached_images;  // inside the reused prefix: its rows are already in the cache
      continue;
    }
    if (auto cached = vision_cache.find(hashes[img])) {
      s->images[img] = cached;
      ++s->stats.cached_images;
    } else {
      to_encode.push_back(img);
    }
  }
  s->stats.images = static_cast<int64_t>(grids.size());
  if (!to_encode.empty()) {
    // The pixel rows of the images to encode (the inputs' own when that is all of them).
    std::vector<float> subset;
    std::vector<GridTHW> enc_grids;
    int64_t rows = 0;
    for (size_t img : to_encode) {
      const auto& g = grids[img];
      const int64_t pr = g[0] * g[1] * g[2];
      if (to_encode.size() < grids.size()) {
        const float* src = r.inputs.pixel_values.data() + first_pixel_row[img] * r.inputs.pixel_cols;
        subset.insert(subset.end(), src, src + pr * r.inputs.pixel_cols);
      }
      enc_grids.push_back({g[0], g[1], g[2]});
      s->encoding_images.push_back({img, pr / (merge * merge), hashes[img]});
      rows += pr;
    }
    const float* pixels = to_encode.size() < grids.size() ? subset.data() : r.inputs.pixel_values.data();
    try {  // validates the grids and embeds the patches; the blocks run in later steps
      s->encoding = std::make_unique<VisionEncodeJob>(m.qwen->vision(), pixels, rows, enc_grids, m.pool.get());
    } catch (const Error& e) {
      return report_error(r, e.what()), Admission::kRejected;
    }
  }

  const TextConfig& t = m.config.text;
  s->cache = std::make_unique<KvCache>(t.num_hidden_layers, need, t.num_key_value_heads, t.head_dim, m.kv_type);
  // Room for every token the sequence can reach, so that decode steps never grow these.
  s->tokens.reserve(static_cast<size_t>(need + 1));
  s->content.reserve(static_cast<size_t>(need + 1));
  s->generated.reserve(static_cast<size_t>(need - n + 1));
  reserved += need;
  if (donor != nullptr && reuse > 0) s->cache->copy_prefix_from(*donor->cache, reuse);
  s->stats.cached_tokens = reuse;
  s->logits.resize(static_cast<size_t>(t.vocab_size));
  s->top_logprobs = r.options.top_logprobs;
  if (s->top_logprobs >= 0) {
    s->raw_logits.resize(static_cast<size_t>(t.vocab_size));
    s->top.reserve(static_cast<size_t>(s->top_logprobs) + 1);
  }
  running.push_back(std::move(s));
  return Admission::kAdmitted;
}

// ---- one step ------------------------------------------------------------------------------

bool Engine::Impl::step() {
  const auto t0 = Clock::now();
  std::set<RequestId> cancels;
  {
    std::lock_guard<std::mutex> lock(mutex);
    while (!incoming.empty()) {
      queue.push_back(std::move(incoming.front()));
      incoming.pop_front();
    }
    cancels.swap(cancel_requests);
  }
  bool did_work = false;
  if (!cancels.empty()) {
    for (auto it = queue.begin(); it != queue.end();) {
      if (cancels.count(it->id)) {
        report_unadmitted(*it, "cancelled");
        it = queue.erase(it);
        did_work = true;
      } else {
        ++it;
      }
    }
    for (auto it = running.begin(); it != running.end();) {
      if (cancels.count((*it)->id)) {
        it = retire(it, "cancelled", false);
        did_work = true;
      } else {
        ++it;
      }
    }
  }

  while (static_cast<int>(running.size()) < options.max_sequences && !queue.empty()) {
    Admission a;
    try {
      a = admit(queue.front());
    } catch (const std::exception& ex) {  // e.g. out of memory for the cache: this request only
      report_error(queue.front(), ex.what());
      a = Admission::kRejected;
    }
    if (a == Admission::kWait) break;
    queue.pop_front();
    did_work = true;
  }
  if (running.empty()) {
    publish_stats();
    return did_work;
  }

  // One vision-tower block of the first sequence whose images are being encoded: a running
  // stream waits at most one block per step for a new image, never for the whole tower.
  for (auto it = running.begin(); it != running.end(); ++it) {
    if (!(*it)->encoding) continue;
    try {
      advance_encoding(**it);
    } catch (const std::exception& ex) {
      retire(it, "error", false, ex.what());
    }
    break;
  }
  if (running.empty()) {
    publish_stats();
    return true;
  }

  // Rows: one per decoding sequence first, then prefill chunks in admission order.
  const Qwen3VL& model = *m.qwen;
  inputs.clear(model);
  batch.clear();
  batch_owner.clear();
  for (auto& s : running) {
    if (!s->pending) continue;
    const int64_t p = s->next_position - 1;
    batch.push_back({s->cache.get(), inputs.rows(), 1, nullptr, s->logits.data()});
    batch_owner.push_back(s.get());
    inputs.add_token(model, s->tokens.back(), Position3{p, p, p});
  }
  int64_t budget = std::max<int64_t>(1, options.max_step_tokens - inputs.rows());
  for (auto& s : running) {
    if (s->pending || !s->prefilling() || budget == 0) continue;
    const int64_t from = s->evaluated(), len = std::min(budget, s->prompt_length - from);
    const int64_t first = inputs.rows();
    for (int64_t i = from; i < from + len; ++i) {
      const int32_t img = s->image_of[static_cast<size_t>(i)];
      const Position3& pos = s->prompt_positions[static_cast<size_t>(i)];
      if (img >= 0) inputs.add_vision_row(*s->images[static_cast<size_t>(img)], s->image_row[static_cast<size_t>(i)], pos);
      else inputs.add_token(model, s->tokens[static_cast<size_t>(i)], pos);
    }
    const bool completes = from + len == s->prompt_length;
    batch.push_back({s->cache.get(), first, len, nullptr, completes ? s->logits.data() : nullptr});
    batch_owner.push_back(s.get());
    budget -= len;
  }
  if (inputs.rows() == 0) {  // only images in the tower this step
    ++steps;
    publish_stats();
    return true;
  }
  try {
    model.decoder().forward_batch(inputs.embeds(), inputs.rows(), inputs.positions(), batch, inputs.deepstack(),
                                  workspace, m.pool.get());
  } catch (const std::exception& ex) {
    // Nothing of this step is trustworthy: every sequence in it ends with the error.
    const std::string error = ex.what();
    for (auto it = running.begin(); it != running.end();)
      it = std::find(batch_owner.begin(), batch_owner.end(), it->get()) == batch_owner.end()
               ? it + 1
               : retire(it, "error", false, error);
    publish_stats();
    return true;
  }

  // Sample for every sequence whose last row produced logits; decide there whether it ends.
  const auto& eos = m.info.eos_token_ids;
  for (size_t b = 0; b < batch.size(); ++b) {
    Sequence& s = *batch_owner[b];
    s.pending = false;
    if (batch[b].last_logits == nullptr) continue;
    if (s.top_logprobs >= 0) std::copy(s.logits.begin(), s.logits.end(), s.raw_logits.begin());
    const int32_t token = s.sampler.sample(s.logits, s.tokens, s.generated);
    s.tokens.push_back(token);
    s.content.push_back(static_cast<uint32_t>(token));
    s.generated.push_back(token);
    ++s.next_position;
    s.pending = true;  // evaluated in the next step, unless the sequence ends here
    if (s.params.stop_at_eos && std::find(eos.begin(), eos.end(), token) != eos.end()) {
      if (!s.first_token_reported) s.stats.ttft_seconds = seconds_between(s.submitted, Clock::now());
      s.first_token_reported = true;
      s.finish_reason = "eos";  // the token is not emitted
      continue;
    }
    emit_token(s, token);
    if (s.stops.stopped()) s.finish_reason = "stop";
    else if (static_cast<int64_t>(s.generated.size()) >= s.params.max_new_tokens) s.finish_reason = "length";
    else if (s.cache->size() >= s.cache->capacity()) s.finish_reason = "length", s.context_full = true;
  }

  // Retire what finished (the last sampled token is never evaluated).
  for (auto it = running.begin(); it != running.end();)
    it = (*it)->finish_reason.empty() ? it + 1 : retire(it, (*it)->finish_reason, true);
  ++steps;
  last_step_seconds = seconds_between(t0, Clock::now());
  publish_stats();
  return true;
}

void Engine::Impl::publish_stats() {
  std::lock_guard<std::mutex> lock(mutex);
  public_stats.steps = steps;
  public_stats.running = static_cast<int64_t>(running.size());
  public_stats.queued = static_cast<int64_t>(queue.size() + incoming.size());
  public_stats.kv_budget_tokens = kv_budget;
  public_stats.kv_reserved_tokens = reserved;
  public_stats.kv_bytes_per_token = m.info.kv_bytes_per_token;
  public_stats.vision_cache_bytes = vision_cache.bytes();
  public_stats.last_step_seconds = last_step_seconds;
  if (unfinished == 0) idle.notify_all();
}

// ---- public --------------------------------------------------------------------------------

Engine::Engine(std::shared_ptr<const Model> model, const EngineOptions& options) {
  if (!model) fail(ErrorKind::kInvalidArgument, "Engine needs a loaded model");
  if (options.max_sequences < 1) fail(ErrorKind::kInvalidArgument, "max_sequences must be at least 1");
  if (options.max_step_tokens < 1) fail(ErrorKind::kInvalidArgument, "max_step_tokens must be at least 1");
  if (options.kv_budget_tokens < 0) fail(ErrorKind::kInvalidArgument, "kv_budget_tokens must not be negative");
  impl_ = std::make_unique<Impl>(std::move(model), options);
  Impl& e = *impl_;
  e.kv_budget = options.kv_budget_tokens > 0 ? options.kv_budget_tokens
                                             : int64_t{options.max_sequences} * e.m.info.context_length;
  if (options.background_thread)
    e.worker = std::thread([&e] {
      for (;;) {
        {
          std::unique_lock<std::mutex> lock(e.mutex);
          e.wake.wait(lock, [&] { return e.stopping || e.unfinished > 0; });
          if (e.stopping) return;
        }
        if (!e.step()) {
          // Waiting for KV memory that no finished request will free cannot happen (a
          // request needing more than the budget is rejected), so an idle step means new work
          // is about to arrive: yield briefly instead of spinning.
          std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
      }
    });
}

Engine::~Engine() {
  Impl& e = *impl_;
  {
    std::lock_guard<std::mutex> lock(e.mutex);
    e.stopping = true;
    for (const auto& r : e.incoming) e.cancel_requests.insert(r.id);
  }
  e.wake.notify_all();
  if (e.worker.joinable()) e.worker.join();
  // Whatever is left is reported cancelled, so every callback sees its finished event.
  for (const auto& s : e.running) e.cancel_requests.insert(s->id);
  for (const auto& r : e.queue) e.cancel_requests.insert(r.id);
  for (const auto& r : e.incoming) e.cancel_requests.insert(r.id);
  e.options.max_sequences = 0;  // admit nothing more
  e.step();
}

RequestId Engine::submit(ProcessedInputs inputs, const GeneratorParams& params, RequestCallback callback,
                         const RequestOptions& options) {
  Impl& e = *impl_;
  Request r;
  r.inputs = std::move(inputs);
  r.params = params;
  r.options = options;
  r.callback = std::move(callback);
  r.submitted = Clock::now();
  RequestId id;
  {
    std::lock_guard<std::mutex> lock(e.mutex);
    id = r.id = e.next_id++;
    ++e.unfinished;
    e.incoming.push_back(std::move(r));
  }
  e.wake.notify_one();
  return id;
}

void Engine::cancel(RequestId id) {
  Impl& e = *impl_;
  {
    std::lock_guard<std::mutex> lock(e.mutex);
    e.cancel_requests.insert(id);
  }
  e.wake.notify_one();
}

bool Engine::step() {
  if (impl_->options.background_thread)
    fail(ErrorKind::kInvalidArgument, "step() is for engines without a background thread");
  return impl_->step();
}

void Engine::wait_idle() {
  Impl& e = *impl_;
  if (!e.options.background_thread) {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(e.mutex);
        if (e.unfinished == 0) return;
      }
      e.step();
    }
  }
  std::unique_lock<std::mutex> lock(e.mutex);
  e.idle.wait(lock, [&] { return e.unfinished == 0; });
}

const std::shared_ptr<const Model>& Engine::model() const { return impl_->model; }

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->public_stats;
}

}  // namespace qvl
