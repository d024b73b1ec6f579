// Encoded images kept for reuse under a byte budget (least recently used out first). An image
// is identified by a hash of its pixel values and grid, i.e. of the pixels after every
// processing setting (resize bounds, normalization) has been applied.
#pragma once

#include <array>
#include <cstdint>
#include <list>
#include <memory>
#include <unordered_map>
#include <vector>

#include "model/vision/vision_encoder.h"

namespace qvl {

// One image's rows of the vision tower's output (a VisionOutput of that image alone).
int64_t image_bytes(const VisionOutput& image);

uint64_t hash_image(const float* pixels, int64_t rows, int64_t cols, const std::array<int64_t, 3>& grid);

class VisionCache {
 public:
  explicit VisionCache(int64_t budget_bytes) : budget_(budget_bytes) {}
  std::shared_ptr<const VisionOutput> find(uint64_t key);  // null when absent
  void insert(uint64_t key, std::shared_ptr<const VisionOutput> image);
  int64_t bytes() const { return bytes_; }

 private:
  using Entry = std::pair<uint64_t, std::shared_ptr<const VisionOutput>>;
  int64_t budget_, bytes_ = 0;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<uint64_t, std::list<Entry>::iterator> index_;
};

}  // namespace qvl
