#include "tokenizer/bpe.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <mutex>

#include "core/check.h"
#include "core/json_util.h"
#include "tokenizer/byte_level.h"

namespace qvl {
namespace {

// Long words are rare and would only evict useful entries.
constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kMaxCachedWords = size_t(1) << 16;

// The DOM path: vocab and merges from the parsed "model" object. Vocab errors are raised here,
// a malformed merge only when the build reaches its index, as if it were read in one pass.
void read_source(const Json& model, const std::string& what, BpeSource& source) {
  const Json& vocab = json_require(model, "vocab", what + " model");
  if (!vocab.is_object()) fail(ErrorKind::kInvalidFile, what, ": model 'vocab' must be an object of token -> id");
  source.vocab.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const Json& id = it.value();
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= BpeSource::kIdLimit)
      fail(ErrorKind::kInvalidFile, what, ": vocab entry '", it.key(), "' has a bad id ", id.dump());
    source.vocab.push_back({it.key(), static_cast<int32_t>(id.get<int64_t>())});
  }

  const Json& merges = json_require(model, "merges", what + " model");
  if (!merges.is_array()) fail(ErrorKind::kInvalidFile, what, ": model 'merges' must be an array");
  source.merges.reserve(merges.size());
  using Kind = BpeSource::MergeEntry::Kind;
  for (const Json& item : merges) {
    if (item.is_string()) {
      source.merges.push_back({Kind::kLine, item.get_ref<const std::string&>(), {}});
    } else if (item.is_array() && item.size() == 2 && item[0].is_string() && item[1].is_string()) {
      source.merges.push_back(
          {Kind::kPair, item[0].get_ref<const std::string&>(), item[1].get_ref<const std::string&>()});
    } else {
      source.merges.push_back({Kind::kMalformed, source.decoded_strings.emplace_back(item.dump()), {}});
    }
  }
}

uint64_t pair_key(int32_t left, int32_t right) { return (uint64_t(uint32_t(left)) << 32) | uint32_t(right); }

}  // namespace

// Tokens are short (7 bytes on average in Qwen's vocabulary), so a word-at-a-time multiply-xorshift
// hash, inlined, beats a general byte-string hash here.
uint32_t BpeModel::VocabTable::hash(std::string_view text) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ text.size();
  const char* p = text.data();
  size_t n = text.size();
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    h = (h ^ word) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
  }
  if (n > 0) {
    uint64_t word = 0;
    for (size_t i = 0; i < n; ++i) word |= uint64_t(static_cast<uint8_t>(p[i])) << (8 * i);
    h = (h ^ word) * 0x94D049BB133111EBull;
    h ^= h >> 29;
  }
  h *= 0xFF51AFD7ED558CCDull;
  return static_cast<uint32_t>(h ^ (h >> 32));
}

namespace {

// Slots for `count` entries at most half full (short probes); inserts keep it so.
size_t table_capacity(size_t count) {
  size_t capacity = 16;
  while (capacity < 2 * count) capacity *= 2;
  return capacity;
}

}  // namespace

void BpeModel::VocabTable::reserve(size_t count, size_t text_bytes) {
  texts_.reserve(text_bytes);
  slot_order_.reserve(count);
  if (table_capacity(count) > slots_.size()) rehash(table_capacity(count));
}

size_t BpeModel::VocabTable::slot_of(std::string_view text, uint32_t hash) const {
  const size_t mask = slots_.size() - 1;
  for (size_t index = hash & mask;; index = (index + 1) & mask) {
    const Slot& slot = slots_[index];
    if (slot.id < 0) return index;
    if (slot.hash == hash && slot.length == text.size() &&
        std::memcmp(texts_.data() + slot.offset, text.data(), text.size()) == 0)
      return index;
  }
}

void BpeModel::VocabTable::rehash(size_t capacity) {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(capacity, Slot{});
  const size_t mask = capacity - 1;
  for (uint32_t& slot_index : slot_order_) {
    const Slot& slot = old[slot_index];
    size_t index = slot.hash & mask;
    while (slots_[index].id >= 0) index = (index + 1) & mask;
    slots_[index] = slot;
    slot_index = static_cast<uint32_t>(index);
  }
}

