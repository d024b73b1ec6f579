// Byte-level BPE tokenizer: the golden cases (ids, tokens, decode, streaming), UTF-8 handling,
// malformed tokenizer.json files, added-token options, long inputs and speed.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/check.h"
#include "core/utf8.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "test_util.h"

namespace qvl {
namespace {

using Json = nlohmann::json;

using test::expect_error;

bool is_valid_utf8(std::string_view s) { return utf8::first_invalid_offset(s) == std::string_view::npos; }

std::string tokenizer_path() { return test::tiny_model_dir() + "/tokenizer.json"; }

// The real Qwen3 tokenizer, loaded once for the whole program.
const BpeTokenizer& qwen() {
  static const std::unique_ptr<BpeTokenizer> tokenizer = BpeTokenizer::load(tokenizer_path());
  return *tokenizer;
}

const Json& golden_cases() {
  static const Json cases = Json::parse(test::read_file(test::golden_dir() + "/tokenizer_cases.json"))["cases"];
  return cases;
}

// Feeds ids one by one; every piece must be valid UTF-8 on its own.
std::string stream_decode(const BpeTokenizer& tokenizer, const std::vector<int32_t>& ids, bool skip_special) {
  BpeTokenizer::StreamDecoder stream(tokenizer, skip_special);
  std::string text;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string piece = stream.put(ids[i]);
    EXPECT_TRUE(is_valid_utf8(piece)) << "invalid UTF-8 piece after id #" << i;
    text += piece;
  }
  const std::string rest = stream.flush();
  EXPECT_TRUE(is_valid_utf8(rest));
  return text + rest;
}

TEST(Tokenizer, GoldenCasesReproduceIdsTokensAndDecode) {
  const BpeTokenizer& tok = qwen();
  ASSERT_EQ(golden_cases().size(), 40u);
  int passed = 0;
  for (const Json& c : golden_cases()) {
    const std::string text = c["text"];
    SCOPED_TRACE("text: " + text);
    const auto expected_ids = c["ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> ids = tok.encode(text);
    EXPECT_EQ(ids, expected_ids);
    std::vector<std::string> tokens;
    for (int32_t id : expected_ids) tokens.push_back(tok.id_to_token(id));
    EXPECT_EQ(tokens, c["tokens"].get<std::vector<std::string>>());
    const std::string decoded = tok.decode(expected_ids);
    const std::string decoded_skip = tok.decode(expected_ids, true);
    EXPECT_EQ(decoded, c["decode"].get<std::string>());
    EXPECT_EQ(decoded_skip, c["decode_skip_special_tokens"].get<std::string>());
    EXPECT_EQ(stream_decode(tok, expected_ids, false), decoded);
    EXPECT_EQ(stream_decode(tok, expected_ids, true), decoded_skip);
    passed += (ids == expected_ids && decoded == c["decode"] && decoded_skip == c["decode_skip_special_tokens"]);
  }
  std::printf("golden tokenizer cases passed: %d / %zu\n", passed, golden_cases().size());
}

TEST(Tokenizer, VocabularyLookups) {
  const BpeTokenizer& tok = qwen();
  EXPECT_EQ(tok.token_to_id("<|image_pad|>"), 151655);
  EXPECT_EQ(tok.token_to_id("<|im_end|>"), 151645);
  EXPECT_EQ(tok.token_to_id("<|im_start|>"), 151644);
  EXPECT_EQ(tok.token_to_id("<think>"), 151667);
  EXPECT_EQ(tok.token_to_id("Ġworld"), 1879);
  EXPECT_EQ(tok.token_to_id("no such token"), -1);
  EXPECT_EQ(tok.id_to_token(151655), "<|image_pad|>");
  EXPECT_EQ(tok.id_to_token(1879), "Ġworld");
  EXPECT_EQ(tok.vocab_size(), 151669);
  EXPECT_TRUE(tok.is_special(151645));
  EXPECT_FALSE(tok.is_special(151667));  // <think> is an added but not special token
  EXPECT_FALSE(tok.is_special(1879));
  EXPECT_FALSE(tok.is_special(-1));
  EXPECT_FALSE(tok.is_special(1 << 30));
}

TEST(Tokenizer, EmptyAndTrivialInputs) {
  const BpeTokenizer& tok = qwen();
  EXPECT_TRUE(tok.encode("").empty());
  EXPECT_EQ(tok.decode({}), "");
  EXPECT_EQ(tok.encode(std::string_view("a\0b", 3)).size(), 3u);  // NUL is an ordinary byte
  EXPECT_EQ(tok.decode(tok.encode(std::string_view("a\0b", 3))), std::string("a\0b", 3));
}

TEST(Tokenizer, InvalidUtf8IsRejectedWithOffset) {
  const BpeTokenizer& tok = qwen();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\xff", "offset 0"},                // never valid
      {"abc\xc3", "offset 3"},             // truncated two-byte sequence
      {"ab\xed\xa0\x80", "offset 2"},      // UTF-16 surrogate
      {"x\xc0\xaf", "offset 1"},           // overlong '/'
      {"ok \xf4\x90\x80\x80", "offset 3"}, // above U+10FFFF
      {"caf\xc3\xa9 \x80", "offset 6"},    // stray continuation byte after valid text
  };
  for (const auto& [text, fragment] : cases)
    expect_error([&] { tok.encode(text); }, ErrorKind::kInvalidArgument, {"UTF-8", fragment});
}

// Ids past the vocabulary (the model's padded embedding rows) decode to nothing, as in Hugging
// Face tokenizers; negative ids and lookups of unknown ids are errors.
TEST(Tokenizer, UnknownIds) {
  const BpeTokenizer& tok = qwen();
  expect_error([&] { tok.decode({1, -1}); }, ErrorKind::kInvalidArgument, {"-1"});
  EXPECT_EQ(tok.decode({151669}), "");
  EXPECT_EQ(tok.decode({tok.token_to_id("Hello"), 151935, tok.token_to_id("!")}), "Hello!");
  expect_error([&] { tok.id_to_token(200000); }, ErrorKind::kInvalidArgument, {"200000"});
  BpeTokenizer::StreamDecoder stream(tok);
  expect_error([&] { stream.put(-5); }, ErrorKind::kInvalidArgument, {"-5"});
  EXPECT_EQ(stream.put(151700), "");
  EXPECT_EQ(stream.put(tok.token_to_id("Hello")), "Hello");
}

// Ids of the single-byte tokens, so tests can produce any byte sequence on decode.
std::vector<int32_t> byte_ids(const BpeTokenizer& tok, const std::string& bytes) {
  std::vector<int32_t> ids;
  for (char c : bytes) ids.push_back(tok.token_to_id(byte_level::char_for_byte(static_cast<uint8_t>(c))));
  return ids;
}

TEST(Tokenizer, DecodeReplacesIllFormedBytesLikeFromUtf8Lossy) {
  const BpeTokenizer& tok = qwen();
  const std::string fffd = "\xEF\xBF\xBD";
  // One U+FFFD per maximal ill-formed subpart.
  EXPECT_EQ(tok.decode(byte_ids(tok, "a\xE4\xBD")), "a" + fffd);
  EXPECT_EQ(tok.decode(byte_ids(tok, "\xE4\xBD" "b")), fffd + "b");
  EXPECT_EQ(tok.decode(byte_ids(tok, "\xF0\x80\x80")), fffd + fffd + fffd);
  EXPECT_EQ(tok.decode(byte_ids(tok, "\xED\xA0\x80")), fffd + fffd + fffd);
  EXPECT_EQ(tok.decode(byte_ids(tok, "\xF0\x9F\x98")), fffd);
  EXPECT_EQ(tok.decode(byte_ids(tok, "\xC3\xA9\xFF")), "\xC3\xA9" + fffd);
}

TEST(Tokenizer, StreamDecoderMatchesDecodeOnArbitraryBytes) {
  const BpeTokenizer& tok = qwen();
  std::mt19937 rng(1234);
  // Bias towards bytes that start or continue multi-byte sequences.
  const std::string alphabet = "a \xC3\xA9\xE4\xBD\xA0\xF0\x9F\x98\x80\x80\xBF\xED\xF4\x90\xC0\xFF";
  for (int trial = 0; trial < 300; ++trial) {
    std::string bytes;
    const int length = 1 + static_cast<int>(rng() % 12);
    for (int i = 0; i < length; ++i) bytes.push_back(alphabet[rng() % alphabet.size()]);
    const std::vector<int32_t> ids = byte_ids(tok, bytes);
    SCOPED_TRACE(testing::PrintToString(bytes));
    EXPECT_EQ(stream_decode(tok, ids, false), tok.decode(ids));
  }
}

TEST(Tokenizer, StreamDecoderHoldsBackPartialCharacters) {
  const BpeTokenizer& tok = qwen();
  BpeTokenizer::StreamDecoder stream(tok);
  const std::vector<int32_t> ids = byte_ids(tok, "\xF0\x9F\x98\x80!");  // 😀!
  EXPECT_EQ(stream.put(ids[0]), "");
  EXPECT_EQ(stream.put(ids[1]), "");
  EXPECT_EQ(stream.put(ids[2]), "");
  EXPECT_EQ(stream.put(ids[3]), "\xF0\x9F\x98\x80");
  EXPECT_EQ(stream.put(ids[4]), "!");
  EXPECT_EQ(stream.flush(), "");
  EXPECT_EQ(stream.put(ids[0]), "");
  EXPECT_EQ(stream.flush(), "\xEF\xBF\xBD");  // a dangling lead byte, as decode shows it
  EXPECT_EQ(stream.flush(), "");
  BpeTokenizer::StreamDecoder skipping(tok, true);
  EXPECT_EQ(skipping.put(tok.token_to_id("<|im_end|>")), "");
  EXPECT_EQ(skipping.put(tok.token_to_id("<think>")), "<think>");  // not special: kept
}

TEST(Tokenizer, NfcNormalizationComposesCharacters) {
  const BpeTokenizer& tok = qwen();
  EXPECT_EQ(tok.encode("e\xCC\x81"), tok.encode("\xC3\xA9"));             // e + U+0301 == é
  EXPECT_EQ(tok.decode(tok.encode("Ange\xCC\x81lique")), "Ang\xC3\xA9lique");
  EXPECT_EQ(tok.encode("\xE1\x84\x80\xE1\x85\xA1"), tok.encode("\xEA\xB0\x80"));  // Hangul jamo -> 가
}

TEST(Tokenizer, SpecialTokensSplitBeforeNormalization) {
  const BpeTokenizer& tok = qwen();
  // A combining mark right after a special token stays a separate character, and special
  // token text glued to words is still matched.
  const std::vector<int32_t> ids = tok.encode("x<|im_end|>\xCC\x81y<|image_pad|><|image_pad|>");
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids[1], 151645);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 151655), 2);
  EXPECT_EQ(tok.decode(ids), "x<|im_end|>\xCC\x81y<|image_pad|><|image_pad|>");
  // Partial or malformed special-token text is ordinary text.
  const std::vector<int32_t> partial = tok.encode("<|im_end|");
  EXPECT_EQ(std::count(partial.begin(), partial.end(), 151645), 0);
  EXPECT_EQ(tok.decode(partial), "<|im_end|");
}

