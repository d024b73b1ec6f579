#include "api/vision_inputs.h"

#include "core/check.h"

namespace qvl {

ProcessedInputs fold_videos(const ProcessedInputs& in, const VisionTokenIds& v, int64_t merge, bool copy_pixels) {
  if (in.video_grid_thw.empty()) return in;
  const int64_t cols = in.pixel_cols;
  if (cols <= 0 || static_cast<int64_t>(in.pixel_values_videos.size()) != in.video_pixel_rows * cols ||
      static_cast<int64_t>(in.pixel_values.size()) != in.pixel_rows * cols)
    fail(ErrorKind::kInvalidArgument, "the inputs' pixel values do not match their row counts");
  ProcessedInputs out;
  out.prompt_text = in.prompt_text;
  out.input_ids = in.input_ids;
  out.warnings = in.warnings;
  out.pixel_cols = cols;
  copy_pixels = copy_pixels || !in.image_grid_thw.empty();
  if (copy_pixels) out.pixel_values.reserve(in.pixel_values.size() + in.pixel_values_videos.size());
  size_t image = 0, video = 0;
  int64_t group = 0, image_row = 0, video_row = 0;
  const auto& ids = in.input_ids;
  for (size_t i = 0; i < ids.size();) {
    if (!is_vision_pad(ids[i], v)) {
      ++i;
      continue;
    }
    std::array<int64_t, 3> grid;
    const float* src;
    if (ids[i] == v.image_pad) {
      if (image >= in.image_grid_thw.size())
        fail(ErrorKind::kInvalidArgument, "the inputs hold more image placeholders than images");
      grid = in.image_grid_thw[image++];
      src = in.pixel_values.data() + image_row * cols;
      image_row += grid[0] * grid[1] * grid[2];
      if (image_row > in.pixel_rows) fail(ErrorKind::kInvalidArgument, "the inputs' pixel rows do not cover their images");
      out.image_tokens.push_back(grid[0] * grid[1] * grid[2] / (merge * merge));
    } else {
      if (video >= in.video_grid_thw.size())
        fail(ErrorKind::kInvalidArgument, "the inputs hold more video placeholders than videos");
      const auto& vg = in.video_grid_thw[video];
      grid = {1, vg[1], vg[2]};
      src = in.pixel_values_videos.data() + video_row * cols;
      video_row += vg[1] * vg[2];
      if (video_row > in.video_pixel_rows)
        fail(ErrorKind::kInvalidArgument, "the inputs' video pixel rows do not cover their videos");
      out.image_tokens.push_back(vg[1] * vg[2] / (merge * merge));
      if (++group == vg[0]) group = 0, ++video;
    }
    const int64_t rows = grid[0] * grid[1] * grid[2];
    out.image_grid_thw.push_back(grid);
    if (copy_pixels) out.pixel_values.insert(out.pixel_values.end(), src, src + rows * cols);
    out.pixel_rows += rows;
    const int64_t count = rows / (merge * merge);
    for (int64_t k = 0; k < count; ++k, ++i)
      if (i >= ids.size() || ids[i] != ids[i - static_cast<size_t>(k)])
        fail(ErrorKind::kInvalidArgument, "a visual input needs ", count, " consecutive placeholder tokens, found ", k);
  }
  if (image != in.image_grid_thw.size() || video != in.video_grid_thw.size() || group != 0)
    fail(ErrorKind::kInvalidArgument, "the prompt places ", image, " image(s) and ", video, " video(s) but ",
         in.image_grid_thw.size(), " and ", in.video_grid_thw.size(), " were given");
  return out;
}

}  // namespace qvl
