// Tests of ChatTemplate and of the Jinja2 subset interpreter behind it.
//
// How the expected strings were made:
// - The golden prompts come from tests/data/golden (rendered by transformers).
// - The other Qwen3-VL cases and the thinking-template cases were written from a reading of the
//   templates' semantics and then checked offline against Python jinja2 3.1.6 set up the way
//   transformers sets up chat templates: ImmutableSandboxedEnvironment(trim_blocks=True,
//   lstrip_blocks=True, extensions=[loopcontrols]) with tojson = json.dumps(x, ensure_ascii=False,
//   ...) and raise_exception, rendered with tools=None and documents=None plus the extra variables.
//   The messages below are the exact JSON given to jinja2.
// - The interpreter unit tests' expectations follow jinja2/Python semantics and were checked the
//   same way.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "qvl/error.hpp"
#include "test_util.h"
#include "tokenizer/chat_template.h"

namespace qvl {
namespace {

using OJson = nlohmann::ordered_json;

// Renders a template with no messages; `vars` become top-level variables.
std::string render_text(const std::string& source, const OJson& vars = OJson::object(),
                        ChatTemplateLimits limits = {}) {
  return ChatTemplate(source, limits).render_ordered(OJson::array(), false, vars);
}

using test::error_of;

const ChatTemplate& qwen3_vl() {
  static const ChatTemplate tmpl = ChatTemplate::from_model_dir(test::tiny_model_dir());
  return tmpl;
}

std::string make_temp_dir(const std::string& name) {
  const std::string dir = test::temp_dir() + "/chat_template_" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// ---- golden prompts ----------------------------------------------------------------------------

class GoldenPrompt : public ::testing::TestWithParam<const char*> {};

TEST_P(GoldenPrompt, MatchesTransformersByteForByte) {
  const auto golden = nlohmann::json::parse(test::read_file(test::golden_dir() + "/" + GetParam() + ".json"));
  EXPECT_EQ(qwen3_vl().render(golden.at("messages"), true), golden.at("prompt_text").get<std::string>());
}

TEST_P(GoldenPrompt, TokenizerConfigTemplateGivesTheSamePrompt) {
  // tokenizer_config.json carries the same template; load it on its own.
  const std::string dir = make_temp_dir("tokenizer_config_only");
  test::write_file(dir + "/tokenizer_config.json", test::read_file(test::tiny_model_dir() + "/tokenizer_config.json"));
  const ChatTemplate tmpl = ChatTemplate::from_model_dir(dir);
  const auto golden = nlohmann::json::parse(test::read_file(test::golden_dir() + "/" + GetParam() + ".json"));
  EXPECT_EQ(tmpl.render(golden.at("messages"), true), golden.at("prompt_text").get<std::string>());
}

INSTANTIATE_TEST_SUITE_P(ChatTemplate, GoldenPrompt, ::testing::Values("a_text_only", "b_one_image", "c_two_images"));

// ---- the Qwen3-VL template ---------------------------------------------------------------------

const char* kConversation = R"([
  {"role": "system", "content": "You are a helpful assistant."},
  {"role": "user", "content": "What is 2+2?"},
  {"role": "assistant", "content": "4"},
  {"role": "user", "content": "And 3+3?"}])";

// The conversation as the template renders it, before the generation prompt.
const std::string kConversationText =
    "<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n"
    "What is 2+2?<|im_end|>\n"
    "<|im_start|>assistant\n"
    "4<|im_end|>\n"
    "<|im_start|>user\n"
    "And 3+3?<|im_end|>\n";

TEST(Qwen3VlTemplate, SystemAndMultiTurn) {
  EXPECT_EQ(qwen3_vl().render_ordered(OJson::parse(kConversation), true),
            kConversationText + "<|im_start|>assistant\n");
}

TEST(Qwen3VlTemplate, WithoutGenerationPrompt) {
  EXPECT_EQ(qwen3_vl().render_ordered(OJson::parse(kConversation), false), kConversationText);
}

const char* kTools = R"({"tools": [
  {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city (°C).",
   "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City, e.g. \"Paris\""},
                  "days": {"type": "integer"}}, "required": ["city"]}}},
  {"type": "function", "function": {"name": "now", "description": "Current time.",
   "parameters": {"type": "object", "properties": {}}}}]})";

