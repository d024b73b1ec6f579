#include "engine/vision_cache.h"

#include <cstring>

namespace qvl {

uint64_t hash_image(const float* pixels, int64_t rows, int64_t cols, const std::array<int64_t, 3>& grid) {
  // 64-bit multiply-xorshift over 8-byte words: fast enough for megapixel images, and a
  // collision would need two different images to agree on all 64 bits.
  auto mix = [](uint64_t h, uint64_t w) {
    h ^= w + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 31);
  };
  uint64_t h = 0x243F6A8885A308D3ull;
  for (int64_t g : grid) h = mix(h, static_cast<uint64_t>(g));
  h = mix(h, static_cast<uint64_t>(cols));
  const size_t n = static_cast<size_t>(rows * cols) * sizeof(float);
  const auto* bytes = reinterpret_cast<const unsigned char*>(pixels);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, bytes + i, 8);
    h = mix(h, w);
  }
  for (; i < n; ++i) h = mix(h, bytes[i]);
  return h;
}

int64_t image_bytes(const VisionOutput& image) {
  return static_cast<int64_t>((1 + image.deepstack.size()) * image.embeds.size() * sizeof(float));
}

std::shared_ptr<const VisionOutput> VisionCache::find(uint64_t key) {
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

void VisionCache::insert(uint64_t key, std::shared_ptr<const VisionOutput> image) {
  if (index_.count(key) || image_bytes(*image) > budget_) return;
  bytes_ += image_bytes(*image);
  lru_.emplace_front(key, std::move(image));
  index_[key] = lru_.begin();
  while (bytes_ > budget_) {
    bytes_ -= image_bytes(*lru_.back().second);
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

}  // namespace qvl
