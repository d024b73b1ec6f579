#include "devtools/golden_dump.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/check.h"
#include "core/error_boundary.h"
#include "core/fs_util.h"
#include "core/json_util.h"
#include "api/generator_impl.h"

namespace qvl {

namespace fs = std::filesystem;

namespace {

Json write_f32(const fs::path& dir, const std::string& name, const float* data, std::vector<int64_t> shape) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n * sizeof(float)));
  if (!out) fail(ErrorKind::kIo, "cannot write '", (dir / name).string(), "'");
  return {{"file", name}, {"dtype", "float32"}, {"shape", shape}};
}

void write_json(const fs::path& path, const Json& j) {
  std::ofstream out(path, std::ios::trunc);
  out << j.dump(1) << "\n";
  if (!out) fail(ErrorKind::kIo, "cannot write '", path.string(), "'");
}

Json run_case(const std::shared_ptr<Model>& model, const fs::path& fixture, const std::string& name,
              const fs::path& out_dir, const DumpOptions& options) {
  Json spec = load_json_file((fixture / (name + ".json")).string());
  const Json& messages = json_require(spec, "messages", name + ".json");
  ProcessorOptions po;
  // Video cases may ask for qwen-vl-utils' per-frame pixel cap.
  if (spec.contains("video_kwargs") && spec["video_kwargs"].is_object())
    po.video.cap_pixels_per_frame = json_bool_or(spec["video_kwargs"], "cap_pixels_per_frame", false, name + ".json");
  Processor processor(model, po);
  ProcessedInputs inputs = processor.process(messages.dump(), {}, true, fixture.string());

  GeneratorParams params;  // greedy, no EOS stop, exactly N tokens: what the reference ran
  params.do_sample = false;
  params.stop_at_eos = false;
  params.max_new_tokens = options.greedy_tokens;
  Generator gen(model, params);
  Generator::Impl& g = GeneratorInternals::of(gen);
  Json out;
  out["name"] = name;
  out["input_ids"] = inputs.input_ids;
  out["image_grid_thw"] = inputs.image_grid_thw;
  if (!inputs.video_grid_thw.empty()) {
    out["video_grid_thw"] = inputs.video_grid_thw;
    out["video_frame_indices"] = inputs.video_frame_indices;
    out["video_timestamps"] = inputs.video_timestamps;
  }
  // The prompt's intermediates are written while the generator shows them.
  g.observe_prompt = [&](const Generator::Impl::PromptIntermediates& seen) {
    Json rows = Json::array({Json::array(), Json::array(), Json::array()});
    for (const Position3& p : seen.positions)
      for (int c = 0; c < 3; ++c) rows[c].push_back(p[static_cast<size_t>(c)]);
    out["position_ids"] = rows;
    double norm = 0;
    for (float v : seen.last_hidden) norm += static_cast<double>(v) * v;
    out["final_hidden_norm_last"] = std::sqrt(norm);
    if (inputs.image_grid_thw.empty() && inputs.video_grid_thw.empty()) return;
    out["pixel_values"] = nullptr;
    if (!inputs.image_grid_thw.empty())
      out["pixel_values"] = write_f32(out_dir, name + ".pixel_values.f32.bin", inputs.pixel_values.data(),
                                      {inputs.pixel_rows, inputs.pixel_cols});
    if (!inputs.video_grid_thw.empty())
      out["pixel_values_videos"] = write_f32(out_dir, name + ".pixel_values_videos.f32.bin",
                                             inputs.pixel_values_videos.data(),
                                             {inputs.video_pixel_rows, inputs.pixel_cols});
    const VisionOutput& v = seen.vision;
    out["vision_embeds"] = write_f32(out_dir, name + ".vision_embeds.f32.bin", v.embeds.data(), {v.tokens, v.hidden});
    Json ds = Json::array();
    for (size_t j = 0; j < v.deepstack.size(); ++j)
      ds.push_back(write_f32(out_dir, name + ".deepstack" + std::to_string(j) + ".f32.bin", v.deepstack[j].data(),
                             {v.tokens, v.hidden}));
    out["deepstack_embeds"] = ds;
  };
  gen.append_inputs(inputs);
  g.observe_prompt = nullptr;
  out["rope_deltas"] = g.next_position() - static_cast<int64_t>(inputs.input_ids.size());
  out["last_logits"] = write_f32(out_dir, name + ".last_logits.f32.bin", g.logits.data(),
                                 {static_cast<int64_t>(g.logits.size())});
  std::vector<int32_t> tokens;
  while (!gen.is_done()) {
    gen.generate_next_token();
    tokens.push_back(gen.next_token());
  }
  out["greedy_tokens"] = tokens;
  out["prompt_text"] = inputs.prompt_text;
  return out;
}

