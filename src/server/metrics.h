// Server metrics in the Prometheus text format (GET /metrics): requests by endpoint and status,
// token counters, histograms of queue time, time to first token, inter-token latency and image
// encode time; gauges (queue depth, busy slots, KV memory) are read when rendered.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace qvl::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  // Appends the _bucket, _sum and _count lines of `name` (caller holds the metrics lock).
  void render(const std::string& name, const std::string& help, std::string& out) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bound, not cumulative; +Inf last
  double sum_ = 0;
  uint64_t count_ = 0;
};

struct GaugeValues {
  int64_t queue_depth = 0;       // requests accepted and waiting for a slot
  int64_t busy_slots = 0;
  int64_t slots = 0;
  int64_t kv_bytes_in_use = 0;
  int64_t kv_bytes_budget = 0;
  int64_t vision_cache_bytes = 0;
  bool ready = false;
};

class Metrics {
 public:
  Metrics();
  void count_request(const std::string& endpoint, int status);
  // One finished generation.
  void record_generation(int64_t prompt_tokens, int64_t cached_tokens, int64_t generated_tokens, int64_t images,
                         int64_t cached_images, double queue_seconds, double ttft_seconds, double vision_seconds);
  void observe_inter_token(double seconds);
  void count_rejected(const std::string& reason);  // queue full, ...
  std::string render(const GaugeValues& gauges) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, uint64_t> rejected_;
  uint64_t prompt_tokens_ = 0, cached_tokens_ = 0, generated_tokens_ = 0, images_ = 0, cached_images_ = 0;
  Histogram queue_seconds_, ttft_seconds_, inter_token_seconds_, image_encode_seconds_;
};

}  // namespace qvl::server
