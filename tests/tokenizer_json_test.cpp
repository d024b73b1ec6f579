// The fast tokenizer.json reader (tokenizer/tokenizer_json.h): it must read exactly what a full
// nlohmann::json parse reads, take only documents nlohmann accepts, and the tokenizer built from
// it must equal the one built from the full parse (on the real Qwen3 tokenizer and on synthetic
// files with escapes, duplicates and both merge forms).
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_json.h"
#include "test_util.h"

namespace qvl {
namespace {

using Json = nlohmann::json;

// What a full parse finds, in the reader's terms: the document without vocab and merges, the
// vocab as a map, the merges as JSON items.
struct FullParse {
  Json root;
  std::map<std::string, int64_t> vocab;
  Json merges;
};

FullParse full_parse(const std::string& text) {
  FullParse full{Json::parse(text), {}, {}};
  Json& model = full.root["model"];
  for (const auto& [token, id] : model["vocab"].items()) full.vocab[token] = id.get<int64_t>();
  full.merges = model["merges"];
  model.erase("vocab");
  model.erase("merges");
  return full;
}

// The reader takes `text`, and what it read equals the full parse.
void expect_read_like_full_parse(const std::string& text) {
  SCOPED_TRACE(text.size() < 2000 ? text : text.substr(0, 200) + "...");
  TokenizerJsonParts parts;
  ASSERT_TRUE(read_tokenizer_json_fast(text, "test.json", parts));
  const FullParse full = full_parse(text);
  EXPECT_EQ(parts.root, full.root);
  std::map<std::string, int64_t> vocab;
  for (const BpeSource::VocabEntry& entry : parts.source.vocab) vocab[std::string(entry.token)] = entry.id;  // last wins
  EXPECT_EQ(vocab, full.vocab);
  ASSERT_EQ(parts.source.merges.size(), full.merges.size());
  for (size_t i = 0; i < parts.source.merges.size(); ++i) {
    const BpeSource::MergeEntry& merge = parts.source.merges[i];
    ASSERT_NE(merge.kind, BpeSource::MergeEntry::Kind::kMalformed);
    const Json item = merge.kind == BpeSource::MergeEntry::Kind::kLine
                          ? Json(std::string(merge.first))
                          : Json::array({std::string(merge.first), std::string(merge.second)});
    EXPECT_EQ(item, full.merges[i]) << "merge #" << i;
  }
}

// Same vocabulary, same special flags, same ids and decodings for `texts`.
void expect_same_tokenizer(const BpeTokenizer& a, const BpeTokenizer& b, const std::vector<std::string>& texts) {
  ASSERT_EQ(a.vocab_size(), b.vocab_size());
  for (int32_t id = 0; id < a.vocab_size(); ++id) {
    std::string token_a = "<none>", token_b = "<none>";
    try {
      token_a = a.id_to_token(id);
    } catch (const Error&) {
    }
    try {
      token_b = b.id_to_token(id);
    } catch (const Error&) {
    }
    ASSERT_EQ(token_a, token_b) << "id " << id;
    ASSERT_EQ(a.is_special(id), b.is_special(id)) << "id " << id;
    if (token_a != "<none>") {
      ASSERT_EQ(a.token_to_id(token_a), b.token_to_id(token_a)) << token_a;
    }
    ASSERT_EQ(a.decode({id}), b.decode({id})) << "id " << id;
  }
  for (const std::string& text : texts) EXPECT_EQ(a.encode(text), b.encode(text)) << text;
}

// A small tokenizer.json whose tokens need escapes: quotes, backslash, slash, control characters,
// non-ASCII (which an ASCII dump writes as \u escapes, emoji as surrogate pairs).
Json escaped_tokenizer() {
  Json vocab = Json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level::char_for_byte(static_cast<uint8_t>(b))] = b;
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"\"", "\\"}, {"/", "a"}, {"Ã", "©"}, {"ð", "Ł"}, {"ðŁ", "ĺ"}, {"ðŁĺ", "Ģ"}, {"a", "b"}, {"ab", "c"}};
  Json merge_list = Json::array();
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto& [left, right] = merges[i];
    if (!vocab.contains(left + right)) vocab[left + right] = static_cast<int>(vocab.size());
    // Both forms, mixed.
    merge_list.push_back(i % 2 ? Json(left + " " + right) : Json::array({left, right}));
  }
  vocab["tab\there\nnew\u0001line"] = 400;  // a token with control characters (written escaped)
  // The pipeline around the model (normalizer, pre-tokenizer, decoder) is the real Qwen3 one.
  static const Json pipeline = [] {
    Json qwen = Json::parse(test::read_file(test::tiny_model_dir() + "/tokenizer.json"));
    qwen.erase("model");
    return qwen;
  }();
  Json json = pipeline;
  json["added_tokens"] =
      Json::array({{{"id", 500}, {"content", "<|x|>"}, {"special", true}, {"normalized", false}},
                   {{"id", 501}, {"content", "caf\xC3\xA9"}, {"special", false}, {"normalized", true}}});
  json["model"] = {{"type", "BPE"}, {"dropout", nullptr}, {"fuse_unk", false}, {"vocab", vocab},
                   {"merges", merge_list}, {"ignore_merges", false}};
  return json;
}

