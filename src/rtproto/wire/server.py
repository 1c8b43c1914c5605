"""The server side of a Realtime WebSocket: bytes in, bytes out, no I/O (the emulator's wire).

:class:`ServerWebSocket` is one accepted TCP connection, from its first byte to its last:

* the HTTP/1.1 upgrade, parsed with h11 and checked as the service checks it (path
  ``/v1/realtime``, ``?model=`` / ``?call_id=`` / ``?intent=transcription``, a bearer key in
  ``Authorization`` or in the ``openai-insecure-api-key.<key>`` subprotocol, ``OpenAI-Beta:
  realtime=v1`` for the beta dialect, subprotocol ``realtime`` selected when offered).
  Failures are answered the way the service answers them (spec sections 6.3, 6.4 and 8.1):
  no key at all is an HTTP 401 with the OpenAI JSON error body, an unknown path a 404; a key
  that is present but wrong, a missing or unsupported model and a disabled beta shape all
  *complete* the upgrade, send one ``error`` event and close with 3000 or 4000 and the reason
  ``<error.type>.<error.code>``;
* RFC 6455 framing with wsproto in the server role (unmasked sends, masked client frames
  required), a message-size cap (close 1009), automatic pongs, a keepalive PING about every
  20 s with a pong deadline, and the close handshake;
* one :class:`~rtproto.server.ServerSession` per connection: each text message goes to
  :meth:`~rtproto.server.ServerSession.receive` (a binary message as ``binary=True``, which
  the session answers with ``invalid_event``), everything it wants sent is framed, and its
  ``close_requested`` becomes a close frame.

The drive loop (a driver is this loop and nothing else)::

    conn = ServerWebSocket(ServerWebSocketOptions(...))
    conn.connection_made(now)
    while not conn.closed:
        conn.receive_data(read() or b"", now)        # b"": the client closed the stream
        write(conn.data_to_send())                     # after EVERY call, timers included
        while conn.backlogged:                         # output piled up: write, then resume
            conn.resume(now)
            write(conn.data_to_send())
        ...                                            # honour get_timer() / handle_timer()
    write(conn.data_to_send()); close_the_socket()    # conn.aborted: no close frame was sent

Backpressure: a call stops handling client frames once ``output_high_water`` bytes wait to be
written and says so with :attr:`ServerWebSocket.backlogged`; the unhandled input stays inside
(at most what the last read delivered) until :meth:`ServerWebSocket.resume`. A driver that
writes before it reads again therefore holds at most one read and one batch of output per
connection, however fast the client sends.

Fault injection for client testing (all off by default, see :class:`ServerWebSocketOptions`):
drop the connection after N messages, close with 1001 after S seconds, interleave unknown
event types, fragment every message with pings between the fragments.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hmac
import json
import os
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Union
from urllib.parse import parse_qsl

import h11
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.events import Event as WsEvent

from ..dialect import Dialect
from ..errors import LocalProtocolError, RtprotoError
from ..server.core import ServerSession
from ..server.log import ServerLog
from ..server.options import ServerOptions
from ..server.sip import SidebandRefused
from ._frames import accept_token
from .signalling import (
    MAX_JSON_BODY_SIZE,
    MAX_SDP_SIZE,
    CallControlRequest,
    CallerRequest,
    CallOffer,
    ClientSecretRequest,
    SignallingError,
    SipCallRequest,
    error_response,
    parse_server_request,
    preflight_response,
)

__all__ = [
    "MISSING_KEY_MESSAGE",
    "Closed",
    "ConnectRequest",
    "FaultInjected",
    "HttpAnswered",
    "Refused",
    "Rejected",
    "ServerState",
    "ServerWebSocket",
    "ServerWebSocketOptions",
    "Upgraded",
    "WireLog",
    "mask_key",
]

#: The body message of the 401 a request without any key gets (the service's wording).
MISSING_KEY_MESSAGE = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field "
    "(with blank username) if you're accessing the API from your browser and are prompted for "
    "a username and password. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
_KEY_PROTOCOL = "openai-insecure-api-key."
_BETA_PROTOCOL = "openai-beta.realtime-v1"
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    408: "Request Timeout",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
}
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: The event type interleaved by the ``unknown_events`` fault.
UNKNOWN_EVENT_TYPE = "rtproto.injected.unknown_event"


def _server_header() -> str:
    from .. import __version__  # lazily: rtproto/__init__ may import the wire one day

    return f"rtproto/{__version__}"


@dataclass(frozen=True)
class ServerWebSocketOptions:
    """Configuration of a :class:`ServerWebSocket` (validated on construction).

    Raises:
        LocalProtocolError: a bad limit, timeout or fault setting.
    """

    #: The session every connection starts from; ``model`` and ``dialect`` come from the
    #: request (``?model=``, ``OpenAI-Beta``). Ignored when a ``session_factory`` is given.
    session: ServerOptions = field(default_factory=ServerOptions)
    #: Accept only this key (``None``: any non-empty key, as a stand-in for a valid one).
    #: Never shown in ``repr`` or logs; a wrong key is echoed masked (:func:`mask_key`).
    api_key: str | None = field(default=None, repr=False)
    #: Models accepted in ``?model=``; ``None``: any name containing ``realtime`` (the service
    #: refuses non-realtime models with ``invalid_model``).
    models: tuple[str, ...] | None = None
    #: Serve the beta dialect to ``OpenAI-Beta: realtime=v1`` clients; ``False`` answers them
    #: as the service has since the beta's retirement (``beta_api_shape_disabled``, 4000).
    allow_beta: bool = True
    #: The request path of the endpoint.
    path: str = "/v1/realtime"
    #: An HTML page answered (200) to a plain ``GET /`` or ``HEAD /`` that is not a WebSocket
    #: upgrade (``rtproto serve`` puts its browser demo here); ``None``: those get a 404.
    index_page: bytes | None = field(default=None, repr=False)
    #: Largest client message, in characters (binary: bytes); larger closes with 1009. The
    #: session applies its own, smaller, non-fatal limit (``ServerOptions.max_message_size``).
    max_message_size: int = 32 * 1024 * 1024
    #: Largest upgrade request head, in bytes (larger: HTTP 431).
    max_handshake_size: int = 16 * 1024
    #: Output bytes waiting to be written at which client frames stop being handled
    #: (:attr:`ServerWebSocket.backlogged`).
    output_high_water: int = 1024 * 1024
    #: Seconds from ``connection_made`` to a complete upgrade request.
    handshake_timeout: float | None = 10.0
    #: Seconds between keepalive PINGs (the service: about 20 s); ``None``: none.
    ping_interval: float | None = 20.0
    #: Seconds a PING may wait for its PONG before the connection closes with 1011.
    ping_timeout: float | None = 20.0
    #: Seconds to wait for the client's close frame after ours.
    close_timeout: float = 5.0
    #: Fault: drop the connection (no close frame) right after this many server messages.
    drop_after: int | None = None
    #: Fault: close with 1001 (going away) this many seconds after the upgrade.
    close_1001_after: float | None = None
    #: Fault: follow every server message with an event of an unknown type.
    unknown_events: bool = False
    #: Fault: send every message in several fragments, with a PING between fragments.
    fragment: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.session, ServerOptions):
            raise LocalProtocolError("session must be a ServerOptions")
        if self.api_key is not None and (not isinstance(self.api_key, str) or not self.api_key):
            raise LocalProtocolError("api_key must be a non-empty str or None")
        if self.models is not None and not all(isinstance(m, str) for m in self.models):
            raise LocalProtocolError("models must be a tuple of str or None")
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise LocalProtocolError("path must start with '/'")
        for name in ("max_message_size", "max_handshake_size", "output_high_water"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 125:
                raise LocalProtocolError(f"{name} must be an int of at least 125")
        for name, optional in (
            ("handshake_timeout", True),
            ("ping_interval", True),
            ("ping_timeout", True),
            ("close_timeout", False),
            ("close_1001_after", True),
        ):
            seconds = getattr(self, name)
            if seconds is None and optional:
                continue
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
                raise LocalProtocolError(f"{name} must be a number of seconds")
            if not seconds > 0 and not (name == "close_1001_after" and seconds == 0):
                raise LocalProtocolError(f"{name} must be a positive number of seconds")
        if self.index_page is not None and not isinstance(self.index_page, bytes):
            raise LocalProtocolError("index_page must be bytes or None")
        drop = self.drop_after
        if drop is not None and (isinstance(drop, bool) or not isinstance(drop, int) or drop < 0):
            raise LocalProtocolError("drop_after must be an int >= 0 or None")


@dataclass(frozen=True)
class ConnectRequest:
    """What a client asked for in its upgrade request (after the checks passed)."""

    #: The request target as sent (path and query).
    target: str
    #: The query parameters (the first value of each).
    query: Mapping[str, str]
    #: ``?model=`` (``None`` when absent or empty).
    model: str | None
    #: ``?call_id=``: attach to an existing WebRTC/SIP call.
    call_id: str | None
    #: ``?intent=`` (``"transcription"`` for a transcription session).
    intent: str | None
    #: GA, or beta when the client sent ``OpenAI-Beta: realtime=v1`` (or its subprotocol).
    dialect: Dialect
    #: The subprotocol selected (``"realtime"`` when offered).
    subprotocol: str | None
    #: ``"header"`` (``Authorization: Bearer``) or ``"subprotocol"``.
    auth: str
    #: Request headers, names in lower case, without credentials (``Authorization`` left
    #: out, the ``openai-insecure-api-key.`` subprotocol masked).
    headers: tuple[tuple[str, str], ...]
    #: The key presented (never logged).
    api_key: str = field(repr=False, default="")


# --- log records -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Upgraded:
    """The upgrade succeeded (HTTP 101)."""

    name: ClassVar[str] = "upgraded"
    target: str
    dialect: str
    subprotocol: str | None

    def describe(self) -> str:
        via = f", subprotocol {self.subprotocol}" if self.subprotocol else ""
        return f"upgraded GET {self.target} ({self.dialect} dialect{via})"


@dataclass(frozen=True, slots=True)
class Refused:
    """The upgrade was answered with an HTTP error (no WebSocket)."""

    name: ClassVar[str] = "refused"
    status: int
    message: str

    def describe(self) -> str:
        return f"refused the upgrade: HTTP {self.status} ({self.message[:120]})"


@dataclass(frozen=True, slots=True)
class Rejected:
    """The upgrade succeeded, then the session was refused: one error event and a close."""

    name: ClassVar[str] = "rejected"
    code: str
    message: str
    close_code: int

    def describe(self) -> str:
        return f"rejected the session: {self.code} (close {self.close_code}): {self.message}"


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection is over; ``by``: ``client``, ``server``, ``protocol`` (a violation),
    ``timeout``, ``lost`` (no close frame) or ``fault``."""

    name: ClassVar[str] = "closed"
    code: int | None
    reason: str | None
    by: str

    def describe(self) -> str:
        code = "no close code" if self.code is None else str(self.code)
        reason = f" {self.reason}" if self.reason else ""
        return f"connection closed ({self.by}): {code}{reason}"


