// Byte-level BPE tokenizer read from a Hugging Face tokenizer.json (the Qwen2/Qwen3 family),
// reproducing the `tokenizers` library: added tokens -> NFC -> regex split -> byte-level BPE.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pretokenizer.h"

namespace qvl {

class BpeTokenizer {
 public:
  // Throws qvl::Error: kNotFound/kIo for the file, kInvalidFile for malformed content,
  // kUnsupported for valid configurations qvl does not implement.
  static std::unique_ptr<BpeTokenizer> load(const std::string& tokenizer_json_path);
  // `what` names the document in error messages. The vocab and merges are read by a fast
  // scanner (tokenizer_json.h); documents it does not take are parsed in full, with the same result.
  static std::unique_ptr<BpeTokenizer> from_json_text(const std::string& text, const std::string& what);
  // From a document already parsed in full (the path unusual or malformed files take).
  static std::unique_ptr<BpeTokenizer> from_parsed_json(const nlohmann::json& root, const std::string& what);

  // Added tokens appearing literally in `text` become single tokens; no BOS/EOS is added.
  // Invalid UTF-8 is kInvalidArgument naming the byte offset. Thread-safe.
  std::vector<int32_t> encode(std::string_view text) const;
  // Ill-formed UTF-8 in the joined token bytes becomes U+FFFD. An id without a token decodes to
  // nothing (as in Hugging Face tokenizers: models pad their embedding tables past the
  // vocabulary and can sample those rows); a negative id is kInvalidArgument.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;

  int32_t token_to_id(std::string_view token) const;  // -1 if unknown (added tokens included)
  std::string id_to_token(int32_t id) const;          // vocab form ("Ġworld"); unknown id: kInvalidArgument
  int64_t vocab_size() const { return static_cast<int64_t>(tokens_.size()); }  // max id + 1
  bool is_special(int32_t id) const;

  // Incremental detokenization: emits text only once its UTF-8 is complete, so the pieces of
  // put() + flush() concatenate to exactly decode(all ids).
  class StreamDecoder {
   public:
    explicit StreamDecoder(const BpeTokenizer& tokenizer, bool skip_special_tokens = false);
    std::string put(int32_t id);  // the newly completed text (may be empty)
    std::string flush();          // what is pending, ill-formed leftovers as U+FFFD

   private:
    const BpeTokenizer* tokenizer_;
    bool skip_special_tokens_;
    std::string pending_bytes_;  // an incomplete UTF-8 sequence awaiting more bytes
  };

 private:
  // A piece of token_strings_.
  struct StringRef {
    uint32_t offset = 0, length = 0;
  };
  struct TokenInfo {
    StringRef text;   // vocab form, or an added token's content
    StringRef bytes;  // what it decodes to
    bool exists = false;
    bool special = false;
  };

  explicit BpeTokenizer(BpeModel model);
  static std::unique_ptr<BpeTokenizer> from_json_view(std::string_view text, const std::string& what);
  // `source` holds the vocab and merges when the fast reader took them out of `root`.
  static std::unique_ptr<BpeTokenizer> build(const nlohmann::json& root, const BpeSource* source,
                                             const std::string& what);
  std::string_view view(StringRef ref) const { return {token_strings_.data() + ref.offset, ref.length}; }
  StringRef add_string(std::string_view text);
  // Gives `info` its text and the bytes it decodes to.
  void set_token_strings(TokenInfo& info, std::string_view text);
  const TokenInfo& require_token(int32_t id, const char* caller) const;
  // nullptr for an id >= 0 without a token; fails on a negative id.
  const TokenInfo* decodable_token(int32_t id, const char* caller) const;
  void encode_plain(std::string_view text, std::vector<int32_t>& ids) const;

  BpeModel model_;
  Normalizer normalizer_;
  PreTokenizer pre_tokenizer_;
  AddedTokenMatcher raw_added_tokens_;         // matched before normalization
  AddedTokenMatcher normalized_added_tokens_;  // matched in the normalized text
  StringMap<int32_t> added_token_ids_;
  std::vector<TokenInfo> tokens_;  // by id
  std::string token_strings_;      // every token's text and bytes, in one buffer
};

}  // namespace qvl
