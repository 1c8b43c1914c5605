"""Codec micro-benchmark: rtproto against the JSON/base64 floors and the official openai SDK.

What is timed (time per event, in microseconds):

Receive path, on the JSON bytes a WebSocket driver would hand over (GA server event shapes,
built with ``json.dumps`` in compact form, as the server sends them):

* ``response.output_audio.delta`` with 20 ms and with 100 ms of 24 kHz mono PCM16
  (960 and 4800 bytes of deterministic noisy-sine audio, base64 in ``delta``);
* ``response.output_audio_transcript.delta`` (a short delta plus ``obfuscation``);
* ``response.done`` with a full response (an assistant audio message with a ~200-character
  transcript, a function call, audio config and detailed usage).

Contenders per message:

* ``rtproto``: ``rtproto.parse_server_event(data)``, and for audio deltas also ``ev.pcm``
  (the int16 view; it base64-decodes on first access);
* ``json+base64``: ``json.loads`` and, for audio, ``base64.b64decode(obj["delta"])``;
* ``orjson+pybase64`` (the floor): ``orjson.loads`` and, for audio,
  ``pybase64.b64decode(obj["delta"])``;
* ``SDK``: the official SDK's own receive step, ``RealtimeConnection.parse_event(data)``
  (``construct_type_unchecked(value=json.loads(data), type_=RealtimeServerEvent)``), called on
  a real ``RealtimeConnection`` built around a stub socket, plus ``base64.b64decode(ev.delta)``
  for audio, as its users must.

Send path, 20 ms of PCM16 (960 bytes, or the same as a numpy int16 array) to the JSON text of
``input_audio_buffer.append``:

* ``rtproto``: ``encode_audio_append(pcm)``, the fast send path the session core uses (the
  general ``serialize_client_event(InputAudioBufferAppend.from_pcm(pcm))`` gives the same
  text and costs about twice as much: msgspec scans the base64 for characters to escape);
* ``json+base64``: ``json.dumps({... base64.b64encode(pcm).decode()})``;
* ``orjson+pybase64``: ``orjson.dumps({... pybase64.b64encode(pcm).decode()})`` (this one
  yields ``bytes``, not ``str``; a WebSocket library would then send a binary frame unless
  told otherwise, so it is a slightly generous floor);
* ``SDK``: what ``connection.input_audio_buffer.append(audio=...)`` does before the socket:
  ``strip_not_given({...})`` (``RealtimeInputAudioBufferResource.append``), then
  ``json.dumps(maybe_transform(event, Union[RealtimeClientEventParam,
  ResponseCreateEventWithReferencesParam]))`` (``RealtimeConnection.send``), with the base64
  encode its users must do first. The output is checked to be identical to what the real
  ``append`` hands the socket.

Method: every contender is first checked for correct output, then calibrated to a loop count
that runs for about 25 ms (``--quick``: 2 ms). One timing is the best of 3 such ``timeit``
runs (garbage collection off, as ``timeit`` does) divided by the loop count. Timings are
interleaved: each repeat runs every contender once, in a freshly shuffled order, so drift and
noise hit all contenders alike; the reported figure is the median over ``--repeats`` (default
7) repeats. A default run takes about 15 seconds, ``--quick`` one or two.

Targets: every received kind within 1.5x of the orjson+pybase64 floor and at least 10x faster
than the SDK path; the append send path within 1.5x of the orjson+pybase64 floor.

Run from the project root::

    .venv/bin/python bench/bench_codec.py             # markdown table
    .venv/bin/python bench/bench_codec.py --quick     # smoke test, a second or two
    .venv/bin/python bench/bench_codec.py --json      # machine-readable results
    .venv/bin/python bench/bench_codec.py --repeats 11
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import inspect
import json
import platform
import random
import statistics
import sys
import time
import timeit
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import msgspec
import numpy as np
import openai
import orjson
import pybase64
from openai._models import construct_type_unchecked
from openai._types import omit
from openai._utils import maybe_transform, strip_not_given
from openai.resources.realtime.realtime import (
    RealtimeConnection,
    RealtimeInputAudioBufferResource,
)
from openai.types.realtime import (
    RealtimeClientEventParam,
    ResponseAudioDeltaEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseDoneEvent,
)
from openai.types.realtime.response_create_event_with_references_param import (
    ResponseCreateEventWithReferencesParam,
)

import rtproto
from rtproto.events import (
    InputAudioBufferAppend,
    ResponseDone,
    ResponseOutputAudioDelta,
    ResponseOutputAudioTranscriptDelta,
)

SAMPLE_RATE = 24_000
FLOOR_RATIO_TARGET = 1.5
SDK_SPEEDUP_TARGET = 10.0
CONTENDERS = ("rtproto", "json", "orjson", "sdk")
HEADERS = {
    "rtproto": "rtproto µs",
    "json": "json+base64 µs",
    "orjson": "orjson+pybase64 µs",
    "sdk": "SDK µs",
}

# The union RealtimeConnection.send transforms client events against.
SDK_CLIENT_EVENT = Union[RealtimeClientEventParam, ResponseCreateEventWithReferencesParam]

EVENT_ID = "event_B4o9xyzABCDEFGHIJKLM"
RESPONSE_ID = "resp_B4o9xyzNOPQRSTUVWXYZa"
ITEM_ID = "item_B4o9xyzbcdefghijklmno"
CALL_ITEM_ID = "item_B4o9xyzpqrstuvwxyz012"
CONVERSATION_ID = "conv_B4o9xyz3456789ABCDEF"


# ------------------------------------------------------------------------------- fixtures --


def make_pcm(ms: int, seed: int = 20240917) -> bytes:
    """``ms`` milliseconds of 24 kHz mono PCM16: a noisy voice-like tone, deterministic."""
    n = SAMPLE_RATE * ms // 1000
    rng = np.random.default_rng(seed + ms)
    t = np.arange(n) / SAMPLE_RATE
    wave = 0.25 * np.sin(2 * np.pi * 180 * t) + 0.1 * np.sin(2 * np.pi * 730 * t)
    wave += 0.05 * rng.standard_normal(n)
    return np.clip(wave * 32767, -32768, 32767).astype("<i2").tobytes()


def _wire(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def audio_delta_message(pcm: bytes) -> bytes:
    return _wire(
        {
            "type": "response.output_audio.delta",
            "event_id": EVENT_ID,
            "response_id": RESPONSE_ID,
            "item_id": ITEM_ID,
            "output_index": 0,
            "content_index": 0,
            "delta": base64.b64encode(pcm).decode(),
        }
    )


def transcript_delta_message() -> bytes:
    return _wire(
        {
            "type": "response.output_audio_transcript.delta",
            "event_id": EVENT_ID,
            "response_id": RESPONSE_ID,
            "item_id": ITEM_ID,
            "output_index": 0,
            "content_index": 0,
            "delta": " the forecast",
            "obfuscation": "q7RkZp2x",
        }
    )


TRANSCRIPT = (
    "Sure! Right now in Paris it's about eighteen degrees Celsius with light clouds and a "
    "gentle breeze from the west. Later this afternoon there's a small chance of showers, so "
    "you might want to bring an umbrella."
)


def response_done_message() -> bytes:
    return _wire(
        {
            "type": "response.done",
            "event_id": EVENT_ID,
            "response": {
                "id": RESPONSE_ID,
                "object": "realtime.response",
                "status": "completed",
                "status_details": None,
                "output": [
                    {
                        "id": ITEM_ID,
                        "type": "message",
                        "object": "realtime.item",
                        "status": "completed",
                        "role": "assistant",
                        "content": [{"type": "output_audio", "transcript": TRANSCRIPT}],
                    },
                    {
                        "id": CALL_ITEM_ID,
                        "type": "function_call",
                        "object": "realtime.item",
                        "status": "completed",
                        "name": "get_weather",
                        "call_id": "call_Xy7Qw2LmN8vB4kPz",
                        "arguments": '{"location":"Paris, France","unit":"celsius"}',
                    },
                ],
                "conversation_id": CONVERSATION_ID,
                "output_modalities": ["audio"],
                "max_output_tokens": "inf",
                "audio": {
                    "output": {
                        "format": {"type": "audio/pcm", "rate": SAMPLE_RATE},
                        "voice": "alloy",
                    }
                },
                "metadata": None,
                "usage": {
                    "total_tokens": 1287,
                    "input_tokens": 1021,
                    "output_tokens": 266,
                    "input_token_details": {
                        "text_tokens": 812,
                        "audio_tokens": 209,
                        "image_tokens": 0,
                        "cached_tokens": 768,
                        "cached_tokens_details": {
                            "text_tokens": 704,
                            "audio_tokens": 64,
                            "image_tokens": 0,
                        },
                    },
                    "output_token_details": {"text_tokens": 58, "audio_tokens": 208},
                },
            },
        }
    )


# ------------------------------------------------------------------------- the SDK's paths --


class _StubSocket:
    """Stands in for the ``websockets`` connection: keeps the last frame sent, never reads."""

    last: str | bytes | None = None

    def send(self, data: str | bytes) -> None:
        self.last = data


_sdk_socket = _StubSocket()
_sdk_connection = RealtimeConnection(_sdk_socket)  # type: ignore[arg-type]
#: The SDK's receive step: RealtimeConnection.parse_event, bound to a real connection.
sdk_parse_event = _sdk_connection.parse_event


def sdk_locations() -> dict[str, str]:
    """Where, in the installed SDK, the code this benchmark times lives (file:line)."""
    site = Path(openai.__file__).resolve().parent.parent

    def where(obj: Any) -> str:
        path = Path(inspect.getsourcefile(obj) or "?").resolve()
        line = inspect.getsourcelines(obj)[1]
        with contextlib.suppress(ValueError):
            path = path.relative_to(site)
        return f"{path}:{line}"

    return {
        "receive: RealtimeConnection.parse_event": where(RealtimeConnection.parse_event),
        "receive: construct_type_unchecked": where(construct_type_unchecked),
        "send: RealtimeInputAudioBufferResource.append": where(
            RealtimeInputAudioBufferResource.append
        ),
        "send: RealtimeConnection.send": where(RealtimeConnection.send),
        "send: maybe_transform": where(maybe_transform),
    }


# ---------------------------------------------------------------------------------- cases --


@dataclass
class Case:
    key: str
    label: str
    direction: str  # "recv" or "send"
    stmts: dict[str, str]
    namespace: dict[str, Any]
    size: int
    results: dict[str, list[float]] = field(default_factory=dict)
    loops: dict[str, int] = field(default_factory=dict)


RECV_AUDIO = {
    "rtproto": "parse_server_event(data).pcm",
    "json": 'b64decode(json_loads(data)["delta"])',
    "orjson": 'pyb64decode(orjson_loads(data)["delta"])',
    "sdk": "b64decode(sdk_parse_event(data).delta)",
}
RECV_PLAIN = {
    "rtproto": "parse_server_event(data)",
    "json": "json_loads(data)",
    "orjson": "orjson_loads(data)",
    "sdk": "sdk_parse_event(data)",
}
SEND_APPEND = {
    "rtproto": "encode_audio_append(pcm)",
    "json": 'json_dumps({"type": "input_audio_buffer.append", "audio": b64encode(pcm).decode()})',
    "orjson": (
        'orjson_dumps({"type": "input_audio_buffer.append", "audio": pyb64encode(pcm).decode()})'
    ),
    # RealtimeInputAudioBufferResource.append, then RealtimeConnection.send (minus the socket)
    "sdk": (
        "json_dumps(maybe_transform(strip_not_given({'type': 'input_audio_buffer.append', "
        "'audio': b64encode(pcm).decode(), 'event_id': omit}), SDK_CLIENT_EVENT))"
    ),
}

BASE_NAMESPACE: dict[str, Any] = {
    "parse_server_event": rtproto.parse_server_event,
    "serialize_client_event": rtproto.serialize_client_event,
    "encode_audio_append": rtproto.encode_audio_append,
    "InputAudioBufferAppend": InputAudioBufferAppend,
    "json_loads": json.loads,
    "json_dumps": json.dumps,
    "b64decode": base64.b64decode,
    "b64encode": base64.b64encode,
    "orjson_loads": orjson.loads,
    "orjson_dumps": orjson.dumps,
    "pyb64decode": pybase64.b64decode,
    "pyb64encode": pybase64.b64encode,
    "sdk_parse_event": sdk_parse_event,
    "maybe_transform": maybe_transform,
    "strip_not_given": strip_not_given,
    "omit": omit,
    "SDK_CLIENT_EVENT": SDK_CLIENT_EVENT,
}


def build_cases() -> list[Case]:
    pcm20, pcm100 = make_pcm(20), make_pcm(100)
    msgs = {
        "a1": audio_delta_message(pcm20),
        "a2": audio_delta_message(pcm100),
        "b": transcript_delta_message(),
        "c": response_done_message(),
    }
    pcm_array = np.frombuffer(pcm20, dtype="<i2").copy()

    def ns(**extra: Any) -> dict[str, Any]:
        return {**BASE_NAMESPACE, **extra}

    return [
        Case(
            "recv_audio_20ms",
            "recv `response.output_audio.delta` 20 ms (960 B PCM)",
            "recv",
            RECV_AUDIO,
            ns(data=msgs["a1"], expect=pcm20),
            len(msgs["a1"]),
        ),
        Case(
            "recv_audio_100ms",
            "recv `response.output_audio.delta` 100 ms (4800 B PCM)",
            "recv",
            RECV_AUDIO,
            ns(data=msgs["a2"], expect=pcm100),
            len(msgs["a2"]),
        ),
        Case(
            "recv_transcript_delta",
            "recv `response.output_audio_transcript.delta`",
            "recv",
            RECV_PLAIN,
            ns(data=msgs["b"]),
            len(msgs["b"]),
        ),
        Case(
            "recv_response_done",
            "recv `response.done` (full response)",
            "recv",
            RECV_PLAIN,
            ns(data=msgs["c"]),
            len(msgs["c"]),
        ),
        Case(
            "send_append_bytes",
            "send `input_audio_buffer.append` 20 ms, bytes in",
            "send",
            SEND_APPEND,
            ns(pcm=pcm20, expect=pcm20),
            len(pcm20),
        ),
        Case(
            "send_append_numpy",
            "send `input_audio_buffer.append` 20 ms, numpy int16 in",
            "send",
            SEND_APPEND,
            ns(pcm=pcm_array, expect=pcm20),
            pcm_array.nbytes,
        ),
    ]


# ------------------------------------------------------------------------------ checking --

_EXPECTED_TYPES = {
    "recv_audio_20ms": (ResponseOutputAudioDelta, ResponseAudioDeltaEvent),
    "recv_audio_100ms": (ResponseOutputAudioDelta, ResponseAudioDeltaEvent),
    "recv_transcript_delta": (
        ResponseOutputAudioTranscriptDelta,
        ResponseAudioTranscriptDeltaEvent,
    ),
    "recv_response_done": (ResponseDone, ResponseDoneEvent),
}


def check(case: Case) -> None:
    """Run each contender once and verify it does the real work (fail loudly otherwise)."""
    ns = case.namespace
    out = {name: eval(stmt, ns) for name, stmt in case.stmts.items()}
    if case.direction == "recv":
        ours, theirs = _EXPECTED_TYPES[case.key]
        data = ns["data"]
        event = rtproto.parse_server_event(data)
        sdk_event = sdk_parse_event(data)
        assert type(event) is ours, f"{case.key}: rtproto gave {type(event).__name__}"
        assert type(sdk_event) is theirs, f"{case.key}: SDK gave {type(sdk_event).__name__}"
        assert out["json"] == out["orjson"], case.key
        if "expect" in ns:
            expect = ns["expect"]
            assert isinstance(out["rtproto"], np.ndarray) and out["rtproto"].dtype == "<i2"
            assert out["rtproto"].tobytes() == expect, case.key
            assert out["json"] == out["orjson"] == out["sdk"] == expect, case.key
        if case.key == "recv_response_done":
            items = sdk_event.response.output or []
            assert [type(i).__name__ for i in items] == [
                "RealtimeConversationItemAssistantMessage",
                "RealtimeConversationItemFunctionCall",
            ], items
            assert event.response.usage is not None
            assert msgspec.to_builtins(event)["response"] == json.loads(data)["response"]
    else:
        audio = base64.b64encode(ns["expect"]).decode()
        wire = {"type": "input_audio_buffer.append", "audio": audio}
        for name, text in out.items():
            assert json.loads(text) == wire, f"{case.key}: {name} output differs"
        # The SDK statement must produce exactly what the real append hands the socket.
        _sdk_connection.input_audio_buffer.append(audio=audio)
        assert _sdk_socket.last == out["sdk"], "SDK send statement differs from append()"


# ------------------------------------------------------------------------------- timing --


def calibrate(timer: timeit.Timer, target_s: float) -> int:
    """Loop count for one run of about ``target_s`` seconds."""
    number = 1
    while True:
        for mult in (1, 2, 5):
            n = number * mult
            elapsed = timer.timeit(n)
            if elapsed >= target_s / 5:
                return max(1, round(n * target_s / elapsed))
        number *= 10


def run(repeats: int, quick: bool, progress: bool) -> tuple[list[Case], dict[str, Any]]:
    target_s = 0.002 if quick else 0.025
    best_of = 2 if quick else 3
    cases = build_cases()
    timers: dict[tuple[str, str], timeit.Timer] = {}
    for case in cases:
        check(case)
        for name, stmt in case.stmts.items():
            timer = timeit.Timer(stmt, globals=case.namespace)
            timer.timeit(max(1, int(200 / (len(case.stmts) or 1))))  # warm up
            case.loops[name] = calibrate(timer, target_s)
            case.results[name] = []
            timers[(case.key, name)] = timer
    jobs = [(case, name) for case in cases for name in case.stmts]
    rng = random.Random(12345)
    start = time.perf_counter()
    for r in range(repeats):
        rng.shuffle(jobs)
        for case, name in jobs:
            n = case.loops[name]
            best = min(timers[(case.key, name)].repeat(repeat=best_of, number=n))
            case.results[name].append(best / n * 1e6)
        if progress:
            print(f"  repeat {r + 1}/{repeats} done", file=sys.stderr)
    meta = {
        "repeats": repeats,
        "quick": quick,
        "run_target_ms": target_s * 1e3,
        "best_of": best_of,
        "timed_seconds": round(time.perf_counter() - start, 2),
    }
    return cases, meta


# ------------------------------------------------------------------------------ reporting --


def summarise(case: Case) -> dict[str, Any]:
    med = {name: statistics.median(vals) for name, vals in case.results.items()}
    floor_ratio = med["rtproto"] / med["orjson"]
    sdk_ratio = med["sdk"] / med["rtproto"]
    ok_floor = floor_ratio <= FLOOR_RATIO_TARGET
    if case.direction == "recv":
        ok = ok_floor and sdk_ratio >= SDK_SPEEDUP_TARGET
        target = f"≤{FLOOR_RATIO_TARGET}x floor, ≥{SDK_SPEEDUP_TARGET:g}x SDK"
    else:
        ok = ok_floor
        target = f"≤{FLOOR_RATIO_TARGET}x floor"
    spread = {
        name: (max(vals) - min(vals)) / statistics.median(vals)
        for name, vals in case.results.items()
    }
    return {
        "key": case.key,
        "label": case.label,
        "direction": case.direction,
        "input_bytes": case.size,
        "median_us": med,
        "samples_us": case.results,
        "loops": case.loops,
        "relative_spread": spread,
        "rtproto_over_orjson_floor": floor_ratio,
        "sdk_over_rtproto": sdk_ratio,
        "target": target,
        "pass": ok,
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    head = [
        "message",
        *(HEADERS[c] for c in CONTENDERS),
        "rtproto/orjson floor",
        "SDK/rtproto",
        "target",
        "result",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * 6 + ["---"] * 2)]
    lines[-1] += "|"
    for row in rows:
        med = row["median_us"]
        cells = [
            row["label"],
            *(f"{med[c]:.2f}" for c in CONTENDERS),
            f"{row['rtproto_over_orjson_floor']:.2f}x",
            f"{row['sdk_over_rtproto']:.1f}x",
            row["target"],
            "PASS" if row["pass"] else "FAIL",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def environment() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "rtproto": rtproto.__version__,
        "openai": openai.__version__,
        "msgspec": msgspec.__version__,
        "orjson": orjson.__version__,
        "pybase64": pybase64.__version__,
        "numpy": np.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--repeats", type=int, default=7, help="interleaved repeats; the median is reported"
    )
    parser.add_argument("--quick", action="store_true", help="short loops, for a smoke test")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON only")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    cases, meta = run(args.repeats, args.quick, progress=not args.json)
    rows = [summarise(case) for case in cases]
    result = {
        "meta": meta,
        "environment": environment(),
        "sdk_functions": sdk_locations(),
        "rows": rows,
        "all_pass": all(row["pass"] for row in rows),
    }
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0

    env = result["environment"]
    print(
        f"rtproto codec benchmark: median of {meta['repeats']} interleaved repeats, each the "
        f"best of {meta['best_of']} runs of ~{meta['run_target_ms']:g} ms; µs per event"
    )
    print(", ".join(f"{k} {v}" for k, v in env.items()))
    if args.repeats < 5:
        print("note: fewer than 5 repeats; medians are not reliable")
    print()
    print(markdown(rows))
    print()
    worst, row_key, name = max(
        (spread, row["key"], name)
        for row in rows
        for name, spread in row["relative_spread"].items()
    )
    print(
        f"noise: largest (max-min)/median over the repeats is {worst:.0%} ({row_key}, {name}); "
        "the median is robust to a few outlier repeats"
    )
    print("orjson+pybase64 send output is bytes; the others give str.")
    print("SDK code timed:")
    for what, where in result["sdk_functions"].items():
        print(f"  {what}: {where}")
    print(f"overall: {'PASS' if result['all_pass'] else 'FAIL'} ({meta['timed_seconds']} s timed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
