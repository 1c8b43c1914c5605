"""RFC 6455 pieces shared by the WebSocket layer: masking, frame headers, close payloads.

Kept apart from :mod:`rtproto.wire.websocket` so that tests, the fuzz harness and the
benchmark can use the same encoders (a server-side frame writer included, for tests).
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any

__all__ = [
    "CLOSE",
    "CONTINUATION",
    "BINARY",
    "PING",
    "PONG",
    "TEXT",
    "accept_token",
    "close_payload",
    "encode_frame",
    "mask",
    "valid_close_code",
]

CONTINUATION = 0x0
TEXT = 0x1
BINARY = 0x2
CLOSE = 0x8
PING = 0x9
PONG = 0xA

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_numpy: Any = None  # imported on the first large frame (keeps ``import rtproto`` light)
_PAD = (b"", b"\0", b"\0\0", b"\0\0\0")
_HEAD16 = struct.Struct("!BBH").pack
_HEAD64 = struct.Struct("!BBQ").pack
#: Below this many bytes one big-int XOR beats numpy's per-call overhead (measured).
_NUMPY_FROM = 256


def accept_token(key: bytes) -> bytes:
    """The ``Sec-WebSocket-Accept`` value the server must answer to ``key``."""
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


def mask(data: bytes, key: bytes) -> bytes:
    """``data`` XOR-ed with the 4-byte ``key`` repeated (masking is its own inverse)."""
    n = len(data)
    if n < _NUMPY_FROM:
        reps = (n >> 2) + 1
        stream = int.from_bytes(key * reps, "little")
        return (int.from_bytes(data, "little") ^ stream).to_bytes(reps * 4, "little")[:n]
    global _numpy
    if _numpy is None:
        import numpy

        _numpy = numpy
    pad = -n & 3
    words = _numpy.frombuffer(data + _PAD[pad] if pad else data, _numpy.uint32)
    masked: bytes = (words ^ _numpy.frombuffer(key, _numpy.uint32)).tobytes()
    return masked[:n] if pad else masked


def encode_frame(
    opcode: int,
    payload: bytes,
    key: bytes | None = None,
    *,
    fin: bool = True,
    rsv: int = 0,
) -> bytes:
    """One frame: masked with ``key`` (client to server) or unmasked (``key=None``).

    ``rsv`` is the three reserved bits as they sit in the first byte (``0x40`` is RSV1).
    """
    first = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    bit = 0x80 if key is not None else 0
    if n < 126:
        header = bytes((first, bit | n))
    elif n < 65536:
        header = _HEAD16(first, bit | 126, n)
    else:
        header = _HEAD64(first, bit | 127, n)
    if key is None:
        return header + payload
    return b"".join((header, key, mask(payload, key)))


def valid_close_code(code: int) -> bool:
    """Whether a peer may send ``code`` in a close frame (RFC 6455 7.4, IANA registry)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def close_payload(code: int | None, reason: str = "") -> bytes:
    """A close frame's payload: the code and a reason cut to fit 123 bytes of UTF-8."""
    if code is None:
        return b""
    data = reason.encode("utf-8")
    if len(data) > 123:
        data = data[:123].decode("utf-8", "ignore").encode("utf-8")
    return code.to_bytes(2, "big") + data
