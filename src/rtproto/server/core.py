"""The server role of a Realtime session, with no I/O: the emulator's protocol core.

Feed it what the client sent (:meth:`ServerSession.receive`, or caller audio on a media track
with :meth:`ServerSession.feed_audio`) and the time; after every call send what
:meth:`ServerSession.messages_to_send` returns, play what :meth:`ServerSession.next_output_audio`
returns (WebRTC/SIP), read :meth:`ServerSession.next_event` logs, and call
:meth:`ServerSession.handle_timer` at :meth:`ServerSession.get_timer`. When
:attr:`ServerSession.close_requested` is set, close the connection with that code and reason.

Behaviour follows shared/spec/realtime-protocol.md; the section numbers in comments point there
(section 8 is the emulator checklist). Client mistakes are answered with ``error`` events, as
the service does; nothing the client sends raises.
"""

from __future__ import annotations

import copy
import heapq
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from .. import models as M
from ..audio import decode_base64, encode_base64
from ..codec import serialize_server_event
from ..config import DTMF_KEYS
from ..dialect import Dialect, from_beta, to_beta
from ..errors import LocalProtocolError
from . import log as L
from . import validate as V
from .options import ServerOptions, ServiceIds, default_instructions
from .responder import (
    EchoResponder,
    FunctionCallPart,
    ResponseContext,
    ResponsePlan,
    SpeechPart,
    synthesize_speech,
)
from .response import (
    BYTES_PER_MS,
    Output,
    Step,
    audio_tokens_in,
    audio_tokens_out,
    decode_input,
    encode_output,
    split_arguments,
    split_words,
    text_tokens,
    usage_object,
    zero_usage,
)
from .vad import SAMPLES_PER_MS, SEMANTIC_SILENCE_MS, EnergyVad, VadSettings

__all__ = ["SUPPORTED_CLIENT_EVENTS", "ServerSession", "merge_session_configs"]

#: The client event types a GA WebSocket session accepts, in the order the service lists them
#: in its ``invalid_value`` error (spec 6.2, verbatim from a 2026 probe).
SUPPORTED_CLIENT_EVENTS = (
    "session.update",
    "session.close",
    "input_audio_buffer.append",
    "session.input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.truncate",
    "conversation.item.delete",
    "conversation.item.retrieve",
    "response.create",
    "response.cancel",
)
# WebRTC/SIP sessions also take output_audio_buffer.clear (its place in the list: a guess).
_MEDIA_CLIENT_EVENTS = (
    *SUPPORTED_CLIENT_EVENTS[:6],
    "output_audio_buffer.clear",
    *SUPPORTED_CLIENT_EVENTS[6:],
)

_COMMON = {"type": V.Str(), "event_id": V.Str()}
_ENVELOPES: dict[str, V.Object] = {
    "session.update": V.Object({**_COMMON, "session": V.AnyValue()}, ["session"]),
    "session.close": V.Object(_COMMON),
    "input_audio_buffer.append": V.Object({**_COMMON, "audio": V.Str()}, ["audio"]),
    "input_audio_buffer.commit": V.Object(_COMMON),
    "input_audio_buffer.clear": V.Object(_COMMON),
    "output_audio_buffer.clear": V.Object(_COMMON),
    "conversation.item.create": V.Object(
        {**_COMMON, "previous_item_id": V.Nullable(V.Str()), "item": V.AnyValue()}, ["item"]
    ),
    "conversation.item.retrieve": V.Object({**_COMMON, "item_id": V.Str()}, ["item_id"]),
    "conversation.item.delete": V.Object({**_COMMON, "item_id": V.Str()}, ["item_id"]),
    "conversation.item.truncate": V.Object(
        {
            **_COMMON,
            "item_id": V.Str(),
            "content_index": V.Number(0, None, integer=True),
            "audio_end_ms": V.Number(0, None, integer=True),
        },
        ["item_id", "content_index", "audio_end_ms"],
    ),
    "response.create": V.Object({**_COMMON, "response": V.Nullable(V.AnyValue())}),
    "response.cancel": V.Object({**_COMMON, "response_id": V.Str()}),
}
_ENVELOPES["session.input_audio_buffer.append"] = _ENVELOPES["input_audio_buffer.append"]

_FORMAT_PCM = {"type": "audio/pcm", "rate": 24000}
_SERVER_VAD_DEFAULTS: dict[str, Any] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 200,
    "idle_timeout_ms": None,
    "create_response": True,
    "interrupt_response": True,
}
_SEMANTIC_VAD_DEFAULTS: dict[str, Any] = {
    "type": "semantic_vad",
    "eagerness": "auto",
    "create_response": True,
    "interrupt_response": True,
}
# Key order of session.created.session (spec 2.5, live capture); the optional reasoning
# fields go before expires_at.
_SESSION_ORDER = (
    "type",
    "object",
    "id",
    "model",
    "output_modalities",
    "instructions",
    "tools",
    "tool_choice",
    "max_output_tokens",
    "tracing",
    "truncation",
    "prompt",
    "reasoning",
    "parallel_tool_calls",
    "expires_at",
    "audio",
    "include",
)
#: Image input tokens per image (an approximation).
_IMAGE_TOKENS = 85
#: Seconds between text (or argument) deltas when pacing in real time.
_TEXT_DELTA_S = 0.05
_ARGUMENT_DELTA_S = 0.02
#: Seconds from ``response.done`` to ``rate_limits.updated`` in GA (service observations 10).
_GA_RATE_LIMITS_DELAY = 0.043
#: The beta ``requests`` entry of ``rate_limits.updated``: it never moved in the recordings.
_BETA_REQUESTS_LIMIT = {
    "name": "requests",
    "limit": 20000,
    "remaining": 19999,
    "reset_seconds": 0.003,
}
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass
class _Entry:
    """One conversation item: its wire shape (no audio) and its audio by content index.

    User audio is kept as PCM16 24 kHz; assistant audio in the output format it was sent in
    (``output_format``).
    """

    item: dict[str, Any]
    audio: dict[int, bytes] = field(default_factory=dict)
    output_format: str | None = None
    frozen: bool = False  # truncated while its response still streams: keep no more audio
    typed: M.Item | None = None

    @property
    def id(self) -> str:
        item_id: str = self.item["id"]
        return item_id

    def duration_ms(self, index: int) -> float:
        data = self.audio.get(index, b"")
        return len(data) / BYTES_PER_MS[self.output_format or "audio/pcm"]


@dataclass
class _Playback:
    """A response's audio playing on the media track (WebRTC/SIP)."""

    response_id: str
    started_at: float
    out_of_band: bool
    segments: list[tuple[str, int, float]] = field(default_factory=list)  # item, index, ms
    stop_task: int | None = None

    @property
    def total_ms(self) -> float:
        return sum(ms for _, _, ms in self.segments)

    def played_ms(self, at: float) -> float:
        return min(max((at - self.started_at) * 1000.0, 0.0), self.total_ms)


@dataclass
class _Response:
    id: str
    out_of_band: bool
    modalities: list[str]
    max_output_tokens: int | str
    output_format: dict[str, Any]
    voice: Any
    metadata: dict[str, Any] | None
    input_usage: tuple[int, int, int, int, int]  # text, audio, image, cached, cached text
    temperature: float = 0.8  # beta dialect only
    outputs: list[Output] = field(default_factory=list)
    ops: list[tuple[float, int, int, int]] = field(default_factory=list)
    cursor: int = 0
    task: int | None = None
    incomplete: bool = False
    audio_started_at: float | None = None
    audio_ms: float = 0.0
    entries: dict[str, _Entry] = field(default_factory=dict)


_OPEN, _STEP, _CLOSE, _DONE = range(4)


