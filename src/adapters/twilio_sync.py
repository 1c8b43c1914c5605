"""Phone calls from Twilio Media Streams on plain threads: :func:`bridge_call_sync`, for
applications whose web framework hands over a blocking WebSocket (Flask-Sock, a Django or
``websockets.sync`` server).

The same bridge as :func:`rtproto.adapters.twilio.bridge_call`, over
:func:`~rtproto.adapters.connect_sync`: one thread reads Twilio, one passes the session's
events through the bridge to Twilio and to the application, one runs the bridge's timer;
the bridge is guarded by one lock. The call ends when Twilio's stream ends (the Realtime
connection is closed) or when the Realtime connection ends (Twilio's socket is closed)::

    with bridge_call_sync(twilio_socket, model="gpt-realtime") as call:
        for event in call:
            ...                          # commands: call.connection.send_message(...)
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Protocol

from rtproto.errors import ConnectionClosed, LocalProtocolError, RtprotoError
from rtproto.phone import TwilioBridge, TwilioBridgeOptions
from rtproto.session import SessionOptions

from ._core import Event
from .sync import SyncConnection, connect_sync
from .twilio import phone_session

__all__ = ["TwilioCallSync", "TwilioSocketSync", "bridge_call_sync"]

#: How often a blocked hand-over re-checks that the call is still on (seconds).
_POLL = 0.1


class TwilioSocketSync(Protocol):
    """The Twilio side of a call, blocking: text messages in and out."""

    def receive(self) -> str | bytes | None:
        """The next message; None once the socket closed."""

    def send(self, text: str) -> None:
        """Send a message (raise ``OSError`` when closed)."""

    def close(self) -> None:
        """Close the socket (the call is over)."""


class TwilioCallSync:
    """One bridged call on threads (see :func:`bridge_call_sync`): iterate it for events.

    Attributes:
        connection: the Realtime connection (its commands).
        bridge: the :class:`~rtproto.phone.TwilioBridge`.
    """

    def __init__(
        self,
        twilio: TwilioSocketSync,
        connection: SyncConnection,
        options: TwilioBridgeOptions | None,
        max_queued_events: int,
    ) -> None:
        self.connection = connection
        self._twilio = twilio
        self._options = options
        self._bridge: TwilioBridge | None = None
        self._lock = threading.Lock()  # the bridge's
        self._changed = threading.Condition(self._lock)  # its timer may have moved
        self._events: queue.Queue[Event] = queue.Queue(max_queued_events)
        self._over = threading.Event()  # no more events will be queued
        self._closing = threading.Event()
        self._failure: RtprotoError | None = None
        self._twilio_open = True
        self._threads: list[threading.Thread] = []

    @property
    def bridge(self) -> TwilioBridge:
        if self._bridge is None:
            raise LocalProtocolError("the call has not started: use it with 'with'")
        return self._bridge

    def __enter__(self) -> TwilioCallSync:
        self.connection.__enter__()
        try:
            self._bridge = TwilioBridge(self.connection.session, self._options)
        except BaseException:
            self.connection.close()
            raise
        for target in (self._from_realtime, self._from_twilio, self._run_timer):
            name = f"rtproto-twilio{target.__name__}"
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(self.connection._plan.close_timeout + 1.0)

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        while True:
            try:
                return self._events.get(timeout=_POLL)
            except queue.Empty:
                if self._over.is_set() and self._events.empty():
                    if self._failure is not None:
                        raise self._failure from None
                    raise StopIteration from None

    def interrupt(self) -> None:
        """Stop the assistant: Twilio's buffer is cleared, the audio cut where it was heard."""
        self.connection.interrupt()

    def close(self) -> None:
        """Hang up: close the Realtime connection and Twilio's socket."""
        self._closing.set()
        self.connection.close()
        self._close_twilio()
        with self._lock:
            self._changed.notify_all()

    # -------------------------------------------------------------------- the threads --

    def _from_realtime(self) -> None:
        bridge = self.bridge
        try:
            for event in self.connection:
                with self._lock:
                    bridge.handle_session_event(event)
                    out = bridge.twilio_messages_to_send()
                    self._changed.notify_all()
                self._send_twilio(out)
                self._put(event)
        except RtprotoError as exc:
            self._failure = exc
        finally:
            self._over.set()
            self._close_twilio()
            with self._lock:
                self._changed.notify_all()

    def _from_twilio(self) -> None:
        bridge = self.bridge
        while self._twilio_open:
            try:
                message = self._twilio.receive()
            except OSError:
                message = None
            with self._lock:
                if message is None:
                    self._twilio_open = False
                    bridge.twilio_closed()
                else:
                    try:
                        self.connection._apply(bridge.receive_twilio, message, time.monotonic())
                    except ConnectionClosed:
                        return  # the Realtime side ended: _from_realtime closes Twilio's socket
                events = list(bridge.events())
                ended = bridge.ended
                self._changed.notify_all()
            for event in events:
                self._put(event)
            if ended:
                break
        self.connection.close()

    def _run_timer(self) -> None:
        bridge = self.bridge
        with self._lock:
            while not self._over.is_set() and not self._closing.is_set():
                deadline = bridge.get_timer()
                if deadline is None:
                    self._changed.wait()
                    continue
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._changed.wait(delay)
                    continue
                try:
                    self.connection._apply(bridge.handle_timer, time.monotonic())
                except ConnectionClosed:
                    return

    def _put(self, event: Event) -> None:
        """Hand an event to the application (waiting while its queue is full; dropped once
        the call is closing and nobody reads)."""
        while True:
            try:
                self._events.put(event, timeout=_POLL)
                return
            except queue.Full:
                if self._closing.is_set():
                    return

    def _send_twilio(self, messages: list[str]) -> None:
        if not self._twilio_open:
            return
        try:
            for text in messages:
                self._twilio.send(text)
        except OSError:
            self._twilio_open = False
            with self._lock:
                self.bridge.twilio_closed()
            self.connection.close()

    def _close_twilio(self) -> None:
        if self._twilio_open:
            self._twilio_open = False
            with contextlib.suppress(OSError):
                self._twilio.close()


def bridge_call_sync(
    twilio: TwilioSocketSync,
    url: str | None = None,
    *,
    model: str | None = None,
    api_key: str | Callable[[], str] | None = None,
    session: Mapping[str, Any] | SessionOptions | None = None,
    bridge_options: TwilioBridgeOptions | None = None,
    max_queued_events: int = 1024,
    **connect_options: Any,
) -> TwilioCallSync:
    """Bridge one Twilio stream to a Realtime WebSocket, for ``with`` (the arguments of
    :func:`rtproto.adapters.twilio.bridge_call`, over :func:`~rtproto.adapters.connect_sync`)."""
    connection = connect_sync(
        url,
        model=model,
        api_key=api_key,
        session=phone_session(session, model, connect_options),
        max_queued_events=max_queued_events,
        **connect_options,
    )
    return TwilioCallSync(twilio, connection, bridge_options, max_queued_events)