const std::vector<std::string> kSampleTexts = {
    "abc \"\\ /a caf\xC3\xA9 \xF0\x9F\x98\x80!", "<|x|>cafe\xCC\x81 abcabc", "", " \n\t ", "\xC3\xA9\xC3\xA9 //"};

TEST(TokenizerJsonReader, RealQwenTokenizerTakesTheFastPathAndMatchesTheFullParse) {
  const std::string text = test::read_file(test::tiny_model_dir() + "/tokenizer.json");
  TokenizerJsonParts parts;
  ASSERT_TRUE(read_tokenizer_json_fast(text, "tokenizer.json", parts));
  EXPECT_EQ(parts.source.vocab.size(), 151643u);
  EXPECT_EQ(parts.source.merges.size(), 151387u);
  expect_read_like_full_parse(text);

  const auto fast = BpeTokenizer::from_json_text(text, "tokenizer.json");
  const auto full = BpeTokenizer::from_parsed_json(Json::parse(text), "tokenizer.json");
  std::vector<std::string> texts = kSampleTexts;
  const Json cases = Json::parse(test::read_file(test::golden_dir() + "/tokenizer_cases.json"))["cases"];
  for (const Json& c : cases) {
    texts.push_back(c["text"].get<std::string>());
    EXPECT_EQ(fast->encode(texts.back()), c["ids"].get<std::vector<int32_t>>()) << texts.back();
  }
  expect_same_tokenizer(*fast, *full, texts);
}

TEST(TokenizerJsonReader, EscapesAndBothMergeFormsReadLikeTheFullParse) {
  const Json json = escaped_tokenizer();
  // Compact UTF-8, pretty-printed, and all-ASCII with \u escapes (surrogate pairs for emoji).
  for (const std::string& text : {json.dump(), json.dump(2), json.dump(-1, ' ', true), json.dump(4, ' ', true)}) {
    expect_read_like_full_parse(text);
    expect_same_tokenizer(*BpeTokenizer::from_json_text(text, "test.json"),
                          *BpeTokenizer::from_parsed_json(Json::parse(text), "test.json"), kSampleTexts);
  }
  const auto tok = BpeTokenizer::from_json_text(json.dump(-1, ' ', true), "test.json");
  EXPECT_EQ(tok->id_to_token(400), "tab\there\nnew\u0001line");
  EXPECT_EQ(tok->decode(tok->encode("\xF0\x9F\x98\x80")), "\xF0\x9F\x98\x80");
  EXPECT_EQ(tok->encode("\xF0\x9F\x98\x80").size(), 1u);  // the emoji merges down to one token
}

TEST(TokenizerJsonReader, RepeatedKeysAndIdsResolveLikeTheFullParse) {
  // A repeated vocab key keeps its last id (as nlohmann's object does); a repeated id keeps the
  // smaller token text on both paths; repeated top-level keys other than "model" keep the last.
  const std::string text = escaped_tokenizer().dump();
  const std::string vocab_start = "\"vocab\":{";
  std::string edited = text;
  edited.insert(edited.find(vocab_start) + vocab_start.size(), R"("zz":7,"zz":300,"yy":300,)");
  edited.insert(1, R"("decoder":{"type":"WordPiece"},)");  // replaced by the later, valid decoder
  expect_read_like_full_parse(edited);
  const auto fast = BpeTokenizer::from_json_text(edited, "test.json");
  const auto full = BpeTokenizer::from_parsed_json(Json::parse(edited), "test.json");
  expect_same_tokenizer(*fast, *full, kSampleTexts);
  EXPECT_EQ(fast->token_to_id("zz"), 300);
  EXPECT_EQ(fast->id_to_token(300), "yy");
}

TEST(TokenizerJsonReader, DocumentsItDeclinesStillLoadThroughTheFullParse) {
  const std::string text = escaped_tokenizer().dump();
  const std::string model_key = "\"model\":";
  const std::string with_bom = "\xEF\xBB\xBF" + text;                                   // nlohmann skips a BOM
  std::string two_models = text;
  two_models.insert(1, R"("model":{"type":"WordPiece"},)");                             // the later one counts
  std::string deep = text;
  deep.insert(1, "\"deep\":" + std::string(100, '[') + std::string(100, ']') + ",");  // past the reader's depth
  std::string id_as_float = text;
  id_as_float.insert(text.find("\"vocab\":{") + 9, R"("zz":1.5e2,)");                  // not an id: an error
  for (const std::string& declined : {with_bom, two_models, deep}) {
    TokenizerJsonParts parts;
    EXPECT_FALSE(read_tokenizer_json_fast(declined, "test.json", parts));
    expect_same_tokenizer(*BpeTokenizer::from_json_text(declined, "test.json"),
                          *BpeTokenizer::from_parsed_json(Json::parse(declined), "test.json"), kSampleTexts);
  }
  TokenizerJsonParts parts;
  EXPECT_FALSE(read_tokenizer_json_fast(id_as_float, "test.json", parts));
  test::expect_error([&] { BpeTokenizer::from_json_text(id_as_float, "bad.json"); }, ErrorKind::kInvalidFile,
                     {"bad.json", "vocab entry 'zz' has a bad id 150.0"});
}

