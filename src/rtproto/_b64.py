"""Base64 for audio payloads without importing numpy (``import rtproto`` stays light).

Arrays are handed to :func:`rtproto.audio.encode_base64`, which imports numpy; anything
that already is bytes never needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pybase64 import b64decode as _b64decode
from pybase64 import b64encode_as_string as _b64encode_as_string

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["decode_base64", "encode_base64"]


def encode_base64(data: bytes | bytearray | memoryview | npt.NDArray[np.int16]) -> str:
    """Base64 of bytes, or of int16 samples as PCM16 little-endian (see rtproto.audio)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return _b64encode_as_string(data)
    from .audio import encode_base64 as encode_samples

    return encode_samples(data)


def decode_base64(text: str | bytes) -> bytes:
    """Decode strict base64 (no whitespace or stray characters); ``ValueError`` if invalid."""
    try:
        return _b64decode(text, validate=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII characters in a str
        raise ValueError(f"invalid base64: {exc}") from exc
