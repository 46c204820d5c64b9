"""r2gen: R2GenGPT chest X-ray report generation on the CPU, through libr2gen's C API (ctypes).

    import r2gen
    with r2gen.Model("r2gengpt-shallow-q8_0.gguf") as model:
        print(model.report(["frontal.png", "lateral.png"], preset="iu"))

The library is found at $R2GEN_LIBRARY, else as libr2gen.so.0 inside this package, else by the
system's loader. numpy is needed only by the functions that take or return arrays.
"""

from .errors import (BufferTooSmallError, CancelledError, ImageError, InternalError,
                     InvalidArgumentError, IoError, ModelFormatError, NoImageError,
                     OutOfMemoryError, R2GenError, Status, UnsupportedError)
from .model import DECODING_FIELDS, Model, decoding_defaults, version

__all__ = [
    "Model", "version", "decoding_defaults", "DECODING_FIELDS", "Status", "R2GenError",
    "InvalidArgumentError", "IoError", "ModelFormatError", "UnsupportedError", "ImageError",
    "OutOfMemoryError", "NoImageError", "CancelledError", "BufferTooSmallError", "InternalError",
]
