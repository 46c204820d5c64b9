#!/usr/bin/env python3
"""Convert R2GenGPT (Swin + projector + LLaMA-2) weights to the GGUF files libr2gen reads.

Inputs are the files users download: a Hugging Face Swin folder, an R2GenGPT ``.pth``
checkpoint (shallow, delta/LoRA or deep flavour) and a Hugging Face LLaMA folder. The output
follows docs/model-format.md (the naming contract shared with the C library).

Only Python 3 and numpy are needed: safetensors, torch zip checkpoints, SentencePiece models
and GGUF are all parsed here. Torch checkpoints are pickles, so they are read with a
restricted unpickler that never imports or calls anything but its own stand-ins.

Usage:
  r2gen_convert.py --swin DIR --checkpoint FILE.pth [--llama DIR] --out FILE.gguf [--type T]
  r2gen_convert.py --llama DIR --out FILE.gguf [--type T]
  r2gen_convert.py (--llama DIR | --tokenizer FILE.model) --vocab-only --out FILE.gguf
"""

import _compat_pickle
import argparse
import collections
import io
import json
import os
import pickle
import re
import struct
import sys
import zipfile
import zlib

try:
    import numpy as np
except ImportError:  # the one dependency: say so instead of a traceback
    sys.exit("r2gen_convert: error: numpy is required (e.g. run it with /usr/bin/python3 on Debian)")


class ConvertError(Exception):
    """A problem with the user's input: reported as one message, exit status 1, no traceback."""


def log(message):
    """Progress and notes go to stderr so that stdout stays free for callers."""
    print(f"r2gen_convert: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Lazy tensors
# --------------------------------------------------------------------------------------------

# Element types of the source formats, named as safetensors names them.
NUMPY_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?",
}
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")


def bf16_bits_to_float32(bits):
    """bfloat16 is the top half of a float32, so widening is a 16-bit shift (exact)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


class LazyTensor:
    """A tensor whose data is read or computed only when written.

    Converting a 7B model must not hold every weight in memory at once, so readers and
    transforms hand out these: the shape is known up front (the GGUF header needs it before
    any data), the values come from ``read()`` one tensor at a time.
    """

    __slots__ = ("shape", "dtype", "_read")

    def __init__(self, shape, dtype, read):
        self.shape = tuple(int(n) for n in shape)
        self.dtype = dtype
        self._read = read

    def array(self):
        """The values in their own type (BF16 widened to float32, the only lossless choice)."""
        values = self._read()
        if self.dtype == "BF16":
            values = bf16_bits_to_float32(values)
        return values.reshape(self.shape)

    def float32(self):
        if self.dtype not in FLOAT_DTYPES:
            raise ConvertError(f"expected a floating-point tensor, found {self.dtype}")
        return np.ascontiguousarray(self.array(), dtype=np.float32)


def derived(shape, compute):
    """A float32 tensor computed from others (reshape, permutation, LoRA merge)."""
    return LazyTensor(shape, "F32", compute)


def decode_raw(raw, dtype, count, big_endian=False):
    """Interpret ``count`` elements of little- (or big-) endian bytes as a numpy array."""
    np_dtype = np.dtype(NUMPY_DTYPES[dtype])
    stored = np_dtype.newbyteorder(">") if big_endian else np_dtype
    needed = count * np_dtype.itemsize
    if len(raw) < needed:
        raise ConvertError(f"tensor data truncated: {len(raw)} bytes, {needed} needed")
    values = np.frombuffer(raw, dtype=stored, count=count)
    return values.astype(np_dtype) if big_endian else values


# --------------------------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------------------------

def read_safetensors(path):
    """Index a .safetensors file: u64 LE header length, JSON header, then raw data.

    Returns {name: LazyTensor}; the data of a tensor is read when it is needed.
    """
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ConvertError(f"{path}: not a safetensors file (too short)")
        (header_len,) = struct.unpack("<Q", head)
        file_size = os.fstat(f.fileno()).st_size
        if header_len > file_size - 8:
            raise ConvertError(f"{path}: not a safetensors file (bad header length)")
        try:
            header = json.loads(f.read(header_len))
        except ValueError as e:
            raise ConvertError(f"{path}: unreadable safetensors header: {e}") from None
    if not isinstance(header, dict):
        raise ConvertError(f"{path}: the safetensors header is not a JSON object")
    data_start = 8 + header_len
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        tensors[name] = _safetensors_entry(path, name, info, data_start, file_size)
    return tensors


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_entry_types(path, name, info):
    """A header entry must be {"dtype": str, "shape": [int >= 0], "data_offsets": [begin, end]}:
    anything else in a hostile file would otherwise surface as a KeyError or TypeError."""
    ok = (isinstance(info, dict) and isinstance(info.get("dtype"), str)
          and isinstance(info.get("shape"), list) and all(_is_count(d) for d in info["shape"])
          and isinstance(info.get("data_offsets"), list) and len(info["data_offsets"]) == 2
          and all(_is_count(o) for o in info["data_offsets"])
          and info["data_offsets"][0] <= info["data_offsets"][1])
    if not ok:
        raise ConvertError(f"{path}: tensor {name!r:.80} has a malformed header entry")


def _safetensors_entry(path, name, info, data_start, file_size):
    """Check one header entry against the file and wrap it as a LazyTensor."""
    _check_entry_types(path, name, info)
    dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
    if dtype not in NUMPY_DTYPES:
        raise ConvertError(f"{path}: tensor {name} has unsupported dtype {dtype}")
    count = int(np.prod(shape, dtype=np.int64))
    if end - begin != count * np.dtype(NUMPY_DTYPES[dtype]).itemsize or data_start + end > file_size:
        raise ConvertError(f"{path}: tensor {name} has inconsistent data offsets")

    def read():
        with open(path, "rb") as f:
            f.seek(data_start + begin)
            return decode_raw(f.read(end - begin), dtype, count)

    return LazyTensor(shape, dtype, read)


# --------------------------------------------------------------------------------------------
# torch zip checkpoints (.pth / .bin) through a restricted unpickler
# --------------------------------------------------------------------------------------------

TORCH_STORAGE_DTYPES = {
    "FloatStorage": "F32", "HalfStorage": "F16", "BFloat16Storage": "BF16",
    "DoubleStorage": "F64", "LongStorage": "I64", "IntStorage": "I32",
    "ShortStorage": "I16", "CharStorage": "I8", "ByteStorage": "U8", "BoolStorage": "BOOL",
}
TORCH_DTYPE_NAMES = (
    "float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool",
)
# Modules whose globals can run code, touch files or import things. A checkpoint that names
# any of them (other than the few harmless entries of the allow-list) is refused outright.
DANGEROUS_MODULES = {
    "os", "posix", "nt", "sys", "subprocess", "shutil", "builtins", "__builtin__", "importlib",
    "runpy", "pickle", "_pickle", "marshal", "socket", "ctypes", "code", "codeop", "pty",
    "signal", "multiprocessing", "webbrowser", "io", "_io", "tempfile", "pathlib", "operator",
    "functools", "types", "copyreg", "copy_reg", "_codecs", "codecs", "inspect", "shlex",
    "platform", "glob", "asyncio", "threading", "_thread", "gc", "weakref", "pdb", "bdb",
    "timeit", "trace", "profile", "cProfile", "zipimport", "pkgutil", "site", "sysconfig",
    "http", "urllib", "ftplib", "smtplib", "telnetlib", "xmlrpc", "numpy", "torch", "dill",
}


# What a damaged zip raises from zipfile (bad directory, CRC or compression errors, names that are
# not text); each becomes a ConvertError naming the file.
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError,
              UnicodeDecodeError, NotImplementedError, ValueError)


class TorchStorage:
    """One storage file of a torch zip: ``<archive>/data/<key>``, read on demand."""

    def __init__(self, archive, entry, dtype, numel, big_endian):
        self.archive, self.entry, self.dtype = archive, entry, dtype
        self.numel, self.big_endian = numel, big_endian

    def load(self):
        try:
            raw = self.archive.read(self.entry)
        except KeyError:
            raise ConvertError(f"checkpoint is missing its storage file {self.entry}") from None
        except ZIP_ERRORS as e:
            raise ConvertError(f"checkpoint storage {self.entry} is damaged: {e}") from None
        return decode_raw(raw, self.dtype, self.numel, self.big_endian)


# What ``torch.FloatStorage`` & co. unpickle to: just the element type. A tuple, so that a
# crafted BUILD opcode cannot change the shared instances.
_StorageType = collections.namedtuple("_StorageType", "dtype")


def _rebuild_tensor(storage, offset, size, stride, *_unused):
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: a strided view of a storage.

    Bounds are checked before anything is read so that a crafted pickle cannot make
    ``as_strided`` read outside the storage.
    """
    if not isinstance(storage, TorchStorage):
        raise ConvertError("checkpoint tensor does not refer to a storage")
    size, stride, offset = tuple(int(n) for n in size), tuple(int(s) for s in stride), int(offset)
    if len(size) != len(stride) or offset < 0 or any(n < 0 for n in size) or any(s < 0 for s in stride):
        raise ConvertError("checkpoint tensor has an invalid size/stride")
    count = int(np.prod(size, dtype=np.int64))
    last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if count else offset - 1
    if last >= storage.numel:
        raise ConvertError("checkpoint tensor reaches past the end of its storage")

    def read():
        if count == 0:
            return np.zeros(size, dtype=NUMPY_DTYPES[storage.dtype])
        flat = storage.load()
        view = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=size, strides=[s * flat.itemsize for s in stride], writeable=False)
        return np.array(view)

    return LazyTensor(size, storage.dtype, read)


