"""WebSocket receive/send benchmark: rtproto's wire layer against wsproto and websockets.

Receive: a stream of N unmasked server TEXT frames, each a ``response.output_audio.delta``
(20 ms or 100 ms of 24 kHz PCM16, base64), fed in 64 KiB reads as a socket would deliver
them. Contenders (time per event; one event = one server message):

* ``rtproto wire``: ``RealtimeWebSocket.receive_data`` + ``next_event()`` until ``None``
  (framing, UTF-8 check, typed parse, session bookkeeping: everything a driver gets);
* ``wsproto + session``: wsproto's client frame layer, each finished ``TextMessage`` handed
  to ``ClientSession.receive`` + drained: the same result built on wsproto's framing;
* ``websockets + session``: the same on websockets' sans-I/O ``Protocol``;
* ``wsproto + orjson`` / ``websockets + orjson``: framing plus ``orjson.loads`` only (the
  figures quoted for the peers: no typing, no session);
* ``wsproto alone`` / ``websockets alone``: framing only;
* ``session alone``: ``ClientSession.receive`` + drain on the message bytes (no framing);
* ``codec alone``: ``parse_server_event`` on the message bytes.

Send: 20 ms of PCM16 per ``session.send_audio`` and then the bytes for the wire:
``data_to_send()`` (rtproto) vs ``wsproto.send(TextMessage)`` and websockets'
``send_text`` + ``data_to_send`` on the session's messages.

Every contender runs the whole stream once per repeat; repeats are interleaved in a shuffled
order; the figure is the best repeat. Run::

    .venv/bin/python bench/bench_frames.py [--events 4000] [--repeats 7] [--quick]
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import math
import random
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import orjson
from websockets.frames import Opcode
from websockets.protocol import OPEN, Protocol, Side
from wsproto import ConnectionType
from wsproto import events as wse
from wsproto.connection import Connection

from rtproto import parse_server_event
from rtproto.session import ClientSession, SessionOptions
from rtproto.wire import RealtimeWebSocket, WebSocketOptions, WebSocketState
from rtproto.wire._frames import accept_token, encode_frame

READ = 64 * 1024


def pcm(ms: int) -> bytes:
    samples = 24 * ms
    return b"".join(
        struct.pack("<h", int(8000 * math.sin(i / 9.0)) + random.randint(-300, 300))
        for i in range(samples)
    )


def deltas(ms: int, count: int) -> list[bytes]:
    audio = base64.b64encode(pcm(ms)).decode()
    return [
        json.dumps(
            {
                "type": "response.output_audio.delta",
                "event_id": f"event_{i:06d}",
                "response_id": "resp_1",
                "item_id": "item_1",
                "output_index": 0,
                "content_index": 0,
                "delta": audio,
            },
            separators=(",", ":"),
        ).encode()
        for i in range(count)
    ]


def reads(messages: list[bytes]) -> list[bytes]:
    stream = b"".join(encode_frame(0x1, m) for m in messages)
    return [stream[i : i + READ] for i in range(0, len(stream), READ)]


def open_rtproto() -> RealtimeWebSocket:
    conn = RealtimeWebSocket(WebSocketOptions(api_key="sk-bench", ping_interval=None))
    conn.initiate(0.0)
    request = conn.data_to_send()
    key = request.split(b"Sec-WebSocket-Key: ")[1].split(b"\r\n")[0]
    conn.receive_data(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_token(key) + b"\r\n\r\n",
        0.0,
    )
    assert conn.state is WebSocketState.OPEN
    while conn.next_event() is not None:
        pass
    conn.data_to_send()
    return conn


def open_session() -> ClientSession:
    session = ClientSession(SessionOptions())
    session.connection_made(0.0)
    session.messages_to_send()
    list(session.events())
    return session


def receive_contenders(chunks: list[bytes], messages: list[bytes]) -> dict[str, Callable[[], int]]:
    conn = open_rtproto()
    session_w = open_session()
    session_ws = open_session()
    session_alone = open_session()

    def rtproto_wire() -> int:
        receive, next_event = conn.receive_data, conn.next_event
        n = 0
        for chunk in chunks:
            receive(chunk, 1.0)
            while next_event() is not None:
                n += 1
        return n // 2  # a delta and its AudioChunk per message

    def wsproto_session() -> int:
        ws = Connection(ConnectionType.CLIENT)
        receive, next_event = session_w.receive, session_w.next_event
        parts: list[str] = []
        n = 0
        for chunk in chunks:
            ws.receive_data(chunk)
            for event in ws.events():
                if isinstance(event, wse.TextMessage):
                    if not event.message_finished:  # part of a frame split across reads
                        parts.append(event.data)
                        continue
                    if parts:
                        parts.append(event.data)
                        receive("".join(parts), 1.0)
                        parts.clear()
                    else:
                        receive(event.data, 1.0)
                    n += 1
                    while next_event() is not None:
                        pass
        return n

    def websockets_session() -> int:
        ws = Protocol(Side.CLIENT, state=OPEN, max_size=None)
        receive, next_event = session_ws.receive, session_ws.next_event
        n = 0
        for chunk in chunks:
            ws.receive_data(chunk)
            for frame in ws.events_received():
                if frame.opcode is Opcode.TEXT:
                    receive(frame.data, 1.0)
                    n += 1
                    while next_event() is not None:
                        pass
        return n

    def wsproto_orjson() -> int:
        ws = Connection(ConnectionType.CLIENT)
        loads = orjson.loads
        parts: list[str] = []
        n = 0
        for chunk in chunks:
            ws.receive_data(chunk)
            for event in ws.events():
                if isinstance(event, wse.TextMessage):
                    if not event.message_finished:
                        parts.append(event.data)
                        continue
                    if parts:
                        parts.append(event.data)
                        loads("".join(parts))
                        parts.clear()
                    else:
                        loads(event.data)
                    n += 1
        return n

    def websockets_orjson() -> int:
        ws = Protocol(Side.CLIENT, state=OPEN, max_size=None)
        loads = orjson.loads
        n = 0
        for chunk in chunks:
            ws.receive_data(chunk)
            for frame in ws.events_received():
                loads(frame.data)
                n += 1
        return n

    def wsproto_alone() -> int:
        ws = Connection(ConnectionType.CLIENT)
        n = 0
        for chunk in chunks:
            ws.receive_data(chunk)
            for event in ws.events():
                n += isinstance(event, wse.TextMessage) and event.message_finished
        return n

    def websockets_alone() -> int:
        ws = Protocol(Side.CLIENT, state=OPEN, max_size=None)
        n = 0
        for chunk in chunks:
            ws.receive_data(chunk)
            n += len(ws.events_received())
        return n

    def session_only() -> int:
        receive, next_event = session_alone.receive, session_alone.next_event
        n = 0
        for message in messages:
            receive(message, 1.0)
            n += 1
            while next_event() is not None:
                pass
        return n

    def codec_only() -> int:
        for message in messages:
            parse_server_event(message)
        return len(messages)

    return {
        "rtproto wire": rtproto_wire,
        "wsproto + session": wsproto_session,
        "websockets + session": websockets_session,
        "session alone (no framing)": session_only,
        "wsproto + orjson": wsproto_orjson,
        "websockets + orjson": websockets_orjson,
        "wsproto alone": wsproto_alone,
        "websockets alone": websockets_alone,
        "codec alone (no framing)": codec_only,
    }


def send_contenders(count: int) -> dict[str, Callable[[], int]]:
    audio = pcm(20)
    conn = open_rtproto()
    session_w = open_session()
    session_ws = open_session()

    def rtproto_wire() -> int:
        send, out = conn.session.send_audio, conn.data_to_send
        for _ in range(count):
            send(audio)
            out()
        return count

    def wsproto_session() -> int:
        ws = Connection(ConnectionType.CLIENT)
        send, drain = session_w.send_audio, session_w.messages_to_send
        for _ in range(count):
            send(audio)
            for text in drain():
                ws.send(wse.TextMessage(data=text))
        return count

    def websockets_session() -> int:
        ws = Protocol(Side.CLIENT, state=OPEN, max_size=None)
        send, drain = session_ws.send_audio, session_ws.messages_to_send
        for _ in range(count):
            send(audio)
            for text in drain():
                ws.send_text(text.encode())
            ws.data_to_send()
        return count

    return {
        "rtproto wire": rtproto_wire,
        "wsproto + session": wsproto_session,
        "websockets + session": websockets_session,
    }


def measure(
    contenders: dict[str, Callable[[], int]], repeats: int, expected: int | None = None
) -> dict[str, float]:
    """Seconds per item (message received, or audio chunk sent) of each contender."""
    best = dict.fromkeys(contenders, math.inf)
    counts = {name: fn() for name, fn in contenders.items()}  # warm up, check
    for name, count in counts.items():
        assert expected is None or count == expected, (name, count, expected)
    names = list(contenders)
    for _ in range(repeats):
        random.shuffle(names)
        for name in names:
            gc.collect()
            gc.disable()
            start = time.perf_counter()
            contenders[name]()
            elapsed = time.perf_counter() - start
            gc.enable()
            best[name] = min(best[name], elapsed)
    return {name: best[name] / (expected or 1) for name in contenders}


def report(title: str, per_item: dict[str, float], base: str) -> None:
    print(f"\n{title}")
    print(f"| contender | us each | per second | x {base} |")
    print("|---|---:|---:|---:|")
    for name, seconds in per_item.items():
        ratio = seconds / per_item[base]
        print(f"| {name} | {seconds * 1e6:.2f} | {1 / seconds:,.0f} | {ratio:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.events, args.repeats = 300, 2
    random.seed(1)
    for ms in (20, 100):
        messages = deltas(ms, args.events)
        chunks = reads(messages)
        size = len(messages[0])
        per_message = measure(receive_contenders(chunks, messages), args.repeats, len(messages))
        report(
            f"Receive: {ms} ms audio deltas ({size} bytes per message), per message",
            per_message,
            "rtproto wire",
        )
    report(
        "Send: 20 ms of PCM16 per send_audio, to bytes on the wire",
        measure(send_contenders(args.events), args.repeats, args.events),
        "rtproto wire",
    )


if __name__ == "__main__":
    main()
