#!/usr/bin/env python3
"""Writes the crafted bad inputs of tests/bad_inputs_test.cpp into this folder.

Run from the repository root: /usr/bin/python3 tests/data/bad/make_bad_files.py
Only the standard library is used (struct, zlib, json). Truncated files are cut from the
fixtures in tests/data/images/decode and tests/data/tiny-qwen3-vl, so re-running gives the same
bytes as long as those fixtures are unchanged. See README.md for what each file is.
"""
import json
import os
import struct
import zlib

ROOT = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.dirname(ROOT)


def fixture(*parts):
    with open(os.path.join(DATA, *parts), 'rb') as f:
        return f.read()


def out(name, data):
    if isinstance(data, str):
        data = data.encode('utf-8')
    with open(os.path.join(ROOT, name), 'wb') as f:
        f.write(data)


def chunk(kind, payload, length=None):
    body = kind + payload
    return struct.pack('>I', len(payload) if length is None else length) + body + struct.pack('>I', zlib.crc32(body))


def png(width, height, color_type, rows, bit_depth=8, plte=None, ihdr_size=None):
    """rows: raw scanline bytes (without the filter byte)."""
    w, h = ihdr_size if ihdr_size else (width, height)
    data = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, bit_depth, color_type, 0, 0, 0))
    if plte is not None:
        data += chunk(b'PLTE', plte)
    raw = b''.join(b'\x00' + r for r in rows)
    return data + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b'')


def grey_png(width, height):
    return png(width, height, 0, [bytes((x * 7 + y * 3) & 0xff for x in range(width)) for y in range(height)])


# ---- images: truncated files (cut from valid fixtures) ----
out('png_truncated.png', fixture('images', 'decode', 'png_rgb8.png')[:1200])
out('jpeg_truncated.jpg', fixture('images', 'decode', 'jpeg_baseline.jpg')[:700])
out('webp_truncated.webp', fixture('images', 'decode', 'webp_lossless.webp')[:1000])
out('gif_truncated.gif', fixture('images', 'decode', 'gif_basic.gif')[:500])
out('bmp_truncated.bmp', fixture('images', 'decode', 'bmp_rgb24.bmp')[:2000])

# ---- images: wrong magic ----
good_png = fixture('images', 'decode', 'png_rgb8.png')
out('png_wrong_magic.png', b'\x88' + good_png[1:])
out('tiff_header.tif', b'II*\x00\x08\x00\x00\x00' + bytes(64))
out('jpeg_garbage_after_soi.jpg', b'\xff\xd8\xff' + bytes(range(256)) * 2)
out('empty.png', b'')

# ---- images: lying lengths ----
# IDAT length field says 0x7ffffff0 bytes; the chunk holds ~100.
rows = [bytes(range(16)) * 3 for _ in range(16)]
lying = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 16, 16, 8, 2, 0, 0, 0))
lying += chunk(b'IDAT', zlib.compress(b''.join(b'\x00' + r for r in rows)), length=0x7ffffff0) + chunk(b'IEND', b'')
out('png_lying_idat_length.png', lying)
# BMP whose pixel-data offset (bytes 10..13) points past the end of the file.
bmp = bytearray(fixture('images', 'decode', 'bmp_rgb24.bmp'))
bmp[10:14] = struct.pack('<I', 0x10000000)
out('bmp_lying_pixel_offset.bmp', bytes(bmp))
# BMP whose height claims 30000 rows (the file holds 29).
bmp = bytearray(fixture('images', 'decode', 'bmp_rgb24.bmp'))
bmp[22:26] = struct.pack('<i', 30000)
out('bmp_lying_height.bmp', bytes(bmp))

# ---- images: zero-size ----
out('png_zero_width.png', png(0, 4, 0, [b''] * 4))
# GIF89a with a 0x0 logical screen and a 0x0 first frame.
gif = b'GIF89a' + struct.pack('<HHBBB', 0, 0, 0, 0, 0)
gif += b',' + struct.pack('<HHHHB', 0, 0, 0, 0, 0) + b'\x02\x02\x44\x01\x00' + b';'
out('gif_zero_size.gif', gif)
bmp = bytearray(fixture('images', 'decode', 'bmp_rgb24.bmp'))
bmp[18:22] = struct.pack('<i', 0)
out('bmp_zero_width.bmp', bytes(bmp))