TEST(Qwen3VlTemplate, ToolsBlockWithTojson) {
  const OJson messages = OJson::parse(R"([{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": "Weather in Paris?"}])");
  EXPECT_EQ(qwen3_vl().render_ordered(messages, true, OJson::parse(kTools)),
            "<|im_start|>system\n"
            "Be brief.\n"
            "\n"
            "# Tools\n"
            "\n"
            "You may call one or more functions to assist with the user query.\n"
            "\n"
            "You are provided with function signatures within <tools></tools> XML tags:\n"
            "<tools>\n"
            "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Current weather in a "
            "city (°C).\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", "
            "\"description\": \"City, e.g. \\\"Paris\\\"\"}, \"days\": {\"type\": \"integer\"}}, \"required\": "
            "[\"city\"]}}}\n"
            "{\"type\": \"function\", \"function\": {\"name\": \"now\", \"description\": \"Current time.\", "
            "\"parameters\": {\"type\": \"object\", \"properties\": {}}}}\n"
            "</tools>\n"
            "\n"
            "For each function call, return a json object with function name and arguments within "
            "<tool_call></tool_call> XML tags:\n"
            "<tool_call>\n"
            "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n"
            "</tool_call><|im_end|>\n"
            "<|im_start|>user\n"
            "Weather in Paris?<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(Qwen3VlTemplate, SortedJsonSortsToolKeys) {
  // nlohmann::json sorts keys, so render() shows tool schemas sorted; render_ordered() keeps order.
  const nlohmann::json messages = nlohmann::json::parse(R"([{"role": "user", "content": "hi"}])");
  const std::string sorted = qwen3_vl().render(messages, true, nlohmann::json::parse(kTools));
  EXPECT_NE(sorted.find("{\"function\": {\"description\": \"Current time.\", \"name\": \"now\", \"parameters\": "
                        "{\"properties\": {}, \"type\": \"object\"}}, \"type\": \"function\"}"),
            std::string::npos);
}

TEST(Qwen3VlTemplate, ToolCallsAndToolResponses) {
  const OJson messages = OJson::parse(R"([
    {"role": "user", "content": "Weather in Paris and Lyon?"},
    {"role": "assistant", "content": "", "tool_calls": [
      {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 1}}},
      {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Lyon\"}"}}]},
    {"role": "tool", "content": "{\"temp\": 21}"},
    {"role": "tool", "content": [{"type": "text", "text": "{\"temp\": 18}"}]},
    {"role": "assistant", "content": "Paris is 21°C, Lyon 18°C."}])");
  EXPECT_EQ(qwen3_vl().render_ordered(messages, true),
            "<|im_start|>user\n"
            "Weather in Paris and Lyon?<|im_end|>\n"
            "<|im_start|>assistant\n"
            "<tool_call>\n"
            "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 1}}\n"
            "</tool_call>\n"
            "<tool_call>\n"
            "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Lyon\"}}\n"
            "</tool_call><|im_end|>\n"
            "<|im_start|>user\n"
            "<tool_response>\n"
            "{\"temp\": 21}\n"
            "</tool_response>\n"
            "<tool_response>\n"
            "{\"temp\": 18}\n"
            "</tool_response><|im_end|>\n"
            "<|im_start|>assistant\n"
            "Paris is 21°C, Lyon 18°C.<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(Qwen3VlTemplate, AssistantContentNoneFailsLikeTransformers) {
  // The template iterates a non-string content; for None jinja2 raises TypeError, and so do we.
  const OJson messages = OJson::parse(R"([{"role": "user", "content": "q"},
    {"role": "assistant", "content": null, "tool_calls": [{"name": "f", "arguments": {}}]}])");
  const Error e = error_of([&] { qwen3_vl().render_ordered(messages, true); });
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(std::string(e.what()).find("'NoneType' object is not iterable"), std::string::npos) << e.what();
}

const char* kMixedContent = R"([
  {"role": "system", "content": [{"type": "text", "text": "Describe media."}]},
  {"role": "user", "content": [
    {"type": "text", "text": "Look: "}, {"type": "image", "image": "a.png"}, {"type": "video", "video": "b.mp4"},
    {"type": "text", "text": " and "}, {"type": "image", "image": "c.png"}, {"type": "text", "text": "?"}]}])";

