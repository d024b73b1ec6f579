// Stop strings are matched on the decoded text of everything generated so far, so one that spans
// tokens, and one whose multi-byte characters are split over several tokens, stop generation at
// the token that completes them.
//
//  * On the bundled tiny model the stop string is taken from its own greedy output (the last
//    character of one token and the first of the next), so the case holds whatever that output is.
//  * Random weights almost never split a character over tokens, so the multi-byte cases use a
//    copy of the tiny model whose text decoder is rewired to write a fixed byte sequence, one
//    byte-level token per byte: the layers' outputs are zeroed, so the logits after token t are
//    embed · norm(embed[t]), and the embedding rows of the chain are set so that each token's
//    best successor is the next one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "qvl/qvl.hpp"
#include "test_util.h"
#include "tokenizer/byte_level.h"

namespace qvl {
namespace {

constexpr const char* kReplacement = "\xEF\xBF\xBD";  // U+FFFD: what a token ending mid-character decodes to

std::shared_ptr<Model> load(const std::string& dir) {
  ModelOptions o;
  o.threads = 2;
  o.context_length = 256;
  return Model::load(dir, o);
}

struct Generated {
  std::vector<int32_t> ids;
  std::string stop_reason;
};

Generated generate(const std::shared_ptr<Model>& model, const std::vector<int32_t>& prompt, int64_t max_new_tokens,
                   std::vector<std::string> stop = {}) {
  GeneratorParams p;
  p.max_new_tokens = max_new_tokens;
  p.stop_at_eos = false;
  p.stop = std::move(stop);
  Generator g(model, p);
  g.append_tokens(prompt);
  Generated r;
  while (!g.is_done()) {
    g.generate_next_token();
    r.ids.push_back(g.next_token());
  }
  r.stop_reason = g.stop_reason();
  return r;
}

size_t utf8_length(char lead) {
  const auto b = static_cast<unsigned char>(lead);
  return b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
}

TEST(StopStrings, StopStringSpanningTwoTokensOfTheGreedyOutput) {
  const std::shared_ptr<Model> model = load(test::tiny_model_dir());
  const Tokenizer tokenizer(model);
  const std::vector<int32_t> prompt = tokenizer.encode("Write a short poem about the sea.");
  const Generated greedy = generate(model, prompt, 64);
  ASSERT_EQ(greedy.stop_reason, "length");
  const size_t usable = greedy.ids.size();
  const auto text = [&](size_t n) {
    return tokenizer.decode(std::vector<int32_t>(greedy.ids.begin(), greedy.ids.begin() + n), true);
  };
  for (size_t i = 0; i + 1 < usable; ++i) {
    const std::string first = tokenizer.decode({greedy.ids[i]}, true);
    const std::string second = tokenizer.decode({greedy.ids[i + 1]}, true);
    if (first.empty() || second.empty() || first.find(kReplacement) != std::string::npos ||
        second.find(kReplacement) != std::string::npos)
      continue;
    size_t last = first.size() - 1;  // start of the last character of token i
    while (last > 0 && (static_cast<unsigned char>(first[last]) & 0xC0) == 0x80) --last;
    const std::string stop = first.substr(last) + second.substr(0, utf8_length(second[0]));
    if (text(i + 1).find(stop) != std::string::npos) continue;  // already there before token i + 1
    SCOPED_TRACE("stop string '" + stop + "' over tokens " + std::to_string(i) + " and " + std::to_string(i + 1));
    const Generated stopped = generate(model, prompt, 64, {stop});
    EXPECT_EQ(stopped.stop_reason, "stop");
    EXPECT_EQ(stopped.ids, std::vector<int32_t>(greedy.ids.begin(), greedy.ids.begin() + i + 2));
    return;
  }
  FAIL() << "the greedy output has no two neighbouring tokens of whole characters";
}

// A copy of the tiny model that, given chain[0], writes chain[1], chain[2], ... and then repeats
// the last token. Token chain[k]'s embedding is r_k (e_k + e_(k+1)) / sqrt(2) in the basis e_i of
// the hidden space, with r_k growing 3x per step: after it, chain[k+1] scores 4 r_(k+1) = 12 r_k,
// itself 8 r_k, chain[k-1] 4 r_(k-1) and the random rows a few units.
std::string chain_model(const std::string& name, const std::vector<int32_t>& chain) {
  return test::altered_tiny_model(name, [&](const test::Bf16Weights& weight) {
    for (int layer = 0; layer < 3; ++layer)
      for (const char* proj : {"self_attn.o_proj", "mlp.down_proj"}) {
        const std::string tensor = "model.language_model.layers." + std::to_string(layer) + "." + proj + ".weight";
        const std::span<uint16_t> w = weight(tensor);
        std::fill(w.begin(), w.end(), uint16_t(0));
      }
    const std::span<uint16_t> norm = weight("model.language_model.norm.weight");
    std::fill(norm.begin(), norm.end(), f32_to_bf16(1.0f));
    const size_t hidden = norm.size();
    const std::span<uint16_t> embed = weight("model.language_model.embed_tokens.weight");
    float r = 16.0f;
    for (size_t k = 0; k < chain.size(); ++k, r *= 3.0f) {
      const std::span<uint16_t> row = embed.subspan(static_cast<size_t>(chain[k]) * hidden, hidden);
      std::fill(row.begin(), row.end(), uint16_t(0));
      row[k] = row[k + 1] = f32_to_bf16(r / std::sqrt(2.0f));
    }
  });
}

// The chain model of the prompt "x": it writes one token per byte of "你éyz" (你 = E4 BD A0,
// é = C3 A9), then "z" again.
struct Chain {
  std::shared_ptr<Model> model;
  std::vector<int32_t> prompt;
};

const Chain& chain() {
  static const Chain c = [] {
    const Tokenizer tokenizer(load(test::tiny_model_dir()));
    std::vector<int32_t> ids;
    for (char byte : std::string("x\xE4\xBD\xA0\xC3\xA9yz")) {
      ids.push_back(tokenizer.token_to_id(byte_level::char_for_byte(static_cast<uint8_t>(byte))));
      if (ids.back() < 0) throw std::runtime_error("no byte-level token for a byte of the chain");
    }
    return Chain{load(chain_model("stop_strings_chain", ids)), {ids[0]}};
  }();
  return c;
}

Generated run_chain(std::vector<std::string> stop) {
  return generate(chain().model, chain().prompt, 10, std::move(stop));
}

TEST(ChainModel, WritesItsByteSequence) {
  const Generated r = run_chain({});
  EXPECT_EQ(r.stop_reason, "length");
  const Tokenizer tokenizer(chain().model);
  EXPECT_EQ(tokenizer.decode(r.ids, true), "\xE4\xBD\xA0\xC3\xA9yzzzz");
  // Each token alone is a fragment of a character: per-token decoding would see only U+FFFD.
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(tokenizer.decode({r.ids[i]}, true), kReplacement) << i;
}

TEST(ChainModel, MultiByteStopStringsSplitAcrossTokensAreHonoured) {
  const struct {
    const char* stop;
    size_t tokens;  // generated when it stops
  } cases[] = {
      {"\xE4\xBD\xA0", 3},          // 你: three byte tokens
      {"\xC3\xA9", 5},              // é: two byte tokens
      {"\xE4\xBD\xA0\xC3\xA9", 5},  // 你é: five byte tokens
      {"\xC3\xA9y", 6},             // éy: a split character, then a whole one
      {"yz", 7},                    // two whole one-byte tokens
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.stop);
    const Generated r = run_chain({c.stop});
    EXPECT_EQ(r.stop_reason, "stop");
    EXPECT_EQ(r.ids.size(), c.tokens);
  }
  // Stop strings that never appear in the text do not stop it, even though they share bytes
  // with it; the first of several stop strings to appear stops it.
  EXPECT_EQ(run_chain({"\xE4\xBD\xA0\xE5\xA5\xBD", "\xC3\xA8"}).stop_reason, "length");
  const Generated first = run_chain({"yz", "\xE4\xBD\xA0"});
  EXPECT_EQ(first.stop_reason, "stop");
  EXPECT_EQ(first.ids.size(), 3u);
}

// Streaming through a TokenizerStream made with the stop strings never shows one: the streamed
// text is the full greedy text cut before the first stop, and the stream and the generator agree
// that generation stopped there.
TEST(StopStrings, StreamMadeWithStopStringsNeverEmitsThem) {
  const std::shared_ptr<Model> model = load(test::tiny_model_dir());
  const Tokenizer tokenizer(model);
  const std::vector<int32_t> prompt = tokenizer.encode("Write a short poem about the sea.");
  const Generated greedy = generate(model, prompt, 48);
  const std::string full = tokenizer.decode(greedy.ids, true);
  ASSERT_GT(full.size(), 12u);
  for (size_t at : {full.size() / 3, full.size() / 2}) {
    const std::string stop = full.substr(at, 2);
    GeneratorParams p;
    p.max_new_tokens = 48;
    p.stop_at_eos = false;
    p.stop = {stop};
    Generator g(model, p);
    g.append_tokens(prompt);
    TokenizerStream stream = tokenizer.create_stream(p.stop);
    std::string streamed;
    while (!g.is_done()) {
      g.generate_next_token();
      const std::string piece = stream.decode(g.next_token());
      EXPECT_EQ(piece.find(stop), std::string::npos);
      streamed += piece;
    }
    streamed += stream.flush();
    EXPECT_EQ(g.stop_reason(), "stop");
    EXPECT_TRUE(stream.stopped());
    EXPECT_EQ(streamed, full.substr(0, full.find(stop))) << "stop '" << stop << "'";
  }
}

}  // namespace
}  // namespace qvl