def _rebuild_parameter(data, *_unused):
    """Stand-in for ``torch._utils._rebuild_parameter(_with_state)``: a Parameter is its data."""
    return data


def _codecs_encode(text, encoding="utf-8"):
    """Stand-in for ``_codecs.encode``, which protocol-2 pickles use to store bytes objects."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise ConvertError("checkpoint uses _codecs.encode in an unexpected way; refusing it")
    return text.encode(encoding)


def _torch_device(*args):
    """``torch.device`` in a pickled config: kept as its text."""
    return "device(" + ", ".join(str(a) for a in args) + ")"


class _PickledObject(dict):
    """Inert stand-in for any class the checkpoint names that we do not know.

    Lightning's ``AttributeDict`` (a dict subclass), ``argparse.Namespace`` and similar config
    containers all end up as the dict of their contents, whichever way the pickle builds them
    (NEWOBJ + SETITEMS, NEWOBJ + BUILD with a ``__dict__`` state, ``copyreg._reconstructor``
    or a plain call). No code of the real class is ever imported or run.
    """

    _pickled_as = "?"

    def __init__(self, *args, **kwargs):
        try:
            dict.__init__(self, *args, **kwargs)
        except (TypeError, ValueError):
            dict.__init__(self, kwargs)
            self["__args__"] = list(args)

    def __setstate__(self, state):
        parts = state if isinstance(state, tuple) and len(state) == 2 else (state,)
        for part in parts:
            if isinstance(part, dict):
                self.update(part)
            elif part is not None:
                self["__state__"] = part

    def append(self, item):
        self.setdefault("__items__", []).append(item)

    def extend(self, items):
        self.setdefault("__items__", []).extend(items)


def _reconstructor(cls, base, state):
    """Stand-in for ``copyreg._reconstructor`` (protocol 0/1 objects), stand-ins only."""
    if not (isinstance(cls, type) and issubclass(cls, _PickledObject)):
        raise ConvertError("checkpoint uses copyreg._reconstructor on a non-config class; refusing it")
    obj = cls.__new__(cls)
    if state is not None:
        obj.__setstate__(state)
    return obj


class _OpaqueObjectBase:
    """Stand-in for ``builtins.object`` as the base argument of ``_reconstructor``."""


def _safe_globals():
    """The only globals a checkpoint may name, each mapped to our own harmless code."""
    table = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("copyreg", "_reconstructor"): _reconstructor,
        ("builtins", "object"): _OpaqueObjectBase,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("_codecs", "encode"): _codecs_encode,
        ("torch", "device"): _torch_device,
    }
    for name, dtype in TORCH_STORAGE_DTYPES.items():
        table[("torch", name)] = _StorageType(dtype)
    for name in TORCH_DTYPE_NAMES:
        table[("torch", name)] = "torch." + name
    return table


SAFE_GLOBALS = _safe_globals()
_STAND_INS = {}


def _stand_in_class(module, name):
    """One inert dict-like class per pickled class name (so names survive for messages)."""
    key = (module, name)
    if key not in _STAND_INS:
        _STAND_INS[key] = type(name, (_PickledObject,), {"_pickled_as": f"{module}.{name}"})
    return _STAND_INS[key]


def python3_name(module, name):
    """Protocol 0-2 pickles name Python 2 modules (``__builtin__``, ``copy_reg``, and
    ``commands`` for subprocess): map them the way pickle itself does before judging them."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _looks_like_class(module, name):
    """Config containers are classes (``AttributeDict``, ``Namespace``): CapWords names."""
    parts = module.split(".") + [name]
    return all(p.isidentifier() for p in parts) and name[:1].isupper()


class RestrictedUnpickler(pickle._Unpickler):
    """Unpickler that resolves globals from SAFE_GLOBALS or to inert stand-ins, never by import.

    It derives from the pure-Python unpickler, whose memo is a dict: the C one grows an array to
    the largest PUT index, so a few hundred hostile bytes could make it allocate gigabytes. A
    checkpoint's pickle is small (tensor data lives in separate zip entries), so speed is moot."""

    def __init__(self, data, archive, prefix, big_endian):
        super().__init__(io.BytesIO(data), encoding="utf-8")
        self.archive, self.prefix, self.big_endian = archive, prefix, big_endian

    def find_class(self, module, name):
        module, name = python3_name(module, name)
        if (module, name) in SAFE_GLOBALS:
            return SAFE_GLOBALS[(module, name)]
        if module.split(".")[0] in DANGEROUS_MODULES or not _looks_like_class(module, name):
            raise ConvertError(
                f"refusing to load the checkpoint: its pickle references {module}.{name}, "
                "which could run code (only tensors, dicts and plain config objects are accepted)")
        return _stand_in_class(module, name)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise ConvertError(f"checkpoint has an unsupported persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel = pid
        entry = f"{self.prefix}/data/{key}"
        return TorchStorage(self.archive, entry, storage_type.dtype, int(numel), self.big_endian)


def _plain(obj, memo=None):
    """Turn stand-ins (and OrderedDicts) into plain dicts, recursively, keeping tensors as is."""
    memo = {} if memo is None else memo
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, dict):
        result = memo[id(obj)] = {}
        for key, value in obj.items():
            result[key] = _plain(value, memo)
        return result
    if isinstance(obj, list):
        result = memo[id(obj)] = []
        result.extend(_plain(v, memo) for v in obj)
        return result
    if isinstance(obj, tuple):
        return tuple(_plain(v, memo) for v in obj)
    return obj


def read_torch_zip(path):
    """Load a torch.save zip (``<top>/data.pkl`` + ``<top>/data/<key>``) without torch.

    Tensors come back as LazyTensors; every other object as plain Python data.
    """
    if not zipfile.is_zipfile(path):
        raise ConvertError(
            f"{path}: not a torch zip checkpoint (the legacy pre-1.6 torch.save format is not supported)")
    try:
        archive = zipfile.ZipFile(path)
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise ConvertError(
                f"{path}: expected one <folder>/data.pkl in the zip, found {len(pickles)}")
        prefix = pickles[0][: -len("/data.pkl")]
        big_endian = _zip_text(archive, f"{prefix}/byteorder", "little") == "big"
        data = archive.read(pickles[0])
    except ZIP_ERRORS as e:
        raise ConvertError(f"{path}: damaged zip archive: {e}") from None
    unpickler = RestrictedUnpickler(data, archive, prefix, big_endian)
    try:
        obj = unpickler.load()
    except ConvertError:
        raise
    except Exception as e:  # malformed pickles raise many kinds of errors
        raise ConvertError(f"{path}: cannot read the checkpoint pickle: {e}") from None
    return _plain(obj)


def _zip_text(archive, name, default):
    try:
        return archive.read(name).decode("ascii").strip()
    except KeyError:
        return default


def load_torch_state_dict(path):
    """A pytorch_model*.bin: a dict of tensors, possibly nested under "state_dict"."""
    obj = read_torch_zip(path)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ConvertError(f"{path}: expected a dict of tensors")
    bad = sorted(k for k, v in obj.items() if not isinstance(v, LazyTensor))
    if bad:
        raise ConvertError(f"{path}: entries that are not tensors: {', '.join(bad[:10])}")
    return obj