TEST(Qwen3VlTemplate, ContentListWithTextImageAndVideo) {
  EXPECT_EQ(qwen3_vl().render_ordered(OJson::parse(kMixedContent), true),
            "<|im_start|>system\n"
            "Describe media.<|im_end|>\n"
            "<|im_start|>user\n"
            "Look: <|vision_start|><|image_pad|><|vision_end|><|vision_start|><|video_pad|><|vision_end|> and "
            "<|vision_start|><|image_pad|><|vision_end|>?<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(Qwen3VlTemplate, AddVisionIdNumbersImagesAndVideos) {
  EXPECT_EQ(qwen3_vl().render_ordered(OJson::parse(kMixedContent), false, OJson{{"add_vision_id", true}}),
            "<|im_start|>system\n"
            "Describe media.<|im_end|>\n"
            "<|im_start|>user\n"
            "Look: Picture 1: <|vision_start|><|image_pad|><|vision_end|>Video 1: "
            "<|vision_start|><|video_pad|><|vision_end|> and Picture 2: "
            "<|vision_start|><|image_pad|><|vision_end|>?<|im_end|>\n");
}

// ---- a Qwen3-style thinking template -----------------------------------------------------------

const char* kThinkingTemplate = R"({%- for message in messages %}
    {%- if message.role == 'assistant' %}
        {%- set content = message.content %}
        {%- set reasoning = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning = message.reasoning_content %}
        {%- elif '</think>' in content %}
            {%- set reasoning = content.split('</think>')[0].split('<think>')[-1].strip('\n') %}
            {%- set content = content.split('</think>')[-1].lstrip('\n') %}
        {%- endif %}
        {%- if loop.last and reasoning %}
            {{- '<|im_start|>assistant\n<think>\n' + reasoning + '\n</think>\n\n' + content + '<|im_end|>\n' }}
        {%- else %}
            {{- '<|im_start|>assistant\n' + content + '<|im_end|>\n' }}
        {%- endif %}
    {%- else %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}
)";

const char* kThinkingHistory = R"([{"role": "user", "content": "Hi"},
  {"role": "assistant", "content": "<think>\nGreet back.\n</think>\n\nHello!"},
  {"role": "user", "content": "2+2?"}])";