// A U+180E MONGOLIAN VOWEL SEPARATOR is not White_Space for the reference's regex engine.
TEST(Tokenizer, WhiteSpaceMeansUnicodeWhiteSpace) {
  RegexSplitter splitter(R"(\s+|\S+)", "test");
  std::vector<std::string_view> pieces;
  splitter.split("a\xE1\xA0\x8E" "b\xC2\xA0" "c", pieces);
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0], "a\xE1\xA0\x8E" "b");
  EXPECT_EQ(pieces[1], "\xC2\xA0");  // NO-BREAK SPACE is white space
  const std::string rewritten = with_explicit_white_space(R"([^\s\]]x\S(?!\S))");
  EXPECT_EQ(rewritten.find("\\s"), std::string::npos) << rewritten;
  EXPECT_EQ(rewritten.find("\\S"), std::string::npos) << rewritten;
  EXPECT_EQ(with_explicit_white_space(R"(a\\s)"), R"(a\\s)");  // an escaped backslash, then a plain 's'
  EXPECT_EQ(with_explicit_white_space(R"([]\s])").substr(0, 4), R"([]\t)");  // leading ']' is a member
}

// Reference BPE: repeatedly merge every occurrence of the best-ranked pair (GPT-2's loop).
std::vector<std::string> naive_bpe(const std::string& word, const std::map<std::pair<std::string, std::string>, size_t>& ranks) {
  std::vector<std::string> parts;
  for (char c : word) parts.push_back(byte_level::char_for_byte(static_cast<uint8_t>(c)));
  while (parts.size() > 1) {
    size_t best_rank = std::numeric_limits<size_t>::max();
    std::pair<std::string, std::string> best;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      const auto it = ranks.find({parts[i], parts[i + 1]});
      if (it != ranks.end() && it->second < best_rank) best_rank = it->second, best = it->first;
    }
    if (best_rank == std::numeric_limits<size_t>::max()) break;
    std::vector<std::string> merged;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (i + 1 < parts.size() && parts[i] == best.first && parts[i + 1] == best.second) {
        merged.push_back(parts[i] + parts[i + 1]);
        ++i;
      } else {
        merged.push_back(parts[i]);
      }
    }
    parts.swap(merged);
  }
  return parts;
}

