#include "model/text/kv_cache.h"

#include "core/check.h"

namespace qvl {

KvCache::KvCache(int64_t n_layers, int64_t capacity, int64_t n_kv_heads, int64_t head_dim)
    : capacity_(capacity), row_(n_kv_heads * head_dim) {
  for (int64_t l = 0; l < n_layers; ++l) {
    k_.emplace_back(new float[static_cast<size_t>(capacity * row_)]);
    v_.emplace_back(new float[static_cast<size_t>(capacity * row_)]);
  }
}

void KvCache::set_size(int64_t n) {
  QVL_ASSERT(n >= 0 && n <= capacity_);
  size_ = n;
}

size_t KvCache::bytes() const { return 2 * k_.size() * static_cast<size_t>(capacity_ * row_) * sizeof(float); }

}  // namespace qvl