TEST(ThinkingTemplate, DisabledThinkingAddsEmptyThinkBlock) {
  EXPECT_EQ(ChatTemplate(kThinkingTemplate)
                .render_ordered(OJson::parse(kThinkingHistory), true, OJson{{"enable_thinking", false}}),
            "<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n"
            "<|im_start|>user\n2+2?<|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

TEST(ThinkingTemplate, EnabledOrUnsetThinkingDropsOldReasoning) {
  const std::string expected =
      "<|im_start|>user\nHi<|im_end|>\n"
      "<|im_start|>assistant\nHello!<|im_end|>\n"
      "<|im_start|>user\n2+2?<|im_end|>\n"
      "<|im_start|>assistant\n";
  const ChatTemplate tmpl(kThinkingTemplate);
  EXPECT_EQ(tmpl.render_ordered(OJson::parse(kThinkingHistory), true, OJson{{"enable_thinking", true}}), expected);
  EXPECT_EQ(tmpl.render_ordered(OJson::parse(kThinkingHistory), true), expected);
}

TEST(ThinkingTemplate, LastTurnKeepsReasoning) {
  const ChatTemplate tmpl(kThinkingTemplate);
  EXPECT_EQ(tmpl.render_ordered(OJson::parse(R"([{"role": "user", "content": "2+2?"},
              {"role": "assistant", "content": "<think>\nadd\n</think>\n\n4"}])"), false),
            "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\nadd\n</think>\n\n4<|im_end|>\n");
  EXPECT_EQ(tmpl.render_ordered(OJson::parse(R"([{"role": "user", "content": "2+2?"},
              {"role": "assistant", "content": "4", "reasoning_content": "2 plus 2 is 4"}])"), false),
            "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n2 plus 2 is 4\n</think>\n\n4<|im_end|>\n");
}

// ---- interpreter: expressions -----------------------------------------------------------------

TEST(JinjaExpressions, Arithmetic) {
  EXPECT_EQ(render_text("{{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % -3 }}|{{ 1 / 2 }}|"
                        "{{ 10 / 2 }}|{{ 2 ** 10 }}|{{ -2 ** 2 }}|{{ 7.5 // 2 }}"),
            "7|9|3|-4|-2|0.5|5.0|1024|4|3.0");
}

TEST(JinjaExpressions, NumbersPrintLikePython) {
  EXPECT_EQ(render_text("{{ 1e16 }}|{{ 1e15 }}|{{ 0.0001 }}|{{ 0.00001 }}|{{ 0.1 + 0.2 }}|{{ 1.5e3 }}|{{ 1_000 }}|"
                        "{{ 0x1F }}|{{ -0.0 }}|{{ 1/3 }}"),
            "1e+16|1000000000000000.0|0.0001|1e-05|0.30000000000000004|1500.0|1000|31|-0.0|0.3333333333333333");
}

TEST(JinjaExpressions, StringsAndConcat) {
  EXPECT_EQ(render_text(R"({{ 'a' ~ 1 ~ none ~ true }}|{{ "it's" }}|{{ 'tab\there' }}|{{ '\u00e9\x41' }}|{{ 'ab' * 2 }}|)"
                        R"({{ 'a' 'b' }}|{{ 'x' + 'y' }})"),
            "a1NoneTrue|it's|tab\there|\xC3\xA9" "A|abab|ab|xy");
}

TEST(JinjaExpressions, ContainersPrintAsPythonRepr) {
  EXPECT_EQ(render_text(R"({{ [1, 'a', none, true, 1.5] }}|{{ {'k': [1, 2]} }}|{{ (1,) }}|{{ (1, 2) }}|)"
                        R"({{ ["it's", 'say "hi"'] }})"),
            R"([1, 'a', None, True, 1.5]|{'k': [1, 2]}|(1,)|(1, 2)|["it's", 'say "hi"'])");
}

TEST(JinjaExpressions, ComparisonsAndLogic) {
  EXPECT_EQ(render_text("{{ 1 == 1.0 }}|{{ 1 < 2 < 3 }}|{{ 1 < 3 < 2 }}|{{ 'a' in 'cat' }}|{{ 3 not in [1, 2] }}|"
                        "{{ 'k' in {'k': 1} }}|{{ 0 or 'x' }}|{{ 1 and 2 }}|{{ not none }}|{{ [1, 2] < [1, 3] }}"),
            "True|True|False|True|True|True|x|2|True|True");
}

TEST(JinjaExpressions, TernaryAndUndefined) {
  EXPECT_EQ(render_text("[{{ missing }}]|{{ missing is defined }}|{{ 'y' if missing else 'n' }}|{{ 'y' if false }}|"
                        "{{ missing|default('d') }}|{{ none|default('d') }}|{{ ''|default('d', true) }}|"
                        "{{ {}.x is defined }}|{{ missing|length }}"),
            "[]|False|n||d|None|d|False|0");
}

TEST(JinjaExpressions, SubscriptsAndSlices) {
  const OJson vars = OJson::parse(R"({"xs": [1, 2, 3, 4], "d": {"k": "v", "items": 1}, "s": "héllo"})");
  EXPECT_EQ(render_text("{{ xs[0] }}{{ xs[-1] }}|{{ xs[1:] }}|{{ xs[:-1] }}|{{ xs[::-1] }}|{{ xs[::2] }}|{{ xs.0 }}|"
                        "{{ d.k }}{{ d['k'] }}|{{ d['items'] }}|{{ xs[10] is defined }}|{{ s[1:3] }}|{{ s[-1] }}",
                        vars),
            "14|[2, 3, 4]|[1, 2, 3]|[4, 3, 2, 1]|[1, 3]|1|vv|1|False|\xC3\xA9l|o");
}

TEST(JinjaExpressions, Tests) {
  EXPECT_EQ(render_text("{{ 'a' is string }}{{ {} is mapping }}{{ [] is iterable }}{{ 'a' is sequence }}"
                        "{{ 1 is number }}{{ 1.5 is integer }}{{ none is none }}{{ true is true }}{{ 1 is true }}"
                        "{{ 3 is odd }}{{ 4 is divisibleby 2 }}{{ x is not defined }}{{ x is undefined }}"
                        "{{ 1 is not none }}{{ 2 is eq 2 }}"),
            "TrueTrueTrueTrueTrueFalseTrueTrueFalseTrueTrueTrueTrueTrueTrue");
}

TEST(JinjaExpressions, StringMethods) {
  EXPECT_EQ(render_text(R"({{ ' x '.strip() }}|{{ 'a</think>b'.split('</think>')[-1] }}|{{ '\n\nx'.lstrip('\n') }}|)"
                        R"({{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}|{{ 'a b  c'.split() }}|)"
                        R"({{ 'a-b-c'.rsplit('-', 1) }}|{{ 'aXa'.replace('a', 'b') }}|{{ 'Hi'.upper() }}{{ 'Hi'.lower() }}|)"
                        R"({{ 'x\n'.rstrip() }}|{{ 'hello world'.title() }})"),
            "x|b|x|TrueTrue|['a', 'b', 'c']|['a-b', 'c']|bXb|HIhi|x|Hello World");
}

TEST(JinjaExpressions, DictMethods) {
  const OJson vars = OJson::parse(R"({"d": {"k": "v", "n": 2}})");
  EXPECT_EQ(render_text("{{ d.get('k') }}{{ d.get('z') }}{{ d.get('z', 0) }}|"
                        "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{{ d.keys()|list }}|{{ d.values()|list }}",
                        vars),
            "vNone0|k=v;n=2;|['k', 'n']|['v', 2]");
}

// ---- interpreter: filters ---------------------------------------------------------------------

TEST(JinjaFilters, Common) {
  const OJson vars = OJson::parse(R"({"x": "<b>", "m": {"b": 1, "a": 2}})");
  EXPECT_EQ(render_text("{{ [3, 1, 2]|sort|join(',') }}|{{ 'a,b'|replace(',', ';') }}|{{ '  x  '|trim }}|"
                        "{{ 'Ab'|upper }}{{ 'Ab'|lower }}|{{ [1, 2]|length }}{{ 'h\xC3\xA9llo'|length }}|"
                        "{{ [1, 2]|first }}{{ [1, 2]|last }}|{{ '7'|int + 1 }}|{{ 'x'|int }}|{{ 3|string ~ 'x' }}|"
                        "{{ m|items|list }}|{{ 'ab'|list }}|{{ x|safe }}|{{ 1|float }}|{{ 'hello'|capitalize }}",
                        vars),
            "1,2,3|a;b|x|ABab|25|12|8|0|3x|[('b', 1), ('a', 2)]|['a', 'b']|<b>|1.0|Hello");
}

TEST(JinjaFilters, SelectMapAndFriends) {
  const OJson vars = OJson::parse(R"({"msgs": [{"role": "user", "n": 1}, {"role": "assistant", "n": 2},
                                                {"role": "user", "n": 3}]})");
  EXPECT_EQ(render_text("{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='n')|list }}|"
                        "{{ msgs|rejectattr('role', 'equalto', 'user')|list|length }}|"
                        "{{ [1, 2, 3, 4]|select('odd')|list }}|{{ ['a', 'b']|map('upper')|join }}|"
                        "{{ [1, 1, 2]|unique|list }}|{{ [1, 2, 3]|sum }}|{{ [2, 9, 4]|max }}",
                        vars),
            "[1, 3]|1|[1, 3]|AB|[1, 2]|6|9");
}

TEST(JinjaFilters, TojsonLikeTransformers) {
  const OJson vars = OJson::parse(R"({"v": {"b": [1, 2.5, null, true], "a": "\u00e9\"\n<"}})");
  EXPECT_EQ(render_text("{{ v|tojson }}", vars), R"({"b": [1, 2.5, null, true], "a": "é\"\n<"})");
  EXPECT_EQ(render_text("{{ v|tojson(indent=2) }}", vars),
            "{\n  \"b\": [\n    1,\n    2.5,\n    null,\n    true\n  ],\n  \"a\": \"\xC3\xA9\\\"\\n<\"\n}");
  EXPECT_EQ(render_text("{{ v|tojson(sort_keys=true) }}", vars), R"({"a": "é\"\n<", "b": [1, 2.5, null, true]})");
  EXPECT_EQ(render_text("{{ v.a|tojson(ensure_ascii=true) }}", vars), R"("\u00e9\"\n<")");
}

