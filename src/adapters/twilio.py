"""Phone calls from Twilio Media Streams bridged to a Realtime session (asyncio or Trio).

Two halves, usable apart:

- :func:`bridge_call` runs one call: a Twilio stream (any :class:`TwilioSocket`: ours below,
  or your web framework's WebSocket in a five-line wrapper) bridged by
  :class:`~rtproto.phone.TwilioBridge` to a Realtime WebSocket opened with
  :func:`~rtproto.adapters.connect` in the ``phone`` profile::

      async with bridge_call(twilio_socket, model="gpt-realtime", session={...}) as call:
          async for event in call:      # the session's events and the Twilio messages
              ...                       # commands: await call.connection.send_message(...)

- :func:`serve_twilio` accepts Twilio's WebSocket connections itself (HTTP upgrade and
  framing with wsproto, messages bounded, ``X-Twilio-Signature`` checked when given the auth
  token) and runs ``handler(socket)`` for each.

The call ends when Twilio's stream ends (``stop``, or its socket closes: the Realtime
connection is closed) or when the Realtime connection ends (Twilio's socket is closed).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Protocol

import anyio
import anyio.abc
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError as WsLocalProtocolError
from wsproto.utilities import RemoteProtocolError as WsRemoteProtocolError

from rtproto.errors import ConnectionClosed, LocalProtocolError, RtprotoError
from rtproto.phone import TwilioBridge, TwilioBridgeOptions
from rtproto.session import SessionOptions
from rtproto.session.options import Profile
from rtproto.wire.twilio import MAX_TWILIO_MESSAGE_SIZE, SIGNATURE_HEADER, verify_twilio_signature

from ._core import ApiKey, Event
from .aio import AsyncConnection, connect

__all__ = ["MediaStreamSocket", "TwilioCall", "TwilioServer", "bridge_call", "serve_twilio"]

_READ_SIZE = 65536


class TwilioSocket(Protocol):
    """The Twilio side of a call: text messages in and out."""

    async def receive(self) -> str | bytes | None:
        """The next message; None once the socket closed."""

    async def send(self, text: str) -> None:
        """Send a message (raise ``OSError`` or an anyio stream error when closed)."""

    async def close(self) -> None:
        """Close the socket (the call is over)."""


class _Signal:
    """Wakes the task waiting for the next :meth:`set`."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def set(self) -> None:
        self._event.set()
        self._event = anyio.Event()

    async def wait(self) -> None:
        await self._event.wait()


class TwilioCall:
    """One bridged call (see :func:`bridge_call`): iterate it for events.

    Attributes:
        connection: the Realtime connection (its commands: ``send_message``,
            ``send_function_call_output``, ``update_session``, ``interrupt`` ...).
        bridge: the :class:`~rtproto.phone.TwilioBridge` (``start``, ``stream_sid``).
    """

    def __init__(
        self,
        twilio: TwilioSocket,
        connection: AsyncConnection,
        options: TwilioBridgeOptions | None,
        max_queued_events: int,
    ) -> None:
        self.connection = connection
        self._twilio = twilio
        self._options = options
        self._bridge: TwilioBridge | None = None
        self._send_events, self._events = anyio.create_memory_object_stream[Event](
            max_queued_events
        )
        self._timer_moved = _Signal()
        self._tasks: anyio.abc.TaskGroup | None = None
        #: Stops the call's own tasks (never the task iterating the call).
        self._stop = anyio.CancelScope()
        self._failure: BaseException | None = None
        self._twilio_open = True

    @property
    def bridge(self) -> TwilioBridge:
        if self._bridge is None:
            raise LocalProtocolError("the call has not started: use it with 'async with'")
        return self._bridge

    async def __aenter__(self) -> TwilioCall:
        await self.connection.__aenter__()
        try:
            self._bridge = TwilioBridge(self.connection.session, self._options)
        except BaseException:
            await self.connection.__aexit__(None, None, None)
            raise
        self._tasks = anyio.create_task_group()
        await self._tasks.__aenter__()
        self._tasks.start_soon(self._run_tasks)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.connection.close()
            await self._close_twilio()
            self._stop.cancel()
            assert self._tasks is not None
            await self._tasks.__aexit__(None, None, None)
        finally:
            await self.connection.__aexit__(exc_type, exc, tb)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self._events.receive()
        except anyio.EndOfStream:
            if self._failure is not None:
                raise self._failure from None
            raise StopAsyncIteration from None

    async def interrupt(self) -> None:
        """Stop the assistant: Twilio's buffer is cleared, the audio cut where it was heard."""
        await self.connection.interrupt()

    async def close(self) -> None:
        """Hang up: close the Realtime connection and Twilio's socket."""
        await self.connection.close()
        await self._close_twilio()

    # ---------------------------------------------------------------------- the tasks --

    async def _run_tasks(self) -> None:
        with self._stop:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._from_realtime)
                tasks.start_soon(self._from_twilio)
                tasks.start_soon(self._run_timer)

    async def _from_realtime(self) -> None:
        bridge = self.bridge
        try:
            async for event in self.connection:
                bridge.handle_session_event(event)
                await self._flush_twilio()
                self._timer_moved.set()
                await self._send_events.send(event)
        except RtprotoError as exc:
            self._failure = exc
        finally:
            await self._close_twilio()
            self._send_events.close()
            self._stop.cancel()

    async def _from_twilio(self) -> None:
        bridge = self.bridge
        while self._twilio_open:
            try:
                message = await self._twilio.receive()
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                message = None
            if message is None:
                self._twilio_open = False
                bridge.twilio_closed()
            else:
                try:
                    await self.connection._apply(
                        bridge.receive_twilio, message, anyio.current_time()
                    )
                except ConnectionClosed:
                    return  # the Realtime side ended: _from_realtime closes Twilio's socket
            for event in bridge.events():
                try:
                    await self._send_events.send(event)
                except anyio.ClosedResourceError:
                    return  # the call is over (_from_realtime ended it)
            self._timer_moved.set()
            if bridge.ended:
                break
        await self.connection.close()

    async def _run_timer(self) -> None:
        bridge = self.bridge
        while True:
            deadline = bridge.get_timer()
            if deadline is None:
                await self._timer_moved.wait()
                continue
            delay = deadline - anyio.current_time()
            if delay > 0:
                with anyio.move_on_after(delay):
                    await self._timer_moved.wait()
                continue
            try:
                await self.connection._apply(bridge.handle_timer, anyio.current_time())
            except ConnectionClosed:
                return

    async def _flush_twilio(self) -> None:
        messages = self.bridge.twilio_messages_to_send()
        if not self._twilio_open:
            return
        try:
            for text in messages:
                await self._twilio.send(text)
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._twilio_open = False
            self.bridge.twilio_closed()
            await self.connection.close()

    async def _close_twilio(self) -> None:
        if self._twilio_open:
            self._twilio_open = False
            with anyio.CancelScope(shield=True):
                await self._twilio.close()


