// What a loaded Model holds (the library's side of qvl::Model). Everything here is read-only after load, so generators on
// several threads can share it (the thread pool serializes their parallel regions).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "core/thread_pool.h"
#include "formats/checkpoint.h"
#include "formats/model_config.h"
#include "image/preprocess.h"
#include "model/mrope_positions.h"
#include "model/qwen3_vl.h"
#include "qvl/qvl.hpp"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "video/sampling.h"

namespace qvl {

struct Model::Impl {
  std::string dir;
  ModelConfig config;
  GenerationConfig generation;
  std::unique_ptr<Checkpoint> checkpoint;
  std::unique_ptr<Qwen3VL> qwen;  // both towers and their wiring
  std::unique_ptr<BpeTokenizer> tokenizer;
  std::optional<ChatTemplate> chat_template;
  PreprocessorConfig preprocessor;
  VideoPreprocessorConfig video_preprocessor;
  std::unique_ptr<ThreadPool> pool;
  kernels::KvType kv_type = kernels::KvType::kF16;  // of each generator's cache (already fitted to head_dim)
  ModelInfo info;

  const ChatTemplate& require_chat_template() const;
};

// How the library reaches a Model's internals (the public class has no accessor for them).
struct ModelInternals {
  static const Model::Impl& of(const Model& model) { return *model.impl_; }
};

}  // namespace qvl
