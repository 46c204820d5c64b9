#!/usr/bin/env python3
"""Write the fuzzers' seed corpora under fuzz/corpus/<target>/ from the test fixtures.

gguf/       micro models: the r2gen-tiny GGUF (tests/make_models.py) with every width shrunk
            (Swin 32 -> 4 channels, LLaMA 64 -> 16) so a seed is small enough to mutate quickly,
            as one file (vision + LLaMA), LLaMA only, and vision only. The full micro model is
            also what the image and tokenizer fuzzers load.
image/      the fixture images cropped to a few pixels, in every format and sample layout the
            decoders handle (PNG grey/grey+alpha/RGB/RGBA/palette/16-bit, JPEG baseline and
            progressive, BMP, PGM/PPM 8 and 16 bit).
raw_image/  headers of the raw-pixel fuzzer (see fuzz_raw_image.c) for each pixel format.
tokenizer/  texts of the tokenizer fixture cases.

Usage: make_corpus.py <r2gen-tiny-shallow-f32.gguf> (made by tests/make_models.py)."""
import io
import json
import os
import struct
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE, "tools"))
import r2gen_convert as conv  # noqa: E402

CORPUS = os.path.join(HERE, "corpus")
VISION_SHRINK = 8   # Swin widths 32, 64, ... 1024 become 4, 8, ... 128
LLAMA_WIDTH = (64, 16)


class Raw:
    """A tensor source for conv.write_gguf: deterministic small values of a given shape."""

    def __init__(self, shape, seed):
        self.shape = shape
        self.seed = seed

    def float32(self):
        rng = np.random.default_rng(self.seed)
        return (rng.standard_normal(self.shape) * 0.1).astype(np.float32)


