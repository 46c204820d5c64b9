"""One view, whatever the caller holds, handed to the matching r2gen_encode_image* call.

numpy and PIL are optional: they are only used when the caller passes their objects, and never
imported here otherwise (an object can only be a numpy array or a PIL image if its module is
already loaded).
"""

import ctypes
import os
import sys

from . import _capi

# (ndim, channels or None for 2-D, numpy dtype character) -> r2gen_pixel_format
_ARRAY_FORMATS = {
    (2, None, "u1"): _capi.PIXEL_GRAY8,
    (2, None, "u2"): _capi.PIXEL_GRAY16,
    (3, 3, "u1"): _capi.PIXEL_RGB8,
    (3, 4, "u1"): _capi.PIXEL_RGBA8,
}

_ARRAY_HELP = ("numpy images must be uint8 or uint16 HxW (grey), or uint8 HxWx3 (RGB) or "
               "HxWx4 (RGBA)")


def is_single_view(image):
    """True when `image` is one view rather than a list or tuple of views."""
    return not isinstance(image, (list, tuple))


def encode(lib, ctx, image):
    """Add `image` to the study of ctx; returns the C status."""
    if isinstance(image, (str, os.PathLike)):
        return lib.r2gen_encode_image_file(ctx, _capi.c_string(image, "image path"))
    if isinstance(image, (bytes, bytearray, memoryview)):
        data = image if isinstance(image, bytes) else bytes(image)
        return lib.r2gen_encode_image_memory(ctx, data, len(data))
    pil = sys.modules.get("PIL.Image")
    if pil is not None and isinstance(image, pil.Image):
        return encode_array(lib, ctx, pil_to_array(image))
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(image, numpy.ndarray):
        return encode_array(lib, ctx, image)
    raise TypeError(f"cannot use a {type(image).__name__} as an image: give a path, the bytes of "
                    "an image file, a numpy array or a PIL image")


def pil_to_array(image):
    """A PIL image as a numpy array of a layout the library takes. Greyscale stays grey (the
    library replicates it to RGB as PIL's convert("RGB") does); 16-bit grey stays 16-bit so the
    context's gray16 mapping applies; any other mode goes through convert("RGB"), as the
    reference's loader did."""
    import numpy

    if image.mode in ("L", "RGB", "RGBA"):
        return numpy.asarray(image)
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return numpy.asarray(image).astype(numpy.uint16)
    if image.mode == "I":
        # PIL opens 16-bit grey PNGs as 32-bit "I"; values outside uint16 go the reference's way.
        pixels = numpy.asarray(image)
        if not pixels.size or (pixels.min() >= 0 and pixels.max() <= 0xFFFF):
            return pixels.astype(numpy.uint16)
    return numpy.asarray(image.convert("RGB"))


def encode_array(lib, ctx, pixels):
    """r2gen_encode_image on a numpy array, passing its row stride when its rows are packed
    and copying it to a packed array otherwise."""
    import numpy

    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    channels = pixels.shape[2] if pixels.ndim == 3 else None
    key = (pixels.ndim, channels, pixels.dtype.kind + str(pixels.dtype.itemsize))
    if key not in _ARRAY_FORMATS:
        raise TypeError(f"{_ARRAY_HELP}; got {pixels.dtype} with shape {pixels.shape}")
    if not pixels.dtype.isnative:
        pixels = pixels.astype(pixels.dtype.newbyteorder("="))
    height, width = pixels.shape[:2]
    if max(height, width) > 0x7FFFFFFF:
        raise ValueError(f"image of {width}x{height} pixels: sides must fit a C int")
    pixel_bytes = pixels.dtype.itemsize * (channels or 1)
    packed_row = pixels.strides[1] == pixel_bytes and (
        channels is None or pixels.strides[2] == pixels.dtype.itemsize)
    if not packed_row or pixels.strides[0] < width * pixel_bytes:
        pixels = numpy.ascontiguousarray(pixels)
    image = lib.r2gen_image_default()
    image.format = _ARRAY_FORMATS[key]
    image.width, image.height = width, height
    image.stride_bytes = pixels.strides[0]
    image.pixels = pixels.ctypes.data
    return lib.r2gen_encode_image(ctx, ctypes.byref(image))
