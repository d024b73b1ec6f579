// JPEG via libjpeg(-turbo). libjpeg reports fatal errors through error_exit, which here longjmps
// back into run_jpeg() (never exit()); run_jpeg has only trivial locals and keeps its state in
// JpegState, so no C++ destructor is skipped. A premature end of data is a warning in libjpeg (it
// pads with grey); it is made fatal here, as Pillow refuses truncated JPEGs ("image file is
// truncated"). Other recoverable warnings (e.g. extraneous bytes before a marker) are ignored as in
// Pillow.
#include <cstdio>  // jpeglib.h needs FILE

#include <jerror.h>
#include <jpeglib.h>

#include <csetjmp>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "image/decode.h"

namespace qvl::image_detail {

namespace {

struct JpegState {
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr jerr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX + 8] = {0};
  bool created = false;
  const uint8_t* data = nullptr;
  size_t size = 0;
  const ImageLimits* limits = nullptr;
  Image* out = nullptr;
  std::vector<uint8_t>* row = nullptr;
};

void jpeg_error_exit_cb(j_common_ptr c) {
  auto* st = static_cast<JpegState*>(c->client_data);
  (*c->err->format_message)(c, st->message);
  std::longjmp(st->jump, 1);
}

void jpeg_emit_message_cb(j_common_ptr c, int level) {
  if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) {
    auto* st = static_cast<JpegState*>(c->client_data);
    std::snprintf(st->message, sizeof st->message, "truncated file (premature end of JPEG data)");
    std::longjmp(st->jump, 1);
  }
  // Other warnings and trace messages are dropped.
}

// Pillow's MULDIV255: a*b/255, rounded.
inline int muldiv255(int a, int b) {
  int t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

// Returns false after a libjpeg error (message in st->message). May throw qvl::Error for limits.
bool run_jpeg(JpegState* st) {
  if (setjmp(st->jump)) return false;
  j_decompress_ptr cinfo = &st->cinfo;
  jpeg_create_decompress(cinfo);
  st->created = true;
  cinfo->client_data = st;
  jpeg_mem_src(cinfo, st->data, static_cast<unsigned long>(st->size));
  jpeg_read_header(cinfo, TRUE);
  check_image_size(cinfo->image_width, cinfo->image_height, *st->limits, "JPEG");

  // Pillow picks the mode from the component count: 1 -> L, 3 -> RGB, 4 -> CMYK.
  switch (cinfo->num_components) {
    case 1: cinfo->out_color_space = JCS_GRAYSCALE; break;
    case 3: cinfo->out_color_space = JCS_RGB; break;
    case 4: cinfo->out_color_space = JCS_CMYK; break;  // libjpeg turns YCCK into CMYK
    default:
      std::snprintf(st->message, sizeof st->message, "unsupported number of colour components (%d)",
                    cinfo->num_components);
      return false;
  }
  jpeg_start_decompress(cinfo);
  const int comps = cinfo->output_components;
  const size_t w = cinfo->output_width;
  // Scaling is off, so the output size is the declared size checked above.
  if (cinfo->output_width != cinfo->image_width || cinfo->output_height != cinfo->image_height) {
    std::snprintf(st->message, sizeof st->message, "unexpected output size");
    return false;
  }
  *st->out = make_image(cinfo->output_width, cinfo->output_height);
  st->row->resize(w * size_t(comps));
  while (cinfo->output_scanline < cinfo->output_height) {
    uint8_t* dst = st->out->rgb.data() + size_t(cinfo->output_scanline) * w * 3;
    JSAMPROW rowp = comps == 3 ? dst : st->row->data();
    if (jpeg_read_scanlines(cinfo, &rowp, 1) != 1) {
      std::snprintf(st->message, sizeof st->message, "decoder stalled");
      return false;
    }
    const uint8_t* src = st->row->data();
    if (comps == 1) {
      for (size_t x = 0; x < w; ++x) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = src[x];
    } else if (comps == 4) {
      // Pillow reads CMYK JPEGs as Adobe-inverted ("CMYK;I"), then cmyk2rgb.
      for (size_t x = 0; x < w; ++x) {
        const uint8_t* p = src + 4 * x;
        const int nk = p[3];  // 255 - (255 - raw k)
        for (int c = 0; c < 3; ++c) {
          int v = nk - muldiv255(255 - p[c], nk);
          dst[3 * x + c] = uint8_t(v < 0 ? 0 : (v > 255 ? 255 : v));
        }
      }
    }
  }
  // No jpeg_finish_decompress: trailing data after the last scanline (or a missing EOI) does not
  // matter, as in Pillow; jpeg_destroy_decompress releases everything.
  return true;
}

struct JpegGuard {
  JpegState* st;
  ~JpegGuard() {
    if (st->created) jpeg_destroy_decompress(&st->cinfo);
  }
};

}  // namespace

Image decode_jpeg(const uint8_t* data, size_t size, const ImageLimits& limits) {
  Image img;
  std::vector<uint8_t> row;
  JpegState st;
  std::memset(&st.cinfo, 0, sizeof st.cinfo);
  st.cinfo.err = jpeg_std_error(&st.jerr);
  st.jerr.error_exit = jpeg_error_exit_cb;
  st.jerr.emit_message = jpeg_emit_message_cb;
  st.cinfo.client_data = &st;
  st.data = data;
  st.size = size;
  st.limits = &limits;
  st.out = &img;
  st.row = &row;
  JpegGuard guard{&st};
  if (!run_jpeg(&st)) fail(ErrorKind::kInvalidFile, "corrupt JPEG: ", st.message);
  return img;
}

}  // namespace qvl::image_detail
