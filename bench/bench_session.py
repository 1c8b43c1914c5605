"""What the session core adds on top of the codec, for a whole audio turn.

One turn as the service sends it (spec section 4.6): ``response.created``, the assistant item
and part events, N x ``response.output_audio.delta`` of 100 ms with a transcript delta (one
token) every 250 ms of audio, the dones, ``response.done`` with usage and
``rate_limits.updated``. In one run, interleaved,
median of the repeats:

* ``codec``: ``parse_server_event`` on every message of the turn;
* ``session``: ``ClientSession.receive`` on every message (which parses it), then draining
  ``take_events()`` and ``messages_to_send()`` after each (the strict case), after each
  64 KiB read (as a driver does when several messages arrive together), or one
  ``next_event()`` call per event;
* ``floor``: what any session with this interface costs before doing anything: the parse,
  one derived ``AudioChunk`` per audio delta, the same two drain calls after every message,
  and no logic at all. ``session / floor`` is the price of the behaviour itself.

The paths take turns in short rounds (``--turns`` turns each, a few milliseconds), and each
ratio is the median over the rounds of the path's time over the codec's time in the same
round: a slow spell of the shared machine slows both sides of a ratio alike, where timing
each path for longer stretches let a spell land on one side only.

Target: session <= 1.2 x codec. Run: ``.venv/bin/python bench/bench_session.py`` (the
pure-Python session core; ``make bench-session-compiled`` measures the compiled build, see
docs/session.md, "Speed"). ``--breakdown`` shows the session's extra cost over the floor per
message type instead; ``--instructions`` counts CPU instructions per turn under valgrind's
callgrind instead of timing: exact and repeatable on a shared, noisy machine; ``--stalls``
counts the cache misses and branch mispredictions behind those instructions (cachegrind),
which is why the timed ratio is higher than the instruction ratio: the session's code and
the interpreter it calls stall far more often per instruction than the codec's decoder
loops do.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.scripts import Server

import rtproto
from rtproto.codec import GA_SOURCE, decode_ga_server_event
from rtproto.events import ResponseOutputAudioDelta
from rtproto.session import COMPILED, AudioChunk, ClientSession, SessionOptions

TARGET = 1.2


def turn(chunks: int) -> list[str]:
    server = Server()
    out = [server.response_created("resp_1")]
    audio_ms = 0
    for text in server.assistant_audio("resp_1", "item_A1", None, [100] * chunks):
        message = json.loads(text)
        if message["type"] == "response.output_audio.delta":
            message["delta"] = base64.b64encode(os.urandom(4800)).decode()
            audio_ms += 100
        elif message["type"] == "response.output_audio_transcript.delta":
            if audio_ms < 250:
                continue  # about one token per 250 ms of speech
            audio_ms -= 250
        out.append(json.dumps(message, separators=(",", ":")))
    out.append(server.response_done("resp_1"))
    out.append(
        server.event(
            "rate_limits.updated",
            rate_limits=[
                {"name": "tokens", "limit": 40000, "remaining": 38490, "reset_seconds": 2.2}
            ],
        )
    )
    return [text.encode() for text in out]


def time_codec(messages: list[bytes], turns: int, opened: int = 0) -> float:
    """Seconds per turn of parsing alone (``opened`` is for the common signature)."""
    parse = rtproto.parse_server_event
    start = time.perf_counter()
    for _ in range(turns):
        for message in messages:
            parse(message)
    return (time.perf_counter() - start) / turns


def reads_of(messages: list[bytes], size: int = 65536) -> list[list[bytes]]:
    """The messages grouped as a driver would receive them: one group per socket read."""
    groups: list[list[bytes]] = [[]]
    filled = 0
    for message in messages:
        if filled + len(message) > size and groups[-1]:
            groups.append([])
            filled = 0
        groups[-1].append(message)
        filled += len(message)
    return groups


def open_session() -> ClientSession:
    """A connected session with its opening output drained."""
    session = ClientSession(SessionOptions(model="gpt-realtime"))
    session.connection_made(0.0)
    session.messages_to_send()
    session.take_events()
    return session


def time_session(
    messages: list[bytes],
    turns: int,
    per_read: bool = False,
    one_by_one: bool = False,
    opened: int = 0,
) -> float:
    """Seconds per turn, each turn on a fresh session opened before the clock starts
    (``opened``: how many to open, when more than ``turns``; see :func:`instructions`)."""
    sessions = [open_session() for _ in range(max(turns, opened))][:turns]
    groups = reads_of(messages) if per_read else [[m] for m in messages]
    start = time.perf_counter()
    for session in sessions:
        receive, to_send = session.receive, session.messages_to_send
        if one_by_one:
            next_event = session.next_event
            for group in groups:
                for message in group:
                    receive(message, 1.0)
                while next_event() is not None:
                    pass
                to_send()
        else:
            take_events = session.take_events
            for group in groups:
                for message in group:
                    receive(message, 1.0)
                for _event in take_events():
                    pass
                to_send()
    return (time.perf_counter() - start) / turns


class Floor:
    """The interface with no behaviour behind it: parse, queue, one chunk per audio delta."""

    def __init__(self) -> None:
        self._events: list[object] = []
        self._outbox: list[str] = []

    def receive(self, message: bytes, now: float) -> None:
        event = decode_ga_server_event(message)  # as the session decodes valid GA text
        event.__dict__[GA_SOURCE] = message
        self._events.append(event)
        if type(event) is ResponseOutputAudioDelta:
            self._events.append(AudioChunk(event.response_id, event.item_id, 0, event))

    def take_events(self) -> list[object]:
        events, self._events = self._events, []
        return events

    def messages_to_send(self) -> list[str]:
        out, self._outbox = self._outbox, []
        return out


def time_floor(messages: list[bytes], turns: int, opened: int = 0) -> float:
    floors = [Floor() for _ in range(max(turns, opened))][:turns]
    start = time.perf_counter()
    for floor in floors:
        receive, take_events, to_send = floor.receive, floor.take_events, floor.messages_to_send
        for message in messages:
            receive(message, 1.0)
            for _event in take_events():
                pass
            to_send()
    return (time.perf_counter() - start) / turns


def breakdown(messages: list[bytes], turns: int, repeats: int) -> None:
    """Where the session's time goes: its extra cost over the floor per message type (each
    message timed on its own, which adds the same clock overhead to both sides)."""
    kinds = [json.loads(message)["type"] for message in messages]
    clock = time.perf_counter_ns

    def per_kind(receivers: list[Any]) -> dict[str, int]:
        spent = dict.fromkeys(kinds, 0)
        for receiver in receivers:
            receive, take, to_send = (
                receiver.receive,
                receiver.take_events,
                receiver.messages_to_send,
            )
            for kind, message in zip(kinds, messages, strict=True):
                start = clock()
                receive(message, 1.0)
                take()
                to_send()
                spent[kind] += clock() - start
        return spent

    extra: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(repeats):
        floor = per_kind([Floor() for _ in range(turns)])
        spent = per_kind([open_session() for _ in range(turns)])
        for kind in extra:
            extra[kind].append((spent[kind] - floor[kind]) / turns / 1000)
    counts = {kind: kinds.count(kind) for kind in extra}
    print("| message type | per turn | session - floor, µs per turn | ns per message |")
    print("|---|---:|---:|---:|")
    rows = sorted(extra.items(), key=lambda item: -statistics.median(item[1]))
    for kind, values in rows:
        median = statistics.median(values)
        print(f"| {kind} | {counts[kind]} | {median:.2f} | {median * 1000 / counts[kind]:.0f} |")


#: Every timed path: its name, its label in the table, and its timing.
PATHS: dict[str, tuple[str, Any]] = {
    "codec": ("codec (parse_server_event)", time_codec),
    "session": ("session core, take_events() after every message", time_session),
    "session-per-read": (
        "session core, take_events() after every 64 KiB read",
        lambda messages, turns, opened=0: time_session(
            messages, turns, per_read=True, opened=opened
        ),
    ),
    "session-next-event": (
        "session core, next_event() after every message",
        lambda messages, turns, opened=0: time_session(
            messages, turns, one_by_one=True, opened=opened
        ),
    ),
    "floor": ("floor: the interface, no behaviour, drained after every message", time_floor),
}


#: What ``--stalls`` reads from cachegrind's summary (a name, a pattern of the line's label).
STALLS = {
    "instructions": "I +refs",
    "L1 instruction misses": "I1 +misses",
    "L1 data misses": "D1 +misses",
    "branch mispredictions": "Mispredicts",
}


def per_turn_counts(chunks: int, turns: int, tool: list[str]) -> dict[str, dict[str, float]]:
    """Counts per turn of each path under a valgrind tool: two runs of each (``turns`` and
    ``turns + 100`` turns) so the interpreter's start-up cancels out. Both runs open
    ``turns + 100`` sessions, so opening one (about 270k instructions: configuration,
    ``session.update``) is left out, as the timed runs leave it out."""

    def count(mode: str, n: int) -> dict[str, int]:
        path = ["--only", mode, "--turns", str(n), "--chunks", str(chunks)]
        path += ["--opened", str(turns + 100)]
        done = subprocess.run(
            [*tool, sys.executable, __file__, *path],
            capture_output=True,
            text=True,
            check=True,
            # a fixed string hash: dict probe sequences, hence counts, repeat exactly
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        found = {
            label: int(match.group(1).replace(",", ""))
            for label, match in (
                (label, re.search(rf"{label} *: +([\d,]+)", done.stderr))
                for label in ("Collected", *STALLS.values())
            )
            if match is not None
        }
        assert found, done.stderr
        return found

    counts: dict[str, dict[str, float]] = {}
    for mode in PATHS:
        few, many = count(mode, turns), count(mode, turns + 100)
        counts[mode] = {label: (many[label] - few[label]) / 100 for label in few}
    return counts


def build() -> str:
    """Which session core is measured: the pure-Python one or the compiled build."""
    return "compiled (RTPROTO_COMPILE=1, mypyc)" if COMPILED else "pure Python"


def valgrind() -> str | None:
    found = shutil.which("valgrind")
    if found is None:
        print(
            "--instructions and --stalls need valgrind (Debian package valgrind)", file=sys.stderr
        )
    return found


def instructions(chunks: int, turns: int) -> int:
    """Instructions per turn of each path, counted by callgrind (see :func:`per_turn_counts`).
    Counts repeat exactly; a change of code layout alone moves them by up to about 2k per
    turn."""
    tool = valgrind()
    if tool is None:
        return 2
    callgrind = [tool, "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    per_turn = {
        mode: counts["Collected"]
        for mode, counts in per_turn_counts(chunks, turns, callgrind).items()
    }
    print(f"turn: {chunks} x 100 ms audio; CPU instructions per turn (callgrind); {build()}")
    print("| path | instructions per turn | x codec |")
    print("|---|---:|---:|")
    for mode, value in per_turn.items():
        print(f"| {PATHS[mode][0]} | {value:,.0f} | {value / per_turn['codec']:.3f} |")
    return 0


def stalls(chunks: int, turns: int) -> int:
    """What makes an instruction of the session dearer than one of the codec: cache misses
    and branch mispredictions per turn, simulated by cachegrind (exact and repeatable, like
    ``--instructions``). The codec spends its instructions in the decoder's tight loops; the
    interpreter running the session's Python misses far more often per instruction, which is
    why the timed ratio is higher than the instruction ratio."""
    tool = valgrind()
    if tool is None:
        return 2
    cachegrind = [tool, "--tool=cachegrind", "--cache-sim=yes", "--branch-sim=yes"]
    counts = per_turn_counts(chunks, turns, [*cachegrind, "--cachegrind-out-file=/dev/null"])
    print(f"turn: {chunks} x 100 ms audio; per turn, simulated by cachegrind (x codec)")
    print("| path | " + " | ".join(STALLS) + " |")
    print("|---|" + "---:|" * len(STALLS))
    for mode, values in counts.items():
        cells = [
            f"{values[label]:,.0f} ({values[label] / counts['codec'][label]:.2f})"
            for label in STALLS.values()
        ]
        print(f"| {PATHS[mode][0]} | " + " | ".join(cells) + " |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=50, help="100 ms audio deltas per turn")
    parser.add_argument("--turns", type=int, default=10, help="turns per path in a round")
    parser.add_argument("--repeats", type=int, default=300, help="rounds")
    parser.add_argument(
        "--breakdown", action="store_true", help="the session's extra cost per message type"
    )
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions (callgrind), not time"
    )
    parser.add_argument(
        "--stalls",
        action="store_true",
        help="count cache misses and branch mispredictions (cachegrind), not time",
    )
    parser.add_argument("--only", choices=list(PATHS), help=argparse.SUPPRESS)
    parser.add_argument("--opened", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.instructions:
        return instructions(args.chunks, 10)
    if args.stalls:
        return stalls(args.chunks, 10)
    messages = turn(args.chunks)
    if args.only:  # one path, run under callgrind by --instructions
        PATHS[args.only][1](messages, args.turns, opened=args.opened)
        return 0
    if args.breakdown:
        breakdown(messages, args.turns, args.repeats)
        return 0
    timings: dict[str, list[float]] = {mode: [] for mode in PATHS}
    for _ in range(args.repeats):  # short rounds, so noise hits every path of a round alike
        for mode, (_label, timing) in PATHS.items():
            timings[mode].append(timing(messages, args.turns))

    def x(mode: str, over: str = "codec") -> float:
        """The median over the rounds of ``mode``'s time over ``over``'s."""
        return statistics.median(a / b for a, b in zip(timings[mode], timings[over], strict=True))

    print(
        f"turn: {len(messages)} messages ({args.chunks} x 100 ms audio),"
        f" {args.repeats} rounds of {args.turns} turns a path; session core: {build()}"
    )
    print("| path | µs per turn | µs per message | x codec |")
    print("|---|---:|---:|---:|")
    for mode, (label, _timing) in PATHS.items():
        value = statistics.median(timings[mode])
        per = value * 1e6 / len(messages)
        print(f"| {label} | {value * 1e6:.1f} | {per:.2f} | {x(mode):.2f} |")
    ratio = x("session")
    verdict = "PASS" if ratio <= TARGET else "FAIL"
    print(f"session / codec (strict, per message) = {ratio:.2f}x (target <= {TARGET}x): {verdict}")
    print(f"session / floor (strict, per message) = {x('session', 'floor'):.2f}x")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
