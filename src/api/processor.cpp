// Processor: chat messages + images → token ids with expanded image pads + pixel values.
#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error_boundary.h"
#include "core/check.h"
#include "core/base64.h"
#include "core/fs_util.h"
#include "core/json_util.h"
#include "api/model_impl.h"
#include "video/preprocess_video.h"

namespace qvl {

namespace fs = std::filesystem;

namespace {

template <class J>
bool is_image_item(const J& item) {
  if (!item.is_object()) return false;
  if (item.contains("type") && item["type"].is_string())
    return item["type"] == "image" || item["type"] == "image_url";
  return item.contains("image") || item.contains("image_url");
}

template <class J>
bool is_video_item(const J& item) {
  if (!item.is_object()) return false;
  if (item.contains("type") && item["type"].is_string()) return item["type"] == "video" || item["type"] == "video_url";
  return item.contains("video") || item.contains("video_url");
}

// A video item's own settings over the processor's: fps, min/max_frames, min/max_pixels and
// video_start / video_end (seconds), as qwen-vl-utils names them.
template <class J>
VideoOptions item_video_options(const J& item, VideoOptions o) {
  auto number = [&](const char* key) -> std::optional<double> {
    if (!item.contains(key) || item[key].is_null()) return std::nullopt;
    if (!item[key].is_number()) fail(ErrorKind::kInvalidArgument, "the video item's '", key, "' must be a number");
    return item[key].template get<double>();
  };
  auto integer = [&](const char* key) -> std::optional<int64_t> {
    const auto v = number(key);
    if (!v) return std::nullopt;
    if (*v != std::floor(*v) || std::fabs(*v) > 9e15)
      fail(ErrorKind::kInvalidArgument, "the video item's '", key, "' must be an integer, got ", *v);
    return static_cast<int64_t>(*v);
  };
  if (auto v = number("fps")) o.fps = v;
  if (auto v = integer("min_frames")) o.min_frames = v;
  if (auto v = integer("max_frames")) o.max_frames = v;
  if (auto v = integer("min_pixels")) o.min_pixels = v;
  if (auto v = integer("max_pixels")) o.max_pixels = v;
  if (auto v = number("video_start")) o.start_seconds = v;
  if (auto v = number("video_end")) o.end_seconds = v;
  return o;
}

// Loads and preprocesses the video an item refers to: a path, file:// URL, base64 data URL, or a
// list of image files (frames taken at the item's "fps", default 2; sampled at the settings').
template <class J>
VideoPixels load_item_video(const J& item, const std::string& base_dir, const fs::path& media_root,
                            const VideoPreprocessorConfig& cfg, VideoOptions options,
                            const VideoDecodeProgress& progress) {
  options = item_video_options(item, options);
  const J* ref = nullptr;
  if (item.contains("video")) ref = &item["video"];
  else if (item.contains("video_url")) {
    const auto& u = item["video_url"];
    ref = u.is_object() && u.contains("url") ? &u["url"] : &u;
  }
  if (ref == nullptr) fail(ErrorKind::kInvalidArgument, "a video item has no video path or URL");
  auto local = [&](std::string path) {
    if (path.rfind("file://", 0) == 0) path = path.substr(7);
    else if (path.find("://") != std::string::npos)
      fail(ErrorKind::kUnsupported, "video '", path, "': only local files and data URLs are supported");
    fs::path p(path);
    if (p.is_relative()) p = fs::path(base_dir) / p;
    return confine_to_root(p, media_root).string();
  };
  if (ref->is_array()) {
    Video v;
    v.fps = options.fps.value_or(2.0);
    options.fps.reset();  // the list's rate is given; sampling keeps the configured rate
    for (const auto& f : *ref) {
      if (!f.is_string()) fail(ErrorKind::kInvalidArgument, "a video's frame list must hold image paths");
      v.frames.push_back(load_image_file(local(f.template get<std::string>())));
    }
    return preprocess_video_frames(v, cfg, options);
  }
  if (!ref->is_string() || ref->template get<std::string>().empty())
    fail(ErrorKind::kInvalidArgument, "a video item's video must be a path, URL or list of image paths");
  const std::string s = ref->template get<std::string>();
  if (s.rfind("data:", 0) == 0) {
    const size_t comma = s.find(',');
    if (comma == std::string::npos || s.substr(0, comma).find(";base64") == std::string::npos)
      fail(ErrorKind::kInvalidArgument, "video data URLs must be base64 encoded");
    const std::string bytes = decode_base64(std::string_view(s).substr(comma + 1));
    return preprocess_video_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), cfg, options);
  }
  return preprocess_video_file(local(s), cfg, options, {}, progress);
}

