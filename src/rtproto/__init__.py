"""rtproto: a sans-I/O implementation of the OpenAI Realtime transport layer.

The pure core turns bytes and application commands into session actions with no I/O; thin
drivers in :mod:`rtproto.adapters` run it on asyncio, Trio, threads and more.
"""

from __future__ import annotations

from .codec import (
    DEFAULT_MAX_MESSAGE_SIZE,
    encode_audio_append,
    event_raw,
    parse_client_event,
    parse_server_event,
    salvage,
    serialize_client_event,
    serialize_server_event,
)
from .dialect import Dialect
from .errors import ConnectionClosed, LocalProtocolError, RemoteProtocolError, RtprotoError
from .events import ClientEvent, ErrorEvent, InvalidEvent, ServerEvent, UnknownEvent

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "ClientEvent",
    "ConnectionClosed",
    "Dialect",
    "ErrorEvent",
    "InvalidEvent",
    "LocalProtocolError",
    "RemoteProtocolError",
    "RtprotoError",
    "ServerEvent",
    "UnknownEvent",
    "__version__",
    "encode_audio_append",
    "event_raw",
    "parse_client_event",
    "parse_server_event",
    "salvage",
    "serialize_client_event",
    "serialize_server_event",
]
