"""What the drivers share: everything that is not I/O.

Both drivers (:mod:`rtproto.adapters.aio` on anyio, :mod:`rtproto.adapters.sync` on threads)
are a read loop, a locked write, a timer and a reconnect loop around one
:class:`DriverCore`. The core owns the :class:`~rtproto.wire.RealtimeWebSocket`, the bounded
queue of events waiting for the application, the bytes waiting for the socket, and every
decision: which events end a connection, whether to reconnect, what to replay, which error an
I/O failure becomes. The drivers only move bytes, sleep and wake each other, so the two cannot
drift apart in behaviour; ``tests/test_drivers.py`` runs one behavioural suite over both.

The core is not thread-safe: the thread driver calls it under its lock, the anyio driver from
one event loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from rtproto.dialect import Dialect
from rtproto.errors import (
    ConnectionClosed,
    LocalProtocolError,
    RemoteProtocolError,
    RtprotoError,
)
from rtproto.session import (
    ClientSession,
    ConnectionChange,
    ConnectionStatus,
    SessionEvent,
    SessionOptions,
)
from rtproto.wire import (
    HandshakeRefused,
    HandshakeTimeout,
    RealtimeWebSocket,
    WebSocketOptions,
    WebSocketState,
    realtime_url,
    split_url,
)

from .reconnect import (
    DriverEvent,
    Reconnected,
    ReconnectFailed,
    Reconnecting,
    ReconnectPolicy,
    Replayed,
    replay_items,
)

if TYPE_CHECKING:  # ssl loads only for wss:// (about 5 MB)
    import ssl

__all__ = [
    "EPHEMERAL_KEY_PREFIX",
    "ApiKey",
    "ConnectError",
    "ConnectPlan",
    "ConnectTimeout",
    "CoreViews",
    "DriverCore",
    "Event",
    "keyed_options",
    "plan_connect",
]

log = logging.getLogger("rtproto.adapters")

#: What a driver's iteration yields: server events, the core's transport events, and the
#: driver's own events (reconnects).
Event = SessionEvent | DriverEvent

#: Bytes asked of the socket per read.
READ_SIZE = 65536
#: Seconds a single write may take before the peer is declared gone.
DEFAULT_WRITE_TIMEOUT = 30.0
#: Session updates remembered for a reconnect.
MAX_REPLAYED_UPDATES = 256
#: A refused handshake with one of these statuses is worth another attempt when reconnecting.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: The model of the default URL when ``connect`` is given neither a URL nor a model.
DEFAULT_MODEL = "gpt-realtime"


#: What ``api_key`` may be: the key, or a function called for a fresh one before every
#: connection attempt (the first and each reconnect). The async driver awaits what the
#: function returns when it is awaitable; the thread driver takes sync functions only.
ApiKey = str | Callable[[], str | Awaitable[str]]
#: How an ephemeral client secret starts: the only kind of key a subprotocol may carry
#: unless the application explicitly allows another.
EPHEMERAL_KEY_PREFIX = "ek_"

_DEFAULT_OPTIONS_URL = WebSocketOptions.__dataclass_fields__["url"].default
#: Stands in for a key function's key while ``plan_connect`` validates the options.
_PLACEHOLDER_KEY = EPHEMERAL_KEY_PREFIX + "placeholder"


class ConnectError(RtprotoError):
    """The TCP connection or TLS handshake failed (``__cause__`` holds the OS error)."""


class ConnectTimeout(ConnectError, TimeoutError):
    """The TCP connection or TLS handshake took longer than ``connect_timeout``."""


@dataclass(frozen=True)
class ConnectPlan:
    """Everything needed to open (and re-open) a connection, resolved once by ``connect``.
    Its ``repr`` leaves out the URL's query (it may carry a key)."""

    url: str = field(repr=False)
    #: The model the URL's ``?model=`` names (None for a ``call_id`` URL, or a URL that
    #: names none: then the ``model`` argument, when given).
    model: str | None
    tls: bool
    host: str
    port: int
    target: str = field(repr=False)
    ws_options: WebSocketOptions
    session_options: SessionOptions
    ssl_context: ssl.SSLContext | None
    connect_timeout: float
    handshake_timeout: float
    close_timeout: float
    write_timeout: float
    max_queued_events: int
    reconnect: ReconnectPolicy | None
    #: The application's key function, called before every connection attempt (None: the
    #: key, if any, is ``ws_options.api_key``). Left out of the repr (a ``partial`` may
    #: hold a key).
    key_function: Callable[[], object] | None = field(default=None, repr=False)
    #: The application allowed a key other than an ``ek_`` client secret in a subprotocol.
    allow_api_key_in_subprotocol: bool = False

    @property
    def where(self) -> str:
        """The URL without its query, for reprs and logs (a query may carry secrets)."""
        path = self.target.split("?", 1)[0]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'wss' if self.tls else 'ws'}://{host}:{self.port}{path}"


