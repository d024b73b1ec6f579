// The server's side of qvl::Engine: -np slots decode together (the engine), and a bounded number
// of requests may wait for one (--queue); a request beyond that is refused (503 + Retry-After).
// Each accepted request gets a RequestStream that the engine's thread fills with events and the
// HTTP thread drains.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>

#include "qvl/engine.hpp"
#include "server/metrics.h"

namespace qvl::server {

// Events of one request, handed from the engine's thread to the HTTP thread.
class RequestStream {
 public:
  // The next event, or false when none came within `wait`.
  bool next(RequestEvent& event, std::chrono::milliseconds wait);
  void push(const RequestEvent& event);
  RequestId id() const { return id_.load(); }

 private:
  friend class Slots;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<RequestEvent> events_;
  std::atomic<RequestId> id_{0};
};

class Slots {
 public:
  Slots(std::shared_ptr<const Model> model, int slots, int queue, Metrics& metrics);
  ~Slots();

  // Queues the request, or returns null when slots and queue are all taken.
  std::shared_ptr<RequestStream> submit(ProcessedInputs inputs, const GeneratorParams& params,
                                        const RequestOptions& options);
  void cancel(const RequestStream& stream);
  void cancel_all();
  void wait_idle();

  int slots() const { return slots_; }
  int64_t in_flight() const;
  EngineStats engine_stats() const { return engine_.stats(); }

 private:
  int slots_, capacity_;
  Metrics& metrics_;
  mutable std::mutex mutex_;
  int64_t in_flight_ = 0;
  std::vector<std::weak_ptr<RequestStream>> live_;  // for cancel_all
  Engine engine_;
};

}  // namespace qvl::server