# --------------------------------------------------------------------------------------------
# Hugging Face folders
# --------------------------------------------------------------------------------------------

def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ConvertError(f"missing file {path}") from None
    except ValueError as e:
        raise ConvertError(f"{path}: invalid JSON: {e}") from None


def load_weight_file(path):
    if path.endswith(".safetensors"):
        return read_safetensors(path)
    return load_torch_state_dict(path)


def load_hf_weights(folder):
    """All tensors of a HF model folder: single file or shards (with or without an index)."""
    if not os.path.isdir(folder):
        raise ConvertError(f"not a folder: {folder}")
    for single in ("model.safetensors", "pytorch_model.bin"):
        path = os.path.join(folder, single)
        if os.path.isfile(path):
            return load_weight_file(path)
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        path = os.path.join(folder, index)
        if os.path.isfile(path):
            return _load_indexed_shards(folder, read_json(path))
    shards = sorted(f for f in os.listdir(folder)
                    if re.fullmatch(r"(model|pytorch_model)-\d+-of-\d+\.(safetensors|bin)", f))
    if not shards:
        raise ConvertError(f"{folder}: no model.safetensors, pytorch_model.bin or shards found")
    return _merge_shards(folder, shards)


def _load_indexed_shards(folder, index):
    weight_map = index.get("weight_map", {})
    tensors = _merge_shards(folder, sorted(set(weight_map.values())))
    missing = sorted(set(weight_map) - set(tensors))
    if missing:
        raise ConvertError(f"{folder}: tensors listed in the index but absent: {', '.join(missing[:10])}")
    return tensors


def _merge_shards(folder, files):
    tensors = {}
    for name in files:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise ConvertError(f"missing shard {path}")
        for key, tensor in load_weight_file(path).items():
            if key in tensors:
                raise ConvertError(f"{folder}: tensor {key} appears in two shards")
            tensors[key] = tensor
    return tensors


def config_getter(config, where):
    """``get(key, default=None)`` over a config.json that fails clearly on missing keys."""
    def get(key, default=None):
        value = config.get(key, default)
        if value is None:
            raise ConvertError(f"{where}: config.json has no {key}")
        return value
    return get


# --------------------------------------------------------------------------------------------
# SentencePiece tokenizer.model (protobuf, parsed by hand)
# --------------------------------------------------------------------------------------------

SP_NORMAL, SP_UNKNOWN, SP_CONTROL, SP_USER_DEFINED, SP_UNUSED, SP_BYTE = 1, 2, 3, 4, 5, 6
SP_MODEL_BPE = 2


def _varint(buf, pos):
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ConvertError("tokenizer model: truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def protobuf_fields(buf):
    """Yield (field number, value) of one protobuf message; value is int or bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ConvertError(f"tokenizer model: unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise ConvertError("tokenizer model: truncated protobuf message")
        yield field, value


def _int32(value):
    """Protobuf int32 fields carry negative numbers as 64-bit two's complement varints."""
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value >= 1 << 63 else value


def read_sentencepiece(path):
    """Pieces, scores, types and the trainer's special ids of a SentencePiece ModelProto."""
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except FileNotFoundError:
        raise ConvertError(f"missing tokenizer model {path}") from None
    pieces, scores, types = [], [], []
    spec = {"unk_id": 0, "bos_id": 1, "eos_id": 2, "pad_id": -1, "model_type": 1}
    for field, value in protobuf_fields(buf):
        if field == 1:
            piece, score, kind = _sentencepiece_entry(value)
            pieces.append(piece)
            scores.append(score)
            types.append(kind)
        elif field == 2:
            spec.update(_trainer_spec(value))
    if not pieces:
        raise ConvertError(f"{path}: no pieces (not a SentencePiece model?)")
    return {"tokens": pieces, "scores": scores, "types": types, **spec}


def _sentencepiece_entry(buf):
    piece, score, kind = "", 0.0, SP_NORMAL
    for field, value in protobuf_fields(buf):
        if field == 1:
            try:
                piece = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise ConvertError(f"tokenizer model: piece {bytes(value)!r} is not UTF-8") from None
        elif field == 2:
            (score,) = struct.unpack("<f", value)
        elif field == 3:
            kind = value
    return piece, score, kind


def _trainer_spec(buf):
    names = {3: "model_type", 40: "unk_id", 41: "bos_id", 42: "eos_id", 43: "pad_id"}
    return {names[f]: _int32(v) for f, v in protobuf_fields(buf) if f in names}


def tokenizer_metadata(meta, sp, config, n_vocab):
    """tokenizer.ggml.* as llama.cpp writes them for a SentencePiece (LLaMA) vocabulary."""
    tokens, scores, types = list(sp["tokens"]), list(sp["scores"]), list(sp["types"])
    if sp["model_type"] != SP_MODEL_BPE:
        log(f"note: tokenizer model type is {sp['model_type']}, not BPE (2) as LLaMA's is")
    if n_vocab is not None:
        if len(tokens) > n_vocab:
            raise ConvertError(f"tokenizer has {len(tokens)} pieces but the model only {n_vocab} rows")
        for i in range(len(tokens), n_vocab):  # padded vocabularies, as llama.cpp pads them
            tokens.append(f"[PAD{i}]")
            scores.append(-10000.0)
            types.append(SP_UNUSED)
    meta.string("tokenizer.ggml.model", "llama")
    meta.string_array("tokenizer.ggml.tokens", tokens)
    meta.array("tokenizer.ggml.scores", GGUF_FLOAT32, scores)
    meta.array("tokenizer.ggml.token_type", GGUF_INT32, types)
    for gguf_name, value in special_token_ids(sp, config).items():
        if 0 <= value < len(tokens):
            meta.u32(f"tokenizer.ggml.{gguf_name}_token_id", value)


def special_token_ids(sp, config):
    """bos/eos/unk/pad ids: config.json's where it sets them, else the SentencePiece trainer's.

    Llama-2's SentencePiece model has no padding piece (pad_id = -1); R2GenGPT sets
    ``pad_token_id = 0`` on its tokenizer, so 0 is the fallback for padding.
    """
    ids = {}
    for gguf_name, config_key, sp_key in (("bos", "bos_token_id", "bos_id"), ("eos", "eos_token_id", "eos_id"),
                                          ("unknown", None, "unk_id"), ("padding", "pad_token_id", "pad_id")):
        value = config.get(config_key) if config_key else None
        if isinstance(value, list):  # newer configs may list several eos ids
            value = value[0] if value else None
        ids[gguf_name] = int(sp[sp_key] if value is None else value)
    if ids["padding"] < 0:
        ids["padding"] = 0
    return ids


# --------------------------------------------------------------------------------------------
# GGUF: types, encoders, writer, reader
# --------------------------------------------------------------------------------------------

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
GGUF_ALIGNMENT = 32
(GGUF_UINT8, GGUF_INT8, GGUF_UINT16, GGUF_INT16, GGUF_UINT32, GGUF_INT32, GGUF_FLOAT32,
 GGUF_BOOL, GGUF_STRING, GGUF_ARRAY, GGUF_UINT64, GGUF_INT64, GGUF_FLOAT64) = range(13)
GGUF_SCALAR_FORMATS = {
    GGUF_UINT8: "<B", GGUF_INT8: "<b", GGUF_UINT16: "<H", GGUF_INT16: "<h", GGUF_UINT32: "<I",
    GGUF_INT32: "<i", GGUF_FLOAT32: "<f", GGUF_BOOL: "<?", GGUF_UINT64: "<Q", GGUF_INT64: "<q",
    GGUF_FLOAT64: "<d",
}

GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0, GGML_BF16 = 0, 1, 2, 8, 30
TYPE_NAMES = {"f32": GGML_F32, "f16": GGML_F16, "bf16": GGML_BF16, "q8_0": GGML_Q8_0, "q4_0": GGML_Q4_0}
# (elements per block, bytes per block)
GGML_BLOCKS = {GGML_F32: (1, 4), GGML_F16: (1, 2), GGML_BF16: (1, 2), GGML_Q8_0: (32, 34), GGML_Q4_0: (32, 18)}
# llama.cpp's general.file_type (LLAMA_FTYPE_ALL_F32, MOSTLY_F16, MOSTLY_Q4_0, MOSTLY_Q8_0, MOSTLY_BF16)
FILE_TYPES = {GGML_F32: 0, GGML_F16: 1, GGML_Q4_0: 2, GGML_Q8_0: 7, GGML_BF16: 32}
QK = 32
Q8_0_BLOCK = np.dtype([("d", "<f2"), ("qs", "i1", (QK,))])
Q4_0_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])


