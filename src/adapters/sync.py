"""The blocking driver: the same shape as the async one, on plain threads.

``with connect_sync(...) as conn`` opens the socket and performs the upgrade in the calling
thread, then starts a reader thread (socket -> protocol -> bounded event queue, and
reconnects) and a timer thread (keepalive, close timeout, write watchdog). Commands may be
called from any thread: the protocol is guarded by one lock and writes by another, taken in
the order the protocol produced the bytes. The non-I/O half is shared with the async driver
(:mod:`._core`), so both behave the same; only waiting differs.

Backpressure is the async driver's: when ``max_queued_events`` events wait, the reader
stops reading the socket (and the protocol's timers pause) until the application takes one.
"""

from __future__ import annotations

import contextlib
import inspect
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rtproto import models as M
from rtproto.errors import ConnectionClosed, LocalProtocolError, RtprotoError
from rtproto.session import SessionOptions
from rtproto.wire import HandshakeTimeout, WebSocketOptions

from ._core import (
    DEFAULT_WRITE_TIMEOUT,
    READ_SIZE,
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

__all__ = ["SyncConnection", "connect_sync"]

#: Longest single sleep of the timer thread: it re-reads the timer and checks the write
#: watchdog after each.
_MAX_WAIT = 1.0


def connect_sync(
    url: str | None = None,
    *,
    model: str | None = None,
    api_key: str | Callable[[], str] | None = None,
    session: Mapping[str, Any] | SessionOptions | None = None,
    ws_options: WebSocketOptions | None = None,
    connect_timeout: float = 10,
    handshake_timeout: float = 10,
    ssl_context: ssl.SSLContext | None = None,
    max_queued_events: int = 1024,
    reconnect: ReconnectPolicy | bool | None = None,
    write_timeout: float = DEFAULT_WRITE_TIMEOUT,
    dangerously_allow_api_key_in_subprotocol: bool = False,
) -> SyncConnection:
    """A Realtime connection over WebSocket, for ``with`` (blocking, thread-safe commands).

    The arguments are those of :func:`rtproto.adapters.connect`, except that an ``api_key``
    callable must be sync (it is called in the thread that connects: the caller's for the
    first connection, the reader thread for reconnects).
    """
    if inspect.iscoroutinefunction(api_key):
        raise LocalProtocolError(
            "connect_sync calls api_key without awaiting: give it a sync callable (or use"
            " connect() for an async one)"
        )
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
    return SyncConnection(plan)


class SyncConnection(CoreViews):
    """An open Realtime connection (see :func:`connect_sync`). Iterate :meth:`events`."""

    def __init__(self, plan: ConnectPlan) -> None:
        self._core = DriverCore(plan)
        self._plan = plan
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()  # guards the core and the fields below
        self._write_lock = threading.Lock()  # one writer at a time, bytes in core order
        self._readable = threading.Condition(self._lock)
        self._room = threading.Condition(self._lock)  # the paused reader may resume
        self._timer_changed = threading.Condition(self._lock)
        self._stopped = threading.Event()  # close() was called or the end came
        self._finished = threading.Event()  # the reader thread ended: no socket
        self._write_started: float | None = None
        self._reader: threading.Thread | None = None
        self._timer: threading.Thread | None = None
        #: The socket of a connection being opened (TCP, TLS, upgrade): close() shuts it
        #: down to cancel a reconnect attempt.
        self._pending: socket.socket | None = None
        self._entered = False

    def __repr__(self) -> str:
        ws = self._core.ws
        state = ws.state.name if ws is not None else "NEW"
        return f"<SyncConnection {self._plan.where} state={state} queued={self._core.queued}>"

    # ------------------------------------------------------------------- life cycle --

    def __enter__(self) -> SyncConnection:
        if self._entered:
            raise LocalProtocolError("a SyncConnection can be entered once")
        self._entered = True
        self._open(self._resolve_key())
        self._reader = threading.Thread(target=self._run, name="rtproto-reader", daemon=True)
        self._timer = threading.Thread(target=self._timer_loop, name="rtproto-timer", daemon=True)
        self._reader.start()
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close: send a close frame, wait (at most ``close_timeout``) for the server's
        reply, then drop the socket and stop the threads. Idempotent."""
        core = self._core
        if self._reader is None:
            return  # never entered (or the connect failed)
        with self._lock:
            sent = core.close(code, reason, time.monotonic())
            pending = self._pending
            self._notify()
            self._room.notify_all()  # (also wakes a reconnect's backoff wait)
        if pending is not None:
            # a reconnect attempt is under way (TCP, TLS or the upgrade): cancel it; the
            # reader sees ``closing`` after every blocking step and stops
            _shutdown_quietly(pending)
        if sent:  # (a writer busy with a big write writes the close frame after it)
            self._flush(raise_closed=False, wait=False)
        if not self._finished.wait(self._plan.close_timeout + 0.5):
            log.debug("close: no reply within %.1f s; dropping", self._plan.close_timeout)
            with self._lock:
                core.abort(time.monotonic())
                self._notify()
            self._shutdown_socket()
            self._finished.wait(self._plan.close_timeout)
        self._stopped.set()
        with self._lock:
            self._timer_changed.notify_all()
        current = threading.current_thread()
        for thread in (self._reader, self._timer):
            if thread is not None and thread is not current and thread.is_alive():
                thread.join(self._plan.close_timeout)

    # ------------------------------------------------------------------------ events --

    def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event; ``None`` once the connection is over and every event was taken.

        Raises:
            TimeoutError: no event within ``timeout`` seconds.
            RemoteProtocolError: after the last event, when the server's protocol error
                ended the connection.
        """
        core = self._core
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                event, resume = core.pop()
                if event is not None:
                    if resume:
                        self._room.notify_all()
                        self._timer_changed.notify_all()
                    return event
                if core.ended:
                    if core.failure is not None:
                        raise core.failure
                    return None
                if deadline is None:
                    self._readable.wait()
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(f"no event within {timeout} s")
                    self._readable.wait(remaining)

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Every event until the connection is over (``timeout``: per event, raising
        ``TimeoutError``)."""
        while (event := self.next_event(timeout)) is not None:
            yield event

    def __iter__(self) -> Iterator[Event]:
        return self.events()

    # ---------------------------------------------------------------------- commands --

    def send_audio(
        self, pcm: bytes | bytearray | memoryview | Any, *, commit: bool = False
    ) -> None:
        """Append audio (bytes in the input format, or an int16 array) to the input buffer.

        While the reconnect policy re-opens a dropped connection the audio is dropped
        quietly (counted in :attr:`dropped_audio`); once the connection is over for good
        this raises ``ConnectionClosed`` like every command.
        """
        core = self._core
        with self._lock:
            if core.drop_audio():
                return
        try:
            self._command("send_audio", pcm, commit=commit)
        except ConnectionClosed:
            with self._lock:
                if not core.drop_audio():  # the write found the drop: a reconnect follows
                    raise

    def commit_audio(self) -> None:
        """Commit the input buffer as a user item (when turn detection is off)."""
        self._command("commit_audio")

    def clear_audio(self) -> None:
        """Discard uncommitted input audio."""
        self._command("clear_audio")

    def send_message(
        self,
        message: str | Sequence[M.ContentPart] | M.MessageItem,
        *,
        trigger_response: bool = True,
        previous_item_id: str | None = None,
    ) -> None:
        """Add a user message (after ``previous_item_id`` when given); by default a response
        follows."""
        self._command(
            "send_message",
            message,
            trigger_response=trigger_response,
            previous_item_id=previous_item_id,
        )

    def add_image(
        self,
        image: str | bytes | bytearray | memoryview,
        *,
        detail: str | None = None,
        trigger_response: bool = True,
    ) -> None:
        """Add a user message holding one image (a URL, or PNG/JPEG/GIF/WebP bytes)."""
        self._command("add_image", image, detail=detail, trigger_response=trigger_response)

    def send_function_call_output(
        self, call_id: str, output: str, *, start_response: bool = True
    ) -> None:
        """Return a function call's result; by default a response follows."""
        self._command("send_function_call_output", call_id, output, start_response=start_response)

    def send_mcp_response(
        self, request: M.McpApprovalRequestItem | str, approved: bool, *, reason: str | None = None
    ) -> None:
        """Answer a hosted MCP tool's approval request (the request item, or its id)."""
        self._command("send_mcp_response", request, approved, reason=reason)

    def create_response(
        self, options: M.ResponseCreateParams | Mapping[str, Any] | None = None
    ) -> None:
        """Ask for a response (deferred while another one runs)."""
        self._command("create_response", options)

    def interrupt(self, *, cancel: bool = True) -> None:
        """Stop the assistant: cancel the response, truncate what was not heard."""
        self._command("interrupt", time.monotonic(), cancel=cancel)

    def update_session(self, config: Mapping[str, Any] | M.RealtimeSession) -> None:
        """Change the session configuration (only the fields given)."""
        self._command("update_session", config)

    def playback_progress(self, item_id: str, played_ms: float) -> bool:
        """Report how much of an item's audio the user heard; False if it is not tracked."""
        return bool(self._command("playback_progress", item_id, played_ms))

    def reset_history(self, items: Sequence[M.Item]) -> None:
        """Make the server's conversation match ``items``."""
        self._command("reset_history", items)

    def send_event(self, event: Mapping[str, Any] | Any) -> None:
        """Send any client event as it is (``response.create`` still goes through the
        sequencer)."""
        self._command("send_event", event)

    # --------------------------------------------------------------------- internals --

    def _command(self, name: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            try:
                result = self._core.command(name, *args, **kwargs)
            finally:
                self._notify()
        self._flush(raise_closed=True)
        return result

    def _apply(self, call: Callable[..., Any], *args: Any) -> Any:
        """Run ``call`` against the session (a phone bridge's input), then write what it
        produced, as a command does."""
        with self._lock:
            try:
                result = self._core.apply(call, *args)
            finally:
                self._notify()
        self._flush(raise_closed=True)
        return result

    def _notify(self) -> None:
        """After every core call (lock held): wake the consumer, the timer, and a reader
        paused by backpressure when it has something else to do."""
        core = self._core
        if core.queued or core.ended:
            self._readable.notify_all()
        if core.closing or core.transport_done:
            self._room.notify_all()
        self._timer_changed.notify_all()

    def _flush(self, *, raise_closed: bool, wait: bool = True) -> None:
        """Write every byte the core has due, in order, under the write lock.

        With ``wait=False`` (the reader and the timer) a held write lock means its holder
        writes these bytes too: it re-checks for output after releasing the lock.
        """
        while True:
            if not self._write_lock.acquire(blocking=wait):
                return
            try:
                while True:
                    with self._lock:
                        data = self._core.take_output()
                        sock = self._sock
                    if not data or sock is None:
                        break
                    self._write_started = time.monotonic()
                    try:
                        sock.sendall(data)
                    except OSError as exc:
                        with self._lock:
                            error = self._core.write_failed(time.monotonic())
                            self._notify()
                        _shutdown_quietly(sock)
                        if raise_closed:
                            raise error from exc
                        return
                    finally:
                        self._write_started = None
            finally:
                self._write_lock.release()
            with self._lock:
                if not self._core.has_output or self._sock is None:
                    return
            wait = False  # bytes arrived while we let go: write them unless someone else does

    def _pend(self, sock: socket.socket | None) -> None:
        """Make ``sock`` the one close() shuts down to cancel the attempt under way; raise
        if close() was called already (after every blocking step of the attempt)."""
        with self._lock:
            self._pending = sock
            if self._core.closing:
                raise ConnectError("close() cancelled the connection attempt")

    def _connect_tcp(self) -> socket.socket:
        """``socket.create_connection``, cancellable by close() (which shuts the socket
        down: on Linux that ends a connect under way; elsewhere it ends within
        ``connect_timeout``). A DNS lookup under way is waited for."""
        plan = self._plan
        errors: list[OSError] = []
        try:
            infos = socket.getaddrinfo(plan.host, plan.port, 0, socket.SOCK_STREAM)
            self._pend(None)
            for family, kind, proto, _, address in infos:
                sock = socket.socket(family, kind, proto)
                try:
                    self._pend(sock)
                    sock.settimeout(plan.connect_timeout)
                    sock.connect(address)
                    self._pend(sock)
                    return sock
                except OSError as exc:
                    _close_quietly(sock)
                    errors.append(exc)
                except BaseException:
                    _close_quietly(sock)
                    raise
        except BaseException:
            with self._lock:
                self._pending = None
            raise
        with self._lock:
            self._pending = None
        if not errors:
            raise OSError(f"no address for {plan.host}")
        raise errors[0]  # (as socket.create_connection)

    def _resolve_key(self) -> WebSocketOptions | None:
        """Call the plan's key function, if any, for this attempt's key (before any I/O of
        the attempt: a slow token service holds no socket open); its options."""
        function = self._plan.key_function
        if function is None:
            return None
        return self._core.keyed_options(function())

    def _open(self, options: WebSocketOptions | None) -> None:
        """Open the socket and perform the upgrade (first connect and reconnects), with the
        options :meth:`_resolve_key` returned."""
        plan = self._plan
        core = self._core
        try:
            sock = self._connect_tcp()
        except TimeoutError as exc:
            raise ConnectTimeout(
                f"could not connect to {plan.host}:{plan.port} within {plan.connect_timeout} s"
            ) from exc
        except OSError as exc:
            raise ConnectError(f"could not connect to {plan.host}:{plan.port}: {exc}") from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if plan.tls:
                assert plan.ssl_context is not None
                try:
                    sock = plan.ssl_context.wrap_socket(
                        sock, server_hostname=plan.host, do_handshake_on_connect=False
                    )
                    self._pend(sock)
                    sock.do_handshake()  # (within connect_timeout: the socket's timeout)
                    self._pend(sock)
                except TimeoutError as exc:
                    raise ConnectTimeout(
                        f"no TLS handshake with {plan.host}:{plan.port} within"
                        f" {plan.connect_timeout} s"
                    ) from exc
                except OSError as exc:
                    raise ConnectError(f"TLS with {plan.host}:{plan.port} failed: {exc}") from exc
            log.debug("connected to %s:%d (tls=%s)", plan.host, plan.port, plan.tls)
            with self._lock:
                self._sock = sock
                core.start(time.monotonic(), options)
            self._flush(raise_closed=False)
            deadline = time.monotonic() + plan.handshake_timeout
            while True:
                with self._lock:
                    if core.closing:
                        raise ConnectError("close() cancelled the connection attempt")
                    if not core.handshaking:
                        break
                    timer = core.timer()
                now = time.monotonic()
                wake = deadline if timer is None else min(timer, deadline)
                data: bytes | None = None
                if wake > now:
                    sock.settimeout(wake - now)
                    try:
                        data = sock.recv(READ_SIZE)
                    except TimeoutError:
                        data = None
                    except OSError:
                        data = b""
                now = time.monotonic()
                with self._lock:
                    if data is not None:
                        core.feed(data, now)
                    elif timer is not None and now >= timer:
                        core.fire_timer(now)
                    elif now >= deadline:
                        raise HandshakeTimeout(
                            f"no upgrade response within {plan.handshake_timeout} s"
                        )
                self._flush(raise_closed=False)
            with self._lock:
                if not core.upgraded:
                    raise ConnectError("the connection closed during the upgrade")
                self._pending = None
                core.opened(time.monotonic())
                self._notify()
            sock.settimeout(None)  # from here on close() and the timer thread unblock it
            self._flush(raise_closed=False)
        except BaseException:
            with self._lock:
                self._sock = None
                self._pending = None
            _close_quietly(sock)
            raise

    def _shutdown_socket(self) -> None:
        """Unblock the reader (and any writer): the socket is done."""
        sock = self._sock
        if sock is not None:
            _shutdown_quietly(sock)

    def _close_socket(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            _shutdown_quietly(sock)
            _close_quietly(sock)

    def _run(self) -> None:
        """The reader thread: serve connections until the last one ends."""
        core = self._core
        try:
            while True:
                self._read_loop()
                self._flush(raise_closed=False)
                self._close_socket()
                with self._lock:
                    core.finish_connection()
                    again = core.should_reconnect()
                    self._notify()
                if not again or not self._reconnect():
                    break
        except Exception as exc:  # a bug must not hang the application: report it
            log.exception("driver failure")
            with self._lock:
                if core.failure is None:
                    core.failure = exc if isinstance(exc, RtprotoError) else RtprotoError(repr(exc))
                core.abort(time.monotonic())
        finally:
            self._close_socket()
            with self._lock:
                core.end()
                self._finished.set()
                self._notify()

    def _read_loop(self) -> None:
        core = self._core
        while True:
            with self._lock:
                while not core.may_read() and not core.transport_done:
                    self._room.wait()  # backpressure: leave the data in the socket
                if core.transport_done:
                    return
                sock = self._sock
            if sock is None:
                return
            try:
                data = sock.recv(READ_SIZE)
            except OSError:
                data = b""
            with self._lock:
                core.feed(data, time.monotonic())
                self._notify()
            self._flush(raise_closed=False, wait=False)

    def _timer_loop(self) -> None:
        """The timer thread: the protocol's timers and the write watchdog."""
        core = self._core
        write_timeout = self._plan.write_timeout
        with self._lock:
            while not self._finished.is_set() and not self._stopped.is_set():
                now = time.monotonic()
                started = self._write_started
                if started is not None and now - started > write_timeout:
                    log.debug("a write took more than %.1f s; dropping", write_timeout)
                    self._write_started = None
                    self._shutdown_socket()  # the writer fails and reports the loss
                    continue
                # paused while the application lags, and during an upgrade (the reader
                # thread runs the upgrade's own timer)
                paused = core.reading_paused or core.ws is None or core.handshaking
                timer = None if paused else core.timer()
                if timer is None or timer > now:
                    wait = _MAX_WAIT if timer is None else min(timer - now, _MAX_WAIT)
                    self._timer_changed.wait(wait)
                    continue
                try:
                    core.fire_timer(now)
                except RtprotoError as exc:
                    core.failure = exc
                    core.lost(now)
                self._notify()
                done = core.transport_done
                self._lock.release()
                try:
                    self._flush(raise_closed=False, wait=False)
                finally:
                    self._lock.acquire()
                if done:
                    self._shutdown_socket()

    def _reconnect(self) -> bool:
        core = self._core
        while True:
            with self._lock:
                if core.closing:
                    return False
                delay = core.next_attempt(time.monotonic())
                self._notify()
            if delay is None:
                return False
            if self._wait_closing(delay):
                return False
            failure: Exception | None = None
            key_failed = False
            try:
                options = self._resolve_key()
            except Exception as exc:  # the application's function: any error
                failure, key_failed = exc, True
            else:
                try:
                    self._open(options)
                except (RtprotoError, OSError) as exc:
                    failure = exc
            if failure is not None:
                with self._lock:
                    if core.closing:  # close() cancelled the attempt
                        core.finish_connection()
                        self._notify()
                        return False
                    retry = core.attempt_failed(failure, key=key_failed)
                    if not retry:
                        core.give_up()
                    self._notify()
                if not retry:
                    return False
                continue
            with self._lock:
                self._timer_changed.notify_all()
            return True

    def _wait_closing(self, delay: float) -> bool:
        """Sleep ``delay`` seconds unless close() is called; whether it was."""
        deadline = time.monotonic() + delay
        with self._lock:
            while not self._core.closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._room.wait(remaining)
            return True


def _shutdown_quietly(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _close_quietly(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
