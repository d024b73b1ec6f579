// Key/value cache of the text decoder: per layer, K and V rows [position, kv_head, head_dim].
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace qvl {

class KvCache {
 public:
  KvCache(int64_t n_layers, int64_t capacity, int64_t n_kv_heads, int64_t head_dim);

  int64_t capacity() const { return capacity_; }
  int64_t size() const { return size_; }     // positions filled (same for every layer)
  int64_t row_width() const { return row_; } // n_kv_heads * head_dim
  void set_size(int64_t n);                  // after a forward pass, or to truncate (rewind)

  float* keys(int64_t layer, int64_t pos) { return k_[static_cast<size_t>(layer)].get() + pos * row_; }
  float* values(int64_t layer, int64_t pos) { return v_[static_cast<size_t>(layer)].get() + pos * row_; }
  size_t bytes() const;

 private:
  int64_t capacity_, row_, size_ = 0;
  // Left uninitialised on purpose: large blocks come straight from mmap, so pages of positions
  // never reached are never touched and cost no resident memory.
  std::vector<std::unique_ptr<float[]>> k_, v_;
};

}  // namespace qvl
