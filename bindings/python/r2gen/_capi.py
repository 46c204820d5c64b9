"""The C API of libr2gen (include/r2gen.h) as ctypes declarations, and where the library is found.

Every struct here mirrors the header field by field; struct_size always comes from the library's
``*_default()`` functions, and :func:`lib` checks that it equals ``ctypes.sizeof`` of the mirror,
so a header change that this file has not followed fails loudly instead of corrupting memory.
"""

import ctypes
import ctypes.util
import functools
import os
from pathlib import Path

from ctypes import (CFUNCTYPE, POINTER, Structure, c_char_p, c_double, c_float, c_int,
                    c_int32, c_size_t, c_ssize_t, c_uint64, c_void_p)

LIBRARY_ENV = "R2GEN_LIBRARY"
SONAME = "libr2gen.so.0"

# r2gen_ctx * is opaque: a plain pointer.
ctx_p = c_void_p

# C enums (r2gen_status, r2gen_pixel_format, r2gen_gray16_mapping, r2gen_preset) are ints.
c_enum = c_int

PIXEL_GRAY8, PIXEL_GRAY16, PIXEL_RGB8, PIXEL_RGBA8 = 0, 1, 2, 3
GRAY16_CLAMP, GRAY16_WINDOW, GRAY16_MINMAX = 0, 1, 2
PRESET_MIMIC_CXR, PRESET_IU_XRAY = 0, 1

PROGRESS_CALLBACK = CFUNCTYPE(c_int, c_void_p, c_int, c_int)
# piece is not NUL-terminated, so it is a plain pointer read with ctypes.string_at(piece, len).
TOKEN_CALLBACK = CFUNCTYPE(c_int, c_void_p, c_int32, c_void_p, c_size_t)


class LoadParams(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("llm_path", c_char_p),
        ("n_threads", c_int),
        ("kv_cache_f16", c_int),
    ]


class Image(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("format", c_enum),
        ("width", c_int),
        ("height", c_int),
        ("stride_bytes", c_ssize_t),  # ptrdiff_t
        ("pixels", c_void_p),
    ]


class ImageOptions(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("gray16_mapping", c_enum),
        ("window_center", c_double),
        ("window_width", c_double),
    ]


class GenerateParams(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("num_beams", c_int),
        ("min_new_tokens", c_int),
        ("max_new_tokens", c_int),
        ("repetition_penalty", c_float),
        ("length_penalty", c_float),
        ("do_sample", c_int),
        ("temperature", c_float),
        ("top_k", c_int),
        ("top_p", c_float),
        ("seed", c_uint64),
        ("ignore_eos", c_int),
        ("progress", PROGRESS_CALLBACK),
        ("on_token", TOKEN_CALLBACK),
        ("user_data", c_void_p),
        ("prompt", c_char_p),
    ]


# name: (restype, argtypes), in the header's order.
PROTOTYPES = {
    "r2gen_status_string": (c_char_p, [c_enum]),
    "r2gen_version": (c_char_p, []),
    "r2gen_last_error": (c_char_p, [ctx_p]),
    "r2gen_load_params_default": (LoadParams, []),
    "r2gen_load": (c_enum, [c_char_p, POINTER(LoadParams), POINTER(ctx_p)]),
    "r2gen_ctx_fork": (c_enum, [ctx_p, POINTER(ctx_p)]),
    "r2gen_free": (None, [ctx_p]),
    "r2gen_image_default": (Image, []),
    "r2gen_image_options_default": (ImageOptions, []),
    "r2gen_set_image_options": (c_enum, [ctx_p, POINTER(ImageOptions)]),
    "r2gen_encode_image": (c_enum, [ctx_p, POINTER(Image)]),
    "r2gen_encode_image_file": (c_enum, [ctx_p, c_char_p]),
    "r2gen_encode_image_memory": (c_enum, [ctx_p, c_void_p, c_size_t]),
    "r2gen_clear_images": (None, [ctx_p]),
    "r2gen_n_views": (c_int, [ctx_p]),
    "r2gen_get_view_features": (
        c_enum, [ctx_p, c_int, POINTER(c_float), c_size_t, POINTER(c_size_t), POINTER(c_size_t)]),
    "r2gen_get_image_embeddings": (
        c_enum, [ctx_p, POINTER(c_float), c_size_t, POINTER(c_size_t), POINTER(c_size_t)]),
    "r2gen_generate_params_default": (GenerateParams, []),
    "r2gen_generate_params_preset": (GenerateParams, [c_enum]),
    "r2gen_tokenize": (c_enum, [ctx_p, c_char_p, POINTER(c_int32), c_size_t, POINTER(c_size_t)]),
    "r2gen_detokenize": (c_enum, [ctx_p, POINTER(c_int32), c_size_t, POINTER(c_void_p)]),
    "r2gen_generate_report": (c_enum, [ctx_p, POINTER(GenerateParams), POINTER(c_void_p)]),
    "r2gen_generate_from_embeddings": (
        c_enum, [ctx_p, POINTER(c_float), c_size_t, POINTER(GenerateParams), POINTER(c_void_p)]),
    "r2gen_get_report_tokens": (c_enum, [ctx_p, POINTER(POINTER(c_int32)), POINTER(c_size_t)]),
    "r2gen_get_token_embeddings": (
        c_enum, [ctx_p, POINTER(c_int32), c_size_t, POINTER(c_float), c_size_t]),
    "r2gen_n_embd": (c_int, [ctx_p]),
    "r2gen_n_vocab": (c_int, [ctx_p]),
    "r2gen_string_free": (None, [c_void_p]),
}

# The structs that carry struct_size, with the default function that reports the library's size.
SIZED_STRUCTS = {
    LoadParams: "r2gen_load_params_default",
    Image: "r2gen_image_default",
    ImageOptions: "r2gen_image_options_default",
    GenerateParams: "r2gen_generate_params_default",
}


def c_string(text, what):
    """str, bytes or PathLike as the bytes of a C string; an embedded NUL would silently cut it
    short, so it is refused."""
    data = os.fsencode(text) if isinstance(text, os.PathLike) else (
        text if isinstance(text, bytes) else text.encode("utf-8"))
    if b"\0" in data:
        raise ValueError(f"{what} contains a NUL character")
    return data


def library_candidates():
    """Where the library is looked for, in order: $R2GEN_LIBRARY, the package folder, the loader."""
    env = os.environ.get(LIBRARY_ENV)
    if env:
        return [env]
    candidates = []
    bundled = Path(__file__).resolve().parent / SONAME
    if bundled.exists():
        candidates.append(str(bundled))
    candidates.append(ctypes.util.find_library("r2gen") or SONAME)
    return candidates


def _open():
    errors = []
    for candidate in library_candidates():
        try:
            return ctypes.CDLL(candidate)
        except OSError as e:
            errors.append(f"{candidate}: {e}")
    raise OSError(f"libr2gen not found (set ${LIBRARY_ENV} to its path); tried "
                  + "; ".join(errors))


def _declare(dll):
    for name, (restype, argtypes) in PROTOTYPES.items():
        function = getattr(dll, name)
        function.restype = restype
        function.argtypes = argtypes
    for struct, default in SIZED_STRUCTS.items():
        size = getattr(dll, default)().struct_size
        if size != ctypes.sizeof(struct):
            raise OSError(f"{dll._name}: {struct.__name__} is {size} bytes in the library and "
                          f"{ctypes.sizeof(struct)} in the r2gen package: versions do not match")
    return dll


@functools.lru_cache(maxsize=None)
def lib():
    """The loaded, declared library; opened on first use so that importing r2gen never fails."""
    return _declare(_open())