def bridge_call(
    twilio: TwilioSocket,
    url: str | None = None,
    *,
    model: str | None = None,
    api_key: ApiKey | None = None,
    session: Mapping[str, Any] | SessionOptions | None = None,
    bridge_options: TwilioBridgeOptions | None = None,
    max_queued_events: int = 1024,
    **connect_options: Any,
) -> TwilioCall:
    """Bridge one Twilio stream to a Realtime WebSocket, for ``async with``.

    Args:
        twilio: the Twilio WebSocket, accepted (``serve_twilio`` hands you one).
        url, model, api_key: as :func:`~rtproto.adapters.connect`.
        session: the session configuration (G.711 mu-law both ways by default), or
            complete :class:`~rtproto.session.SessionOptions` in the ``phone`` profile.
        bridge_options: padding and bounds of the bridge.
        max_queued_events: events held for the application before the call stops reading.
        connect_options: more :func:`~rtproto.adapters.connect` arguments (``ws_options``,
            timeouts, ``ssl_context``). No ``reconnect``: a call's context is its session.
    """
    connection = connect(
        url,
        model=model,
        api_key=api_key,
        session=phone_session(session, model, connect_options),
        max_queued_events=max_queued_events,
        **connect_options,
    )
    return TwilioCall(twilio, connection, bridge_options, max_queued_events)


def phone_session(
    session: Mapping[str, Any] | SessionOptions | None,
    model: str | None,
    connect_options: Mapping[str, Any],
) -> SessionOptions:
    """A bridged call's session options: the ``phone`` profile around a configuration (a
    bridge checks complete options itself); no reconnect among the connect options."""
    if "reconnect" in connect_options:
        raise LocalProtocolError("a bridged call does not reconnect: its bridge is its session")
    if isinstance(session, SessionOptions):
        return session
    return SessionOptions(profile=Profile.PHONE, model=model, session=session)


# ------------------------------------------------------------------ accepting streams --