@dataclass(frozen=True, slots=True)
class FaultInjected:
    """A configured fault fired."""

    name: ClassVar[str] = "fault"
    fault: str
    detail: str

    def describe(self) -> str:
        return f"fault {self.fault}: {self.detail}"


@dataclass(frozen=True, slots=True)
class HttpAnswered:
    """A REST request (WebRTC call, client secret) was answered with this status."""

    name: ClassVar[str] = "http_answered"
    method: str
    path: str
    status: int

    def describe(self) -> str:
        return f"answered {self.method} {self.path}: HTTP {self.status}"


WireLog = Union[Upgraded, Refused, Rejected, Closed, FaultInjected, HttpAnswered]
LogRecord = Union[ServerLog, WireLog]


class ServerState(enum.Enum):
    """Where a :class:`ServerWebSocket` is in its life."""

    #: Reading the upgrade request.
    HANDSHAKE = "HANDSHAKE"
    #: Frames flow both ways.
    OPEN = "OPEN"
    #: Our close frame went out; waiting for the client's.
    CLOSING = "CLOSING"
    #: Done: write :meth:`ServerWebSocket.data_to_send`, then close the socket.
    CLOSED = "CLOSED"
    #: A complete REST request (``POST .../calls`` or ``.../client_secrets``) waits for the
    #: driver's answer: read :attr:`ServerWebSocket.http_request`, call ``respond()``.
    REQUEST = "REQUEST"