TEST(Tokenizer, LongWordsMatchNaiveBpe) {
  const BpeTokenizer& tok = qwen();
  const Json file = Json::parse(test::read_file(tokenizer_path()));
  std::map<std::pair<std::string, std::string>, size_t> ranks;
  const Json& merges = file["model"]["merges"];
  for (size_t i = 0; i < merges.size(); ++i) ranks.emplace(std::make_pair(merges[i][0], merges[i][1]), i);

  std::mt19937 rng(7);
  const std::vector<std::string> syllables = {"an", "er", "in", "th", "tion", "ing", "e", "s", "qu", "x", "z", "ou"};
  for (int trial = 0; trial < 5; ++trial) {
    std::string word;  // letters only: the regex keeps it one word
    while (word.size() < 600) word += syllables[rng() % syllables.size()];
    std::vector<int32_t> expected;
    for (const std::string& part : naive_bpe(word, ranks)) expected.push_back(tok.token_to_id(part));
    EXPECT_EQ(tok.encode(word), expected);
  }
}

TEST(Tokenizer, LongInputsRoundTrip) {
  const BpeTokenizer& tok = qwen();
  std::string mixed;
  while (mixed.size() < 100 * 1024)
    for (const Json& c : golden_cases()) mixed += c["decode"].get<std::string>() + "\n";
  const std::vector<int32_t> ids = tok.encode(mixed);
  EXPECT_GT(ids.size(), mixed.size() / 8);
  EXPECT_EQ(tok.decode(ids), mixed);
  EXPECT_EQ(stream_decode(tok, ids, false), mixed);

  std::mt19937 rng(99);
  std::string one_word;  // 10 KB of letters, no space: a single pre-tokenized word
  while (one_word.size() < 10 * 1024) one_word.push_back(static_cast<char>('a' + rng() % 26));
  EXPECT_EQ(tok.decode(tok.encode(one_word)), one_word);

  std::string cjk_run;  // one long \p{L}+ word of multi-byte characters
  for (int i = 0; i < 3000; ++i) cjk_run += (i % 3 == 0) ? "\xE4\xBD\xA0" : (i % 3 == 1) ? "\xE5\xA5\xBD" : "\xE4\xB8\x96";
  EXPECT_EQ(tok.decode(tok.encode(cjk_run)), cjk_run);

  const std::string spaces(20000, ' '), newlines(5000, '\n'), punctuation(8000, '!');
  for (const std::string* s : {&spaces, &newlines, &punctuation}) EXPECT_EQ(tok.decode(tok.encode(*s)), *s);
}