class MediaStreamSocket:
    """Twilio's WebSocket, accepted (server role): text messages bounded to
    ``max_message_size`` (a larger one closes the socket with 1009)."""

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        ws: WSConnection,
        request: Request,
        max_message_size: int,
    ) -> None:
        self._stream = stream
        self._ws = ws
        #: The upgrade request (``target``: path and query; ``extra_headers``).
        self.request = request
        self._max = max_message_size
        self._parts: list[str] = []
        self._size = 0
        self._pending: list[str] = []
        self._closed = False
        self._lock = anyio.Lock()

    async def receive(self) -> str | None:
        while not self._pending:
            if self._closed:
                return None
            try:
                data = await self._stream.receive(_READ_SIZE)
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                data = b""
            if not data:
                self._closed = True
                return None
            try:
                self._ws.receive_data(data)
                await self._handle_events()
            except WsRemoteProtocolError:
                await self._abort()
        return self._pending.pop(0)

    async def send(self, text: str) -> None:
        if self._closed or self._ws.state is not ConnectionState.OPEN:
            raise anyio.ClosedResourceError
        await self._write(self._ws.send(Message(data=text)))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._ws.state is ConnectionState.OPEN:
                await self._write(self._ws.send(CloseConnection(code=code, reason=reason)))
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        finally:
            await self._stream.aclose()

    async def _handle_events(self) -> None:
        for event in self._ws.events():
            if isinstance(event, TextMessage):
                self._size += len(event.data)
                if self._size > self._max:
                    await self.close(1009, f"message over {self._max} bytes")
                    return
                self._parts.append(event.data)
                if event.message_finished:
                    self._pending.append("".join(self._parts))
                    self._parts.clear()
                    self._size = 0
            elif isinstance(event, BytesMessage):
                await self.close(1003, "Twilio messages are text")
                return
            elif isinstance(event, Ping):
                await self._write(self._ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                if self._ws.state is ConnectionState.REMOTE_CLOSING:
                    await self._write(self._ws.send(event.response()))
                self._closed = True
                await self._stream.aclose()
                return

    async def _write(self, data: bytes) -> None:
        async with self._lock:
            await self._stream.send(data)

    async def _abort(self) -> None:
        self._closed = True
        await self._stream.aclose()


class TwilioServer:
    """A listening :func:`serve_twilio`: ``url`` is what TwiML's ``<Stream url=...>`` needs
    (behind your public host and TLS in production)."""

    def __init__(self, listener: anyio.abc.Listener[Any], host: str, path: str) -> None:
        self._listener = listener
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        #: The port listened on (the one chosen when 0 was asked for).
        self.port: int = port
        authority = f"[{host}]" if ":" in host else host
        self.url = f"ws://{authority}:{port}{path}"
        #: Streams accepted so far, and upgrades refused.
        self.accepted = 0
        self.refused = 0


@asynccontextmanager
async def serve_twilio(
    handler: Callable[[MediaStreamSocket], Awaitable[Any]],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    path: str = "/media-stream",
    auth_token: str | None = None,
    public_url: str | None = None,
    max_message_size: int = MAX_TWILIO_MESSAGE_SIZE,
    handshake_timeout: float = 10.0,
) -> AsyncIterator[TwilioServer]:
    """Accept Twilio's media-stream WebSockets on ``path``; ``handler(socket)`` runs each
    (the socket is closed when it returns).

    Args:
        auth_token: your Twilio auth token: the upgrade must carry a valid
            ``X-Twilio-Signature`` of ``public_url`` (else HTTP 403).
        public_url: the URL Twilio connects to (``wss://your.host/media-stream``), as
            signed; default ``wss://<Host header><request target>``.
    """
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    server = TwilioServer(listener, host, path)

    async def accept(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            socket = None
            with anyio.move_on_after(handshake_timeout):
                socket = await _upgrade(
                    stream, server, path, auth_token, public_url, max_message_size
                )
            if socket is None:
                return
            try:
                await handler(socket)
            finally:
                with anyio.CancelScope(shield=True):
                    await socket.close()

    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, accept, tasks)
        try:
            yield server
        finally:
            tasks.cancel_scope.cancel()


async def _upgrade(
    stream: anyio.abc.SocketStream,
    server: TwilioServer,
    path: str,
    auth_token: str | None,
    public_url: str | None,
    max_message_size: int,
) -> MediaStreamSocket | None:
    """Read the upgrade request and accept it (or refuse it: wrong path, bad signature)."""
    ws = WSConnection(ConnectionType.SERVER)
    while True:
        try:
            data = await stream.receive(_READ_SIZE)
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            return None
        try:
            ws.receive_data(data)
            request = next((e for e in ws.events() if isinstance(e, Request)), None)
        except WsRemoteProtocolError as exc:  # not an upgrade: wsproto says how to answer
            server.refused += 1
            with contextlib.suppress(WsLocalProtocolError):
                await stream.send(ws.send(exc.event_hint or RejectConnection(status_code=400)))
            return None
        if request is not None:
            break
    status = 0
    if request.target.split("?", 1)[0] != path:
        status = 404
    elif auth_token is not None:
        headers = {name.decode("latin-1").lower(): value for name, value in request.extra_headers}
        signature = headers.get(SIGNATURE_HEADER.lower(), b"").decode("latin-1")
        url = public_url or f"wss://{request.host}{request.target}"
        if not verify_twilio_signature(auth_token, url, signature):
            status = 403
    if status:
        server.refused += 1
        await stream.send(ws.send(RejectConnection(status_code=status)))
        return None
    server.accepted += 1
    await stream.send(ws.send(AcceptConnection()))
    return MediaStreamSocket(stream, ws, request, max_message_size)
