// Qwen2-VL / Qwen3-VL image preprocessing, matching the Hugging Face Qwen2VLImageProcessor (slow,
// PIL path) bit for bit:
//   1. the decoded RGB8 image (decode.h gives Pillow's convert("RGB"));
//   2. (h', w') = smart_resize(h, w, patch_size * merge_size, min_pixels, max_pixels) and a
//      Pillow-exact bicubic resize on the uint8 image when the size changes (resize.h);
//   3. x = float32(float64(u8) * rescale_factor), then float32 (x - mean[c]) / std[c];
//   4. the frame is repeated temporal_patch_size times and cut into patches: reshape
//      [gt, T, C, gh/m, m, P, gw/m, m, P] -> permute (0,3,6,4,7,2,1,5,8) -> [gt*gh*gw, C*T*P*P],
//      i.e. rows in m x m merge blocks (blocks row-major, row-major inside a block) and columns
//      ordered (c, t, py, px).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "image/image.h"

namespace qvl {

struct PreprocessorConfig {
  int64_t patch_size = 16, temporal_patch_size = 2, merge_size = 2;
  int64_t min_pixels = 65536, max_pixels = 16777216;  // size.shortest_edge / size.longest_edge
  float image_mean[3] = {0.5f, 0.5f, 0.5f}, image_std[3] = {0.5f, 0.5f, 0.5f};
  double rescale_factor = 1.0 / 255;
};

// Reads <model_dir>/preprocessor_config.json: size.shortest_edge / size.longest_edge (or
// size.min_pixels / size.max_pixels; top-level min_pixels / max_pixels override both, as in HF),
// patch_size, temporal_patch_size, merge_size, image_mean, image_std (a number or 3 numbers),
// rescale_factor. Missing keys keep the defaults above (Qwen3-VL's); a missing file gives the
// defaults; malformed or out-of-range values throw qvl::Error (kInvalidFile) naming the key.
PreprocessorConfig load_preprocessor_config(const std::string& model_dir);
// The same, from JSON text; `what` names the document in errors.
PreprocessorConfig parse_preprocessor_config(const std::string& json_text, const std::string& what);

struct ResizeResult {
  int64_t height, width;
};

// HF's smart_resize: both sides become multiples of `factor`, the area lands in
// [min_pixels, max_pixels] and the aspect ratio is kept as well as possible:
//   h' = round(h / f) * f, w' = round(w / f) * f          (round half to even, as Python's round)
//   if h' * w' > max: beta = sqrt(h * w / max); h' = max(f, floor(h / beta / f) * f), same for w
//   elif h' * w' < min: beta = sqrt(min / (h * w)); h' = ceil(h * beta / f) * f, same for w
// Throws kInvalidArgument for a zero/negative side, max(h, w) / min(h, w) > 200, or bad factor.
ResizeResult smart_resize(int64_t height, int64_t width, int64_t factor, int64_t min_pixels,
                          int64_t max_pixels);

struct PixelValues {
  std::vector<float> data;  // rows x cols, row-major
  int64_t rows = 0, cols = 0;
  int64_t grid_t = 0, grid_h = 0, grid_w = 0;  // in patches; rows == grid_t * grid_h * grid_w
};

// Cuts one temporal group of same-size RGB frames (sides multiples of P * M) into patch rows in
// the layout above, written to out (rows (H/P)*(W/P), cols 3*T*P*P with T = frames.size());
// lut[c][u] is the normalized value of channel c's byte u.
void patchify_group(const std::vector<const Image*>& frames, const float (*lut)[256], int64_t P, int64_t M, float* out);

// One image -> pixel values (rows = t*h*w patches, cols = 3 * temporal_patch_size * patch_size^2).
PixelValues preprocess_image(const Image& image, const PreprocessorConfig& cfg);

}  // namespace qvl