// ---- interpreter: whitespace control ---------------------------------------------------------

TEST(JinjaWhitespace, TrimAndLstripBlocks) {
  // lstrip_blocks removes the indentation before a block tag; trim_blocks the newline after it.
  EXPECT_EQ(render_text("a\n  {% if true %}\n  b\n  {% endif %}\n  c\n"), "a\n  b\n  c");
  // Not for {{ }}: their surrounding whitespace stays.
  EXPECT_EQ(render_text("  {{ 'x' }}\n  {{ 'y' }}\n"), "  x\n  y");
  // A comment alone on its line disappears entirely.
  EXPECT_EQ(render_text("x\n   {# note #}\ny"), "x\ny");
}

TEST(JinjaWhitespace, MinusAndPlusModifiers) {
  EXPECT_EQ(render_text("a  {{- ' b ' -}}  c"), "a b c");
  EXPECT_EQ(render_text("a\n  {%- if true -%}\n  b  {%- endif %}\nc"), "abc");  // trim_blocks eats the \n too
  EXPECT_EQ(render_text("  {%+ if true %}x{% endif %}"), "  x");       // + keeps the indentation
  EXPECT_EQ(render_text("{% if true +%}\nx{% endif %}"), "\nx");        // + keeps the newline
  EXPECT_EQ(render_text("a {#- c -#} b"), "ab");
}

