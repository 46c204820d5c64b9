"""Fuzz loops over the converter's readers of untrusted files: the restricted unpickler behind
torch checkpoints (.pth / .bin) and the safetensors reader.

Each loop mutates a file made from the fixtures (bit flips, interesting bytes, cut, repeated and
deleted spans; for safetensors also structure-aware edits of the JSON header) with a seeded
generator, so every run tries the same inputs, and reads the result the way a conversion does:
index the file, then read every tensor. The property: a malformed file is refused with
ConvertError, the converter's one documented failure, and never with another exception (a crash of
the command line tool with a traceback), never by running code the file names, and in bounded time.

R2GEN_FUZZ_ITERATIONS (default 300 per loop) makes the loops longer for a campaign; the count of
executions is printed with -s.
"""

import io
import json
import os
import pickle
import random
import struct
import time
import zipfile

import numpy as np
import pytest

from conftest import DATA, ROOT
import r2gen_convert as conv

ITERATIONS = int(os.environ.get("R2GEN_FUZZ_ITERATIONS", "300"))
SEED = 20240917
SLOW_SECONDS = 5.0  # no single malformed file may take longer to refuse
INTERESTING = (0x00, 0x01, 0x7F, 0x80, 0xFF)
# Inputs that once escaped as another exception (zip and safetensors-header errors), replayed on
# every run.
REGRESSIONS = sorted((ROOT / "fuzz" / "corpus" / "converter").iterdir())
# A 777-byte pickle whose LONG_BINPUT index is 1.4e9: CPython's C unpickler grows its memo array
# to that index, ~12 GB (found by the pickle loop at mutation 1105); the converter's unpickler
# keeps a dict memo, so it must be refused at once.
MEMO_BLOWUP = ROOT / "fuzz" / "corpus" / "converter" / "pickle-long-binput-memo.pth"

def mutate(data, rng):
    """One to four random edits of a byte string."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(6)
        pos = rng.randrange(len(buf)) if buf else 0
        if kind == 0 and buf:
            buf[pos] ^= 1 << rng.randrange(8)
        elif kind == 1 and buf:
            buf[pos] = rng.choice(INTERESTING)
        elif kind == 2:
            del buf[rng.randrange(len(buf) + 1):]
        elif kind == 3 and buf:
            end = min(len(buf), pos + rng.randint(1, 16))
            buf[pos:pos] = buf[pos:end] * rng.randint(1, 4)
        elif kind == 4 and buf:
            del buf[pos:pos + rng.randint(1, 16)]
        elif buf:
            buf[pos:pos + 8] = struct.pack("<Q", rng.choice((0, 1, 2**31, 2**63, 2**64 - 1)))
    return bytes(buf)


def read_everything(path, reader):
    """What a conversion does with a source file: index it, then read every tensor."""
    tensors = reader(path)
    for value in tensors.values():
        if isinstance(value, conv.LazyTensor) and value.dtype in conv.FLOAT_DTYPES:
            value.float32()


def check_refused_cleanly(path, reader, what):
    start = time.monotonic()
    try:
        read_everything(path, reader)
    except conv.ConvertError:
        pass
    except MemoryError:
        pytest.fail(f"{what}: MemoryError (a size in the file was trusted)")
    except Exception as e:  # noqa: BLE001 - any other exception is the finding
        with open(path, "rb") as f:
            head = f.read(64)
        pytest.fail(f"{what}: {type(e).__name__}: {e} (file starts {head!r})")
    elapsed = time.monotonic() - start
    assert elapsed < SLOW_SECONDS, f"{what}: {elapsed:.1f} s to read"


# ---- torch checkpoints ---------------------------------------------------------------------

CHECKPOINT = DATA / "r2gen-tiny" / "checkpoint-shallow.pth"


def checkpoint_members():
    with zipfile.ZipFile(CHECKPOINT) as z:
        return [(info.filename, z.read(info.filename)) for info in z.infolist()]


def write_zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in members:
            z.writestr(name, data)


def test_mutated_checkpoint_pickles(tmp_path):
    """The pickle inside a valid zip, mutated: what reaches the restricted unpickler."""
    rng = random.Random(SEED)
    members = checkpoint_members()
    pickle_index = next(i for i, (n, _) in enumerate(members) if n.endswith("/data.pkl"))
    path = str(tmp_path / "mutated.pth")
    for i in range(ITERATIONS):
        edited = list(members)
        name, data = edited[pickle_index]
        edited[pickle_index] = (name, mutate(data, rng))
        write_zip(path, edited)
        check_refused_cleanly(path, conv.load_torch_state_dict, f"pickle mutation {i}")
    print(f"checkpoint pickles: {ITERATIONS} executions")


def fuzz_whole_file(path, original, rng, reader, what):
    """ITERATIONS mutations of a whole file's bytes, each read back and refused cleanly."""
    for i in range(ITERATIONS):
        path.write_bytes(mutate(original, rng))
        check_refused_cleanly(str(path), reader, f"{what} mutation {i}")
    print(f"{what}: {ITERATIONS} executions")


