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

# ---- llama.cpp GGUF pairs (text model + vision projector), in the layout llama.cpp writes ----
# A micro Qwen3-VL pair that loads: llama_text.gguf (hidden 32, 1 layer, a 263-token byte-level
# vocabulary with the Qwen special tokens, F16 matrices) and llama_mmproj.gguf (vision hidden 8,
# 1 block, 2x2 patches, a 2x2 position table, one DeepStack merger, projection 32). The bad files
# are each one change away from these.
GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STRING, GGUF_ARRAY = 4, 5, 6, 7, 8, 9
GGML_F32, GGML_F16 = 0, 1


def gguf_value(kind, value):
    if kind == GGUF_STRING:
        return gguf_string(value.encode('utf-8'))
    return struct.pack({GGUF_U32: '<I', GGUF_I32: '<i', GGUF_F32: '<f', GGUF_BOOL: '<B'}[kind], value)


def gguf_file(kvs, tensors):
    """kvs: [(key, kind, value)], an array as (GGUF_ARRAY, (elem_kind, [values])).
    tensors: [(name, dims innermost first, ggml type, bytes)]; data aligned to 32 bytes."""
    body = b''
    for key, kind, value in kvs:
        body += gguf_string(key.encode()) + struct.pack('<I', kind)
        if kind == GGUF_ARRAY:
            elem, values = value
            body += struct.pack('<IQ', elem, len(values)) + b''.join(gguf_value(elem, v) for v in values)
        else:
            body += gguf_value(kind, value)
    data, offsets = b'', []
    for name, dims, ggml_type, raw in tensors:
        data += bytes(-len(data) % 32)
        offsets.append(len(data))
        data += raw
    for (name, dims, ggml_type, raw), offset in zip(tensors, offsets):
        body += gguf_string(name.encode()) + struct.pack('<I', len(dims)) + b''.join(struct.pack('<Q', d) for d in dims)
        body += struct.pack('<IQ', ggml_type, offset)
    head = gguf_header(len(tensors), len(kvs)) + body
    return head + bytes(-len(head) % 32) + data


def values(n, salt):
    """n small deterministic values in (-0.1, 0.1)."""
    return [((i * 7919 + salt * 104729) % 2001 - 1000) / 10000.0 for i in range(n)]


def f16_tensor(name, dims, salt):
    n = 1
    for d in dims:
        n *= d
    return (name, dims, GGML_F16, struct.pack('<%de' % n, *values(n, salt)))


def f32_tensor(name, dims, fill=None):
    n = 1
    for d in dims:
        n *= d
    return (name, dims, GGML_F32, struct.pack('<%df' % n, *([fill] * n if fill is not None else values(n, 7))))