def _check_subprotocol_key(key: str, options: WebSocketOptions, allowed: bool) -> None:
    """The browser-style guard: a subprotocol carries only ``ek_`` client secrets (unless
    allowed). The message never includes the key."""
    if options.subprotocol_auth and not allowed and not key.startswith(EPHEMERAL_KEY_PREFIX):
        raise LocalProtocolError(
            "subprotocol_auth sends the api_key in the Sec-WebSocket-Protocol header, as a"
            " browser must: use an ephemeral client secret (ek_...) there, not a standard API"
            " key (or pass dangerously_allow_api_key_in_subprotocol=True)"
        )


def plan_connect(
    url: str | None,
    *,
    model: str | None,
    api_key: str | Callable[[], object] | None,
    session: Mapping[str, Any] | SessionOptions | None,
    ws_options: WebSocketOptions | None,
    connect_timeout: float,
    handshake_timeout: float,
    ssl_context: ssl.SSLContext | None,
    max_queued_events: int,
    reconnect: ReconnectPolicy | bool | None,
    write_timeout: float = DEFAULT_WRITE_TIMEOUT,
    dangerously_allow_api_key_in_subprotocol: bool = False,
    platform_tls: bool = False,
) -> ConnectPlan:
    """Resolve ``connect``'s arguments: URL, key (argument, options, ``OPENAI_API_KEY``), TLS.

    A callable ``api_key`` is kept in the plan, not called: the driver calls it before every
    connection attempt (:meth:`DriverCore.keyed_options` checks what it returns). Everything
    else about the options is validated here as if it had returned an ``ek_`` key.

    With ``ws_options.subprotocol_auth`` (browser style: the key travels in the
    ``Sec-WebSocket-Protocol`` header) a key that is not an ``ek_`` client secret is refused
    unless ``dangerously_allow_api_key_in_subprotocol``, as the JS SDK refuses one in a
    browser unless ``useInsecureApiKey``.

    The URL is the argument, else ``ws_options.url`` when it was set, else the service's URL
    for ``model`` (``DEFAULT_MODEL`` when None). ``ws_options`` supplies everything else
    about the WebSocket; this function's own ``handshake_timeout`` replaces the one in it.
    Everything is validated here, before any I/O. With ``platform_tls`` the platform
    does TLS (a Worker's ``fetch``): no ``ssl_context`` is made or accepted.

    The session's model comes from the URL (``?model=``) and cannot be changed by
    ``session.update``, so the initial ``session.update`` names a model only when the
    application gave ``model`` (never for a ``call_id`` URL: the call's model is fixed).

    Raises:
        LocalProtocolError: a bad URL, key, header, session configuration or dialect mix;
            a ``model`` other than the one the URL names; a standard key for subprotocol
            auth (see above).
        ValueError: ``max_queued_events`` below 1, or ``ssl_context`` with a ``ws://`` URL.
    """
    if reconnect is True:
        reconnect = ReconnectPolicy()
    elif reconnect is False:
        reconnect = None
    if max_queued_events < 1:
        raise ValueError(f"max_queued_events must be >= 1, not {max_queued_events}")
    if url is None and ws_options is not None and ws_options.url != _DEFAULT_OPTIONS_URL:
        url = ws_options.url
    if url is None:
        url = realtime_url(model=DEFAULT_MODEL if model is None else model)
    key_function: Callable[[], object] | None = None
    if callable(api_key):
        key_function, api_key = api_key, None
    else:
        if api_key is not None and not isinstance(api_key, str):
            raise LocalProtocolError(
                f"api_key must be a str or a callable returning one, not {type(api_key).__name__}"
            )
        if api_key is None and ws_options is not None:
            api_key = ws_options.api_key
        if api_key is None:
            api_key = os.environ.get("OPENAI_API_KEY") or None
    if ws_options is None:
        options = WebSocketOptions(
            url=url, api_key=api_key, handshake_timeout=float(handshake_timeout)
        )
    else:
        options = dataclasses.replace(
            ws_options, url=url, api_key=api_key, handshake_timeout=float(handshake_timeout)
        )
    allow = bool(dangerously_allow_api_key_in_subprotocol)
    if key_function is not None:
        # what the key may not change (extra headers against Authorization...): now
        dataclasses.replace(options, api_key=_PLACEHOLDER_KEY)
    elif api_key is not None:
        _check_subprotocol_key(api_key, options, allow)
    tls, host, port, target = split_url(url)
    if platform_tls:
        if ssl_context is not None:
            raise ValueError("ssl_context cannot be used: the platform does TLS")
    elif not tls:
        if ssl_context is not None:
            raise ValueError("ssl_context is for wss:// URLs; this one is ws://")
    elif ssl_context is None:
        import ssl

        ssl_context = ssl.create_default_context()  # verifies against the system CAs
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    url_model = query.get("model")
    if "call_id" in query:
        model = None  # the call's model was chosen when the call was made
    elif model is not None and url_model is not None and model != url_model:
        raise LocalProtocolError(
            f"model={model!r} but the URL asks for model {url_model!r}: the URL chooses the"
            " model, and a session.update cannot change it"
        )
    if isinstance(session, SessionOptions):
        session_options = session
    else:
        dialect = Dialect.BETA if options.beta else Dialect.GA
        session_options = SessionOptions(model=model, session=session, dialect=dialect)
    RealtimeWebSocket(options, session_options)  # validates the pair (dialects, config)
    return ConnectPlan(
        url=url,
        model=url_model if url_model is not None else model,
        tls=tls,
        host=host,
        port=port,
        target=target,
        ws_options=options,
        session_options=session_options,
        ssl_context=ssl_context,
        connect_timeout=float(connect_timeout),
        handshake_timeout=float(handshake_timeout),
        close_timeout=float(options.close_timeout),
        write_timeout=float(write_timeout),
        max_queued_events=max_queued_events,
        reconnect=reconnect,
        key_function=key_function,
        allow_api_key_in_subprotocol=allow,
    )


