#include "core/error_boundary.h"
#include "core/check.h"
#include "core/json_util.h"
#include "tokenizer/stop_strings.h"
#include "api/model_impl.h"

namespace qvl {

struct TokenizerStream::Impl {
  BpeTokenizer::StreamDecoder decoder;
  StopStringFilter stops;
};

TokenizerStream::TokenizerStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TokenizerStream::~TokenizerStream() = default;
TokenizerStream::TokenizerStream(TokenizerStream&&) noexcept = default;
std::string TokenizerStream::decode(int32_t token) {
  return translate_exceptions("decoding a token", [&] { return impl_->stops.push(impl_->decoder.put(token)); });
}
std::string TokenizerStream::flush() {
  return translate_exceptions("decoding tokens", [&] {
    const std::string rest = impl_->stops.push(impl_->decoder.flush());
    return rest + impl_->stops.finish();
  });
}
bool TokenizerStream::stopped() const { return impl_->stops.stopped(); }

Tokenizer::Tokenizer(std::shared_ptr<const Model> model) : model_(std::move(model)) {
  if (!model_) fail(ErrorKind::kInvalidArgument, "Tokenizer needs a loaded model");
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  return translate_exceptions("encoding text", [&] {
    require_utf8(text, "the text");
    return ModelInternals::of(*model_).tokenizer->encode(text);
  });
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  return translate_exceptions("decoding tokens", [&] { return ModelInternals::of(*model_).tokenizer->decode(ids, skip_special_tokens); });
}

int32_t Tokenizer::token_to_id(std::string_view token) const {
  return translate_exceptions("looking up a token", [&] { return ModelInternals::of(*model_).tokenizer->token_to_id(token); });
}

std::string Tokenizer::apply_chat_template(const std::string& messages_json, bool add_generation_prompt,
                                           const std::string& extra_json) const {
  return translate_exceptions("rendering the chat template", [&] {
    require_utf8(messages_json, "the messages JSON");
    require_utf8(extra_json, "the chat template variables JSON");
    return ModelInternals::of(*model_).require_chat_template().render_ordered(
        parse_json_ordered(messages_json, "messages"), add_generation_prompt,
        parse_json_ordered(extra_json, "chat template variables"));
  });
}

TokenizerStream Tokenizer::create_stream(bool skip_special_tokens) const { return create_stream({}, skip_special_tokens); }

TokenizerStream Tokenizer::create_stream(const std::vector<std::string>& stop, bool skip_special_tokens) const {
  return translate_exceptions("creating a token stream", [&] {
    return TokenizerStream(std::make_unique<TokenizerStream::Impl>(TokenizerStream::Impl{
        BpeTokenizer::StreamDecoder(*ModelInternals::of(*model_).tokenizer, skip_special_tokens), StopStringFilter(stop)}));
  });
}

}  // namespace qvl
