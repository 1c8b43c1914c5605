"""Fuzz harness for the server core (atheris / libFuzzer): client input never crashes it.

The contract under test, for ANY input: the bytes are split on newlines into up to 24 client
messages (a line starting with ``@`` is caller audio on the media track instead: its bytes go
to ``feed_audio``), fed to a fresh :class:`rtproto.server.ServerSession` in each of four
configurations (GA and beta dialect; WebSocket and WebRTC profile), 0.25 s apart, with every
timer run in between and at the end. Then:

* nothing raises: the server answers every problem with an ``error`` event;
* everything it sends is a JSON object that rtproto's own codec parses to a *typed* server
  event in that dialect (not ``UnknownEvent`` / ``InvalidEvent``), with a unique ``event_id``;
* every ``error`` event carries all five keys, ``event_id`` null or a string;
* at most one response is active in the default conversation at any time.

Usage::

    python fuzz/fuzz_server.py [libFuzzer flags] SCRATCH_DIR fuzz/corpus/server
    python fuzz/fuzz_server.py --corpus-only fuzz/corpus/server [MORE_DIRS_OR_FILES...]
    python fuzz/fuzz_server.py --write-seeds fuzz/corpus/server

Without atheris installed (or with ``--corpus-only``) every corpus file runs through
``TestOneInput`` once, as a plain loop. ``tests/test_server.py`` imports :func:`check_one`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

try:
    import atheris  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - depends on the environment
    atheris = None

# The heavy dependencies are imported before instrumentation so that only rtproto is traced.
import msgspec  # noqa: F401
import numpy as np

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))  # the shared fuzz/_corpus.py
from _corpus import harness_main, replay, target_imports  # noqa: E402

with target_imports(__name__, atheris):
    import rtproto
    from rtproto.server import (
        FunctionCallPart,
        HookResponder,
        ResponsePlan,
        ServerOptions,
        ServerSession,
        SpeechPart,
    )

__all__ = ["TestOneInput", "check_one", "main", "run_corpus", "seeds"]

MAX_MESSAGES = 24
STEP_S = 0.25
GA = rtproto.Dialect.GA
BETA = rtproto.Dialect.BETA


def _plan(context: Any) -> ResponsePlan:
    # vary the shape of responses: delays (so that cancels and barge-ins find them active),
    # tool calls, short speech
    kind = context.index % 3
    if kind == 1:
        return ResponsePlan((SpeechPart("Thinking it over."),), delay=0.3)
    if kind == 2:
        return ResponsePlan((SpeechPart("Calling."), FunctionCallPart("lookup", '{"q":1}')))
    return ResponsePlan((SpeechPart("Fine."),))


CONFIGS = (
    {"dialect": GA, "profile": "websocket"},
    {"dialect": BETA, "profile": "websocket"},
    {"dialect": GA, "profile": "webrtc", "pace": "realtime"},
    {"dialect": BETA, "profile": "sip", "pace": "realtime"},
)


class _Checker:
    def __init__(self, server: ServerSession, dialect: rtproto.Dialect) -> None:
        self.server = server
        self.dialect = dialect
        self.event_ids: set[str] = set()

    def drain(self) -> None:
        for text in self.server.messages_to_send():
            event = rtproto.parse_server_event(text, dialect=self.dialect)
            assert not isinstance(event, (rtproto.UnknownEvent, rtproto.InvalidEvent)), text[:300]
            raw = json.loads(text)
            assert raw["event_id"] not in self.event_ids, "duplicate server event_id"
            self.event_ids.add(raw["event_id"])
            if raw["type"] == "error":
                error = raw["error"]
                assert list(error) == ["type", "code", "message", "param", "event_id"], error
                assert error["event_id"] is None or isinstance(error["event_id"], str)
        while self.server.next_output_audio() is not None:
            pass
        while self.server.next_event() is not None:
            pass
        defaults = [r for r in self.server._responses.values() if not r.out_of_band]
        assert len(defaults) <= 1, "two responses in the default conversation"

    def run_timers(self, until: float) -> None:
        for _ in range(10_000):
            timer = self.server.get_timer()
            if timer is None or timer > until:
                return
            self.server.handle_timer(timer)
            self.drain()
        raise AssertionError("timers do not settle")


def _run(lines: list[bytes], config: dict[str, Any]) -> None:
    options = ServerOptions(
        responder=HookResponder(_plan), max_duration=30.0, seed=len(lines), **config
    )
    server = ServerSession(options)
    checker = _Checker(server, options.dialect)
    server.connection_made(0.0)
    checker.drain()
    now = 0.0
    for line in lines:
        now += STEP_S
        checker.run_timers(now)
        if line.startswith(b"@"):
            server.feed_audio(line[1:], now)
        else:
            server.receive(line, now)
        checker.drain()
    checker.run_timers(now + 40.0)  # everything pending, up to the session's expiry
    assert server.close_requested is not None


def check_one(data: bytes) -> None:
    """Check the server contract on one input; raises on any violation."""
    lines = data.split(b"\n")[:MAX_MESSAGES]
    for config in CONFIGS:
        try:
            _run(lines, config)
        except Exception as exc:
            if hasattr(exc, "add_note"):  # Python 3.11+
                exc.add_note(f"rtproto server fuzz: {config}")
            raise


def TestOneInput(data: bytes) -> None:  # the name atheris and libFuzzer expect
    check_one(data)


# --------------------------------------------------------------------------- seed corpus --


def _tone(ms: int) -> bytes:
    t = np.arange(ms * 24) / 24000.0
    return np.rint(np.sin(2 * np.pi * 300 * t) * 0.3 * 32767).astype("<i2").tobytes()


def _append(pcm: bytes) -> dict[str, Any]:
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}


def _text(text: str, **extra: Any) -> dict[str, Any]:
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    return {"type": "conversation.item.create", "item": item, **extra}


def seeds() -> dict[str, bytes]:
    """The seed corpus: named sessions of client messages, one JSON message per line."""
    quiet = b"\x00\x00" * 2400
    sessions: dict[str, list[Any]] = {
        "text-turn": [_text("hello"), {"type": "response.create"}],
        "audio-turn": [_append(quiet), _append(_tone(300)), _append(_tone(300)), _append(quiet)]
        + [_append(quiet)] * 3,
        "manual-commit": [
            {
                "type": "session.update",
                "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
            },
            _append(_tone(200)),
            {"type": "input_audio_buffer.commit", "event_id": "c1"},
            {"type": "input_audio_buffer.commit", "event_id": "c2"},
            {"type": "response.create", "response": {"output_modalities": ["text"]}},
        ],
        "cancel-and-second-create": [
            _text("a"),
            {"type": "response.create"},
            {"type": "response.create"},
            {"type": "response.create", "event_id": "x"},
            {"type": "response.cancel"},
            {"type": "response.cancel", "response_id": "resp_0001"},
        ],
        "conversation-ops": [
            _text("a", event_id="1"),
            _text("b", previous_item_id="root"),
            _text("c", previous_item_id="item_0001"),
            _text("d", previous_item_id="nope"),
            {"type": "conversation.item.retrieve", "item_id": "item_0002"},
            {"type": "conversation.item.delete", "item_id": "item_0003"},
            {"type": "conversation.item.delete", "item_id": "item_0003"},
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": "call_1", "output": "{}"},
            },
        ],
        "truncate": [
            _text("one two three"),
            {"type": "response.create"},
            {
                "type": "conversation.item.truncate",
                "item_id": "item_0002",
                "content_index": 0,
                "audio_end_ms": 100,
            },
            {
                "type": "conversation.item.truncate",
                "item_id": "item_0002",
                "content_index": 0,
                "audio_end_ms": 99999,
            },
            {
                "type": "conversation.item.truncate",
                "item_id": "item_0001",
                "content_index": 0,
                "audio_end_ms": 0,
            },
        ],
        "session-update": [
            {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "instructions": "x",
                    "tools": [{"type": "function", "name": "f"}],
                    "tool_choice": "required",
                },
            },
            {"type": "session.update", "session": {"type": "realtime", "bogus": 1}},
            {"type": "session.update", "session": {"modalities": ["text"]}},
            {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "audio": {
                        "input": {
                            "format": {"type": "audio/pcmu"},
                            "transcription": {"model": "whisper-1"},
                            "turn_detection": {"type": "server_vad", "idle_timeout_ms": 500},
                        }
                    },
                },
            },
            _text("hi"),
            {
                "type": "response.create",
                "response": {
                    "conversation": "none",
                    "metadata": {"k": "v"},
                    "input": [{"type": "item_reference", "id": "item_0001"}],
                },
            },
        ],
        "out-of-band-and-barge-in": [
            _text("a"),
            {"type": "response.create"},
            {"type": "response.create", "response": {"conversation": "none"}},
            _append(_tone(400)),
            {"type": "output_audio_buffer.clear"},
            _append(quiet),
        ],
        "media-audio": ["@" + "\x00" * 10, _text("a"), {"type": "response.create"}],
        "garbage": ["{", "[]", '{"type": 5}', '{"event_id": "e"}', '{"type": "foo"}', "\udcff"],
        "beta-shapes": [
            {
                "type": "session.update",
                "session": {
                    "voice": "ash",
                    "temperature": 0.7,
                    "turn_detection": {"silence_duration_ms": 300},
                },
            },
            {"type": "transcription_session.update", "session": {}},
            {"type": "response.create", "response": {"modalities": ["text"], "temperature": 0.9}},
        ],
        "close": [{"type": "session.close"}, _text("late")],
    }
    corpus: dict[str, bytes] = {}
    for name, messages in sessions.items():
        lines = [
            m.encode("utf-8", "surrogatepass") if isinstance(m, str) else json.dumps(m).encode()
            for m in messages
        ]
        data = b"\n".join(lines)
        corpus[f"seed-{name}-{hashlib.sha1(data).hexdigest()[:8]}"] = data
    return corpus


# ----------------------------------------------------------------------------- running --


def run_corpus(paths: Iterable[str | Path]) -> int:
    """Run every file under ``paths`` through ``TestOneInput`` once; returns the count."""
    return replay(paths, TestOneInput, "fuzz_server")


def main(argv: list[str]) -> int:
    return harness_main(argv, "server", TestOneInput, atheris, seeds)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