def encode_f32(x):
    return x.astype("<f4").tobytes()


def encode_f16(x):
    """IEEE binary16, round to nearest even (numpy's cast; ggml's GGML_FP32_TO_FP16 is the same)."""
    return x.astype("<f2").tobytes()


def float32_to_bf16_bits(x):
    """ggml_compute_fp32_to_bf16: NaN -> top half with the quiet bit (64) set; otherwise
    round to nearest even by adding 0x7fff + the lowest kept bit; subnormals are kept."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (u + (np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1)))) >> 16
    is_nan = (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    return np.where(is_nan, (u >> 16) | np.uint32(64), rounded).astype("<u2")


def encode_bf16(x):
    return float32_to_bf16_bits(x).tobytes()


def round_half_away(v):
    """C roundf: halves go away from zero (numpy's round goes to even). float64 makes the
    +0.5 exact for every float32, so the result is exactly roundf's."""
    v = v.astype(np.float64)
    return np.copysign(np.floor(np.abs(v) + 0.5), v)


def quantize_q8_0(x):
    """ggml quantize_row_q8_0_ref, bit for bit. Per block of 32, all in float32:
    amax = max |x|; d = amax / 127; id = d ? 1/d : 0; q = roundf(x * id) (half away from zero);
    the block stores fp16(d) (round to nearest even) and q as int8. Note that q is computed with
    the float32 d, not with the fp16 value stored."""
    blocks = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, QK)
    d = np.max(np.abs(blocks), axis=1) / np.float32(127)
    inv = _safe_reciprocal(d)
    out = np.empty(len(blocks), dtype=Q8_0_BLOCK)
    out["d"] = d.astype(np.float16)
    out["qs"] = round_half_away(blocks * inv[:, None]).astype(np.int8)
    return out


def quantize_q4_0(x):
    """ggml quantize_row_q4_0_ref, bit for bit. Per block of 32, all in float32:
    max = the first element with the largest |x| (signed; 0.0 for an all-zero block);
    d = max / -8; id = d ? 1/d : 0; q = min(15, (int8)(x * id + 8.5f)) where the cast truncates
    toward zero and the multiply and add are separate float32 roundings (no fused multiply-add);
    element j goes to the low nibble of byte j, element j + 16 to the high nibble.
    An all-zero block gets d = -0.0 (0x8000) and every q = 8, as in ggml."""
    blocks = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, QK)
    magnitude = np.abs(blocks)
    first = np.argmax(magnitude, axis=1)
    signed_max = blocks[np.arange(len(blocks)), first]
    signed_max = np.where(magnitude[np.arange(len(blocks)), first] > 0, signed_max, np.float32(0))
    d = signed_max / np.float32(-8)
    inv = _safe_reciprocal(d)
    scaled = (blocks * inv[:, None]) + np.float32(8.5)
    q = np.minimum(np.trunc(scaled), 15).astype(np.uint8)
    out = np.empty(len(blocks), dtype=Q4_0_BLOCK)
    out["d"] = d.astype(np.float16)
    out["qs"] = q[:, : QK // 2] | (q[:, QK // 2:] << 4)
    return out


def _safe_reciprocal(d):
    """1/d in float32, 0 where d == 0 (ggml: ``id = d ? 1.0f/d : 0.0f``)."""
    inv = np.zeros_like(d)
    np.divide(np.float32(1), d, out=inv, where=d != 0)
    return inv


ENCODERS = {
    GGML_F32: encode_f32,
    GGML_F16: encode_f16,
    GGML_BF16: encode_bf16,
    GGML_Q8_0: lambda x: quantize_q8_0(x).tobytes(),
    GGML_Q4_0: lambda x: quantize_q4_0(x).tobytes(),
}


def dequantize(ggml_type, ne, raw):
    """GGUF tensor bytes back to float32, numpy shape = reversed(ne)."""
    shape = tuple(reversed(ne))
    if ggml_type == GGML_F32:
        values = np.frombuffer(raw, dtype="<f4")
    elif ggml_type == GGML_F16:
        values = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    elif ggml_type == GGML_BF16:
        values = bf16_bits_to_float32(np.frombuffer(raw, dtype="<u2"))
    elif ggml_type == GGML_Q8_0:
        blocks = np.frombuffer(raw, dtype=Q8_0_BLOCK)
        values = blocks["qs"].astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
    elif ggml_type == GGML_Q4_0:
        blocks = np.frombuffer(raw, dtype=Q4_0_BLOCK)
        q = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=1).astype(np.int32) - 8
        values = q.astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
    else:
        raise ConvertError(f"cannot dequantise ggml type {ggml_type}")
    return values.reshape(shape)


def tensor_nbytes(ggml_type, ne):
    block_elems, block_bytes = GGML_BLOCKS[ggml_type]
    count = int(np.prod(ne, dtype=np.int64))
    return count // block_elems * block_bytes


def choose_type(requested, quantisable, ne):
    """The type rule of docs/model-format.md: --type for 2-D weight matrices whose row
    length (ne[0]) is a multiple of the block size, F32 for everything else."""
    if not quantisable or len(ne) != 2:
        return GGML_F32
    return requested if ne[0] % GGML_BLOCKS[requested][0] == 0 else GGML_F32


def _gguf_string(text):
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


class Metadata:
    """Ordered GGUF key/value pairs, each kept already encoded."""

    def __init__(self):
        self.entries = {}

    def _add(self, key, payload):
        if key in self.entries:
            raise ConvertError(f"internal error: metadata key {key} written twice")
        self.entries[key] = payload

    def scalar(self, key, vtype, value):
        self._add(key, struct.pack("<I", vtype) + struct.pack(GGUF_SCALAR_FORMATS[vtype], value))

    def u32(self, key, value):
        self.scalar(key, GGUF_UINT32, int(value))

    def f32(self, key, value):
        self.scalar(key, GGUF_FLOAT32, float(value))

    def string(self, key, text):
        self._add(key, struct.pack("<I", GGUF_STRING) + _gguf_string(text))

    def array(self, key, elem_type, values):
        body = np.asarray(values, dtype=GGUF_SCALAR_FORMATS[elem_type]).tobytes()
        self._add(key, struct.pack("<IIQ", GGUF_ARRAY, elem_type, len(values)) + body)

    def string_array(self, key, texts):
        body = b"".join(_gguf_string(t) for t in texts)
        self._add(key, struct.pack("<IIQ", GGUF_ARRAY, GGUF_STRING, len(texts)) + body)

    def encoded(self):
        return b"".join(_gguf_string(k) + v for k, v in self.entries.items())


class TensorPlan:
    """One output tensor: GGUF name, ne (innermost first), ggml type and a float32 source."""

    __slots__ = ("name", "ne", "ggml_type", "source")

    def __init__(self, name, source, quantisable, requested):
        self.name, self.source = name, source
        self.ne = tuple(reversed(source.shape))
        self.ggml_type = choose_type(requested, quantisable, self.ne)

    @property
    def nbytes(self):
        return tensor_nbytes(self.ggml_type, self.ne)


def _padding(position):
    return -position % GGUF_ALIGNMENT


def _tensor_infos(plans):
    """Tensor info records with data offsets aligned to GGUF_ALIGNMENT."""
    infos, offset = [], 0
    for plan in plans:
        infos.append(_gguf_string(plan.name) + struct.pack("<I", len(plan.ne))
                     + struct.pack(f"<{len(plan.ne)}Q", *plan.ne)
                     + struct.pack("<IQ", plan.ggml_type, offset))
        offset += plan.nbytes + _padding(plan.nbytes)
    return b"".join(infos)


