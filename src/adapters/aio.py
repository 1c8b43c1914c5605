"""The async driver: one code path for asyncio and Trio, on anyio.

``async with connect(...) as conn`` opens the socket (TLS verified against the system CAs by
default), performs the upgrade, and starts one task: a reader that feeds the protocol what
the socket delivers and, when the protocol's timer is due first, runs its keepalive and close
timeouts instead.
``async for event in conn`` yields server events, transport events and driver events;
commands (``await conn.send_audio(...)``) call the session and write what it produced under
one lock. The non-I/O half is shared with the thread driver (:mod:`._core`).

Backpressure: events wait in a queue bounded by ``max_queued_events``. When it is full the
reader stops reading the socket, so TCP flow control slows the server down and memory stays
flat; the protocol's own timers pause too (an application that reads slowly is not a dead
peer). Reading resumes as soon as the application takes an event.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.lowlevel

from rtproto import models as M
from rtproto.errors import ConnectionClosed, LocalProtocolError, RtprotoError
from rtproto.session import SessionOptions
from rtproto.wire import HandshakeTimeout, WebSocketOptions

from ._core import (
    DEFAULT_WRITE_TIMEOUT,
    READ_SIZE,
    ApiKey,
    ConnectError,
    ConnectPlan,
    ConnectTimeout,
    CoreViews,
    DriverCore,
    Event,
    log,
    plan_connect,
)
from .reconnect import ReconnectPolicy

if TYPE_CHECKING:  # ssl loads only for wss:// (about 5 MB)
    import ssl

__all__ = ["AsyncConnection", "connect"]

#: What the socket raises when the peer went away or the stream broke.
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
)


class _Signal:
    """Wakes every task waiting for the next :meth:`set` (an ``anyio.Event`` that re-arms).

    The event is made only when a task waits (an idle connection holds none of them).
    """

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event: anyio.Event | None = None

    def set(self) -> None:
        event, self._event = self._event, None
        if event is not None:
            event.set()

    async def wait(self) -> None:
        """Wait for a ``set()`` made after this call (check your condition first)."""
        event = self._event
        if event is None:
            event = self._event = anyio.Event()
        await event.wait()


def connect(
    url: str | None = None,
    *,
    model: str | None = None,
    api_key: ApiKey | None = None,
    session: Mapping[str, Any] | SessionOptions | None = None,
    ws_options: WebSocketOptions | None = None,
    connect_timeout: float = 10,
    handshake_timeout: float = 10,
    ssl_context: ssl.SSLContext | None = None,
    max_queued_events: int = 1024,
    reconnect: ReconnectPolicy | bool | None = None,
    write_timeout: float = DEFAULT_WRITE_TIMEOUT,
    dangerously_allow_api_key_in_subprotocol: bool = False,
) -> AsyncConnection:
    """A Realtime connection over WebSocket, for ``async with`` (asyncio or Trio).

    Args:
        url: the WebSocket URL; default ``wss://api.openai.com/v1/realtime?model=<model>``.
        model: the model: for the default URL (``gpt-realtime`` when None) and, when given,
            the initial ``session.update``. A URL chooses its own model (``?model=``): a
            different one here raises ``LocalProtocolError``; with a ``call_id`` URL it is
            ignored (the call's model is fixed).
        api_key: sent as ``Authorization: Bearer``; default ``$OPENAI_API_KEY``. Never shown
            in reprs or logs. A callable (sync, or async / returning an awaitable, which is
            awaited) is called for a fresh key before every connection attempt, the first
            and each reconnect: an expired ``ek_`` client secret is not sent again.
        session: the initial session configuration (a mapping, GA or flat shape) or complete
            :class:`~rtproto.session.SessionOptions`.
        ws_options: WebSocket options (headers, limits, keepalive); ``url``, ``api_key`` and
            ``handshake_timeout`` given here replace theirs.
        connect_timeout: seconds for TCP connect plus the TLS handshake.
        handshake_timeout: seconds for the HTTP upgrade.
        ssl_context: for ``wss://``; default ``ssl.create_default_context()`` (verified).
        max_queued_events: events held for the application before the reader stops reading.
        reconnect: re-open dropped connections: a
            :class:`~rtproto.adapters.ReconnectPolicy` (``True``: the default policy);
            off by default.
        write_timeout: seconds one write may take before the connection is declared lost.
        dangerously_allow_api_key_in_subprotocol: with ``ws_options.subprotocol_auth``
            (the key in the ``Sec-WebSocket-Protocol`` header, browser style) accept a key
            that is not an ``ek_`` client secret; refused with ``LocalProtocolError``
            otherwise.

    Raises (on entering ``async with``):
        ConnectError / ConnectTimeout: TCP or TLS failed.
        rtproto.wire.HandshakeRefused: the server answered the upgrade with an HTTP error
            (``status``, ``body``, ``error``).
        rtproto.wire.HandshakeTimeout: the upgrade took longer than ``handshake_timeout``.
        LocalProtocolError: the ``api_key`` callable returned no non-empty str (what it
            raises propagates as it is).
    """
    plan = plan_connect(
        url,
        model=model,
        api_key=api_key,
        session=session,
        ws_options=ws_options,
        connect_timeout=connect_timeout,
        handshake_timeout=handshake_timeout,
        ssl_context=ssl_context,
        max_queued_events=max_queued_events,
        reconnect=reconnect,
        write_timeout=write_timeout,
        dangerously_allow_api_key_in_subprotocol=dangerously_allow_api_key_in_subprotocol,
    )
    return AsyncConnection(plan)


class AsyncConnection(CoreViews):
    """An open Realtime connection (see :func:`connect`). Iterate it for events."""

    __slots__ = (
        "_closing",
        "_core",
        "_done",
        "_entered",
        "_finished",
        "_open_scope",
        "_plan",
        "_readable",
        "_room",
        "_stream",
        "_task_group",
        "_wait_scope",
        "_writing",
        "_written",
    )

    def __init__(self, plan: ConnectPlan) -> None:
        self._core = DriverCore(plan)
        self._plan = plan
        self._stream: anyio.abc.ByteStream | None = None
        # The write lock (an anyio.Lock costs a deque per connection): held while a task
        # writes; the others wait for ``_written``.
        self._writing = False
        self._written = _Signal()
        self._readable = _Signal()  # events were queued, or the end came
        self._room = _Signal()  # the reader, paused by backpressure, may resume
        self._closing = _Signal()  # close() was called
        self._finished = _Signal()  # the runner ended (then ``_done``): no socket, no tasks
        self._done = False
        self._task_group: anyio.abc.TaskGroup | None = None
        #: The reader's wait for the socket, bounded by the protocol's timer (see _serve).
        self._wait_scope: anyio.CancelScope | None = None
        #: A reconnect attempt's upgrade (close() cancels it when it gives up waiting).
        self._open_scope: anyio.CancelScope | None = None
        self._entered = False

    def __repr__(self) -> str:
        ws = self._core.ws
        state = ws.state.name if ws is not None else "NEW"
        return f"<AsyncConnection {self._plan.where} state={state} queued={self._core.queued}>"

    # ------------------------------------------------------------------- life cycle --

    async def __aenter__(self) -> AsyncConnection:
        if self._entered:
            raise LocalProtocolError("an AsyncConnection can be entered once")
        self._entered = True
        await self._open(await self._resolve_key())
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self._run)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task_group = self._task_group
        try:
            await self.close()
        finally:
            if task_group is not None:
                task_group.cancel_scope.cancel()
                await task_group.__aexit__(None, None, None)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close: send a close frame, wait (at most ``close_timeout``) for the server's
        reply, then drop the socket. Idempotent; events already queued stay readable."""
        core = self._core
        if self._task_group is None:
            return  # never entered (or the connect failed): nothing to close
        already = core.closing
        sent = core.close(code, reason, anyio.current_time())
        self._closing.set()
        self._room.set()  # a reader paused by backpressure resumes to see the reply
        self._timer_moved()
        if self._open_scope is not None:
            # no connection to close gracefully: a reconnect attempt (TCP, TLS or upgrade)
            # is under way. Cancel it now; the runner ends without connecting again.
            self._open_scope.cancel()
        if sent:  # (a writer busy with a big write writes the close frame after it)
            with anyio.CancelScope(shield=True):
                await self._flush(raise_closed=False, wait=False)
        if self._done:
            return
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(self._plan.close_timeout + 0.5):
                while not self._done:
                    await self._finished.wait()
            if not self._done:
                if not already:
                    log.debug("close: no reply within %.1f s; dropping", self._plan.close_timeout)
                core.abort(anyio.current_time())
                # stop the runner wherever it waits: for the socket, for room in the
                # queue, for a reconnect attempt's upgrade (it then ends by itself)
                self._stop_reader()
                if self._open_scope is not None:
                    self._open_scope.cancel()
                await self._close_stream()
                self._readable.set()

    # ------------------------------------------------------------------------ events --

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        event = await self.next_event()
        if event is None:
            raise StopAsyncIteration
        return event

    async def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event; ``None`` once the connection is over and every event was taken.

        Raises:
            TimeoutError: no event within ``timeout`` seconds.
            RemoteProtocolError: after the last event, when the server's protocol error
                ended the connection.
        """
        if timeout is None:
            return await self._next_event()
        with anyio.fail_after(timeout):
            return await self._next_event()

    async def _next_event(self) -> Event | None:
        core = self._core
        while True:
            event, resume = core.pop()
            if event is not None:
                if resume:
                    self._room.set()  # (the reader runs the timers again too)
                return event
            if core.ended:
                if core.failure is not None:
                    raise core.failure
                return None
            await self._readable.wait()

    # ---------------------------------------------------------------------- commands --

    async def send_audio(
        self, pcm: bytes | bytearray | memoryview | Any, *, commit: bool = False
    ) -> None:
        """Append audio (bytes in the input format, or an int16 array) to the input buffer.

        While the reconnect policy re-opens a dropped connection the audio is dropped
        quietly (counted in :attr:`dropped_audio`); once the connection is over for good
        this raises ``ConnectionClosed`` like every command.
        """
        core = self._core
        if core.drop_audio():
            return
        try:
            await self._command("send_audio", pcm, commit=commit)
        except ConnectionClosed:
            if not core.drop_audio():  # the write found the drop: a reconnect follows
                raise

    async def commit_audio(self) -> None:
        """Commit the input buffer as a user item (when turn detection is off)."""
        await self._command("commit_audio")

    async def clear_audio(self) -> None:
        """Discard uncommitted input audio."""
        await self._command("clear_audio")

    async def send_message(
        self,
        message: str | Sequence[M.ContentPart] | M.MessageItem,
        *,
        trigger_response: bool = True,
        previous_item_id: str | None = None,
    ) -> None:
        """Add a user message (after ``previous_item_id`` when given); by default a response
        follows."""
        await self._command(
            "send_message",
            message,
            trigger_response=trigger_response,
            previous_item_id=previous_item_id,
        )

    async def add_image(
        self,
        image: str | bytes | bytearray | memoryview,
        *,
        detail: str | None = None,
        trigger_response: bool = True,
    ) -> None:
        """Add a user message holding one image (a URL, or PNG/JPEG/GIF/WebP bytes)."""
        await self._command("add_image", image, detail=detail, trigger_response=trigger_response)

    async def send_function_call_output(
        self, call_id: str, output: str, *, start_response: bool = True
    ) -> None:
        """Return a function call's result; by default a response follows."""
        await self._command(
            "send_function_call_output", call_id, output, start_response=start_response
        )

    async def send_mcp_response(
        self, request: M.McpApprovalRequestItem | str, approved: bool, *, reason: str | None = None
    ) -> None:
        """Answer a hosted MCP tool's approval request (the request item, or its id)."""
        await self._command("send_mcp_response", request, approved, reason=reason)

    async def create_response(
        self, options: M.ResponseCreateParams | Mapping[str, Any] | None = None
    ) -> None:
        """Ask for a response (deferred while another one runs)."""
        await self._command("create_response", options)

    async def interrupt(self, *, cancel: bool = True) -> None:
        """Stop the assistant: cancel the response, truncate what was not heard."""
        await self._command("interrupt", anyio.current_time(), cancel=cancel)

    async def update_session(self, config: Mapping[str, Any] | M.RealtimeSession) -> None:
        """Change the session configuration (only the fields given)."""
        await self._command("update_session", config)

    async def playback_progress(self, item_id: str, played_ms: float) -> bool:
        """Report how much of an item's audio the user heard; False if it is not tracked."""
        return bool(await self._command("playback_progress", item_id, played_ms))

    async def reset_history(self, items: Sequence[M.Item]) -> None:
        """Make the server's conversation match ``items``."""
        await self._command("reset_history", items)

    async def send_event(self, event: Mapping[str, Any] | Any) -> None:
        """Send any client event as it is (``response.create`` still goes through the
        sequencer)."""
        await self._command("send_event", event)

    # --------------------------------------------------------------------- internals --

    async def _command(self, name: str, *args: Any, **kwargs: Any) -> Any:
        result = self._core.command(name, *args, **kwargs)
        self._wake()
        await self._flush(raise_closed=True)
        return result

    async def _apply(self, call: Callable[..., Any], *args: Any) -> Any:
        """Run ``call`` against the session (a phone bridge's input), then write what it
        produced, as a command does."""
        result = self._core.apply(call, *args)
        self._wake()
        await self._flush(raise_closed=True)
        return result

    def _wake(self) -> None:
        """After every core call: tell the consumer and the timer what may have changed."""
        if self._core.queued or self._core.ended:
            self._readable.set()
        self._timer_moved()

    def _timer_moved(self) -> None:
        """A core call may have moved the protocol's timer: bring the reader's wait for the
        socket forward if the timer is now due earlier."""
        scope = self._wait_scope
        if scope is None:
            return
        if self._core.transport_done:
            scope.cancel()  # (the reader ends)
            return
        timer = self._core.timer()
        if timer is not None and timer < scope.deadline:
            scope.deadline = timer

    def _stop_reader(self) -> None:
        """The connection is over (a write failed): the reader stops waiting and ends."""
        if self._wait_scope is not None:
            self._wait_scope.cancel()
        self._room.set()

    async def _flush(self, *, raise_closed: bool, wait: bool = True) -> None:
        """Write every byte the core has due, in order, under the write lock.

        With ``wait=False`` (the reader and the timer) a held lock means the holder writes
        these bytes too: it loops until the core has nothing due before letting go.
        """
        core = self._core
        if not core.has_output or (not wait and self._writing):
            return
        await self._lock_writes()
        try:
            while core.has_output:
                stream = self._stream
                data = core.take_output()
                if stream is None:
                    return
                failure: BaseException | None = None
                # A write cut in half would corrupt the stream: finish it even if the caller
                # is cancelled, but never wait longer than write_timeout.
                with anyio.CancelScope(shield=True):
                    with anyio.move_on_after(self._plan.write_timeout) as scope:
                        try:
                            await stream.send(data)
                        except _TRANSPORT_ERRORS as exc:
                            failure = exc
                    if scope.cancelled_caught:
                        failure = TimeoutError(
                            f"a write took more than {self._plan.write_timeout} s"
                        )
                if failure is not None:
                    error = core.write_failed(anyio.current_time())
                    self._wake()
                    self._stop_reader()
                    if raise_closed:
                        raise error from failure
                    return
        finally:
            self._writing = False
            self._written.set()

    async def _lock_writes(self) -> None:
        """Take the write lock (as ``anyio.Lock.acquire``: a checkpoint, then a yield with
        the lock held when it was free)."""
        if not self._writing:
            await anyio.lowlevel.checkpoint_if_cancelled()
            self._writing = True
            await anyio.lowlevel.cancel_shielded_checkpoint()
            return
        while self._writing:
            await self._written.wait()
        self._writing = True

    async def _resolve_key(self) -> WebSocketOptions | None:
        """Call the plan's key function, if any, for this attempt's key (before any I/O of
        the attempt: a slow token service holds no socket open); its options."""
        function = self._plan.key_function
        if function is None:
            return None
        key = function()
        if inspect.isawaitable(key):
            key = await key
        return self._core.keyed_options(key)

    async def _open(self, options: WebSocketOptions | None) -> None:
        """Open the socket and perform the upgrade (first connect and reconnects), with the
        options :meth:`_resolve_key` returned."""
        plan = self._plan
        core = self._core
        try:
            with anyio.fail_after(plan.connect_timeout):
                if plan.tls:
                    stream: anyio.abc.ByteStream = await anyio.connect_tcp(
                        plan.host,
                        plan.port,
                        ssl_context=plan.ssl_context,
                        tls_hostname=plan.host,
                        tls_standard_compatible=False,
                    )
                else:
                    stream = await anyio.connect_tcp(plan.host, plan.port)
        except TimeoutError as exc:
            raise ConnectTimeout(
                f"could not connect to {plan.host}:{plan.port} within {plan.connect_timeout} s"
            ) from exc
        except (OSError, anyio.BrokenResourceError) as exc:
            raise ConnectError(f"could not connect to {plan.host}:{plan.port}: {exc}") from exc
        log.debug("connected to %s:%d (tls=%s)", plan.host, plan.port, plan.tls)
        self._stream = stream
        try:
            core.start(anyio.current_time(), options)
            await self._flush(raise_closed=False)
            deadline = anyio.current_time() + plan.handshake_timeout
            while core.handshaking:
                now = anyio.current_time()
                timer = core.timer()
                wake = deadline if timer is None else min(timer, deadline)
                data: bytes | None = None
                with anyio.move_on_after(max(0.0, wake - now)):
                    try:
                        data = await stream.receive(READ_SIZE)
                    except _TRANSPORT_ERRORS:
                        data = b""
                now = anyio.current_time()
                if data is not None:
                    core.feed(data, now)
                elif timer is not None and now >= timer:
                    core.fire_timer(now)
                elif now >= deadline:
                    raise HandshakeTimeout(f"no upgrade response within {plan.handshake_timeout} s")
                await self._flush(raise_closed=False)
            if not core.upgraded:
                raise ConnectError("the connection closed during the upgrade")
            core.opened(anyio.current_time())
            self._wake()
            await self._flush(raise_closed=False)
        except BaseException:
            self._stream = None
            with anyio.CancelScope(shield=True):
                await anyio.aclose_forcefully(stream)
            raise

    async def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with anyio.CancelScope(shield=True):
                await anyio.aclose_forcefully(stream)

    async def _run(self) -> None:
        """Serve connections until the last one ends (reconnecting when the policy says)."""
        core = self._core
        try:
            while True:
                await self._serve()
                core.finish_connection()
                if not core.should_reconnect() or not await self._reconnect():
                    break
        except anyio.get_cancelled_exc_class():
            # the application's scope was cancelled around the connection: no reader is left
            # to see a close handshake through, so the connection ends here, at once
            core.abort(anyio.current_time())
            raise
        except Exception as exc:  # a bug must not hang the application: report it
            log.exception("driver failure")
            if core.failure is None:
                core.failure = exc if isinstance(exc, RtprotoError) else RtprotoError(repr(exc))
            core.abort(anyio.current_time())
        finally:
            core.end()
            await self._close_stream()
            self._done = True
            self._finished.set()
            self._readable.set()

    async def _serve(self) -> None:
        """Run one open connection in the runner's task: read the socket and, when the
        protocol's timer is due first, run it (one task, no task group per connection)."""
        core = self._core
        while not core.transport_done:
            if not core.may_read():  # backpressure: leave the data in the socket; the
                await self._room.wait()  # timers wait too (a slow application is not a
                continue  # dead peer)
            stream = self._stream
            if stream is None:
                break
            timer = core.timer()
            data: bytes | None = None
            with anyio.CancelScope() as scope:  # its deadline: the timer (see _timer_moved)
                if timer is not None:
                    scope.deadline = timer
                self._wait_scope = scope
                try:
                    data = await stream.receive(READ_SIZE)
                except _TRANSPORT_ERRORS:
                    data = b""
                finally:
                    self._wait_scope = None
            now = anyio.current_time()
            if data is not None:
                core.feed(data, now)
                del data  # not kept alive while waiting for the next chunk
            else:
                timer = core.timer()
                if timer is None or now < timer:
                    continue  # woken early (the timer moved, or the connection ended)
                try:
                    core.fire_timer(now)
                except RtprotoError as exc:
                    core.failure = exc
                    core.lost(now)
            self._wake()
            await self._flush(raise_closed=False, wait=False)
        await self._flush(raise_closed=False)
        await self._close_stream()

    async def _reconnect(self) -> bool:
        core = self._core
        while True:
            if core.closing:
                return False
            delay = core.next_attempt(anyio.current_time())
            self._wake()
            if delay is None:
                return False
            with anyio.move_on_after(delay):
                await self._closing.wait()
            if core.closing:
                return False
            failure: Exception | None = None
            key_failed = False
            with anyio.CancelScope() as scope:
                self._open_scope = scope
                try:
                    try:
                        options = await self._resolve_key()
                    except Exception as exc:  # the application's function: any error
                        failure, key_failed = exc, True
                    else:
                        await self._open(options)
                except (RtprotoError, OSError) as exc:
                    failure = exc
                finally:
                    self._open_scope = None
            if scope.cancel_called or core.closing:
                # close() cancelled the attempt: the runner ends (and drops a socket); an
                # upgrade that had just succeeded still reports its end
                core.finish_connection()
                return False
            if failure is not None:
                if not core.attempt_failed(failure, key=key_failed):
                    core.give_up()
                    self._wake()
                    return False
                continue
            return True