def byte_level_tokens():
    """GPT-2's byte-to-character map: the 256 single-byte tokens of a byte-level BPE vocabulary."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|vision_start|>', '<|vision_end|>', '<|image_pad|>',
            '<|video_pad|>']
TEXT_HIDDEN, TEXT_FFN, HEAD_DIM, VOCAB = 32, 32, 16, 264


def llama_text(ffn_in_metadata=TEXT_FFN):
    tokens = byte_level_tokens() + SPECIALS + ['[PAD263]']
    types = [1] * 256 + [3] * len(SPECIALS) + [5]
    kvs = [('general.architecture', GGUF_STRING, 'qwen3vl'), ('general.type', GGUF_STRING, 'model'),
           ('qwen3vl.block_count', GGUF_U32, 1), ('qwen3vl.context_length', GGUF_U32, 256),
           ('qwen3vl.embedding_length', GGUF_U32, TEXT_HIDDEN),
           ('qwen3vl.feed_forward_length', GGUF_U32, ffn_in_metadata),
           ('qwen3vl.attention.head_count', GGUF_U32, 2), ('qwen3vl.attention.head_count_kv', GGUF_U32, 1),
           ('qwen3vl.attention.key_length', GGUF_U32, HEAD_DIM), ('qwen3vl.attention.value_length', GGUF_U32, HEAD_DIM),
           ('qwen3vl.rope.dimension_sections', GGUF_ARRAY, (GGUF_I32, [2, 3, 3, 0])),
           ('qwen3vl.rope.freq_base', GGUF_F32, 1e6), ('qwen3vl.attention.layer_norm_rms_epsilon', GGUF_F32, 1e-6),
           ('qwen3vl.n_deepstack_layers', GGUF_U32, 1),
           ('tokenizer.ggml.model', GGUF_STRING, 'gpt2'), ('tokenizer.ggml.pre', GGUF_STRING, 'qwen2'),
           ('tokenizer.ggml.tokens', GGUF_ARRAY, (GGUF_STRING, tokens)),
           ('tokenizer.ggml.token_type', GGUF_ARRAY, (GGUF_I32, types)),
           ('tokenizer.ggml.merges', GGUF_ARRAY, (GGUF_STRING, [])),
           ('tokenizer.ggml.eos_token_id', GGUF_U32, 258), ('tokenizer.ggml.bos_token_id', GGUF_U32, 256),
           ('tokenizer.chat_template', GGUF_STRING,
            "{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.content is string %}{{ m.content }}"
            "{% else %}{% for c in m.content %}{% if c.type == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
            "{% elif c.type == 'text' %}{{ c.text }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")]
    q, kv = 2 * HEAD_DIM, HEAD_DIM
    tensors = [f16_tensor('token_embd.weight', [TEXT_HIDDEN, VOCAB], 1),
               f32_tensor('output_norm.weight', [TEXT_HIDDEN], 1.0),
               f32_tensor('blk.0.attn_norm.weight', [TEXT_HIDDEN], 1.0),
               f32_tensor('blk.0.ffn_norm.weight', [TEXT_HIDDEN], 1.0),
               f32_tensor('blk.0.attn_q_norm.weight', [HEAD_DIM], 1.0),
               f32_tensor('blk.0.attn_k_norm.weight', [HEAD_DIM], 1.0),
               f16_tensor('blk.0.attn_q.weight', [TEXT_HIDDEN, q], 2),
               f16_tensor('blk.0.attn_k.weight', [TEXT_HIDDEN, kv], 3),
               f16_tensor('blk.0.attn_v.weight', [TEXT_HIDDEN, kv], 4),
               f16_tensor('blk.0.attn_output.weight', [q, TEXT_HIDDEN], 5),
               f16_tensor('blk.0.ffn_gate.weight', [TEXT_HIDDEN, TEXT_FFN], 6),
               f16_tensor('blk.0.ffn_up.weight', [TEXT_HIDDEN, TEXT_FFN], 7),
               f16_tensor('blk.0.ffn_down.weight', [TEXT_FFN, TEXT_HIDDEN], 8)]
    return gguf_file(kvs, tensors)


V_HIDDEN, V_FFN, PATCH = 8, 16, 2


def llama_mmproj(projection=TEXT_HIDDEN, edit=None):
    """edit(tensors) may change the tensor list (name, dims, type, bytes) in place."""
    merged = 4 * V_HIDDEN
    kvs = [('general.architecture', GGUF_STRING, 'clip'), ('general.type', GGUF_STRING, 'mmproj'),
           ('clip.has_vision_encoder', GGUF_BOOL, 1), ('clip.projector_type', GGUF_STRING, 'qwen3vl_merger'),
           ('clip.vision.projection_dim', GGUF_U32, projection), ('clip.vision.image_size', GGUF_U32, 2 * PATCH),
           ('clip.vision.patch_size', GGUF_U32, PATCH), ('clip.vision.embedding_length', GGUF_U32, V_HIDDEN),
           ('clip.vision.feed_forward_length', GGUF_U32, V_FFN), ('clip.vision.block_count', GGUF_U32, 1),
           ('clip.vision.attention.head_count', GGUF_U32, 1), ('clip.vision.spatial_merge_size', GGUF_U32, 2),
           ('clip.vision.attention.layer_norm_epsilon', GGUF_F32, 1e-6),
           ('clip.vision.image_mean', GGUF_ARRAY, (GGUF_F32, [0.5, 0.5, 0.5])),
           ('clip.vision.image_std', GGUF_ARRAY, (GGUF_F32, [0.5, 0.5, 0.5])),
           ('clip.vision.is_deepstack_layers', GGUF_ARRAY, (GGUF_BOOL, [1]))]

    def linear(name, out_features, in_features, salt):
        return [f16_tensor(name + '.weight', [in_features, out_features], salt), f32_tensor(name + '.bias', [out_features])]

    def layer_norm(name, size):
        return [f32_tensor(name + '.weight', [size], 1.0), f32_tensor(name + '.bias', [size], 0.0)]

    tensors = (linear('v.blk.0.attn_qkv', 3 * V_HIDDEN, V_HIDDEN, 11) + linear('v.blk.0.attn_out', V_HIDDEN, V_HIDDEN, 12) +
               linear('v.blk.0.ffn_up', V_FFN, V_HIDDEN, 13) + linear('v.blk.0.ffn_down', V_HIDDEN, V_FFN, 14) +
               layer_norm('v.blk.0.ln1', V_HIDDEN) + layer_norm('v.blk.0.ln2', V_HIDDEN) +
               linear('v.deepstack.0.fc1', merged, merged, 15) + linear('v.deepstack.0.fc2', projection, merged, 16) +
               layer_norm('v.deepstack.0.norm', merged) + linear('mm.0', merged, merged, 17) +
               linear('mm.2', projection, merged, 18) + layer_norm('v.post_ln', V_HIDDEN) +
               [f32_tensor('v.patch_embd.bias', [V_HIDDEN]),
                f16_tensor('v.patch_embd.weight', [PATCH, PATCH, 3, V_HIDDEN], 19),
                f16_tensor('v.patch_embd.weight.1', [PATCH, PATCH, 3, V_HIDDEN], 20),
                f32_tensor('v.position_embd.weight', [V_HIDDEN, 4])])
    if edit:
        edit(tensors)
    return gguf_file(kvs, tensors)


def replace_tensor(name, new):
    def edit(tensors):
        at = [t[0] for t in tensors].index(name)
        if new is None:
            del tensors[at]
        else:
            tensors[at] = new
    return edit


out('llama_text.gguf', llama_text())
out('llama_mmproj.gguf', llama_mmproj())
# A tensor type id ggml does not define (99), one ggml defines that qvl cannot decode (MXFP4,
# 32-value blocks of 17 bytes), a tensor left out, a tensor whose shape disagrees with the metadata.
out('llama_mmproj_unknown_type.gguf',
    llama_mmproj(edit=replace_tensor('v.blk.0.ffn_down.weight', ('v.blk.0.ffn_down.weight', [V_FFN, V_HIDDEN], 99, bytes(256)))))
out('llama_mmproj_unsupported_type.gguf',
    llama_mmproj(edit=replace_tensor('mm.0.weight', ('mm.0.weight', [32, 32], 39, bytes(32 * 17)))))
out('llama_mmproj_missing_tensor.gguf', llama_mmproj(edit=replace_tensor('v.blk.0.ln2.weight', None)))
out('llama_mmproj_shape_mismatch.gguf',
    llama_mmproj(edit=replace_tensor('v.blk.0.ffn_up.weight', f16_tensor('v.blk.0.ffn_up.weight', [V_HIDDEN, 24], 13))))
# A projector made for a wider text model (projection 48, its own tensors consistent) beside the
# 32-wide text model: the pair does not fit.
out('llama_mmproj_wider.gguf', llama_mmproj(projection=48))
# A text model whose metadata claims the 4B's FFN width (9728) over 32-wide FFN tensors: refused
# at the first such tensor, before anything of the claimed size is allocated.
out('llama_text_shape_mismatch.gguf', llama_text(ffn_in_metadata=9728))

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