TEST(Tokenizer, ConcurrentEncodeIsConsistent) {
  const BpeTokenizer& tok = qwen();
  std::vector<std::string> texts;
  for (const Json& c : golden_cases()) texts.push_back(c["text"]);
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round)
        for (size_t i = 0; i < texts.size(); ++i)
          failures[t] += tok.encode(texts[i]) != golden_cases()[i]["ids"].get<std::vector<int32_t>>();
    });
  for (auto& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

TEST(Tokenizer, LoadAndEncodeSpeed) {
  const auto start = std::chrono::steady_clock::now();
  const auto tok = BpeTokenizer::load(tokenizer_path());
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::printf("tokenizer.json load: %.0f ms\n", load_s * 1e3);

  // Varied text so most words are new to the cache: random syllable words, numbers, CJK, code.
  std::mt19937 rng(5);
  const std::vector<std::string> syllables = {"ka", "ri", "to", "sen", "gu", "mar", "el", "qu", "ix", "on", "ber", "st"};
  const std::vector<std::string> cjk = {"\xE4\xBD\xA0", "\xE5\xA5\xBD", "\xE4\xB8\x96", "\xE7\x95\x8C",
                                        "\xE5\xAD\xA6", "\xE4\xB9\xA0", "\xE6\x9C\xBA", "\xE5\x99\xA8"};
  std::string text;
  while (text.size() < 4 * 1024 * 1024) {
    const unsigned kind = rng() % 10;
    std::string word;
    if (kind < 6) {
      for (unsigned n = 1 + rng() % 4; n > 0; --n) word += syllables[rng() % syllables.size()];
    } else if (kind < 8) {
      for (unsigned n = 1 + rng() % 4; n > 0; --n) word += cjk[rng() % cjk.size()];
    } else if (kind == 8) {
      word = std::to_string(rng() % 100000);
    } else {
      word = "f(x[" + std::to_string(rng() % 10) + "]);\n";
    }
    text += word + " ";
  }
  for (const char* pass : {"cold cache", "warm cache"}) {
    const auto encode_start = std::chrono::steady_clock::now();
    const size_t tokens = tok->encode(text).size();
    const double encode_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - encode_start).count();
    std::printf("encode %.1f MB (%s): %zu tokens in %.0f ms = %.2f M tokens/s, %.1f MB/s\n", text.size() / 1e6, pass,
                tokens, encode_s * 1e3, tokens / encode_s / 1e6, text.size() / encode_s / 1e6);
  }
}