def shrunk_shape(name, ne):
    if name.startswith("r2gen.vision."):
        return tuple(d // VISION_SHRINK if d % 32 == 0 else d for d in ne)
    if name == "r2gen.proj.weight":
        return (ne[0] // VISION_SHRINK, LLAMA_WIDTH[1])
    return tuple(LLAMA_WIDTH[1] if d == LLAMA_WIDTH[0] else d for d in ne)


SHRUNK_KEYS = {
    "r2gen.vision.embed_dim": lambda v: v // VISION_SHRINK,
    "r2gen.vision.num_features": lambda v: v // VISION_SHRINK,
    "r2gen.proj.n_embd": lambda v: LLAMA_WIDTH[1],
    "llama.embedding_length": lambda v: LLAMA_WIDTH[1],
    "llama.rope.dimension_count": lambda v: v * LLAMA_WIDTH[1] // LLAMA_WIDTH[0],
}


def metadata(typed, keep):
    meta = conv.Metadata()
    for key, (vtype, value) in typed.items():
        if not keep(key):
            continue
        value = SHRUNK_KEYS.get(key, lambda v: v)(value)
        if vtype == conv.GGUF_STRING:
            meta.string(key, value)
        elif vtype == conv.GGUF_ARRAY:
            if value and isinstance(value[0], str):
                meta.string_array(key, value)
            else:
                elem = conv.GGUF_FLOAT32 if isinstance(value[0], float) else conv.GGUF_UINT32
                meta.array(key, elem, value)
        else:
            meta.scalar(key, vtype, value)
    return meta


def write_micro_models(tiny_path):
    typed, tensors = conv.read_gguf(tiny_path, with_types=True)
    out = os.path.join(CORPUS, "gguf")
    os.makedirs(out, exist_ok=True)
    is_vision = lambda name: name.startswith("r2gen.")  # noqa: E731
    variants = {
        "micro-r2gen.gguf": lambda name: True,
        "micro-llama.gguf": lambda name: not is_vision(name),
        "micro-vision.gguf": is_vision,
    }
    for file_name, keep in variants.items():
        plans = []
        for i, (name, (_, ne, _)) in enumerate(sorted(tensors.items())):
            if not keep(name):
                continue
            shape = tuple(reversed(shrunk_shape(name, ne)))
            # f16 halves the seed; the relative-position tables must stay f32.
            requested = conv.GGML_F16 if len(ne) == 2 and "rel_pos" not in name else conv.GGML_F32
            plan = conv.TensorPlan(name, Raw(shape, i), quantisable=True, requested=requested)
            plans.append(plan)
        conv.write_gguf(os.path.join(out, file_name), metadata(typed, keep), plans)


def crop(path, size=12):
    image = Image.open(path)
    image.load()
    return image.crop((0, 0, size, size - 2))


def save(image, name, **options):
    buf = io.BytesIO()
    image.save(buf, **options)
    with open(os.path.join(CORPUS, "image", name), "wb") as f:
        f.write(buf.getvalue())


def write_images():
    os.makedirs(os.path.join(CORPUS, "image"), exist_ok=True)
    images = os.path.join(SOURCE, "tests", "data", "r2gen-tiny", "images")
    grey = crop(os.path.join(images, "frontal_gray8.png")).convert("L")
    rgb = crop(os.path.join(images, "tinted_rgb8.png")).convert("RGB")
    grey16 = Image.fromarray(np.asarray(grey, dtype=np.uint16) * 257)
    save(grey, "grey8.png", format="PNG")
    save(grey.convert("LA"), "grey_alpha.png", format="PNG")
    save(rgb, "rgb8.png", format="PNG")
    save(rgb.convert("RGBA"), "rgba8.png", format="PNG")
    save(rgb.convert("P"), "palette.png", format="PNG")
    save(grey16, "grey16.png", format="PNG")
    save(grey, "grey8.jpg", format="JPEG", quality=90)
    save(rgb, "rgb8.jpg", format="JPEG", quality=90)
    save(rgb, "progressive.jpg", format="JPEG", quality=80, progressive=True)
    save(rgb, "rgb8_420.jpg", format="JPEG", quality=75, subsampling=2)
    save(rgb, "rgb24.bmp", format="BMP")
    save(grey, "grey8.bmp", format="BMP")
    save(grey, "grey8.pgm", format="PPM")
    save(rgb, "rgb8.ppm", format="PPM")
    with open(os.path.join(CORPUS, "image", "grey16.pgm"), "wb") as f:
        samples = np.asarray(grey16, dtype=">u2")
        f.write(b"P5\n# 16-bit\n%d %d\n65535\n" % (grey16.width, grey16.height) + samples.tobytes())
    with open(os.path.join(CORPUS, "image", "maxval1000.pgm"), "wb") as f:
        samples = (np.asarray(grey, dtype=np.uint32) * 1000 // 255).astype(">u2")
        f.write(b"P5 %d %d 1000\n" % (grey.width, grey.height) + samples.tobytes())


# fuzz_raw_image.c reads: format u8, mapping u8, width i32, height i32, stride i32, centre i16,
# width u16 (little-endian), then pixels.
RAW_HEADER = "<BBiiihH"


def write_raw_images():
    out = os.path.join(CORPUS, "raw_image")
    os.makedirs(out, exist_ok=True)
    pixels = bytes(range(256)) * 8
    cases = {
        "gray8": (0, 0, 17, 9, 0, 0, 0),
        "gray16_window": (1, 1, 9, 5, 0, 300, 600),
        "gray16_minmax": (1, 2, 8, 8, 20, 0, 0),
        "rgb8_strided": (2, 0, 5, 7, 20, 0, 0),
        "rgba8": (3, 0, 6, 6, 0, 0, 0),
    }
    for name, fields in cases.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(struct.pack(RAW_HEADER, *fields) + pixels)


def write_texts():
    out = os.path.join(CORPUS, "tokenizer")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(SOURCE, "tests", "data", "tokenizer", "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    texts = sorted({c["text"] for c in cases["encode"]})
    for i, text in enumerate(texts[:64]):
        with open(os.path.join(out, f"case{i:02d}"), "wb") as f:
            f.write(text.encode("utf-8", "surrogatepass"))


def main():
    write_micro_models(sys.argv[1])
    write_images()
    write_raw_images()
    write_texts()


if __name__ == "__main__":
    main()
