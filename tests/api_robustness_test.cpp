// The public API under input a new user (or a hostile one) gives it: invalid UTF-8, foreign
// exceptions translated at the boundary, a generation that fills the context, progress reports
// with cancellation that leaves the sequence as it was, media paths confined to a root, warnings
// for ignored message parts, and option validation (context length, weights type, sampling).
#include <gtest/gtest.h>

#include <filesystem>
#include <new>
#include <nlohmann/json.hpp>
#include <system_error>

#include "core/error_boundary.h"
#include "devtools/synthetic_checkpoint.h"
#include "qvl/qvl.h"
#include "qvl/qvl.hpp"
#include "devtools/golden_dump.h"
#include "devtools/quantize_checkpoint.h"
#include "test_util.h"

namespace qvl {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::expect_error;

const std::string kImage = test::golden_dir() + "/images/c2_450x250.png";

std::shared_ptr<Model> tiny(int64_t context = 4096) { return test::tiny_model(context); }

// One model for the tests that do not depend on load options.
const std::shared_ptr<Model>& shared_tiny() {
  static const std::shared_ptr<Model> model = tiny();
  return model;
}

using test::generate;
using test::greedy;

// ---- 1. invalid UTF-8 and the exception boundary ----

TEST(Utf8, EveryTextEntryPointNamesTheBadByte) {
  const auto& model = shared_tiny();
  Processor processor(model);
  Tokenizer tokenizer(model);
  const std::string bad = test::read_file(test::data_dir() + "/bad/prompt_not_utf8.txt");  // 0x80 at offset 6
  expect_error([&] { processor.process_prompt(bad); }, ErrorKind::kInvalidArgument,
               {"the prompt is not valid UTF-8 (byte 0x80 at offset 6)"});
  expect_error([&] { processor.process_prompt("hi", {}, "sys \xff"); }, ErrorKind::kInvalidArgument,
               {"the system prompt is not valid UTF-8 (byte 0xFF at offset 4)"});
  expect_error([&] { (void)tokenizer.encode(bad); }, ErrorKind::kInvalidArgument,
               {"the text is not valid UTF-8 (byte 0x80 at offset 6)"});
  const std::string messages = "[{\"role\": \"user\", \"content\": \"hi \xff\"}]";
  expect_error([&] { processor.process(messages); }, ErrorKind::kInvalidArgument,
               {"the messages JSON is not valid UTF-8 (byte 0xFF at offset 33)"});
  expect_error([&] { (void)tokenizer.apply_chat_template(messages); }, ErrorKind::kInvalidArgument,
               {"the messages JSON is not valid UTF-8 (byte 0xFF at offset 33)"});
  expect_error([&] { (void)tokenizer.apply_chat_template("[]", true, "{\"x\": \"\xc0\xaf\"}"); },
               ErrorKind::kInvalidArgument, {"the chat template variables JSON is not valid UTF-8 (byte 0xC0 at offset 7)"});
}

TEST(Utf8, CApiSaysTheSameWithoutInternals) {
  qvl_model* model = nullptr;
  ASSERT_EQ(qvl_model_load(test::tiny_model_dir().c_str(), 2, 256, &model), QVL_OK) << qvl_last_error();
  qvl_inputs* inputs = nullptr;
  EXPECT_EQ(qvl_inputs_from_prompt(model, "hi \xff there", nullptr, 0, &inputs), QVL_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(qvl_last_error(), "the prompt is not valid UTF-8 (byte 0xFF at offset 3)");
  EXPECT_EQ(qvl_inputs_from_messages(model, "[{\"role\": \"user\", \"content\": 5}", ".", &inputs),
            QVL_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(qvl_last_error(),
               "messages: malformed JSON (parse error at line 1, column 32: syntax error while parsing array - "
               "unexpected end of input; expected ']')");
  EXPECT_EQ(inputs, nullptr);
  qvl_model_free(model);
}

TEST(ExceptionBoundary, ForeignExceptionsBecomeErrorsWithPlainMessages) {
  const auto json_error = test::error_of([] {
    translate_exceptions("rendering", [] { return json("text").get<int>(); });
  });
  EXPECT_EQ(json_error.kind(), ErrorKind::kInvalidArgument);
  EXPECT_STREQ(json_error.what(), "rendering: type must be number, but is string");
  const auto file_error = test::error_of([] {
    translate_exceptions("reading", [] { return json::parse("{"); }, ErrorKind::kInvalidFile);
  });
  EXPECT_EQ(file_error.kind(), ErrorKind::kInvalidFile);
  EXPECT_EQ(std::string(file_error.what()).find("[json.exception"), std::string::npos) << file_error.what();
  const auto fs_error = test::error_of([] {
    translate_exceptions("listing", [] {
      throw fs::filesystem_error("x", fs::path("/no/such"), std::make_error_code(std::errc::no_such_file_or_directory));
    });
  });
  EXPECT_EQ(fs_error.kind(), ErrorKind::kIo);
  EXPECT_STREQ(fs_error.what(), "listing: file system error on '/no/such': No such file or directory");
  const auto memory = test::error_of([] { translate_exceptions("encoding", [] { throw std::bad_alloc(); }); });
  EXPECT_EQ(memory.kind(), ErrorKind::kLimitExceeded);
  EXPECT_STREQ(memory.what(), "out of memory while encoding");
  const auto other = test::error_of([] { translate_exceptions("sampling", [] { throw std::out_of_range("at"); }); });
  EXPECT_EQ(other.kind(), ErrorKind::kInternal);
  EXPECT_STREQ(other.what(), "internal error while sampling (please report it): at");
  // A qvl::Error passes unchanged.
  const auto own = test::error_of([] { translate_exceptions("x", [] { throw Error(ErrorKind::kNotFound, "gone"); }); });
  EXPECT_EQ(own.kind(), ErrorKind::kNotFound);
  EXPECT_STREQ(own.what(), "gone");
}

TEST(ExceptionBoundary, OutputPathThatIsAFileIsAnIoErrorWithTheReason) {
  const std::string file = test::temp_dir() + "/a-regular-file";
  test::write_file(file, "x");
  expect_error([&] { write_synthetic_checkpoint("qwen3-vl-tiny", file, test::tiny_model_dir(), 1, {}); },
               ErrorKind::kInvalidArgument, {"the output folder '" + file + "' exists and is not a folder"});
  expect_error([&] { write_synthetic_checkpoint("qwen3-vl-tiny", file + "/sub", test::tiny_model_dir(), 1, {}); },
               ErrorKind::kIo, {"cannot write '" + file + "/sub': '" + file + "' is not a folder"});
  std::ostringstream log;
  expect_error([&] { dump_fixture(test::golden_dir(), file, DumpOptions{}, log); }, ErrorKind::kIo,
               {"cannot create directory '" + file + "': Not a directory"});
}

// ---- 2. a full context ----

TEST(ContextFull, TheLastTokenIsEmittedAndTheReasonSaysContext) {
  const auto& reference_model = shared_tiny();
  Processor processor(reference_model);
  const ProcessedInputs in = processor.process_prompt("Hello");
  const int64_t prompt = static_cast<int64_t>(in.input_ids.size());
  Generator reference(reference_model, greedy(8));
  reference.append_inputs(in);
  const std::vector<int32_t> expected = generate(reference);

  // Room for 3 generated tokens in the cache; a 4th is sampled from the last logits.
  auto model = tiny(prompt + 3);
  Generator g(model, greedy(100));
  g.append_inputs(in);
  const std::vector<int32_t> tokens = generate(g);
  EXPECT_EQ(tokens, std::vector<int32_t>(expected.begin(), expected.begin() + 4));
  EXPECT_EQ(g.stop_reason(), "length");
  EXPECT_TRUE(g.context_full());
  EXPECT_EQ(g.next_token(), expected[3]);
  EXPECT_EQ(g.sequence().size(), static_cast<size_t>(prompt + 4));
  expect_error([&] { g.generate_next_token(); }, ErrorKind::kInvalidArgument,
               {"generation is done (length: the context is full)"});
  // Nothing more fits: appending is a limit error naming both numbers.
  expect_error([&] { g.append_tokens({1}); }, ErrorKind::kLimitExceeded,
               {"the prompt needs " + std::to_string(prompt + 5) + " tokens but the context holds " +
                std::to_string(prompt + 3)});
  // Rewinding makes room again.
  g.rewind_to(static_cast<size_t>(prompt + 1));
  EXPECT_FALSE(g.context_full());
  EXPECT_EQ(generate(g), std::vector<int32_t>(expected.begin() + 1, expected.begin() + 4));

  // max_new_tokens reached at the same step: that is the reason, not the context.
  Generator exact(model, greedy(4));
  exact.append_inputs(in);
  EXPECT_EQ(generate(exact).size(), 4u);
  EXPECT_EQ(exact.stop_reason(), "length");
  EXPECT_FALSE(exact.context_full());

  // A prompt that fills the context exactly still yields one token.
  auto full = tiny(prompt);
  Generator one(full, greedy(100));
  one.append_inputs(in);
  EXPECT_EQ(generate(one), std::vector<int32_t>{expected[0]});
  EXPECT_TRUE(one.context_full());

  // A prompt beyond the context is an error naming both numbers.
  auto small = tiny(prompt - 1);
  Generator none(small, greedy(4));
  expect_error([&] { none.append_inputs(in); }, ErrorKind::kLimitExceeded,
               {"the prompt needs " + std::to_string(prompt) + " tokens but the context holds " +
                std::to_string(prompt - 1)});
}

TEST(ContextFull, CApiReportsIt) {
  qvl_model* model = nullptr;
  ASSERT_EQ(qvl_model_load(test::tiny_model_dir().c_str(), 2, 16, &model), QVL_OK) << qvl_last_error();
  qvl_inputs* inputs = nullptr;
  ASSERT_EQ(qvl_inputs_from_prompt(model, "Hello", nullptr, 0, &inputs), QVL_OK) << qvl_last_error();
  const size_t prompt = qvl_inputs_token_count(inputs);
  ASSERT_LT(prompt, 16u);
  qvl_generator_params params;
  ASSERT_EQ(qvl_generator_params_default(model, &params), QVL_OK);
  params.do_sample = 0;
  params.max_new_tokens = 100;
  qvl_generator* gen = nullptr;
  ASSERT_EQ(qvl_generator_create(model, &params, &gen), QVL_OK) << qvl_last_error();
  ASSERT_EQ(qvl_generator_append_inputs(gen, inputs), QVL_OK) << qvl_last_error();
  size_t generated = 0;
  while (!qvl_generator_is_done(gen)) {
    ASSERT_EQ(qvl_generator_generate_next_token(gen), QVL_OK) << qvl_last_error();
    ASSERT_GE(qvl_generator_next_token(gen), 0) << qvl_last_error();
    ++generated;
    if (generated > 16) break;
  }
  // With EOS on, the tiny model might stop early; it does not on this prompt.
  EXPECT_EQ(generated, 16 - prompt + 1);
  EXPECT_STREQ(qvl_generator_stop_reason(gen), "length");
  EXPECT_EQ(qvl_generator_context_full(gen), 1);
  qvl_generator_free(gen);
  qvl_inputs_free(inputs);
  qvl_model_free(model);
}

// ---- 3. progress and cancellation ----

struct Recorder {
  std::vector<Progress> reports;
  std::optional<Progress::Stage> cancel_stage;
  int64_t cancel_after = 0;  // cancel at the first report of cancel_stage with done >= this
  bool operator()(const Progress& p) {
    reports.push_back(p);
    return !(cancel_stage && p.stage == *cancel_stage && p.done >= cancel_after);
  }
};

std::vector<int64_t> done_of(const std::vector<Progress>& reports, Progress::Stage stage, int64_t* total) {
  std::vector<int64_t> done;
  for (const Progress& p : reports)
    if (p.stage == stage) done.push_back(p.done), *total = p.total;
  return done;
}

ProcessedInputs long_prompt(const Processor& processor) {
  std::string text;
  for (int i = 0; i < 300; ++i) text += "word" + std::to_string(i) + " ";
  return processor.process_prompt(text);
}

TEST(Progress, ReportsEachPrefillChunkAndEachVisionBlock) {
  const auto& model = shared_tiny();
  Processor processor(model);
  const ProcessedInputs text = long_prompt(processor);
  const int64_t n = static_cast<int64_t>(text.input_ids.size());
  ASSERT_GT(n, 512);  // three chunks at least
  std::vector<int64_t> chunk_ends{0};
  for (int64_t done = 256; done < n; done += 256) chunk_ends.push_back(done);
  chunk_ends.push_back(n);
  Generator g(model, greedy(2));
  auto recorder = std::make_shared<Recorder>();
  g.set_progress_callback([recorder](const Progress& p) { return (*recorder)(p); });
  g.append_inputs(text);
  int64_t total = 0;
  EXPECT_EQ(done_of(recorder->reports, Progress::Stage::kPrefill, &total), chunk_ends);
  EXPECT_EQ(total, n);
  // Decoding a token reports nothing.
  recorder->reports.clear();
  generate(g);
  EXPECT_TRUE(recorder->reports.empty());

  Generator v(model, greedy(2));
  v.set_progress_callback([recorder](const Progress& p) { return (*recorder)(p); });
  v.append_inputs(processor.process_prompt("Describe.", {load_image_file(kImage)}));
  EXPECT_EQ(done_of(recorder->reports, Progress::Stage::kImageEncode, &total), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(total, 4);  // the tiny vision tower's depth
  EXPECT_EQ(recorder->reports.front().stage, Progress::Stage::kImageEncode);  // images before the prompt
  EXPECT_EQ(recorder->reports.back().stage, Progress::Stage::kPrefill);
}

// What a generator holds that a cancelled call must leave alone.
struct State {
  std::vector<int32_t> sequence;
  GeneratorStats stats;
  std::string stop_reason;
  std::vector<float> logits;
};
State state_of(const Generator& g) {
  return {g.sequence(), g.stats(), g.stop_reason(), g.last_logits()};
}
void expect_same_state(const State& a, const State& b) {
  EXPECT_EQ(a.sequence, b.sequence);
  EXPECT_EQ(a.stats.evaluated_tokens, b.stats.evaluated_tokens);
  EXPECT_EQ(a.stats.prompt_tokens, b.stats.prompt_tokens);
  EXPECT_EQ(a.stats.images, b.stats.images);
  EXPECT_EQ(a.stop_reason, b.stop_reason);
  EXPECT_EQ(a.logits, b.logits);
}

TEST(Cancel, DuringPrefillOrImageEncodingLeavesTheSequenceAsItWas) {
  const auto& model = shared_tiny();
  Processor processor(model);
  const ProcessedInputs first = processor.process_prompt("Hello there.");
  const ProcessedInputs text = long_prompt(processor);
  const ProcessedInputs image = processor.process_prompt("Describe.", {load_image_file(kImage)});

  for (const auto& [stage, second, cancel_after, fragment] :
       {std::tuple{Progress::Stage::kPrefill, &text, int64_t{256}, "while prefilling (256 of "},
        std::tuple{Progress::Stage::kImageEncode, &image, int64_t{1}, "while encoding images (1 of 4 vision blocks"}}) {
    // Reference: first turn, 3 tokens, then the second input, 5 tokens.
    Generator reference(model, greedy(3));
    reference.append_inputs(first);
    const std::vector<int32_t> first_tokens = generate(reference);
    reference.append_inputs(*second);
    reference.set_params(greedy(5));
    const std::vector<int32_t> expected = generate(reference);

    Generator g(model, greedy(3));
    g.append_inputs(first);
    EXPECT_EQ(generate(g), first_tokens);
    auto recorder = std::make_shared<Recorder>();
    recorder->cancel_stage = stage;
    recorder->cancel_after = cancel_after;
    g.set_progress_callback([recorder](const Progress& p) { return (*recorder)(p); });
    const State before = state_of(g);
    expect_error([&] { g.append_inputs(*second); }, ErrorKind::kCancelled, {fragment, "the sequence is unchanged"});
    expect_same_state(state_of(g), before);
    EXPECT_EQ(g.next_token(), first_tokens.back());
    // The same call again, not cancelled, continues as if nothing happened.
    g.set_progress_callback({});
    g.append_inputs(*second);
    g.set_params(greedy(5));
    EXPECT_EQ(generate(g), expected);
  }
}

TEST(Cancel, SetInputsPutsBackTheCacheRowsItOverwrote) {
  const auto& model = shared_tiny();
  Processor processor(model);
  json turn1 = json::array({{{"role", "user"}, {"content", "Tell me a story about a dragon."}}});
  json turn2 = json::array({{{"role", "user"}, {"content", "Tell me a story about a cat instead, please, " +
                                                                 std::string(1200, 'x')}}});
  const ProcessedInputs a = processor.process(turn1.dump());
  const ProcessedInputs b = processor.process(turn2.dump());
  Generator reference(model, greedy(4));
  reference.set_inputs(b);
  const std::vector<int32_t> expected_b = generate(reference);

  // What continuing turn 1 gives, uncancelled.
  Generator reference_a(model, greedy(4));
  reference_a.set_inputs(a);
  const std::vector<int32_t> answer_a = generate(reference_a);
  reference_a.append_tokens({answer_a[0]});
  const std::vector<float> continued_a = reference_a.last_logits();

  Generator g(model, greedy(4));
  g.set_inputs(a);
  generate(g);
  auto recorder = std::make_shared<Recorder>();
  recorder->cancel_stage = Progress::Stage::kPrefill;
  recorder->cancel_after = 1;  // after the first chunk has overwritten rows of turn 1
  g.set_progress_callback([recorder](const Progress& p) { return (*recorder)(p); });
  const State before = state_of(g);
  expect_error([&] { g.set_inputs(b); }, ErrorKind::kCancelled, {"while prefilling"});
  expect_same_state(state_of(g), before);
  // Turn 1's cache rows are back: continuing it gives exactly the uncancelled logits.
  g.set_progress_callback({});
  g.append_tokens({answer_a[0]});
  EXPECT_EQ(g.last_logits(), continued_a);
  // And the cancelled call, repeated, gives what a fresh generator gives.
  g.set_inputs(b);
  EXPECT_EQ(generate(g), expected_b);
}

TEST(Cancel, CApiReturnsCancelled) {
  qvl_model* model = nullptr;
  ASSERT_EQ(qvl_model_load(test::tiny_model_dir().c_str(), 2, 4096, &model), QVL_OK) << qvl_last_error();
  const char* images[1] = {kImage.c_str()};
  qvl_inputs* inputs = nullptr;
  ASSERT_EQ(qvl_inputs_from_prompt(model, "Describe.", images, 1, &inputs), QVL_OK) << qvl_last_error();
  qvl_generator* gen = nullptr;
  ASSERT_EQ(qvl_generator_create(model, nullptr, &gen), QVL_OK);
  int calls = 0;
  ASSERT_EQ(qvl_generator_set_progress(
                gen, [](int stage, int64_t done, int64_t, void* user) -> int {
                  ++*static_cast<int*>(user);
                  return stage == 0 && done < 2;
                },
                &calls),
            QVL_OK);
  EXPECT_EQ(qvl_generator_append_inputs(gen, inputs), QVL_ERR_CANCELLED);
  EXPECT_EQ(calls, 3);  // 0, 1, 2 blocks
  EXPECT_NE(std::string(qvl_last_error()).find("cancelled by the progress callback"), std::string::npos);
  ASSERT_EQ(qvl_generator_set_progress(gen, nullptr, nullptr), QVL_OK);
  EXPECT_EQ(qvl_generator_append_inputs(gen, inputs), QVL_OK) << qvl_last_error();
  qvl_generator_free(gen);
  qvl_inputs_free(inputs);
  qvl_model_free(model);
}

// ---- 4. media root and message warnings ----

TEST(MediaRoot, PathsOutsideTheRootAreRefused) {
  const fs::path base = fs::path(test::temp_dir()) / "media";
  fs::create_directories(base / "root" / "sub");
  fs::create_directories(base / "outside");
  fs::copy_file(kImage, base / "root" / "sub" / "in.png", fs::copy_options::overwrite_existing);
  fs::copy_file(kImage, base / "outside" / "out.png", fs::copy_options::overwrite_existing);
  fs::remove(base / "root" / "link.png");
  fs::create_symlink(base / "outside" / "out.png", base / "root" / "link.png");
  const std::string root = fs::canonical(base / "root").string();
  const auto& model = shared_tiny();
  ProcessorOptions options;
  options.media_root = root;
  Processor confined(model, options);
  auto messages = [](const std::string& path) {
    return json::array({{{"role", "user"},
                         {"content", json::array({{{"type", "image"}, {"image", path}}, {{"type", "text"}, {"text", "?"}}})}}})
        .dump();
  };
  // Inside (relative to base_dir, and with a `..` that stays inside): fine.
  EXPECT_EQ(confined.process(messages("sub/in.png"), {}, true, root).image_grid_thw.size(), 1u);
  EXPECT_EQ(confined.process(messages("sub/../sub/in.png"), {}, true, root).image_grid_thw.size(), 1u);
  const std::string outside = fs::canonical(base / "outside" / "out.png").string();
  expect_error([&] { confined.process(messages("../outside/out.png"), {}, true, root); }, ErrorKind::kInvalidArgument,
               {"image path '" + root + "/../outside/out.png' resolves to '" + outside + "', outside the media root '" +
                root + "'"});
  expect_error([&] { confined.process(messages("link.png"), {}, true, root); }, ErrorKind::kInvalidArgument,
               {"image path '" + root + "/link.png' resolves to '" + outside + "', outside the media root '" + root + "'"});
  expect_error([&] { confined.process(messages("file://" + outside), {}, true, root); }, ErrorKind::kInvalidArgument,
               {"outside the media root"});
  // A sibling whose name starts with the root's is outside too.
  fs::create_directories(base / "rootx");
  fs::copy_file(kImage, base / "rootx" / "x.png", fs::copy_options::overwrite_existing);
  expect_error([&] { confined.process(messages("../rootx/x.png"), {}, true, root); }, ErrorKind::kInvalidArgument,
               {"outside the media root"});
  // The default: any path.
  Processor open(model);
  EXPECT_EQ(open.process(messages("../outside/out.png"), {}, true, root).image_grid_thw.size(), 1u);
  EXPECT_EQ(open.process(messages("link.png"), {}, true, root).image_grid_thw.size(), 1u);
  // The root must be a directory.
  ProcessorOptions missing;
  missing.media_root = (base / "nope").string();
  expect_error([&] { Processor p(model, missing); }, ErrorKind::kInvalidArgument,
               {"the media root '" + missing.media_root + "' is not a directory"});
}

TEST(MessageWarnings, UnknownRolesAndItemTypesAreReported) {
  Processor processor(shared_tiny());
  const json messages = json::array(
      {{{"role", "narrator"}, {"content", "Once upon a time."}},
       {{"role", "user"}, {"content", json::array({{{"type", "audio"}, {"audio", "a.wav"}}, {{"type", "text"}, {"text", "Hi"}}})}}});
  const ProcessedInputs in = processor.process(messages.dump());
  EXPECT_EQ(in.warnings,
            (std::vector<std::string>{
                "messages[0] has the unknown role 'narrator' (known: system, user, assistant, tool); the chat template may mishandle it",
                "messages[1].content[0] has the unknown type 'audio' (known: text, image, image_url, video, video_url); it is ignored"}));
  EXPECT_TRUE(processor.process_prompt("Hello").warnings.empty());
}

// ---- 5-8. options ----

TEST(ModelOptionsCheck, ContextLengthAgainstTheModelsMaximum) {
  EXPECT_EQ(shared_tiny()->info().max_context_length, 262144);
  EXPECT_EQ(shared_tiny()->info().context_length, 4096);
  expect_error([] { tiny(262145); }, ErrorKind::kInvalidArgument,
               {"context length 262145 exceeds the model's maximum of 262144"});
  expect_error([] { tiny(-5); }, ErrorKind::kInvalidArgument, {"context length must be positive (got -5)"});
  qvl_model* model = nullptr;
  EXPECT_EQ(qvl_model_load(test::tiny_model_dir().c_str(), 2, 262145, &model), QVL_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(qvl_last_error(), "context length 262145 exceeds the model's maximum of 262144");
}

TEST(ModelOptionsCheck, WeightsTypeOnAnAlreadyQuantizedFile) {
  const std::string path = test::temp_dir() + "/robust-q8_0.gguf";
  QuantizeOptions q;
  q.type = "q8_0";
  quantize_checkpoint(test::tiny_model_dir(), path, q);
  ModelOptions o;
  o.threads = 2;
  o.weights_type = "q4_k";
  expect_error([&] { Model::load(path, o); }, ErrorKind::kInvalidArgument,
               {"weights type 'q4_k' cannot be applied: the text weights in '" + path +
                "' are already quantized as q8_0 (give no weights type, or q8_0)"});
  o.weights_type = "bf16";
  expect_error([&] { Model::load(path, o); }, ErrorKind::kInvalidArgument, {"already quantized as q8_0"});
  o.weights_type = "q8_0";
  EXPECT_EQ(Model::load(path, o)->info().weights_type, "q8_0");
  o.weights_type = "";
  EXPECT_EQ(Model::load(path, o)->info().weights_type, "q8_0");
}

TEST(ModelOptionsCheck, TypeNamesAreLowerCaseAndTheKvTypeIsTheRealOne) {
  EXPECT_EQ(shared_tiny()->info().weights_type, "bf16");
  ModelOptions o;
  o.threads = 2;
  o.kv_cache_type = "q8_0";  // the tiny model's head_dim 16 cannot hold q8_0 blocks of 32
  auto model = Model::load(test::tiny_model_dir(), o);
  EXPECT_EQ(model->info().kv_cache_type, "f16");
}

TEST(GeneratorParamsCheck, OutOfRangeValuesNameTheParameter) {
  const auto& model = shared_tiny();
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  struct Case {
    std::function<void(GeneratorParams&)> set;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](GeneratorParams& p) { p.max_new_tokens = 0; }, "generator parameter max_new_tokens must be at least 1 (got 0)"},
      {[&](GeneratorParams& p) { p.temperature = nan; }, "generator parameter temperature must be a finite number >= 0 (got nan)"},
      {[](GeneratorParams& p) { p.temperature = -1; }, "generator parameter temperature must be a finite number >= 0 (got -1)"},
      {[](GeneratorParams& p) { p.do_sample = true, p.temperature = 0; }, "generator parameter temperature must be > 0 when sampling (got 0)"},
      {[&](GeneratorParams& p) { p.top_p = nan; }, "generator parameter top_p must be in (0, 1] (got nan)"},
      {[](GeneratorParams& p) { p.top_p = 0; }, "generator parameter top_p must be in (0, 1] (got 0)"},
      {[](GeneratorParams& p) { p.top_p = 1.5f; }, "generator parameter top_p must be in (0, 1] (got 1.5)"},
      {[](GeneratorParams& p) { p.min_p = -0.5f; }, "generator parameter min_p must be in [0, 1] (got -0.5)"},
      {[&](GeneratorParams& p) { p.min_p = nan; }, "generator parameter min_p must be in [0, 1] (got nan)"},
      {[](GeneratorParams& p) { p.top_k = -1; }, "generator parameter top_k must be >= 0 (0 = off) (got -1)"},
      {[&](GeneratorParams& p) { p.repetition_penalty = inf; }, "generator parameter repetition_penalty must be a finite number > 0 (got inf)"},
      {[&](GeneratorParams& p) { p.presence_penalty = nan; }, "generator parameter presence_penalty must be a finite number (got nan)"},
      {[&](GeneratorParams& p) { p.frequency_penalty = -inf; }, "generator parameter frequency_penalty must be a finite number (got -inf)"},
  };
  Generator ok(model, greedy(4));
  for (const Case& c : cases) {
    GeneratorParams p = greedy(4);
    c.set(p);
    expect_error([&] { Generator g(model, p); }, ErrorKind::kInvalidArgument, {c.message}, c.message);
    expect_error([&] { ok.set_params(p); }, ErrorKind::kInvalidArgument, {c.message}, c.message);
  }
  // A refused set_params keeps the previous parameters.
  ok.append_inputs(Processor(model).process_prompt("Hi"));
  EXPECT_EQ(generate(ok).size(), 4u);
}

}  // namespace
}  // namespace qvl