// ---- small synthetic tokenizer.json files ----

// Vocab: the 256 byte characters, then the merges' results. `merges` are pairs of token texts.
Json tiny_tokenizer(const std::vector<std::pair<std::string, std::string>>& merges, bool merges_as_strings) {
  Json vocab = Json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level::char_for_byte(static_cast<uint8_t>(b))] = b;
  Json merge_list = Json::array();
  for (const auto& [a, b] : merges) {
    if (!vocab.contains(a + b)) vocab[a + b] = static_cast<int>(vocab.size());
    merge_list.push_back(merges_as_strings ? Json(a + " " + b) : Json::array({a, b}));
  }
  return Json{
      {"added_tokens", Json::array()},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         Json::array({{{"type", "Split"}, {"pattern", {{"Regex", R"(\s+|[^\s]+)"}}}, {"behavior", "Isolated"}, {"invert", false}},
                      {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}}},
  };
}

std::unique_ptr<BpeTokenizer> from_json(const Json& json) { return BpeTokenizer::from_json_text(json.dump(), "test.json"); }

std::vector<std::string> token_texts(const BpeTokenizer& tok, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(tok.id_to_token(id));
  return out;
}

TEST(TokenizerJson, MergesAsStringsOrPairsAndRankOrder) {
  // "b c" outranks "a b", so "abc" -> a + bc, never ab + c.
  const std::vector<std::pair<std::string, std::string>> merges = {{"b", "c"}, {"a", "b"}, {"a", "bc"}, {"x", "x"}};
  for (bool as_strings : {true, false}) {
    const auto tok = from_json(tiny_tokenizer(merges, as_strings));
    EXPECT_EQ(token_texts(*tok, tok->encode("abc")), (std::vector<std::string>{"abc"}));
    EXPECT_EQ(token_texts(*tok, tok->encode("abd")), (std::vector<std::string>{"ab", "d"}));
    // Equal ranks: leftmost first, so three x's give xx + x.
    EXPECT_EQ(token_texts(*tok, tok->encode("xxx")), (std::vector<std::string>{"xx", "x"}));
    EXPECT_EQ(token_texts(*tok, tok->encode("a bc")), (std::vector<std::string>{"a", "Ġ", "bc"}));
  }
}