class ServerSession:
    """The server role of one Realtime connection, with no I/O.

    Read-only state for tests and tools: :attr:`session` (the effective configuration),
    :attr:`conversation` (items in order), :attr:`active_response_id`.
    """

    def __init__(self, options: ServerOptions | None = None) -> None:
        self.options = options = options or ServerOptions()
        # the default generator needs the start time: made by connection_made()
        self._service_ids: ServiceIds | None = None
        self._ids: Callable[[str], str] = options.id_generator or self._service_id
        self._responder = options.responder if options.responder is not None else EchoResponder()
        self._beta = options.dialect is Dialect.BETA
        self._media = options.profile != "websocket"
        self._rng = np.random.default_rng([options.seed, 1])
        self._state = "new"
        #: ``(code, reason)`` once the server wants the connection closed (then close it).
        self.close_requested: tuple[int, str] | None = None
        self._outbox: list[str] = []
        self._audio_out: deque[tuple[str, bytes]] = deque()
        self._logs: deque[L.ServerLog] = deque(maxlen=options.max_pending_logs)
        self._tasks: list[tuple[float, int]] = []
        self._live: dict[int, Callable[[float], None]] = {}
        self._seq = 0
        self._session: dict[str, Any] = {}
        self._temperature = 0.8  # beta dialect only
        self._clock_offset = options.wall_clock_offset  # unix time - now
        self._conversation_id = ""
        self._entries: list[_Entry] = []
        # input audio: PCM16 24 kHz since the last commit; sample positions are absolute
        self._buffer = bytearray()
        self._buffer_start = 0
        self._total = 0
        self._carry = b""
        self._vad = EnergyVad()
        self._speech_item: str | None = None
        self._speech_from = 0
        # responses
        self._responses: dict[str, _Response] = {}
        self._default: str | None = None
        self._count = 0
        self._previous_input = 0
        self._assistant_audio = False
        self._playbacks: list[_Playback] = []
        self._last_audio_response: str | None = None
        self._idle_task: int | None = None

    # ------------------------------------------------------------------ read-only state --

    @property
    def session(self) -> M.RealtimeSession:
        """The effective session configuration (as ``session.updated`` would carry it)."""
        return msgspec.convert(self._session, M.RealtimeSession)

    @property
    def conversation(self) -> tuple[M.Item, ...]:
        """The conversation items, in order, without audio bytes."""
        return tuple(self._typed(entry) for entry in self._entries)

    @property
    def active_response_id(self) -> str | None:
        """The response writing to the default conversation now, if any."""
        return self._default

    @property
    def input_buffer_ms(self) -> float:
        """Milliseconds of uncommitted input audio."""
        return len(self._buffer) / 48.0

    # ------------------------------------------------------------------------ draining --

    def messages_to_send(self) -> list[str]:
        """Server events (JSON text, in order) to send now; clears the outbox."""
        out, self._outbox = self._outbox, []
        return out

    def next_output_audio(self) -> tuple[str, bytes] | None:
        """WebRTC/SIP: the next ``(response_id, PCM16 24 kHz chunk)`` for the media track."""
        return self._audio_out.popleft() if self._audio_out else None

    def next_event(self) -> L.ServerLog | None:
        """The next log record, or ``None``."""
        return self._logs.popleft() if self._logs else None

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` should next run (same clock as ``now``), if ever."""
        tasks = self._tasks
        while tasks and tasks[0][1] not in self._live:
            heapq.heappop(tasks)
        return tasks[0][0] if tasks else None

    def handle_timer(self, now: float) -> None:
        """Run everything due at ``now``: paced deltas, idle timeouts, session expiry."""
        if self._state == "open":
            self._check_drained()
            self._advance(now)

    # -------------------------------------------------------------------- connection --

    def connection_made(self, now: float, *, unix_time: float | None = None) -> None:
        """The client connected: queue ``session.created`` (spec 8.1).

        ``unix_time`` is the wall clock for ``expires_at``; by default
        ``now + options.wall_clock_offset``.
        """
        if self._state != "new":
            raise LocalProtocolError("connection_made() was already called", state=self._state)
        options = self.options
        self._state = "open"
        start = now + options.wall_clock_offset if unix_time is None else unix_time
        self._clock_offset = start - now
        if options.id_generator is None:
            self._service_ids = ServiceIds(options.seed, start)
        self._conversation_id = self._ids("conv_")
        instructions = options.instructions
        if instructions is None:
            instructions = default_instructions(options.model)
        self._session = {
            "type": "realtime",
            "object": "realtime.session",
            "id": self._ids("sess_"),
            "model": options.model,
            "output_modalities": ["audio"],
            "instructions": instructions,
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "truncation": "auto",
            "prompt": None,
            "expires_at": int(start + options.session_length),
            "audio": {
                "input": {
                    "format": dict(_FORMAT_PCM),
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": dict(_SERVER_VAD_DEFAULTS),
                },
                "output": {"format": dict(_FORMAT_PCM), "voice": "alloy", "speed": 1.0},
            },
            "include": None,
        }
        initial = options.initial_session
        if initial:  # a WebRTC call's client secret and offer (spec 1.2)
            update = {k: v for k, v in initial.items() if k not in ("type", "model")}
            self._apply_session(copy.deepcopy(update))
        self._send("session.created", session=self._session)
        if self._beta:
            conversation = {"id": self._conversation_id, "object": "realtime.conversation"}
            self._send("conversation.created", conversation=conversation)
        self._log(
            L.SessionStarted(
                session_id=self._session["id"],
                model=options.model,
                profile=options.profile,
                dialect=options.dialect.value,
            )
        )
        self._schedule(now + options.session_length, self._expire)

    @property
    def started(self) -> bool:
        """:meth:`connection_made` was called (the session runs, or ran)."""
        return self._state != "new"

    def attach(self, now: float) -> None:
        """Another event channel joins the running session (a SIP call's sideband socket):
        queue ``session.created`` with the session as it is now, for that channel.

        Raises:
            LocalProtocolError: the session is not running.
        """
        if self._state != "open":
            raise LocalProtocolError("attach() needs a running session", state=self._state)
        self._advance(now)
        self._send("session.created", session=self._session)

    def connection_lost(self, now: float) -> None:
        """The transport ended: stop everything (nothing more is sent)."""
        if self._state == "closed":
            return
        self._state = "closed"
        self._tasks.clear()
        self._live.clear()
        self._log(L.ConnectionEnded())

    # ------------------------------------------------------------------------ receive --

    def receive(self, message: str | bytes, now: float, *, binary: bool = False) -> None:
        """Handle one client message (JSON text; ``binary`` for a binary WebSocket frame).

        Every problem is answered with an ``error`` event (spec 6.2/6.3); the connection
        stays open. Messages after the close request or the connection's end are ignored.

        Raises:
            LocalProtocolError: called before :meth:`connection_made`, or with more than
                ``max_pending_messages`` events left undrained (a driver bug).
        """
        if self._state != "open":
            if self._state == "new":
                raise LocalProtocolError("receive() before connection_made()", state="new")
            return
        self._check_drained()
        self._advance(now)
        if self._state != "open":
            return
        self._tick(now)
        event_id: str | None = None
        try:
            event = self._decode(message, binary)
            if isinstance(event.get("event_id"), str):
                event_id = event["event_id"]
            self._dispatch(self._typed_event(event), event_id, now)
        except V.Reject as problem:
            self._error(problem.code, problem.message, problem.param, event_id)
        self._advance(now)

    def feed_audio(self, pcm24k: bytes, now: float) -> None:
        """WebRTC/SIP: caller audio from the media track, decoded to PCM16 24 kHz.

        Runs the same path as ``input_audio_buffer.append`` (buffer, VAD, barge-in).
        """
        if self._state != "open":
            if self._state == "new":
                raise LocalProtocolError("feed_audio() before connection_made()", state="new")
            return
        self._check_drained()
        self._advance(now)
        if self._state == "open":
            self._tick(now)
            self._add_audio(bytes(pcm24k), now)
            self._advance(now)

    def dtmf_received(self, key: str, now: float) -> None:
        """SIP: the caller pressed a keypad key (``0-9``, ``*``, ``#``, ``A-D``).

        Sends ``input_audio_buffer.dtmf_event_received`` (spec 8.8), which carries no
        ``event_id`` in the SDK's model, so none is sent.

        Raises:
            LocalProtocolError: not a SIP session, or not a keypad key.
        """
        if self.options.profile != "sip" or key not in DTMF_KEYS or len(key) != 1:
            raise LocalProtocolError(
                f"DTMF needs the sip profile and one of 0-9, *, #, A-D; got {key!r}",
                state=self._state,
            )
        if self._state != "open":
            return
        self._check_drained()
        self._advance(now)
        if self._state == "open":
            received_at = int(now + self._clock_offset)
            event = {
                "type": "input_audio_buffer.dtmf_event_received",
                "event": key,
                "received_at": received_at,
            }
            self._outbox.append(serialize_server_event(event))

    # -------------------------------------------------------------------- internals --

    def _check_drained(self) -> None:
        limit = self.options.max_pending_messages
        if len(self._outbox) >= limit or len(self._audio_out) >= limit:
            raise LocalProtocolError(
                f"{max(len(self._outbox), len(self._audio_out))} messages are waiting: drain "
                "messages_to_send() and next_output_audio() first",
                state=self._state,
            )

    def _log(self, record: L.ServerLog) -> None:
        self._logs.append(record)

    def _schedule(self, due: float, action: Callable[[float], None]) -> int:
        self._seq += 1
        self._live[self._seq] = action
        heapq.heappush(self._tasks, (due, self._seq))
        return self._seq

    def _cancel(self, task: int | None) -> None:
        if task is not None:
            self._live.pop(task, None)

    def _advance(self, now: float) -> None:
        tasks = self._tasks
        while tasks and self._state == "open":
            due, seq = tasks[0]
            if due > now:
                break
            heapq.heappop(tasks)
            action = self._live.pop(seq, None)
            if action is not None:
                self._tick(due)
                action(due)

    def _tick(self, now: float) -> None:
        """The time the default id generator mints at (its ids are time-ordered)."""
        if self._service_ids is not None:
            self._service_ids.now = now + self._clock_offset

    def _service_id(self, prefix: str) -> str:
        assert self._service_ids is not None, "ids are minted once connected"
        return self._service_ids(prefix)

    def _send(self, kind: str, **fields: Any) -> None:
        if self._service_ids is not None and kind.startswith("output_audio_buffer."):
            # WebRTC's output buffer events come from another generator (observations 6)
            event_id = self._service_ids.hex_event_id()
        else:
            event_id = self._ids("event_")
        event: dict[str, Any] = {"type": kind, "event_id": event_id, **fields}
        if self._beta:
            event = to_beta(event)
            if kind in ("session.created", "session.updated"):
                created = kind == "session.created"
                event["session"] = _beta_session(event["session"], self._temperature, created)
            elif kind in ("response.created", "response.done"):
                event["response"] = _beta_response(event["response"])
        self._outbox.append(serialize_server_event(event))

    def _error(
        self, code: str | None, message: str, param: str | None, event_id: str | None
    ) -> None:
        # spec 6.1: every key present; error.event_id is the client's or null
        error = {
            "type": "invalid_request_error",
            "code": code,
            "message": message,
            "param": param,
            "event_id": event_id,
        }
        self._send("error", error=error)
        self._log(L.ClientError(code=code, message=message, param=param, event_id=event_id))

    def _obfuscation(self) -> str:
        size = int(self._rng.integers(4, 17))
        return "".join(_BASE62[i] for i in self._rng.integers(0, 62, size))

    def _expire(self, at: float) -> None:
        length = self.options.session_length
        message = f"Your session hit the maximum duration of {length / 60.0:g} minutes."
        self._error("session_expired", message, None, None)
        self._log(L.SessionExpired(max_duration=length))
        self._request_close(1001, message)  # spec 6.3

    def _request_close(self, code: int, reason: str) -> None:
        """Ask the driver to close the connection; nothing more happens in this session."""
        self.close_requested = (code, reason)
        self._state = "closing"
        self._tasks.clear()
        self._live.clear()

    # --- parsing ----------------------------------------------------------------------------

    def _decode(self, message: str | bytes, binary: bool) -> dict[str, Any]:
        if binary:
            raise V.Reject("invalid_event", "Invalid event: binary frames are not supported.")
        limit = self.options.max_message_size
        size = len(message)
        if size > limit // 4 and isinstance(message, str) and not message.isascii():
            size = len(message.encode())  # the limit is in bytes of UTF-8
        if size > limit:
            raise V.Reject(
                "invalid_event",
                f"Invalid event: the message is {size} bytes, more than the maximum of {limit}.",
            )
        try:
            event: Any = msgspec.json.decode(message)
        except (msgspec.DecodeError, UnicodeError, RecursionError) as exc:
            raise V.Reject(
                "invalid_json", f"Invalid event: failed to parse JSON value. {exc}"
            ) from None
        if not isinstance(event, dict):
            raise V.Reject("invalid_event", "Invalid event: the event must be a JSON object.")
        decoded: dict[str, Any] = event
        return decoded

    def _typed_event(self, event: dict[str, Any]) -> dict[str, Any]:
        if "type" not in event:
            raise V.Reject("invalid_event", "The 'type' field is missing.")
        if not isinstance(event["type"], str):
            raise V.invalid_type("type", "a string", event["type"])
        parsed: dict[str, Any] = self._from_beta(event) if self._beta else event
        return parsed

    def _from_beta(self, event: dict[str, Any]) -> dict[str, Any]:
        """Beta shapes to GA ones (spec 5); beta-only keys are checked and set aside here."""
        kind = event["type"]
        session = event.get("session")
        if kind == "session.update" and isinstance(session, dict):
            for key in session:
                if key not in V.BETA_SESSION_KEYS:
                    raise V.unknown(f"session.{key}")
            if "temperature" in session:
                V.TEMPERATURE.check(session["temperature"], "session.temperature")
        response = event.get("response")
        temperature: Any = None
        if kind == "response.create" and isinstance(response, dict) and "temperature" in response:
            temperature = response["temperature"]
            V.TEMPERATURE.check(temperature, "response.temperature")
            event = {**event, "response": {k: v for k, v in response.items() if k != "temperature"}}
        converted = from_beta(event)
        if temperature is not None:
            converted["_temperature"] = temperature
        if kind == "session.update" and isinstance(session, dict) and "temperature" in session:
            converted["session"] = {
                k: v for k, v in converted["session"].items() if k != "temperature"
            }
            converted["_temperature"] = session["temperature"]
        return converted

    def _dispatch(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        kind: str = event["type"]
        supported = _MEDIA_CLIENT_EVENTS if self._media else SUPPORTED_CLIENT_EVENTS
        if kind not in supported:
            raise V.invalid_value(kind, supported, "type")
        temperature = event.pop("_temperature", None)
        _ENVELOPES[kind].check(event, "")
        if kind == "session.update":
            self._on_session_update(event["session"], temperature)
        elif kind in ("input_audio_buffer.append", "session.input_audio_buffer.append"):
            self._on_append(event["audio"], now)
        elif kind == "input_audio_buffer.commit":
            self._on_commit(now)
        elif kind == "input_audio_buffer.clear":
            self._clear_input()
            self._send("input_audio_buffer.cleared")
        elif kind == "output_audio_buffer.clear":
            self._on_output_clear(now)
        elif kind == "conversation.item.create":
            self._on_item_create(event)
        elif kind == "conversation.item.retrieve":
            self._on_retrieve(event["item_id"])
        elif kind == "conversation.item.delete":
            self._on_delete(event["item_id"])
        elif kind == "conversation.item.truncate":
            self._on_truncate(event["item_id"], event["content_index"], event["audio_end_ms"])
        elif kind == "response.create":
            self._on_response_create(event.get("response") or {}, event_id, now, temperature)
        elif kind == "response.cancel":
            self._on_response_cancel(event.get("response_id"), now)
        else:  # session.close: semantics undocumented; the emulator ends the session
            self._request_close(1000, "")

    # --- session.update (spec 2.5, 5.4, 8.2) ---------------------------------------------------

    def _on_session_update(self, update: Any, temperature: float | None) -> None:
        if not isinstance(update, dict):
            raise V.invalid_type("session", "an object", update)
        if "type" not in update:
            raise V.missing("session.type")
        kind = update["type"]
        if kind not in ("realtime", "transcription"):
            if not isinstance(kind, str):
                raise V.invalid_type("session.type", "a string", kind)
            raise V.invalid_value(kind, ["realtime", "transcription"], "session.type")
        if kind == "transcription":
            raise V.Reject(
                "invalid_value",
                "Passing a transcription session update event to a realtime session is not "
                "allowed.",
                "session.type",
            )
        V.SESSION.check(update, "session")
        if "output_modalities" in update:
            V.check_modalities(update["output_modalities"], "session.output_modalities")
        model = update.get("model")
        if model is not None and model != self._session["model"]:
            raise V.Reject(
                "invalid_value",
                "Cannot update a session's model: the model is set when the session is "
                f"created ('{self._session['model']}').",
                "session.model",
            )
        output = update.get("audio", {}).get("output", {})
        if (
            "voice" in output
            and output["voice"] != self._session["audio"]["output"]["voice"]
            and self._assistant_audio
        ):
            raise V.Reject(
                "cannot_update_voice",
                "Cannot update a conversation's voice if assistant audio is present.",
            )
        self._apply_session(update)
        if temperature is not None:
            self._temperature = temperature
        self._send("session.updated", session=self._session)
        fields = tuple(key for key in update if key != "type")
        self._log(L.SessionUpdated(fields=fields))

    def _apply_session(self, update: dict[str, Any]) -> None:
        session = self._session
        for key, value in update.items():
            if key == "audio":
                for side in ("input", "output"):
                    for name, setting in value.get(side, {}).items():
                        session["audio"][side][name] = _normalized(name, setting)
            elif key != "type":
                session[key] = value
        self._session = {key: session[key] for key in _SESSION_ORDER if key in session}
        if "audio" in update and "turn_detection" in update["audio"].get("input", {}):
            # a new detector configuration starts from silence (in-progress speech is dropped)
            self._vad.reset(self._total)
            self._speech_item = None

    # --- input audio (spec 3, 8.3) ------------------------------------------------------------

    def _input_format(self) -> str:
        fmt: str = self._session["audio"]["input"]["format"]["type"]
        return fmt

    def _on_append(self, audio: str, now: float) -> None:
        try:
            data = decode_base64(audio)
        except ValueError:
            raise V.Reject(
                "invalid_value",
                "Invalid 'audio': the value is not valid base64-encoded audio.",
                "audio",
            ) from None
        self._add_audio(decode_input(data, self._input_format()), now)

    def _add_audio(self, pcm: bytes, at: float) -> None:
        if self._carry:
            pcm, self._carry = self._carry + pcm, b""
        if len(pcm) % 2:
            pcm, self._carry = pcm[:-1], pcm[-1:]
        if not pcm:
            return
        samples = np.frombuffer(pcm, dtype="<i2")
        self._buffer += pcm
        self._total += samples.size
        excess = len(self._buffer) - self.options.max_input_buffer_ms * 48
        if excess > 0:  # bounded: the oldest uncommitted audio goes first
            del self._buffer[:excess]
            self._buffer_start += excess // 2
        detection = self._turn_detection()
        if detection is None:
            return
        for kind, position in self._vad.process(samples, detection[0]):
            if kind == "start":
                self._speech_started(position, at)
            else:
                self._speech_stopped(position, at)

    def _turn_detection(self) -> tuple[VadSettings, bool, bool, int | None] | None:
        """(settings, create_response, interrupt_response, idle_timeout_ms), or None."""
        config = self._session["audio"]["input"]["turn_detection"]
        if config is None:
            return None
        create = bool(config["create_response"])
        interrupt = bool(config["interrupt_response"])
        if config["type"] == "semantic_vad":
            silence = SEMANTIC_SILENCE_MS[config["eagerness"]]
            return VadSettings(0.5, 300, silence), create, interrupt, None
        settings = VadSettings(
            config["threshold"], config["prefix_padding_ms"], config["silence_duration_ms"]
        )
        return settings, create, interrupt, config["idle_timeout_ms"]

    def _speech_started(self, onset: int, at: float) -> None:
        detection = self._turn_detection()
        assert detection is not None
        settings, _, interrupt, _ = detection
        item_id = self._speech_item = self._ids("item_")
        start = max(0, onset - settings.prefix_padding_ms * SAMPLES_PER_MS)
        self._speech_from = start
        self._cancel(self._idle_task)
        start_ms = start // SAMPLES_PER_MS
        self._send("input_audio_buffer.speech_started", audio_start_ms=start_ms, item_id=item_id)
        self._log(L.SpeechStarted(item_id=item_id, audio_start_ms=start_ms))
        if interrupt:
            self._barge_in(at)

    def _speech_stopped(self, end: int, at: float) -> None:
        detection = self._turn_detection()
        assert detection is not None and self._speech_item is not None
        item_id, self._speech_item = self._speech_item, None
        end_ms = end // SAMPLES_PER_MS
        self._send("input_audio_buffer.speech_stopped", audio_end_ms=end_ms, item_id=item_id)
        self._log(L.SpeechStopped(item_id=item_id, audio_end_ms=end_ms))
        self._commit(item_id, max(self._speech_from, self._buffer_start), end, "vad", at)
        if detection[1]:
            self._start_response({}, None, at)

    def _commit(self, item_id: str, start: int, end: int, trigger: str, at: float) -> None:
        """Make buffer samples ``[start, end)`` a user item; drop the buffer before ``end``."""
        begin = max(0, start - self._buffer_start) * 2
        stop = max(0, end - self._buffer_start) * 2
        audio = bytes(self._buffer[begin:stop])
        del self._buffer[:stop]
        self._buffer_start = max(self._buffer_start, end)
        self._cancel(self._idle_task)
        item = {
            "id": item_id,
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        previous = self._entries[-1].id if self._entries else None
        self._send("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        self._insert(_Entry(item, {0: audio}), len(self._entries))
        duration = len(audio) // 48
        self._log(L.AudioCommitted(item_id=item_id, duration_ms=duration, trigger=trigger))
        transcription = self._session["audio"]["input"]["transcription"]
        if transcription is not None:
            model = transcription.get("model", "whisper-1")

            def transcribe(when: float) -> None:
                self._transcribe(item_id, duration, model)

            self._schedule(at + self.options.transcription_delay, transcribe)

    def _transcribe(self, item_id: str, duration_ms: int, model: str) -> None:
        """Input transcription events (spec 4.2): the emulator cannot transcribe, so the
        transcript only says how much audio there was."""
        if self._find(item_id) is None:
            return
        transcript = f"[{duration_ms / 1000.0:.1f} seconds of audio]"
        # beta whisper-1 (service observations 4): the transcript ends with a newline, one
        # delta carries it all, and .completed has no usage
        beta_whisper = self._beta and model == "whisper-1"
        if beta_whisper:
            transcript += "\n"
        logprobs = self._session["include"] is not None
        pieces = [transcript] if model == "whisper-1" else split_words(transcript)
        for piece in pieces:
            fields: dict[str, Any] = {"item_id": item_id, "content_index": 0, "delta": piece}
            if logprobs:
                fields["logprobs"] = [_logprob(piece)]
            if not self._beta and model != "whisper-1":
                fields["obfuscation"] = self._obfuscation()
            self._send("conversation.item.input_audio_transcription.delta", **fields)
        if model == "whisper-1":
            usage: dict[str, Any] = {"type": "duration", "seconds": duration_ms / 1000.0}
        else:
            audio = audio_tokens_in(duration_ms)
            output = text_tokens(transcript)
            usage = {
                "type": "tokens",
                "total_tokens": audio + output,
                "input_tokens": audio,
                "input_token_details": {"text_tokens": 0, "audio_tokens": audio},
                "output_tokens": output,
            }
        done: dict[str, Any] = {"item_id": item_id, "content_index": 0, "transcript": transcript}
        if not beta_whisper:
            done["usage"] = usage
        if logprobs:
            done["logprobs"] = [_logprob(piece) for piece in pieces]
        self._send("conversation.item.input_audio_transcription.completed", **done)

    def _on_commit(self, at: float) -> None:
        ms = len(self._buffer) / 48.0
        if ms < 100.0:
            raise V.Reject(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least 100ms "
                f"of audio, but buffer only has {ms:.2f}ms of audio.",
            )
        item_id = self._speech_item or self._ids("item_")
        if self._speech_item is not None:
            # a manual commit during speech commits now; no speech_stopped follows (spec 8.3)
            self._speech_item = None
            self._vad.reset(self._total)
        self._commit(item_id, self._buffer_start, self._total, "client", at)

    def _clear_input(self) -> None:
        self._buffer.clear()
        self._buffer_start = self._total
        self._carry = b""
        self._vad.reset(self._total)
        self._speech_item = None

    def _arm_idle(self, at: float, response: _Response) -> None:
        """Idle timeout (server_vad only): from the later of ``response.done`` and the end
        of that response's audio playback (spec 8.3), estimated on WebSocket as if playback
        started with the first audio delta."""
        detection = self._turn_detection()
        self._cancel(self._idle_task)
        self._idle_task = None
        if detection is None or detection[3] is None:
            return
        end = at
        playback = self._playback_of(response.id)
        if playback is not None:
            end = max(end, playback.started_at + playback.total_ms / 1000.0)
        elif response.audio_started_at is not None:
            end = max(end, response.audio_started_at + response.audio_ms / 1000.0)
        self._idle_task = self._schedule(end + detection[3] / 1000.0, self._idle_timeout)

    def _idle_timeout(self, at: float) -> None:
        # speech, commits and default-conversation responses cancel this task
        self._idle_task = None
        item_id = self._ids("item_")
        if not self._beta:  # not in the beta dialect (spec 5.1)
            self._send(
                "input_audio_buffer.timeout_triggered",
                audio_start_ms=self._buffer_start // SAMPLES_PER_MS,
                audio_end_ms=self._total // SAMPLES_PER_MS,
                item_id=item_id,
            )
        self._commit(item_id, self._buffer_start, self._total, "timeout", at)
        self._start_response({}, None, at)

    # --- conversation (spec 3.1, 8.6, 8.8) ----------------------------------------------------

    def _find(self, item_id: str) -> int | None:
        for index in range(len(self._entries) - 1, -1, -1):
            if self._entries[index].id == item_id:
                return index
        return None

    def _typed(self, entry: _Entry) -> M.Item:
        if entry.typed is None:
            entry.typed = msgspec.convert(entry.item, M.Item)
        return entry.typed

    def _wire_item(self, item: dict[str, Any], *, tagged: bool = False) -> dict[str, Any]:
        # GA items carry no "object" key in item events; retrieved items and beta items do
        if tagged or self._beta:
            return {"id": item["id"], "object": "realtime.item", **item}
        return item

    def _insert(self, entry: _Entry, index: int) -> None:
        """Add an item and announce it (GA: added then done; beta: created)."""
        previous = self._entries[index - 1].id if index > 0 else None
        self._entries.insert(index, entry)
        item = self._wire_item(entry.item)
        if self._beta:
            self._send("conversation.item.created", previous_item_id=previous, item=item)
        else:
            self._send("conversation.item.added", previous_item_id=previous, item=item)
            self._send("conversation.item.done", previous_item_id=previous, item=item)
        self._bound_conversation()

    def _bound_conversation(self) -> None:
        excess = len(self._entries) - self.options.max_conversation_items
        if excess > 0:
            del self._entries[:excess]

    def _on_item_create(self, event: dict[str, Any]) -> None:
        raw = event["item"]
        V.ITEM.check(raw, "item")
        previous = event.get("previous_item_id")
        if previous is None:
            index = len(self._entries)
        elif previous == "root":
            index = 0
        else:
            found = self._find(previous)
            if found is None:
                raise V.Reject(
                    "invalid_value",
                    f"Error adding item: the previous item with id '{previous}' does not exist.",
                    "previous_item_id",
                )
            index = found + 1
        entry = self._new_entry(raw, "item")
        self._insert(entry, index)
        role = entry.item.get("role")
        self._log(L.ItemAdded(item_id=entry.id, item_type=entry.item["type"], role=role))

    def _new_entry(self, raw: dict[str, Any], path: str) -> _Entry:
        """A stored item from a validated client item (ids and statuses filled in)."""
        item_id = raw.get("id") or self._ids("item_")
        status = raw.get("status", "completed")
        kind = raw["type"]
        audio: dict[int, bytes] = {}
        item: dict[str, Any] = {"id": item_id, "type": kind}
        if kind == "message":
            content = []
            for index, part in enumerate(raw["content"]):
                if part["type"] == "input_audio":
                    try:
                        data = decode_base64(part["audio"])
                    except ValueError:
                        raise V.Reject(
                            "invalid_value",
                            f"Invalid '{path}.content[{index}].audio': the value is not valid "
                            "base64-encoded audio.",
                            f"{path}.content[{index}].audio",
                        ) from None
                    pcm = decode_input(data, self._input_format())
                    audio[index] = pcm[: len(pcm) - len(pcm) % 2]
                    part = {"type": "input_audio", "transcript": part.get("transcript")}
                content.append(part)
            item.update(role=raw["role"], status=status, content=content)
        elif kind == "function_call":
            call_id = raw.get("call_id") or self._ids("call_")
            item.update(
                status=status, name=raw["name"], call_id=call_id, arguments=raw["arguments"]
            )
        else:
            item.update({k: v for k, v in raw.items() if k not in ("id", "type", "object")})
            item.setdefault("status", status)
        return _Entry(item, audio)

    def _on_retrieve(self, item_id: str) -> None:
        index = self._find(item_id)
        if index is None:
            raise V.Reject(
                "item_retrieve_invalid_item_id",
                f"Error retrieving item: the item with id '{item_id}' does not exist.",
            )
        entry = self._entries[index]
        item = dict(entry.item)
        if entry.audio:  # only message items have audio
            content = [dict(part) for part in item["content"]]
            for part_index, data in entry.audio.items():
                if entry.output_format is None:  # user audio, in the session's input format
                    data = _encode_input(data, self._input_format())
                content[part_index] = {
                    "type": content[part_index]["type"],
                    "audio": encode_base64(data),
                    "transcript": content[part_index].get("transcript"),
                }
            item["content"] = content
        self._send("conversation.item.retrieved", item=self._wire_item(item, tagged=True))

    def _on_delete(self, item_id: str) -> None:
        if self._find(item_id) is None:
            raise V.Reject(
                "item_delete_invalid_item_id",
                f"Error deleting item: the item with id '{item_id}' does not exist.",
            )
        self._entries = [entry for entry in self._entries if entry.id != item_id]
        self._send("conversation.item.deleted", item_id=item_id)

    def _on_truncate(self, item_id: str, content_index: int, audio_end_ms: int) -> None:
        index = self._find(item_id)
        if index is None:
            raise V.Reject(
                "item_truncate_invalid_item_id",
                f"Item with item_id not found: {item_id}",
                "item_id",
            )
        entry = self._entries[index]
        content = entry.item.get("content")
        if (
            entry.item.get("role") != "assistant"
            or not isinstance(content, list)
            or content_index >= len(content)
            or content[content_index].get("type") != "output_audio"
            or not entry.audio.get(content_index)
        ):
            raise V.Reject(
                "unsupported_content_type", "Only model output audio messages can be truncated"
            )
        duration = entry.duration_ms(content_index)
        if audio_end_ms > duration:
            raise V.Reject(
                "invalid_value",
                f"Audio content of {math.floor(duration)}ms is already shorter than "
                f"{audio_end_ms}ms",
                "audio_end_ms",
            )
        self._truncate(entry, content_index, audio_end_ms)

    def _truncate(self, entry: _Entry, content_index: int, audio_end_ms: int) -> None:
        """Cut the audio after ``audio_end_ms`` and forget the part's transcript (spec 8.6)."""
        fmt = entry.output_format or "audio/pcm"
        keep = audio_end_ms * BYTES_PER_MS[fmt]
        entry.audio[content_index] = entry.audio.get(content_index, b"")[:keep]
        content = list(entry.item["content"])
        content[content_index] = {**content[content_index], "transcript": None}
        entry.item = {**entry.item, "content": content}
        entry.typed = None
        entry.frozen = True
        self._send(
            "conversation.item.truncated",
            item_id=entry.id,
            content_index=content_index,
            audio_end_ms=audio_end_ms,
        )

    # --- output audio buffer (WebRTC/SIP; spec 4.4, 8.4) ----------------------------------------

    def _on_output_clear(self, at: float) -> None:
        cleared, cuts = self._clear_playback(at, everything=True)
        if cleared:
            self._apply_cuts(cuts)
            return
        response_id = self._default or self._last_audio_response
        if response_id is not None:
            self._send("output_audio_buffer.cleared", response_id=response_id)

    def _clear_playback(
        self, at: float, *, everything: bool
    ) -> tuple[bool, list[tuple[str, int, int]]]:
        """Stop what the media track still plays (``cleared`` for each response), and say
        where to cut each item not heard to the end. VAD leaves out-of-band audio alone."""
        playing = [
            p
            for p in self._playbacks
            if (everything or not p.out_of_band)
            and (p.response_id in self._responses or p.played_ms(at) < p.total_ms)
        ]
        cuts: list[tuple[str, int, int]] = []
        for playback in playing:
            self._send("output_audio_buffer.cleared", response_id=playback.response_id)
            self._cancel(playback.stop_task)
            played = playback.played_ms(at)
            offset = 0.0
            for item_id, content_index, ms in playback.segments:
                heard = min(max(played - offset, 0.0), ms)
                if heard < ms:
                    cuts.append((item_id, content_index, math.floor(heard + 1e-6)))
                offset += ms
        self._playbacks = [p for p in self._playbacks if p not in playing]
        ids = {p.response_id for p in playing}
        self._audio_out = deque(chunk for chunk in self._audio_out if chunk[0] not in ids)
        return bool(playing), cuts

    def _apply_cuts(self, cuts: list[tuple[str, int, int]]) -> None:
        """The server's own truncation of what was not played (WebRTC/SIP, spec 8.4)."""
        for item_id, content_index, ms in cuts:
            index = self._find(item_id)
            if index is not None:
                self._truncate(self._entries[index], content_index, ms)

    def _barge_in(self, at: float) -> None:
        """Speech during a response (spec 8.4): cancel the default-conversation response;
        on WebRTC/SIP also clear the output buffer and truncate what was not heard."""
        cuts: list[tuple[str, int, int]] = []
        if self._media:
            _, cuts = self._clear_playback(at, everything=False)
        if self._default is not None:
            self._cancel_response(self._responses[self._default], "turn_detected", at)
        self._apply_cuts(cuts)

    # --- responses (spec 3.3, 4.5, 8.5, 8.7) ----------------------------------------------------

    def _on_response_create(
        self, params: Any, event_id: str | None, at: float, temperature: float | None = None
    ) -> None:
        if not isinstance(params, dict):
            raise V.invalid_type("response", "an object", params)
        V.RESPONSE_PARAMS.check(params, "response")
        if "output_modalities" in params:
            V.check_modalities(params["output_modalities"], "response.output_modalities")
        if "input" in params:
            for index, item in enumerate(params["input"]):
                if item["type"] == "item_reference" and self._find(item["id"]) is None:
                    raise V.Reject(
                        "invalid_value",
                        f"Invalid 'response.input[{index}].id': no item with id "
                        f"'{item['id']}' exists in the conversation.",
                        f"response.input[{index}].id",
                    )
        self._start_response(params, event_id, at, temperature)

    def _on_response_cancel(self, response_id: str | None, at: float) -> None:
        target = response_id if response_id is not None else self._default
        if target is None or target not in self._responses:
            raise V.Reject(
                "response_cancel_not_active", "Cancellation failed: no active response found"
            )
        self._cancel_response(self._responses[target], "client_cancelled", at)

    def _context_entries(self, params: dict[str, Any]) -> list[_Entry]:
        if "input" not in params:
            return list(self._entries)
        entries = []
        for item in params["input"]:
            if item["type"] == "item_reference":
                index = self._find(item["id"])
                assert index is not None  # checked on receipt
                entries.append(self._entries[index])
            else:
                entries.append(self._new_entry(item, "response.input"))
        return entries

    def _start_response(
        self,
        params: dict[str, Any],
        event_id: str | None,
        at: float,
        temperature: float | None = None,
    ) -> None:
        out_of_band = params.get("conversation") == "none"
        if not out_of_band and self._default is not None:
            # no response.created or response.done follows (spec 6.2)
            self._error(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self._default}. "
                "Wait until the response is finished before creating a new one.",
                None,
                event_id,
            )
            return
        session = self._session
        entries = self._context_entries(params)
        output = params.get("audio", {}).get("output", {})
        output_format = dict(output.get("format", session["audio"]["output"]["format"]))
        if output_format["type"] == "audio/pcm":
            output_format.setdefault("rate", 24000)
        instructions = params.get("instructions", session["instructions"])
        tools = params.get("tools", session["tools"])
        tool_choice = params.get("tool_choice", session["tool_choice"])
        usage_in = self._input_usage(entries, instructions, tools, out_of_band)
        response = _Response(
            id=self._ids("resp_"),
            out_of_band=out_of_band,
            modalities=list(params.get("output_modalities", session["output_modalities"])),
            max_output_tokens=params.get("max_output_tokens", session["max_output_tokens"]),
            output_format=output_format,
            voice=output.get("voice", session["audio"]["output"]["voice"]),
            metadata=params.get("metadata"),
            input_usage=usage_in,
            temperature=self._temperature if temperature is None else temperature,
        )
        self._responses[response.id] = response
        if not out_of_band:
            self._default = response.id
            self._cancel(self._idle_task)
        self._send(
            "response.created",
            response=self._response_object(response, "in_progress", None, [], None),
        )
        self._log(L.TurnStarted(response_id=response.id, out_of_band=out_of_band))
        index, self._count = self._count, self._count + 1
        try:
            context = ResponseContext(
                response_id=response.id,
                items=tuple(self._typed(entry) for entry in entries),
                audio={
                    entry.id: b"".join(entry.audio.values())
                    for entry in entries
                    if entry.output_format is None and entry.audio
                },
                instructions=instructions,
                output_modalities=tuple(response.modalities),
                tools=tuple(msgspec.convert(tools, list[M.Tool])),
                tool_choice=msgspec.convert(tool_choice, M.ToolChoice),
                voice=response.voice if isinstance(response.voice, str) else response.voice["id"],
                metadata=response.metadata,
                out_of_band=out_of_band,
                index=index,
                seed=self.options.seed,
            )
            plan = self._responder.respond(context)
            if not isinstance(plan, ResponsePlan):
                raise TypeError(f"a responder must return a ResponsePlan, not {plan!r}")
            self._plan(response, plan, context.rng(), at)
        except Exception as exc:  # the model failed: a failed response, not a crash
            self._fail(response, exc, at)
            return
        self._pump(response, at)

    def _input_usage(
        self, entries: list[_Entry], instructions: str, tools: Any, out_of_band: bool
    ) -> tuple[int, int, int, int, int]:
        text = text_tokens(instructions) + text_tokens(msgspec.json.encode(tools).decode())
        audio = image = 0
        for entry in entries:
            item = entry.item
            text += 4
            for part in item.get("content", []):
                text += text_tokens(part.get("text") or part.get("transcript") or "")
                image += _IMAGE_TOKENS if part["type"] == "input_image" else 0
            for key in ("name", "arguments", "output"):
                text += text_tokens(str(item.get(key, "")))
            tokens = audio_tokens_in if entry.output_format is None else audio_tokens_out
            audio += sum(tokens(entry.duration_ms(index)) for index in entry.audio)
        total = text + audio + image
        cached = 0 if out_of_band else min(self._previous_input, total) // 64 * 64
        if not out_of_band:
            self._previous_input = total
        return text, audio, image, cached, min(cached, text)

    def _plan(
        self, response: _Response, plan: ResponsePlan, rng: np.random.Generator, at: float
    ) -> None:
        """Output items, their steps and the release schedule of one response."""
        budget = math.inf
        if isinstance(response.max_output_tokens, int):
            budget = float(response.max_output_tokens)
        fmt = response.output_format["type"]
        realtime = self.options.pace == "realtime"
        chunk_ms = self.options.audio_chunk_ms
        t = at + plan.delay
        for part in plan.parts:
            if budget <= 0:
                response.incomplete = True
                break
            output = Output(
                kind="function_call" if isinstance(part, FunctionCallPart) else "message",
                item_id=self._ids("item_"),
                output_index=len(response.outputs),
                modality=response.modalities[0],
            )
            if isinstance(part, FunctionCallPart):
                output.name = part.name
                output.call_id = part.call_id or self._ids("call_")
                arguments = part.arguments_json
                cost = text_tokens(part.name + arguments)
                if cost > budget:
                    arguments = arguments[: int(len(arguments) * budget / cost)]
                    output.status, response.incomplete = "incomplete", True
                budget -= cost
                output.steps = [Step([piece]) for piece in split_arguments(arguments, rng)]
                spacing = _ARGUMENT_DELTA_S
            else:
                text = part.text
                if output.modality == "audio":
                    pcm = part.audio_pcm24k if isinstance(part, SpeechPart) else None
                    if pcm is None:
                        pcm = synthesize_speech(text, rng)
                    pcm = pcm[: len(pcm) - len(pcm) % 2]
                    cost = text_tokens(text) + audio_tokens_out(len(pcm) / 48.0)
                    if cost > budget:
                        share = budget / cost
                        text = text[: int(len(text) * share)]
                        pcm = pcm[: int(len(pcm) * share) // 2 * 2]
                        output.status, response.incomplete = "incomplete", True
                    budget -= cost
                    output.steps = _audio_steps(text, pcm, fmt, chunk_ms)
                else:
                    cost = text_tokens(text)
                    if cost > budget:
                        text = text[: int(len(text) * budget / cost)]
                        output.status, response.incomplete = "incomplete", True
                    budget -= cost
                    output.steps = [Step([piece]) for piece in split_words(text)]
                spacing = _TEXT_DELTA_S
            response.outputs.append(output)
            index = output.output_index
            response.ops.append((t, _OPEN, index, 0))
            for number in range(len(output.steps)):
                if realtime and number:
                    previous = output.steps[number - 1]
                    t += len(previous.pcm) / 48000.0 if previous.pcm else spacing
                response.ops.append((t, _STEP, index, number))
            response.ops.append((t, _CLOSE, index, 0))
        response.ops.append((t, _DONE, 0, 0))

    def _pump(self, response: _Response, now: float) -> None:
        """Release every step of ``response`` due at ``now``; schedule the next one."""
        response.task = None
        ops = response.ops
        while response.cursor < len(ops) and response.id in self._responses:
            due, op, index, number = ops[response.cursor]
            if due > now:

                def resume(when: float) -> None:
                    self._pump(response, when)

                response.task = self._schedule(due, resume)
                return
            response.cursor += 1
            if op == _OPEN:
                self._open(response, response.outputs[index], due)
            elif op == _STEP:
                self._step(response, response.outputs[index], number, due)
            elif op == _CLOSE:
                self._close(response, response.outputs[index])
            else:
                status = "incomplete" if response.incomplete else "completed"
                self._finish(response, status, "max_output_tokens", due)

    def _context(self, response: _Response, output: Output) -> dict[str, Any]:
        return {
            "response_id": response.id,
            "item_id": output.item_id,
            "output_index": output.output_index,
            "content_index": 0,
        }

    def _item(self, output: Output, status: str) -> dict[str, Any]:
        item: dict[str, Any] = {"id": output.item_id, "type": output.kind, "status": status}
        if output.kind == "function_call":
            item.update(name=output.name, call_id=output.call_id, arguments=output.text)
            return item
        if status == "in_progress":
            content: list[dict[str, Any]] = []
        elif output.modality == "audio":
            content = [{"type": "output_audio", "transcript": output.text}]
        else:
            content = [{"type": "output_text", "text": output.text}]
        return {
            "id": output.item_id,
            "type": "message",
            "role": "assistant",
            "status": status,
            "content": content,
        }

    def _part(self, output: Output) -> dict[str, Any]:
        if output.modality == "audio":
            return {"type": "audio", "transcript": output.text}
        return {"type": "text", "text": output.text}

    def _open(self, response: _Response, output: Output, at: float) -> None:
        if self._beta and not any(other.state for other in response.outputs):
            # beta: once per response that produces output, before its first output item:
            # right after response.created (May 2025 recordings; service observations 1, 5).
            # Only the input tokens are known by then.
            self._send_rate_limits(sum(response.input_usage[:3]))
        output.state = 1
        item = self._item(output, "in_progress")
        self._send(
            "response.output_item.added",
            response_id=response.id,
            output_index=output.output_index,
            item=self._wire_item(item),
        )
        if not response.out_of_band:
            # conversation.item.added comes right after output_item.added (spec 8.7)
            entry = _Entry(item)
            if output.kind == "message" and output.modality == "audio":
                entry.output_format = response.output_format["type"]
            response.entries[output.item_id] = entry
            previous = self._entries[-1].id if self._entries else None
            self._entries.append(entry)
            kind = "conversation.item.created" if self._beta else "conversation.item.added"
            self._send(kind, previous_item_id=previous, item=self._wire_item(item))
            self._bound_conversation()
        if output.kind == "message":
            self._send(
                "response.content_part.added",
                **self._context(response, output),
                part=self._part(output),
            )
            stored = response.entries.get(output.item_id)
            if stored is not None:  # truncation sees the part from now on
                part = self._item(output, "completed")["content"][0]
                stored.item = {**stored.item, "content": [part]}

    def _step(self, response: _Response, output: Output, number: int, at: float) -> None:
        step = output.steps[number]
        context = self._context(response, output)
        if output.kind == "function_call":
            del context["content_index"]
            for piece in step.pieces:
                output.sent_text.append(piece)
                self._send(
                    "response.function_call_arguments.delta",
                    **context,
                    call_id=output.call_id,
                    delta=piece,
                )
            return
        kind = (
            "response.output_audio_transcript.delta"
            if output.modality == "audio"
            else "response.output_text.delta"
        )
        for piece in step.pieces:
            output.sent_text.append(piece)
            if self._beta:
                self._send(kind, **context, delta=piece)
            else:
                self._send(kind, **context, delta=piece, obfuscation=self._obfuscation())
        if not step.audio:
            return
        ms = len(step.pcm) / 48.0
        output.sent_audio_ms += ms
        self._assistant_audio = True
        entry = response.entries.get(output.item_id)
        if entry is not None and not entry.frozen:
            entry.audio[0] = entry.audio.get(0, b"") + step.audio
        if response.audio_started_at is None:
            response.audio_started_at = at
            self._last_audio_response = response.id
        response.audio_ms += ms
        if self._media:
            playback = self._playback_of(response.id)
            if playback is None:
                # after the audio content part is added (spec 4.4, 8.7); the buffer plays
                # responses one after the other
                self._send("output_audio_buffer.started", response_id=response.id)
                start = max([at, *(p.started_at + p.total_ms / 1000 for p in self._playbacks)])
                playback = _Playback(response.id, start, response.out_of_band)
                self._playbacks.append(playback)
            segments = playback.segments
            if segments and segments[-1][0] == output.item_id:
                segments[-1] = (output.item_id, 0, segments[-1][2] + ms)
            else:
                segments.append((output.item_id, 0, ms))
            self._audio_out.append((response.id, step.pcm))
        else:
            self._send("response.output_audio.delta", **context, delta=encode_base64(step.audio))

    def _playback_of(self, response_id: str) -> _Playback | None:
        return next((p for p in self._playbacks if p.response_id == response_id), None)

    def _close(self, response: _Response, output: Output, status: str | None = None) -> None:
        """The ``*.done`` cascade of one output item (spec 8.7), final content included."""
        output.state = 2
        status = output.status = status or output.status
        context = self._context(response, output)
        if output.kind == "function_call":
            del context["content_index"]
            self._send(
                "response.function_call_arguments.done",
                **context,
                call_id=output.call_id,
                name=output.name,
                arguments=output.text,
            )
        elif output.modality == "audio":
            self._send("response.output_audio.done", **context)
            self._send("response.output_audio_transcript.done", **context, transcript=output.text)
            self._send("response.content_part.done", **context, part=self._part(output))
        else:
            self._send("response.output_text.done", **context, text=output.text)
            self._send("response.content_part.done", **context, part=self._part(output))
        item = self._item(output, status)
        entry = response.entries.get(output.item_id)
        if entry is not None:
            if entry.frozen and "content" in item:  # truncated meanwhile: keep it cut
                item["content"] = entry.item["content"]
            entry.item = item
            entry.typed = None
            if not self._beta:
                # conversation.item.done comes right before output_item.done (spec 8.7)
                previous = self._previous_of(entry)
                self._send("conversation.item.done", previous_item_id=previous, item=item)
        self._send(
            "response.output_item.done",
            response_id=response.id,
            output_index=output.output_index,
            item=self._wire_item(item),
        )

    def _previous_of(self, entry: _Entry) -> str | None:
        for index, other in enumerate(self._entries):
            if other is entry:
                return self._entries[index - 1].id if index else None
        return None

    def _response_object(
        self,
        response: _Response,
        status: str,
        details: dict[str, Any] | None,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None,
    ) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "object": "realtime.response",
            "id": response.id,
            "status": status,
            "status_details": details,
            "output": output,
            "conversation_id": None if response.out_of_band else self._conversation_id,
            "output_modalities": response.modalities,
            "max_output_tokens": response.max_output_tokens,
            "audio": {"output": {"format": response.output_format, "voice": response.voice}},
            "usage": usage,
            "metadata": response.metadata,
        }
        if self._beta:  # beta response objects carry it (service observations 8)
            wire["temperature"] = response.temperature
        return wire

    def _send_rate_limits(self, tokens: int) -> None:
        """``rate_limits.updated`` for a response of ``tokens`` tokens (service observations
        5): GA one ``tokens`` entry, beta a fixed ``requests`` entry then ``tokens``.
        ``reset_seconds`` = tokens x 60 / limit (a per-minute limit; matches both captures)."""
        limit = self.options.token_limit
        entry = {
            "name": "tokens",
            "limit": limit,
            "remaining": max(0, limit - tokens),
            "reset_seconds": round(tokens * 60.0 / limit, 3),
        }
        self._send(
            "rate_limits.updated",
            rate_limits=[dict(_BETA_REQUESTS_LIMIT), entry] if self._beta else [entry],
        )

    def _cancel_response(self, response: _Response, reason: str, at: float) -> None:
        """Cancel: the ``*.done`` of what is open (partial, ``incomplete``), then
        ``response.done`` cancelled (spec 8.4, 8.5)."""
        self._cancel(response.task)
        for output in response.outputs:
            if output.state == 1:
                self._close(response, output, "incomplete")
        self._finish(response, "cancelled", reason, at)

    def _fail(self, response: _Response, exc: Exception, at: float) -> None:
        details = {
            "type": "failed",
            "error": {"type": "server_error", "code": "responder_error", "message": str(exc)},
        }
        self._end(response, "failed", details, zero_usage(), at, produced=False)

    def _finish(self, response: _Response, status: str, reason: str, at: float) -> None:
        started = [output for output in response.outputs if output.state]
        if not started:  # cancelled before any output: zero usage (service observations 2)
            usage = zero_usage()
        else:
            in_text, in_audio, in_image, cached, cached_text = response.input_usage
            out_text = sum(text_tokens(output.text) for output in started)
            out_audio = sum(audio_tokens_out(output.sent_audio_ms) for output in started)
            usage = usage_object(
                in_text, in_audio, in_image, cached, out_text, out_audio, cached_text
            )
        details = None if status == "completed" else {"type": status, "reason": reason}
        self._end(response, status, details, usage, at, produced=bool(started))

    def _end(
        self,
        response: _Response,
        status: str,
        details: dict[str, Any] | None,
        usage: dict[str, Any],
        at: float,
        *,
        produced: bool,
    ) -> None:
        del self._responses[response.id]
        if self._default == response.id:
            self._default = None
        output = [
            self._wire_item(self._item(o, o.status if o.state == 2 else "incomplete"))
            for o in response.outputs
            if o.state
        ]
        for item in output:  # a part cut by truncation stays cut in the final output
            entry = response.entries.get(item["id"])
            if entry is not None and entry.frozen:
                item["content"] = entry.item["content"]
        self._send(
            "response.done",
            response=self._response_object(response, status, details, output, usage),
        )
        if produced and not self._beta:
            # GA: once per response that produced output, ~43 ms after response.done
            # (service observations 1, 10); beta sent it when the output started
            tokens: int = usage["total_tokens"]

            def limits(when: float) -> None:
                self._send_rate_limits(tokens)

            self._schedule(at + _GA_RATE_LIMITS_DELAY, limits)
        typed_usage = msgspec.convert(usage, M.Usage)
        reason = details.get("reason") if details else None
        self._log(
            L.TurnEnded(response_id=response.id, status=status, reason=reason, usage=typed_usage)
        )
        if self._media:
            playback = self._playback_of(response.id)
            if playback is not None:
                end = playback.started_at + playback.total_ms / 1000.0

                def stopped(when: float) -> None:
                    self._playbacks = [p for p in self._playbacks if p is not playback]
                    self._send("output_audio_buffer.stopped", response_id=response.id)

                playback.stop_task = self._schedule(max(end, at), stopped)
        if not response.out_of_band:
            self._arm_idle(at, response)


# ---------------------------------------------------------------------------- helpers --


def merge_session_configs(*configs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Session configurations merged in order, each over the ones before it, as successive
    ``session.update`` events would merge them (``audio.input`` and ``audio.output`` settings
    one by one, every other key replaced); ``None`` entries are skipped."""
    merged: dict[str, Any] = {}
    for config in configs:
        if config is None:
            continue
        for key, value in config.items():
            if key == "audio" and isinstance(value, Mapping):
                audio = merged.setdefault("audio", {})
                if not isinstance(audio, dict):
                    audio = merged["audio"] = {}
                for side, settings in value.items():
                    if isinstance(settings, Mapping) and isinstance(audio.get(side), dict):
                        audio[side] = {**audio[side], **settings}
                    else:
                        audio[side] = dict(settings) if isinstance(settings, Mapping) else settings
            else:
                merged[key] = value
    return merged


def _beta_session(session: dict[str, Any], temperature: float, created: bool) -> dict[str, Any]:
    """The beta-only parts of a flat session (service observations 8, 9): ``temperature``,
    tool definitions with ``type`` after ``parameters``, and in ``session.created``
    ``client_secret: null`` (next to ``include``)."""
    out: dict[str, Any] = {}
    for key, value in session.items():
        if key == "include" and created:
            out["client_secret"] = None
        out[key] = [_beta_tool(tool) for tool in value] if key == "tools" else value
    out["temperature"] = temperature
    return out


def _beta_tool(tool: Any) -> Any:
    """A tool definition as beta echoes it: ``type`` moved after ``parameters``."""
    if not isinstance(tool, dict) or "type" not in tool or "parameters" not in tool:
        return tool
    out: dict[str, Any] = {}
    for key, value in tool.items():
        if key != "type":
            out[key] = value
        if key == "parameters":
            out["type"] = tool["type"]
    return out


#: Key order of a beta response object (service observations 8).
_BETA_RESPONSE_ORDER = (
    "object",
    "id",
    "status",
    "status_details",
    "output",
    "conversation_id",
    "modalities",
    "voice",
    "output_audio_format",
    "temperature",
    "max_output_tokens",
    "usage",
    "metadata",
)


def _beta_response(response: dict[str, Any]) -> dict[str, Any]:
    """A flat response object in the beta key order, its usage without ``image_tokens``."""
    out = {key: response[key] for key in _BETA_RESPONSE_ORDER if key in response}
    out.update((key, value) for key, value in response.items() if key not in out)
    if isinstance(out.get("usage"), dict):
        out["usage"] = _beta_usage(out["usage"])
    return out


def _beta_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """Beta usage objects have no ``image_tokens`` anywhere (service observations 7).
    ``usage`` is always :func:`usage_object`'s (or :func:`zero_usage`'s) shape."""
    details = usage["input_token_details"]
    details = {key: value for key, value in details.items() if key != "image_tokens"}
    cached = details["cached_tokens_details"]
    details["cached_tokens_details"] = {
        key: value for key, value in cached.items() if key != "image_tokens"
    }
    return {**usage, "input_token_details": details}


def _normalized(name: str, value: Any) -> Any:
    """One ``audio.input`` / ``audio.output`` setting as the effective config shows it."""
    if name == "format":
        return dict(_FORMAT_PCM) if value["type"] == "audio/pcm" else {"type": value["type"]}
    if name == "turn_detection" and value is not None:
        defaults = (
            _SEMANTIC_VAD_DEFAULTS if value["type"] == "semantic_vad" else (_SERVER_VAD_DEFAULTS)
        )
        return {key: value.get(key, default) for key, default in defaults.items()}
    return value


def _encode_input(pcm24k: bytes, fmt: str) -> bytes:
    """User audio (PCM16 24 kHz) in the input format, for ``conversation.item.retrieved``."""
    if fmt == "audio/pcm":
        return pcm24k
    return encode_output(pcm24k, fmt) if len(pcm24k) >= 2 else b""


def _audio_steps(text: str, pcm: bytes, fmt: str, chunk_ms: int) -> list[Step]:
    """Audio chunks of ``chunk_ms`` with the transcript's words spread over them."""
    encoded = encode_output(pcm, fmt)
    pcm_size = chunk_ms * 48
    out_size = chunk_ms * BYTES_PER_MS[fmt]
    count = max(-(-len(pcm) // pcm_size), -(-len(encoded) // out_size))
    words = split_words(text)
    steps = [
        Step(
            [],
            encoded[i * out_size : (i + 1) * out_size],
            pcm[i * pcm_size : (i + 1) * pcm_size],
        )
        for i in range(count)
    ]
    if not steps and words:
        steps.append(Step([]))
    for number, word in enumerate(words):
        steps[number * len(steps) // len(words)].pieces.append(word)
    return steps


def _logprob(piece: str) -> dict[str, Any]:
    return {"token": piece, "logprob": 0.0, "bytes": list(piece.encode())}
