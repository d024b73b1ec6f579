#include "server/slots.h"

#include <algorithm>

namespace qvl::server {

bool RequestStream::next(RequestEvent& event, std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!ready_.wait_for(lock, wait, [&] { return !events_.empty(); })) return false;
  event = std::move(events_.front());
  events_.pop_front();
  return true;
}

void RequestStream::push(const RequestEvent& event) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    events_.push_back(event);
  }
  ready_.notify_one();
}

namespace {

EngineOptions engine_options(int slots) {
  EngineOptions o;
  o.max_sequences = slots;
  return o;
}

}  // namespace

Slots::Slots(std::shared_ptr<const Model> model, int slots, int queue, Metrics& metrics)
    : slots_(slots), capacity_(slots + queue), metrics_(metrics), engine_(std::move(model), engine_options(slots)) {}

Slots::~Slots() { cancel_all(); }

std::shared_ptr<RequestStream> Slots::submit(ProcessedInputs inputs, const GeneratorParams& params,
                                             const RequestOptions& options) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (in_flight_ >= capacity_) return nullptr;
    ++in_flight_;
  }
  auto stream = std::make_shared<RequestStream>();
  // The callback runs on the engine's thread; inter-token gaps are measured there.
  auto last_token = std::make_shared<std::chrono::steady_clock::time_point>();
  std::weak_ptr<RequestStream> weak = stream;
  auto callback = [this, weak, last_token](const RequestEvent& e) {
    const auto now = std::chrono::steady_clock::now();
    if (e.token >= 0) {
      if (last_token->time_since_epoch().count() != 0)
        metrics_.observe_inter_token(std::chrono::duration<double>(now - *last_token).count());
      *last_token = now;
    }
    if (e.finished) {
      const RequestStats& s = e.stats;
      metrics_.record_generation(s.prompt_tokens, s.cached_tokens, s.generated_tokens, s.images, s.cached_images,
                                 s.queue_seconds, s.ttft_seconds, s.vision_seconds);
      std::lock_guard<std::mutex> lock(mutex_);
      --in_flight_;
    }
    if (auto live = weak.lock()) live->push(e);
  };
  // Events may arrive before submit returns the id; they queue in the stream meanwhile.
  {
    std::lock_guard<std::mutex> lock(mutex_);
    live_.erase(std::remove_if(live_.begin(), live_.end(), [](const auto& w) { return w.expired(); }), live_.end());
    live_.push_back(stream);
  }
  const RequestId id = engine_.submit(std::move(inputs), params, callback, options);
  stream->id_ = id;
  return stream;
}

void Slots::cancel(const RequestStream& stream) { engine_.cancel(stream.id()); }

void Slots::cancel_all() {
  std::vector<std::shared_ptr<RequestStream>> streams;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& w : live_)
      if (auto s = w.lock()) streams.push_back(s);
  }
  for (const auto& s : streams) engine_.cancel(s->id());
}

void Slots::wait_idle() { engine_.wait_idle(); }

int64_t Slots::in_flight() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return in_flight_;
}

}  // namespace qvl::server