def keyed_options(plan: ConnectPlan, key: object) -> WebSocketOptions:
    """The plan's options with the key its key function returned (the driver calls the
    function before each attempt, awaiting it if need be).

    Raises:
        LocalProtocolError: not a non-empty str (an un-awaited coroutine is closed), a
            key a header or subprotocol cannot carry, or a standard key for subprotocol
            auth. The message never includes the key.
    """
    if inspect.iscoroutine(key):
        key.close()  # (no "never awaited" warning)
        raise LocalProtocolError(
            "the api_key callable returned a coroutine: the thread driver does not await;"
            " give connect_sync a sync callable (or use connect())"
        )
    if not isinstance(key, str):
        raise LocalProtocolError(
            f"the api_key callable must return a non-empty str, not {type(key).__name__}"
        )
    if not key:
        raise LocalProtocolError("the api_key callable returned an empty str")
    options = dataclasses.replace(plan.ws_options, api_key=key)
    _check_subprotocol_key(key, options, plan.allow_api_key_in_subprotocol)
    return options


class DriverCore:
    """The non-I/O half of a driver (see the module docs)."""

    __slots__ = (
        "_attempt",
        "_began",
        "_closed_sent",
        "_events",
        "_last_failure",
        "_limit",
        "_opened",
        "_out",
        "_paused",
        "_previous",
        "_resume_at",
        "_retry_after",
        "_up_since",
        "_updates",
        "close_code",
        "close_reason",
        "closing",
        "discarded",
        "disconnected",
        "dropped_audio",
        "ended",
        "failure",
        "plan",
        "ws",
    )

    def __init__(self, plan: ConnectPlan) -> None:
        self.plan = plan
        self.ws: RealtimeWebSocket | None = None
        #: Events waiting for the application; None while there are none (an idle
        #: connection holds no deque).
        self._events: deque[Event] | None = None
        self._out = bytearray()
        self._limit = plan.max_queued_events
        self._resume_at = plan.max_queued_events // 2
        self._paused = False
        #: The current connection is over (its disconnected ``ConnectionChange`` is queued).
        self.disconnected = False
        #: No more events will come: the last one is queued.
        self.ended = False
        #: The application asked to close.
        self.closing = False
        #: Why the connection ended, when the peer's protocol error ended it (raised by the
        #: driver's iteration after the last event).
        self.failure: RtprotoError | None = None
        self.close_code: int | None = None
        self.close_reason: str | None = None
        #: Events dropped after ``close()`` because nobody was reading any more.
        self.discarded = 0
        #: ``send_audio`` calls dropped while reconnecting (see :meth:`command`).
        self.dropped_audio = 0
        self._attempt = 0
        #: When the current connection's upgrade succeeded (None once its drop was handled).
        self._up_since: float | None = None
        self._retry_after: float | None = None
        self._last_failure = ""
        self._previous: ClientSession | None = None
        #: The application's session updates, re-sent after a reconnect (the newest
        #: MAX_REPLAYED_UPDATES of them).
        self._updates: deque[Any] | None = (
            deque(maxlen=MAX_REPLAYED_UPDATES) if plan.reconnect is not None else None
        )
        self._opened = False
        self._began = False  # the current connection reported connecting
        self._closed_sent = False

    # ------------------------------------------------------------------- connection --

    def keyed_options(self, key: object) -> WebSocketOptions:
        """The connection's options with the key the plan's key function returned (see
        :func:`keyed_options`)."""
        return keyed_options(self.plan, key)

    def start(self, now: float, options: WebSocketOptions | None = None) -> None:
        """Begin a connection (the first, or a reconnect): queue the upgrade request.
        ``options``: from :meth:`keyed_options` when the plan has a key function."""
        if self.ws is not None and self._opened:
            self._previous = self.ws.session  # the session whose history a reconnect replays
        self._opened = False
        self._began = False
        if options is None:
            options = self.plan.ws_options
        self.ws = RealtimeWebSocket(options, self.plan.session_options)
        self._out.clear()
        self.disconnected = False
        self._closed_sent = False
        self.ws.initiate(now)
        self._pump()

    @property
    def current(self) -> RealtimeWebSocket:
        """The current connection's protocol object."""
        assert self.ws is not None, "start() first"
        return self.ws

    @property
    def session(self) -> ClientSession:
        """The current connection's session (a new one after each reconnect)."""
        return self.current.session

    @property
    def upgraded(self) -> bool:
        """The current connection completed its upgrade (it may have ended since: a server
        may close right after the 101, as the service does for an invalid key)."""
        return self._began

    @property
    def handshaking(self) -> bool:
        """The upgrade is still under way."""
        return self.current.state is WebSocketState.CONNECTING and not self.disconnected

    @property
    def transport_done(self) -> bool:
        """The socket has nothing more to carry: close it once the output is written."""
        return self.disconnected or self.current.state is WebSocketState.CLOSED

    def feed(self, data: bytes, now: float) -> None:
        """Bytes from the socket (``b""``: it reached EOF or broke).

        Raises:
            HandshakeRefused: the server answered the upgrade with an HTTP error.
            RemoteProtocolError: during the upgrade only; later ones end the connection
                (recorded as :attr:`failure`) instead of escaping.
        """
        ws = self.current
        if self.disconnected:
            return
        try:
            ws.receive_data(data, now)
        except RemoteProtocolError as exc:
            self._pump()
            if not self._began:
                raise  # the upgrade failed: the caller of connect() gets the error
            self._protocol_failed(exc, now)
        self._pump()

    def lost(self, now: float) -> None:
        """The socket broke (an OS error reading or writing): the connection is over (1006)."""
        if self.disconnected or self.ws is None:
            return
        with contextlib.suppress(RtprotoError):
            self.ws.receive_data(b"", now)
        self._pump()
        self._ensure_disconnected(1006, "connection lost")

    def timer(self) -> float | None:
        """When :meth:`fire_timer` is next due."""
        if self.ws is None or self.disconnected:
            return None
        return self.ws.get_timer()

    def fire_timer(self, now: float) -> None:
        """Run the protocol's timers (keepalive, close timeout; during the upgrade, its
        timeout, which raises :class:`~rtproto.wire.HandshakeTimeout`)."""
        ws = self.current
        if self.disconnected:
            return
        try:
            ws.handle_timer(now)
        finally:
            self._pump()

    def finish_connection(self) -> None:
        """The driver closed the socket: make sure the end was reported."""
        self._ensure_disconnected(1006, "connection lost")

    # ---------------------------------------------------------------------- commands --

    @property
    def reconnecting(self) -> bool:
        """No connection is open, and the reconnect policy is re-opening one (it has not
        given up, and the application has not closed)."""
        ws = self.ws
        return (
            ws is not None
            and not self.ended
            and (self.disconnected or ws.state is WebSocketState.CONNECTING)
            and self.should_reconnect()
        )

    def drop_audio(self) -> bool:
        """``send_audio`` while reconnecting: count it and tell the caller to return quietly
        (audio captured meanwhile has no session to go to; the microphone task carries on).
        False when it must raise instead: the connection is open, or over for good."""
        if not self.reconnecting:
            return False
        self.dropped_audio += 1
        return True

    def command(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call a session command by name, then collect what it produced.

        Raises:
            rtproto.ConnectionClosed: the connection is over (or being re-opened: drivers
                drop ``send_audio`` then, see :meth:`drop_audio`).
        """
        session = self._open_session(name.replace("_", " "))
        result = self.apply(getattr(session, name), *args, **kwargs)
        if name == "update_session" and self._updates is not None:
            self._updates.append(args[0])  # re-applied after a reconnect, in order
        return result

    def apply(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``call`` (which uses the session's commands, as a phone bridge does), then
        collect what it produced (see :meth:`command`)."""
        self._open_session("send")
        try:
            return call(*args, **kwargs)
        finally:
            self._pump()

    def _open_session(self, what: str) -> ClientSession:
        """The current session, when its connection is open."""
        ws = self.ws
        if ws is None or self.disconnected or ws.state is WebSocketState.CONNECTING:
            raise ConnectionClosed(
                f"cannot {what}: the connection is closed",
                code=self.close_code,
                reason=self.close_reason,
                state="CLOSED",
            )
        return ws.session

    def close(self, code: int, reason: str, now: float) -> bool:
        """The application closes: start the closing handshake. False if nothing to close.

        Raises:
            LocalProtocolError: a code that cannot be sent, or a reason over 123 bytes.
        """
        ws = self.ws
        if ws is None or self.disconnected or self._closed_sent:
            self.closing = True
            return False
        if ws.state is WebSocketState.OPEN:
            ws.close(code, reason, now=now)  # validates first: a bad code changes nothing
            self.closing = self._closed_sent = True
            self._pump()
            return True
        self.closing = True
        return False

    def abort(self, now: float) -> None:
        """Give up on the connection at once (close took too long, or the driver stops)."""
        self.closing = True
        self.lost(now)
        self.end()

    # ----------------------------------------------------------------------- output --

    @property
    def has_output(self) -> bool:
        return bool(self._out)

    def take_output(self) -> bytes:
        """Every byte due on the socket, in order; clears them."""
        data = bytes(self._out)
        self._out.clear()
        return data

    def write_failed(self, now: float) -> ConnectionClosed:
        """A write failed: the connection is lost; the error for the caller of the send."""
        self.lost(now)
        return ConnectionClosed(
            "the connection was lost while sending",
            code=self.close_code,
            reason=self.close_reason,
            state="CLOSED",
        )

    # ----------------------------------------------------------------------- events --

    @property
    def queued(self) -> int:
        """Events waiting for the application."""
        events = self._events
        return len(events) if events is not None else 0

    def may_read(self) -> bool:
        """Whether the reader may read the socket now.

        Backpressure with hysteresis: reading stops when ``max_queued_events`` events wait,
        and resumes once the application has taken half of them (:meth:`pop` says when).
        After ``close()`` reading never stops (the close reply must get through).
        """
        if self.closing:
            return True
        if not self._paused and self.queued >= self._limit:
            self._paused = True
        return not self._paused

    @property
    def reading_paused(self) -> bool:
        """The reader is held back by backpressure (the protocol's timers wait too)."""
        return self._paused and not self.closing

    def pop(self) -> tuple[Event | None, bool]:
        """The next event for the application (None when none is waiting), and whether the
        reader, paused by backpressure, may now resume."""
        events = self._events
        if not events:
            return None, False
        event = events.popleft()
        if not events:
            self._events = None
        if self._paused and len(events) <= self._resume_at:
            self._paused = False
            return event, True
        return event, False

    def end(self) -> None:
        """No more events will come."""
        self.ended = True

    def _append(self, event: Event) -> None:
        events = self._events
        if events is None:
            events = self._events = deque()
        elif (
            self.closing and len(events) >= self._limit and not isinstance(event, ConnectionChange)
        ):
            self.discarded += 1  # the application closed and stopped reading
            return
        events.append(event)

    def _pump(self) -> None:
        ws = self.ws
        if ws is None:
            return
        while True:
            events = ws.take_events()  # (may parse input held back: take its output after)
            data = ws.data_to_send()
            if data:
                self._out += data
            if not events:
                return
            if self.closing or ConnectionChange in map(type, events):
                for event in events:
                    if type(event) is not ConnectionChange or self._connection_change(event):
                        self._append(event)
            elif self._events is None:
                self._events = deque(events)
            else:
                self._events.extend(events)

    def _connection_change(self, event: ConnectionChange) -> bool:
        """Record what a connection change says; False when it is not to be reported."""
        if event.status is not ConnectionStatus.DISCONNECTED:
            self._began = True
            return True
        if self.disconnected:
            return False  # reported already
        self.disconnected = True
        if not self._began:
            return False  # a failed upgrade: its error says it all
        self.close_code = event.code
        self.close_reason = event.reason
        return True

    def _ensure_disconnected(self, code: int, reason: str) -> None:
        if not self.disconnected:
            self.disconnected = True
            if self._began:  # a failed upgrade is reported by its error, not an event
                self.close_code = code
                self.close_reason = reason
                self._append(
                    ConnectionChange(status=ConnectionStatus.DISCONNECTED, code=code, reason=reason)
                )

    def _protocol_failed(self, exc: RemoteProtocolError, now: float) -> None:
        """The peer broke the protocol after the upgrade. The wire has queued a close frame
        (1002, 1007...) and reported the end; the error is raised after the last event."""
        self.failure = exc
        log.debug("protocol error from the server: %s", exc)
        self._pump()
        if self.current.state is WebSocketState.OPEN:  # defensive: the wire closes itself
            self.current.close(1002, "protocol error", now=now)
            self._pump()

    # -------------------------------------------------------------------- reconnect --

    def should_reconnect(self) -> bool:
        """After a connection ended: is it worth re-opening?"""
        policy = self.plan.reconnect
        return (
            policy is not None
            and not self.closing
            and self.failure is None
            and self.close_code in policy.codes
        )

    def next_attempt(self, now: float) -> float | None:
        """Start the next reconnect attempt: its delay (seconds), after queueing
        :class:`Reconnecting`; or None, after queueing :class:`ReconnectFailed`.

        The attempt count restarts only after a connection that proved healthy: one that
        stayed up ``policy.healthy_after`` seconds. A server that accepts the upgrade and
        then drops (or closes 1011) every time uses up the attempts, with the backoff
        growing, instead of being re-opened forever.
        """
        policy = self.plan.reconnect
        assert policy is not None
        up_since, self._up_since = self._up_since, None
        if up_since is not None:  # an open connection dropped (not a failed attempt)
            if now - up_since >= policy.healthy_after:
                self._attempt = 0
            self._last_failure = self.close_reason or f"closed with code {self.close_code}"
        self._attempt += 1
        if self._attempt > policy.max_attempts:
            self.give_up()
            return None
        delay = max(0.0, float(policy.backoff(self._attempt)))
        if self._retry_after is not None:  # lengthens the wait, up to max_retry_after
            delay = max(delay, min(self._retry_after, policy.max_retry_after))
            self._retry_after = None
        log.debug("reconnect attempt %d in %.3f s", self._attempt, delay)
        self._append(
            Reconnecting(
                attempt=self._attempt,
                delay=delay,
                reason=self._last_failure,
                code=self.close_code,
            )
        )
        return delay

    def attempt_failed(self, exc: BaseException, *, key: bool = False) -> bool:
        """A reconnect attempt failed; whether trying again makes sense.

        ``key``: the key function raised ``exc`` or returned no usable key (see
        :meth:`keyed_options`). That counts as a failed attempt, retried with the backoff
        (a token service may be down for a moment), up to ``max_attempts``.
        """
        failure = f"{type(exc).__name__}: {exc}"
        self._last_failure = f"the api_key callable failed: {failure}" if key else failure
        log.debug("reconnect attempt %d failed: %s", self._attempt, self._last_failure)
        if key:
            return True
        if self.ws is not None and not self.disconnected:
            self.disconnected = True  # the failed attempt's events end here, unreported
        if isinstance(exc, HandshakeRefused):
            retry_after = exc.retry_after
            if isinstance(retry_after, (int, float)):
                self._retry_after = float(retry_after)
            return exc.status in RETRYABLE_STATUSES
        return isinstance(exc, (OSError, ConnectError, HandshakeTimeout, RtprotoError))

    def give_up(self) -> None:
        """Stop reconnecting: queue :class:`ReconnectFailed` and end."""
        policy = self.plan.reconnect
        attempts = min(self._attempt, policy.max_attempts) if policy is not None else 0
        self._append(ReconnectFailed(attempts=attempts, reason=self._last_failure))
        self.end()

    def opened(self, now: float) -> None:
        """The upgrade succeeded. After a reconnect: report it and replay the history.

        The attempt count is kept until the connection proves healthy (see
        :meth:`next_attempt`)."""
        self._opened = True
        self._up_since = now
        policy = self.plan.reconnect
        if policy is None or self._attempt == 0:
            return
        self._append(Reconnected(attempt=self._attempt))
        for update in self._updates or ():  # the configuration as the application left it
            self.session.update_session(update)
        previous, self._previous = self._previous, None
        if policy.replay_history and previous is not None:
            creates, restored, lost = replay_items(previous.history)
            for create in creates:
                self.session.send_event(create)
            self._pump()
            self._append(Replayed(restored=restored, lost=lost))


class CoreViews:
    """What the asyncio/Trio and the blocking connections both show of their core."""

    __slots__ = ()
    _core: DriverCore

    @property
    def session(self) -> ClientSession:
        """The session (history, usage, configuration): read it, do not call its commands."""
        return self._core.session

    @property
    def queued_events(self) -> int:
        """Events waiting for the application (at most about ``max_queued_events``)."""
        return self._core.queued

    @property
    def dropped_audio(self) -> int:
        """``send_audio`` calls dropped because a reconnect was under way (no session to
        take the audio); they raise ``ConnectionClosed`` once the connection is over."""
        return self._core.dropped_audio

    @property
    def close_code(self) -> int | None:
        """The close code of the last connection, once it ended."""
        return self._core.close_code

    @property
    def close_reason(self) -> str | None:
        """The close reason of the last connection, once it ended."""
        return self._core.close_reason