def write_gguf(path, meta, plans, verbose=False):
    """Write a GGUF v3 file: header, metadata, tensor infos, aligned tensor data.

    The file is written under a temporary name and renamed at the end, so a failed
    conversion never leaves a truncated model behind.
    """
    names = [p.name for p in plans]
    if len(set(names)) != len(names):
        raise ConvertError("internal error: duplicate tensor names")
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(GGUF_MAGIC + struct.pack("<IQQ", GGUF_VERSION, len(plans), len(meta.entries)))
            f.write(meta.encoded())
            f.write(_tensor_infos(plans))
            f.write(b"\0" * _padding(f.tell()))
            for i, plan in enumerate(plans):
                if verbose:
                    log(f"[{i + 1}/{len(plans)}] {plan.name} {type_name(plan.ggml_type)} {plan.ne}")
                _write_tensor_data(f, plan)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _write_tensor_data(f, plan):
    values = plan.source.float32()
    if values.shape != tuple(reversed(plan.ne)):
        raise ConvertError(f"internal error: {plan.name} has shape {values.shape}, planned {plan.ne}")
    if plan.ggml_type in (GGML_Q8_0, GGML_Q4_0) and not np.all(np.isfinite(values)):
        raise ConvertError(f"tensor {plan.name} contains NaN or Inf and cannot be quantised")
    written = 0
    for chunk in _row_chunks(values, plan.ne[0] if plan.ne else 1):
        data = ENCODERS[plan.ggml_type](chunk)
        f.write(data)
        written += len(data)
    if written != plan.nbytes:
        raise ConvertError(f"internal error: {plan.name} encoded to {written} bytes, planned {plan.nbytes}")
    f.write(b"\0" * _padding(written))


