// libFuzzer target: arbitrary text -> encode with the real Qwen3 tokenizer (tests/data/tiny-qwen3-vl,
// loaded once), then decode and stream-decode the ids and check the round trip. Bytes after the
// first NUL (if any) are also read as little-endian token ids (mod vocab + a few out-of-range
// values) and decoded, to exercise decode of arbitrary id sequences and of broken UTF-8.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/utf8.h"
#include "fuzz_common.h"
#include "qvl/error.hpp"
#include "tokenizer/normalizer.h"
#include "tokenizer/tokenizer.h"

namespace {

const qvl::BpeTokenizer& tokenizer() {
  static const std::unique_ptr<qvl::BpeTokenizer> tok = [] {
    const std::string path = qvl::fuzz::test_data_dir() + "/tiny-qwen3-vl/tokenizer.json";
    try {
      return qvl::BpeTokenizer::load(path);
    } catch (const qvl::Error& e) {
      std::fprintf(stderr, "fuzz_tokenizer_encode: cannot load %s: %s\n", path.c_str(), e.what());
      std::abort();
    }
  }();
  return *tok;
}

std::string stream_decode(const qvl::BpeTokenizer& tok, const std::vector<int32_t>& ids, bool skip_special) {
  qvl::BpeTokenizer::StreamDecoder stream(tok, skip_special);
  std::string out;
  for (int32_t id : ids) out += stream.put(id);
  return out + stream.flush();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const qvl::BpeTokenizer& tok = tokenizer();
  const char* chars = reinterpret_cast<const char*>(data);
  const void* nul = std::memchr(data, 0, size);
  const size_t text_len = nul ? static_cast<size_t>(static_cast<const uint8_t*>(nul) - data) : size;
  const std::string_view text(chars, text_len);

  // 1. The text as given: invalid UTF-8 must be refused with kInvalidArgument, never crash.
  std::vector<int32_t> ids;
  bool valid = true;
  try {
    ids = tok.encode(text);
  } catch (const qvl::Error& e) {
    if (e.kind() != qvl::ErrorKind::kInvalidArgument) __builtin_trap();
    if (qvl::utf8::first_invalid_offset(text) == std::string_view::npos) __builtin_trap();  // refused valid text
    valid = false;
  }
  if (valid) {
    const std::string decoded = tok.decode(ids);
    if (stream_decode(tok, ids, false) != decoded) __builtin_trap();
    (void)stream_decode(tok, ids, true);
    // Byte-level BPE loses nothing: decode(encode(x)) is x up to the NFC normalization of the
    // text between special tokens. For text that is NFC already it must be x exactly.
    std::string storage;
    static const qvl::Normalizer nfc = qvl::Normalizer::from_json(nlohmann::json{{"type", "NFC"}}, "nfc");
    if (nfc.apply(text, storage) == text && decoded != text) __builtin_trap();
  }

  // 2. The rest as token ids: decode must turn any id sequence into valid UTF-8 or refuse an
  //    unknown id with kInvalidArgument.
  if (nul != nullptr) {
    std::vector<int32_t> raw;
    const size_t n = size - text_len - 1;
    const uint8_t* p = data + text_len + 1;
    const int64_t vocab = tok.vocab_size();
    for (size_t i = 0; i + 3 <= n; i += 3) {
      const uint32_t v = uint32_t(p[i]) | (uint32_t(p[i + 1]) << 8) | (uint32_t(p[i + 2]) << 16);
      // Mostly valid ids; the top values stand for out-of-range ones (-1, vocab, INT32_MAX).
      int32_t id = static_cast<int32_t>(v % static_cast<uint32_t>(vocab + 3));
      if (id == vocab) id = -1;
      else if (id == vocab + 1) id = static_cast<int32_t>(vocab);
      else if (id == vocab + 2) id = INT32_MAX;
      raw.push_back(id);
    }
    try {
      const std::string decoded = tok.decode(raw);
      if (qvl::utf8::first_invalid_offset(decoded) != std::string::npos) __builtin_trap();
      if (stream_decode(tok, raw, false) != decoded) __builtin_trap();
      const std::string skipped = tok.decode(raw, true);
      if (stream_decode(tok, raw, true) != skipped) __builtin_trap();
    } catch (const qvl::Error& e) {
      if (e.kind() != qvl::ErrorKind::kInvalidArgument) __builtin_trap();
    }
  }
  return 0;
}
