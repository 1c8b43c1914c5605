"""The Cloudflare Workers driver: a Realtime session over a ``fetch()``-upgraded WebSocket.

In a Python Worker (Pyodide, asyncio)::

    from rtproto.adapters.cloudflare import connect_cloudflare

    async with connect_cloudflare(model="gpt-realtime", api_key=env.OPENAI_API_KEY) as conn:
        await conn.send_message("Say hello.")
        async for event in conn:
            ...

A Worker cannot open an outbound WebSocket with the ``WebSocket`` constructor; this driver
asks ``fetch`` for an upgrade (the request is :func:`rtproto.wire.cloudflare.plan_fetch_upgrade`'s),
``accept()``s the socket it returns and is connected at once. The platform frames the
messages, so the driver is the session core alone: each message goes to
:meth:`~rtproto.session.ClientSession.receive`, what the session sends goes to the socket's
``send``. Events and commands are those of :class:`rtproto.adapters.AsyncConnection`.

The platform is a seam (:data:`Upgrader`): by default the Workers ``fetch`` (through
Pyodide's ``js`` module, :func:`workers_upgrade`); tests and other runtimes that frame
messages themselves pass their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol

from rtproto import models as M
from rtproto.errors import ConnectionClosed, LocalProtocolError
from rtproto.session import (
    ClientSession,
    ProtocolWarning,
    SessionEvent,
    SessionOptions,
)
from rtproto.wire import WebSocketOptions
from rtproto.wire._frames import valid_close_code
from rtproto.wire.cloudflare import FetchUpgrade, plan_fetch_upgrade, refused_upgrade

from ._core import ApiKey, ConnectPlan, keyed_options, plan_connect

__all__ = [
    "MessageChannel",
    "MessageListener",
    "Upgrader",
    "WorkersConnection",
    "connect_cloudflare",
    "workers_upgrade",
]

log = logging.getLogger("rtproto.adapters")


class MessageChannel(Protocol):
    """An open, message-framed WebSocket (a Worker's, after ``accept()``)."""

    def send(self, message: str) -> None:
        """Queue one text message (raises when the socket is closed)."""

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake (or reply to the peer's)."""


class MessageListener(Protocol):
    """What a channel reports to the driver."""

    def opened(self, channel: MessageChannel) -> None:
        """The socket is accepted; called before any message is delivered."""

    def message(self, data: str | bytes) -> None:
        """One whole message."""

    def closed(self, code: int, reason: str) -> None:
        """The socket closed (1006: it broke with no close frame)."""


#: Opens the socket ``request`` describes and reports to the listener (``opened`` before it
#: returns). Raises :class:`~rtproto.wire.HandshakeRefused` when the server refuses.
Upgrader = Callable[[FetchUpgrade, MessageListener], Awaitable[MessageChannel]]


def connect_cloudflare(
    url: str | None = None,
    *,
    model: str | None = None,
    api_key: ApiKey | None = None,
    session: Mapping[str, Any] | SessionOptions | None = None,
    ws_options: WebSocketOptions | None = None,
    max_queued_events: int = 1024,
    upgrade: Upgrader | None = None,
    dangerously_allow_api_key_in_subprotocol: bool = False,
) -> WorkersConnection:
    """A Realtime connection from a Cloudflare Worker, for ``async with``.

    Args:
        url: the WebSocket URL; default ``wss://api.openai.com/v1/realtime?model=<model>``
            (fetched as ``https://``).
        model, api_key, session: as for :func:`rtproto.adapters.connect`. In a Worker the key
            usually comes from the environment binding (``env.OPENAI_API_KEY``): there is no
            ``$OPENAI_API_KEY``. A callable is called (and awaited) for the key on entry.
        ws_options: headers (organization, project, user agent, extra headers), beta
            dialect, subprotocol auth, ``max_message_size``, ``close_timeout``. Keepalive,
            compression and fragment limits are the platform's.
        max_queued_events: events held for the application; the platform pushes messages
            and cannot be paused, so one more closes the connection (1008) rather than grow.
        upgrade: how the socket is opened (default :func:`workers_upgrade`, the Workers
            ``fetch``).

    Raises (on entering ``async with``):
        rtproto.wire.HandshakeRefused: the response had no WebSocket (``status``, ``body``,
            ``error``: an OpenAI error body's).
        LocalProtocolError: bad arguments (raised here, before any I/O), or a key function
            that returned no non-empty str.
    """
    plan = plan_connect(
        url,
        model=model,
        api_key=api_key,
        session=session,
        ws_options=ws_options,
        connect_timeout=10,
        handshake_timeout=10,
        ssl_context=None,
        max_queued_events=max_queued_events,
        reconnect=None,
        dangerously_allow_api_key_in_subprotocol=dangerously_allow_api_key_in_subprotocol,
        platform_tls=True,
    )
    return WorkersConnection(plan, upgrade or workers_upgrade)


class WorkersConnection:
    """One Realtime session over a message-framed WebSocket (see the module docs).

    Iterate it for events (server events and transport events, then ``None``/the end once
    the connection is over); call the same commands as
    :class:`~rtproto.adapters.AsyncConnection`.
    """

    def __init__(self, plan: ConnectPlan, upgrade: Upgrader) -> None:
        self._plan = plan
        self._upgrade = upgrade
        self._session: ClientSession | None = None
        self._channel: MessageChannel | None = None
        self._events: deque[SessionEvent] = deque()
        self._readable = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._entered = False
        self._closing = False
        self._ended = False
        #: The close code and reason the connection ended with (None while open).
        self.close_code: int | None = None
        self.close_reason: str | None = None

    def __repr__(self) -> str:
        state = "ended" if self._ended else "closing" if self._closing else "open"
        return f"<WorkersConnection {self._plan.where} {state}>"

    @property
    def session(self) -> ClientSession:
        """The session core (history, usage, configuration); read it, do not drive it."""
        if self._session is None:
            raise LocalProtocolError("the connection is not open yet: use async with")
        return self._session

    @property
    def queued_events(self) -> int:
        """Events waiting for the application."""
        return len(self._events)

    # ------------------------------------------------------------------- life cycle --

    async def __aenter__(self) -> WorkersConnection:
        if self._entered:
            raise LocalProtocolError("a WorkersConnection can be entered once")
        self._entered = True
        self._loop = asyncio.get_running_loop()
        options = self._plan.ws_options
        if self._plan.key_function is not None:
            key = self._plan.key_function()
            if inspect.isawaitable(key):
                key = await key
            options = keyed_options(self._plan, key)
        self._session = ClientSession(self._plan.session_options)
        await self._upgrade(plan_fetch_upgrade(options), self)
        if self._channel is None:
            raise LocalProtocolError("the upgrader returned without calling opened()")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close: send a close frame, wait (at most ``close_timeout``) for the server's
        reply, then drop the socket. Idempotent; events already queued stay readable.

        Raises:
            LocalProtocolError: a code that cannot be sent, or a reason over 123 bytes.
        """
        if not isinstance(code, int) or not valid_close_code(code):
            raise LocalProtocolError(f"close code {code} cannot be sent")
        if len(reason.encode("utf-8")) > 123:
            raise LocalProtocolError("a close reason holds at most 123 bytes of UTF-8")
        if self._channel is None or self._ended:
            return
        if not self._closing:
            self._closing = True
            self.session.close()
            self._close_channel(code, reason)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wait_ended(), self._plan.close_timeout)
        if not self._ended:
            log.debug("close: no reply within %.1f s; dropping", self._plan.close_timeout)
            self.closed(1006, "no close reply from the server")

    async def _wait_ended(self) -> None:
        while not self._ended:
            self._readable.clear()
            await self._readable.wait()

    # --------------------------------------------------------- the channel's reports --

    def opened(self, channel: MessageChannel) -> None:
        """(For the upgrader.) The socket is accepted: the session is connected."""
        if self._channel is not None:
            raise LocalProtocolError("opened() was called twice")
        self._channel = channel
        self.session.connection_made(self._now())
        self._pump()

    def message(self, data: str | bytes) -> None:
        """(For the upgrader.) One whole message from the server."""
        if self._ended:
            return
        session = self.session
        if isinstance(data, str):
            session.receive(data, self._now())
        else:
            self._queue(
                ProtocolWarning(
                    message=f"ignored a binary message of {len(data)} bytes: Realtime"
                    " servers send text"
                )
            )
        self._pump()

    def closed(self, code: int, reason: str) -> None:
        """(For the upgrader.) The socket closed; 1006 when it broke."""
        if self._ended:
            return
        if not self._closing:  # the server closed first: reply, as a WebSocket must
            self._closing = True
            self._close_channel(code if valid_close_code(code) else 1000, "")
        self._ended = True
        self.close_code, self.close_reason = code, reason
        self.session.connection_lost(reason or None, self._now(), code=code)
        self._pump()
        self._readable.set()

    # ------------------------------------------------------------------------ events --

    def __aiter__(self) -> AsyncIterator[SessionEvent]:
        return self

    async def __anext__(self) -> SessionEvent:
        event = await self.next_event()
        if event is None:
            raise StopAsyncIteration
        return event

    async def next_event(self, timeout: float | None = None) -> SessionEvent | None:
        """The next event; ``None`` once the connection is over and every event was taken.

        Raises:
            TimeoutError: no event within ``timeout`` seconds.
        """
        if timeout is None:
            return await self._next_event()
        try:
            return await asyncio.wait_for(self._next_event(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no event within {timeout} s") from None

    async def _next_event(self) -> SessionEvent | None:
        while True:
            if self._events:
                return self._events.popleft()
            if self._ended:
                return None
            self._readable.clear()
            await self._readable.wait()

    # ---------------------------------------------------------------------- commands --

    async def send_audio(self, audio: Any, *, commit: bool = False) -> None:
        """Append audio to the input buffer (see ``ClientSession.send_audio``)."""
        self._command("send_audio", audio, commit=commit)

    async def commit_audio(self) -> None:
        self._command("commit_audio")

    async def clear_audio(self) -> None:
        self._command("clear_audio")

    async def send_message(self, message: Any, *, trigger_response: bool = True) -> None:
        """A user message (text or content parts); starts a response unless told not to."""
        self._command("send_message", message, trigger_response=trigger_response)

    async def send_function_call_output(
        self, call_id: str, output: str, *, start_response: bool = True
    ) -> None:
        self._command("send_function_call_output", call_id, output, start_response=start_response)

    async def create_response(self, options: Mapping[str, Any] | None = None) -> None:
        self._command("create_response", options)

    async def interrupt(self, *, cancel: bool = True) -> None:
        """Cancel the active response and cut the assistant's audio at what was played."""
        self._command("interrupt", self._now(), cancel=cancel)

    async def update_session(self, config: Mapping[str, Any] | M.RealtimeSession) -> None:
        self._command("update_session", config)

    async def playback_progress(self, item_id: str, played_ms: float) -> bool:
        result: bool = self._command("playback_progress", item_id, played_ms)
        return result

    async def reset_history(self, items: Sequence[M.Item]) -> None:
        self._command("reset_history", items)

    async def send_event(self, event: Mapping[str, Any] | Any) -> None:
        """Any client event, sent as it is."""
        self._command("send_event", event)

    def _command(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self._channel is None or self._ended or self._closing:
            raise ConnectionClosed(
                f"cannot {name.replace('_', ' ')}: the connection is closed",
                code=self.close_code,
                reason=self.close_reason,
                state="CLOSED",
            )
        try:
            return getattr(self.session, name)(*args, **kwargs)
        finally:
            self._pump()

    # ----------------------------------------------------------------------- internals --

    def _now(self) -> float:
        assert self._loop is not None  # (set on entry, before the channel can report)
        return self._loop.time()

    def _queue(self, event: SessionEvent) -> None:
        self._events.append(event)
        self._readable.set()

    def _pump(self) -> None:
        """Move the session's output on: events to the queue, messages to the socket, its
        timer to the loop."""
        session = self.session
        events = session.take_events()
        if events:
            self._events.extend(events)
            self._readable.set()
            if len(self._events) > self._plan.max_queued_events and not self._closing:
                self._overflow()
        channel = self._channel
        for text in session.messages_to_send():
            if channel is None or self._ended:
                break
            try:
                channel.send(text)
            except Exception as exc:  # the platform's error: the socket is closing or gone
                log.debug("send failed: %r", exc)
                self._send_failed()
                return
        self._arm_timer(session.get_timer())

    def _send_failed(self) -> None:
        """The socket refused a message: it is closing. Commands stop now; the events end
        with the platform's close event (its code), or after ``close_timeout`` with 1006
        when none comes."""
        if not self._closing:
            self._closing = True
            self.session.close()
        assert self._loop is not None
        self._loop.call_later(self._plan.close_timeout, self._no_close_event)

    def _no_close_event(self) -> None:
        if not self._ended:
            self.closed(1006, "the socket failed while sending")

    def _overflow(self) -> None:
        """More events than ``max_queued_events`` wait: the platform cannot be paused, so
        the connection ends instead of holding more."""
        log.warning("%d events unread: closing the connection (1008)", len(self._events))
        self._closing = True
        self.session.close()
        self._close_channel(1008, "the application did not read its events")

    def _close_channel(self, code: int, reason: str) -> None:
        channel = self._channel
        if channel is not None:
            try:
                channel.close(code, reason)
            except Exception as exc:  # closed already
                log.debug("close failed: %r", exc)

    def _arm_timer(self, deadline: float | None) -> None:
        timer = self._timer
        if timer is not None:
            if deadline is not None and timer.when() == deadline:
                return
            timer.cancel()
            self._timer = None
        if deadline is not None and not self._ended:
            assert self._loop is not None
            self._timer = self._loop.call_at(deadline, self._fire_timer)

    def _fire_timer(self) -> None:
        self._timer = None
        if not self._ended:
            self.session.handle_timer(self._now())
            self._pump()


# --------------------------------------------------------------- the Workers platform --


async def workers_upgrade(request: FetchUpgrade, listener: MessageListener) -> MessageChannel:
    """Open ``request`` with the Workers ``fetch`` (Pyodide's ``js`` module) and accept the
    WebSocket it returns.

    Raises:
        rtproto.wire.HandshakeRefused: the response has no ``webSocket``.
    """
    from js import Object, fetch  # type: ignore[import-not-found]  # (Pyodide only)
    from pyodide.ffi import create_proxy, to_js  # type: ignore[import-not-found]

    init = to_js(
        {"method": request.method, "headers": request.header_dict()},
        dict_converter=Object.fromEntries,
    )
    response = await fetch(request.url, init)
    socket: Any = getattr(response, "webSocket", None)
    if _js_missing(socket):
        body = await response.text()
        headers = [(str(name), str(value)) for name, value in response.headers.entries()]
        raise refused_upgrade(int(response.status), str(body), headers)
    socket.accept()
    channel = _WorkersChannel(socket)
    listener.opened(channel)

    def on_message(event: Any) -> None:
        data = event.data
        listener.message(data if isinstance(data, str) else bytes(data.to_bytes()))

    def on_close(event: Any) -> None:
        listener.closed(int(event.code), str(event.reason))
        asyncio.get_event_loop().call_soon(channel.release)  # (not from inside a proxy)

    def on_error(event: Any) -> None:
        listener.closed(1006, "the socket failed")
        asyncio.get_event_loop().call_soon(channel.release)

    for kind, handler in (("message", on_message), ("close", on_close), ("error", on_error)):
        proxy = create_proxy(handler)
        channel.proxies.append(proxy)
        socket.addEventListener(kind, proxy)
    return channel


def _js_missing(value: object) -> bool:
    """JavaScript ``null``/``undefined`` as Pyodide shows them (``None``, or ``jsnull``)."""
    return value is None or type(value).__name__ in ("JsNull", "JsUndefined")


class _WorkersChannel:
    """A Workers ``WebSocket`` after ``accept()``."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.proxies: list[Any] = []

    def send(self, message: str) -> None:
        self.socket.send(message)

    def close(self, code: int, reason: str) -> None:
        self.socket.close(code, reason)

    def release(self) -> None:
        """Free the listeners' proxies (the socket will call them no more)."""
        for proxy in self.proxies:
            with contextlib.suppress(Exception):
                proxy.destroy()
        self.proxies.clear()