TEST(TokenizerJson, AddedTokenOptions) {
  Json json = tiny_tokenizer({}, true);
  json["added_tokens"] = Json::array({
      {{"id", 300}, {"content", "<m>"}, {"special", true}, {"normalized", false}, {"lstrip", true}, {"rstrip", true}},
      {{"id", 301}, {"content", "ony"}, {"special", false}, {"normalized", false}, {"single_word", true}},
      {{"id", 302}, {"content", "\xC3\xA9t\xC3\xA9"}, {"special", false}, {"normalized", true}},
      {{"id", 303}, {"content", "<m>x"}, {"special", false}, {"normalized", false}},
  });
  const auto tok = from_json(json);
  EXPECT_EQ(tok->vocab_size(), 304);
  // lstrip/rstrip swallow the surrounding spaces; the longest match wins ("<m>x").
  EXPECT_EQ(token_texts(*tok, tok->encode("a  <m> b<m>x")), (std::vector<std::string>{"a", "<m>", "b", "<m>x"}));
  // single_word: only when not glued to word characters.
  EXPECT_EQ(tok->encode("ony"), (std::vector<int32_t>{301}));
  EXPECT_EQ(tok->encode("ony!").front(), 301);
  const std::vector<int32_t> pony = tok->encode("pony");
  EXPECT_EQ(std::count(pony.begin(), pony.end(), 301), 0);
  // normalized: matched after NFC, so the decomposed spelling matches too.
  EXPECT_EQ(tok->encode("e\xCC\x81te\xCC\x81"), (std::vector<int32_t>{302}));
  EXPECT_EQ(tok->decode(tok->encode("a <m> b"), true), "ab");
  EXPECT_EQ(tok->decode(tok->encode("a <m> b"), false), "a<m>b");
  EXPECT_TRUE(tok->is_special(300));
  EXPECT_FALSE(tok->is_special(301));
}

TEST(AddedTokenMatcher, LeftmostLongestWithoutOverlap) {
  AddedToken ab{1, "ab"}, abc{2, "abc"}, bcd{3, "bcd"};
  AddedTokenMatcher matcher({ab, abc, bcd}, {"ab", "abc", "bcd"});
  std::vector<TextPiece> pieces;
  matcher.split("xabcd", pieces);
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0].text, "x");
  EXPECT_EQ(pieces[1].added_id, 2);  // "abc" (longest at the leftmost start), not "bcd"
  EXPECT_EQ(pieces[2].text, "d");
}

