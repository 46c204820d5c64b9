"""Fixtures and helpers of the Python binding tests (tests/python/test_bindings.py).

The tests need the built library ($R2GEN_LIBRARY) and the tiny model converted to GGUF
($R2GEN_TEST_MODELS/r2gen-tiny-<flavour>-f32.gguf, written by ctest's r2gen_tiny_models setup).
Without $R2GEN_LIBRARY the whole module is skipped.
"""

import json
import os
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "r2gen-tiny"
SWIN_TINY = ROOT / "tests" / "data" / "swin-tiny"

if not os.environ.get("R2GEN_LIBRARY"):
    pytest.skip("R2GEN_LIBRARY is not set: point it at the built libr2gen.so.0 to test the "
                "Python bindings", allow_module_level=True)

# The package under test is the one in this tree, not an installed one.
sys.path.insert(0, str(ROOT / "bindings" / "python"))
import r2gen  # noqa: E402

EXPECTED = json.loads((TINY / "expected.json").read_text())
STUDIES = {study["name"]: study for study in EXPECTED["studies"]}
GREEDY_STUDY = next(s["name"] for s in EXPECTED["studies"] if s["generate"]["num_beams"] == 1)


def model_path(flavour):
    models = os.environ.get("R2GEN_TEST_MODELS")
    if not models:
        pytest.skip("R2GEN_TEST_MODELS is not set: it names the folder holding "
                    "r2gen-tiny-<flavour>-f32.gguf")
    path = Path(models) / f"r2gen-tiny-{flavour}-f32.gguf"
    assert path.exists(), f"{path} is missing: run ctest's r2gen_tiny_models setup"
    return path


@pytest.fixture
def open_model():
    """open_model(flavour) -> a one-thread Model (the tiny model is fastest on one thread),
    closed after the test."""
    opened = []

    def open_(flavour, **options):
        model = r2gen.Model(model_path(flavour), threads=1, **options)
        opened.append(model)
        return model

    yield open_
    for model in opened:
        model.close()


def image_paths(study):
    return [TINY / relative for relative in study["images"]]


# ---------------------------------------------------------------------------------------------
# A small PNG reader (greyscale or RGB, 8 or 16 bit, not interlaced), so the tests can give the
# library decoded pixels without PIL.
# ---------------------------------------------------------------------------------------------

PNG_CHANNELS = {0: 1, 2: 3}  # colour type -> samples per pixel


def read_png(path):
    """The pixels of a PNG as uint8 / native uint16, HxW (grey) or HxWx3 (RGB)."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert colour in PNG_CHANNELS and depth in (8, 16) and interlace == 0, f"{path}: {header}"
    channels = PNG_CHANNELS[colour]
    pixel_bytes = channels * depth // 8
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8)
    rows = raw.reshape(height, 1 + width * pixel_bytes)
    pixels = unfilter(rows[:, 0], rows[:, 1:], pixel_bytes)
    if depth == 16:
        pixels = pixels.view(">u2").astype(np.uint16)
    shape = (height, width) if channels == 1 else (height, width, channels)
    return pixels.reshape(shape)


def unfilter(filters, filtered, bpp):
    """Undo PNG's per-row filters (None, Sub, Up, Average, Paeth) on [height, row bytes]."""
    out = np.zeros(filtered.shape, np.uint8)
    prior = np.zeros(filtered.shape[1], np.int32)
    for y, kind in enumerate(filters):
        row = filtered[y].astype(np.int32)
        if kind == 0:
            recon = row
        elif kind == 1:  # Sub: a running sum per byte lane
            recon = np.cumsum(row.reshape(-1, bpp), axis=0).reshape(-1)
        elif kind == 2:  # Up
            recon = row + prior
        else:  # Average and Paeth depend on the byte just reconstructed: byte by byte
            recon = unfilter_sequential(kind, row.tolist(), prior.tolist(), bpp)
        recon = np.asarray(recon, np.int32) & 0xFF
        out[y] = recon
        prior = recon
    return out


def unfilter_sequential(kind, row, prior, bpp):
    recon = [0] * len(row)
    for i, value in enumerate(row):
        left = recon[i - bpp] if i >= bpp else 0
        up = prior[i]
        if kind == 3:
            predicted = (left + up) >> 1
        else:
            upper_left = prior[i - bpp] if i >= bpp else 0
            p = left + up - upper_left
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - upper_left)
            predicted = left if pa <= pb and pa <= pc else (up if pb <= pc else upper_left)
        recon[i] = (value + predicted) & 0xFF
    return recon


def view_as_array_or_bytes(path):
    """A study's view as the caller of the numpy path has it: PNGs decoded to arrays; JPEGs (no
    decoder here) as their file bytes, which also mixes input kinds in one study."""
    return read_png(path) if path.suffix == ".png" else path.read_bytes()
