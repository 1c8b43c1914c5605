"""The client side of a Realtime WebSocket: from bytes to transport events and back, no I/O.

:class:`RealtimeWebSocket` puts three layers in one object:

* the HTTP/1.1 upgrade, written and parsed with h11 (status, headers and the whole body of a
  refusal reach :class:`HandshakeRefused`);
* RFC 6455 framing, written here for speed (see below), with permessage-deflate
  (RFC 7692) inflated under the ``max_message_size`` cap;
* the session core, :class:`~rtproto.session.ClientSession`, reachable as ``.session``: the
  application calls its commands (``conn.session.send_audio(...)``) and their messages leave
  as TEXT frames the next time :meth:`RealtimeWebSocket.data_to_send` is called.

The drive loop (identical for every driver)::

    conn = RealtimeWebSocket(WebSocketOptions(url=..., api_key=...))
    conn.initiate(now)
    write(conn.data_to_send())
    while conn.state is not WebSocketState.CLOSED:
        conn.receive_data(read() or b"", now)        # b"" = the peer closed the stream
        while (event := conn.next_event()) is not None:
            handle(event)                              # may call conn.session commands
        write(conn.data_to_send())                     # after EVERY call, even timers
        ...                                            # honour conn.get_timer() / handle_timer()
    close_the_transport()

Once :attr:`RealtimeWebSocket.state` is ``CLOSED`` and :meth:`~RealtimeWebSocket.data_to_send`
has been written, the driver closes the transport.

Why not wsproto's frame layer: its decoder runs a generator and copies each payload several
times per frame, has no message-size limit and inflates permessage-deflate without an output
cap; and a fast path in front of it would have to parse frame boundaries anyway. The parser
here handles every frame itself in one loop over the received buffer: an unfragmented,
uncompressed TEXT frame (the Realtime hot path) takes a few slices and an ASCII check before
it reaches the session; everything else (fragments, control frames between fragments,
compressed messages, close) goes through the general branch of the same loop. wsproto is the
independent peer of the tests and the reference the fuzz harness compares this parser with.
"""

from __future__ import annotations

import base64
import codecs
import enum
import os
import re
import struct
import sys
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlsplit

import h11
import msgspec

from ..dialect import Dialect
from ..errors import LocalProtocolError, RemoteProtocolError
from ..session.core import ClientSession, SessionEvent, SessionOptions, SessionState
from ..session.events import ProtocolWarning
from ._frames import (
    CLOSE,
    PING,
    PONG,
    TEXT,
    accept_token,
    close_payload,
    mask,
    valid_close_code,
)
from .url import HEADER_NAME, HEADER_VALUE, host_header, redact_url, split_url

__all__ = [
    "HandshakeRefused",
    "HandshakeTimeout",
    "RealtimeWebSocket",
    "WebSocketOptions",
    "WebSocketState",
]

#: Bytes of a refused upgrade's body kept for :class:`HandshakeRefused` (the rest is dropped).
MAX_REFUSAL_BODY = 64 * 1024
#: Largest response head (status line and headers) accepted in answer to the upgrade.
MAX_RESPONSE_HEAD = 16 * 1024
#: Random bytes fetched at a time for frame masks (64 frames; small: one pool per connection).
_MASK_POOL_SIZE = 256
#: What the client offers for permessage-deflate. The client never compresses what it sends
#: (audio appends barely shrink), so only the server's direction is ever compressed.
DEFLATE_OFFER = "permessage-deflate; client_max_window_bits"
_TRAILER = b"\x00\x00\xff\xff"
_RESERVED = frozenset(
    {
        "host",
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
        "sec-websocket-accept",
        "content-length",
        "transfer-encoding",
    }
)
_WINDOW_BITS = {str(bits) for bits in range(8, 16)}
# Names of extra headers and query parameters whose values are hidden from handshake errors.
_SECRET_NAME = re.compile(r"key|token|secret|auth|pass|sig|credential", re.IGNORECASE)
_decode_json = msgspec.json.Decoder().decode
_utf8_decoder = codecs.getincrementaldecoder("utf-8")
_HEAD16 = struct.Struct("!BBH").pack
_HEAD64 = struct.Struct("!BBQ").pack


def _default_user_agent() -> str:
    from .. import __version__  # lazily: rtproto/__init__ may import this module one day

    return f"rtproto/{__version__}"


