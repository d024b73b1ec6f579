#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <limits>

#include "core/check.h"
#include "core/json_util.h"
#include "core/mapped_file.h"
#include "core/utf8.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer_json.h"

namespace qvl {
namespace {

constexpr int64_t kSparseIdSlack = 65536;
constexpr size_t kMaxTokenizerJsonBytes = size_t(256) << 20;

const Json& member_or_null(const Json& object, const char* key) {
  static const Json null_json;
  const auto it = object.find(key);
  return it == object.end() ? null_json : *it;
}

std::vector<AddedToken> read_added_tokens(const Json& list, const std::string& what) {
  std::vector<AddedToken> tokens;
  if (list.is_null()) return tokens;
  if (!list.is_array()) fail(ErrorKind::kInvalidFile, what, ": 'added_tokens' must be an array");
  for (const Json& item : list) {
    const std::string where = what + " added_tokens[" + std::to_string(tokens.size()) + "]";
    AddedToken token;
    const int64_t id = json_int(item, "id", where);
    if (id < 0 || id >= BpeSource::kIdLimit) fail(ErrorKind::kInvalidFile, where, ": bad id ", id);
    token.id = static_cast<int32_t>(id);
    const Json& content = json_require(item, "content", where);
    if (!content.is_string()) fail(ErrorKind::kInvalidFile, where, ": 'content' must be a string");
    token.content = content.get<std::string>();
    token.special = json_bool_or(item, "special", false, where);
    token.normalized = json_bool_or(item, "normalized", !token.special, where);
    token.lstrip = json_bool_or(item, "lstrip", false, where);
    token.rstrip = json_bool_or(item, "rstrip", false, where);
    token.single_word = json_bool_or(item, "single_word", false, where);
    tokens.push_back(std::move(token));
  }
  return tokens;
}

void check_decoder(const Json& decoder, const std::string& what) {
  const std::string type = decoder.is_object() ? json_string_or(decoder, "type", "", what) : "";
  if (type != "ByteLevel")
    fail(ErrorKind::kUnsupported, what, ": decoder ", decoder.dump(), " is not supported (only ByteLevel)");
}

}  // namespace

BpeTokenizer::BpeTokenizer(BpeModel model) : model_(std::move(model)) {}

std::unique_ptr<BpeTokenizer> BpeTokenizer::load(const std::string& tokenizer_json_path) {
  // Mapped rather than copied into a string, which took ~10 ms of a ~50 ms load. Anything but a
  // readable regular file within the limit goes through read_text_file for its usual errors.
  std::error_code error;
  const uintmax_t size = std::filesystem::file_size(tokenizer_json_path, error);
  if (!error && size > 0 && size <= kMaxTokenizerJsonBytes) {
    const MappedFile file(tokenizer_json_path);
    return from_json_view({reinterpret_cast<const char*>(file.data()), file.size()}, tokenizer_json_path);
  }
  return from_json_text(read_text_file(tokenizer_json_path, kMaxTokenizerJsonBytes), tokenizer_json_path);
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_json_text(const std::string& text, const std::string& what) {
  return from_json_view(text, what);
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_json_view(std::string_view text, const std::string& what) {
  TokenizerJsonParts parts;
  if (read_tokenizer_json_fast(text, what, parts)) return build(parts.root, &parts.source, what);
  return build(parse_json(std::string(text), what), nullptr, what);
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_parsed_json(const Json& root, const std::string& what) {
  return build(root, nullptr, what);
}

BpeTokenizer::StringRef BpeTokenizer::add_string(std::string_view text) {
  if (token_strings_.size() + text.size() > std::numeric_limits<uint32_t>::max())
    fail(ErrorKind::kLimitExceeded, "tokenizer: token texts exceed 4 GB");
  const StringRef ref{static_cast<uint32_t>(token_strings_.size()), static_cast<uint32_t>(text.size())};
  token_strings_.append(text);
  return ref;
}

void BpeTokenizer::set_token_strings(TokenInfo& info, std::string_view text) {
  info.text = add_string(text);
  const size_t bytes_start = token_strings_.size();
  if (!byte_level::decode(text, token_strings_)) {
    info.bytes = info.text;  // not byte-level text: decodes to itself
  } else if (token_strings_.size() > std::numeric_limits<uint32_t>::max()) {
    fail(ErrorKind::kLimitExceeded, "tokenizer: token texts exceed 4 GB");
  } else {
    info.bytes = {static_cast<uint32_t>(bytes_start), static_cast<uint32_t>(token_strings_.size() - bytes_start)};
  }
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::build(const Json& root, const BpeSource* source, const std::string& what) {
  if (!root.is_object()) fail(ErrorKind::kInvalidFile, what, ": expected a JSON object at the top level");
  try {
    std::unique_ptr<BpeTokenizer> tokenizer(
        new BpeTokenizer(BpeModel::from_json(json_require(root, "model", what), what, source)));
    tokenizer->normalizer_ = Normalizer::from_json(member_or_null(root, "normalizer"), what);
    tokenizer->pre_tokenizer_ = PreTokenizer::from_json(member_or_null(root, "pre_tokenizer"), what);
    check_decoder(member_or_null(root, "decoder"), what);
    // post_processor only adds offsets or template tokens when asked to add special tokens,
    // which encode() never does, so it is not read.

    std::vector<AddedToken> added = read_added_tokens(member_or_null(root, "added_tokens"), what);
    const BpeModel& model = tokenizer->model_;
    int64_t max_id = model.max_token_id();
    for (const AddedToken& token : added) max_id = std::max<int64_t>(max_id, token.id);
    // The id table below is sized by the largest id: one token with id 16777215 in a 145-byte file
    // made it 1.2 GB. Real vocabularies are (nearly) dense, so ids far past the count are refused.
    const int64_t defined = static_cast<int64_t>(model.vocab_count() + added.size());
    if (max_id >= 2 * defined + kSparseIdSlack)
      fail(ErrorKind::kLimitExceeded, what, ": token id ", max_id, " is far beyond the ", defined,
           " tokens defined (ids may exceed twice the token count by at most ", kSparseIdSlack, ")");
    auto& tokens = tokenizer->tokens_;
    tokens.resize(static_cast<size_t>(max_id + 1));
    tokenizer->token_strings_.reserve(2 * model.vocab_text_bytes());  // text + bytes (at most as long)
    // In file order, which for Hugging Face files is id order: tokens fills sequentially.
    model.for_each_token([&](std::string_view text, int32_t id) {
      TokenInfo& info = tokens[id];
      // Two tokens with one id: the smaller text wins, whatever order the file lists them in.
      if (info.exists && tokenizer->view(info.text) <= text) return;
      info.exists = true;
      tokenizer->set_token_strings(info, text);
    });

    // The reference matches special tokens first, then the others, each in file order.
    std::stable_partition(added.begin(), added.end(), [](const AddedToken& t) { return t.special; });
    std::vector<AddedToken> raw, normalized;
    std::vector<std::string> raw_patterns, normalized_patterns;
    for (const AddedToken& token : added) {
      TokenInfo& info = tokens[token.id];  // an added token overrides a vocab entry with its id
      tokenizer->set_token_strings(info, token.content);
      info.exists = true;
      info.special = token.special;
      if (token.content.empty() || !tokenizer->added_token_ids_.emplace(token.content, token.id).second) continue;
      if (token.normalized) {
        std::string storage;
        normalized_patterns.emplace_back(tokenizer->normalizer_.apply(token.content, storage));
        normalized.push_back(token);
      } else {
        raw_patterns.push_back(token.content);
        raw.push_back(token);
      }
    }
    tokenizer->raw_added_tokens_ = AddedTokenMatcher(std::move(raw), std::move(raw_patterns));
    tokenizer->normalized_added_tokens_ = AddedTokenMatcher(std::move(normalized), std::move(normalized_patterns));
    return tokenizer;
  } catch (const Json::exception& e) {
    // Safety net for a JSON value of an unexpected type that no explicit check caught.
    fail(ErrorKind::kInvalidFile, what, ": unexpected tokenizer.json structure (", e.what(), ")");
  }
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text) const {
  const size_t bad_offset = utf8::first_invalid_offset(text);
  if (bad_offset != std::string_view::npos)
    fail(ErrorKind::kInvalidArgument, "tokenizer: input is not valid UTF-8 (bad byte at offset ", bad_offset, ")");
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  std::vector<TextPiece> pieces;
  raw_added_tokens_.split(text, pieces);
  for (const TextPiece& piece : pieces) {
    if (piece.added_id >= 0) ids.push_back(piece.added_id);
    else encode_plain(piece.text, ids);
  }
  return ids;
}

// Text between raw added tokens: normalize, cut out normalized added tokens, split into words, BPE.
void BpeTokenizer::encode_plain(std::string_view text, std::vector<int32_t>& ids) const {
  std::string storage;
  const std::string_view normalized = normalizer_.apply(text, storage);
  std::vector<TextPiece> pieces;
  if (normalized_added_tokens_.empty()) pieces.push_back({normalized, -1});
  else normalized_added_tokens_.split(normalized, pieces);
  std::vector<std::string_view> words;
  for (const TextPiece& piece : pieces) {
    if (piece.added_id >= 0) {
      ids.push_back(piece.added_id);
      continue;
    }
    words.clear();
    pre_tokenizer_.split(piece.text, words);
    for (std::string_view word : words) model_.encode_word(word, ids);
  }
}

const BpeTokenizer::TokenInfo& BpeTokenizer::require_token(int32_t id, const char* caller) const {
  if (id < 0 || id >= vocab_size() || !tokens_[id].exists)
    fail(ErrorKind::kInvalidArgument, caller, ": token id ", id, " is not in the vocabulary (size ", vocab_size(), ")");
  return tokens_[id];
}

const BpeTokenizer::TokenInfo* BpeTokenizer::decodable_token(int32_t id, const char* caller) const {
  if (id < 0) fail(ErrorKind::kInvalidArgument, caller, ": token id ", id, " is negative");
  // Like Hugging Face tokenizers: an id with no token (e.g. a row of a padded embedding table,
  // which a model can still sample) decodes to nothing.
  return id < vocab_size() && tokens_[id].exists ? &tokens_[id] : nullptr;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::string bytes;
  for (int32_t id : ids) {
    const TokenInfo* token = decodable_token(id, "decode");
    if (token && !(skip_special_tokens && token->special)) bytes += view(token->bytes);
  }
  if (utf8::first_invalid_offset(bytes) == std::string::npos) return bytes;
  std::string text;
  utf8::append_lossy(bytes, text);
  return text;
}

int32_t BpeTokenizer::token_to_id(std::string_view token) const {
  const auto it = added_token_ids_.find(token);
  return it != added_token_ids_.end() ? it->second : model_.token_to_id(token);
}

std::string BpeTokenizer::id_to_token(int32_t id) const {
  return std::string(view(require_token(id, "id_to_token").text));
}

bool BpeTokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && tokens_[id].special;
}

BpeTokenizer::StreamDecoder::StreamDecoder(const BpeTokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string BpeTokenizer::StreamDecoder::put(int32_t id) {
  const TokenInfo* token = tokenizer_->decodable_token(id, "StreamDecoder::put");
  if (!token || (skip_special_tokens_ && token->special)) return {};
  pending_bytes_ += tokenizer_->view(token->bytes);
  std::string text;
  // Ill-formed bytes are final (U+FFFD now, as decode would); only a truncated tail waits.
  pending_bytes_.erase(0, utf8::append_lossy_complete(pending_bytes_, text));
  return text;
}

std::string BpeTokenizer::StreamDecoder::flush() {
  std::string text;
  utf8::append_lossy(pending_bytes_, text);
  pending_bytes_.clear();
  return text;
}

}  // namespace qvl
