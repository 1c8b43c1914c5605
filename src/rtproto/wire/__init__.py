"""The wire layer: bytes on a transport to and from the session core's messages.

:class:`RealtimeWebSocket` is the client side of a Realtime WebSocket (HTTP upgrade with h11,
RFC 6455 framing, permessage-deflate) wrapped around a
:class:`~rtproto.session.ClientSession`; :func:`realtime_url` and :func:`split_url` build and
take apart its URL. Everything here is sans-I/O: drivers own the sockets and the clock.
"""

from __future__ import annotations

from .url import DEFAULT_BASE_URL, realtime_url, split_url
from .websocket import (
    HandshakeRefused,
    HandshakeTimeout,
    RealtimeWebSocket,
    WebSocketOptions,
    WebSocketState,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "HandshakeRefused",
    "HandshakeTimeout",
    "RealtimeWebSocket",
    "WebSocketOptions",
    "WebSocketState",
    "realtime_url",
    "split_url",
]
