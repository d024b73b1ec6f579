// Byte-level BPE model (tokenizer.json "model" of type BPE): vocab, merges by rank, and a
// bounded per-word cache.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
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

// The "vocab" and "merges" of a BPE model as written in tokenizer.json, before any check but
// the ids' range. Views point into the document text, a parsed JSON value or `decoded_strings`,
// which the reader keeps alive until the model is built.
struct BpeSource {
  // Ids at or above this are refused: the tokenizer's tables are sized by the largest id.
  static constexpr int64_t kIdLimit = int64_t(1) << 24;
  struct VocabEntry {
    std::string_view token;
    int32_t id;  // 0 <= id < kIdLimit
  };
  struct MergeEntry {
    enum class Kind { kLine, kPair, kMalformed };
    Kind kind;
    std::string_view first;   // kLine: "a b"; kPair: a; kMalformed: the item as JSON (for the message)
    std::string_view second;  // kPair: b
  };
  std::vector<VocabEntry> vocab;  // in document order; a repeated token keeps its last id
  std::vector<MergeEntry> merges;
  std::deque<std::string> decoded_strings;  // strings that had to be unescaped or formatted
};

class BpeModel {
 public:
  // Reads "vocab" (token -> id) and "merges" ("a b" strings or [a, b] pairs, rank = position)
  // from `model`, or from `source` when given (then `model` holds only the other keys).
  // Malformed data is kInvalidFile, options qvl does not implement are kUnsupported.
  static BpeModel from_json(const nlohmann::json& model, const std::string& what, const BpeSource* source = nullptr);

  BpeModel(BpeModel&&) noexcept;
  BpeModel& operator=(BpeModel&&) noexcept;
  ~BpeModel();

  // Token text (byte-level form) -> id, or -1.
  int32_t token_to_id(std::string_view token) const { return vocab_.find(token); }
  size_t vocab_count() const { return vocab_.size(); }
  int32_t max_token_id() const { return vocab_.max_id(); }  // -1 for an empty vocab
  size_t vocab_text_bytes() const { return vocab_.text_bytes(); }  // of all token texts together
  // Calls visit(token_text, id) for every vocab entry, in the order the file lists them.
  template <typename Visit>
  void for_each_token(Visit&& visit) const {
    vocab_.for_each(visit);
  }

  // Appends the ids of one pre-tokenized word, given as its raw bytes. Thread-safe.
  void encode_word(std::string_view word, std::vector<int32_t>& ids) const;

 private:
  BpeModel();

  // Token text -> id: open addressing with the texts in one buffer, so building the 151k-token
  // Qwen vocabulary makes a handful of allocations instead of one per token.
  class VocabTable {
   public:
    static uint32_t hash(std::string_view text);
    void reserve(size_t count, size_t text_bytes);
    // Pulls the slot a lookup of `hash` starts at into the cache. Building the tables is bound
    // by cache misses, so the build asks for slots a few lookups ahead.
    void prefetch(uint32_t hash) const { __builtin_prefetch(&slots_[hash & (slots_.size() - 1)]); }
    void insert(std::string_view text, uint32_t hash, int32_t id);  // a repeated text takes the new id
    int32_t find(std::string_view text, uint32_t hash) const;       // -1 if absent
    int32_t find(std::string_view text) const { return slots_.empty() ? -1 : find(text, hash(text)); }
    size_t size() const { return slot_order_.size(); }
    size_t text_bytes() const { return texts_.size(); }
    int32_t max_id() const;  // -1 when empty
    // In insertion order: for a tokenizer.json that is id order, so the caller's tables by id
    // fill sequentially.
    template <typename Visit>
    void for_each(Visit&& visit) const {
      constexpr size_t kPrefetchAhead = 8;
      for (size_t k = 0; k < slot_order_.size(); ++k) {
        if (k + kPrefetchAhead < slot_order_.size()) __builtin_prefetch(&slots_[slot_order_[k + kPrefetchAhead]]);
        const Slot& slot = slots_[slot_order_[k]];
        visit(std::string_view(texts_.data() + slot.offset, slot.length), slot.id);
      }
    }

   private:
    struct Slot {
      uint32_t hash = 0;  // compared before the text
      int32_t id = -1;    // -1: empty
      uint32_t offset = 0, length = 0;
    };
    size_t slot_of(std::string_view text, uint32_t hash) const;  // its slot, or the empty one to fill
    void rehash(size_t capacity);
    std::string texts_;
    std::vector<Slot> slots_;             // a power of two, at most half full
    std::vector<uint32_t> slot_order_;    // the filled slots in insertion order
    int32_t max_id_ = -1;
    bool ids_replaced_ = false;  // then max_id_ may be stale
  };

  struct Merge {
    uint32_t rank;   // lower merges first
    int32_t new_id;  // id of the concatenated token
  };
  // (left id, right id) -> merge, open addressing (the lookup on every BPE step).
  class MergeTable {
   public:
    void reserve(size_t count);
    void prefetch(int32_t left, int32_t right) const;       // as VocabTable::prefetch
    void insert(int32_t left, int32_t right, Merge merge);  // a repeated pair takes the new merge
    const Merge* find(int32_t left, int32_t right) const;    // nullptr if absent

   private:
    struct Slot {
      uint64_t key;  // kEmpty, or the pair
      Merge merge;
    };
    static constexpr uint64_t kEmpty = ~uint64_t(0);  // ids are below 2^24, so never a pair
    size_t home_slot(uint64_t key) const;  // where the probe for `key` starts
    size_t slot_of(uint64_t key) const;
    void rehash(size_t capacity);
    std::vector<Slot> slots_;
    size_t count_ = 0;
  };

  struct WordCache;
  void merge_word(std::string_view word, std::vector<int32_t>& ids) const;

  VocabTable vocab_;
  MergeTable merges_;
  std::array<int32_t, 256> byte_token_ids_{};  // id of each byte's single-character token, or -1
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;  // a word that is itself in the vocab skips the merges
  std::unique_ptr<WordCache> cache_;
};

}  // namespace qvl
