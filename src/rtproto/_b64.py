"""Base64 for audio payloads: SIMD ``pybase64``, strict on decode, no needless copies."""

from __future__ import annotations

import binascii

import numpy as np
import numpy.typing as npt
import pybase64

__all__ = ["b64decode_strict", "b64encode_str"]


def b64encode_str(data: bytes | bytearray | memoryview | npt.NDArray[np.int16]) -> str:
    """Standard base64 (with padding) of ``data`` as text; arrays are read in place."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.dtype("<i2"):
            data = data.astype("<i2")
        data = np.ascontiguousarray(data).data.cast("B")
    return pybase64.b64encode_as_string(data)


def b64decode_strict(text: str | bytes) -> bytes:
    """Decode standard base64, rejecting any character outside the alphabet or bad padding."""
    try:
        return pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(str(exc) or "invalid base64") from None