_HANDSHAKE = ServerState.HANDSHAKE
_OPEN = ServerState.OPEN
_CLOSING = ServerState.CLOSING
_CLOSED = ServerState.CLOSED
_REQUEST = ServerState.REQUEST
#: The largest REST request body (a multipart call offer with its session).
MAX_REST_BODY = MAX_SDP_SIZE + MAX_JSON_BODY_SIZE

SessionFactory = Callable[[ConnectRequest], ServerSession]


def mask_key(key: str) -> str:
    """A key as the service echoes a wrong one: its start and end around asterisks.

    >>> mask_key("sk-abcdefghijklmnopqrstu")
    'sk-abc**************rstu'
    """
    if len(key) <= 8:
        return key[:2] + "***"
    head = 8 if key.startswith("sk-proj-") else 6
    tail = 4
    if len(key) < head + tail + 3:
        head, tail = 3, 3
    return key[:head] + "*" * (len(key) - head - tail) + key[-tail:]


def _error_body(message: str, code: str | None = None) -> bytes:
    """The OpenAI REST error envelope, indented as the service sends it."""
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    return (json.dumps({"error": error}, indent=4) + "\n").encode("utf-8")


def _tokens(value: str) -> list[str]:
    return [token.strip() for token in value.split(",") if token.strip()]