# ---- images: extreme aspect ratios (valid files; preprocessing allows up to 200:1) ----
out('png_1x300.png', grey_png(1, 300))
out('png_200x1.png', grey_png(200, 1))
out('png_201x1.png', grey_png(201, 1))
out('png_1x1.png', grey_png(1, 1))

# ---- images: palette PNG whose indices run past its 4-entry PLTE (valid: grey ramp, as Pillow) ----
plte = bytes([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30])
out('png_palette_bad_index.png', png(8, 8, 3, [bytes(range(y * 8, y * 8 + 8)) for y in range(8)], plte=plte))

# ---- safetensors ----
def safetensors(header, data):
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    return struct.pack('<Q', len(text)) + text + data


f32 = struct.pack('<6f', 1, 2, 3, 4, 5, 6)
ok = safetensors({'a': {'dtype': 'F32', 'shape': [2, 3], 'data_offsets': [0, 24]},
                  'b': {'dtype': 'F32', 'shape': [3], 'data_offsets': [24, 36]}}, f32 + f32[:12])
out('st_truncated.safetensors', ok[:len(ok) - 10])
out('st_overlap.safetensors', safetensors({'a': {'dtype': 'F32', 'shape': [2, 3], 'data_offsets': [0, 24]},
                                           'b': {'dtype': 'F32', 'shape': [3], 'data_offsets': [12, 24]}}, f32))
out('st_header_length_lies.safetensors', struct.pack('<Q', 4096) + b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}')
out('st_header_not_json.safetensors', struct.pack('<Q', 16) + b'{"a": [1, 2,   ' + bytes(8))
out('st_unknown_dtype.safetensors', safetensors({'a': {'dtype': 'F128', 'shape': [1], 'data_offsets': [0, 16]}}, bytes(16)))

# ---- gguf ----
def gguf_header(n_tensors, n_kv):
    return b'GGUF' + struct.pack('<IQQ', 3, n_tensors, n_kv)


def gguf_string(s):
    return struct.pack('<Q', len(s)) + s


out('gguf_bad_magic.gguf', b'GGUE' + struct.pack('<IQQ', 3, 0, 0))
# One key, then the value's string claims 1000 bytes and the file ends.
out('gguf_truncated.gguf', gguf_header(0, 1) + gguf_string(b'general.name') + struct.pack('<IQ', 8, 1000) + b'abc')
# An i64 array claiming 2^26 elements (512 MB) in a 60-byte file.
out('gguf_huge_array.gguf', gguf_header(0, 1) + gguf_string(b'tokenizer.ggml.token_type') + struct.pack('<IIQ', 9, 11, 1 << 26) + bytes(16))

# ---- JSON configs ----
config = fixture('tiny-qwen3-vl', 'config.json')
out('config_malformed.json', config[:300])
out('config_huge_number.json', '{"model_type": "qwen3", "hidden_size": 1e400}')
out('config_deeply_nested.json', '{"model_type": ' + '[' * 600 + ']' * 600 + '}')
out('tokenizer_truncated.json', fixture('tiny-qwen3-vl', 'tokenizer.json')[:3000])

# ---- prompt text that is not UTF-8 (a lone continuation byte, then an overlong encoding) ----
out('prompt_not_utf8.txt', b'Hello \x80 world \xc0\xaf!')

# ---- videos (read by FFmpeg) ----
# video_audio_only.mkv and video_one_frame.mkv are made with the ffmpeg CLI (see README.md).
out('video_truncated.mkv', fixture('golden', 'videos', 'd_256x192_8f_4fps.mkv')[:100000])
out('video_not_a_video.mp4', b'This is not a video file.\n' * 40)
# YUV4MPEG2 headers are text: 100000x100000 (FFmpeg refuses it), 16000x16000 (FFmpeg takes it; qvl's
# limit refuses it before a frame is decoded), a frame rate of 0/1 (FFmpeg reads it as 25 fps).
out('video_absurd_size.y4m', b'YUV4MPEG2 W100000 H100000 F30:1 Ip A1:1 C420jpeg\nFRAME\n')
out('video_huge_size.y4m', b'YUV4MPEG2 W16000 H16000 F30:1 Ip A1:1 C420jpeg\nFRAME\n')
out('video_fps_zero.y4m', b'YUV4MPEG2 W32 H32 F0:1 Ip A1:1 C420jpeg\n' + (b'FRAME\n' + bytes(32 * 32 * 3 // 2)) * 4)