// Loads the image an item refers to: a path, file:// URL or base64 data URL.
template <class J>
Image load_item_image(const J& item, const std::string& base_dir, const fs::path& media_root) {
  std::string ref;
  if (item.contains("image") && item["image"].is_string()) ref = item["image"].template get<std::string>();
  else if (item.contains("image_url")) {
    const auto& u = item["image_url"];
    if (u.is_string()) ref = u.template get<std::string>();
    else if (u.is_object() && u.contains("url") && u["url"].is_string()) ref = u["url"].template get<std::string>();
  }
  if (ref.empty()) fail(ErrorKind::kInvalidArgument, "an image item has no image given and no path or URL");
  if (ref.rfind("data:", 0) == 0) {
    const size_t comma = ref.find(',');
    if (comma == std::string::npos || ref.substr(0, comma).find(";base64") == std::string::npos)
      fail(ErrorKind::kInvalidArgument, "image data URLs must be base64 encoded");
    std::string bytes = decode_base64(std::string_view(ref).substr(comma + 1));
    return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  if (ref.rfind("file://", 0) == 0) ref = ref.substr(7);
  else if (ref.find("://") != std::string::npos)
    fail(ErrorKind::kUnsupported, "image '", ref, "': only local files and data URLs are supported");
  fs::path p(ref);
  if (p.is_relative()) p = fs::path(base_dir) / p;
  return load_image_file(confine_to_root(p, media_root).string());
}

// As the reference's processor does on the text: the k-th "<|vision_start|><|video_pad|><|vision_end|>"
// (or a bare "<|video_pad|>") becomes, per temporal group, "<t seconds><|vision_start|>" +
// "<|video_pad|>" x (h*w/merge^2) + "<|vision_end|>"; the timestamps are then tokenized as text.
// The videos' pixel values and grids go to `out`.
std::string expand_videos(const std::string& prompt, std::vector<VideoPixels>& videos, const PreprocessorConfig& pre,
                          ProcessedInputs& out) {
  const std::string start = "<|vision_start|>", pad = "<|video_pad|>", end = "<|vision_end|>";
  const std::string triple = start + pad + end;
  std::string text;
  size_t pos = 0;
  const int64_t merge2 = pre.merge_size * pre.merge_size;
  for (size_t k = 0; k < videos.size(); ++k) {
    size_t at = prompt.find(triple, pos), len = triple.size();
    const size_t bare = prompt.find(pad, pos);
    if (at == std::string::npos || (bare != std::string::npos && bare < at + start.size())) at = bare, len = pad.size();
    if (at == std::string::npos)
      fail(ErrorKind::kInvalidArgument, "the chat template placed ", k, " video(s) but ", videos.size(), " were given");
    text.append(prompt, pos, at - pos);
    PixelValues& pv = videos[k].pixels;
    const int64_t per_group = pv.grid_h * pv.grid_w / merge2;
    for (int64_t g = 0; g < pv.grid_t; ++g) {
      text += videos[k].timestamps.at(static_cast<size_t>(g));
      text += start;
      for (int64_t i = 0; i < per_group; ++i) text += pad;
      text += end;
    }
    pos = at + len;
    if (out.pixel_cols != 0 && out.pixel_cols != pv.cols) fail(ErrorKind::kInternal, "pixel row width changed");
    out.pixel_cols = pv.cols;
    out.video_grid_thw.push_back({pv.grid_t, pv.grid_h, pv.grid_w});
    out.video_tokens.push_back(per_group * pv.grid_t);
    out.video_pixel_rows += pv.rows;
    if (out.pixel_values_videos.empty()) out.pixel_values_videos = std::move(pv.data);  // no second copy
    else out.pixel_values_videos.insert(out.pixel_values_videos.end(), pv.data.begin(), pv.data.end());
    pv.data = {};  // free each video's own rows as soon as they are joined
    out.video_frame_indices.push_back(videos[k].frame_indices);
    out.video_timestamps.push_back(videos[k].timestamps);
  }
  if (prompt.find(pad, pos) != std::string::npos)
    fail(ErrorKind::kInvalidArgument, "the rendered prompt holds more video placeholders than the ", videos.size(),
         " video(s) given");
  text.append(prompt, pos, std::string::npos);
  return text;
}

bool is_known_role(const std::string& role) {
  return role == "system" || role == "user" || role == "assistant" || role == "tool";
}

bool is_known_item_type(const std::string& type) {
  return type == "text" || type == "image" || type == "image_url" || type == "video" || type == "video_url";
}

// One sentence per message role or content item type the chat template is not known to handle.
template <class J>
std::vector<std::string> unknown_parts(const J& messages) {
  std::vector<std::string> warnings;
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& msg = messages[i];
    if (!msg.is_object()) continue;
    if (msg.contains("role") && msg["role"].is_string() && !is_known_role(msg["role"].template get<std::string>()))
      warnings.push_back(cat("messages[", i, "] has the unknown role '", msg["role"].template get<std::string>(),
                             "' (known: system, user, assistant, tool); the chat template may mishandle it"));
    if (!msg.contains("content") || !msg["content"].is_array()) continue;
    for (size_t k = 0; k < msg["content"].size(); ++k) {
      const auto& item = msg["content"][k];
      if (item.is_object() && item.contains("type") && item["type"].is_string() &&
          !is_known_item_type(item["type"].template get<std::string>()))
        warnings.push_back(cat("messages[", i, "].content[", k, "] has the unknown type '",
                               item["type"].template get<std::string>(), "' (known: text, image, image_url, video, video_url); it is ignored"));
    }
  }
  return warnings;
}

}  // namespace

