// Byte-level BPE model (tokenizer.json "model" of type BPE): vocab, merges by rank, and a
// bounded per-word cache.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace qvl {

// Hash for maps keyed by std::string that can be probed with a std::string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename Value>
using StringMap = std::unordered_map<std::string, Value, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // Reads "vocab" (token -> id) and "merges" ("a b" strings or [a, b] pairs, rank = position).
  // Malformed data is kInvalidFile, options qvl does not implement are kUnsupported.
  static BpeModel from_json(const nlohmann::json& model, const std::string& what);

  BpeModel(BpeModel&&) noexcept;
  BpeModel& operator=(BpeModel&&) noexcept;
  ~BpeModel();

  // Token text (byte-level form) -> id, or -1.
  int32_t token_to_id(std::string_view token) const;
  const StringMap<int32_t>& vocab() const { return vocab_; }

  // Appends the ids of one pre-tokenized word, given as its raw bytes. Thread-safe.
  void encode_word(std::string_view word, std::vector<int32_t>& ids) const;

 private:
  BpeModel();
  struct Merge {
    uint32_t rank;   // lower merges first
    int32_t new_id;  // id of the concatenated token
  };
  struct WordCache;
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
  }
  void merge_word(std::string_view word, std::vector<int32_t>& ids) const;

  StringMap<int32_t> vocab_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::array<int32_t, 256> byte_token_ids_{};  // id of each byte's single-character token, or -1
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;  // a word that is itself in the vocab skips the merges
  std::unique_ptr<WordCache> cache_;
};

}  // namespace qvl
