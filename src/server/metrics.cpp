#include "server/metrics.h"

#include <cstdio>

namespace qvl::server {

namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void header(std::string& out, const std::string& name, const char* type, const std::string& help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void single(std::string& out, const std::string& name, const char* type, const std::string& help, double value) {
  header(out, name, type, help);
  out += name + " " + number(value) + "\n";
}

std::vector<double> latency_bounds() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::render(const std::string& name, const std::string& help, std::string& out) const {
  header(out, name, "histogram", help);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket{le=\"" + number(bounds_[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  out += name + "_sum " + number(sum_) + "\n" + name + "_count " + std::to_string(count_) + "\n";
}

Metrics::Metrics()
    : queue_seconds_(latency_bounds()),
      ttft_seconds_(latency_bounds()),
      inter_token_seconds_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}),
      image_encode_seconds_(latency_bounds()) {}

void Metrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{endpoint, status}];
}

void Metrics::record_generation(int64_t prompt_tokens, int64_t cached_tokens, int64_t generated_tokens, int64_t images,
                                int64_t cached_images, double queue_seconds, double ttft_seconds,
                                double vision_seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  prompt_tokens_ += static_cast<uint64_t>(prompt_tokens);
  cached_tokens_ += static_cast<uint64_t>(cached_tokens);
  generated_tokens_ += static_cast<uint64_t>(generated_tokens);
  images_ += static_cast<uint64_t>(images);
  cached_images_ += static_cast<uint64_t>(cached_images);
  queue_seconds_.observe(queue_seconds);
  if (generated_tokens > 0) ttft_seconds_.observe(ttft_seconds);
  if (images > cached_images) image_encode_seconds_.observe(vision_seconds);
}

void Metrics::observe_inter_token(double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  inter_token_seconds_.observe(seconds);
}

void Metrics::count_rejected(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++rejected_[reason];
}

std::string Metrics::render(const GaugeValues& g) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  header(out, "qvl_requests_total", "counter", "HTTP requests answered, by endpoint and status.");
  for (const auto& [key, count] : requests_)
    out += "qvl_requests_total{endpoint=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
           std::to_string(count) + "\n";
  header(out, "qvl_requests_rejected_total", "counter", "Generation requests refused before running, by reason.");
  for (const auto& [reason, count] : rejected_)
    out += "qvl_requests_rejected_total{reason=\"" + reason + "\"} " + std::to_string(count) + "\n";
  single(out, "qvl_prompt_tokens_total", "counter", "Prompt tokens of finished generations.", double(prompt_tokens_));
  single(out, "qvl_cached_prompt_tokens_total", "counter", "Prompt tokens reused from the KV cache, not evaluated.",
         double(cached_tokens_));
  single(out, "qvl_generated_tokens_total", "counter", "Tokens generated.", double(generated_tokens_));
  single(out, "qvl_images_total", "counter", "Images in prompts.", double(images_));
  single(out, "qvl_vision_cache_hits_total", "counter", "Images not encoded again (vision cache or reused prefix).",
         double(cached_images_));
  single(out, "qvl_queue_depth", "gauge", "Accepted requests waiting for a slot.", double(g.queue_depth));
  single(out, "qvl_slots_busy", "gauge", "Slots running a request.", double(g.busy_slots));
  single(out, "qvl_slots_total", "gauge", "Slots (-np).", double(g.slots));
  single(out, "qvl_kv_cache_bytes_in_use", "gauge", "KV cache bytes reserved by running and kept sequences.",
         double(g.kv_bytes_in_use));
  single(out, "qvl_kv_cache_bytes_budget", "gauge", "KV cache byte budget.", double(g.kv_bytes_budget));
  single(out, "qvl_vision_cache_bytes", "gauge", "Bytes of encoded images kept for reuse.", double(g.vision_cache_bytes));
  single(out, "qvl_ready", "gauge", "1 once the model is loaded.", g.ready ? 1 : 0);
  queue_seconds_.render("qvl_queue_seconds", "Time from arrival to a slot.", out);
  ttft_seconds_.render("qvl_time_to_first_token_seconds", "Time from arrival to the first token.", out);
  inter_token_seconds_.render("qvl_inter_token_seconds", "Time between tokens of a stream.", out);
  image_encode_seconds_.render("qvl_image_encode_seconds", "Vision tower time per request with new images.", out);
  return out;
}

}  // namespace qvl::server
