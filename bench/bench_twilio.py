"""The Twilio bridge's cost: one minute of a phone call through :class:`TwilioBridge`, against
the same call bridged by hand (what an application writes without ``rtproto.phone``).

The call, scripted once as the text both sides exchange:

* Twilio sends 3,000 ``media`` messages (20 ms of mu-law each: the caller's minute);
* the model answers in 10 turns of 3 s: each ``response.created``, 30 deltas of 100 ms of
  mu-law, ``response.output_audio.done`` and ``response.done``;
* Twilio echoes every mark the bridge sent (one per delta and one per item).

Contenders, each on a connected ``phone``-profile :class:`ClientSession`:

* ``bridge``: ``TwilioBridge.receive_twilio`` for Twilio's messages, ``session.receive`` for the
  server's, every session event through ``handle_session_event``, both outboxes drained (each
  delta goes out as ``media`` + ``mark``; echoed marks report playback);
* ``by hand``: ``json.loads`` of Twilio's messages and ``session.send_audio`` of the decoded
  payload, ``session.receive`` for the server's, and for each audio chunk a ``json.dumps`` of
  the ``media`` message: no marks, no padding, no checks (what the SDK examples do).

Both are timed in the same run, interleaved, in a fresh order each repeat; the figure is the
median over ``--repeats`` (default 7) of the best of 3 runs of the whole call. There is no
target: the ratio says what marks, padding and the checks cost per call.

    .venv/bin/python bench/bench_twilio.py [--repeats N] [--quick]
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rtproto.phone import TwilioBridge
from rtproto.session import AudioChunk, ClientSession, SessionOptions

STREAM = "MZ" + "0" * 32


def script(seconds: int, turns: int) -> tuple[list[str], list[list[str]]]:
    """Twilio's media messages, and the server's messages turn by turn."""
    start = {"event": "start", "streamSid": STREAM, "start": {"streamSid": STREAM}}
    start["start"]["mediaFormat"] = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    twilio = [json.dumps(start)]
    caller = base64.b64encode(bytes(range(160))).decode()
    for n in range(seconds * 50):
        media = {
            "track": "inbound",
            "chunk": str(n + 1),
            "timestamp": str(n * 20),
            "payload": caller,
        }
        twilio.append(json.dumps({"event": "media", "streamSid": STREAM, "media": media}))
    answer = base64.b64encode(bytes(range(256)) * 3 + bytes(32)).decode()  # 800 bytes: 100 ms
    server = []
    for turn in range(turns):
        rid, iid = f"resp_{turn}", f"item_{turn}"
        ctx = {"response_id": rid, "item_id": iid, "output_index": 0, "content_index": 0}
        messages = [
            json.dumps({"type": "response.created", "event_id": "e", "response": {"id": rid}})
        ]
        for _ in range(30):
            delta = {"type": "response.output_audio.delta", "event_id": "e", **ctx, "delta": answer}
            messages.append(json.dumps(delta))
        messages.append(json.dumps({"type": "response.output_audio.done", "event_id": "e", **ctx}))
        done = {
            "type": "response.done",
            "event_id": "e",
            "response": {"id": rid, "status": "completed"},
        }
        messages.append(json.dumps(done))
        server.append(messages)
    return twilio, server


def connected_session() -> ClientSession:
    session = ClientSession(SessionOptions(profile="phone", model="gpt-realtime"))
    session.connection_made(0.0)
    session.messages_to_send()
    session.take_events()
    return session


def with_bridge(twilio: list[str], server: list[list[str]]) -> int:
    session = connected_session()
    bridge = TwilioBridge(session)
    sent = 0
    per_turn = len(twilio) // (len(server) + 1)
    now = 0.0
    for turn, messages in enumerate([[], *server]):
        for text in twilio[turn * per_turn : (turn + 1) * per_turn]:
            now += 0.02
            bridge.receive_twilio(text, now)
            session.messages_to_send()
            bridge.events()
        for text in messages:
            session.receive(text, now)
            for event in session.take_events():
                bridge.handle_session_event(event)
        out = bridge.twilio_messages_to_send()
        sent += len(out)
        for text in out:  # Twilio plays it all and echoes every mark (as it was sent)
            if text.startswith('{"event":"mark"'):
                bridge.receive_twilio(text, now)
        session.messages_to_send()
        bridge.events()
    return sent


def by_hand(twilio: list[str], server: list[list[str]]) -> int:
    session = connected_session()
    sent = 0
    per_turn = len(twilio) // (len(server) + 1)
    now = 0.0
    for turn, messages in enumerate([[], *server]):
        for text in twilio[turn * per_turn : (turn + 1) * per_turn]:
            now += 0.02
            message = json.loads(text)
            if message["event"] == "media":
                session.send_audio(base64.b64decode(message["media"]["payload"]))
            session.messages_to_send()
        out = []
        for text in messages:
            session.receive(text, now)
            for event in session.take_events():
                if type(event) is AudioChunk:
                    media = {"event": "media", "streamSid": STREAM}
                    media["media"] = {"payload": event.event.delta}
                    out.append(json.dumps(media))
        sent += len(out)
        session.messages_to_send()
    return sent


def best_of(run: Callable[[], int], times: int = 3) -> float:
    best = float("inf")
    for _ in range(times):
        gc.disable()
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
        gc.enable()
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="a 6 s call, 1 repeat")
    args = parser.parse_args(argv)
    seconds, turns, repeats = (6, 1, 1) if args.quick else (60, 10, args.repeats)
    twilio, server = script(seconds, turns)
    bridged = with_bridge(twilio, server)
    assert bridged == turns * (30 * 2 + 1), bridged  # media + mark per delta, a done mark
    assert by_hand(twilio, server) == turns * 30
    contenders = {
        "bridge": lambda: with_bridge(twilio, server),
        "by hand": lambda: by_hand(twilio, server),
    }
    timings: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        order = list(contenders)
        random.shuffle(order)
        for name in order:
            timings[name].append(best_of(contenders[name]))
    medians = {name: statistics.median(values) for name, values in timings.items()}
    messages = len(twilio) + sum(len(m) for m in server)
    print(f"| a {seconds} s call ({messages} messages in) | ms per call | x by hand |")
    print("|---|---:|---:|")
    for name, median in medians.items():
        ratio = median / medians["by hand"]
        print(f"| {name} | {median * 1000:.1f} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