int dump_fixture_checked(const std::string& fixture_dir, const std::string& out_dir, const DumpOptions& options,
                         std::ostream& log) {
  const fs::path fixture(fixture_dir), out(out_dir);
  Json manifest = load_json_file((fixture / "manifest.json").string());
  // The model: a Hugging Face folder ("model_dir"), or llama.cpp's text GGUF + projector
  // ("gguf", "mmproj").
  ModelOptions mo;
  const bool llama_gguf = manifest.contains("gguf");
  const std::string model_dir =
      (fixture / json_require(manifest, llama_gguf ? "gguf" : "model_dir", "manifest.json").get<std::string>()).string();
  if (llama_gguf && manifest.contains("mmproj"))
    mo.mmproj = (fixture / json_require(manifest, "mmproj", "manifest.json").get<std::string>()).string();
  create_directories_or_fail(out.string());
  mo.threads = options.threads;
  mo.context_length = 8192;
  mo.kv_cache_type = options.kv_cache_type;
  mo.vision_attention = options.vision_attention;
  mo.weights_type = options.weights_type;
  auto model = Model::load(model_dir, mo);

  int failures = 0;
  // The video cases (manifest_video.json beside manifest.json) run with the same model.
  Json cases = json_require(manifest, "cases", "manifest.json");
  if (fs::exists(fixture / "manifest_video.json")) {
    const Json video = load_json_file((fixture / "manifest_video.json").string());
    for (const Json& c : json_require(video, "cases", "manifest_video.json")) cases.push_back(c);
  }
  for (const Json& c : cases) {
    const std::string name = c.is_string() ? c.get<std::string>() : c.value("name", std::string());
    try {
      write_json(out / (name + ".json"), run_case(model, fixture, name, out, options));
      log << "case " << name << ": ok\n";
    } catch (const Error& e) {
      ++failures;
      log << "case " << name << ": error: " << e.what() << "\n";
    }
  }

  if (manifest.contains("tokenizer_cases") && manifest["tokenizer_cases"].is_string()) {
    const std::string file = manifest["tokenizer_cases"].get<std::string>();
    try {
      Json in = load_json_file((fixture / file).string());
      Tokenizer tokenizer(model);
      Json cases = Json::array();
      for (const Json& tc : json_require(in, "cases", file)) {
        const std::string text = json_require(tc, "text", file).get<std::string>();
        std::vector<int32_t> ids = tokenizer.encode(text);
        cases.push_back({{"text", text}, {"ids", ids}, {"decode", tokenizer.decode(ids, false)},
                         {"decode_skip_special_tokens", tokenizer.decode(ids, true)}});
      }
      write_json(out / file, Json{{"cases", cases}});
      log << "tokenizer cases: " << cases.size() << " written\n";
    } catch (const Error& e) {
      ++failures;
      log << "tokenizer cases: error: " << e.what() << "\n";
    }
  }
  return failures;
}

}  // namespace

int dump_fixture(const std::string& fixture_dir, const std::string& out_dir, const DumpOptions& options,
                 std::ostream& log) {
  return translate_exceptions(
      "dumping the fixture '" + fixture_dir + "'", [&] { return dump_fixture_checked(fixture_dir, out_dir, options, log); },
      ErrorKind::kInvalidFile);
}

}  // namespace qvl