TEST(JinjaWhitespace, NewlinesAndRaw) {
  EXPECT_EQ(render_text("x\r\ny\n\n"), "x\ny\n");  // \r\n normalized, one trailing newline dropped
  EXPECT_EQ(render_text("{% raw %}{{ x }}{% endraw %}"), "{{ x }}");
}

// ---- interpreter: statements ------------------------------------------------------------------

TEST(JinjaStatements, LoopVariables) {
  EXPECT_EQ(render_text("{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex0 }}"
                        "{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }};"
                        "{% endfor %}"),
            "102TrueFalse3b;211FalseFalse3ac;320FalseTrue3b;");
}

TEST(JinjaStatements, LoopFilterElseBreakContinue) {
  EXPECT_EQ(render_text("{% for i in range(6) if i is odd %}{{ loop.index }}:{{ i }}/{{ loop.length }} {% endfor %}"),
            "1:1/3 2:3/3 3:5/3 ");
  EXPECT_EQ(render_text("{% for i in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render_text("{% for i in range(9) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}"
                        "{% endif %}{{ i }}{% endfor %}"),
            "023");
  EXPECT_EQ(render_text("{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ b }}{% endfor %}"
                        "{{ loop.index }};{% endfor %}"),
            "1x2y1;1x2y2;");
  EXPECT_EQ(render_text("{% for k, v in [('a', 1), ('b', 2)] %}{{ k }}{{ v }}{{ loop.cycle('-', '+') }}{% endfor %}"),
            "a1-b2+");
}

TEST(JinjaStatements, ScopesAndNamespace) {
  // A set inside a loop body does not survive the iteration; namespace() attributes do.
  EXPECT_EQ(render_text("{% set c = 0 %}{% for i in [1, 2] %}{% set c = c + i %}{% endfor %}{{ c }}|"
                        "{% set ns = namespace(c=0, seen=false) %}{% for i in [1, 2] %}{% set ns.c = ns.c + i %}"
                        "{% set ns.seen = true %}{% endfor %}{{ ns.c }}{{ ns.seen }}|"
                        "{% if true %}{% set z = 5 %}{% endif %}{{ z }}"),
            "0|3True|5");
}

TEST(JinjaStatements, SetBlockWithAndMacros) {
  EXPECT_EQ(render_text("{% set a, b = 1, 2 %}{{ a }}{{ b }}|{% set x %}[{{ a + b }}]{% endset %}{{ x }}|"
                        "{% with y = 7 %}{{ y }}{% endwith %}{{ y is defined }}"),
            "12|[3]|7False");
  EXPECT_EQ(render_text("{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}"
                        "{{ greet('Ann') }} {{ greet('Bob', greeting='Hi') }}"),
            "Hello, Ann! Hi, Bob!");
}

TEST(JinjaStatements, Globals) {
  EXPECT_EQ(render_text("{{ range(3)|list }}{{ range(5, 0, -2)|list }}|{{ dict(a=1) }}"), "[0, 1, 2][5, 3, 1]|{'a': 1}");
  EXPECT_EQ(render_text("{{ strftime_now('%Y')|length }}"), "4");
}

