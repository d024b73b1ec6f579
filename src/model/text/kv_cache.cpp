#include "model/text/kv_cache.h"

#include <cstring>

#include "core/check.h"

namespace qvl {

kernels::KvType KvCache::effective_type(kernels::KvType requested, int64_t head_dim) {
  return kernels::kv_type_fits(requested, head_dim) ? requested : kernels::KvType::kF16;
}

KvCache::KvCache(int64_t n_layers, int64_t capacity, int64_t n_kv_heads, int64_t head_dim, kernels::KvType type)
    : type_(effective_type(type, head_dim)),
      capacity_(capacity),
      row_(n_kv_heads * head_dim),
      row_bytes_(kernels::kv_bytes(type_, row_)),
      head_bytes_(kernels::kv_bytes(type_, head_dim)) {
  QVL_ASSERT(n_layers >= 0 && capacity >= 0 && n_kv_heads > 0 && head_dim > 0);
  const size_t n = static_cast<size_t>(capacity) * row_bytes_;
  for (int64_t l = 0; l < n_layers; ++l) {
    k_.emplace_back(new uint8_t[n]);
    v_.emplace_back(new uint8_t[n]);
  }
}

void KvCache::set_size(int64_t n) {
  QVL_ASSERT(n >= 0 && n <= capacity_);
  size_ = n;
}

void KvCache::copy_prefix_from(const KvCache& other, int64_t n) {
  QVL_ASSERT(other.type_ == type_ && other.row_bytes_ == row_bytes_ && other.k_.size() == k_.size());
  QVL_ASSERT(n >= 0 && n <= other.size_ && n <= capacity_);
  const size_t bytes = static_cast<size_t>(n) * row_bytes_;
  for (size_t l = 0; l < k_.size(); ++l) {
    std::memcpy(k_[l].get(), other.k_[l].get(), bytes);
    std::memcpy(v_[l].get(), other.v_[l].get(), bytes);
  }
  size_ = n;
}

size_t KvCache::bytes() const { return 2 * k_.size() * static_cast<size_t>(capacity_) * row_bytes_; }

}  // namespace qvl
