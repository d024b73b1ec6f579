// GIF via giflib: the first frame only, as Pillow's Image.open(...).convert("RGB") gives it. The
// canvas is the logical screen, enlarged to hold the first frame if that frame sticks out (as
// Pillow does); pixels outside the frame hold the frame's transparent index if its graphic control
// extension sets one, else index 0; every index maps through the frame's palette (local, else
// global, else the grey ramp). Transparency therefore shows the palette colour of the transparent
// index: Pillow's P -> RGB conversion ignores transparency.
#include <gif_lib.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "image/decode.h"

namespace qvl::image_detail {

namespace {

struct GifSource {
  const uint8_t* data;
  size_t size;
  size_t pos;
};

int gif_read_cb(GifFileType* gif, GifByteType* out, int n) {
  auto* src = static_cast<GifSource*>(gif->UserData);
  if (n <= 0) return 0;
  const size_t k = std::min(size_t(n), src->size - src->pos);
  std::memcpy(out, src->data + src->pos, k);
  src->pos += k;
  return int(k);
}

struct GifCloser {
  GifFileType* gif = nullptr;
  ~GifCloser() {
    if (gif) {
      int err = 0;
      DGifCloseFile(gif, &err);
    }
  }
};

[[noreturn]] void gif_fail(int code, const char* what) {
  const char* s = GifErrorString(code);
  if (code == D_GIF_ERR_READ_FAILED) s = "truncated file (unexpected end of data)";
  fail(ErrorKind::kInvalidFile, "corrupt GIF: ", what, ": ", s ? s : "unknown giflib error");
}

}  // namespace

Image decode_gif(const uint8_t* data, size_t size, const ImageLimits& limits) {
  if (size < 13) fail(ErrorKind::kInvalidFile, "corrupt GIF: truncated header (", size, " bytes)");
  GifSource src{data, size, 0};
  GifCloser closer;
  int err = 0;
  closer.gif = DGifOpen(&src, gif_read_cb, &err);
  if (!closer.gif) gif_fail(err, "cannot read the header");
  GifFileType* gif = closer.gif;
  check_image_size(std::max(gif->SWidth, 1), std::max(gif->SHeight, 1), limits, "GIF");

  int transparent = -1;
  for (;;) {
    GifRecordType type = UNDEFINED_RECORD_TYPE;
    if (DGifGetRecordType(gif, &type) == GIF_ERROR) gif_fail(gif->Error, "cannot read a record");
    if (type == TERMINATE_RECORD_TYPE) fail(ErrorKind::kInvalidFile, "corrupt GIF: no image in the file");
    if (type == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* ext = nullptr;
      if (DGifGetExtension(gif, &code, &ext) == GIF_ERROR) gif_fail(gif->Error, "cannot read an extension");
      // Graphic control extension: [len, flags, delay lo, delay hi, transparent index].
      if (code == GRAPHICS_EXT_FUNC_CODE && ext != nullptr && ext[0] >= 4 && (ext[1] & 1))
        transparent = ext[4];
      while (ext != nullptr)
        if (DGifGetExtensionNext(gif, &ext) == GIF_ERROR) gif_fail(gif->Error, "cannot read an extension");
      continue;
    }
    if (type != IMAGE_DESC_RECORD_TYPE) continue;

    if (DGifGetImageDesc(gif) == GIF_ERROR) gif_fail(gif->Error, "cannot read the image descriptor");
    const GifImageDesc& d = gif->Image;
    if (d.Width <= 0 || d.Height <= 0)
      fail(ErrorKind::kInvalidFile, "corrupt GIF: the first frame is empty (", d.Width, "x", d.Height, ")");
    const int64_t canvas_w = std::max<int64_t>(gif->SWidth, int64_t(d.Left) + d.Width);
    const int64_t canvas_h = std::max<int64_t>(gif->SHeight, int64_t(d.Top) + d.Height);
    check_image_size(canvas_w, canvas_h, limits, "GIF");

    const ColorMapObject* map = d.ColorMap ? d.ColorMap : gif->SColorMap;
    uint8_t palette[768];
    uint8_t rgb[768];
    int count = 0;
    if (map != nullptr && map->Colors != nullptr) {
      count = std::min(map->ColorCount, 256);
      for (int i = 0; i < count; ++i) {
        rgb[3 * i] = map->Colors[i].Red;
        rgb[3 * i + 1] = map->Colors[i].Green;
        rgb[3 * i + 2] = map->Colors[i].Blue;
      }
    }
    fill_palette(palette, rgb, count);

    std::vector<uint8_t> index(size_t(canvas_w) * size_t(canvas_h), uint8_t(transparent >= 0 ? transparent : 0));
    std::vector<uint8_t> line(size_t(d.Width));
    const int starts[4] = {0, 4, 2, 1}, steps[4] = {8, 8, 4, 2};
    const int passes = d.Interlace ? 4 : 1;
    for (int pass = 0; pass < passes; ++pass) {
      const int start = d.Interlace ? starts[pass] : 0, step = d.Interlace ? steps[pass] : 1;
      for (int y = start; y < d.Height; y += step) {
        if (DGifGetLine(gif, line.data(), d.Width) == GIF_ERROR) gif_fail(gif->Error, "cannot decode the first frame");
        std::memcpy(index.data() + (size_t(d.Top) + size_t(y)) * size_t(canvas_w) + size_t(d.Left), line.data(),
                    line.size());
      }
    }
    Image img = make_image(canvas_w, canvas_h);
    expand_palette(index.data(), index.size(), palette, img.rgb.data());
    return img;
  }
}

}  // namespace qvl::image_detail