void BpeModel::VocabTable::insert(std::string_view text, uint32_t hash, int32_t id) {
  if (2 * (slot_order_.size() + 1) > slots_.size()) rehash(std::max<size_t>(16, 2 * slots_.size()));
  const size_t index = slot_of(text, hash);
  Slot& slot = slots_[index];
  if (slot.id < 0) {
    if (texts_.size() + text.size() > std::numeric_limits<uint32_t>::max())
      fail(ErrorKind::kLimitExceeded, "tokenizer vocabulary texts exceed 4 GB");
    slot.hash = hash;
    slot.offset = static_cast<uint32_t>(texts_.size());
    slot.length = static_cast<uint32_t>(text.size());
    texts_.append(text);
    slot_order_.push_back(static_cast<uint32_t>(index));
  } else {
    ids_replaced_ = true;
  }
  slot.id = id;
  max_id_ = std::max(max_id_, id);
}

int32_t BpeModel::VocabTable::find(std::string_view text, uint32_t hash) const {
  return slots_[slot_of(text, hash)].id;
}

int32_t BpeModel::VocabTable::max_id() const {
  if (!ids_replaced_) return max_id_;
  int32_t max_id = -1;
  for (uint32_t index : slot_order_) max_id = std::max(max_id, slots_[index].id);
  return max_id;
}

void BpeModel::MergeTable::reserve(size_t count) {
  if (table_capacity(count) > slots_.size()) rehash(table_capacity(count));
}

size_t BpeModel::MergeTable::home_slot(uint64_t key) const {
  // Fibonacci hashing: the high half of the product mixes both ids.
  return ((key * 0x9E3779B97F4A7C15ull) >> 32) & (slots_.size() - 1);
}

void BpeModel::MergeTable::prefetch(int32_t left, int32_t right) const {
  __builtin_prefetch(&slots_[home_slot(pair_key(left, right))]);
}

size_t BpeModel::MergeTable::slot_of(uint64_t key) const {
  const size_t mask = slots_.size() - 1;
  for (size_t slot = home_slot(key);; slot = (slot + 1) & mask)
    if (slots_[slot].key == key || slots_[slot].key == kEmpty) return slot;
}

void BpeModel::MergeTable::rehash(size_t capacity) {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(capacity, Slot{kEmpty, {}});
  for (const Slot& s : old)
    if (s.key != kEmpty) slots_[slot_of(s.key)] = s;
}

void BpeModel::MergeTable::insert(int32_t left, int32_t right, Merge merge) {
  if (2 * (count_ + 1) > slots_.size()) rehash(std::max<size_t>(16, 2 * slots_.size()));
  const uint64_t key = pair_key(left, right);
  Slot& slot = slots_[slot_of(key)];
  count_ += slot.key == kEmpty;
  slot = {key, merge};
}

const BpeModel::Merge* BpeModel::MergeTable::find(int32_t left, int32_t right) const {
  if (slots_.empty()) return nullptr;
  const Slot& slot = slots_[slot_of(pair_key(left, right))];
  return slot.key == kEmpty ? nullptr : &slot.merge;
}

struct BpeModel::WordCache {
  std::mutex mutex;
  StringMap<std::vector<int32_t>> ids_by_word;
};

BpeModel::BpeModel() : cache_(std::make_unique<WordCache>()) {}
BpeModel::BpeModel(BpeModel&&) noexcept = default;
BpeModel& BpeModel::operator=(BpeModel&&) noexcept = default;
BpeModel::~BpeModel() = default;

