#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>
#include <memory>

#include "core/check.h"
#include "core/json_util.h"

namespace qvl {
namespace {

// Characters below U+0300 are all stable under NFC (nothing composes onto them before the
// first combining mark), so such text, which includes all ASCII, can skip utf8proc.
// U+0300 is encoded 0xCC 0x80 and continuation bytes are below 0xC0.
bool is_below_combining_marks(std::string_view text) {
  for (char c : text)
    if (static_cast<uint8_t>(c) >= 0xCC) return false;
  return true;
}

void read_normalizer(const Json& config, const std::string& what, bool& nfc) {
  if (config.is_null()) return;
  if (!config.is_object()) fail(ErrorKind::kInvalidFile, what, ": normalizer must be an object or null");
  const std::string type = json_string_or(config, "type", "", what);
  if (type == "NFC") {
    nfc = true;
  } else if (type == "Sequence") {
    const Json& list = json_require(config, "normalizers", what);
    if (!list.is_array()) fail(ErrorKind::kInvalidFile, what, ": normalizer Sequence 'normalizers' must be an array");
    for (const Json& item : list) read_normalizer(item, what, nfc);
  } else {
    fail(ErrorKind::kUnsupported, what, ": normalizer type '", type, "' is not supported (only NFC)");
  }
}

}  // namespace

Normalizer Normalizer::from_json(const Json& config, const std::string& what) {
  Normalizer normalizer;
  read_normalizer(config, what, normalizer.nfc_);
  return normalizer;
}

std::string_view Normalizer::apply(std::string_view text, std::string& storage) const {
  if (!nfc_ || is_below_combining_marks(text)) return text;
  storage = to_nfc(text);
  return storage;
}

std::string to_nfc(std::string_view text) {
  if (is_below_combining_marks(text)) return std::string(text);
  utf8proc_uint8_t* composed = nullptr;
  // An explicit length (no UTF8PROC_NULLTERM) keeps embedded NUL bytes.
  const utf8proc_ssize_t length =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), static_cast<utf8proc_ssize_t>(text.size()),
                   &composed, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (length < 0)
    fail(ErrorKind::kInvalidArgument, "NFC normalization failed: ", utf8proc_errmsg(length));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owner(composed, &std::free);
  return std::string(reinterpret_cast<const char*>(composed), static_cast<size_t>(length));
}

}  // namespace qvl