// ---- errors and limits ------------------------------------------------------------------------

TEST(ChatTemplateErrors, SyntaxErrorNamesLineAndColumn) {
  Error e = error_of([] { ChatTemplate("Hello\n{% if x %}\n{{ 1 + }}\n{% endif %}"); });
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidFile);
  EXPECT_NE(std::string(e.what()).find("line 3, column 8"), std::string::npos) << e.what();

  e = error_of([] { ChatTemplate("abc\n  {% for x in y %}\nno end"); });
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidFile);
  EXPECT_NE(std::string(e.what()).find("line 2, column 6"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("endfor"), std::string::npos) << e.what();

  EXPECT_EQ(error_of([] { ChatTemplate("{{ x|no_such_filter }}"); }).kind(), ErrorKind::kInvalidFile);
  EXPECT_EQ(error_of([] { ChatTemplate("{{ 'unterminated }}"); }).kind(), ErrorKind::kInvalidFile);
  EXPECT_EQ(error_of([] { ChatTemplate("{% break %}"); }).kind(), ErrorKind::kInvalidFile);
  EXPECT_EQ(error_of([] { ChatTemplate("{% include 'other.jinja' %}"); }).kind(), ErrorKind::kUnsupported);
}

TEST(ChatTemplateErrors, RaiseExceptionCarriesTheMessage) {
  const ChatTemplate tmpl("{% if messages[0].role != 'user' %}{{ raise_exception('Bad role: ' ~ messages[0].role) }}"
                          "{% endif %}ok");
  const Error e = error_of([&] { tmpl.render(nlohmann::json::parse(R"([{"role": "robot", "content": ""}])"), true); });
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_STREQ(e.what(), "Bad role: robot");
  EXPECT_EQ(tmpl.render(nlohmann::json::parse(R"([{"role": "user", "content": ""}])"), true), "ok");
}

