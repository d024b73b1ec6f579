// The batching engine on the tiny checkpoint. Every sequence must get, token for token, what a
// Generator gives it alone, whatever runs beside it: text and image prompts of different
// lengths, greedy and seeded sampling, prefill chunks beside decode rows, random admit /
// retire / cancel schedules. The weights are quantized at load (q8_0): the int8 matmul's rows do
// not depend on how many rows it multiplies, so "alone" and "together" are bit-identical.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <map>
#include <random>
#include <thread>

#include "qvl/engine.hpp"
#include "qvl/qvl.hpp"
#include "test_util.h"

namespace qvl {
namespace {

std::shared_ptr<Model> tiny(int64_t context = 2048) { return test::tiny_model(context, "q8_0"); }

std::string image_path(const std::string& name) { return test::golden_dir() + "/images/" + name; }

struct Case {
  ProcessedInputs inputs;
  GeneratorParams params;
};

struct Outcome {
  std::vector<int32_t> tokens;  // reported tokens (an EOS is not reported)
  std::string text;
  std::string reason;
  bool context_full = false;
  RequestStats stats;
  std::string error;
  int finished_events = 0;
};

GeneratorParams params_of(int64_t n, bool sample, uint64_t seed, bool eos = false) {
  GeneratorParams p;
  p.max_new_tokens = n;
  p.stop_at_eos = eos;
  p.do_sample = sample;
  p.temperature = 0.9f;
  p.top_k = sample ? 40 : 0;
  p.seed = seed;
  return p;
}

// The reference: one Generator, alone, decoding with the public API.
Outcome alone(const std::shared_ptr<Model>& model, const Case& c) {
  Generator g(model, c.params);
  Tokenizer tok(model);
  TokenizerStream stream = tok.create_stream();
  g.append_inputs(c.inputs);
  Outcome o;
  const auto& eos = model->info().eos_token_ids;
  while (!g.is_done()) {
    g.generate_next_token();
    const int32_t t = g.next_token();
    if (c.params.stop_at_eos && std::find(eos.begin(), eos.end(), t) != eos.end()) break;
    o.tokens.push_back(t);
    o.text += stream.decode(t);
  }
  o.text += stream.flush();
  o.reason = g.stop_reason();
  return o;
}

std::vector<Case> mixed_cases(const std::shared_ptr<Model>& model) {
  Processor p(model);
  const Image b = load_image_file(image_path("b_320x256.png"));
  const Image c1 = load_image_file(image_path("c1_256x192.png"));
  return {
      {p.process_prompt("Hello there, how are you today?"), params_of(9, false, 0)},
      {p.process_prompt("Describe the picture.", {b}), params_of(7, true, 11)},
      {p.process_prompt("Count from one to twenty, slowly and carefully, please.", {}, "You are terse."),
       params_of(12, true, 5)},
      {p.process_prompt("Compare <image> with <image>.", {c1, b}), params_of(6, false, 0)},
      {p.process_prompt("Hi"), params_of(15, true, 99)},
  };
}

// Submits cases to a stepping engine and collects what each reports.
struct Collector {
  std::map<RequestId, Outcome> out;
  std::mutex mutex;
  RequestCallback callback() {
    return [this](const RequestEvent& e) {
      std::lock_guard<std::mutex> lock(mutex);
      Outcome& o = out[e.id];
      if (e.token >= 0) o.tokens.push_back(e.token);
      o.text += e.text;
      if (e.finished) {
        o.reason = e.finish_reason;
        o.context_full = e.context_full;
        o.stats = e.stats;
        o.error = e.error;
        ++o.finished_events;
      }
    };
  }
};

TEST(Engine, SequencesTogetherGetWhatTheyGetAlone) {
  auto model = tiny();
  const auto cases = mixed_cases(model);
  std::vector<Outcome> expected;
  for (const auto& c : cases) expected.push_back(alone(model, c));

  for (int64_t step_tokens : {4, 16, 256}) {
    EngineOptions o;
    o.background_thread = false;
    o.max_step_tokens = step_tokens;  // 4: prompts prefill in many chunks beside decode rows
    o.keep_finished = 0;              // no prefix reuse here: every prompt is evaluated
    Engine engine(model, o);
    Collector col;
    std::vector<RequestId> ids;
    for (const auto& c : cases) ids.push_back(engine.submit(c.inputs, c.params, col.callback()));
    engine.wait_idle();
    for (size_t i = 0; i < cases.size(); ++i) {
      const Outcome& got = col.out[ids[i]];
      EXPECT_EQ(got.tokens, expected[i].tokens) << "case " << i << ", step tokens " << step_tokens;
      EXPECT_EQ(got.text, expected[i].text) << "case " << i;
      EXPECT_EQ(got.reason, expected[i].reason) << "case " << i;
      EXPECT_EQ(got.finished_events, 1);
      EXPECT_EQ(got.stats.cached_tokens, 0);
    }
    EXPECT_EQ(engine.stats().running, 0);
    EXPECT_EQ(engine.stats().kv_reserved_tokens, 0);
  }
}

// 100 random schedules: requests arrive at random steps, some are cancelled at random steps,
// at most 3 run at once. Every request that is not cancelled gets its alone tokens; every one
// reports exactly one finished event; the KV budget is whole again at the end.
TEST(Engine, RandomAdmitRetireCancelSchedules) {
  auto model = tiny();
  Processor p(model);
  std::vector<Case> pool = {
      {p.process_prompt("One two three"), params_of(5, false, 0)},
      {p.process_prompt("The quick brown fox jumps over the lazy dog."), params_of(4, true, 3)},
      {p.process_prompt("Why?", {}, "Answer briefly."), params_of(6, true, 8)},
      {p.process_prompt("A much longer prompt, so that its prefill takes several chunks of the step budget."),
       params_of(3, false, 0)},
  };
  std::vector<Outcome> expected;
  for (const auto& c : pool) expected.push_back(alone(model, c));

  std::mt19937 rng(2024);
  for (int schedule = 0; schedule < 100; ++schedule) {
    EngineOptions o;
    o.background_thread = false;
    o.max_sequences = 3;
    o.max_step_tokens = 1 + static_cast<int64_t>(rng() % 24);
    o.keep_finished = static_cast<int>(rng() % 3);  // prefix reuse on and off
    Engine engine(model, o);
    Collector col;
    struct Planned {
      int at_step;
      size_t which;
      int cancel_at;  // -1: never
    };
    std::vector<Planned> plan;
    const int n = 2 + static_cast<int>(rng() % 5);
    for (int i = 0; i < n; ++i)
      plan.push_back({static_cast<int>(rng() % 12), rng() % pool.size(),
                      rng() % 4 == 0 ? static_cast<int>(rng() % 15) : -1});
    std::map<RequestId, size_t> which;
    std::map<RequestId, int> cancel_at;
    for (int stepno = 0; stepno < 200; ++stepno) {
      for (const auto& pl : plan)
        if (pl.at_step == stepno) {
          const RequestId id = engine.submit(pool[pl.which].inputs, pool[pl.which].params, col.callback());
          which[id] = pl.which;
          if (pl.cancel_at >= 0) cancel_at[id] = stepno + pl.cancel_at;
        }
      for (const auto& [id, at] : cancel_at)
        if (at == stepno) engine.cancel(id);
      engine.step();
    }
    engine.wait_idle();
    ASSERT_EQ(col.out.size(), which.size()) << "schedule " << schedule;
    for (const auto& [id, w] : which) {
      const Outcome& got = col.out[id];
      EXPECT_EQ(got.finished_events, 1) << "schedule " << schedule;
      if (got.reason == "cancelled") {
        EXPECT_TRUE(cancel_at.count(id)) << "schedule " << schedule;
        // What it reported before the cancel is a prefix of its alone tokens.
        ASSERT_LE(got.tokens.size(), expected[w].tokens.size());
        EXPECT_TRUE(std::equal(got.tokens.begin(), got.tokens.end(), expected[w].tokens.begin()));
        continue;
      }
      EXPECT_EQ(got.tokens, expected[w].tokens) << "schedule " << schedule << " request " << id;
      EXPECT_EQ(got.reason, expected[w].reason) << "schedule " << schedule;
    }
    const EngineStats s = engine.stats();
    EXPECT_EQ(s.running, 0);
    EXPECT_EQ(s.queued, 0);
    EXPECT_LE(s.kv_reserved_tokens, s.kv_budget_tokens);
  }
}

// A second request with the same system prompt and image reuses the first one's KV rows: it
// evaluates only what follows the shared prefix, and its tokens are those it gets alone.
TEST(Engine, PrefixReuseAcrossRequests) {
  auto model = tiny();
  Processor p(model);
  const Image b = load_image_file(image_path("b_320x256.png"));
  const Case first{p.process_prompt("What is in this picture?", {b}, "You describe images."), params_of(5, false, 0)};
  const Case second{p.process_prompt("What colour dominates?", {b}, "You describe images."), params_of(5, false, 0)};
  // The shared prefix, counted independently on the token ids (the image is the same, so its
  // placeholders match too).
  const auto& a = first.inputs.input_ids;
  const auto& c = second.inputs.input_ids;
  int64_t common = 0;
  while (common < int64_t(std::min(a.size(), c.size())) && a[size_t(common)] == c[size_t(common)]) ++common;
  ASSERT_GT(common, 64) << "the prompts should share the system prompt and the image";

  EngineOptions o;
  o.background_thread = false;
  Engine engine(model, o);
  Collector col;
  const RequestId id1 = engine.submit(first.inputs, first.params, col.callback());
  engine.wait_idle();
  const RequestId id2 = engine.submit(second.inputs, second.params, col.callback());
  engine.wait_idle();
  EXPECT_EQ(col.out[id1].stats.cached_tokens, 0);
  EXPECT_EQ(col.out[id2].stats.cached_tokens, common);
  EXPECT_EQ(col.out[id2].stats.cached_images, 1);
  EXPECT_EQ(col.out[id2].tokens, alone(model, second).tokens);

  // The same image after a different text: the prefix ends before it, so the image comes from
  // the vision cache instead of the tower.
  const Case third{p.process_prompt("Another question first. <image> And now?", {b}), params_of(4, false, 0)};
  const RequestId id3 = engine.submit(third.inputs, third.params, col.callback());
  engine.wait_idle();
  EXPECT_EQ(col.out[id3].stats.cached_images, 1);
  EXPECT_LT(col.out[id3].stats.cached_tokens, 10);
  EXPECT_EQ(col.out[id3].tokens, alone(model, third).tokens);
}

TEST(Engine, StopStringsAreNeverEmitted) {
  auto model = tiny();
  Processor p(model);
  Case c{p.process_prompt("Say something."), params_of(24, false, 0)};
  const Outcome free_run = alone(model, c);
  ASSERT_GT(free_run.text.size(), 6u);
  // A stop string that spans whatever tokens make up the middle of the text.
  const std::string stop = free_run.text.substr(free_run.text.size() / 2, 3);
  c.params.stop = {stop};
  EngineOptions o;
  o.background_thread = false;
  Engine engine(model, o);
  Collector col;
  const RequestId id = engine.submit(c.inputs, c.params, col.callback());
  engine.wait_idle();
  const Outcome& got = col.out[id];
  EXPECT_EQ(got.reason, "stop");
  EXPECT_EQ(got.text, free_run.text.substr(0, free_run.text.find(stop)));
}

TEST(Engine, FullContextEndsWithLengthAndKvBudgetIsShared) {
  auto model = tiny(/*context=*/64);
  Processor p(model);
  const Case c{p.process_prompt("Hello"), params_of(1000, false, 0)};
  const int64_t n = static_cast<int64_t>(c.inputs.input_ids.size());
  EngineOptions o;
  o.background_thread = false;
  o.kv_budget_tokens = 100;  // room for one 64-position sequence at a time
  o.keep_finished = 0;
  Engine engine(model, o);
  Collector col;
  const RequestId a = engine.submit(c.inputs, c.params, col.callback());
  const RequestId b = engine.submit(c.inputs, c.params, col.callback());
  Case big = c;
  std::string words;
  for (int i = 0; i < 100; ++i) words += " word" + std::to_string(i);
  big.inputs = p.process_prompt(words);  // longer than the context
  ASSERT_GT(big.inputs.input_ids.size(), 64u);
  const RequestId too_long = engine.submit(big.inputs, big.params, col.callback());
  engine.step();
  EXPECT_EQ(engine.stats().running, 1);  // b waits for a's KV memory
  EXPECT_EQ(engine.stats().kv_reserved_tokens, 64);
  engine.wait_idle();
  for (RequestId id : {a, b}) {
    EXPECT_EQ(col.out[id].reason, "length");
    EXPECT_TRUE(col.out[id].context_full);
    EXPECT_EQ(int64_t(col.out[id].tokens.size()), 64 - n + 1);  // the last token is reported, not evaluated
  }
  EXPECT_EQ(col.out[a].tokens, col.out[b].tokens);
  EXPECT_EQ(col.out[too_long].reason, "error");
  EXPECT_NE(col.out[too_long].error.find("the context holds 64"), std::string::npos) << col.out[too_long].error;
}

// With the engine's own thread: requests from several threads, one cancelled from another
// thread while it decodes.
TEST(Engine, BackgroundThreadAndCancelFromAnotherThread) {
  auto model = tiny();
  const auto cases = mixed_cases(model);
  std::vector<Outcome> expected;
  for (const auto& c : cases) expected.push_back(alone(model, c));
  Engine engine(model);
  Collector col;
  std::vector<RequestId> ids(cases.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < cases.size(); ++i)
    clients.emplace_back([&, i] { ids[i] = engine.submit(cases[i].inputs, cases[i].params, col.callback()); });
  for (auto& t : clients) t.join();
  std::atomic<bool> first_token{false};
  Case endless{cases[0].inputs, params_of(100000, false, 0)};
  const RequestId long_id = engine.submit(endless.inputs, endless.params, [&](const RequestEvent& e) {
    if (e.token >= 0) first_token = true;
    col.callback()(e);
  });
  for (int i = 0; i < 2000 && !first_token; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(first_token);
  std::thread([&] { engine.cancel(long_id); }).join();
  engine.wait_idle();
  EXPECT_EQ(col.out[long_id].reason, "cancelled");
  EXPECT_LT(col.out[long_id].tokens.size(), 2000u);
  for (size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(col.out[ids[i]].tokens, expected[i].tokens) << "case " << i;
}

// A new image prompt does not pause running streams: its image goes through the vision tower one
// block per step, between decode batches, and every step still gives each running stream a token.
TEST(Engine, ImageAdmissionNeverPausesRunningStreams) {
  auto model = tiny();
  Processor p(model);
  EngineOptions o;
  o.background_thread = false;
  Engine engine(model, o);
  std::map<RequestId, int64_t> tokens;
  auto count = [&](const RequestEvent& e) { tokens[e.id] += e.token >= 0; };
  const RequestId a = engine.submit(p.process_prompt("First stream."), params_of(60, false, 0), count);
  const RequestId b = engine.submit(p.process_prompt("Second stream."), params_of(60, false, 0), count);
  while (tokens[a] == 0 || tokens[b] == 0) engine.step();
  const Case image{p.process_prompt("Describe the picture.", {load_image_file(image_path("b_320x256.png"))}),
                   params_of(3, false, 0)};
  std::map<RequestId, int64_t> seen;
  const RequestId c = engine.submit(image.inputs, image.params, [&](const RequestEvent& e) {
    count(e);
    if (e.finished) seen[e.id] = e.stats.generated_tokens;
  });
  int steps = 0;
  while (tokens[c] == 0) {
    const int64_t before_a = tokens[a], before_b = tokens[b];
    engine.step();
    ++steps;
    EXPECT_EQ(tokens[a], before_a + 1) << "step " << steps;
    EXPECT_EQ(tokens[b], before_b + 1) << "step " << steps;
    ASSERT_LT(steps, 50);
  }
  // The tiny tower has 4 blocks, one per step (the prompt is prefilled in the step of the last).
  EXPECT_EQ(steps, 4);
  engine.wait_idle();
  EXPECT_EQ(seen[c], 3);
}

// RequestOptions::top_logprobs: each token event carries the token's log-probability under the
// raw logits and the most likely tokens; a greedy token is the first of them. Image requests
// report their vision-tower time; a repeated image (from the vision cache) reports none.
TEST(Engine, LogprobsAndVisionTime) {
  auto model = tiny();
  Processor p(model);
  const Image b = load_image_file(image_path("b_320x256.png"));
  EngineOptions o;
  o.background_thread = false;
  Engine engine(model, o);
  std::vector<RequestEvent> events;
  RequestStats first_stats, second_stats;
  RequestOptions with_logprobs;
  with_logprobs.top_logprobs = 3;
  engine.submit(p.process_prompt("What is it?", {b}), params_of(4, false, 0),
                [&](const RequestEvent& e) {
                  if (e.finished) first_stats = e.stats;
                  else events.push_back(e);
                },
                with_logprobs);
  engine.wait_idle();
  ASSERT_EQ(events.size(), 4u);
  for (const auto& e : events) {
    ASSERT_EQ(e.top_logprobs.size(), 3u);
    EXPECT_EQ(e.token, e.top_logprobs[0].token);
    EXPECT_FLOAT_EQ(e.logprob, e.top_logprobs[0].logprob);
    EXPECT_LT(e.logprob, 0.0f);
    EXPECT_GE(e.top_logprobs[0].logprob, e.top_logprobs[1].logprob);
    EXPECT_GE(e.top_logprobs[1].logprob, e.top_logprobs[2].logprob);
    double mass = 0;
    for (const auto& t : e.top_logprobs) mass += std::exp(double(t.logprob));
    EXPECT_LE(mass, 1.0 + 1e-5);
  }
  EXPECT_GT(first_stats.vision_seconds, 0.0);

  bool any_logprobs = false;
  engine.submit(p.process_prompt("Another question. <image> What now?", {b}), params_of(2, false, 0),
                [&](const RequestEvent& e) {
                  if (e.finished) second_stats = e.stats;
                  else any_logprobs = any_logprobs || !e.top_logprobs.empty();
                });
  engine.wait_idle();
  EXPECT_FALSE(any_logprobs);
  EXPECT_EQ(second_stats.cached_images, 1);
  EXPECT_EQ(second_stats.vision_seconds, 0.0);
}

}  // namespace
}  // namespace qvl