TEST(TokenizerJsonReader, DeclinesMalformedJsonAndUnusualValues) {
  const std::string good = R"({"model":{"vocab":{"a":0,"b":1,"ab":2},"merges":["a b",["a","b"]]}})";
  ASSERT_TRUE(Json::accept(good));
  const std::vector<std::string> bad = {
      R"({"model":{"vocab":{"a":01},"merges":[]}})",                    // leading zero
      R"({"model":{"vocab":{"a":-1},"merges":[]}})",                    // (valid JSON, but no id: declined)
      R"({"model":{"vocab":{"a":0,},"merges":[]}})",                    // trailing comma
      R"({"model":{"vocab":{"a":0},"merges":["a b",]}})",
      R"({"model":{"vocab":{"a":0},"merges":[]}} x)",                   // trailing text
      R"({"model":{"vocab":{"a":0},"merges":[]})",                      // unclosed
      "{\"model\":{\"vocab\":{\"a\x01\":0},\"merges\":[]}}",            // raw control character
      "{\"model\":{\"vocab\":{\"a\xC3\":0},\"merges\":[]}}",            // truncated UTF-8
      "{\"model\":{\"vocab\":{\"\xED\xA0\x80\":0},\"merges\":[]}}",     // an encoded surrogate
      "{\"model\":{\"vocab\":{\"\xC0\xAF\":0},\"merges\":[]}}",         // overlong
      R"({"model":{"vocab":{"\ud800":0},"merges":[]}})",                // lone high surrogate
      R"({"model":{"vocab":{"\udc00":0},"merges":[]}})",                // lone low surrogate
      R"({"model":{"vocab":{"\ud800\u0041":0},"merges":[]}})",          // high surrogate, no low one
      R"({"model":{"vocab":{"\x41":0},"merges":[]}})",                  // no such escape
      R"({"model":{"vocab":{"\u00G1":0},"merges":[]}})",
      R"({"model":{"vocab":{"a":0},"merges":[["a"]]}})",                // (valid JSON; a bad merge: declined)
      R"({"model":{"vocab":{"a":0},"merges":[]},"x":tru})",             // skipped values are checked too
      R"({"model":{"vocab":{"a":0},"merges":[]},"x":"a)" "\x01" R"("})",
      R"({"model":{"vocab":{"a":0},"merges":[],"dropout":1e999}})",     // a number nlohmann cannot hold
  };
  for (const std::string& text : bad) {
    TokenizerJsonParts parts;
    EXPECT_FALSE(read_tokenizer_json_fast(text, "test.json", parts)) << text;
  }
}

TEST(TokenizerJsonReader, MutatedDocumentsAreReadLikeTheFullParseOrDeclined) {
  // Every document the reader takes must be one nlohmann accepts, read the same way: random byte
  // edits of a small tokenizer.json at the characters that matter to JSON and UTF-8.
  const std::string base = R"({"added_tokens":[{"id":3,"content":"<\u00e9>"}],"model":{"type":"BPE",)"
                           R"("vocab":{"a":0,"b":1,"ab":2,"\u00e9\ud83d\ude00":10,"x\"y":11},)"
                           R"("merges":["a b",["a","b"]],"fuse_unk":false},"decoder":{"type":"ByteLevel"}})";
  ASSERT_TRUE(Json::accept(base));
  std::string alphabet = "\"\\{}[],: 0123456789eE.-+uUdDaftn\x01\x7F\x80\xBF\xC3\xED\xF4\xFF";
  alphabet.push_back('\0');
  std::mt19937 rng(7);
  int taken = 0, declined = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string text = base;
    for (int edits = 1 + static_cast<int>(rng() % 3); edits > 0; --edits) {
      const size_t pos = rng() % text.size();
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0: text[pos] = c; break;
        case 1: text.insert(text.begin() + static_cast<std::ptrdiff_t>(pos), c); break;
        default: text.erase(pos, 1); break;
      }
    }
    TokenizerJsonParts parts;
    if (!read_tokenizer_json_fast(text, "test.json", parts)) {
      ++declined;
      continue;
    }
    ++taken;
    ASSERT_TRUE(Json::accept(text)) << "taken but not JSON: " << text;
    expect_read_like_full_parse(text);
    if (testing::Test::HasFailure()) break;
  }
  // Both outcomes happen often, so the test exercises both.
  EXPECT_GT(taken, 1000);
  EXPECT_GT(declined, 1000);
}

}  // namespace
}  // namespace qvl
