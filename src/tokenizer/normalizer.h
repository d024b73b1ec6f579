// Unicode normalization applied to text before pre-tokenization (tokenizer.json "normalizer").
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

namespace qvl {

class Normalizer {
 public:
  // Accepts null, {"type":"NFC"} or a Sequence of those; anything else is kUnsupported.
  static Normalizer from_json(const nlohmann::json& config, const std::string& what);

  bool is_identity() const { return !nfc_; }
  // Normalizes valid UTF-8 `text`. Returns a view of `text` itself when nothing changes,
  // otherwise of `storage`, which then holds the result.
  std::string_view apply(std::string_view text, std::string& storage) const;

 private:
  bool nfc_ = false;
};

// Canonical composition (NFC) of valid UTF-8 text.
std::string to_nfc(std::string_view text);

}  // namespace qvl