BpeModel BpeModel::from_json(const Json& model, const std::string& what, const BpeSource* read_source_already) {
  if (!model.is_object()) fail(ErrorKind::kInvalidFile, what, ": 'model' must be an object");
  const std::string type = json_string_or(model, "type", "BPE", what);
  if (type != "BPE") fail(ErrorKind::kUnsupported, what, ": model type '", type, "' is not supported (only BPE)");
  if (!json_string_or(model, "continuing_subword_prefix", "", what).empty() ||
      !json_string_or(model, "end_of_word_suffix", "", what).empty())
    fail(ErrorKind::kUnsupported, what, ": BPE continuing_subword_prefix / end_of_word_suffix are not supported");
  if (json_number_or(model, "dropout", 0.0, what) != 0.0)
    fail(ErrorKind::kUnsupported, what, ": BPE dropout is not supported");

  BpeSource read_here;
  if (!read_source_already) read_source(model, what, read_here);
  const BpeSource& source = read_source_already ? *read_source_already : read_here;

  BpeModel bpe;
  size_t text_bytes = 0;
  for (const BpeSource::VocabEntry& entry : source.vocab) text_bytes += entry.token.size();
  bpe.vocab_.reserve(source.vocab.size(), text_bytes);
  // Random accesses to tables larger than the L2 cache dominate the build, so it runs as a
  // pipeline: hash and prefetch the vocab slots kLookahead items ahead, look the ids up and
  // prefetch the merge slot half as far ahead, insert last.
  constexpr size_t kLookahead = 16;
  std::array<uint32_t, kLookahead> vocab_hashes{};
  const auto hash_vocab_entry = [&](size_t index) {
    vocab_hashes[index % kLookahead] = VocabTable::hash(source.vocab[index].token);
    bpe.vocab_.prefetch(vocab_hashes[index % kLookahead]);
  };
  for (size_t index = 0; index < std::min(kLookahead, source.vocab.size()); ++index) hash_vocab_entry(index);
  for (size_t index = 0; index < source.vocab.size(); ++index) {
    bpe.vocab_.insert(source.vocab[index].token, vocab_hashes[index % kLookahead], source.vocab[index].id);
    if (index + kLookahead < source.vocab.size()) hash_vocab_entry(index + kLookahead);
  }

  // A merge's three tokens: left, right and their concatenation.
  struct PendingMerge {
    std::string_view left, right;
    std::string joined;
    std::array<uint32_t, 3> hashes;
    bool well_formed;
    int32_t left_id, right_id, new_id;
  };
  std::array<PendingMerge, kLookahead> pending;
  const auto hash_merge = [&](size_t index) {
    const BpeSource::MergeEntry& merge = source.merges[index];
    PendingMerge& p = pending[index % kLookahead];
    p.left = merge.first;
    p.right = merge.second;
    p.well_formed = merge.kind != BpeSource::MergeEntry::Kind::kMalformed;
    if (merge.kind == BpeSource::MergeEntry::Kind::kLine) {
      const size_t space = merge.first.find(' ');
      p.well_formed = space != std::string_view::npos && merge.first.find(' ', space + 1) == std::string_view::npos;
      p.left = merge.first.substr(0, space);
      p.right = p.well_formed ? merge.first.substr(space + 1) : std::string_view();
    }
    if (!p.well_formed) return;
    p.joined.assign(p.left).append(p.right);
    p.hashes = {VocabTable::hash(p.left), VocabTable::hash(p.right), VocabTable::hash(p.joined)};
    for (uint32_t hash : p.hashes) bpe.vocab_.prefetch(hash);
  };
  // Runs in index order, so the first error in the file is the one reported.
  const auto find_merge_ids = [&](size_t index) {
    PendingMerge& p = pending[index % kLookahead];
    if (!p.well_formed) {
      const BpeSource::MergeEntry& merge = source.merges[index];
      if (merge.kind == BpeSource::MergeEntry::Kind::kLine)
        fail(ErrorKind::kInvalidFile, what, ": merge #", index, " '", merge.first,
             "' is not two tokens separated by one space");
      fail(ErrorKind::kInvalidFile, what, ": merge #", index, " must be \"a b\" or [\"a\", \"b\"], got ", merge.first);
    }
    const auto require_id = [&](std::string_view token, uint32_t hash) {
      const int32_t id = bpe.vocab_.find(token, hash);
      if (id < 0) fail(ErrorKind::kInvalidFile, what, ": merge #", index, " uses '", token, "', which is not in the vocab");
      return id;
    };
    p.left_id = require_id(p.left, p.hashes[0]);
    p.right_id = require_id(p.right, p.hashes[1]);
    p.new_id = require_id(p.joined, p.hashes[2]);
    bpe.merges_.prefetch(p.left_id, p.right_id);
  };
  constexpr size_t kFindAhead = kLookahead / 2;
  const size_t merge_count = source.merges.size();
  bpe.merges_.reserve(merge_count);
  for (size_t index = 0; index < std::min(kLookahead, merge_count); ++index) hash_merge(index);
  for (size_t index = 0; index < std::min(kFindAhead, merge_count); ++index) find_merge_ids(index);
  for (size_t index = 0; index < merge_count; ++index) {
    const PendingMerge& p = pending[index % kLookahead];
    // A repeated pair keeps its last rank, as the reference's map insertion does.
    bpe.merges_.insert(p.left_id, p.right_id, Merge{static_cast<uint32_t>(index), p.new_id});
    if (index + kFindAhead < merge_count) find_merge_ids(index + kFindAhead);
    if (index + kLookahead < merge_count) hash_merge(index + kLookahead);
  }

  for (int byte = 0; byte < 256; ++byte)
    bpe.byte_token_ids_[byte] = bpe.token_to_id(byte_level::char_for_byte(static_cast<uint8_t>(byte)));
  const std::string unk = json_string_or(model, "unk_token", "", what);
  if (!unk.empty()) {
    bpe.unk_id_ = bpe.token_to_id(unk);
    if (bpe.unk_id_ < 0) fail(ErrorKind::kInvalidFile, what, ": unk_token '", unk, "' is not in the vocab");
  }
  bpe.fuse_unk_ = json_bool_or(model, "fuse_unk", false, what);
  bpe.ignore_merges_ = json_bool_or(model, "ignore_merges", false, what);
  return bpe;
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& ids) const {
  if (word.empty()) return;
  if (word.size() == 1 && byte_token_ids_[static_cast<uint8_t>(word[0])] >= 0) {
    ids.push_back(byte_token_ids_[static_cast<uint8_t>(word[0])]);
    return;
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::lock_guard lock(cache_->mutex);
    const auto it = cache_->ids_by_word.find(word);
    if (it != cache_->ids_by_word.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = ids.size();
  merge_word(word, ids);
  if (cacheable) {
    std::lock_guard lock(cache_->mutex);
    if (cache_->ids_by_word.size() >= kMaxCachedWords) cache_->ids_by_word.clear();
    cache_->ids_by_word.emplace(std::string(word), std::vector<int32_t>(ids.begin() + first, ids.end()));
  }
}

// The reference algorithm: repeatedly apply the lowest-rank merge present in the word (the
// leftmost one on ties), found with a priority queue over a linked list of symbols, so a word
// of n bytes costs O(n log n) rather than a rescan per merge.
void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& ids) const {
  if (ignore_merges_) {
    const int32_t whole = token_to_id(byte_level::encode(word));
    if (whole >= 0) {
      ids.push_back(whole);
      return;
    }
  }

  struct Symbol {
    int32_t id;
    int32_t prev, next;  // neighbours in the word, -1 at the ends
    bool alive;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  bool previous_was_unk = false;
  for (char c : word) {
    int32_t id = byte_token_ids_[static_cast<uint8_t>(c)];
    const bool is_unk = id < 0;
    if (is_unk) {
      if (unk_id_ < 0) continue;  // no unk token: the reference drops the character
      if (fuse_unk_ && previous_was_unk) continue;
      id = unk_id_;
    }
    previous_was_unk = is_unk;
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, -1, true});
    if (index > 0) symbols[index - 1].next = index;
  }

  struct Candidate {
    uint32_t rank;
    int32_t pos;  // index of the left symbol
    int32_t new_id;
  };
  // std::push_heap builds a max-heap, so "later" means lower priority: higher rank, then right.
  const auto lower_priority = [](const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  std::vector<Candidate> queue;
  const auto push_candidate = [&](int32_t left) {
    const Merge* merge = merges_.find(symbols[left].id, symbols[symbols[left].next].id);
    if (!merge) return;
    queue.push_back({merge->rank, left, merge->new_id});
    std::push_heap(queue.begin(), queue.end(), lower_priority);
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) push_candidate(i);

  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end(), lower_priority);
    const Candidate top = queue.back();
    queue.pop_back();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    // Skip stale entries: the pair at this position changed since it was queued.
    const Merge* merge = merges_.find(left.id, right.id);
    if (!merge || merge->new_id != top.new_id) continue;
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) push_candidate(left.prev);
    if (left.next >= 0) push_candidate(top.pos);
  }
  for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) ids.push_back(symbols[i].id);
}

}  // namespace qvl
