// The C API's load options reach the model: a C generator with q8_0 weights and an f32 KV cache
// produces the tokens the C++ API produces with the same options; bad options fail with a
// status and a message naming the value.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "qvl/qvl.h"
#include "qvl/qvl.hpp"
#include "test_util.h"

namespace qvl {
namespace {

const std::string kImage = test::golden_dir() + "/images/b_320x256.png";

std::vector<int32_t> c_greedy(const qvl_model_options& o, int n) {
  qvl_model* model = nullptr;
  EXPECT_EQ(qvl_model_load_with_options(test::tiny_model_dir().c_str(), &o, &model), QVL_OK) << qvl_last_error();
  qvl_generator_params params;
  EXPECT_EQ(qvl_generator_params_default(model, &params), QVL_OK);
  params.do_sample = 0;
  params.max_new_tokens = n;
  const char* images[1] = {kImage.c_str()};
  qvl_inputs* inputs = nullptr;
  qvl_generator* gen = nullptr;
  EXPECT_EQ(qvl_inputs_from_prompt(model, "Describe.", images, 1, &inputs), QVL_OK) << qvl_last_error();
  EXPECT_EQ(qvl_generator_create(model, &params, &gen), QVL_OK);
  EXPECT_EQ(qvl_generator_append_inputs(gen, inputs), QVL_OK) << qvl_last_error();
  std::vector<int32_t> tokens;
  while (!qvl_generator_is_done(gen) && qvl_generator_generate_next_token(gen) == QVL_OK)
    tokens.push_back(qvl_generator_next_token(gen));
  qvl_generator_free(gen);
  qvl_inputs_free(inputs);
  qvl_model_free(model);
  return tokens;
}

TEST(CApi, LoadOptionsReachTheModel) {
  qvl_model_options o = qvl_model_options_default();
  o.threads = 2;
  o.context_length = 1024;
  o.weights_type = "q8_0";
  o.kv_cache_type = "f32";
  const std::vector<int32_t> from_c = c_greedy(o, 6);

  ModelOptions cpp;
  cpp.threads = 2;
  cpp.context_length = 1024;
  cpp.weights_type = "q8_0";
  cpp.kv_cache_type = "f32";
  auto model = Model::load(test::tiny_model_dir(), cpp);
  EXPECT_EQ(model->info().weights_type, "q8_0");
  EXPECT_EQ(model->info().kv_cache_type, "f32");
  Processor processor(model);
  GeneratorParams p = GeneratorParams::from_model(*model);
  p.do_sample = false;
  p.max_new_tokens = 6;
  Generator g(model, p);
  g.append_inputs(processor.process_prompt("Describe.", {load_image_file(kImage)}));
  std::vector<int32_t> from_cpp;
  while (!g.is_done()) {
    g.generate_next_token();
    from_cpp.push_back(g.next_token());
  }
  ASSERT_EQ(from_c.size(), 6u);
  EXPECT_EQ(from_c, from_cpp);

  // Defaults (all zero / NULL) load the model as stored; the q8_0 run above differs from it.
  qvl_model_options plain = qvl_model_options_default();
  plain.kv_cache_type = "f32";
  EXPECT_NE(c_greedy(plain, 6), from_c);
}

TEST(CApi, BadLoadOptionsFailWithAMessage) {
  qvl_model* model = nullptr;
  qvl_model_options o = qvl_model_options_default();
  o.kv_cache_type = "q4";
  EXPECT_EQ(qvl_model_load_with_options(test::tiny_model_dir().c_str(), &o, &model), QVL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(qvl_last_error()).find("'q4'"), std::string::npos) << qvl_last_error();
  EXPECT_EQ(model, nullptr);
  o = qvl_model_options_default();
  o.weights_type = "q5_1";
  EXPECT_EQ(qvl_model_load_with_options(test::tiny_model_dir().c_str(), &o, &model), QVL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(qvl_last_error()).find("q5_1"), std::string::npos) << qvl_last_error();
  EXPECT_EQ(qvl_model_load_with_options(test::tiny_model_dir().c_str(), nullptr, &model), QVL_ERR_INVALID_ARGUMENT);
}

// The engine through C: two requests in one engine give the C generator's greedy tokens; a stop
// string is never part of the reported text; events end with one finished event each.
struct CEvents {
  std::vector<int32_t> tokens[3];
  std::string text[3];
  std::string reason[3];
  int finished[3] = {0, 0, 0};
};

TEST(CApi, EngineMatchesTheGeneratorAndCutsStopStrings) {
  qvl_model_options o = qvl_model_options_default();
  o.threads = 2;
  o.weights_type = "q8_0";
  o.kv_cache_type = "f32";
  const std::vector<int32_t> expected = c_greedy(o, 6);

  qvl_model* model = nullptr;
  ASSERT_EQ(qvl_model_load_with_options(test::tiny_model_dir().c_str(), &o, &model), QVL_OK) << qvl_last_error();
  qvl_engine_options eo = qvl_engine_options_default();
  EXPECT_EQ(eo.max_sequences, 8);
  eo.background_thread = 0;
  qvl_engine* engine = nullptr;
  ASSERT_EQ(qvl_engine_create(model, &eo, &engine), QVL_OK) << qvl_last_error();
  qvl_generator_params params;
  ASSERT_EQ(qvl_generator_params_default(model, &params), QVL_OK);
  params.do_sample = 0;
  params.max_new_tokens = 6;
  const char* images[1] = {kImage.c_str()};
  qvl_inputs* inputs = nullptr;
  ASSERT_EQ(qvl_inputs_from_prompt(model, "Describe.", images, 1, &inputs), QVL_OK) << qvl_last_error();
  CEvents ev;
  auto on_event = [](const qvl_request_event* e, void* user) {
    CEvents& ev = *static_cast<CEvents*>(user);
    const size_t i = static_cast<size_t>(e->id);
    if (e->token >= 0) ev.tokens[i].push_back(e->token);
    ev.text[i] += e->text;
    if (e->finished) ev.reason[i] = e->finish_reason, ++ev.finished[i];
  };
  uint64_t id1 = 0, id2 = 0;
  ASSERT_EQ(qvl_engine_submit(engine, inputs, &params, nullptr, 0, on_event, &ev, &id1), QVL_OK);
  ASSERT_EQ(id1, 1u);
  int did_work = 0;
  ASSERT_EQ(qvl_engine_step(engine, &did_work), QVL_OK);
  EXPECT_EQ(did_work, 1);
  ASSERT_EQ(qvl_engine_wait_idle(engine), QVL_OK);
  ASSERT_TRUE(ev.text[1].size() >= 2) << "need some text to cut";
  const std::string stop = ev.text[1].substr(1, 1);
  const char* stops[1] = {stop.c_str()};
  ASSERT_EQ(qvl_engine_submit(engine, inputs, &params, stops, 1, on_event, &ev, &id2), QVL_OK);
  ASSERT_EQ(qvl_engine_wait_idle(engine), QVL_OK);
  EXPECT_EQ(ev.tokens[1], expected);
  EXPECT_EQ(ev.reason[1], "length");
  EXPECT_EQ(ev.reason[2], "stop");
  EXPECT_EQ(ev.text[2], ev.text[1].substr(0, ev.text[1].find(stop)));
  EXPECT_EQ(ev.finished[1], 1);
  EXPECT_EQ(ev.finished[2], 1);
  EXPECT_EQ(qvl_engine_step(nullptr, &did_work), QVL_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(qvl_last_error(), "argument 'engine' is null");
  qvl_engine_free(engine);
  qvl_inputs_free(inputs);
  qvl_model_free(model);
}

}  // namespace
}  // namespace qvl
