// Key/value cache of the text decoder: per layer, K and V rows [position, kv_head, head_dim]
// stored as kernels::KvType elements (f16 by default; see kernels.h for the byte layouts).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/kernels.h"

namespace qvl {

class KvCache {
 public:
  // q8_0 needs head_dim % 32 == 0 (its blocks must not straddle heads); for other head sizes
  // the cache silently holds f16 instead (type() says which).
  KvCache(int64_t n_layers, int64_t capacity, int64_t n_kv_heads, int64_t head_dim,
          kernels::KvType type = kernels::KvType::kF16);

  // The type a cache asked for `requested` with this head_dim actually holds.
  static kernels::KvType effective_type(kernels::KvType requested, int64_t head_dim);

  kernels::KvType type() const { return type_; }
  int64_t capacity() const { return capacity_; }
  int64_t size() const { return size_; }     // positions filled (same for every layer)
  int64_t row_width() const { return row_; } // elements per position: n_kv_heads * head_dim
  size_t row_bytes() const { return row_bytes_; }
  size_t head_offset(int64_t head) const { return head_bytes_ * static_cast<size_t>(head); }  // bytes
  void set_size(int64_t n);                  // after a forward pass, or to truncate (rewind)
  // Copies positions [0, n) of every layer from `other` (same shape and type) and sets size to n:
  // a prompt that starts like another sequence's reuses its rows instead of recomputing them.
  void copy_prefix_from(const KvCache& other, int64_t n);

  // Row `pos` of a layer, in the cache's element type.
  uint8_t* keys(int64_t layer, int64_t pos) { return k_[static_cast<size_t>(layer)].get() + pos * row_bytes_; }
  uint8_t* values(int64_t layer, int64_t pos) { return v_[static_cast<size_t>(layer)].get() + pos * row_bytes_; }
  int64_t layers() const { return static_cast<int64_t>(k_.size()); }
  size_t bytes() const;

 private:
  kernels::KvType type_;
  int64_t capacity_, row_, size_ = 0;
  size_t row_bytes_, head_bytes_;
  // Left uninitialised on purpose: large blocks come straight from mmap, so pages of positions
  // never reached are never touched and cost no resident memory.
  std::vector<std::unique_ptr<uint8_t[]>> k_, v_;
};

}  // namespace qvl