Processor::Processor(std::shared_ptr<const Model> model, const ProcessorOptions& options)
    : model_(std::move(model)), options_(options) {
  if (!model_) fail(ErrorKind::kInvalidArgument, "Processor needs a loaded model");
  if (!options_.media_root.empty()) {
    std::error_code ec;
    const fs::path root = fs::canonical(options_.media_root, ec);
    if (ec || !fs::is_directory(root, ec))
      fail(ErrorKind::kInvalidArgument, "the media root '", options_.media_root, "' is not a directory",
           ec ? ": " + ec.message() : std::string());
    options_.media_root = root.string();  // canonical, so that image paths compare against it directly
  }
  if (options_.min_pixels && *options_.min_pixels <= 0) fail(ErrorKind::kInvalidArgument, "min_pixels must be positive (got ", *options_.min_pixels, ")");
  if (options_.max_pixels && *options_.max_pixels <= 0) fail(ErrorKind::kInvalidArgument, "max_pixels must be positive (got ", *options_.max_pixels, ")");
  if (options_.min_pixels && options_.max_pixels && *options_.min_pixels > *options_.max_pixels)
    fail(ErrorKind::kInvalidArgument, "min_pixels (", *options_.min_pixels, ") exceeds max_pixels (", *options_.max_pixels, ")");
}

