"""Shared helpers for the converter tests: paths, running the converter, writing torch zips.

torch is not available (and not wanted), so checkpoints for the tests are written the way
torch.save writes them: a zip with ``<top>/data.pkl`` whose tensors pickle as
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` and whose storages are
persistent ids ``('storage', torch.<X>Storage, key, location, numel)`` naming ``<top>/data/<key>``.
"""

import collections
import contextlib
import io
import pickle
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
TOOLS = ROOT / "tools"
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

import r2gen_convert  # noqa: E402  (needs the sys.path entry above)


@pytest.fixture
def run_convert(capsys):
    """Run the converter in-process; returns (exit status, stderr text)."""
    def run(*argv):
        status = r2gen_convert.main([str(a) for a in argv])
        return status, capsys.readouterr().err
    return run


# ---------------------------------------------------------------------------------------------
# torch-style zip writer
# ---------------------------------------------------------------------------------------------

STORAGE_CLASSES = {
    "float32": "FloatStorage", "float16": "HalfStorage", "bfloat16": "BFloat16Storage",
    "float64": "DoubleStorage", "int64": "LongStorage", "int32": "IntStorage",
}


class TorchTensor:
    """A tensor to pickle: a view (offset, size, stride in elements) of a Storage."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


class Storage:
    """Raw storage bytes plus the torch dtype name ("bfloat16" data given as uint16 bits)."""

    def __init__(self, dtype_name, values):
        self.dtype_name = dtype_name
        self.values = np.ascontiguousarray(values)


def tensor(array, dtype_name=None):
    """A contiguous TorchTensor holding ``array``."""
    array = np.ascontiguousarray(array)
    dtype_name = dtype_name or array.dtype.name
    size = array.shape
    stride = tuple(int(np.prod(size[i + 1:], dtype=np.int64)) for i in range(len(size)))
    return TorchTensor(Storage(dtype_name, array.reshape(-1)), 0, size, stride)


@contextlib.contextmanager
def fake_torch_modules():
    """Temporary ``torch`` / ``torch._utils`` modules so pickle emits torch's global names."""
    torch_mod = types.ModuleType("torch")
    utils_mod = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while pickling")
    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils_mod._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch_mod._utils = utils_mod
    classes = {}
    for dtype_name, cls_name in STORAGE_CLASSES.items():
        cls = type(cls_name, (), {"__module__": "torch"})
        setattr(torch_mod, cls_name, cls)
        classes[dtype_name] = cls
    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    sys.modules["torch"], sys.modules["torch._utils"] = torch_mod, utils_mod
    try:
        yield _rebuild_tensor_v2, classes
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def write_torch_zip(path, obj, top="archive"):
    """Write ``obj`` (dicts, lists, TorchTensor / numpy leaves) the way torch.save does."""
    storages = {}
    with fake_torch_modules() as (rebuild, classes):
        def reduce_tensor(t):
            return rebuild, (t.storage, t.offset, t.size, t.stride, False, collections.OrderedDict())

        class Pickler(pickle.Pickler):
            dispatch_table = {TorchTensor: reduce_tensor}

            def persistent_id(self, item):
                if isinstance(item, Storage):
                    key = storages.setdefault(id(item), (str(len(storages)), item))[0]
                    return ("storage", classes[item.dtype_name], key, "cpu", item.values.size)
                return None

        buf = io.BytesIO()
        Pickler(buf, protocol=2).dump(_tensors_from_arrays(obj))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{top}/data.pkl", buf.getvalue())
        for key, storage in storages.values():
            z.writestr(f"{top}/data/{key}", storage.values.tobytes())
        z.writestr(f"{top}/version", "3\n")


def _tensors_from_arrays(obj):
    if isinstance(obj, np.ndarray):
        return tensor(obj)
    if isinstance(obj, dict):
        return {k: _tensors_from_arrays(v) for k, v in obj.items()}
    return obj


def write_raw_pickle_zip(path, payload, top="archive"):
    """A torch-style zip whose data.pkl is the given pickle bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{top}/data.pkl", payload)
        z.writestr(f"{top}/version", "3\n")