def test_mutated_checkpoint_archives(tmp_path):
    """The whole .pth file mutated: the zip layer (directory, headers, storage entries)."""
    fuzz_whole_file(tmp_path / "mutated.pth", CHECKPOINT.read_bytes(), random.Random(SEED + 1),
                    conv.load_torch_state_dict, "checkpoint archive")


# Pickles that try to run code: each global is resolved by name alone, so the unpickler must
# refuse it before anything is called. The marker file shows whether anything ran.
def hostile_pickles(marker):
    command = f"touch {marker}"
    yield b"cos\nsystem\n(V" + command.encode() + b"\ntR."
    yield b"cposix\nsystem\n(V" + command.encode() + b"\ntR."
    yield b"c__builtin__\neval\n(V__import__('os').system('" + command.encode() + b"')\ntR."
    yield b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93V" + \
        command.encode() + b"\n\x85R."
    yield b"(cos\nsystem\nV" + command.encode() + b"\ni."  # INST-like via OBJ
    yield b"(V" + command.encode() + b"\nios\nsystem\n."  # INST
    yield b"csubprocess\ncheck_call\n((V/bin/sh\nV-c\nV" + command.encode() + b"\nltR."
    yield b"cbuiltins\ngetattr\n(cbuiltins\nobject\nV__subclasses__\ntR."


def test_hostile_pickles_run_nothing(tmp_path):
    marker = tmp_path / "ran"
    path = str(tmp_path / "hostile.pth")
    for i, payload in enumerate(hostile_pickles(marker)):
        write_zip(path, [("archive/data.pkl", payload), ("archive/version", b"3\n")])
        with pytest.raises(conv.ConvertError):
            conv.load_torch_state_dict(path)
        assert not marker.exists(), f"hostile pickle {i} ran code"


# ---- safetensors ---------------------------------------------------------------------------

def small_safetensors():
    """The first tensors of the llama fixture, re-packed: small enough to mutate quickly."""
    source = DATA / "r2gen-tiny" / "llama" / "model.safetensors"
    with open(source, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        data_start = 8 + header_len
        entries, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
        for name in sorted(k for k in header if k != "__metadata__"):
            info = header[name]
            begin, end = info["data_offsets"]
            if end - begin > 4096:
                continue
            f.seek(data_start + begin)
            blobs.append(f.read(end - begin))
            entries[name] = dict(info, data_offsets=[offset, offset + end - begin])
            offset += end - begin
            if len(blobs) == 4:
                break
    return entries, b"".join(blobs)


def pack_safetensors(header, data):
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


ODD_VALUES = (None, True, -1, 0, 2**63, 2**64, 1.5, "F32", "", [], [1, 2], [-1, 4], {}, {"a": 1},
              [[0, 1]], ["x"], [2**62, 2**62])


def mutate_header(header, rng):
    """Structure-aware edits: replace, drop or add a field of one entry, or the entry itself."""
    header = json.loads(json.dumps(header))
    name = rng.choice(list(header))
    entry = header[name]
    choice = rng.randrange(5)
    if choice == 0 or not isinstance(entry, dict):
        header[name] = rng.choice(ODD_VALUES)
    elif choice == 1 and entry:
        del entry[rng.choice(list(entry))]
    elif choice == 2:
        entry[rng.choice(("dtype", "shape", "data_offsets"))] = rng.choice(ODD_VALUES)
    elif choice == 3 and "shape" in entry and isinstance(entry["shape"], list) and entry["shape"]:
        entry["shape"][rng.randrange(len(entry["shape"]))] = rng.choice((0, -1, 2**40, 3))
    else:
        header[rng.choice(("", "__metadata__", "x" * 300))] = rng.choice(ODD_VALUES)
    return header


def test_mutated_safetensors_bytes(tmp_path):
    fuzz_whole_file(tmp_path / "mutated.safetensors", pack_safetensors(*small_safetensors()),
                    random.Random(SEED + 2), conv.read_safetensors, "safetensors byte")


def test_mutated_safetensors_headers(tmp_path):
    rng = random.Random(SEED + 3)
    header, data = small_safetensors()
    path = tmp_path / "mutated.safetensors"
    for i in range(ITERATIONS):
        mutated = mutate_header(header, rng)
        if rng.random() < 0.5:
            mutated = mutate_header(mutated, rng)
        path.write_bytes(pack_safetensors(mutated, data))
        check_refused_cleanly(str(path), conv.read_safetensors, f"safetensors header {mutated!r:.200}")
    print(f"safetensors headers: {ITERATIONS} executions")


@pytest.mark.parametrize("path", [p for p in REGRESSIONS if p.name != MEMO_BLOWUP.name],
                         ids=lambda p: p.name)
def test_regression_inputs(path):
    reader = conv.load_torch_state_dict if path.suffix == ".pth" else conv.read_safetensors
    check_refused_cleanly(str(path), reader, path.name)


def test_regression_pickle_memo():
    check_refused_cleanly(str(MEMO_BLOWUP), conv.load_torch_state_dict, MEMO_BLOWUP.name)