namespace {

ProcessedInputs process_messages(const Model::Impl& m, const ProcessorOptions& options, const std::string& messages_json,
                                 const std::vector<Image>& images, bool add_generation_prompt,
                                 const std::string& base_dir, const std::string& extra_json) {
  OrderedJson messages = parse_json_ordered(messages_json, "messages");
  if (!messages.is_array() || messages.empty())
    fail(ErrorKind::kInvalidArgument, "messages must be a non-empty JSON array");

  // Images in order of appearance: given ones first, the rest loaded from the items. Videos are
  // decoded and preprocessed as they come; video_url items are rendered as the template's "video".
  std::vector<Image> loaded;
  std::vector<VideoPixels> videos;
  size_t image_items = 0;
  for (auto& msg : messages) {
    if (!msg.is_object() || !msg.contains("content") || !msg["content"].is_array()) continue;
    for (auto& item : msg["content"]) {
      if (is_video_item(item)) {
        if (!m.qwen->has_vision())
          fail(ErrorKind::kUnsupported, "the model in '", m.dir, "' has no vision encoder; it cannot take videos");
        videos.push_back(load_item_video(item, base_dir, options.media_root, m.video_preprocessor, options.video,
                                         options.video_progress));
        if (item.contains("type") && item["type"] == "video_url") item["type"] = "video";
        continue;
      }
      if (!is_image_item(item)) continue;
      if (image_items >= images.size()) loaded.push_back(load_item_image(item, base_dir, options.media_root));
      ++image_items;
    }
  }
  if (images.size() > image_items)
    fail(ErrorKind::kInvalidArgument, images.size(), " images given but the messages place only ", image_items);
  if (image_items > 0 && !m.qwen->has_vision())
    fail(ErrorKind::kUnsupported, "the model in '", m.dir, "' has no vision encoder; it cannot take images");

  ProcessedInputs out;
  out.warnings = unknown_parts(messages);
  out.prompt_text = m.require_chat_template().render_ordered(messages, add_generation_prompt,
                                                              parse_json_ordered(extra_json, "chat template variables"));
  std::vector<int32_t> ids = m.tokenizer->encode(expand_videos(out.prompt_text, videos, m.video_preprocessor.image, out));

  PreprocessorConfig pre = m.preprocessor;
  if (options.min_pixels) pre.min_pixels = *options.min_pixels;
  if (options.max_pixels) pre.max_pixels = *options.max_pixels;
  const int64_t merge2 = pre.merge_size * pre.merge_size;
  std::vector<int64_t> pad_counts;
  for (size_t i = 0; i < image_items; ++i) {
    const Image& img = i < images.size() ? images[i] : loaded[i - images.size()];
    PixelValues pv = preprocess_image(img, pre);
    if (out.pixel_cols != 0 && out.pixel_cols != pv.cols) fail(ErrorKind::kInternal, "pixel row width changed");
    out.pixel_cols = pv.cols;
    out.pixel_rows += pv.rows;
    out.pixel_values.insert(out.pixel_values.end(), pv.data.begin(), pv.data.end());
    out.image_grid_thw.push_back({pv.grid_t, pv.grid_h, pv.grid_w});
    pad_counts.push_back(pv.grid_t * pv.grid_h * pv.grid_w / merge2);
  }

  // Expand each image pad token to its image's token count.
  size_t image_index = 0;
  out.input_ids.reserve(ids.size());
  for (int32_t id : ids) {
    if (id != m.qwen->vision_ids().image_pad) {
      out.input_ids.push_back(id);
      continue;
    }
    if (image_index >= pad_counts.size())
      fail(ErrorKind::kInvalidArgument, "the rendered prompt holds more image placeholders than the ",
           pad_counts.size(), " image(s) given");
    out.input_ids.insert(out.input_ids.end(), static_cast<size_t>(pad_counts[image_index++]), id);
  }
  if (image_index != pad_counts.size())
    fail(ErrorKind::kInvalidArgument, "the chat template placed ", image_index, " image(s) but ", pad_counts.size(),
         " were given");
  out.image_tokens = std::move(pad_counts);
  return out;
}

// The messages of one user turn: the images (at their "<image>" marks, else first), then the text.
std::string prompt_messages_json(const std::string& text, size_t image_count, const std::string& system) {
  Json messages = Json::array();
  if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
  Json content = Json::array();
  // "<image>" marks where an image goes; unmarked images precede the text.
  const std::string marker = "<image>";
  size_t marked = 0;
  for (size_t pos = text.find(marker); pos != std::string::npos; pos = text.find(marker, pos + marker.size())) ++marked;
  if (marked > 0 && marked != image_count)
    fail(ErrorKind::kInvalidArgument, "the prompt marks ", marked, " <image> place(s) but ", image_count, " image(s) were given");
  if (text.empty() && image_count == 0) fail(ErrorKind::kInvalidArgument, "the prompt is empty");
  if (image_count == 0) {
    messages.push_back({{"role", "user"}, {"content", text}});  // plain string: every template takes it
    return messages.dump();
  }
  if (marked == 0) {
    for (size_t i = 0; i < image_count; ++i) content.push_back({{"type", "image"}});
    content.push_back({{"type", "text"}, {"text", text}});
  } else {
    size_t start = 0;
    for (size_t pos = text.find(marker); pos != std::string::npos; pos = text.find(marker, start)) {
      if (pos > start) content.push_back({{"type", "text"}, {"text", text.substr(start, pos - start)}});
      content.push_back({{"type", "image"}});
      start = pos + marker.size();
    }
    if (start < text.size()) content.push_back({{"type", "text"}, {"text", text.substr(start)}});
  }
  messages.push_back({{"role", "user"}, {"content", content}});
  return messages.dump();
}

}  // namespace

ProcessedInputs Processor::process(const std::string& messages_json, const std::vector<Image>& images,
                                   bool add_generation_prompt, const std::string& base_dir,
                                   const std::string& extra_json) const {
  return translate_exceptions("processing the messages", [&] {
    require_utf8(messages_json, "the messages JSON");
    require_utf8(extra_json, "the chat template variables JSON");
    return process_messages(ModelInternals::of(*model_), options_, messages_json, images, add_generation_prompt, base_dir,
                            extra_json);
  });
}

ProcessedInputs Processor::process_prompt(const std::string& text, const std::vector<Image>& images,
                                          const std::string& system) const {
  return translate_exceptions("processing the prompt", [&] {
    require_utf8(text, "the prompt");
    require_utf8(system, "the system prompt");
    return process_messages(ModelInternals::of(*model_), options_, prompt_messages_json(text, images.size(), system), images,
                            true, ".", "{}");
  });
}

}  // namespace qvl
