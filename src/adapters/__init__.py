"""Drivers that run the rtproto core on real I/O (imported as ``rtproto.adapters``).

- :func:`connect`: ``async with connect(...) as conn`` on asyncio or Trio (anyio).
- :func:`connect_sync`: ``with connect_sync(...) as conn`` on plain threads.
- ``connect_webrtc``: ``async with connect_webrtc(...) as conn`` over WebRTC (needs aiortc,
  asyncio only; imported on first use). See docs/webrtc.md.
- :mod:`rtproto.adapters.twilio`: ``bridge_call`` (a Twilio Media Streams call bridged to a
  Realtime connection) and ``serve_twilio`` (accepts Twilio's WebSockets);
  :mod:`rtproto.adapters.twilio_sync`: ``bridge_call_sync``, the same on threads. See
  docs/twilio.md.
- :mod:`rtproto.adapters.cloudflare`: ``connect_cloudflare``, a session from a Cloudflare
  Worker (Pyodide) over a ``fetch``-upgraded WebSocket. See docs/cloudflare.md.

Both share every decision that is not I/O (``rtproto.adapters._core``) and yield the same
events: the server's, the session core's transport events, and the driver's own
(:class:`Reconnecting`, :class:`Reconnected`, :class:`Replayed`, :class:`ReconnectFailed`).
See docs/websocket.md.
"""

from __future__ import annotations

from ._core import ConnectError, ConnectTimeout, Event
from .aio import AsyncConnection, connect
from .reconnect import (
    DriverEvent,
    Reconnected,
    ReconnectFailed,
    Reconnecting,
    ReconnectPolicy,
    Replayed,
    exponential_backoff,
    replay_items,
)
from .sync import SyncConnection, connect_sync

__all__ = [
    "AsyncConnection",
    "ConnectError",
    "ConnectTimeout",
    "DriverEvent",
    "Event",
    "ReconnectFailed",
    "ReconnectPolicy",
    "Reconnected",
    "Reconnecting",
    "Replayed",
    "SyncConnection",
    "connect",
    "connect_sync",
    "exponential_backoff",
    "replay_items",
]


def __getattr__(name: str) -> object:
    """``connect_webrtc`` and ``WebRTCConnection`` import aiortc: only when asked for."""
    if name in ("connect_webrtc", "WebRTCConnection"):
        from . import webrtc

        return getattr(webrtc, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
