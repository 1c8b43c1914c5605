"""The client session core: the Realtime transport layer's behaviour as a pure state machine.

Feed it what arrived (:meth:`ClientSession.receive`) and the time, call commands, then drain
:meth:`ClientSession.messages_to_send` and :meth:`ClientSession.next_event` after every call
and honour :meth:`ClientSession.get_timer`. It never reads a clock, touches a socket or waits.
"""

from __future__ import annotations

import base64
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, SupportsFloat

import msgspec

from .. import events as E
from .. import models as M
from ..codec import (
    DECODE_ERRORS,
    DEFAULT_MAX_CLIENT_MESSAGE_SIZE,
    GA_SOURCE,
    decode_ga_server_event,
    encode_audio_append,
    salvage,
    serialize_client_event,
    server_parser,
)
from ..config import PCM_24K, PCMU, first_dropped, normalize_session_config, output_format_of
from ..dialect import Dialect
from ..errors import ConnectionClosed, LocalProtocolError, RemoteProtocolError
from .events import (
    AudioChunk,
    AudioDone,
    AudioInterrupted,
    AudioTranscriptDelta,
    ConnectionChange,
    ConnectionStatus,
    FunctionCall,
    HistoryUpdated,
    ItemDeleted,
    ItemUpdate,
    McpApprovalRequested,
    McpToolCallCompleted,
    McpToolsListed,
    ProtocolWarning,
    ServerError,
    TextDelta,
    TransportEvent,
    TruncatedItem,
    TurnDone,
    TurnStarted,
    UsageTotals,
    UsageUpdate,
)
from .history import History, diff_history
from .options import (
    Limits,
    Profile,
    SessionOptions,
    SessionState,
    counter_ids,
    finite_and_not_negative,
)
from .playback import PlaybackItem, PlaybackTracker
from .sequencer import PendingCreate, ResponseSequencer

__all__ = [
    "ClientSession",
    "Limits",
    "Profile",
    "SessionEvent",
    "SessionOptions",
    "SessionState",
    "counter_ids",
]

#: What :meth:`ClientSession.next_event` yields: server events (the raw stream) and derived
#: transport events, in the order they happened.
SessionEvent = E.ServerEvent | TransportEvent

#: The service accepts at most 15 MiB of audio in one ``input_audio_buffer.append``.
MAX_APPEND_AUDIO_BYTES = 15 * 1024 * 1024
#: What the largest append takes on the wire: 15 MiB as base64 (20 MiB) and its envelope.
MAX_APPEND_MESSAGE_SIZE = DEFAULT_MAX_CLIENT_MESSAGE_SIZE
#: A WebRTC data channel carries messages up to 64 KiB.
DATA_CHANNEL_MESSAGE_LIMIT = 64 * 1024


# Enum members as module constants for the methods: reading one from its Enum class costs
# about 60 ns on Python 3.11, a global about 5.
_IDLE = SessionState.IDLE
_CONNECTING = SessionState.CONNECTING
_CONNECTED = SessionState.CONNECTED
_CLOSING = SessionState.CLOSING
_CLOSED = SessionState.CLOSED
#: Between connection_made() and connection_lost(): server messages are taken.
_RECEIVING = (_CONNECTING, _CONNECTED, _CLOSING)


_SIP = Profile.SIP
# What goes out at once while the WebRTC profile holds the rest until session.updated: the
# configuration itself, and controls that are stale by the time the session is ready (a
# cancel held while the server's own response ran would reach it after that response ended).
_NOT_HELD = frozenset({"session.update", "response.cancel", "output_audio_buffer.clear"})
_WEBRTC = Profile.WEBRTC
_PHONE = Profile.PHONE
_CLIENT_HANDLES_TRUNCATION = (Profile.WEBSOCKET, Profile.PHONE)
_SERVER_OUTPUT_BUFFER = (Profile.WEBRTC, Profile.SIP)