TEST(TokenizerJson, MalformedFilesAreClearErrors) {
  const Json good = tiny_tokenizer({{"a", "b"}}, true);
  const auto with = [&](auto edit) {
    Json j = good;
    edit(j);
    return j.dump();
  };
  const auto load_text = [](const std::string& text) { BpeTokenizer::from_json_text(text, "bad.json"); };
  expect_error([&] { load_text("{\"model\": "); }, ErrorKind::kInvalidFile, {"bad.json", "malformed JSON"});
  expect_error([&] { load_text("[1, 2]"); }, ErrorKind::kInvalidFile, {"bad.json"});
  expect_error([&] { load_text(with([](Json& j) { j.erase("model"); })); }, ErrorKind::kInvalidFile, {"'model'"});
  expect_error([&] { load_text(with([](Json& j) { j["model"].erase("vocab"); })); }, ErrorKind::kInvalidFile, {"'vocab'"});
  expect_error([&] { load_text(with([](Json& j) { j["model"].erase("merges"); })); }, ErrorKind::kInvalidFile, {"'merges'"});
  expect_error([&] { load_text(with([](Json& j) { j["model"]["vocab"] = Json::array(); })); }, ErrorKind::kInvalidFile,
               {"vocab"});
  expect_error([&] { load_text(with([](Json& j) { j["model"]["vocab"]["a"] = "zero"; })); }, ErrorKind::kInvalidFile,
               {"bad id"});
  expect_error([&] { load_text(with([](Json& j) { j["model"]["type"] = "WordPiece"; })); }, ErrorKind::kUnsupported,
               {"WordPiece"});
  expect_error([&] { load_text(with([](Json& j) { j["model"]["merges"] = Json::array({"a"}); })); },
               ErrorKind::kInvalidFile, {"merge #0"});
  expect_error([&] { load_text(with([](Json& j) { j["model"]["merges"] = Json::array({"a q\xE2\x82\xAC"}); })); },
               ErrorKind::kInvalidFile, {"not in the vocab"});
  expect_error([&] { load_text(with([](Json& j) { j["model"]["merges"] = Json::array({Json::array({1, 2})}); })); },
               ErrorKind::kInvalidFile, {"merge #0"});
  expect_error([&] { load_text(with([](Json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; })); },
               ErrorKind::kUnsupported, {"Whitespace"});
  expect_error([&] { load_text(with([](Json& j) { j["pre_tokenizer"] = nullptr; })); }, ErrorKind::kUnsupported,
               {"ByteLevel"});
  expect_error(
      [&] { load_text(with([](Json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed"; })); },
      ErrorKind::kInvalidFile, {"regex"});
  expect_error([&] { load_text(with([](Json& j) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed"; })); },
               ErrorKind::kUnsupported, {"Removed"});
  expect_error([&] { load_text(with([](Json& j) { j["normalizer"] = {{"type", "Lowercase"}}; })); },
               ErrorKind::kUnsupported, {"Lowercase"});
  expect_error([&] { load_text(with([](Json& j) { j["decoder"] = {{"type", "WordPiece"}}; })); }, ErrorKind::kUnsupported,
               {"decoder"});
  expect_error([&] { load_text(with([](Json& j) { j["added_tokens"] = Json::array({{{"content", "<x>"}}}); })); },
               ErrorKind::kInvalidFile, {"added_tokens[0]", "'id'"});
  expect_error([&] { load_text(with([](Json& j) { j["added_tokens"] = Json::array({{{"id", 1}, {"content", 5}}}); })); },
               ErrorKind::kInvalidFile, {"content"});
  expect_error([&] { load_text(with([](Json& j) { j["added_tokens"] = "nope"; })); }, ErrorKind::kInvalidFile,
               {"added_tokens"});
  expect_error([&] { BpeTokenizer::load(test::temp_dir() + "/missing/tokenizer.json"); }, ErrorKind::kNotFound,
               {"tokenizer.json"});
}

}  // namespace
}  // namespace qvl