@dataclass(frozen=True, repr=False)
class WebSocketOptions:
    """Configuration of a :class:`RealtimeWebSocket` (validated on construction).

    The ``repr`` shows neither the API key, nor the URL's query, nor the values of
    ``extra_headers`` (``'***'``): any of them may be a credential.

    Raises:
        LocalProtocolError: a bad URL, header, limit or timeout (messages never include the
            API key, a header value or the URL's query).
    """

    #: The full ``ws://`` or ``wss://`` URL (build one with :func:`rtproto.wire.realtime_url`).
    url: str = "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    #: API key or ``ek_`` client secret; never shown in ``repr``, logs or error messages.
    api_key: str | None = field(default=None, repr=False)
    #: Sent as ``OpenAI-Organization``.
    organization: str | None = None
    #: Sent as ``OpenAI-Project``.
    project: str | None = None
    #: Browser style: authenticate with the subprotocols ``realtime`` and
    #: ``openai-insecure-api-key.<key>`` (and ``openai-beta.realtime-v1`` when ``beta``)
    #: instead of the ``Authorization`` and ``OpenAI-Beta`` headers.
    subprotocol_auth: bool = False
    #: Speak the legacy beta dialect: ``OpenAI-Beta: realtime=v1`` (or its subprotocol).
    beta: bool = False
    #: More request headers; they may not repeat a header set by the options above.
    extra_headers: tuple[tuple[str, str], ...] = ()
    #: The ``User-Agent`` header (``""`` sends none).
    user_agent: str = field(default_factory=_default_user_agent)
    #: Largest message accepted (after decompression); larger ones close the connection
    #: with 1009.
    max_message_size: int = 16 * 1024 * 1024
    #: Most frames (data frames, the first included) one message may arrive in; one more
    #: closes the connection with 1009. Bounds the memory and work of a message sent in
    #: many tiny or empty fragments, which ``max_message_size`` alone does not.
    max_fragments: int = 65536
    #: Offer permessage-deflate; what the server compresses is inflated up to
    #: ``max_message_size`` and no further.
    compression: bool = True
    #: Seconds between keepalive pings (``None``: no pings).
    ping_interval: float | None = 20.0
    #: Seconds to wait for a ping's pong before the connection counts as lost (code 1006).
    ping_timeout: float = 20.0
    #: Seconds from :meth:`RealtimeWebSocket.initiate` to the 101 response.
    handshake_timeout: float | None = 10.0
    #: Seconds to wait for the server's close frame after sending ours.
    close_timeout: float = 5.0

    def __post_init__(self) -> None:
        split_url(self.url)
        key = self.api_key
        if key is not None:
            if not isinstance(key, str) or not key:
                raise LocalProtocolError("api_key must be a non-empty str")
            if self.subprotocol_auth and not HEADER_NAME.fullmatch(key):
                raise LocalProtocolError(
                    "api_key has characters a subprotocol cannot carry: use header auth"
                )
            if not HEADER_VALUE.fullmatch(key):
                raise LocalProtocolError("api_key has characters a header cannot carry")
        names: set[str] = set()
        for name, value in (
            ("OpenAI-Organization", self.organization),
            ("OpenAI-Project", self.project),
            ("User-Agent", self.user_agent),
        ):
            if value is not None:
                _check_header(name, value)
                if value:
                    names.add(name.lower())
        if key is not None and not self.subprotocol_auth:
            names.add("authorization")
        if self.beta and not self.subprotocol_auth:
            names.add("openai-beta")
        for pair in self.extra_headers:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise LocalProtocolError("extra_headers must hold (name, value) pairs")
            name, value = pair
            _check_header(name, value)
            lower = name.lower()
            if lower in _RESERVED:
                raise LocalProtocolError(f"extra header {name!r} is part of the handshake")
            if lower in names:
                raise LocalProtocolError(f"extra header {name!r} repeats one set by the options")
        if not isinstance(self.max_message_size, int) or self.max_message_size < 125:
            raise LocalProtocolError("max_message_size must be an int of at least 125")
        fragments = self.max_fragments
        if not isinstance(fragments, int) or isinstance(fragments, bool) or fragments < 1:
            raise LocalProtocolError("max_fragments must be an int of at least 1")
        timeouts: tuple[tuple[str, float | None, bool], ...] = (
            ("ping_interval", self.ping_interval, True),
            ("ping_timeout", self.ping_timeout, False),
            ("handshake_timeout", self.handshake_timeout, True),
            ("close_timeout", self.close_timeout, False),
        )
        for what, seconds, optional in timeouts:
            if seconds is None and optional:
                continue
            if not isinstance(seconds, (int, float)) or not seconds > 0:
                raise LocalProtocolError(f"{what} must be a positive number of seconds")

    def __repr__(self) -> str:
        parts = []
        for spec in fields(self):
            if not spec.repr:
                continue
            value = getattr(self, spec.name)
            if spec.name == "url":
                value = redact_url(value)
            elif spec.name == "extra_headers":
                value = tuple((name, "***") for name, _ in value)
            parts.append(f"{spec.name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


def handshake_credentials(
    options: WebSocketOptions,
) -> tuple[list[str], list[tuple[str, str]]]:
    """What an upgrade request says of who asks, as the WebSocket handshake and the
    Cloudflare fetch upgrade both send it: the subprotocols (``realtime``, then, with
    ``subprotocol_auth``, the key and the beta marker) and the headers (``Authorization``
    and ``OpenAI-Beta`` without ``subprotocol_auth``; organization, project, ``User-Agent``
    and the extra headers)."""
    protocols = ["realtime"]
    headers: list[tuple[str, str]] = []
    if options.subprotocol_auth:
        if options.api_key is not None:
            protocols.append(f"openai-insecure-api-key.{options.api_key}")
        if options.beta:
            protocols.append("openai-beta.realtime-v1")
    else:
        if options.api_key is not None:
            headers.append(("Authorization", f"Bearer {options.api_key}"))
        if options.beta:
            headers.append(("OpenAI-Beta", "realtime=v1"))
    if options.organization:
        headers.append(("OpenAI-Organization", options.organization))
    if options.project:
        headers.append(("OpenAI-Project", options.project))
    if options.user_agent:
        headers.append(("User-Agent", options.user_agent))
    headers.extend(options.extra_headers)
    return protocols, headers


class HandshakeRefused(RemoteProtocolError):
    """The server answered the upgrade with something other than 101.

    Attributes:
        status: the HTTP status code (also the error's ``hint``).
        headers: the response headers, names in lower case.
        body: the response body (at most 64 KiB of it).
        error: the ``error`` object of an OpenAI error body, else ``None``.
        retry_after: seconds to wait before retrying, from ``Retry-After`` /
            ``retry-after-ms`` (``None`` when absent).
    """

    def __init__(
        self,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        reason: str = "",
        state: str | None = None,
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.error = _error_object(body)
        self.retry_after = _retry_after(headers)
        message = f"the server refused the WebSocket upgrade: HTTP {status}"
        if reason:
            message += f" {reason}"
        detail = self.error.get("message") if self.error is not None else None
        if isinstance(detail, str) and detail:
            message += f": {detail[:300]}"
        super().__init__(message, hint=status, state=state)


class HandshakeTimeout(RemoteProtocolError):
    """No 101 response arrived within ``handshake_timeout``."""


class WebSocketState(enum.Enum):
    """Where a :class:`RealtimeWebSocket` is in its life."""

    #: Before and during the HTTP upgrade.
    CONNECTING = "CONNECTING"
    #: Frames flow both ways.
    OPEN = "OPEN"
    #: The application sent a close frame and waits for the server's.
    CLOSING = "CLOSING"
    #: Done: write what :meth:`RealtimeWebSocket.data_to_send` returns, then close the
    #: transport.
    CLOSED = "CLOSED"


_CONNECTING = WebSocketState.CONNECTING
_OPEN = WebSocketState.OPEN
_CLOSING = WebSocketState.CLOSING
_CLOSED = WebSocketState.CLOSED


class _Closed(Exception):
    """Internal: the connection closed (1009) while parsing; stop."""


class RealtimeWebSocket:
    """One object from bytes to transport events and from commands to bytes (client role).

    Every method that takes input may produce output: after each call, write
    :meth:`data_to_send`, pull :meth:`next_event` until ``None`` and re-arm the timer from
    :meth:`get_timer`. Messages queued by ``session`` commands are framed when
    :meth:`data_to_send` (or :attr:`pending_output`) is called.

    Args:
        options: the connection's configuration.
        session: the session core to drive, or its options; by default a new
            :class:`~rtproto.session.ClientSession` in the dialect ``options.beta`` asks for.
        random_bytes: the source of the handshake key and of the frame masks (only tests
            replace it).
    """

    # (one per connection: slots keep an idle one small)
    __slots__ = (
        "_accept",
        "_close_code",
        "_close_deadline",
        "_close_reason",
        "_deflate",
        "_eof_pending",
        "_events",
        "_frag_chunks",
        "_frag_compressed",
        "_frag_count",
        "_frag_decoder",
        "_frag_opcode",
        "_frag_out",
        "_frag_size",
        "_frag_text",
        "_h11",
        "_handshake_deadline",
        "_head_size",
        "_host",
        "_inflater",
        "_initiated",
        "_max_events",
        "_max_fragments",
        "_max_size",
        "_next_ping",
        "_now",
        "_out",
        "_out_len",
        "_paused",
        "_ping_payload",
        "_pings",
        "_pong_deadline",
        "_pool",
        "_pool_pos",
        "_port",
        "_protocols",
        "_random",
        "_rbuf",
        "_refusal",
        "_refusal_body",
        "_reset_inflater",
        "_response_head",
        "_rlen",
        "_rneed",
        "_state",
        "_target",
        "_tls",
        "options",
        "session",
        "subprotocol",
    )

    def __init__(
        self,
        options: WebSocketOptions | None = None,
        session: SessionOptions | ClientSession | None = None,
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.options = options = options if options is not None else WebSocketOptions()
        dialect = Dialect.BETA if options.beta else Dialect.GA
        if session is None:
            session = ClientSession(SessionOptions(dialect=dialect))
        elif isinstance(session, SessionOptions):
            session = ClientSession(session)
        elif not isinstance(session, ClientSession):
            raise LocalProtocolError(
                f"session must be SessionOptions or a ClientSession, not {type(session).__name__}"
            )
        if session.state is not SessionState.IDLE:
            raise LocalProtocolError(
                "the session was already connected once: give a new one", state=session.state.value
            )
        if session.options.dialect is not dialect:
            raise LocalProtocolError(
                f"WebSocketOptions.beta={options.beta} needs a session in the {dialect.value}"
                f" dialect, not {session.options.dialect.value}"
            )
        #: The session core: call its commands; its messages are framed by data_to_send().
        self.session: ClientSession = session
        self._random = random_bytes
        self._tls, self._host, self._port, self._target = split_url(options.url)
        self._state = _CONNECTING
        self._initiated = False
        self._now = 0.0
        # handshake
        self._h11: h11.Connection | None = None
        self._accept = b""
        self._protocols: list[str] = []
        self._refusal: h11.Response | None = None
        self._refusal_body = bytearray()
        #: The subprotocol the server selected (after the 101), if any.
        self.subprotocol: str | None = None
        self._response_head = ""  # response_headers, as "name:value" lines (one string)
        self._head_size = 0  # bytes given to h11 since the current response head began
        # output
        self._out: list[bytes] = []
        self._out_len = 0
        self._pool = b""
        self._pool_pos = 0
        # input and events
        #: Events for next_event(); None while there are none (an idle connection holds
        #: no deque).
        self._events: deque[SessionEvent] | None = None
        self._max_events = max(1, session.options.limits.max_pending_events)
        self._max_size = options.max_message_size
        self._max_fragments = options.max_fragments
        self._rbuf: list[bytes] = []
        self._rlen = 0
        self._rneed = 0
        self._paused = False
        self._eof_pending = False
        # the message being assembled from fragments
        self._frag_opcode = 0  # 0: none; TEXT or BINARY while a message is open
        self._frag_chunks: list[bytes] = []  # binary fragments
        self._frag_text: list[str] = []  # text fragments, decoded as they arrive
        self._frag_decoder: codecs.IncrementalDecoder | None = None
        self._frag_size = 0  # payload bytes received (compressed when compressed)
        self._frag_count = 0  # data frames received (empty ones too)
        self._frag_out = 0  # inflated bytes produced
        self._frag_compressed = False
        # permessage-deflate (server to client)
        self._deflate = False
        self._reset_inflater = False
        self._inflater: Any = None
        # timers
        self._handshake_deadline: float | None = None
        self._next_ping: float | None = None
        self._pong_deadline: float | None = None
        self._ping_payload: bytes | None = None
        self._pings = 0
        self._close_deadline: float | None = None
        self._close_code: int | None = None
        self._close_reason: str | None = None

    def __repr__(self) -> str:
        return f"<RealtimeWebSocket {self._state.value} {redact_url(self.options.url)!r}>"

    # ------------------------------------------------------------------------ properties --

    @property
    def state(self) -> WebSocketState:
        """Where the connection is; see :class:`WebSocketState`."""
        return self._state

    @property
    def response_headers(self) -> list[tuple[str, str]]:
        """The 101 response's headers, names in lower case (after the 101)."""
        head = self._response_head
        if not head:
            return []
        headers = []
        for line in head.split("\n"):  # (a name is a token: no ":"; a value has no newline)
            name, _, value = line.partition(":")
            headers.append((name, value))
        return headers

    @property
    def close_code(self) -> int | None:
        """Once closed: the server's close code, 1006 when lost without one, or the code
        rtproto closed with after a protocol error (1002, 1007) or an oversized message
        (1009)."""
        return self._close_code

    @property
    def close_reason(self) -> str | None:
        """Once closed: the close reason that goes with :attr:`close_code`."""
        return self._close_reason

    @property
    def pending_output(self) -> int:
        """Bytes :meth:`data_to_send` would return now (frames the session's queued messages
        first), for drivers that apply backpressure."""
        if self._state is _OPEN:
            self._flush_session()
        return self._out_len

    # -------------------------------------------------------------------------- commands --

    def initiate(self, now: float) -> None:
        """Queue the HTTP upgrade request and start the handshake timer. Then drain."""
        if self._initiated or self._state is not _CONNECTING:
            raise LocalProtocolError(
                "initiate() can be called once, on a new connection", state=self._state.value
            )
        self._now = now
        raw_key = self._random(16)
        if len(raw_key) != 16:
            raise LocalProtocolError("random_bytes(16) must return 16 bytes")
        key = base64.b64encode(raw_key)
        self._accept = accept_token(key)
        connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_RESPONSE_HEAD)
        try:
            request = h11.Request(
                method="GET", target=self._target, headers=self._request_headers(key.decode())
            )
            data = connection.send(request) or b""
        except h11.LocalProtocolError:  # pragma: no cover - the options were validated
            raise LocalProtocolError("cannot write the upgrade request") from None
        data += connection.send(h11.EndOfMessage()) or b""
        self._initiated = True
        self._h11 = connection
        self._queue(data)
        timeout = self.options.handshake_timeout
        if timeout is not None:
            self._handshake_deadline = now + timeout

    def close(self, code: int = 1000, reason: str = "", *, now: float | None = None) -> None:
        """Close the connection: the session refuses further commands, a close frame is
        queued and the state is ``CLOSING`` until the server's close frame arrives (then
        ``CLOSED``) or ``close_timeout`` passes. Idempotent. Then drain.

        ``now`` starts the close timer; without it the last ``now`` seen is used. Before the
        upgrade completes there is nothing to close politely: the state becomes ``CLOSED``.

        Raises:
            LocalProtocolError: a code an endpoint may not send, or a reason longer than
                123 bytes of UTF-8.
        """
        if not isinstance(code, int) or not valid_close_code(code):
            raise LocalProtocolError(f"close code {code} cannot be sent")
        if len(reason.encode("utf-8")) > 123:
            raise LocalProtocolError("a close reason holds at most 123 bytes of UTF-8")
        if now is not None:
            self._now = now
        state = self._state
        if state is _CLOSING or state is _CLOSED:
            return
        if state is _CONNECTING:
            self._h11 = None
            self._finish(None, "closed by the application before the WebSocket opened", self._now)
            return
        self._flush_session()
        self.session.close()
        self._send_frame(CLOSE, close_payload(code, reason))
        self._state = _CLOSING
        self._next_ping = self._pong_deadline = None
        self._close_deadline = self._now + self.options.close_timeout

    # ----------------------------------------------------------------------------- drain --

    def data_to_send(self) -> bytes:
        """Everything due on the wire, in order (``b""`` when nothing): the upgrade request,
        TEXT frames for the session's queued messages, pongs, pings and close frames."""
        if self._state is _OPEN:
            self._flush_session()
        elif self._state is not _CONNECTING:
            self.session.messages_to_send()  # too late to send: a close frame went out
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        self._out = []
        self._out_len = 0
        return data

    def next_event(self) -> SessionEvent | None:
        """The next event (server events and transport events, as the session yields them),
        or ``None``.

        When ``max_pending_events`` events were waiting, :meth:`receive_data` held the rest
        of the input back; it is parsed here once the queue is empty, so this call can raise
        what :meth:`receive_data` raises and queue output (drain :meth:`data_to_send`)."""
        events = self._events or self._waiting()
        if events:
            event = events.popleft()
            if not events:
                self._events = None
            return event
        self._events = None  # (empty)
        return self.session.next_event()

    def take_events(self) -> list[SessionEvent]:
        """Every event waiting, in order (an empty list when none): :meth:`next_event` until
        ``None``, in one call. Input held back by backpressure is parsed once the queue is
        empty, as :meth:`next_event` does: call again until it returns an empty list."""
        events = self._events or self._waiting()
        self._events = None
        taken = list(events) if events else []
        pending = self.session.take_events()
        if pending:
            taken.extend(pending)
        return taken

    def _waiting(self) -> deque[SessionEvent] | None:
        """When no parsed event waits: parse the input held back by backpressure, if any,
        and return what it queued."""
        if self._paused:
            self._resume()
        return self._events

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` is next due (same clock as ``now``), or ``None``."""
        deadline = self.session.get_timer()
        state = self._state
        if state is _OPEN:
            mine = self._pong_deadline if self._pong_deadline is not None else self._next_ping
        elif state is _CONNECTING:
            mine = self._handshake_deadline
        elif state is _CLOSING:
            mine = self._close_deadline
        else:
            mine = None
        if mine is None:
            return deadline
        return mine if deadline is None else min(mine, deadline)

    def handle_timer(self, now: float) -> None:
        """Run what is due at ``now``: keepalive pings and their timeout, the handshake and
        close timeouts, the session's timers. Then drain.

        Raises:
            HandshakeTimeout: the 101 did not arrive within ``handshake_timeout``.
        """
        self._now = now
        state = self._state
        if state is _CONNECTING:
            deadline = self._handshake_deadline
            if deadline is not None and now >= deadline:
                self._handshake_failed(
                    HandshakeTimeout(
                        f"no answer to the WebSocket upgrade within"
                        f" {self.options.handshake_timeout} s",
                        state=state.value,
                    ),
                    now,
                )
        elif state is _OPEN:
            if self._pong_deadline is not None:
                if now >= self._pong_deadline:
                    self._finish(1006, "keepalive ping timeout", now)
            elif self._next_ping is not None and now >= self._next_ping:
                self._pings += 1
                payload = self._pings.to_bytes(4, "big")
                self._flush_session()
                self._send_frame(PING, payload)
                self._ping_payload = payload
                self._pong_deadline = now + self.options.ping_timeout
                self._next_ping = None
        elif state is _CLOSING:
            deadline = self._close_deadline
            if deadline is not None and now >= deadline:
                self._finish(1006, "the server did not answer the close frame in time", now)
        self.session.handle_timer(now)
        self._drain_session()

    # --------------------------------------------------------------------------- receive --

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> None:
        """Feed what arrived; ``b""`` means the server closed the stream (EOF). Then drain.

        During the handshake this parses the HTTP response; after the 101 it parses frames:
        TEXT messages go to ``session.receive``, pings are answered, a close frame is
        answered and ends the session. Data after the close is ignored.

        Raises:
            HandshakeRefused: the upgrade was answered with another status (raised once the
                whole body arrived, or 64 KiB of it).
            RemoteProtocolError: an invalid handshake response, a protocol violation in a
                frame (a close frame with code 1002 or 1007 is queued first, the state is
                ``CLOSED``), or a message that is not an event (see the codec).
            LocalProtocolError: called before :meth:`initiate`.
        """
        if type(data) is not bytes:
            data = bytes(data)
        self._now = now
        state = self._state
        if state is _OPEN or state is _CLOSING:
            if not data:
                self._eof(now)
            elif self._rlen:
                self._complete(data, now)
            else:
                self._parse(data, now)
        elif state is _CONNECTING:
            if not self._initiated:
                raise LocalProtocolError("call initiate() first", state=state.value)
            self._handshake(data, now)

    # ------------------------------------------------------------------------- internals --

    def _request_headers(self, key: str) -> list[tuple[str, str]]:
        options = self.options
        headers = [
            ("Host", host_header(self._host, self._port, self._tls)),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13"),
        ]
        protocols, identity = handshake_credentials(options)
        if options.subprotocol_auth:
            self._protocols = protocols
            headers.append(("Sec-WebSocket-Protocol", ", ".join(protocols)))
        if options.compression:
            headers.append(("Sec-WebSocket-Extensions", DEFLATE_OFFER))
        headers.extend(identity)
        return headers

    def _handshake(self, data: bytes, now: float) -> None:
        connection = self._h11
        assert connection is not None
        self._head_size += len(data)
        try:
            connection.receive_data(data)
            while True:
                event = connection.next_event()
                kind = type(event)
                if event is h11.NEED_DATA:
                    return
                if kind is h11.InformationalResponse or kind is h11.Response:
                    # h11 refuses a head still incomplete after MAX_RESPONSE_HEAD bytes;
                    # this, a longer one that arrived whole: the limit holds however the
                    # bytes were split
                    size = self._head_size - len(connection.trailing_data[0])
                    self._head_size -= size
                    if size > MAX_RESPONSE_HEAD:
                        raise h11.RemoteProtocolError("head too long", error_status_hint=431)
                if kind is h11.InformationalResponse:
                    assert isinstance(event, h11.InformationalResponse)
                    if event.status_code == 101:
                        self._upgraded(event, now)
                        return
                elif kind is h11.Response:
                    assert isinstance(event, h11.Response)
                    self._refusal = event
                elif kind is h11.Data:
                    assert isinstance(event, h11.Data)
                    body = self._refusal_body
                    body += event.data
                    if len(body) >= MAX_REFUSAL_BODY:
                        del body[MAX_REFUSAL_BODY:]
                        self._refused(now)
                elif kind is h11.EndOfMessage:
                    self._refused(now)
                else:  # pragma: no cover - h11 raises at EOF before a response
                    raise h11.RemoteProtocolError("the server closed the connection")
        except h11.RemoteProtocolError as exc:
            if exc.error_status_hint == 431:  # over max_incomplete_event_size
                what = "the response head" if self._refusal is None else "a line of the body"
                message = (
                    f"invalid answer to the WebSocket upgrade: {what} exceeds"
                    f" {MAX_RESPONSE_HEAD} bytes"
                )
            elif data:
                message = f"invalid answer to the WebSocket upgrade: {exc}"
            else:
                message = "the server closed the connection during the WebSocket upgrade"
            self._handshake_failed(RemoteProtocolError(message, state="CONNECTING"), now)

    def _refused(self, now: float) -> NoReturn:
        response = self._refusal
        assert response is not None
        error = HandshakeRefused(
            response.status_code,
            _headers(response.headers),
            bytes(self._refusal_body),
            reason=response.reason.decode("latin-1"),
            state="CONNECTING",
        )
        self._handshake_failed(error, now)

    def _handshake_failed(self, error: RemoteProtocolError, now: float) -> NoReturn:
        """End the handshake with ``error``, its message cleared of credentials first."""
        message = self._redact(error.message)
        if message != error.message:
            error.message = message
            error.args = (message,)
        self._h11 = None
        self._finish(None, message, now)
        raise error

    def _redact(self, text: str) -> str:
        """``text`` without the API key, nor the values of extra headers and URL query
        parameters named like credentials (``api-key``, ``token`` ...): a server may echo
        any of them (in a refusal's body, or as the subprotocol it selected)."""
        options = self.options
        secrets: list[tuple[str, str]] = []
        if options.api_key:
            secrets.append((options.api_key, "<api key>"))
        query = urlsplit(options.url).query
        for name, value in [*options.extra_headers, *parse_qsl(query, keep_blank_values=True)]:
            if len(value) >= 4 and _SECRET_NAME.search(name):
                secrets.append((value, "<redacted>"))
        for secret, mark in sorted(secrets, key=lambda pair: -len(pair[0])):
            text = text.replace(secret, mark)
        return text

    def _upgraded(self, response: h11.InformationalResponse, now: float) -> None:
        headers = _headers(response.headers)
        problem = self._check_upgrade(headers)
        if problem is not None:
            self._handshake_failed(
                RemoteProtocolError(
                    f"invalid WebSocket upgrade: {problem}", hint=1002, state="CONNECTING"
                ),
                now,
            )
        connection = self._h11
        assert connection is not None
        trailing = connection.trailing_data[0]  # (EOF is always fed in a later call)
        self._h11 = None
        self._response_head = "\n".join(f"{name}:{value}" for name, value in headers)
        self._state = _OPEN
        self._handshake_deadline = None
        interval = self.options.ping_interval
        self._next_ping = now + interval if interval is not None else None
        self.session.connection_made(now)
        self._drain_session()
        if trailing:
            self._parse(bytes(trailing), now)

    def _check_upgrade(self, headers: list[tuple[str, str]]) -> str | None:
        values: dict[str, list[str]] = {}
        for name, value in headers:
            values.setdefault(name, []).append(value)
        upgrade = _tokens(values.get("upgrade", []))
        if upgrade != ["websocket"]:
            return "the response's Upgrade header is not websocket"
        if "upgrade" not in _tokens(values.get("connection", [])):
            return "the response's Connection header lacks upgrade"
        accept = values.get("sec-websocket-accept", [])
        if accept != [self._accept.decode()]:
            return "Sec-WebSocket-Accept does not match the key sent"
        protocols = [
            p.strip() for v in values.get("sec-websocket-protocol", []) for p in v.split(",")
        ]
        if protocols:
            if len(protocols) != 1 or protocols[0] not in self._protocols:
                return f"the server selected subprotocol {', '.join(protocols)!r}, not offered"
            self.subprotocol = protocols[0]
        extensions = [
            e.strip() for v in values.get("sec-websocket-extensions", []) for e in v.split(",")
        ]
        extensions = [e for e in extensions if e]
        if not extensions:
            return None
        if not self.options.compression or len(extensions) != 1:
            return f"the server enabled extensions that were not offered: {', '.join(extensions)}"
        params = [p.strip() for p in extensions[0].split(";")]
        if params[0].lower() != "permessage-deflate":
            return f"the server enabled an extension that was not offered: {params[0]}"
        seen: set[str] = set()
        for param in params[1:]:
            name, equals, value = param.partition("=")
            name = name.strip().lower()
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            if name in seen:
                return f"permessage-deflate parameter {name} given twice"
            seen.add(name)
            if name in ("server_no_context_takeover", "client_no_context_takeover"):
                if equals:
                    return f"permessage-deflate parameter {name} takes no value"
            elif name in ("server_max_window_bits", "client_max_window_bits"):
                if value not in _WINDOW_BITS:
                    return f"permessage-deflate parameter {name} must be 8 to 15"
            else:
                return f"unknown permessage-deflate parameter {name!r}"
        self._deflate = True
        self._reset_inflater = "server_no_context_takeover" in seen
        return None

    # ------------------------------------------------------------------------------ frames --

    def _complete(self, data: bytes, now: float) -> None:
        """Finish the frame held from earlier reads with the start of ``data``, then parse
        the rest of ``data`` in place (copying only what the held frame needs)."""
        offset = 0
        size = len(data)
        while self._rlen:
            missing = self._rneed - self._rlen
            if size - offset < missing:
                self._rbuf.append(data[offset:] if offset else data)
                self._rlen += size - offset
                return
            self._rbuf.append(data[offset : offset + missing])
            offset += missing
            self._parse_pending(now)  # a whole frame, or a header that says how long it is
            if self._state is _CLOSED:
                return
        if offset < size:
            self._parse(data, now, offset)

    def _parse_pending(self, now: float) -> None:
        data = b"".join(self._rbuf)
        self._rbuf = []
        self._rlen = 0
        self._parse(data, now)

    def _resume(self) -> None:
        self._paused = False
        self._parse_pending(self._now)
        if self._eof_pending and not self._paused and self._state is not _CLOSED:
            self._eof(self._now)

    def _parse(self, buf: bytes, now: float, pos: int = 0) -> None:
        """Handle every complete frame in ``buf`` from ``pos``; keep the rest for later."""
        n = len(buf)
        need = 2
        events = self._events
        if events is None:
            events = self._events = deque()
        max_events = self._max_events
        max_size = self._max_size
        session = self.session
        receive = session.receive
        take_session_events = session.take_events
        try:
            while n - pos >= 2:
                b0 = buf[pos]
                b1 = buf[pos + 1]
                length = b1 & 0x7F
                if b1 & 0x80:
                    self._fail(1002, "the server sent a masked frame", now)
                if length < 126:
                    start = pos + 2
                elif length == 126:
                    if n - pos < 4:
                        need = 4
                        break
                    length = (buf[pos + 2] << 8) | buf[pos + 3]
                    if length < 126:
                        self._fail(1002, "frame length not in its shortest form", now)
                    start = pos + 4
                else:
                    if n - pos < 10:
                        need = 10
                        break
                    length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                    if length < 65536 or length >> 63:
                        self._fail(1002, "invalid 64-bit frame length", now)
                    start = pos + 10
                end = start + length
                if b0 == 0x81 and not self._frag_opcode:
                    # the hot path: one whole, uncompressed TEXT message
                    if length > max_size:
                        self._too_big(length, now)
                    if end > n:
                        need = end - pos
                        break
                    if len(events) >= max_events:
                        self._paused = True
                        break
                    payload = buf[start:end]
                    pos = end
                    if payload.isascii():
                        receive(payload, now)
                    else:
                        receive(self._utf8(payload, now), now)
                    events.extend(take_session_events())
                    continue
                self._check_header(b0, length, now)
                if end > n:
                    need = end - pos
                    break
                if len(events) >= max_events and not b0 & 0x08:
                    self._paused = True
                    break
                payload = buf[start:end]
                pos = end
                self._frame(b0, payload, now)
                if self._state is _CLOSED:
                    return
        except RemoteProtocolError as exc:
            if self._state is not _CLOSED:  # the session refused a message: not an event
                code = exc.hint if isinstance(exc.hint, int) else 1002
                self._abort(code, exc.message, now)
            raise
        except _Closed:
            return
        if pos < n:  # (always when paused: it stops before a complete frame)
            self._rbuf = [buf[pos:]]
            self._rlen = n - pos
            self._rneed = sys.maxsize if self._paused else need

    def _utf8(self, payload: bytes, now: float) -> str:
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            self._fail(1007, "a text message is not valid UTF-8", now)

    def _check_header(self, b0: int, length: int, now: float) -> None:
        opcode = b0 & 0x0F
        if opcode & 0x08:
            if opcode > PONG:
                self._fail(1002, f"reserved opcode {opcode:#x}", now)
            if not b0 & 0x80:
                self._fail(1002, "a control frame cannot be fragmented", now)
            if length > 125:
                self._fail(1002, "a control frame carries at most 125 bytes", now)
            if b0 & 0x70:
                self._fail(1002, "reserved bits set on a control frame", now)
            return
        if opcode > 2:
            self._fail(1002, f"reserved opcode {opcode:#x}", now)
        if b0 & 0x30:
            self._fail(1002, "reserved bits RSV2/RSV3 set", now)
        if opcode:
            if self._frag_opcode:
                self._fail(1002, "a message started before the previous one ended", now)
            if b0 & 0x40 and not self._deflate:
                self._fail(1002, "RSV1 set but no extension was negotiated", now)
            size = length
        else:
            if not self._frag_opcode:
                self._fail(1002, "a continuation frame without a message to continue", now)
            if b0 & 0x40:
                self._fail(1002, "RSV1 set on a continuation frame", now)
            if self._frag_count >= self._max_fragments:
                limit = self._max_fragments
                self._abort(
                    1009, f"a message in more than {limit} fragments exceeds max_fragments", now
                )
                raise _Closed
            size = self._frag_size + length
        if size > self._max_size:
            self._too_big(size, now)

    def _frame(self, b0: int, payload: bytes, now: float) -> None:
        opcode = b0 & 0x0F
        if opcode & 0x08:
            if opcode == PING:
                if self._state is _OPEN:
                    self._flush_session()  # keep the wire in the order things happened
                    self._send_frame(PONG, payload)
            elif opcode == PONG:
                if payload == self._ping_payload and self._state is _OPEN:
                    self._ping_payload = self._pong_deadline = None
                    interval = self.options.ping_interval
                    self._next_ping = now + interval if interval is not None else None
            else:
                self._on_close(payload, now)
            return
        fin = bool(b0 & 0x80)
        if opcode:
            self._frag_out = 0
            if fin:  # a whole message in one frame (compressed, or binary)
                if b0 & 0x40:
                    payload = self._inflate(payload, True, now)
                self._deliver(opcode, payload, now)
                return
            self._frag_opcode = opcode
            self._frag_compressed = bool(b0 & 0x40)
            self._frag_size = 0
            self._frag_count = 0
            # text is validated as it arrives, so that bad UTF-8 fails at once (RFC 6455 8.1)
            self._frag_decoder = _utf8_decoder() if opcode == TEXT else None
        self._frag_size += len(payload)
        self._frag_count += 1
        if self._frag_compressed:
            payload = self._inflate(payload, fin, now)
        decoder = self._frag_decoder
        if decoder is not None:
            try:
                text = decoder.decode(payload, fin)
            except UnicodeDecodeError:
                self._fail(1007, "a text message is not valid UTF-8", now)
            if text:  # (empty fragments are not kept)
                self._frag_text.append(text)
        elif payload:
            self._frag_chunks.append(payload)
        if not fin:
            return
        opcode = self._frag_opcode
        message: bytes | str = (
            "".join(self._frag_text) if decoder is not None else b"".join(self._frag_chunks)
        )
        self._frag_opcode = 0
        self._frag_chunks = []
        self._frag_text = []
        self._frag_decoder = None
        self._deliver(opcode, message, now)

    def _deliver(self, opcode: int, message: bytes | str, now: float) -> None:
        if opcode == TEXT:
            if type(message) is bytes and not message.isascii():
                message = self._utf8(message, now)
            self.session.receive(message, now)
            self._drain_session()
        else:
            self._drain_session()
            self._event_queue().append(
                ProtocolWarning(
                    message=f"ignored a binary message of {len(message)} bytes: Realtime"
                    " servers send text"
                )
            )

    def _inflate(self, data: bytes, fin: bool, now: float) -> bytes:
        inflater = self._inflater
        if inflater is None:
            inflater = self._inflater = zlib.decompressobj(-15)
        budget = self._max_size - self._frag_out
        try:
            out: bytes = inflater.decompress(data, budget + 1)
            if fin and not inflater.eof and not inflater.unconsumed_tail and len(out) <= budget:
                out += inflater.decompress(_TRAILER, budget + 1 - len(out))
        except zlib.error:
            self._fail(1007, "a compressed message does not inflate", now)
        if inflater.unconsumed_tail or len(out) > budget:
            self._too_big(self._max_size + 1, now)
        if inflater.eof and inflater.unused_data:
            self._fail(1007, "data after the end of a compressed message", now)
        if fin and (inflater.eof or self._reset_inflater):
            self._inflater = None
        self._frag_out += len(out)
        return out

    def _on_close(self, payload: bytes, now: float) -> None:
        if not payload:
            code, reason = 1005, ""
        elif len(payload) == 1:
            self._fail(1002, "a close frame with a 1-byte payload", now)
        else:
            code = int.from_bytes(payload[:2], "big")
            if not valid_close_code(code):
                self._fail(1002, f"invalid close code {code}", now)
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                self._fail(1007, "a close reason is not valid UTF-8", now)
        if self._state is _OPEN:
            self._flush_session()
            self._send_frame(CLOSE, b"" if code == 1005 else code.to_bytes(2, "big"))
        self._finish(code, reason or None, now)

    def _eof(self, now: float) -> None:
        if self._paused:
            self._eof_pending = True
            return
        self._finish(1006, "connection lost without a close frame", now)

    def _fail(self, code: int, message: str, now: float) -> NoReturn:
        """A protocol violation: close with ``code`` and raise."""
        state = self._state.value
        self._abort(code, message, now)
        raise RemoteProtocolError(message, hint=code, state=state)

    def _too_big(self, size: int, now: float) -> NoReturn:
        self._abort(
            1009,
            f"a message of {size} bytes or more exceeds max_message_size {self._max_size}",
            now,
        )
        raise _Closed

    def _abort(self, code: int, message: str, now: float) -> None:
        if self._state is _OPEN:
            self._flush_session()
            self._send_frame(CLOSE, close_payload(code, message))
        self._finish(code, message, now)

    def _finish(self, code: int | None, reason: str | None, now: float) -> None:
        """The connection is over: CLOSED, buffers dropped, the session told."""
        self._state = _CLOSED
        self._close_code = code
        self._close_reason = reason
        self._handshake_deadline = self._next_ping = self._pong_deadline = None
        self._close_deadline = None
        self._rbuf = []
        self._rlen = 0
        self._paused = self._eof_pending = False
        self._frag_chunks = []
        self._frag_text = []
        self._frag_decoder = None
        self._frag_opcode = 0
        self._inflater = None
        self.session.connection_lost(reason, now, code=code)
        self._drain_session()

    def _drain_session(self) -> None:
        taken = self.session.take_events()
        if taken:
            self._event_queue().extend(taken)

    def _event_queue(self) -> deque[SessionEvent]:
        events = self._events
        if events is None:
            events = self._events = deque()
        return events

    # ------------------------------------------------------------------------------ output --

    def _flush_session(self) -> None:
        messages = self.session.messages_to_send()
        if not messages:
            return
        out = self._out
        size = 0
        for text in messages:  # _send_frame(TEXT, ...) inlined: the send hot path
            payload = text.encode("utf-8")
            n = len(payload)
            pos = self._pool_pos
            pool = self._pool
            if pos + 4 > len(pool):
                pool = self._new_pool()
                pos = 0
            key = pool[pos : pos + 4]
            self._pool_pos = pos + 4
            if n < 126:
                header = bytes((0x81, 0x80 | n))
            elif n < 65536:
                header = _HEAD16(0x81, 0xFE, n)
            else:
                header = _HEAD64(0x81, 0xFF, n)
            frame = b"".join((header, key, mask(payload, key)))
            out.append(frame)
            size += len(frame)
        self._out_len += size

    def _new_pool(self) -> bytes:
        pool = self._pool = self._random(_MASK_POOL_SIZE)
        if len(pool) < 4:
            raise LocalProtocolError("random_bytes() returned too few bytes")
        return pool

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        """Queue a control frame (``payload`` of at most 125 bytes), masked."""
        pos = self._pool_pos
        pool = self._pool
        if pos + 4 > len(pool):
            pool = self._new_pool()
            pos = 0
        key = pool[pos : pos + 4]
        self._pool_pos = pos + 4
        frame = bytes((0x80 | opcode, 0x80 | len(payload))) + key + mask(payload, key)
        self._out.append(frame)
        self._out_len += len(frame)

    def _queue(self, data: bytes) -> None:
        self._out.append(data)
        self._out_len += len(data)


# ------------------------------------------------------------------------------- helpers --


def _check_header(name: object, value: object) -> None:
    if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
        raise LocalProtocolError(f"invalid header name {name!r}")
    if not isinstance(value, str) or not HEADER_VALUE.fullmatch(value):
        raise LocalProtocolError(f"invalid value for header {name!r}")


def _headers(headers: Any) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]


def _tokens(values: list[str]) -> list[str]:
    return [t.strip().lower() for v in values for t in v.split(",") if t.strip()]


def _error_object(body: bytes) -> dict[str, Any] | None:
    try:
        parsed = _decode_json(body)
    except (msgspec.DecodeError, RecursionError, UnicodeError):
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else None


def _retry_after(headers: list[tuple[str, str]]) -> float | None:
    found = dict(headers)
    milliseconds = _seconds(found.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000.0
    return _seconds(found.get("retry-after"))


def _seconds(value: str | None) -> float | None:
    """A non-negative number of seconds, or ``None`` (an HTTP date needs a clock: ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 and seconds != float("inf") else None