class ClientSession:
    """The client role of a Realtime session, with no I/O.

    Create it, call :meth:`connection_made` when the transport is up, then feed every
    received message to :meth:`receive`. After every call, send what
    :meth:`messages_to_send` returns, handle what :meth:`next_event` yields until ``None``,
    and arrange to call :meth:`handle_timer` at :meth:`get_timer`.
    """

    def __init__(self, options: SessionOptions | None = None) -> None:
        self.options = options = options or SessionOptions()
        self._profile = options.profile
        self._config = normalize_session_config(
            options.session,
            model=options.model,
            defaults=options.config_defaults,
            # a SIP call's audio is the phone line's (G.711): PCM defaults would fight it;
            # a phone bridge passes the line's G.711 mu-law through
            format_defaults=options.profile is not Profile.SIP,
            default_format=PCMU if options.profile is Profile.PHONE else PCM_24K,
        )
        limits = options.limits
        if limits.max_outgoing_message_size is not None:
            self._max_outgoing = limits.max_outgoing_message_size
        elif options.profile is Profile.WEBRTC:
            self._max_outgoing = DATA_CHANNEL_MESSAGE_LIMIT
        else:
            self._max_outgoing = max(limits.max_message_size, MAX_APPEND_MESSAGE_SIZE)
        self._ids = options.id_generator or counter_ids()
        self._parse = server_parser(dialect=options.dialect, max_size=limits.max_message_size)
        # receive() decodes GA text up to these sizes itself while receiving (-1 otherwise:
        # not receiving, or a dialect that needs the codec; its slow path sorts those out):
        # bytes up to the limit, a str of up to a quarter of it (it fits, whatever it holds;
        # a longer one is measured in UTF-8 bytes by the codec)
        self._inline_parse_limit = self._inline_str_limit = -1
        self._max_events = limits.max_pending_events
        self._state = _IDLE
        self._outbox: list[str] = []
        self._held: list[str] = []  # sent before the connection is ready (WebRTC)
        self._events: list[SessionEvent] = []  # in order; next_event() has taken [:_head]
        self._head = 0
        self._sequencer = ResponseSequencer()
        phone = options.profile is Profile.PHONE
        self._playback = PlaybackTracker(
            estimate=not phone,
            max_items=limits.max_tracked_items,
            lead_ms=options.phone_playback_lead_ms if phone else 0.0,
        )
        self._history = History(limits.max_history_items)
        self._sent_types: OrderedDict[str, str] = OrderedDict()  # event_id -> client type
        self._discarded: OrderedDict[str, None] = OrderedDict()  # interrupted response ids
        self._responses: OrderedDict[str, None] = OrderedDict()  # ids from response.created
        self._strangers: OrderedDict[str, None] = OrderedDict()  # unknown ids reported
        self._calls_seen: OrderedDict[str, None] = OrderedDict()  # function calls surfaced
        self._mcp_seen: OrderedDict[str, None] = OrderedDict()  # MCP items announced
        self._retrieving: OrderedDict[str, None] = OrderedDict()  # retrieves unanswered
        # transcripts of items being read back: item_id -> (content_index, transcript)
        self._transcripts: dict[str, tuple[int, str]] = {}
        self._connect_deadline: float | None = None
        self._grace_deadline: float | None = None  # a degraded transport must recover by then
        self._usage = UsageTotals()
        self.server_session: M.SessionConfig | None = None
        self._bytes_per_second = _bytes_per_second(output_format_of(self._config))

    # ------------------------------------------------------------------ state and output --

    @property
    def state(self) -> SessionState:
        """Where the session is in its life."""
        return self._state

    @property
    def config(self) -> M.RealtimeSession:
        """The configuration this session asked for (normalised, GA shape)."""
        return self._config

    @property
    def history(self) -> tuple[M.Item, ...]:
        """The conversation items known to the client, in order."""
        return self._history.items()

    @property
    def usage(self) -> UsageTotals:
        """Running token totals of the session."""
        return self._usage

    @property
    def response_active(self) -> bool:
        """Whether a response is running or a ``response.create`` awaits its answer."""
        return self._sequencer.busy

    def messages_to_send(self) -> list[str]:
        """Client messages (JSON text, in order) to put on the wire now; clears the outbox."""
        out, self._outbox = self._outbox, []
        return out

    def next_event(self) -> SessionEvent | None:
        """The next server or transport event, or ``None`` when there is none."""
        events = self._events
        head = self._head
        if head >= len(events):
            return None
        event = events[head]
        if head + 1 == len(events):
            events.clear()  # all taken (a list take_events() handed out is never this one)
            self._head = 0
        else:
            self._head = head + 1  # (receive() compacts when the list fills up)
        return event

    def take_events(self) -> list[SessionEvent]:
        """Every pending event at once, in order (an empty list when none): the cheapest
        way to drain after each :meth:`receive`."""
        events = self._events
        self._events = []
        if self._head:
            del events[: self._head]
            self._head = 0
        return events

    def events(self) -> Iterator[SessionEvent]:
        """Drain every pending event (one at a time: stopping early loses none)."""
        while (event := self.next_event()) is not None:
            yield event

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` should next be called (same clock as ``now``), if ever."""
        connect, grace = self._connect_deadline, self._grace_deadline
        if connect is None or grace is None:
            return grace if connect is None else connect
        return min(connect, grace)

    def handle_timer(self, now: float) -> None:
        """Run what is due at ``now``: the end of the WebRTC wait for ``session.updated``
        (connected anyway, with a warning) or of a disconnect grace period (the session
        ends: the driver closes the transport when it sees the state ``CLOSED``)."""
        grace = self._grace_deadline
        if grace is not None and now >= grace:
            self.connection_lost(
                f"the transport did not recover within {self.options.disconnect_grace} s", now
            )
            return
        deadline = self._connect_deadline
        if deadline is not None and now >= deadline and self._state is _CONNECTING:
            self._events.append(
                ProtocolWarning(
                    message=f"no session.updated within {self.options.session_update_timeout}"
                    " s; connected without the acknowledgement"
                )
            )
            self._become_connected()

    # ---------------------------------------------------------------- connection events --

    def connection_made(self, now: float) -> None:
        """The transport is up: send the initial ``session.update``.

        WebSocket-like profiles are connected at once; WebRTC waits for ``session.updated``
        (or the timeout), holding other messages back until then.
        """
        if self._state is not _IDLE:
            raise LocalProtocolError(
                "connection_made() was already called: a ClientSession serves one connection;"
                " create a new one for the next",
                state=self._state.value,
            )
        self._state = _CONNECTING
        if self.options.dialect is Dialect.GA:
            self._inline_parse_limit = self.options.limits.max_message_size
            self._inline_str_limit = self._inline_parse_limit >> 2
        self._events.append(ConnectionChange(status=ConnectionStatus.CONNECTING))
        self._write(E.SessionUpdate(session=self._config, event_id=self._new_id("session_update")))
        if self._profile is _WEBRTC:
            self._connect_deadline = now + self.options.session_update_timeout
        else:
            self._become_connected()

    def connection_degraded(self, now: float) -> None:
        """The transport stopped carrying traffic but may come back (a WebRTC peer connection
        went ``disconnected``): start the ``disconnect_grace`` period. Unless
        :meth:`connection_recovered` is called first, :meth:`handle_timer` then ends the
        session. Nothing is reported while the grace period runs (as the JS SDK)."""
        if self._grace_deadline is None and self._state in _RECEIVING:
            self._grace_deadline = now + self.options.disconnect_grace

    def connection_recovered(self, now: float) -> None:
        """The transport carries traffic again: cancel the grace period, if one runs."""
        self._grace_deadline = None

    def connection_lost(
        self, reason: str | None = None, now: float | None = None, *, code: int | None = None
    ) -> None:
        """The transport ended (for any reason): forget in-flight work, report disconnected.

        ``code`` is the close code, when the transport has one (WebSocket: 1000, 1001, 1006...).
        """
        if self._state is _CLOSED:
            return
        self._state = _CLOSED
        self._inline_parse_limit = self._inline_str_limit = -1
        self._connect_deadline = self._grace_deadline = None
        self._sequencer.release()
        self._playback.clear()
        self._held.clear()
        self._events.append(
            ConnectionChange(status=ConnectionStatus.DISCONNECTED, reason=reason, code=code)
        )

    def close(self) -> None:
        """The application is closing: refuse further commands. The driver closes the wire."""
        if self._state is not _CLOSED:
            self._state = _CLOSING
            self._connect_deadline = None

    # ------------------------------------------------------------------------- receive --

    def receive(
        self, message: str | bytes | bytearray | memoryview | E.ServerEvent, now: float
    ) -> None:
        """Handle one message from the server (JSON text, or an already-parsed event).

        Text that is not an event at all (not JSON, not an object with a string ``type``,
        or over ``max_message_size``) is dropped with a :class:`ProtocolWarning` saying why
        (the codec's :class:`~rtproto.errors.RemoteProtocolError`), as the JS transport drops
        it: messages are framed one by one, so one bad message leaves the others intact.

        Raises:
            LocalProtocolError: called before :meth:`connection_made`, after the connection
                was lost, or with ``max_pending_events`` events left undrained.
        """
        # The hot path: this runs for every message, so the common cases are inlined.
        events = self._events
        if events and len(events) >= self._max_events:  # (drained after every call: empty)
            self._make_room()
        data: Any = message  # narrowed by exact type below (immutable text: kept as the source)
        event: Any
        kind = type(data)
        if (kind is bytes and len(data) <= self._inline_parse_limit) or (
            kind is str and len(data) <= self._inline_str_limit
        ):
            try:
                event = _DECODE(data)
            except DECODE_ERRORS:
                event = self._receive_slowly(data)  # the codec classifies what is wrong
                if event is None:
                    return
            else:
                event.__dict__[GA_SOURCE] = data
        else:  # not receiving, another dialect, too large, or not text
            event = self._receive_slowly(data)
            if event is None:
                return
        events.append(event)
        event_class = type(event)
        if event_class is _AUDIO_DELTA:  # most of what arrives
            item_id = event.item_id
            playing = self._playback.last
            if playing is None or playing.item_id != item_id:
                playing = self._audio_item(event, now)
                if playing is None:
                    return  # audio of an interrupted response still in flight: dropped
            delta = event.delta  # counted as base64 (PlaybackItem.add_base64, inlined)
            playing.base64_chars += len(delta)
            if delta and delta[-1] == "=":
                playing.base64_padding += 2 if delta[-2:] == "==" else 1
            events.append(_AUDIO_CHUNK(event.response_id, item_id, event.content_index, event))
        elif event_class is _TRANSCRIPT_DELTA:  # the next most frequent
            events.append(_TRANSCRIPT_CHUNK(event.response_id, event.item_id, event.delta))
        else:
            handler = _HANDLERS.get(event_class)
            if handler is not None:
                handler(self, event, now)

    def _audio_item(self, audio: E.ResponseOutputAudioDelta, now: float) -> PlaybackItem | None:
        """The tracked item of this audio (started on its first audio), or None when its
        response was interrupted. (An interruption forgets every item.)"""
        playing = self._playback.audio_for(audio.item_id)
        if playing is not None:
            return playing
        if audio.response_id in self._discarded:
            return None
        if audio.response_id not in self._responses:
            self._check_response(audio.response_id, audio)
        return self._playback.start(
            audio.item_id, audio.response_id, audio.content_index, now, self._bytes_per_second
        )

    def _receive_slowly(
        self, message: str | bytes | bytearray | memoryview | E.ServerEvent
    ) -> E.ServerEvent | None:
        """What receive() does not decode itself: refused when not receiving, else parsed
        by the codec (or taken as it is), a mistyped event salvaged; None when it is not an
        event at all (dropped, with a warning)."""
        self._require_receiving()
        if isinstance(message, (bytes, str, bytearray, memoryview)):
            try:
                message = self._parse(message)
            except RemoteProtocolError as exc:
                self._events.append(ProtocolWarning(message=f"dropped a message: {exc.message}"))
                return None
        return self._salvage(message) if type(message) is _INVALID else message

    def _require_receiving(self) -> None:
        if self._state not in _RECEIVING:
            raise LocalProtocolError("receive() needs an open connection", state=self._state.value)

    def _salvage(self, event: E.InvalidEvent) -> E.ServerEvent:
        """A known event with a mistyped field: typed without what did not fit when the
        rest fits (a ``response.done`` with a ``null`` count still ends its response), with
        a warning first; else as it is (the warning comes from its handler)."""
        salvaged = salvage(event, dialect=self.options.dialect)
        if salvaged is None:
            return event
        self._events.append(
            ProtocolWarning(
                message=f"malformed {event.type}, handled without what did not fit: "
                + event.problem,
                event=event,
            )
        )
        return salvaged

    def _make_room(self) -> None:
        """receive() with ``max_pending_events`` in the list: drop the events next_event()
        handed out (amortised O(1) per event), else refuse (as a closed session refuses)."""
        self._require_receiving()
        if self._head:
            del self._events[: self._head]
            self._head = 0
            if len(self._events) < self._max_events:
                return
        raise LocalProtocolError(
            f"{len(self._events)} events are waiting: drain take_events() or next_event() first",
            state=self._state.value,
        )

    # ------------------------------------------------------------------------ commands --

    def update_session(self, config: Mapping[str, Any] | M.RealtimeSession) -> None:
        """Send a ``session.update`` changing only the fields given (no defaults re-applied)."""
        session = normalize_session_config(config, defaults=False)
        self._write(E.SessionUpdate(session=session, event_id=self._new_id("session_update")))

    def send_audio(
        self, pcm: bytes | bytearray | memoryview | Any, *, commit: bool = False
    ) -> None:
        """Append audio (bytes in the input format, or an int16 array) to the input buffer."""
        if self._profile is _SIP:
            raise LocalProtocolError(
                "the sip profile carries audio on the phone call, not in events: send it"
                " through the call (use the websocket or phone profile to send audio events)",
                event_type="input_audio_buffer.append",
                state=self._state.value,
            )
        size = pcm.nbytes if hasattr(pcm, "nbytes") else len(pcm)
        if size > MAX_APPEND_AUDIO_BYTES:
            raise LocalProtocolError(
                f"{size} bytes of audio in one append; the service takes at most 15 MiB:"
                " send it in chunks",
                event_type="input_audio_buffer.append",
            )
        self._require_open("send audio")
        self._enqueue("input_audio_buffer.append", encode_audio_append(pcm), None)
        if commit:
            self.commit_audio()

    def commit_audio(self) -> None:
        """Commit the input buffer as a user item (needed when turn detection is off)."""
        self._write(E.InputAudioBufferCommit(event_id=self._new_id("input_audio_buffer_commit")))

    def clear_audio(self) -> None:
        """Discard uncommitted input audio."""
        self._write(E.InputAudioBufferClear(event_id=self._new_id("input_audio_buffer_clear")))

    def send_message(
        self,
        message: str | Sequence[M.ContentPart] | M.MessageItem,
        *,
        trigger_response: bool = True,
        previous_item_id: str | None = None,
    ) -> None:
        """Add a user message (text, content parts, or a whole message item), at the end of
        the conversation or after ``previous_item_id`` (``"root"``: at its start)."""
        if previous_item_id is not None and not (
            isinstance(previous_item_id, str) and previous_item_id
        ):
            raise LocalProtocolError(
                f"previous_item_id must be an item id or 'root', not {previous_item_id!r}",
                event_type="conversation.item.create",
            )
        if isinstance(message, str):
            item = M.MessageItem(
                role="user", content=[M.ContentPart(type="input_text", text=message)]
            )
        elif isinstance(message, M.MessageItem):
            item = message
        else:
            item = M.MessageItem(role="user", content=list(message))
        after = msgspec.UNSET if previous_item_id is None else previous_item_id
        event_id = self._new_id("item_create")
        self._write(E.ConversationItemCreate(item=item, previous_item_id=after, event_id=event_id))
        if trigger_response:
            self._request_response(None, manual=False)

    def add_image(
        self,
        image: str | bytes | bytearray | memoryview,
        *,
        detail: str | None = None,
        trigger_response: bool = True,
    ) -> None:
        """Add a user message holding one image: a URL or ``data:`` URL as text, or the bytes
        of a PNG, JPEG, GIF or WebP file (sent as a data URL). ``detail`` is ``"auto"``,
        ``"low"`` or ``"high"``."""
        if detail is not None and detail not in _IMAGE_DETAILS:
            raise LocalProtocolError(
                f"detail must be one of {', '.join(map(repr, _IMAGE_DETAILS))}, not {detail!r}",
                event_type="conversation.item.create",
            )
        if isinstance(image, str):
            url = image
        else:
            data = bytes(image)
            mime = _image_type(data)
            if mime is None:
                raise LocalProtocolError(
                    "the image bytes are not PNG, JPEG, GIF or WebP",
                    event_type="conversation.item.create",
                    hint="pass a URL or a data: URL for other formats",
                )
            url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        part = M.ContentPart(
            type="input_image", image_url=url, detail=msgspec.UNSET if detail is None else detail
        )
        self.send_message([part], trigger_response=trigger_response)

    def send_function_call_output(
        self, call_id: str, output: str, *, start_response: bool = True
    ) -> None:
        """Return a function call's result; by default a response follows."""
        item = M.FunctionCallOutputItem(call_id=call_id, output=output)
        self._write(E.ConversationItemCreate(item=item, event_id=self._new_id("item_create")))
        if start_response:
            self._request_response(None, manual=False)

    def send_mcp_response(
        self,
        request: M.McpApprovalRequestItem | str,
        approved: bool,
        *,
        reason: str | None = None,
    ) -> None:
        """Answer a hosted MCP tool's approval request (the request item, or its id)."""
        request_id = request if isinstance(request, str) else request.id
        if not isinstance(request_id, str) or not request_id:
            raise LocalProtocolError(
                "the approval request has no id to answer",
                event_type="conversation.item.create",
                hint="pass the mcp_approval_request item from the server, or its id",
            )
        item = M.McpApprovalResponseItem(
            approval_request_id=request_id,
            approve=approved,
            reason=msgspec.UNSET if reason is None else reason,
        )
        self._write(
            E.ConversationItemCreate(
                item=item, previous_item_id=request_id, event_id=self._new_id("item_create")
            )
        )

    def create_response(
        self, options: M.ResponseCreateParams | Mapping[str, Any] | None = None
    ) -> None:
        """Ask for a response; deferred while another one is active (never two in flight).

        Without ``options`` it joins any other request waiting (one response answers them
        all, as the JS transport's ``requestResponse()``); with options it gets its own.
        """
        if options is not None and not isinstance(options, M.ResponseCreateParams):
            given = dict(options)
            try:
                options = msgspec.convert(given, M.ResponseCreateParams)
            except msgspec.ValidationError as exc:
                raise LocalProtocolError(
                    f"invalid response options: {exc}", event_type="response.create"
                ) from None
            dropped = first_dropped(given, msgspec.to_builtins(options), "")
            if dropped is not None:  # (typing ignores undeclared keys: a typo, say)
                raise LocalProtocolError(
                    f"invalid response options: {dropped} is not a response.create field",
                    event_type="response.create",
                )
        self._request_response(options, manual=options is not None)

    def interrupt(self, now: float, *, cancel: bool = True) -> None:
        """Stop the assistant: cancel the active response and cut what was not heard.

        Each queued assistant item is truncated at its played position (whole ms, never past
        the audio received); WebRTC and SIP clear the server's output buffer instead.
        """
        self._require_open("interrupt")
        self._interrupt(now, cancel=cancel)

    def playback_progress(self, item_id: str, played_ms: SupportsFloat) -> bool:
        """Report how much of an item's audio the user has heard; False if not tracked.

        ``played_ms`` is an int or float (a bool, NaN, infinity or a negative number is
        refused); typed loosely so that the compiled build checks it here too, not converts it.
        """
        if not finite_and_not_negative(played_ms):
            raise LocalProtocolError(
                f"played_ms must be a finite number of milliseconds >= 0, not {played_ms!r}"
            )
        return self._playback.progress(item_id, float(played_ms))

    def forget_playback(self) -> None:
        """The assistant audio played so far is gone, unheard by anyone who matters (a phone
        bridge's stream restarted): an interruption cuts none of it; audio still arriving is
        tracked afresh."""
        self._playback.clear()

    def reset_history(self, items: Sequence[M.Item]) -> None:
        """Make the server's conversation match ``items``: deletes, then creates, by item id."""
        deletes, creates, warnings = diff_history(self._history.items(), items)
        for message in warnings:
            self._events.append(ProtocolWarning(message=message))
        for event in [*deletes, *creates]:
            self._write(event)

    def send_event(self, event: Mapping[str, Any] | E.TypedClientEvent) -> None:
        """Send any client event as it is (raw access).

        ``response.create`` still goes through the one-at-a-time sequencer, and
        ``response.cancel`` is remembered, so the session's invariants hold.
        """
        raw = event if isinstance(event, Mapping) else None
        kind = raw.get("type") if raw is not None else getattr(event, "type", None)
        if kind == "response.create":
            if raw is not None:
                self._require_open("response.create")
                self._sequencer.request_raw(dict(raw))
                self._flush_creates()
            else:
                params = event.response if isinstance(event, E.ResponseCreate) else None
                self._request_response(
                    params if isinstance(params, M.ResponseCreateParams) else None, manual=True
                )
            return
        if kind == "response.cancel":
            self._sequencer.begin_cancel()
        self._write(dict(raw) if raw is not None else event)

    # --------------------------------------------------------------------- internals --

    def _new_id(self, kind: str) -> str:
        return self._ids(kind)

    def _require_open(self, what: str) -> None:
        if self._state is _CLOSED:
            raise ConnectionClosed(
                f"cannot {what}: the connection is closed; a new connection needs a new"
                " ClientSession",
                state="CLOSED",
            )
        if self._state is _IDLE or self._state is _CLOSING:
            fix = (
                "call connection_made() first"
                if self._state is _IDLE
                else "close() was called; a new connection needs a new ClientSession"
            )
            raise LocalProtocolError(
                f"cannot {what} in state {self._state.value}: {fix}", state=self._state.value
            )

    def _write(self, event: Any) -> None:
        kind = event.get("type") if isinstance(event, dict) else event.type
        self._require_open(str(kind))
        text = serialize_client_event(event, dialect=self.options.dialect)
        event_id = event.get("event_id") if isinstance(event, dict) else event.event_id
        self._enqueue(str(kind), text, event_id if isinstance(event_id, str) else None)

    def _enqueue(self, kind: str, text: str, event_id: str | None) -> None:
        size = len(text) if text.isascii() else len(text.encode())  # (limits are in bytes)
        if size > self._max_outgoing:
            raise LocalProtocolError(
                f"{kind} is {size} bytes; this transport carries at most {self._max_outgoing}",
                event_type=kind,
                state=self._state.value,
            )
        queue = self._outbox
        if self._state is _CONNECTING and kind not in _NOT_HELD:
            queue = self._held
        if len(queue) >= self.options.limits.max_pending_messages:
            raise LocalProtocolError(
                f"{len(queue)} messages are waiting: drain messages_to_send() first",
                event_type=kind,
                state=self._state.value,
            )
        queue.append(text)
        if event_id is not None:
            self._sent_types[event_id] = kind
            if len(self._sent_types) > 256:
                self._sent_types.popitem(last=False)

    def _become_connected(self) -> None:
        self._connect_deadline = None
        self._state = _CONNECTED
        self._outbox.extend(self._held)
        self._held.clear()
        self._events.append(ConnectionChange(status=ConnectionStatus.CONNECTED))
        self._flush_creates()  # what was asked for while connecting

    def _request_response(self, params: M.ResponseCreateParams | None, *, manual: bool) -> None:
        self._require_open("response.create")
        self._sequencer.request(params, manual=manual)
        self._flush_creates()

    def _flush_creates(self) -> None:
        # Only once connected: a create held back with the WebRTC profile's other messages
        # would count as in flight before it is on the wire, and a response the server starts
        # meanwhile (VAD) would pass for its answer.
        if self._state is not _CONNECTED:
            return
        request = self._sequencer.next_to_send()
        if request is None:
            return
        given = request.extra.get("event_id") if request.extra is not None else None
        # (the id an error names when it refuses this create: the one on the wire)
        event_id = given if isinstance(given, str) else self._new_id("response_create")
        self._write(_create_event(request, event_id))
        self._sequencer.sent(request, event_id)

    def _interrupt(self, now: float, *, cancel: bool) -> None:
        cancelled = self._sequencer.begin_cancel() if cancel else None
        if cancelled is not None:
            self._write(
                E.ResponseCancel(
                    # a response that came without an id: cancel "the active one"
                    response_id=cancelled or msgspec.UNSET,
                    event_id=self._new_id("response_cancel"),
                )
            )
            _remember(self._discarded, cancelled)
        if self._profile is _PHONE:
            # the line plays whatever reaches it: a response cancelled (by us, or by the
            # server's turn detection) before its audio arrived must not reach it late; one
            # the server cancels itself is interrupted all the same (and needs no cancel from
            # us later), as the JS transport's Twilio bridge has it
            for response_id in self._sequencer.active:
                _remember(self._discarded, response_id)
            if cancelled is None:
                cancelled = self._sequencer.begin_cancel()
        truncated = []
        if self._profile in _SERVER_OUTPUT_BUFFER:
            # the server plays the audio, so it knows what was heard and truncates itself
            self._write(
                E.OutputAudioBufferClear(event_id=self._new_id("output_audio_buffer_clear"))
            )
            unheard = []
        else:
            unheard = self._playback.unheard(now)
        for item, played in unheard:
            truncated.append(
                TruncatedItem(
                    response_id=item.response_id,
                    item_id=item.item_id,
                    content_index=item.content_index,
                    audio_end_ms=played,
                    received_ms=item.received_whole_ms,
                )
            )
            _remember(self._discarded, item.response_id)
        self._playback.clear()
        if cancelled is None and not truncated:
            return  # nothing was playing: nothing to tell
        response_id = cancelled if cancelled is not None else truncated[0].response_id
        self._events.append(AudioInterrupted(response_id=response_id, truncated=tuple(truncated)))
        for cut in truncated:
            self._write(
                E.ConversationItemTruncate(
                    item_id=cut.item_id,
                    content_index=cut.content_index,
                    audio_end_ms=cut.audio_end_ms,
                    event_id=self._new_id("item_truncate"),
                )
            )

    def _retrieve(self, item_id: str) -> None:
        if item_id in self._retrieving or self._state is not _CONNECTED:
            return
        _remember(self._retrieving, item_id, limit=256)  # (a retrieve the server refused stays)
        self._write(
            E.ConversationItemRetrieve(item_id=item_id, event_id=self._new_id("item_retrieve"))
        )

    def _history_changed(self, item: M.Item, previous_item_id: str | None) -> None:
        self._events.append(ItemUpdate(item=item, previous_item_id=previous_item_id))
        self._events.append(HistoryUpdated(history=self._history.items()))

    # ------------------------------------------------------------------ server events --

    def _on_session(self, event: E.SessionCreated | E.SessionUpdated, now: float) -> None:
        self.server_session = event.session
        if isinstance(event.session, M.RealtimeSession):
            self._bytes_per_second = _bytes_per_second(output_format_of(event.session))
        if isinstance(event, E.SessionUpdated) and self._state is _CONNECTING:
            self._become_connected()

    def _on_error(self, event: E.ErrorEvent, now: float) -> None:
        error = event.error
        event_id = error.event_id if isinstance(error.event_id, str) else None
        code = error.code if isinstance(error.code, str) else None
        released = self._sequencer.create_failed(event_id, code, error.message)
        self._events.append(
            ServerError(
                event=event,
                client_event_type=self._sent_types.get(event_id) if event_id else None,
            )
        )
        if released:
            self._flush_creates()

    def _on_response_created(self, event: E.ResponseCreated, now: float) -> None:
        response = event.response
        response_id = response.id if isinstance(response.id, str) else ""
        self._sequencer.response_created(response_id, response.conversation_id is not None)
        _remember(self._responses, response_id)
        self._events.append(TurnStarted(response=response))

    def _on_response_done(self, event: E.ResponseDone, now: float) -> None:
        response = event.response
        response_id = response.id if isinstance(response.id, str) else ""
        if response_id not in self._responses:
            self._check_response(response_id, event)
        self._sequencer.response_done(response_id)
        self._discarded.pop(response_id, None)
        self._playback.response_done(response_id)
        usage = response.usage if isinstance(response.usage, M.Usage) else None
        if usage is not None:
            self._usage = _add_usage(self._usage, usage)
            self._events.append(UsageUpdate(usage=usage, totals=self._usage))
        self._events.append(TurnDone(response=response, usage=usage))
        if self._sequencer.pending:
            self._flush_creates()

    def _on_output_item_added(self, event: E.ResponseOutputItemAdded, now: float) -> None:
        if event.response_id not in self._responses:
            self._check_response(event.response_id, event)
        # a call added already completed is announced now, as the JS transport does (one
        # added in progress waits for its .done)
        self._announce_call(event.item, event.response_id, finished=_COMPLETED)

    def _check_response(self, response_id: str, event: E.ServerEvent) -> None:
        """Report (once) a response this session never saw created (the caller checked
        ``_responses``): tolerated, not fatal."""
        if response_id in self._strangers:
            return
        _remember(self._strangers, response_id)
        self._events.append(
            ProtocolWarning(
                message=f"{event.type} for unknown response {response_id!r}", event=event
            )
        )

    def _on_audio_done(self, event: E.ResponseOutputAudioDone, now: float) -> None:
        if event.response_id not in self._responses:
            self._check_response(event.response_id, event)
        self._playback.complete(event.item_id)
        if event.response_id not in self._discarded:
            self._events.append(
                AudioDone(
                    response_id=event.response_id,
                    item_id=event.item_id,
                    content_index=event.content_index,
                )
            )

    def _on_text_delta(self, event: E.ResponseOutputTextDelta, now: float) -> None:
        if event.response_id not in self._responses:
            self._check_response(event.response_id, event)
        self._events.append(TextDelta(event.response_id, event.item_id, event.delta))

    def _on_response_part(self, event: Any, now: float) -> None:
        """An event of a response's output that changes nothing here: only its response id
        is checked."""
        if event.response_id not in self._responses:
            self._check_response(event.response_id, event)

    def _announce_call(self, item: M.Item, response_id: str, finished: tuple[object, ...]) -> None:
        """Announce a function call item whose status is one of ``finished``. Only a finished
        call is one: a response cancelled (or cut by max_output_tokens) in the middle of a
        call ends it "incomplete", its arguments cut short. (Its
        response.function_call_arguments.done may carry those cut arguments too.)"""
        if (
            isinstance(item, M.FunctionCallItem)
            and isinstance(item.call_id, str)
            and item.status in finished
        ):
            item_id = item.id if isinstance(item.id, str) else ""
            self._function_call(item.call_id, item.name, item.arguments, item_id, response_id)

    def _function_call(
        self, call_id: str, name: str, arguments: str, item_id: str, response_id: str | None
    ) -> None:
        if call_id in self._calls_seen:
            return
        _remember(self._calls_seen, call_id, limit=1024)
        self._events.append(
            FunctionCall(
                function=name,
                call_id=call_id,
                arguments=arguments,
                item_id=item_id,
                response_id=response_id,
            )
        )

    def _on_output_item_done(self, event: E.ResponseOutputItemDone, now: float) -> None:
        if event.response_id not in self._responses:
            self._check_response(event.response_id, event)
        item = event.item
        self._announce_call(item, event.response_id, finished=_FINISHED)
        # The beta service sends no conversation.item.done: the item it added in progress
        # (conversation.item.created) is finished here. (GA: already done, nothing to do.)
        if isinstance(item.id, str):
            kept = self._history.get(item.id)
            if kept is not None and kept.status == "in_progress":
                done = _as_kept(item, "completed")
                self._history.replace(done)
                self._history_changed(done, self._history.previous_of(item.id))

    def _on_item_added(
        self, event: E.ConversationItemAdded | E.ConversationItemCreated, now: float
    ) -> None:
        previous = event.previous_item_id if isinstance(event.previous_item_id, str) else None
        item = _as_kept(event.item, "in_progress")
        if self._history.put(item, previous, place=True) and previous is not None:
            self._retrieve(previous)
        self._history_changed(item, previous)

    def _on_item_done(self, event: E.ConversationItemDone, now: float) -> None:
        previous = event.previous_item_id if isinstance(event.previous_item_id, str) else None
        item = _as_kept(event.item, "completed")
        if (
            not self._history.replace(item)
            and self._history.put(item, previous, place=True)
            and previous is not None
        ):
            self._retrieve(previous)
        self._history_changed(item, previous)
        if isinstance(item, _MCP_ITEMS):
            self._mcp_item_done(item)

    def _mcp_item_done(
        self, item: M.McpListToolsItem | M.McpApprovalRequestItem | M.McpCallItem
    ) -> None:
        """Announce a finished hosted-MCP item once (after its item_update), as the JS
        transport does on ``conversation.item.done``."""
        if isinstance(item.id, str):
            if item.id in self._mcp_seen:
                return
            _remember(self._mcp_seen, item.id, limit=1024)
        if isinstance(item, M.McpListToolsItem):
            tools = tuple(item.tools) if isinstance(item.tools, list) else ()
            self._events.append(
                McpToolsListed(server_label=item.server_label, tools=tools, item=item)
            )
        elif isinstance(item, M.McpApprovalRequestItem):
            self._events.append(McpApprovalRequested(item=item))
        else:
            self._events.append(McpToolCallCompleted(item=item))

    def _on_mcp_in_progress(
        self, event: E.ResponseMcpCallInProgress | E.McpListToolsInProgress, now: float
    ) -> None:
        # The JS transport reads the item back so that history holds it while it runs; one
        # the history already has needs no round trip.
        if self._history.get(event.item_id) is None:
            self._retrieve(event.item_id)

    def _on_item_retrieved(self, event: E.ConversationItemRetrieved, now: float) -> None:
        item = _as_kept(event.item, "completed")
        if not self._history.replace(item, keep_transcripts=True):
            self._history.put(item, None, place=False)
        item_id = item.id
        if not isinstance(item_id, str):
            return  # (history keeps items by id: this one is not kept)
        self._retrieving.pop(item_id, None)
        transcript = self._transcripts.pop(item_id, None)
        if transcript is not None:
            self._history.set_transcript(item_id, *transcript)  # (input items come without)
        kept = self._history.get(item_id)
        assert kept is not None  # (just put there)
        self._history_changed(kept, self._history.previous_of(item_id))

    def _on_item_truncated(self, event: E.ConversationItemTruncated, now: float) -> None:
        # The server cut the audio and dropped that part's transcript: read the item back as
        # the server now has it (as the JS SDK does); the transcript known here is kept.
        self._retrieve(event.item_id)

    def _on_item_deleted(self, event: E.ConversationItemDeleted, now: float) -> None:
        self._playback.forget(event.item_id)  # nothing left to truncate for it
        self._events.append(ItemDeleted(item_id=event.item_id))
        if self._history.delete(event.item_id):
            self._events.append(HistoryUpdated(history=self._history.items()))

    def _on_transcription(self, event: E.InputAudioTranscriptionCompleted, now: float) -> None:
        if self._history.get(event.item_id) is None:
            # an item this client never saw (forgotten, or added before a sideband session
            # attached): read it back, and attach the transcript when it comes
            self._transcripts[event.item_id] = (event.content_index, event.transcript)
            while len(self._transcripts) > 64:
                del self._transcripts[next(iter(self._transcripts))]
            self._retrieve(event.item_id)
            return
        item = self._history.set_transcript(event.item_id, event.content_index, event.transcript)
        if item is None:
            self._events.append(
                ProtocolWarning(
                    message=f"transcript for unknown item {event.item_id!r}", event=event
                )
            )
            return
        self._history_changed(item, self._history.previous_of(event.item_id))

    def _on_speech_started(self, event: E.InputAudioBufferSpeechStarted, now: float) -> None:
        if self._profile not in _CLIENT_HANDLES_TRUNCATION or self._state is not _CONNECTED:
            return  # (once close() was called the session sends nothing of its own)
        # the server cancels by itself when its turn detection interrupts responses
        self._interrupt(now, cancel=not _server_interrupts(self.server_session))

    def _on_invalid(self, event: E.InvalidEvent, now: float) -> None:
        self._events.append(
            ProtocolWarning(message=f"malformed {event.type}: {event.problem}", event=event)
        )


# What receive() reads for every message is Final: the compiled build (mypyc) reads a Final
# module name from a C static, any other from the module's dict, one lookup at each use.
_AUDIO_DELTA: Final = E.ResponseOutputAudioDelta
_TRANSCRIPT_DELTA: Final = E.ResponseOutputAudioTranscriptDelta
_AUDIO_CHUNK: Final = AudioChunk
_TRANSCRIPT_CHUNK: Final = AudioTranscriptDelta
_DECODE: Final = decode_ga_server_event
_INVALID = E.InvalidEvent
_MCP_ITEMS = (M.McpListToolsItem, M.McpApprovalRequestItem, M.McpCallItem)
#: The status of a finished item (one that has none is taken as finished at its .done).
_FINISHED: tuple[object, ...] = ("completed", msgspec.UNSET)
#: The status of an item added already finished (one that has none is in progress).
_COMPLETED: tuple[object, ...] = ("completed",)

#: What each server event changes in the session: ``handler(session, event, now)`` (one
#: table for every session, not a dict of bound methods each).
_HANDLERS: Final[dict[type, Callable[[ClientSession, Any, float], None]]] = {
    E.SessionCreated: ClientSession._on_session,
    E.SessionUpdated: ClientSession._on_session,
    E.ErrorEvent: ClientSession._on_error,
    E.ResponseCreated: ClientSession._on_response_created,
    E.ResponseDone: ClientSession._on_response_done,
    E.ResponseOutputAudioDone: ClientSession._on_audio_done,
    E.ResponseOutputTextDelta: ClientSession._on_text_delta,
    E.ResponseOutputItemAdded: ClientSession._on_output_item_added,
    E.ResponseOutputItemDone: ClientSession._on_output_item_done,
    E.ResponseFunctionCallArgumentsDone: ClientSession._on_response_part,
    E.ResponseFunctionCallArgumentsDelta: ClientSession._on_response_part,
    E.ResponseOutputTextDone: ClientSession._on_response_part,
    E.ResponseOutputAudioTranscriptDone: ClientSession._on_response_part,
    E.ResponseContentPartAdded: ClientSession._on_response_part,
    E.ResponseContentPartDone: ClientSession._on_response_part,
    E.ConversationItemAdded: ClientSession._on_item_added,
    E.ConversationItemCreated: ClientSession._on_item_added,
    E.ConversationItemDone: ClientSession._on_item_done,
    E.ConversationItemRetrieved: ClientSession._on_item_retrieved,
    E.ConversationItemTruncated: ClientSession._on_item_truncated,
    E.ConversationItemDeleted: ClientSession._on_item_deleted,
    E.InputAudioTranscriptionCompleted: ClientSession._on_transcription,
    E.InputAudioBufferSpeechStarted: ClientSession._on_speech_started,
    E.ResponseMcpCallInProgress: ClientSession._on_mcp_in_progress,
    E.McpListToolsInProgress: ClientSession._on_mcp_in_progress,
    E.InvalidEvent: ClientSession._on_invalid,
}


# ------------------------------------------------------------------------------ helpers --


def _create_event(request: PendingCreate, event_id: str) -> Any:
    if request.extra is not None:
        return {**request.extra, "event_id": event_id}
    if request.params is None:
        return E.ResponseCreate(event_id=event_id)
    return E.ResponseCreate(response=request.params, event_id=event_id)


_IMAGE_DETAILS = ("auto", "low", "high")


def _image_type(data: bytes) -> str | None:
    """The MIME type of image bytes, from their signature (the formats the service takes)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _remember(table: OrderedDict[str, None], key: str, limit: int = 64) -> None:
    table[key] = None
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)


def _bytes_per_second(fmt: M.AudioFormat) -> int:
    if fmt.type in ("audio/pcmu", "audio/pcma"):
        return 8000
    rate = fmt.rate if isinstance(fmt.rate, int) and fmt.rate > 0 else 24000
    return rate * 2


def _server_interrupts(session: M.SessionConfig | None) -> bool:
    """Whether the server's own turn detection cancels responses on speech (default yes)."""
    if not isinstance(session, M.RealtimeSession) or not isinstance(session.audio, M.AudioConfig):
        return True
    audio_input = session.audio.input
    if not isinstance(audio_input, M.AudioInput):
        return True
    detection = audio_input.turn_detection
    if detection is None:
        return False
    if isinstance(detection, (M.ServerVad, M.SemanticVad)):
        return detection.interrupt_response is not False
    return True


def _as_kept(item: M.Item, status: str) -> M.Item:
    """The item as history keeps it: audio bytes dropped from its parts (transcripts stay),
    an assistant's older ``audio`` content named ``output_audio``, and a message's missing
    ``status`` filled in, as the JS transport does (``in_progress`` when added,
    ``completed`` when done or retrieved)."""
    if not isinstance(item, M.MessageItem):
        return item
    assistant = item.role == "assistant"
    content = [_part_as_kept(part, assistant) for part in item.content]
    if content != item.content:  # (a part kept as it is compares by identity first)
        item = msgspec.structs.replace(item, content=content)
    if item.status is msgspec.UNSET:
        item = msgspec.structs.replace(item, status=status)
    return item


def _part_as_kept(part: M.ContentPart, assistant: bool) -> M.ContentPart:
    if assistant and part.type == "audio":
        part = msgspec.structs.replace(part, type="output_audio")
    if isinstance(part.audio, str):
        part = msgspec.structs.replace(part, audio=msgspec.UNSET)
    return part


_NO_INPUT_DETAILS = M.InputTokenDetails()
_NO_OUTPUT_DETAILS = M.OutputTokenDetails()


def _add_usage(totals: UsageTotals, usage: M.Usage) -> UsageTotals:
    # (a count missing, or dropped as malformed, is UNSET: falsy, so "or 0" counts it as 0)
    inputs = usage.input_token_details or _NO_INPUT_DETAILS
    outputs = usage.output_token_details or _NO_OUTPUT_DETAILS
    input_tokens = usage.input_tokens or 0
    output_tokens = usage.output_tokens or 0
    return UsageTotals(
        responses=totals.responses + 1,
        input_tokens=totals.input_tokens + input_tokens,
        output_tokens=totals.output_tokens + output_tokens,
        total_tokens=totals.total_tokens + input_tokens + output_tokens,
        input_text_tokens=totals.input_text_tokens + (inputs.text_tokens or 0),
        input_audio_tokens=totals.input_audio_tokens + (inputs.audio_tokens or 0),
        input_image_tokens=totals.input_image_tokens + (inputs.image_tokens or 0),
        cached_tokens=totals.cached_tokens + (inputs.cached_tokens or 0),
        output_text_tokens=totals.output_text_tokens + (outputs.text_tokens or 0),
        output_audio_tokens=totals.output_audio_tokens + (outputs.audio_tokens or 0),
    )
