"""What ``rtproto call`` shows and keeps: a pure consumer of transport events.

The driver loop feeds every event to :meth:`CallReport.handle` with the time; the report
collects the reply audio, decides when the call is over and with which exit code, and says
what to print (status lines, or one JSON object per event with ``--json``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import msgspec

from .. import events as E
from ..codec import event_raw
from ..session import (
    AudioChunk,
    AudioTranscriptDelta,
    ConnectionChange,
    ConnectionStatus,
    FunctionCall,
    ServerError,
    TextDelta,
    TransportEvent,
    TurnDone,
    TurnStarted,
    UsageUpdate,
)

__all__ = ["CallReport", "ExitCode"]


class ExitCode(enum.IntEnum):
    """``rtproto call`` exit codes."""

    OK = 0
    USAGE = 2
    CONNECTION = 3
    SERVER_ERROR = 4


@dataclass
class CallReport:
    """Accumulates one call's results from its events.

    ``as_json`` switches the output to one JSON line per event.
    """

    as_json: bool = False
    #: Live mode (a terminal): audio and transcript progress as one rewritten line ("\r...").
    live: bool = False
    started_at: float = 0.0
    audio: list[bytes] = field(default_factory=list)
    audio_ms: float = 0.0
    transcript: str = ""
    text: str = ""
    first_audio_at: float | None = None
    turns_done: int = 0
    usage_tokens: int = 0
    error: str | None = None
    finished: bool = False
    exit_code: ExitCode = ExitCode.OK
    calls: list[str] = field(default_factory=list)

    def handle(self, event: Any, now: float) -> list[str]:
        """Take one event; return the lines to print (to stdout with --json, else stderr)."""
        if self.as_json:
            line = _json_line(event)
            self._account(event, now)
            return [line] if line is not None else []
        return self._account(event, now)

    def _account(self, event: Any, now: float) -> list[str]:
        if isinstance(event, AudioChunk):
            data = event.audio
            self.audio.append(data)
            self.audio_ms += len(data) / 48.0
            if self.first_audio_at is None:
                self.first_audio_at = now
                return [f"first audio after {1000 * (now - self.started_at):.0f} ms"]
            return [self.progress()] if self.live else []
        if isinstance(event, AudioTranscriptDelta):
            self.transcript += event.delta
            return [self.progress()] if self.live else []
        if isinstance(event, TextDelta):
            self.text += event.delta
            return [self.progress()] if self.live else []
        if isinstance(event, E.InputAudioBufferSpeechStarted):
            return [f"speech started at {event.audio_start_ms} ms"]
        if isinstance(event, E.InputAudioBufferSpeechStopped):
            self.started_at = now  # latency counts from the end of the user's speech
            return [f"speech stopped at {event.audio_end_ms} ms"]
        if isinstance(event, E.SessionCreated):
            model = getattr(event.session, "model", None)
            return [f"session created ({model})" if isinstance(model, str) else "session created"]
        if isinstance(event, ConnectionChange):
            return self._connection(event)
        if isinstance(event, TurnStarted):
            return ["reply started"]
        if isinstance(event, FunctionCall):
            self.calls.append(event.function)
            return [f"function call {event.function}({event.arguments})"]
        if isinstance(event, UsageUpdate):
            self.usage_tokens = event.totals.total_tokens
            return []
        if isinstance(event, TurnDone):
            return self._turn_done(event)
        if isinstance(event, ServerError):
            error = event.event.error
            self.error = f"server error {error.code or error.type}: {error.message}"
            self.exit_code = ExitCode.SERVER_ERROR
            self.finished = True
            return [self.error]
        return []

    def _connection(self, event: ConnectionChange) -> list[str]:
        if event.status is ConnectionStatus.DISCONNECTED:
            if not self.finished:
                reason = event.reason or "connection closed"
                self.error = f"disconnected before the reply ended: {reason}"
                self.exit_code = ExitCode.CONNECTION
                self.finished = True
                return [self.error]
            return []
        return [event.status.value]

    def _turn_done(self, event: TurnDone) -> list[str]:
        self.turns_done += 1
        status = event.response.status if isinstance(event.response.status, str) else "done"
        said = self.transcript or self.text
        lines = [f"reply {status}: {said!r}" if said else f"reply {status}"]
        if self.calls and status == "completed" and not said:
            return lines  # a tool-call turn; the answer comes in the next turn
        self.finished = True
        return lines

    def timed_out(self, seconds: float) -> None:
        """The call ended without a finished reply."""
        self.error = f"no complete reply within {seconds:g} s"
        self.exit_code = ExitCode.CONNECTION
        self.finished = True

    def summary(self, output: str | None) -> str:
        """The one-line summary printed at the end."""
        if self.error is not None:
            return self.error
        first = (
            f"{1000 * (self.first_audio_at - self.started_at):.0f} ms"
            if self.first_audio_at is not None
            else "no audio"
        )
        where = f", written to {output}" if output and self.audio else ""
        return (
            f"reply: {self.audio_ms / 1000:.2f} s of audio{where}; first audio {first};"
            f" {self.usage_tokens} tokens; transcript {(self.transcript or self.text)!r}"
        )

    def progress(self) -> str:
        """One rewritable line: a bar of reply audio received and the transcript's tail."""
        seconds = self.audio_ms / 1000
        bar = "#" * min(20, int(seconds * 4))
        said = (self.transcript or self.text)[-40:]
        return f"\rreply [{bar:<20}] {seconds:5.2f} s  {said}"


def _json_line(event: Any) -> str | None:
    if isinstance(event, (E.Event, E.UnknownEvent, E.InvalidEvent)):
        return msgspec.json.encode({"server_event": event_raw(event)}).decode()
    if isinstance(event, TransportEvent):
        fields = {
            name: getattr(event, name)
            for name in event.__struct_fields__
            if name != "event" and getattr(event, name) is not msgspec.UNSET
        }
        if isinstance(event, AudioChunk):
            fields["bytes"] = len(event.audio)
        return msgspec.json.encode({"event": event.name, **fields}).decode()
    name = getattr(event, "name", type(event).__name__)
    return msgspec.json.encode({"event": str(name)}).decode()
