#!/usr/bin/python3
"""Generates the image test data in tests/data/images/ (decoder, resize, smart_resize and
preprocessing references) with Pillow and numpy.

Developer tool only: the C++ tests read the committed output and never run Python.
Needs Debian's python3-pil and python3-numpy (`apt-get install -y python3-pil python3-numpy`);
run as `/usr/bin/python3 tools/gen_image_refs.py` from the repository root. The output is
deterministic for a given Pillow / libjpeg / libwebp (see tests/data/images/README.md).

Every expected RGB array is what Pillow gives for `Image.open(path).convert("RGB")` (decoders) or
`Image.resize((w, h), Image.BICUBIC)` (resize); smart_resize expectations come from the Python
formula of transformers' Qwen2-VL image processor, restated below; preprocessing expectations
come from a numpy restatement of Qwen2VLImageProcessor's slow path (which reproduces the golden
pixel values of tests/data/golden bit-exactly with this Pillow).
"""

import io
import json
import math
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image, features

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "images")


def rng(seed):
    return np.random.RandomState(seed)


def photo(h, w, seed):
    """A photo-like RGB test pattern: smooth gradients, a few hard edges and some noise."""
    r = rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    img[..., 0] = 128 + 100 * np.sin(x / max(w, 1) * 5.1 + y / max(h, 1) * 1.3)
    img[..., 1] = 255 * (x + y) / max(w + h - 2, 1)
    img[..., 2] = 128 + 120 * np.cos(np.hypot(x - w / 3, y - h / 2) / 4.0)
    img[(x > w * 0.6) & (y < h * 0.4)] = (250, 20, 10)     # a saturated block (overshoot)
    img[(x < w * 0.2) & (y > h * 0.7)] = (0, 0, 0)
    img[int(h * 0.5):int(h * 0.5) + 1, :] = 255              # a thin white line
    img += r.normal(0, 12, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- a tiny PNG writer
# (Pillow cannot write interlaced PNGs, 16-bit RGB(A), 2-bit grey or grey+alpha 16.)

def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _pack_rows(samples, bit_depth):
    """samples: (h, w, c) integer array -> list of packed row bytes (no filter byte)."""
    h, w, c = samples.shape
    rows = []
    for y in range(h):
        flat = samples[y].reshape(-1)
        if bit_depth == 16:
            rows.append(flat.astype(">u2").tobytes())
        elif bit_depth == 8:
            rows.append(flat.astype(np.uint8).tobytes())
        else:
            per = 8 // bit_depth
            out = bytearray((len(flat) * bit_depth + 7) // 8)
            for i, v in enumerate(flat):
                out[i // per] |= (int(v) & ((1 << bit_depth) - 1)) << (8 - bit_depth * (i % per + 1))
            rows.append(bytes(out))
    return rows


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(samples, bit_depth, color_type, interlace=False, palette=None, trns=None, filter_type=0):
    """samples: (h, w, channels) array of raw sample values (palette indices for colour type 3)."""
    h, w, _ = samples.shape
    raw = bytearray()
    bpp = max(1, samples.shape[2] * bit_depth // 8)

    def add_image(sub):
        prev = None
        for row in _pack_rows(sub, bit_depth):
            row = bytearray(row)
            if filter_type == 1:  # Sub
                out = bytearray(row)
                for i in range(bpp, len(row)):
                    out[i] = (row[i] - row[i - bpp]) & 0xFF
                raw.append(1)
                raw.extend(out)
            elif filter_type == 2 and prev is not None:  # Up
                raw.append(2)
                raw.extend((a - b) & 0xFF for a, b in zip(row, prev))
            else:
                raw.append(0)
                raw.extend(row)
            prev = row

    if interlace:
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                add_image(sub)
    else:
        add_image(samples)
    out = b"\x89PNG\r\n\x1a\n"
    out += _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0))
    if palette is not None:
        out += _chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        out += _chunk(b"tRNS", trns)
    out += _chunk(b"IDAT", zlib.compress(bytes(raw), 9))
    out += _chunk(b"IEND", b"")
    return out


# ----------------------------------------------------------------------------- hand-made BMPs

def write_bmp(pixels_bytes_rows, width, height, bpp, header_size=40, compression=0, masks=None,
              palette=None, top_down=False, colors_used=0):
    """pixels_bytes_rows: list of unpadded row bytes, top row first."""
    stride = ((width * bpp + 31) // 32) * 4
    rows = [r + b"\0" * (stride - len(r)) for r in pixels_bytes_rows]
    if not top_down:
        rows = rows[::-1]
    data = b"".join(rows)
    if header_size == 12:
        info = struct.pack("<IHHHH", 12, width, height, 1, bpp)
        pal = b"".join(bytes((b, g, r)) for r, g, b in (palette or []))
    else:
        info = struct.pack("<IiiHHIIiiII", header_size, width, -height if top_down else height, 1, bpp,
                           compression, len(data), 2835, 2835, colors_used, 0)
        extra = b""
        if masks is not None and header_size >= 52:
            extra = struct.pack("<" + "I" * len(masks), *masks)
        info += extra
        info += b"\0" * (header_size - len(info))
        pal = b"".join(bytes((b, g, r, 0)) for r, g, b in (palette or []))
        if masks is not None and header_size == 40:
            pal = struct.pack("<III", *masks[:3]) + pal
    offset = 14 + len(info) + len(pal)
    head = b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset)
    return head + info + pal + data


# ----------------------------------------------------------------------------- helpers

def pil_rgb(data):
    im = Image.open(io.BytesIO(data))
    return im.mode, np.asarray(im.convert("RGB"), dtype=np.uint8)


def save_pil(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def gen_decode():
    out_dir = os.path.join(OUT, "decode")
    os.makedirs(out_dir, exist_ok=True)
    H, W = 29, 37
    base = photo(H, W, 1)
    r = rng(7)
    gray = np.asarray(Image.fromarray(base).convert("L"))
    alpha = r.randint(0, 256, (H, W)).astype(np.uint8)
    alpha[0, :5] = 0  # fully transparent pixels keep their colour in the file
    cases = []  # (name, ext, bytes, tolerance, note)

    def add(name, ext, data, tol=0, note=""):
        cases.append((name, ext, data, tol, note))

    # PNG, via Pillow's encoder (adaptive filters)
    add("png_rgb8", "png", save_pil(Image.fromarray(base), "PNG"))
    add("png_rgba8", "png", save_pil(Image.fromarray(np.dstack([base, alpha]), "RGBA"), "PNG"))
    add("png_gray8", "png", save_pil(Image.fromarray(gray), "PNG"))
    add("png_gray_alpha8", "png", save_pil(Image.fromarray(np.dstack([gray, alpha]), "LA"), "PNG"))
    pal_im = Image.fromarray(base).quantize(colors=200, dither=Image.Dither.NONE)
    add("png_palette8", "png", save_pil(pal_im, "PNG"))
    add("png_palette8_trns", "png", save_pil(pal_im, "PNG", transparency=3))
    add("png_gray1", "png", save_pil(Image.fromarray(gray).convert("1"), "PNG"))
    # PNG, via the writer above
    pal16 = rng(11).randint(0, 256, (16, 3))
    idx4 = (np.asarray(Image.fromarray(base).convert("L"), dtype=np.int64) // 16).astype(np.uint8)
    add("png_palette4", "png", write_png(idx4[..., None], 4, 3, palette=pal16))
    # A 6-entry palette: indices 6..15 lie past its end and map to Pillow's grey ramp.
    add("png_palette4_short", "png", write_png(idx4[..., None], 4, 3, palette=pal16[:6]))
    add("png_gray2", "png", write_png((gray // 64)[..., None], 2, 0))
    add("png_gray4_interlaced", "png", write_png((gray // 16)[..., None], 4, 0, interlace=True))
    wide16 = base.astype(np.uint16) * 257 + rng(3).randint(0, 257, base.shape).astype(np.uint16)
    add("png_rgb16", "png", write_png(wide16, 16, 2, filter_type=1))
    add("png_rgba16", "png", write_png(np.dstack([wide16, alpha.astype(np.uint16) * 257]), 16, 6))
    # 16-bit grey: Pillow clips to 255 (I -> RGB); values span 0..1000 so both sides are tested.
    g16 = (gray.astype(np.uint16) * 4)[..., None]
    add("png_gray16", "png", write_png(g16, 16, 0, filter_type=2),
        note="Pillow opens 16-bit grey as mode I/I;16 and convert('RGB') clips to min(v, 255)")
    add("png_gray_alpha16", "png", write_png(np.dstack([gray.astype(np.uint16) * 257, alpha.astype(np.uint16) * 257]), 16, 4))
    add("png_rgb8_interlaced", "png", write_png(base, 8, 2, interlace=True, filter_type=1))
    add("png_rgba8_interlaced", "png", write_png(np.dstack([base, alpha]), 8, 6, interlace=True))
    add("png_palette8_interlaced", "png",
        write_png(np.asarray(pal_im)[..., None], 8, 3, interlace=True,
                  palette=np.asarray(pal_im.getpalette()[:3 * 200]).reshape(-1, 3)))
    add("png_rgb16_interlaced", "png", write_png(wide16, 16, 2, interlace=True))
    add("png_rgb8_trns", "png", write_png(base, 8, 2, trns=struct.pack(">HHH", *base[0, 0])))

    # JPEG: libjpeg-turbo is the decoder on both sides, so the output is normally identical; the
    # tests still allow a small tolerance (another libjpeg build may differ in IDCT/upsampling).
    jtol = 2
    add("jpeg_baseline", "jpg", save_pil(Image.fromarray(base), "JPEG", quality=90), jtol)
    add("jpeg_baseline_444", "jpg", save_pil(Image.fromarray(base), "JPEG", quality=85, subsampling=0), jtol)
    add("jpeg_progressive", "jpg", save_pil(Image.fromarray(base), "JPEG", quality=90, progressive=True), jtol)
    add("jpeg_gray", "jpg", save_pil(Image.fromarray(gray), "JPEG", quality=90), jtol)
    cmyk = Image.fromarray(base).convert("CMYK")
    add("jpeg_cmyk", "jpg", save_pil(cmyk, "JPEG", quality=95), jtol,
        note="Adobe CMYK; Pillow assumes inverted CMYK and uses its cmyk2rgb")

    # WebP: libwebp decodes on both sides.
    add("webp_lossy", "webp", save_pil(Image.fromarray(base), "WEBP", quality=80), 0)
    add("webp_lossy_alpha", "webp", save_pil(Image.fromarray(np.dstack([base, alpha]), "RGBA"), "WEBP", quality=80), 0)
    add("webp_lossless", "webp", save_pil(Image.fromarray(base), "WEBP", lossless=True), 0)
    add("webp_lossless_alpha", "webp",
        save_pil(Image.fromarray(np.dstack([base, alpha]), "RGBA"), "WEBP", lossless=True, exact=True), 0)

    # BMP: Pillow's encoder ...
    add("bmp_rgb24", "bmp", save_pil(Image.fromarray(base), "BMP"))
    add("bmp_rgba32", "bmp", save_pil(Image.fromarray(np.dstack([base, alpha]), "RGBA"), "BMP"))
    add("bmp_palette8", "bmp", save_pil(pal_im, "BMP"))
    add("bmp_gray8", "bmp", save_pil(Image.fromarray(gray), "BMP"))
    add("bmp_mono1", "bmp", save_pil(Image.fromarray(gray).convert("1"), "BMP"))
    # ... and hand-made variants
    bgr_rows = [bytes(base[y, :, ::-1].reshape(-1)) for y in range(H)]
    add("bmp_rgb24_topdown", "bmp", write_bmp(bgr_rows, W, H, 24, top_down=True))
    bgrx_rows = [bytes(np.dstack([base[y:y + 1, :, ::-1], alpha[y:y + 1, :, None]]).reshape(-1)) for y in range(H)]
    add("bmp_bitfields32_v5", "bmp",
        write_bmp(bgrx_rows, W, H, 32, header_size=124, compression=3, masks=(0xFF0000, 0xFF00, 0xFF, 0xFF000000)))
    rgba_rows = [bytes(np.dstack([base[y:y + 1], alpha[y:y + 1, :, None]]).reshape(-1)) for y in range(H)]
    add("bmp_bitfields32_rgba", "bmp",
        write_bmp(rgba_rows, W, H, 32, header_size=124, compression=3, masks=(0xFF, 0xFF00, 0xFF0000, 0xFF000000)))
    p555 = ((base[..., 0].astype(np.uint32) >> 3) << 10) | ((base[..., 1].astype(np.uint32) >> 3) << 5) | (base[..., 2] >> 3)
    add("bmp_rgb16_555", "bmp", write_bmp([p555[y].astype("<u2").tobytes() for y in range(H)], W, H, 16))
    p565 = ((base[..., 0].astype(np.uint32) >> 3) << 11) | ((base[..., 1].astype(np.uint32) >> 2) << 5) | (base[..., 2] >> 3)
    add("bmp_bitfields16_565", "bmp",
        write_bmp([p565[y].astype("<u2").tobytes() for y in range(H)], W, H, 16, compression=3,
                  masks=(0xF800, 0x7E0, 0x1F)))
    pal16_list = [tuple(int(v) for v in c) for c in pal16]
    idx_rows4 = [bytes(_pack_rows(idx4[y:y + 1, :, None], 4)[0]) for y in range(H)]
    add("bmp_palette4", "bmp", write_bmp(idx_rows4, W, H, 4, palette=pal16_list, colors_used=16))
    pal256 = [tuple(int(v) for v in c) for c in rng(12).randint(0, 256, (256, 3))]
    idx8 = rng(13).randint(0, 256, (H, W)).astype(np.uint8)
    add("bmp_core_palette8", "bmp", write_bmp([bytes(idx8[y]) for y in range(H)], W, H, 8, header_size=12, palette=pal256))

    # GIF: Pillow's encoder (interlaced by default), with transparency, and animated
    gpal = Image.fromarray(base).quantize(colors=64, dither=Image.Dither.NONE)
    add("gif_basic", "gif", save_pil(gpal, "GIF"))
    add("gif_not_interlaced", "gif", save_pil(gpal, "GIF", interlace=False))
    add("gif_transparent", "gif", save_pil(gpal, "GIF", transparency=5))
    frame2 = Image.fromarray(255 - base).quantize(colors=32, dither=Image.Dither.NONE)
    add("gif_animated", "gif", save_pil(gpal, "GIF", save_all=True, append_images=[frame2], duration=100, loop=0))
    # The first frame smaller than the logical screen, offset inside it, with a transparent index:
    # the area around it takes the transparent index's palette colour.
    small = save_pil(gpal, "GIF", transparency=7, interlace=False)
    add("gif_offset_frame", "gif", patch_gif_screen(small, W + 6, H + 5, 4, 3))

    manifest = []
    for name, ext, data, tol, note in cases:
        fname = f"{name}.{ext}"
        with open(os.path.join(out_dir, fname), "wb") as f:
            f.write(data)
        mode, rgb = pil_rgb(data)
        with open(os.path.join(out_dir, name + ".rgb"), "wb") as f:
            f.write(rgb.tobytes())
        entry = {"name": name, "file": fname, "width": rgb.shape[1], "height": rgb.shape[0],
                 "pil_mode": mode, "tolerance": tol}
        if note:
            entry["note"] = note
        manifest.append(entry)
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump({"generator": "tools/gen_image_refs.py", "pillow": Image.__version__,
                   "cases": manifest}, f, indent=1)
        f.write("\n")
    print(f"decode: {len(manifest)} cases")


def patch_gif_screen(data, screen_w, screen_h, left, top):
    """Enlarges the logical screen of a single-frame GIF and moves its first frame to (left, top)."""
    b = bytearray(data)
    struct.pack_into("<HH", b, 6, screen_w, screen_h)
    flags = b[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while b[pos] == 0x21:  # skip extensions
        pos += 2
        while b[pos]:
            pos += b[pos] + 1
        pos += 1
    assert b[pos] == 0x2C
    struct.pack_into("<HH", b, pos + 1, left, top)
    return bytes(b)


# ----------------------------------------------------------------------------- resize

def gen_resize():
    out_dir = os.path.join(OUT, "resize")
    os.makedirs(out_dir, exist_ok=True)
    sources = {
        "src_64x48": photo(48, 64, 21),
        "src_37x23": photo(23, 37, 22),
        "src_161x107": photo(107, 161, 23),
        "src_1x9": photo(9, 1, 24),
        "src_5x3": photo(3, 5, 25),
    }
    # Noise-only source: maximal overshoot / clipping.
    sources["src_noise_20x16"] = rng(26).randint(0, 2, (16, 20, 3)).astype(np.uint8) * 255
    targets = {
        "src_64x48": [(32, 24), (13, 7), (1, 1), (64, 1), (1, 48), (100, 75), (129, 61), (80, 20),
                      (20, 80), (63, 47), (65, 49), (64, 30), (30, 48)],
        "src_37x23": [(74, 46), (111, 69), (18, 11), (37, 5), (5, 23), (150, 96)],
        "src_161x107": [(7, 5), (80, 53), (250, 150), (159, 109), (33, 100)],
        "src_1x9": [(3, 27), (1, 4), (2, 2)],
        "src_5x3": [(16, 9), (64, 64), (2, 1)],
        "src_noise_20x16": [(41, 33), (7, 5), (20, 31)],
    }
    manifest = []
    for name, arr in sources.items():
        with open(os.path.join(out_dir, name + ".png"), "wb") as f:
            f.write(save_pil(Image.fromarray(arr), "PNG"))
        im = Image.fromarray(arr)
        for w, h in targets[name]:
            res = np.asarray(im.resize((w, h), Image.BICUBIC), dtype=np.uint8)
            out = f"{name}_to_{w}x{h}.rgb"
            with open(os.path.join(out_dir, out), "wb") as f:
                f.write(res.tobytes())
            manifest.append({"source": name + ".png", "width": w, "height": h, "expected": out})
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump({"generator": "tools/gen_image_refs.py", "pillow": Image.__version__,
                   "cases": manifest}, f, indent=1)
        f.write("\n")
    print(f"resize: {len(manifest)} cases")


# ----------------------------------------------------------------------------- smart_resize

def smart_resize(height, width, factor, min_pixels, max_pixels):
    # transformers' Qwen2-VL image processor (restated).
    if max(height, width) / min(height, width) > 200:
        raise ValueError("aspect")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def gen_smart_resize():
    r = rng(31)
    configs = [(32, 65536, 16777216), (28, 3136, 12845056), (32, 256 * 32 * 32, 1280 * 32 * 32), (14, 0, 1000000)]
    cases = []
    sizes = set()
    for h in (1, 2, 15, 16, 17, 31, 32, 33, 47, 48, 49, 80, 100, 144, 250, 256, 450, 720, 1080, 4000):
        for w in (1, 16, 48, 80, 100, 200, 256, 320, 1000, 1920, 5000):
            sizes.add((h, w))
    for _ in range(300):
        sizes.add((int(r.randint(1, 9000)), int(r.randint(1, 9000))))
    for _ in range(100):  # near 200:1
        s = int(r.randint(1, 60))
        sizes.add((s, s * 200 + int(r.randint(-2, 3))))
    sizes |= {(80, 16000), (16000, 80), (81, 16000), (79, 16000), (1, 200), (1, 201), (200, 1), (201, 1),
              (40000, 200), (40001, 200), (65500, 65500), (30000, 20000)}
    for f, mn, mx in configs:
        for h, w in sorted(sizes):
            try:
                rh, rw = smart_resize(h, w, f, mn, mx)
                if rh <= 0 or rw <= 0:
                    cases.append([h, w, f, mn, mx, None, None])
                else:
                    cases.append([h, w, f, mn, mx, rh, rw])
            except ValueError:
                cases.append([h, w, f, mn, mx, None, None])
    with open(os.path.join(OUT, "smart_resize.json"), "w") as f:
        f.write('{"generator": "tools/gen_image_refs.py",\n "columns": ["h", "w", "factor", "min_pixels", '
                '"max_pixels", "out_h", "out_w"],\n "note": "out_h/out_w null = error (aspect ratio > 200, or an empty result)",\n "cases": [\n')
        f.write(",\n".join("  " + json.dumps(c) for c in cases))
        f.write("\n ]}\n")
    print(f"smart_resize: {len(cases)} cases")


# ----------------------------------------------------------------------------- preprocessing

def hf_pixel_values(rgb, patch, temporal, merge, mn, mx, mean, std, rescale=1 / 255):
    """numpy restatement of Qwen2VLImageProcessor._preprocess (slow PIL path) for one image."""
    h, w = rgb.shape[:2]
    rh, rw = smart_resize(h, w, patch * merge, mn, mx)
    im = Image.fromarray(rgb)
    if (rh, rw) != (h, w):
        im = im.resize((rw, rh), Image.BICUBIC)
    a = np.asarray(im)
    x = (a.astype(np.float64) * rescale).astype(np.float32)
    x = (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    x = x.transpose(2, 0, 1)[None].repeat(temporal, 0)  # [T, C, H, W]
    gh, gw = rh // patch, rw // patch
    x = x.reshape(1, temporal, 3, gh // merge, merge, patch, gw // merge, merge, patch)
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8).reshape(gh * gw, 3 * temporal * patch * patch)
    return np.ascontiguousarray(x, dtype=np.float32), (1, gh, gw), (rh, rw)


def gen_preprocess():
    out_dir = os.path.join(OUT, "preprocess")
    os.makedirs(out_dir, exist_ok=True)
    clip_mean = [0.48145466, 0.4578275, 0.40821073]
    clip_std = [0.26862954, 0.26130258, 0.27577711]
    cases = [
        # Qwen2-VL style config, an image below min_pixels (upscaled).
        dict(name="qwen2_upscale", h=30, w=45, seed=41,
             config={"patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
                     "min_pixels": 3136, "max_pixels": 12845056, "image_mean": clip_mean, "image_std": clip_std}),
        # Qwen3-VL style config with a small longest_edge: an image above max_pixels (downscaled).
        dict(name="qwen3_downscale", h=150, w=97, seed=42,
             config={"size": {"shortest_edge": 1024, "longest_edge": 8192}, "patch_size": 16,
                     "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.5, 0.5, 0.5],
                     "image_std": [0.5, 0.5, 0.5], "rescale_factor": 0.00392156862745098}),
        # temporal_patch_size 3, merge 1, odd per-channel statistics.
        dict(name="odd_config", h=40, w=23, seed=43,
             config={"size": {"shortest_edge": 100, "longest_edge": 100000}, "patch_size": 8,
                     "temporal_patch_size": 3, "merge_size": 1, "image_mean": [0.1, 0.7, 0.33],
                     "image_std": [0.2, 0.9, 0.05]}),
    ]
    manifest = []
    for c in cases:
        rgb = photo(c["h"], c["w"], c["seed"])
        cfg = c["config"]
        if "size" in cfg:
            mn, mx = cfg["size"]["shortest_edge"], cfg["size"]["longest_edge"]
        else:
            mn, mx = cfg["min_pixels"], cfg["max_pixels"]
        pv, grid, resized = hf_pixel_values(rgb, cfg["patch_size"], cfg["temporal_patch_size"], cfg["merge_size"],
                                            mn, mx, cfg["image_mean"], cfg["image_std"],
                                            cfg.get("rescale_factor", 1 / 255))
        os.makedirs(os.path.join(out_dir, c["name"]), exist_ok=True)
        with open(os.path.join(out_dir, c["name"], "preprocessor_config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
            f.write("\n")
        with open(os.path.join(out_dir, c["name"] + ".png"), "wb") as f:
            f.write(save_pil(Image.fromarray(rgb), "PNG"))
        pv.tofile(os.path.join(out_dir, c["name"] + ".pixel_values.f32.bin"))
        manifest.append({"name": c["name"], "image": c["name"] + ".png", "config_dir": c["name"],
                         "orig_hw": [c["h"], c["w"]], "resized_hw": list(resized), "grid_thw": list(grid),
                         "shape": list(pv.shape), "pixel_values": c["name"] + ".pixel_values.f32.bin"})
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump({"generator": "tools/gen_image_refs.py", "pillow": Image.__version__,
                   "cases": manifest}, f, indent=1)
        f.write("\n")
    print(f"preprocess: {len(manifest)} cases")


def main():
    print("Pillow", Image.__version__, "libjpeg", features.version_codec("jpg"),
          "libwebp", features.version_module("webp"), file=sys.stderr)
    gen_decode()
    gen_resize()
    gen_smart_resize()
    gen_preprocess()


if __name__ == "__main__":
    main()