def _redacted(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers without credentials: no ``Authorization``, the subprotocol key masked."""
    kept = []
    for name, value in headers:
        if name == "authorization":
            continue
        if name == "sec-websocket-protocol":
            value = ", ".join(
                _KEY_PROTOCOL + "***" if token.startswith(_KEY_PROTOCOL) else token
                for token in _tokens(value)
            )
        kept.append((name, value))
    return kept


class ServerWebSocket:
    """One server-side Realtime WebSocket connection, from the first byte to the last.

    After every call: write :meth:`data_to_send`, pull :meth:`next_event` until ``None`` (log
    records: the session's and the connection's own, each with ``describe()``), re-arm the
    timer from :meth:`get_timer`; once :attr:`closed`, close the socket.

    Args:
        options: limits, authentication and faults.
        session_factory: makes the session of an accepted request; by default a
            :class:`~rtproto.server.ServerSession` with ``options.session``, the request's
            model (when it has one) and dialect. Drivers use it to give every connection its
            own responder and wall clock. A session that already runs (a SIP call's, for a
            ``?call_id=`` socket) is joined (:meth:`ServerSession.attach`) and outlives the
            connection; :class:`~rtproto.server.sip.SidebandRefused` refuses the socket with
            an ``error`` event and close 4000.
        random_bytes: the source of the ids of the connection's own events (auth errors,
            injected events) and of ping payloads.
    """

    def __init__(
        self,
        options: ServerWebSocketOptions | None = None,
        *,
        session_factory: SessionFactory | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.options = options = options if options is not None else ServerWebSocketOptions()
        self._factory = session_factory if session_factory is not None else self._new_session
        self._random = random_bytes
        self._state = _HANDSHAKE
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=options.max_handshake_size)
        self._request: h11.Request | None = None
        self._rest_path: str | None = None
        self._body: list[bytes] = []
        self._body_size = 0
        #: A parsed REST request awaiting :meth:`respond` (state ``REQUEST``).
        self.http_request: (
            CallOffer
            | ClientSecretRequest
            | CallControlRequest
            | SipCallRequest
            | CallerRequest
            | None
        ) = None
        self._ws: Connection | None = None
        #: The session (after a successful upgrade that was not rejected).
        self.session: ServerSession | None = None
        # the factory gave a running session (it outlives this connection)
        self._borrowed = False
        #: What the client asked for (after a successful upgrade).
        self.request: ConnectRequest | None = None
        #: The bytes of the answer to the upgrade request (101 or an HTTP error), once sent.
        self.handshake_response: bytes | None = None
        #: The close code of the connection (``None`` while open; 1006: no close frame).
        self.close_code: int | None = None
        #: The close reason, when there was one.
        self.close_reason: str | None = None
        #: The connection was dropped on purpose without a close frame (``drop_after``).
        self.aborted = False
        #: Server messages framed so far (the session's, not injected ones).
        self.messages_sent = 0
        self._out: list[bytes] = []
        self._out_len = 0
        self._logs: deque[LogRecord] = deque(maxlen=options.session.max_pending_logs)
        self._backlog = False
        # the message being received
        self._parts: list[str] = []
        self._size = 0
        # timers
        self._handshake_deadline: float | None = None
        self._next_ping: float | None = None
        self._pong_deadline: float | None = None
        self._ping_payload = b""
        self._close_deadline: float | None = None
        self._fault_close_at: float | None = None

    # ------------------------------------------------------------------------ state --

    @property
    def state(self) -> ServerState:
        """Where the connection is in its life."""
        return self._state

    @property
    def closed(self) -> bool:
        """Over: write :meth:`data_to_send`, then close the socket."""
        return self._state is _CLOSED

    @property
    def backlogged(self) -> bool:
        """Client frames wait unhandled because output piled up: write, then :meth:`resume`."""
        return self._backlog and self._state is not _CLOSED

    @property
    def pending_output(self) -> int:
        """Bytes waiting in :meth:`data_to_send`."""
        return self._out_len

    # ------------------------------------------------------------------------ input --

    def connection_made(self, now: float) -> None:
        """The TCP connection was accepted: start the handshake timer."""
        timeout = self.options.handshake_timeout
        if self._state is _HANDSHAKE and timeout is not None:
            self._handshake_deadline = now + timeout

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the client; ``b""`` when the client closed its side of the stream."""
        if self._state is _CLOSED:
            return
        if not data:
            self.connection_lost(now)
            return
        if self._state is _HANDSHAKE:
            self._handshake(data, now)
            return
        if self._state is _REQUEST:
            return  # a request is all a REST connection carries
        ws = self._ws
        assert ws is not None
        if ws.state in (ConnectionState.OPEN, ConnectionState.LOCAL_CLOSING):
            ws.receive_data(data)
        self._handle_frames(now)

    def resume(self, now: float) -> None:
        """Handle the client frames held back while :attr:`backlogged` (after a write)."""
        if self._backlog and self._state is not _CLOSED:
            self._handle_frames(now)

    def connection_lost(self, now: float) -> None:
        """The transport ended or failed (no more bytes either way)."""
        if self._state is _CLOSED:
            return
        if self._state is _HANDSHAKE or self._state is _REQUEST:
            self._state = _CLOSED
            self._handshake_deadline = None
            self._log(Closed(None, "the client left during the handshake", "lost"))
            return
        self._finish(1006, "connection lost without a close frame", "lost", now)

    def feed_audio(self, pcm24k: bytes, now: float) -> None:
        """SIP/WebRTC: caller audio from the media line (PCM16 24 kHz) into the session;
        then drain. Ignored unless the session is open."""
        session = self.session
        if session is not None and self._state is _OPEN:
            session.feed_audio(pcm24k, now)
            self._pump(now)

    def close(self, now: float, code: int = 1000, reason: str = "") -> None:
        """Close from the server side (e.g. 1001 on shutdown): send a close frame and wait for
        the client's (``close_timeout``); during the handshake, just end."""
        if self._state is _HANDSHAKE or self._state is _REQUEST:
            self._state = _CLOSED
            self._handshake_deadline = None
            self._log(Closed(None, reason or None, "server"))
        elif self._state is _OPEN:
            self._pump(now)
            if self._state is _OPEN:
                self._start_close(code, reason, now)

    # ----------------------------------------------------------------------- output --

    def data_to_send(self) -> bytes:
        """Everything to write now, in order (``b""`` when nothing)."""
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out = []
        self._out_len = 0
        return data

    def next_event(self) -> LogRecord | None:
        """The next log record (the session's or the connection's), or ``None``."""
        return self._logs.popleft() if self._logs else None

    # ----------------------------------------------------------------------- timers --

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` should run next (same clock as ``now``), if ever."""
        state = self._state
        if state is _CLOSED:
            return None
        if state is _HANDSHAKE:
            return self._handshake_deadline
        if state is _CLOSING:
            return self._close_deadline
        due = [
            t for t in (self._next_ping, self._pong_deadline, self._fault_close_at) if t is not None
        ]
        if self.session is not None:
            session_due = self.session.get_timer()
            if session_due is not None:
                due.append(session_due)
        return min(due) if due else None

    def handle_timer(self, now: float) -> None:
        """Run what is due at ``now``: session timers, keepalive, faults, timeouts."""
        state = self._state
        if state is _HANDSHAKE:
            deadline = self._handshake_deadline
            if deadline is not None and now >= deadline:
                self._state = _CLOSED
                self._handshake_deadline = None
                self._log(Closed(None, "no upgrade request in time", "timeout"))
            return
        if state is _CLOSING:
            deadline = self._close_deadline
            if deadline is not None and now >= deadline:
                self._finish(self.close_code, self.close_reason, "timeout", now)
            return
        if state is not _OPEN:
            return
        if self.session is not None:
            self.session.handle_timer(now)
            self._pump(now)
        if self._state is not _OPEN:
            return
        at = self._fault_close_at
        if at is not None and now >= at:
            self._fault_close_at = None
            self._log(FaultInjected("close-1001-after", "closing with 1001 (going away)"))
            self._start_close(1001, "going away", now)
            return
        deadline = self._pong_deadline
        if deadline is not None and now >= deadline:
            self._fail(1011, "keepalive ping timeout", now)
            return
        ping_at = self._next_ping
        if ping_at is not None and now >= ping_at:
            self._next_ping = None
            self._ping_payload = self._random(4)
            self._send_ws(Ping(payload=self._ping_payload))
            timeout = self.options.ping_timeout
            if timeout is not None:
                self._pong_deadline = now + timeout
            else:
                self._arm_ping(now)

    # --------------------------------------------------------------------- handshake --

    def _handshake(self, data: bytes, now: float) -> None:
        conn = self._h11
        try:
            conn.receive_data(data)
            while self._state is _HANDSHAKE:
                event = conn.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    return
                if isinstance(event, h11.Request):
                    self._request = event
                    if self._rest(event, now):
                        continue  # a REST request: its body follows
                    if any(
                        name in (b"content-length", b"transfer-encoding")
                        and value not in (b"0", b"")
                        for name, value in event.headers
                    ):
                        self._refuse(400, "A WebSocket upgrade request has no body.", now)
                        return
                elif isinstance(event, h11.Data) and self._rest_path is not None:
                    self._body_size += len(event.data)
                    if self._body_size > MAX_REST_BODY:
                        self._respond_error(413, "The request body is too large.", now)
                        return
                    self._body.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage) and self._rest_path is not None:
                    self._rest_request(now)
                    return
                elif isinstance(event, h11.EndOfMessage):
                    self._answer(now)
                    return
                elif isinstance(event, h11.ConnectionClosed):  # pragma: no cover - EOF path
                    self.connection_lost(now)
                    return
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint if exc.error_status_hint in _REASONS else 400
            self._refuse(status, f"Invalid HTTP request: {exc}", now)

    # ------------------------------------------------------------------ REST requests --

    @property
    def rest_paths(self) -> tuple[str, ...]:
        """The REST endpoints served next to the WebSocket: calls and client secrets (and
        call control, ``calls/{call_id}/{action}``, below the first), and the emulator's
        own, which rings its SIP line."""
        path = self.options.path
        return (path + "/calls", path + "/client_secrets", path + "/emulator/sip_calls")

    def _rest(self, request: h11.Request, now: float) -> bool:
        """A request for a REST endpoint (its body is read next, bounded)? False: not one."""
        path = request.target.decode("latin-1").partition("?")[0]
        paths = self.rest_paths
        if path not in paths and not path.startswith((paths[0] + "/", paths[2] + "/")):
            return False
        self._rest_path = path
        if request.method == b"OPTIONS":  # a CORS preflight from a page of another origin
            self._finish_rest(preflight_response(_server_header()), 204, "OPTIONS")
            return True
        if request.method != b"POST":
            self._respond_error(405, f"Invalid method for {path}: use POST.", now)
            return True
        for name, value in request.headers:
            if name == b"content-length" and (not value.isdigit() or int(value) > MAX_REST_BODY):
                self._respond_error(413, "The request body is too large.", now)
                return True
        return True

    def _rest_request(self, now: float) -> None:
        request = self._request
        assert request is not None and self._rest_path is not None
        target = request.target.decode("latin-1")
        # the parser knows the service's paths; ours may sit under another root
        suffix = self._rest_path[len(self.options.path) :]
        query = target.partition("?")[2]
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers]
        try:
            parsed = parse_server_request(
                "POST",
                "/v1/realtime" + suffix + ("?" + query if query else ""),
                headers,
                b"".join(self._body),
            )
        except SignallingError as exc:
            message = exc.error.get("message") if exc.error else None
            self._respond_error(exc.status or 400, str(message or exc.message), now, exc.code)
            return
        self._body = []
        self.http_request = parsed
        self._state = _REQUEST
        self._handshake_deadline = None

    def respond(self, response: bytes, status: int) -> None:
        """Answer the pending REST request with a complete HTTP response; then CLOSED."""
        if self._state is not _REQUEST:
            raise LocalProtocolError(
                "respond() needs a pending REST request", state=self._state.value
            )
        self.http_request = None
        self._finish_rest(response, status)

    def _respond_error(
        self, status: int, message: str, now: float, code: str | None = None
    ) -> None:
        self._finish_rest(error_response(status, message, code, server=_server_header()), status)

    def _finish_rest(
        self, response: bytes, status: int, method: str = "POST", path: str | None = None
    ) -> None:
        self.handshake_response = response
        self._queue(response)
        self._state = _CLOSED
        self._handshake_deadline = None
        self._log(HttpAnswered(method, path or self._rest_path or "", status))

    def _answer(self, now: float) -> None:
        request = self._request
        assert request is not None
        method = request.method.decode("latin-1")
        target = request.target.decode("latin-1")
        path, _, query_text = target.partition("?")
        headers: list[tuple[str, str]] = [
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in request.headers
        ]

        def values(name: str) -> list[str]:
            return [value for key, value in headers if key == name]

        def tokens(name: str) -> list[str]:
            return [token for value in values(name) for token in _tokens(value)]

        page = self.options.index_page
        upgrading = "websocket" in (t.lower() for t in tokens("upgrade"))
        if path == "/" and method in ("GET", "HEAD") and page is not None and not upgrading:
            self._serve_page(method, page)
            return
        if method != "GET" or path != self.options.path:
            self._refuse(404, f"Invalid URL ({method} {path})", now)
            return
        upgrade = [t.lower() for t in tokens("upgrade")]
        connection = [t.lower() for t in tokens("connection")]
        if "websocket" not in upgrade or "upgrade" not in connection:
            self._refuse(
                426,
                "This endpoint only accepts WebSocket connections (Upgrade: websocket).",
                now,
                [("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")],
            )
            return
        if values("sec-websocket-version") != ["13"]:
            self._refuse(
                426,
                "Unsupported WebSocket version: use Sec-WebSocket-Version: 13.",
                now,
                [("Sec-WebSocket-Version", "13")],
            )
            return
        keys = values("sec-websocket-key")
        try:
            valid_key = len(keys) == 1 and len(base64.b64decode(keys[0], validate=True)) == 16
        except (binascii.Error, ValueError):
            valid_key = False
        if not valid_key:
            self._refuse(400, "Invalid Sec-WebSocket-Key header.", now)
            return
        protocols = tokens("sec-websocket-protocol")
        api_key, auth = self._credential(values("authorization"), protocols)
        if not api_key:
            self._refuse(401, MISSING_KEY_MESSAGE, now)
            return
        query: dict[str, str] = {}
        for name, value in parse_qsl(query_text, keep_blank_values=True):
            query.setdefault(name, value)
        beta = _BETA_PROTOCOL in protocols or any(
            token.replace(" ", "").lower() == "realtime=v1" for token in tokens("openai-beta")
        )
        subprotocol = "realtime" if "realtime" in protocols else None
        self.request = ConnectRequest(
            target=target,
            query=query,
            model=query.get("model") or None,
            call_id=query.get("call_id") or None,
            intent=query.get("intent") or None,
            dialect=Dialect.BETA if beta else Dialect.GA,
            subprotocol=subprotocol,
            auth=auth,
            headers=tuple(_redacted(headers)),
            api_key=api_key,
        )
        lines = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Accept: " + accept_token(keys[0].encode("ascii")).decode("ascii"),
        ]
        if subprotocol is not None:
            lines.append("Sec-WebSocket-Protocol: " + subprotocol)
        lines.append("Server: " + _server_header())
        response = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.handshake_response = response
        self._queue(response)
        trailing, _ = self._h11.trailing_data
        self._ws = Connection(ConnectionType.SERVER)
        self._state = _OPEN
        self._handshake_deadline = None
        self._log(Upgraded(target, self.request.dialect.value, subprotocol))
        self._start_session(now)
        if self._state is not _CLOSED and trailing:
            self._ws.receive_data(bytes(trailing))
            self._handle_frames(now)

    def _serve_page(self, method: str, page: bytes) -> None:
        """Answer ``GET /`` with the index page (HTML, not cached); then CLOSED."""
        lines = [
            "HTTP/1.1 200 OK",
            "Content-Type: text/html; charset=utf-8",
            f"Content-Length: {len(page)}",
            "Cache-Control: no-store",
            "Connection: close",
            "Server: " + _server_header(),
        ]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self._finish_rest(head + (page if method == "GET" else b""), 200, method, "/")

    def _credential(self, authorization: list[str], protocols: list[str]) -> tuple[str, str]:
        for value in authorization:
            scheme, _, credential = value.strip().partition(" ")
            if scheme.lower() == "bearer" and credential.strip():
                return credential.strip(), "header"
        for token in protocols:
            if token.startswith(_KEY_PROTOCOL) and len(token) > len(_KEY_PROTOCOL):
                return token[len(_KEY_PROTOCOL) :], "subprotocol"
        return "", "none"

    def _refuse(
        self, status: int, message: str, now: float, extra: list[tuple[str, str]] | None = None
    ) -> None:
        body = _error_body(message)
        lines = [
            f"HTTP/1.1 {status} {_REASONS[status]}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            "Connection: close",
            *(f"{name}: {value}" for name, value in extra or ()),
            "Server: " + _server_header(),
        ]
        response = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        self.handshake_response = response
        self._queue(response)
        self._state = _CLOSED
        self._handshake_deadline = None
        self._log(Refused(status, message))

    def _start_session(self, now: float) -> None:
        request = self.request
        assert request is not None
        options = self.options
        expected = options.api_key
        if expected is not None and not hmac.compare_digest(
            request.api_key.encode("utf-8"), expected.encode("utf-8")
        ):
            self._reject(
                3000,
                "invalid_api_key",
                f"Incorrect API key provided: {mask_key(request.api_key)}. You can find your "
                "API key at https://platform.openai.com/account/api-keys.",
                now,
            )
            return
        if request.dialect is Dialect.BETA and not options.allow_beta:
            self._reject(
                4000,
                "beta_api_shape_disabled",
                "The beta Realtime API shape is no longer supported. Remove the "
                "'OpenAI-Beta: realtime=v1' header to use the GA interface.",
                now,
            )
            return
        if request.call_id is None and request.intent != "transcription":
            model = request.model
            if model is None:
                self._reject(
                    4000,
                    "missing_model",
                    "You must provide a model parameter, for example "
                    "wss://api.openai.com/v1/realtime?model=gpt-realtime-1.5",
                    now,
                )
                return
            accepted = options.models
            if (model not in accepted) if accepted is not None else ("realtime" not in model):
                self._reject(
                    4000,
                    "invalid_model",
                    f'Model "{model}" is not supported in realtime mode. Supported models are '
                    "listed at https://platform.openai.com/docs/models.",
                    now,
                )
                return
        try:
            session = self._factory(request)
        except SidebandRefused as exc:  # ?call_id= of a call that cannot take a socket now
            self._reject(4000, exc.code, exc.message, now)
            return
        except (RtprotoError, ValueError) as exc:
            self._fail(1011, f"could not start the session: {exc}"[:120], now)
            return
        self.session = session
        self._borrowed = session.started
        if self._borrowed:  # a running session (a SIP call's): this socket joins it
            session.attach(now)
        else:
            session.connection_made(now)
        if options.close_1001_after is not None:
            self._fault_close_at = now + options.close_1001_after
        self._arm_ping(now)
        if options.drop_after == 0:
            self._drop(now)
            return
        self._pump(now)

    def _new_session(self, request: ConnectRequest) -> ServerSession:
        template = self.options.session
        return ServerSession(
            replace(template, model=request.model or template.model, dialect=request.dialect)
        )

    def _reject(self, close_code: int, code: str, message: str, now: float) -> None:
        """After the 101: one error event, then close with ``<type>.<code>`` (spec 6.3)."""
        error = {
            "type": "invalid_request_error",
            "code": code,
            "message": message,
            "param": None,
            "event_id": None,
        }
        self._send_text(self._event("error", error=error))
        self._log(Rejected(code, message, close_code))
        self._start_close(close_code, f"invalid_request_error.{code}", now)

    # ------------------------------------------------------------------------ frames --

    def _handle_frames(self, now: float) -> None:
        ws = self._ws
        assert ws is not None
        self._backlog = False
        high_water = self.options.output_high_water
        for event in ws.events():
            self._frame_event(event, ws, now)
            if self._state is _CLOSED:
                return
            if self._out_len >= high_water:
                self._backlog = True
                return

    def _frame_event(self, event: WsEvent, ws: Connection, now: float) -> None:
        if isinstance(event, TextMessage):
            self._data(event.data, event.message_finished, False, now)
        elif isinstance(event, BytesMessage):
            self._data(event.data, event.message_finished, True, now)
        elif isinstance(event, Ping):
            if ws.state is ConnectionState.OPEN:
                self._send_ws(event.response())
        elif isinstance(event, Pong):
            if self._pong_deadline is not None and bytes(event.payload) == self._ping_payload:
                self._pong_deadline = None
                self._arm_ping(now)
        elif isinstance(event, CloseConnection):
            if ws.state is ConnectionState.OPEN:  # wsproto's way of reporting a bad frame
                self._fail(event.code, event.reason or "protocol error", now)
            elif ws.state is ConnectionState.REMOTE_CLOSING:
                self._send_ws(CloseConnection(code=1000))  # spec 6.3: the server answers 1000
                self._finish(event.code, event.reason or None, "client", now)
            else:  # the answer to our close frame
                self._finish(self.close_code, self.close_reason, "server", now)

    def _data(
        self, data: str | bytes | bytearray, finished: bool, binary: bool, now: float
    ) -> None:
        self._size += len(data)
        limit = self.options.max_message_size
        if self._size > limit:
            self._parts = []
            self._fail(1009, f"message too big: more than {limit} characters", now)
            return
        if not binary:
            assert isinstance(data, str)
            self._parts.append(data)
        if not finished:
            return
        text = "".join(self._parts)
        self._parts = []
        self._size = 0
        session = self.session
        if self._state is not _OPEN or session is None:
            return  # after our close frame: the message is dropped
        if binary:
            session.receive(b"", now, binary=True)
        else:
            session.receive(text, now)
        self._pump(now)

    # ------------------------------------------------------------------------ output --

    def _pump(self, now: float) -> None:
        """Frame what the session produced, take its logs, honour its close request."""
        session = self.session
        if session is None:
            return
        for text in session.messages_to_send():
            if self._state is not _OPEN:
                break
            self._send_text(text)
            self.messages_sent += 1
            drop = self.options.drop_after
            if drop is not None and self.messages_sent >= drop:
                self._drop(now)
                break
            if self.options.unknown_events:
                self._send_text(self._event(UNKNOWN_EVENT_TYPE, note="injected by rtproto serve"))
        self._take_logs()
        request = session.close_requested
        if request is not None and self._state is _OPEN:
            self._start_close(request[0], request[1], now)

    def _take_logs(self) -> None:
        session = self.session
        if session is None:
            return
        record = session.next_event()
        while record is not None:
            self._logs.append(record)
            record = session.next_event()

    def _send_text(self, text: str) -> None:
        ws = self._ws
        assert ws is not None
        if not self.options.fragment or len(text) < 2:
            self._queue(ws.send(TextMessage(data=text)))
            return
        count = min(3, len(text))
        step = -(-len(text) // count)
        pieces = [text[i : i + step] for i in range(0, len(text), step)]
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            self._queue(ws.send(TextMessage(data=piece, message_finished=last)))
            if not last:
                self._queue(ws.send(Ping(payload=b"fragment")))

    def _send_ws(self, event: WsEvent) -> None:
        ws = self._ws
        assert ws is not None
        self._queue(ws.send(event))

    def _queue(self, data: bytes) -> None:
        if data:
            self._out.append(data)
            self._out_len += len(data)

    def _event(self, kind: str, **fields: Any) -> str:
        raw = self._random(21)
        event_id = "event_" + "".join(_BASE62[b % 62] for b in raw)
        return json.dumps({"type": kind, "event_id": event_id, **fields}, separators=(",", ":"))

    def _arm_ping(self, now: float) -> None:
        interval = self.options.ping_interval
        self._next_ping = now + interval if interval is not None else None

    # ------------------------------------------------------------------------- endings --

    def _start_close(self, code: int, reason: str, now: float) -> None:
        self._send_ws(CloseConnection(code=code, reason=reason or None))
        self._state = _CLOSING
        self.close_code = code
        self.close_reason = reason or None
        self._next_ping = self._pong_deadline = self._fault_close_at = None
        self._close_deadline = now + self.options.close_timeout

    def _fail(self, code: int, reason: str, now: float) -> None:
        """A protocol violation (or a dead peer): close frame, then the end, without waiting."""
        ws = self._ws
        if ws is not None and ws.state is ConnectionState.OPEN:
            self._send_ws(CloseConnection(code=code, reason=reason))
        self._finish(code, reason, "protocol" if code != 1011 else "server", now)

    def _drop(self, now: float) -> None:
        self.aborted = True
        detail = f"dropped the connection after {self.messages_sent} messages, no close frame"
        self._log(FaultInjected("drop-after", detail))
        self._finish(1006, "dropped by the drop-after fault", "fault", now)

    def _finish(self, code: int | None, reason: str | None, by: str, now: float) -> None:
        self._state = _CLOSED
        self.close_code = code
        self.close_reason = reason
        self._next_ping = self._pong_deadline = self._fault_close_at = None
        self._close_deadline = self._handshake_deadline = None
        self._parts = []
        if self.session is not None and not self._borrowed:  # (a borrowed one lives on)
            self.session.connection_lost(now)
            self.session.messages_to_send()
            self._take_logs()
        self._log(Closed(code, reason, by))

    def _log(self, record: LogRecord) -> None:
        self._logs.append(record)