TEST(ChatTemplateErrors, UndefinedAndTypeErrors) {
  EXPECT_EQ(error_of([] { render_text("{{ missing.attr }}"); }).kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(error_of([] { render_text("{{ 'a' + 1 }}"); }).kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(error_of([] { render_text("{{ 1 / 0 }}"); }).kind(), ErrorKind::kInvalidArgument);
  const Error e = error_of([] { render_text("line 1\n{{ missing + 1 }}"); });
  EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  EXPECT_EQ(error_of([] { qwen3_vl().render(nlohmann::json::object(), true); }).kind(), ErrorKind::kInvalidArgument);
}

TEST(ChatTemplateLimits, RunawayLoopIsStopped) {
  const Error e =
      error_of([] { render_text("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"); });
  EXPECT_EQ(e.kind(), ErrorKind::kLimitExceeded);
  EXPECT_NE(std::string(e.what()).find("loop iterations"), std::string::npos) << e.what();

  ChatTemplateLimits limits;
  limits.max_loop_iterations = 10;
  EXPECT_EQ(render_text("{% for i in range(10) %}.{% endfor %}", OJson::object(), limits), "..........");
  EXPECT_EQ(error_of([&] { render_text("{% for i in range(11) %}.{% endfor %}", OJson::object(), limits); }).kind(),
            ErrorKind::kLimitExceeded);
}

TEST(ChatTemplateLimits, RecursionOutputAndSizeAreBounded) {
  EXPECT_EQ(error_of([] { render_text("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"); }).kind(),
            ErrorKind::kLimitExceeded);
  EXPECT_EQ(error_of([] { ChatTemplate("{{ " + std::string(1000, '(') + "1" + std::string(1000, ')') + " }}"); }).kind(),
            ErrorKind::kLimitExceeded);
  EXPECT_EQ(error_of([] { ChatTemplate("{{ 1" + std::string(5000, '~') + " }}"); }).kind(), ErrorKind::kInvalidFile);
  std::string chain = "{{ 1";
  for (int i = 0; i < 5000; ++i) chain += " ~ 1";
  EXPECT_EQ(error_of([&] { ChatTemplate(chain + " }}"); }).kind(), ErrorKind::kLimitExceeded);

  ChatTemplateLimits limits;
  limits.max_output_bytes = 100;
  EXPECT_EQ(error_of([&] { render_text("{% for i in range(50) %}abc{% endfor %}", OJson::object(), limits); }).kind(),
            ErrorKind::kLimitExceeded);
  EXPECT_EQ(error_of([] { render_text("{{ 'x' * 1000000000 }}"); }).kind(), ErrorKind::kLimitExceeded);
  EXPECT_EQ(error_of([] { render_text("{{ range(1000000000)|length }}"); }).kind(), ErrorKind::kLimitExceeded);
  EXPECT_EQ(error_of([] {
              render_text("{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = [ns.l] %}{% endfor %}");
            }).kind(),
            ErrorKind::kLimitExceeded);
}

// ---- loading -------------------------------------------------------------------------------------

TEST(ChatTemplateLoading, FromTinyModelDir) {
  const ChatTemplate& tmpl = qwen3_vl();
  const auto json = nlohmann::json::parse(test::read_file(test::tiny_model_dir() + "/chat_template.json"));
  EXPECT_EQ(tmpl.source(), json.at("chat_template").get<std::string>());
  // Special tokens of tokenizer_config.json are passed like transformers does; null ones are not.
  EXPECT_EQ(tmpl.default_variables().at("eos_token"), "<|im_end|>");
  EXPECT_EQ(tmpl.default_variables().at("pad_token"), "<|endoftext|>");
  EXPECT_FALSE(tmpl.default_variables().contains("bos_token"));
}

TEST(ChatTemplateLoading, SourcesAndPrecedence) {
  const std::string dir = make_temp_dir("precedence");
  EXPECT_EQ(error_of([&] { ChatTemplate::from_model_dir(dir); }).kind(), ErrorKind::kNotFound);

  test::write_file(dir + "/tokenizer_config.json", R"({"chat_template": "{{ eos_token }}|config", "eos_token": "</s>"})");
  EXPECT_EQ(ChatTemplate::from_model_dir(dir).render(nlohmann::json::array(), false), "</s>|config");

  test::write_file(dir + "/chat_template.jinja", "{{ eos_token }}|jinja\n");
  EXPECT_EQ(ChatTemplate::from_model_dir(dir).render(nlohmann::json::array(), false), "</s>|jinja");

  test::write_file(dir + "/chat_template.json", R"({"chat_template": "json"})");
  EXPECT_EQ(ChatTemplate::from_model_dir(dir).render(nlohmann::json::array(), false), "json");

  test::write_file(dir + "/chat_template.json", R"({"chat_template": )");
  EXPECT_EQ(error_of([&] { ChatTemplate::from_model_dir(dir); }).kind(), ErrorKind::kInvalidFile);
}

TEST(ChatTemplateLoading, NamedTemplatesInTokenizerConfig) {
  const std::string dir = make_temp_dir("named");
  test::write_file(dir + "/tokenizer_config.json",
                   R"({"chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}]})");
  EXPECT_EQ(ChatTemplate::from_model_dir(dir).render(nlohmann::json::array(), false), "D");
  EXPECT_EQ(ChatTemplate::from_model_dir(dir, "tool_use").render(nlohmann::json::array(), false), "T");
  EXPECT_EQ(error_of([&] { ChatTemplate::from_model_dir(dir, "rag"); }).kind(), ErrorKind::kNotFound);
}

TEST(ChatTemplateLoading, ExtraVariablesOverrideDefaults) {
  ChatTemplate tmpl("{{ eos_token }}{{ tools is none }}{{ documents is none }}{{ add_generation_prompt }}");
  tmpl.set_default_variables({{"eos_token", "<e>"}});
  EXPECT_EQ(tmpl.render(nlohmann::json::array(), true), "<e>TrueTrueTrue");
  EXPECT_EQ(tmpl.render(nlohmann::json::array(), false, {{"eos_token", "<x>"}, {"tools", {1}}}), "<x>FalseTrueFalse");
}

TEST(ChatTemplateConcurrency, OneTemplateRendersOnManyThreads) {
  const auto golden = nlohmann::json::parse(test::read_file(test::golden_dir() + "/c_two_images.json"));
  const std::string expected = golden.at("prompt_text").get<std::string>();
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) mismatches[t] += qwen3_vl().render(golden.at("messages"), true) != expected;
    });
  for (auto& thread : threads) thread.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace qvl