def _row_chunks(values, row_length, max_elements=1 << 22):
    """Whole rows at a time (blocks never cross rows), so encoding temporaries stay small."""
    rows = values.reshape(-1, row_length) if values.size else values.reshape(0, max(row_length, 1))
    step = max(1, max_elements // max(row_length, 1))
    for start in range(0, len(rows), step):
        yield rows[start:start + step]


def type_name(ggml_type):
    return {v: k for k, v in TYPE_NAMES.items()}.get(ggml_type, str(ggml_type))


class _GGUFReader:
    """Sequential reader over a GGUF file's bytes (used by read_gguf and the tests)."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def unpack(self, fmt):
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return values[0] if len(values) == 1 else values

    def string(self):
        length = self.unpack("<Q")
        text = self.data[self.pos:self.pos + length].decode("utf-8")
        self.pos += length
        return text

    def value(self, vtype):
        if vtype == GGUF_STRING:
            return self.string()
        if vtype == GGUF_ARRAY:
            elem_type, count = self.unpack("<IQ")
            return [self.value(elem_type) for _ in range(count)]
        return self.unpack(GGUF_SCALAR_FORMATS[vtype])


def read_gguf(path, with_types=False):
    """Read a GGUF v2/v3 file: (metadata, {name: (ggml type, ne, raw bytes)}).

    With ``with_types`` each metadata value is a (GGUF value type, value) pair; arrays are
    lists (their element type is not reported).
    """
    with open(path, "rb") as f:
        data = f.read()
    reader = _GGUFReader(data)
    if data[:4] != GGUF_MAGIC:
        raise ConvertError(f"{path}: not a GGUF file")
    reader.pos = 4
    version, n_tensors, n_kv = reader.unpack("<IQQ")
    if version not in (2, 3):
        raise ConvertError(f"{path}: unsupported GGUF version {version}")
    typed = {}
    for _ in range(n_kv):
        key = reader.string()
        vtype = reader.unpack("<I")
        typed[key] = (vtype, reader.value(vtype))
    infos = []
    for _ in range(n_tensors):
        name = reader.string()
        n_dims = reader.unpack("<I")
        ne = tuple(reader.unpack("<Q") for _ in range(n_dims))
        ggml_type, offset = reader.unpack("<IQ")
        infos.append((name, ne, ggml_type, offset))
    alignment = typed.get("general.alignment", (GGUF_UINT32, GGUF_ALIGNMENT))[1]
    data_start = reader.pos + (-reader.pos % alignment)
    tensors = {}
    for name, ne, ggml_type, offset in infos:
        start = data_start + offset
        tensors[name] = (ggml_type, ne, data[start:start + tensor_nbytes(ggml_type, ne)])
    meta = typed if with_types else {key: value for key, (_, value) in typed.items()}
    return meta, tensors


# --------------------------------------------------------------------------------------------
# Vision part: Swin + projector + R2GenGPT checkpoint flavours
# --------------------------------------------------------------------------------------------

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_PROMPT_BEFORE = "Human: <Img>"
DEFAULT_PROMPT_AFTER = ("</Img> Generate a comprehensive and detailed diagnosis report for this "
                        "chest xray image. \nAssistant:")
DEFAULT_LLM_NAME = "Llama-2-7b-chat"
PROJ_KEYS = ("llama_proj.weight", "llama_proj.bias", "layer_norm.weight", "layer_norm.bias")
VISUAL_PREFIX = "visual_encoder."
LORA_PREFIX = "visual_encoder.base_model.model."
LORA_KEY = re.compile(r"(?P<stem>.+)\.lora_(?P<which>[AB])\.default\.weight")
# Buffers a state_dict may carry besides parameters; R2GenGPT's save_checkpoint keeps only
# trainable parameters, but a checkpoint saved another way could hold these.
CHECKPOINT_BUFFERS = ("attention.self.relative_position_index", "rotary_emb.inv_freq")

# Per Swin block: (HF name under encoder.layers.S.blocks.B., GGUF name under
# r2gen.vision.layers.S.blocks.B., kind). Kinds: "linear" = weight + bias (weight quantisable),
# "norm" = weight + bias, "table" = the relative-position bias table (always F32).
SWIN_BLOCK_TENSORS = (
    ("layernorm_before", "norm1", "norm"),
    ("attention.self.query", "attn_q", "linear"),
    ("attention.self.key", "attn_k", "linear"),
    ("attention.self.value", "attn_v", "linear"),
    ("attention.output.dense", "attn_out", "linear"),
    ("attention.self.relative_position_bias_table", "rel_pos_bias", "table"),
    ("layernorm_after", "norm2", "norm"),
    ("intermediate.dense", "ffn_up", "linear"),
    ("output.dense", "ffn_down", "linear"),
)


class SwinConfig:
    """The Swin hyper-parameters libr2gen needs, from a HF SwinConfig config.json."""

    def __init__(self, folder):
        where = os.path.join(folder, "config.json")
        cfg = read_json(where)
        get = config_getter(cfg, where)
        self.image_size = _square(get("image_size", 224), "image_size")
        self.patch_size = _square(get("patch_size", 4), "patch_size")
        self.num_channels = get("num_channels", 3)
        self.embed_dim = get("embed_dim")
        self.depths = list(get("depths"))
        self.num_heads = list(get("num_heads"))
        self.window_size = get("window_size", 7)
        self.mlp_ratio = get("mlp_ratio", 4.0)
        self.layer_norm_eps = get("layer_norm_eps", 1e-5)
        self.num_features = self.embed_dim * 2 ** (len(self.depths) - 1)
        if len(self.depths) != len(self.num_heads):
            raise ConvertError(f"{where}: depths and num_heads differ in length")
        if cfg.get("use_absolute_embeddings"):
            raise ConvertError(f"{where}: use_absolute_embeddings is not supported by libr2gen")
        if cfg.get("hidden_act", "gelu") != "gelu":
            raise ConvertError(f"{where}: hidden_act {cfg['hidden_act']!r} is not supported (gelu only)")
        if cfg.get("hidden_size", self.num_features) != self.num_features:
            raise ConvertError(f"{where}: hidden_size does not match embed_dim * 2^(stages-1)")
        self.image_mean, self.image_std = _image_normalisation(folder)


def _square(value, name):
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            raise ConvertError(f"Swin config: non-square {name} {value} is not supported")
        value = value[0]
    return int(value)


def _image_normalisation(folder):
    """image_mean / image_std from preprocessor_config.json, ImageNet's when absent."""
    path = os.path.join(folder, "preprocessor_config.json")
    if not os.path.isfile(path):
        return IMAGENET_MEAN, IMAGENET_STD
    cfg = read_json(path)
    return tuple(cfg.get("image_mean", IMAGENET_MEAN)), tuple(cfg.get("image_std", IMAGENET_STD))


def swin_tensor_names(cfg):
    """(GGUF name, HF name, kind) for every Swin parameter the config implies."""
    names = [
        ("r2gen.vision.patch_embed.weight", "embeddings.patch_embeddings.projection.weight", "patch"),
        ("r2gen.vision.patch_embed.bias", "embeddings.patch_embeddings.projection.bias", "vector"),
        ("r2gen.vision.patch_norm.weight", "embeddings.norm.weight", "vector"),
        ("r2gen.vision.patch_norm.bias", "embeddings.norm.bias", "vector"),
    ]
    for stage, depth in enumerate(cfg.depths):
        for block in range(depth):
            hf = f"encoder.layers.{stage}.blocks.{block}."
            gguf = f"r2gen.vision.layers.{stage}.blocks.{block}."
            for hf_name, gguf_name, kind in SWIN_BLOCK_TENSORS:
                if kind == "table":
                    names.append((gguf + gguf_name, hf + hf_name, "table"))
                else:
                    names.append((gguf + gguf_name + ".weight", hf + hf_name + ".weight",
                                  "matrix" if kind == "linear" else "vector"))
                    names.append((gguf + gguf_name + ".bias", hf + hf_name + ".bias", "vector"))
        if stage < len(cfg.depths) - 1:
            hf = f"encoder.layers.{stage}.downsample."
            gguf = f"r2gen.vision.layers.{stage}.merge."
            names += [(gguf + "norm.weight", hf + "norm.weight", "vector"),
                      (gguf + "norm.bias", hf + "norm.bias", "vector"),
                      (gguf + "reduction.weight", hf + "reduction.weight", "matrix")]
    names += [("r2gen.vision.norm.weight", "layernorm.weight", "vector"),
              ("r2gen.vision.norm.bias", "layernorm.bias", "vector")]
    return names


def relative_position_index(window):
    """HF Swin's buffer: idx[i, j] = (yi - yj + w - 1) * (2w - 1) + (xi - xj + w - 1)."""
    ys, xs = np.divmod(np.arange(window * window), window)
    dy = ys[:, None] - ys[None, :] + window - 1
    dx = xs[:, None] - xs[None, :] + window - 1
    return dy * (2 * window - 1) + dx


def normalise_swin_state(state, cfg, where):
    """Swin tensors under SwinModel names: drop the ``swin.`` prefix and ``classifier.*`` of
    hub classification checkpoints, check and drop the relative_position_index buffers."""
    if any(k.startswith("swin.") for k in state):
        state = {k[len("swin."):] if k.startswith("swin.") else k: v for k, v in state.items()}
    result = {}
    for key, tensor in state.items():
        if key.startswith("classifier."):
            continue
        if key.endswith("relative_position_index"):
            check_relative_position_index(tensor, cfg.window_size, key, where)
            continue
        result[key] = tensor
    return result


def check_relative_position_index(tensor, window, key, where):
    if not np.array_equal(tensor.array(), relative_position_index(window)):
        raise ConvertError(f"{where}: {key} does not match window size {window}")


def report_key_problems(where, missing=(), unknown=(), hint=None):
    """Fail with the lists of missing and unknown names, if there are any."""
    problems = []
    if missing:
        problems.append("missing keys: " + ", ".join(sorted(missing)))
    if unknown:
        problems.append("unknown keys: " + ", ".join(sorted(unknown)))
    if problems and hint:
        problems.append(hint)
    if problems:
        raise ConvertError(f"{where}: " + "; ".join(problems))


def check_keys(found, expected, where):
    """The names found must be exactly the names expected."""
    report_key_problems(where, set(expected) - set(found), set(found) - set(expected))


def check_shape(tensor, shape, name, where):
    if tensor.shape != tuple(shape):
        raise ConvertError(f"{where}: {name} has shape {list(tensor.shape)}, expected {list(shape)}")


class Checkpoint:
    """An R2GenGPT checkpoint split into projector, deep Swin weights and LoRA pairs."""

    def __init__(self, path):
        obj = read_torch_zip(path)
        if not isinstance(obj, dict) or not isinstance(obj.get("model"), dict):
            found = ", ".join(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
            raise ConvertError(f"{path}: expected a dict with a 'model' state dict, found {found}")
        self.path = path
        self.config = obj.get("config") if isinstance(obj.get("config"), dict) else {}
        self.proj, self.deep, self.lora, self.buffers = {}, {}, {}, {}
        self._split(obj["model"])
        if self.deep and self.lora:
            raise ConvertError(f"{path}: has both full visual_encoder weights and LoRA weights")
        self.flavour = "deep" if self.deep else "delta" if self.lora else "shallow"

    def _split(self, model):
        unknown = []
        for key, tensor in model.items():
            match = LORA_KEY.fullmatch(key[len(LORA_PREFIX):]) if key.startswith(LORA_PREFIX) else None
            if not isinstance(tensor, LazyTensor):
                unknown.append(key)
            elif key in PROJ_KEYS:
                self.proj[key] = tensor
            elif key.endswith(CHECKPOINT_BUFFERS):
                self.buffers[key] = tensor
            elif match:
                self.lora.setdefault(match["stem"], {})[match["which"]] = tensor
            elif key.startswith(VISUAL_PREFIX) and not key.startswith(LORA_PREFIX):
                self.deep[key[len(VISUAL_PREFIX):]] = tensor
            else:
                unknown.append(key)
        missing = [k for k in PROJ_KEYS if k not in self.proj]
        hint = ("LLaMA weights or LoRA (llm_use_lora) in the checkpoint are not supported"
                if any(k.startswith("llama_model.") for k in unknown) else None)
        report_key_problems(self.path, missing, unknown, hint)

    def check_buffers(self, cfg):
        """Relative-position indexes must be the ones the window size implies; inv_freq
        buffers belong to the LLaMA and are recomputed from its config at run time."""
        for key, tensor in self.buffers.items():
            if key.endswith("relative_position_index"):
                check_relative_position_index(tensor, cfg.window_size, key, self.path)


def lora_scale(checkpoint, alpha, rank):
    """PEFT's scaling alpha / r, from the checkpoint config (vis_alpha, vis_r) or the flags."""
    alpha = checkpoint.config.get("vis_alpha") if alpha is None else alpha
    rank = checkpoint.config.get("vis_r") if rank is None else rank
    if alpha is None or rank is None:
        raise ConvertError(f"{checkpoint.path}: LoRA checkpoint without vis_alpha/vis_r in its "
                           "config; pass --lora-alpha and --lora-r")
    if rank <= 0:
        raise ConvertError(f"LoRA rank must be positive, got {rank}")
    return float(alpha) / float(rank), int(rank)


def merge_lora(base, lora_a, lora_b, scale):
    """W + (B @ A) * scale, the way PEFT's merge computes it (float32 weights).

    PEFT merges in float32: delta = (B @ A) * scaling, then W += delta. Here B @ A is taken
    in float64 and rounded once to float32 (exact products, so independent of the BLAS
    summation order; it can differ from torch's float32 matmul by at most an ulp or so), then
    the scaling and the addition are float32 operations like PEFT's. The reference features
    (expected/features_delta_*.npy) cannot be recomputed here without running Swin; any of
    these merge variants moves them by orders of magnitude less than the 1e-4 tolerance.
    """
    def compute():
        delta = (lora_b.float32().astype(np.float64) @ lora_a.float32().astype(np.float64))
        return base.float32() + delta.astype(np.float32) * np.float32(scale)
    return derived(base.shape, compute)


def apply_lora(weights, checkpoint, alpha, rank, where):
    """Replace every LoRA-adapted Linear weight by its merged value."""
    scale, config_rank = lora_scale(checkpoint, alpha, rank)
    unknown = []
    for stem, pair in sorted(checkpoint.lora.items()):
        key = stem + ".weight"
        if set(pair) != {"A", "B"}:
            raise ConvertError(f"{where}: LoRA {stem} lacks its lora_{'B' if 'A' in pair else 'A'} weight")
        base = weights.get(key)
        if base is None or len(base.shape) != 2:
            unknown.append(f"{LORA_PREFIX}{stem}.lora_A.default.weight")
            continue
        a, b = pair["A"], pair["B"]
        r = a.shape[0]
        check_shape(a, (r, base.shape[1]), f"{stem}.lora_A", where)
        check_shape(b, (base.shape[0], r), f"{stem}.lora_B", where)
        if r != config_rank and rank is None:
            raise ConvertError(f"{where}: {stem} has LoRA rank {r} but the config says vis_r = "
                               f"{config_rank}; pass --lora-r to override")
        weights[key] = merge_lora(base, a, b, scale)
    report_key_problems(where, unknown=unknown, hint="(LoRA on a layer that is not a Swin linear layer)")


def apply_deep(weights, checkpoint, cfg):
    """Deep checkpoints' fine-tuned Swin weights replace the HF ones, shape by shape."""
    where = checkpoint.path
    deep = normalise_swin_state(checkpoint.deep, cfg, where)
    report_key_problems(where, unknown=[VISUAL_PREFIX + k for k in set(deep) - set(weights)])
    for key, tensor in deep.items():
        check_shape(tensor, weights[key].shape, VISUAL_PREFIX + key, where)
        weights[key] = tensor
    if len(deep) < len(weights):
        log(f"note: deep checkpoint replaces {len(deep)} of {len(weights)} Swin tensors")


class VisionPart:
    """The vision part (Swin, projector, prompt): its tensors and how to describe them."""

    def __init__(self, args, requested):
        self.args = args
        self.cfg = cfg = SwinConfig(args.swin)
        names = swin_tensor_names(cfg)
        weights = normalise_swin_state(load_hf_weights(args.swin), cfg, args.swin)
        check_keys(weights, [hf for _, hf, _ in names], args.swin)
        checkpoint = Checkpoint(args.checkpoint)
        checkpoint.check_buffers(cfg)
        if checkpoint.flavour == "deep":
            apply_deep(weights, checkpoint, cfg)
        elif checkpoint.flavour == "delta":
            apply_lora(weights, checkpoint, args.lora_alpha, args.lora_r, checkpoint.path)
        self.flavour = checkpoint.flavour
        self.n_embd = _check_projector(checkpoint, cfg)
        proj = checkpoint.proj
        self.plans = [_swin_plan(gguf, weights[hf], kind, requested) for gguf, hf, kind in names]
        self.plans += [
            TensorPlan("r2gen.proj.weight", proj["llama_proj.weight"], True, requested),
            TensorPlan("r2gen.proj.bias", proj["llama_proj.bias"], False, requested),
            TensorPlan("r2gen.proj.norm.weight", proj["layer_norm.weight"], False, requested),
            TensorPlan("r2gen.proj.norm.bias", proj["layer_norm.bias"], False, requested),
        ]
        log(f"checkpoint flavour: {self.flavour}")

    def write_metadata(self, meta):
        cfg, args = self.cfg, self.args
        meta.u32("r2gen.vision.image_size", cfg.image_size)
        meta.u32("r2gen.vision.patch_size", cfg.patch_size)
        meta.u32("r2gen.vision.num_channels", cfg.num_channels)
        meta.u32("r2gen.vision.embed_dim", cfg.embed_dim)
        meta.array("r2gen.vision.depths", GGUF_UINT32, cfg.depths)
        meta.array("r2gen.vision.num_heads", GGUF_UINT32, cfg.num_heads)
        meta.u32("r2gen.vision.window_size", cfg.window_size)
        meta.f32("r2gen.vision.mlp_ratio", cfg.mlp_ratio)
        meta.f32("r2gen.vision.layer_norm_eps", cfg.layer_norm_eps)
        meta.u32("r2gen.vision.num_features", cfg.num_features)
        meta.array("r2gen.vision.image_mean", GGUF_FLOAT32, cfg.image_mean)
        meta.array("r2gen.vision.image_std", GGUF_FLOAT32, cfg.image_std)
        meta.u32("r2gen.proj.n_embd", self.n_embd)
        meta.f32("r2gen.proj.layer_norm_eps", 1e-5)  # torch.nn.LayerNorm's default, as R2GenGPT uses
        meta.string("r2gen.prompt.before", args.prompt_before)
        meta.string("r2gen.prompt.after", args.prompt_after)
        meta.string("r2gen.checkpoint.flavour", self.flavour)
        meta.string("r2gen.llm.name", args.llm_name)


def _swin_plan(gguf_name, tensor, kind, requested):
    if kind == "patch":  # [C, 3, p, p] -> [C, 3*p*p], PyTorch (channel, row, column) order
        out_dim = tensor.shape[0]
        flat = (out_dim, int(np.prod(tensor.shape[1:])))
        tensor = derived(flat, lambda t=tensor, s=flat: t.float32().reshape(s))
    return TensorPlan(gguf_name, tensor, kind in ("patch", "matrix"), requested)


def _check_projector(checkpoint, cfg):
    """The projector must read num_features values; its output width is n_embd."""
    proj, where = checkpoint.proj, checkpoint.path
    weight = proj["llama_proj.weight"]
    if len(weight.shape) != 2 or weight.shape[1] != cfg.num_features:
        raise ConvertError(f"{where}: llama_proj.weight has shape {list(weight.shape)}, expected "
                           f"[n_embd, {cfg.num_features}] for this Swin")
    n_embd = weight.shape[0]
    for key in ("llama_proj.bias", "layer_norm.weight", "layer_norm.bias"):
        check_shape(proj[key], (n_embd,), key, where)
    return n_embd


# --------------------------------------------------------------------------------------------
# LLaMA part
# --------------------------------------------------------------------------------------------

# HF name under model.layers.N. -> llama.cpp name under blk.N.
LLAMA_LAYER_TENSORS = (
    ("input_layernorm.weight", "attn_norm.weight"),
    ("self_attn.q_proj.weight", "attn_q.weight"),
    ("self_attn.k_proj.weight", "attn_k.weight"),
    ("self_attn.v_proj.weight", "attn_v.weight"),
    ("self_attn.o_proj.weight", "attn_output.weight"),
    ("post_attention_layernorm.weight", "ffn_norm.weight"),
    ("mlp.gate_proj.weight", "ffn_gate.weight"),
    ("mlp.up_proj.weight", "ffn_up.weight"),
    ("mlp.down_proj.weight", "ffn_down.weight"),
)


class LlamaConfig:
    """LLaMA hyper-parameters from a HF LlamaConfig config.json."""

    def __init__(self, folder):
        where = os.path.join(folder, "config.json")
        cfg = self.raw = read_json(where)
        get = config_getter(cfg, where)
        if cfg.get("model_type", "llama") != "llama":
            raise ConvertError(f"{where}: model_type {cfg['model_type']!r} is not llama")
        if cfg.get("rope_scaling") is not None:
            raise ConvertError(f"{where}: rope_scaling is not supported by libr2gen")
        self.n_vocab = get("vocab_size")
        self.n_embd = get("hidden_size")
        self.n_ff = get("intermediate_size")
        self.n_layer = get("num_hidden_layers")
        self.n_head = get("num_attention_heads")
        self.n_head_kv = get("num_key_value_heads", self.n_head)
        self.head_dim = get("head_dim", self.n_embd // self.n_head)
        self.context_length = get("max_position_embeddings")
        self.rms_eps = get("rms_norm_eps")
        self.rope_theta = get("rope_theta", 10000.0)
        self.tied = bool(cfg.get("tie_word_embeddings", False))
        if self.head_dim * self.n_head != self.n_embd or self.head_dim % 2:
            raise ConvertError(f"{where}: head_dim {self.head_dim} x {self.n_head} heads does not "
                               f"make hidden_size {self.n_embd} (or head_dim is odd)")

    def write(self, meta):
        meta.u32("llama.context_length", self.context_length)
        meta.u32("llama.embedding_length", self.n_embd)
        meta.u32("llama.block_count", self.n_layer)
        meta.u32("llama.feed_forward_length", self.n_ff)
        meta.u32("llama.rope.dimension_count", self.head_dim)
        meta.u32("llama.attention.head_count", self.n_head)
        meta.u32("llama.attention.head_count_kv", self.n_head_kv)
        meta.f32("llama.attention.layer_norm_rms_epsilon", self.rms_eps)
        meta.f32("llama.rope.freq_base", self.rope_theta)


def hf_to_meta_rows(tensor, heads):
    """HF rotate-half q/k rows -> Meta's interleaved pairs, as llama.cpp's converter does:
    w.reshape(heads, 2, head_dim/2, in).swapaxes(1, 2).reshape(out, in)."""
    out_dim, in_dim = tensor.shape

    def compute():
        w = tensor.float32()
        return w.reshape(heads, 2, out_dim // heads // 2, in_dim).swapaxes(1, 2).reshape(out_dim, in_dim)
    return derived(tensor.shape, compute)


def llama_expected_shapes(cfg):
    """HF name -> shape for every LLaMA tensor the config implies."""
    kv_dim = cfg.n_head_kv * cfg.head_dim
    per_layer = {
        "input_layernorm.weight": (cfg.n_embd,),
        "self_attn.q_proj.weight": (cfg.n_embd, cfg.n_embd),
        "self_attn.k_proj.weight": (kv_dim, cfg.n_embd),
        "self_attn.v_proj.weight": (kv_dim, cfg.n_embd),
        "self_attn.o_proj.weight": (cfg.n_embd, cfg.n_embd),
        "post_attention_layernorm.weight": (cfg.n_embd,),
        "mlp.gate_proj.weight": (cfg.n_ff, cfg.n_embd),
        "mlp.up_proj.weight": (cfg.n_ff, cfg.n_embd),
        "mlp.down_proj.weight": (cfg.n_embd, cfg.n_ff),
    }
    shapes = {"model.embed_tokens.weight": (cfg.n_vocab, cfg.n_embd), "model.norm.weight": (cfg.n_embd,)}
    if not cfg.tied:
        shapes["lm_head.weight"] = (cfg.n_vocab, cfg.n_embd)
    for layer in range(cfg.n_layer):
        for name, shape in per_layer.items():
            shapes[f"model.layers.{layer}.{name}"] = shape
    return shapes


def drop_rotary_buffers(state, cfg, where):
    """``rotary_emb.inv_freq`` buffers are recomputed at run time; check them and drop them."""
    expected = 1.0 / (cfg.rope_theta ** (np.arange(0, cfg.head_dim, 2, dtype=np.float32) / cfg.head_dim))
    result = {}
    for key, tensor in state.items():
        if key.endswith("rotary_emb.inv_freq"):
            if not np.allclose(tensor.array(), expected, rtol=1e-5, atol=0):
                raise ConvertError(f"{where}: {key} does not match rope_theta {cfg.rope_theta}")
            continue
        result[key] = tensor
    return result


def llama_plan(cfg, folder, requested):
    """Tensors of the LLaMA part (llama.cpp names and layout), checked against the config."""
    state = drop_rotary_buffers(load_hf_weights(folder), cfg, folder)
    if cfg.tied:
        state.pop("lm_head.weight", None)
    shapes = llama_expected_shapes(cfg)
    check_keys(state, shapes, folder)
    for key, shape in shapes.items():
        check_shape(state[key], shape, key, folder)
    output = state["model.embed_tokens.weight"] if cfg.tied else state["lm_head.weight"]
    plans = [TensorPlan("token_embd.weight", state["model.embed_tokens.weight"], True, requested)]
    for layer in range(cfg.n_layer):
        for hf_name, gguf_name in LLAMA_LAYER_TENSORS:
            tensor = state[f"model.layers.{layer}.{hf_name}"]
            if hf_name.startswith("self_attn.q_proj"):
                tensor = hf_to_meta_rows(tensor, cfg.n_head)
            elif hf_name.startswith("self_attn.k_proj"):
                tensor = hf_to_meta_rows(tensor, cfg.n_head_kv)
            plans.append(TensorPlan(f"blk.{layer}.{gguf_name}", tensor, len(tensor.shape) == 2, requested))
    plans += [TensorPlan("output_norm.weight", state["model.norm.weight"], False, requested),
              TensorPlan("output.weight", output, True, requested)]
    return plans


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

class _ArgumentParser(argparse.ArgumentParser):
    """argparse exits with status 2 on bad arguments; the converter's contract is status 1."""

    def error(self, message):
        self.print_usage(sys.stderr)
        raise ConvertError(message)


def build_parser():
    p = _ArgumentParser(prog="r2gen_convert.py", description=__doc__.split("\n\n")[0],
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--swin", metavar="DIR", help="Hugging Face Swin folder (config.json + weights)")
    p.add_argument("--checkpoint", metavar="FILE", help="R2GenGPT checkpoint (.pth)")
    p.add_argument("--llama", metavar="DIR",
                   help="Hugging Face LLaMA folder (config.json, weights, tokenizer.model)")
    p.add_argument("--tokenizer", metavar="FILE",
                   help="SentencePiece tokenizer.model (default: the one in --llama)")
    p.add_argument("--no-tokenizer", action="store_true",
                   help="write a LLaMA file without tokenizer metadata")
    p.add_argument("--out", metavar="FILE", required=True, help="output .gguf")
    p.add_argument("--type", default="f32", choices=sorted(TYPE_NAMES), help="type of 2-D weight matrices")
    p.add_argument("--vocab-only", action="store_true", help="tokenizer + llama.* metadata, no tensors")
    p.add_argument("--lora-alpha", type=float, help="override the checkpoint config's vis_alpha")
    p.add_argument("--lora-r", type=int, help="override the checkpoint config's vis_r")
    p.add_argument("--prompt-before", default=DEFAULT_PROMPT_BEFORE)
    p.add_argument("--prompt-after", default=DEFAULT_PROMPT_AFTER)
    p.add_argument("--llm-name", default=DEFAULT_LLM_NAME, help="value of r2gen.llm.name")
    p.add_argument("--name", help="general.name (default: R2GenGPT or the LLaMA folder's name)")
    p.add_argument("--verbose", action="store_true", help="one progress line per tensor")
    return p


def check_mode(args):
    """Reject flag combinations that do not name one of the supported outputs."""
    if args.vocab_only:
        if args.swin or args.checkpoint:
            raise ConvertError("--vocab-only takes --llama or --tokenizer, not --swin/--checkpoint")
        if not (args.llama or args.tokenizer):
            raise ConvertError("--vocab-only needs --llama DIR or --tokenizer FILE")
        if args.no_tokenizer:
            raise ConvertError("--vocab-only and --no-tokenizer contradict each other")
        return
    if bool(args.swin) != bool(args.checkpoint):
        raise ConvertError("--swin and --checkpoint go together")
    if not (args.swin or args.llama):
        raise ConvertError("nothing to convert: give --swin and --checkpoint, and/or --llama")
    if args.tokenizer and not args.llama:
        raise ConvertError("--tokenizer needs --llama (or --vocab-only)")
    for path, what in ((args.swin, "--swin"), (args.llama, "--llama")):
        if path and not os.path.isdir(path):
            raise ConvertError(f"{what}: not a folder: {path}")
    if args.checkpoint and not os.path.isfile(args.checkpoint):
        raise ConvertError(f"--checkpoint: no such file: {args.checkpoint}")


def add_tokenizer(meta, args, config, n_vocab):
    """Tokenizer metadata from --tokenizer or <llama>/tokenizer.model (required unless --no-tokenizer)."""
    if args.no_tokenizer:
        return
    path = args.tokenizer or os.path.join(args.llama, "tokenizer.model")
    if not os.path.isfile(path):
        raise ConvertError(f"no tokenizer model at {path} (pass --tokenizer FILE, or --no-tokenizer)")
    tokenizer_metadata(meta, read_sentencepiece(path), config, n_vocab)


def convert(args):
    requested = TYPE_NAMES[args.type]
    llama_cfg = LlamaConfig(args.llama) if args.llama else None
    plans = llama_plan(llama_cfg, args.llama, requested) if llama_cfg and not args.vocab_only else []
    vision = VisionPart(args, requested) if args.swin else None
    if vision:
        if llama_cfg and vision.n_embd != llama_cfg.n_embd:
            raise ConvertError(f"the projector outputs {vision.n_embd} values but the LLaMA's "
                               f"hidden_size is {llama_cfg.n_embd}")
        plans += vision.plans

    meta = Metadata()
    arch = "r2gen" if vision and not llama_cfg else "llama"
    meta.string("general.architecture", arch)
    meta.string("general.name", args.name or _default_name(args))
    meta.u32("general.alignment", GGUF_ALIGNMENT)
    if not args.vocab_only:
        meta.u32("general.file_type", FILE_TYPES[requested])
        if requested in (GGML_Q8_0, GGML_Q4_0):
            meta.u32("general.quantization_version", 2)
    if llama_cfg:
        llama_cfg.write(meta)
    if args.llama or args.vocab_only:
        add_tokenizer(meta, args, llama_cfg.raw if llama_cfg else {}, llama_cfg.n_vocab if llama_cfg else None)
    if vision:
        vision.write_metadata(meta)

    total = sum(p.nbytes for p in plans)
    write_gguf(args.out, meta, plans, verbose=args.verbose or total > 256 * 2**20)
    log(f"wrote {args.out}: {arch}, {len(plans)} tensors, {total / 2**20:.1f} MiB of tensor data")


def _default_name(args):
    if args.swin:
        return "R2GenGPT"
    if args.llama:
        return os.path.basename(os.path.normpath(args.llama))
    return os.path.splitext(os.path.basename(args.tokenizer))[0]


def main(argv=None):
    try:
        args = build_parser().parse_args(argv)
        check_mode(args)
        convert(args)
    except ConvertError as e:
        log(f"error: {e}")
        return 1
    except OSError as e:
        log(f"error: {e.strerror or e}: {e.filename}" if e.filename else f"error: {e}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
