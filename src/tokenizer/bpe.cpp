#include "tokenizer/bpe.h"

#include <algorithm>
#include <mutex>

#include "core/check.h"
#include "core/json_util.h"
#include "tokenizer/byte_level.h"

namespace qvl {
namespace {

// Ids above this are refused: tables are sized by the largest id.
constexpr int64_t kMaxTokenId = int64_t(1) << 24;
// Long words are rare and would only evict useful entries.
constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kMaxCachedWords = size_t(1) << 16;

std::pair<std::string, std::string> read_merge(const Json& item, size_t index, const std::string& what) {
  if (item.is_string()) {
    const std::string line = item.get<std::string>();
    const size_t space = line.find(' ');
    if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
      fail(ErrorKind::kInvalidFile, what, ": merge #", index, " '", line, "' is not two tokens separated by one space");
    return {line.substr(0, space), line.substr(space + 1)};
  }
  if (item.is_array() && item.size() == 2 && item[0].is_string() && item[1].is_string())
    return {item[0].get<std::string>(), item[1].get<std::string>()};
  fail(ErrorKind::kInvalidFile, what, ": merge #", index, " must be \"a b\" or [\"a\", \"b\"], got ", item.dump());
}

}  // namespace

struct BpeModel::WordCache {
  std::mutex mutex;
  StringMap<std::vector<int32_t>> ids_by_word;
};

BpeModel::BpeModel() : cache_(std::make_unique<WordCache>()) {}
BpeModel::BpeModel(BpeModel&&) noexcept = default;
BpeModel& BpeModel::operator=(BpeModel&&) noexcept = default;
BpeModel::~BpeModel() = default;

BpeModel BpeModel::from_json(const Json& model, const std::string& what) {
  if (!model.is_object()) fail(ErrorKind::kInvalidFile, what, ": 'model' must be an object");
  const std::string type = json_string_or(model, "type", "BPE", what);
  if (type != "BPE") fail(ErrorKind::kUnsupported, what, ": model type '", type, "' is not supported (only BPE)");
  if (!json_string_or(model, "continuing_subword_prefix", "", what).empty() ||
      !json_string_or(model, "end_of_word_suffix", "", what).empty())
    fail(ErrorKind::kUnsupported, what, ": BPE continuing_subword_prefix / end_of_word_suffix are not supported");
  if (json_number_or(model, "dropout", 0.0, what) != 0.0)
    fail(ErrorKind::kUnsupported, what, ": BPE dropout is not supported");

  BpeModel bpe;
  const Json& vocab = json_require(model, "vocab", what + " model");
  if (!vocab.is_object()) fail(ErrorKind::kInvalidFile, what, ": model 'vocab' must be an object of token -> id");
  bpe.vocab_.reserve(vocab.size());
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= kMaxTokenId)
      fail(ErrorKind::kInvalidFile, what, ": vocab entry '", token, "' has a bad id ", id.dump());
    bpe.vocab_[token] = static_cast<int32_t>(id.get<int64_t>());
  }

  const Json& merges = json_require(model, "merges", what + " model");
  if (!merges.is_array()) fail(ErrorKind::kInvalidFile, what, ": model 'merges' must be an array");
  bpe.merges_.reserve(merges.size());
  const auto require_id = [&](const std::string& token, size_t index) {
    const int32_t id = bpe.token_to_id(token);
    if (id < 0) fail(ErrorKind::kInvalidFile, what, ": merge #", index, " uses '", token, "', which is not in the vocab");
    return id;
  };
  for (size_t index = 0; index < merges.size(); ++index) {
    const auto [left, right] = read_merge(merges[index], index, what);
    const int32_t left_id = require_id(left, index), right_id = require_id(right, index);
    const int32_t new_id = require_id(left + right, index);
    // A repeated pair keeps its last rank, as the reference's map insertion does.
    bpe.merges_[pair_key(left_id, right_id)] = Merge{static_cast<uint32_t>(index), new_id};
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

int32_t BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
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
    const auto it = merges_.find(pair_key(symbols[left].id, symbols[symbols[left].next].id));
    if (it == merges_.end()) return;
    queue.push_back({it->second.rank, left, it->second.new_id});
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
    const auto it = merges_.find(pair_key(left.id, right.id));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;
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
