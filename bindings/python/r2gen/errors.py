"""Status codes and exceptions: every failing C call becomes an R2GenError (or a subclass)."""

import enum

from . import _capi


class Status(enum.IntEnum):
    """r2gen_status; member names are the C names without the R2GEN_ / R2GEN_ERR_ prefix."""
    OK = 0
    INVALID_ARGUMENT = 1
    IO = 2
    MODEL_FORMAT = 3
    UNSUPPORTED = 4
    IMAGE = 5
    OUT_OF_MEMORY = 6
    NO_IMAGE = 7
    CANCELLED = 8
    BUFFER_TOO_SMALL = 9
    INTERNAL = 10

    @property
    def c_name(self):
        """The name in include/r2gen.h, e.g. "R2GEN_ERR_NO_IMAGE"."""
        return "R2GEN_OK" if self is Status.OK else "R2GEN_ERR_" + self.name


class R2GenError(Exception):
    """A libr2gen call failed. ``status`` is a :class:`Status` (or the raw int for a code newer
    than this package); ``message`` is the library's r2gen_last_error text."""

    def __init__(self, status, message):
        try:
            status = Status(status)
        except ValueError:
            pass
        self.status = status
        self.message = message
        super().__init__(status, message)

    def __str__(self):
        name = self.status.c_name if isinstance(self.status, Status) else f"status {self.status}"
        return f"{name}: {self.message}"


class InvalidArgumentError(R2GenError):
    """R2GEN_ERR_INVALID_ARGUMENT"""


class IoError(R2GenError):
    """R2GEN_ERR_IO: a file could not be opened, read or mapped"""


class ModelFormatError(R2GenError):
    """R2GEN_ERR_MODEL_FORMAT"""


class UnsupportedError(R2GenError):
    """R2GEN_ERR_UNSUPPORTED"""


class ImageError(R2GenError):
    """R2GEN_ERR_IMAGE: an image could not be decoded or is out of limits"""


class OutOfMemoryError(R2GenError):
    """R2GEN_ERR_OUT_OF_MEMORY"""


class NoImageError(R2GenError):
    """R2GEN_ERR_NO_IMAGE: a report was asked for before any view was added"""


class CancelledError(R2GenError):
    """R2GEN_ERR_CANCELLED: a progress or token callback asked to stop"""


class BufferTooSmallError(R2GenError):
    """R2GEN_ERR_BUFFER_TOO_SMALL"""


class InternalError(R2GenError):
    """R2GEN_ERR_INTERNAL: a bug in libr2gen"""


_CLASSES = {
    Status.INVALID_ARGUMENT: InvalidArgumentError,
    Status.IO: IoError,
    Status.MODEL_FORMAT: ModelFormatError,
    Status.UNSUPPORTED: UnsupportedError,
    Status.IMAGE: ImageError,
    Status.OUT_OF_MEMORY: OutOfMemoryError,
    Status.NO_IMAGE: NoImageError,
    Status.CANCELLED: CancelledError,
    Status.BUFFER_TOO_SMALL: BufferTooSmallError,
    Status.INTERNAL: InternalError,
}


def error(status, message):
    """The exception for a non-zero status: the subclass for known codes, else R2GenError."""
    return _CLASSES.get(status, R2GenError)(status, message)


def check(status, ctx=None, *, ctx_message=True):
    """Raise for a non-zero status. The message is r2gen_last_error(ctx) (ctx None: the thread's
    last load failure). Functions taking a const context cannot record a message, so for them
    (ctx_message=False) and whenever the message is empty the status string is used."""
    if status == Status.OK:
        return
    lib = _capi.lib()
    message = lib.r2gen_last_error(ctx) if ctx_message else None
    if not message:
        message = lib.r2gen_status_string(status)
    raise error(status, message.decode("utf-8", "replace"))
