"""A local Realtime-shaped WebSocket server for the loopback and memory benchmarks.

Run as a separate process by ``bench_loopback.py`` and ``bench_memory.py`` (never by hand in
normal use)::

    python bench/_loopback_server.py --events 20000 [--kind raw|websockets]

It listens on 127.0.0.1 (an ephemeral port), prints one JSON line to stdout once it accepts
connections (the ready line: ``{"ready": true, "port": ..., ...}``), and serves until its
stdin reaches EOF (the parent closed it or died), it receives SIGTERM, or ``--max-seconds``
pass. Every connection gets the same script:

1. ``session.created``;
2. ``--events`` ``response.output_audio.delta`` messages, each 20 ms of 24 kHz mono PCM16
   (960 random bytes, base64), built once at start-up, distinct from each other;
3. a ``response.done``;
4. then the connection stays open: a ``session.update`` is answered with ``session.updated``
   (after whatever is already queued: the server never waits for the client before
   streaming), a ping with a pong, a close frame with a close frame, after which the server
   closes the TCP connection.

Two implementations (``--kind``):

* ``raw`` (default, the fast one): an ``asyncio.Protocol`` server that performs the HTTP/1.1
  upgrade by hand (``Sec-WebSocket-Accept`` per RFC 6455, no extension accepted, so nobody
  compresses) and then writes one pre-built buffer of unmasked TEXT frames, in frame-aligned
  chunks of about 256 KiB under transport flow control. Per connection the server does no
  JSON and no framing work at all.
* ``websockets``: the ``websockets`` asyncio server (``compression=None``), sending each
  pre-encoded message with ``await ws.send(data, text=True)`` (UTF-8 bytes, sent as TEXT
  without re-encoding).

The ready line also gives the byte layout of the raw stream (``created_frame_bytes``,
``delta_frame_bytes`` with the sizes of the first delta frame and of all of them), which the
benchmark's socket-floor client uses to time the transport alone.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import random
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SAMPLE_RATE = 24_000
PCM_BYTES = 960  # 20 ms of 24 kHz mono PCM16
CHUNK_BYTES = 256 * 1024
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
RESPONSE_ID = "resp_B4o9xyzNOPQRSTUVWXYZa"
ITEM_ID = "item_B4o9xyzbcdefghijklmno"

SESSION: dict[str, Any] = {
    "type": "realtime",
    "object": "realtime.session",
    "id": "sess_C9G5QPteg4UIbotdKLoYQ",
    "model": "gpt-realtime",
    "output_modalities": ["audio"],
    "instructions": "Your knowledge cutoff is 2023-10.",
    "tools": [],
    "tool_choice": "auto",
    "max_output_tokens": "inf",
    "tracing": None,
    "truncation": "auto",
    "prompt": None,
    "expires_at": 1756324625,
    "audio": {
        "input": {
            "format": {"type": "audio/pcm", "rate": SAMPLE_RATE},
            "transcription": None,
            "noise_reduction": None,
            "turn_detection": {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 200,
                "idle_timeout_ms": None,
                "create_response": True,
                "interrupt_response": True,
            },
        },
        "output": {
            "format": {"type": "audio/pcm", "rate": SAMPLE_RATE},
            "voice": "alloy",
            "speed": 1.0,
        },
    },
    "include": None,
}


# --------------------------------------------------------------------------- messages --


def _dump(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def session_created() -> bytes:
    return _dump({"type": "session.created", "event_id": "event_created", "session": SESSION})


def session_updated(n: int) -> bytes:
    return _dump({"type": "session.updated", "event_id": f"event_updated_{n}", "session": SESSION})


def audio_deltas(count: int, seed: int = 20240917) -> list[bytes]:
    """``count`` distinct ``response.output_audio.delta`` messages (20 ms of PCM16 each)."""
    rng = random.Random(seed)
    pcm = rng.randbytes(PCM_BYTES * count)
    head = (
        '{"type":"response.output_audio.delta","event_id":"event_%08d",'
        f'"response_id":"{RESPONSE_ID}","item_id":"{ITEM_ID}",'
        '"output_index":0,"content_index":0,"delta":"'
    )
    out = []
    for i in range(count):
        chunk = base64.b64encode(pcm[i * PCM_BYTES : (i + 1) * PCM_BYTES]).decode()
        out.append(((head % i) + chunk + '"}').encode())
    return out


def response_done() -> bytes:
    return _dump(
        {
            "type": "response.done",
            "event_id": "event_done",
            "response": {
                "object": "realtime.response",
                "id": RESPONSE_ID,
                "status": "completed",
                "status_details": None,
                "output": [],
                "conversation_id": "conv_1",
                "output_modalities": ["audio"],
                "usage": None,
                "metadata": None,
            },
        }
    )


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One unmasked, final server frame."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


def accept_token(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key.strip() + GUID).digest())


class Script:
    """Everything a connection is sent, built once."""

    def __init__(self, events: int) -> None:
        self.created = session_created()
        self.deltas = audio_deltas(events)
        self.done = response_done()
        created_frame = frame(self.created)
        delta_frames = [frame(d) for d in self.deltas]
        frames = [created_frame, *delta_frames, frame(self.done)]
        # frame-aligned chunks, so that replies (pong, close) can go between two chunks
        self.chunks: list[bytes] = []
        batch: list[bytes] = []
        size = 0
        for f in frames:
            batch.append(f)
            size += len(f)
            if size >= CHUNK_BYTES:
                self.chunks.append(b"".join(batch))
                batch, size = [], 0
        if batch:
            self.chunks.append(b"".join(batch))
        self.layout = {
            "events": events,
            "created_frame_bytes": len(created_frame),
            "first_delta_frame_bytes": len(delta_frames[0]) if delta_frames else 0,
            "delta_frame_bytes": sum(len(f) for f in delta_frames),
            "stream_bytes": sum(len(c) for c in self.chunks),
        }


# ------------------------------------------------------------------------ raw server --


class RawConnection(asyncio.Protocol):
    """Hand-made upgrade, then the pre-built chunks; answers what the client sends."""

    def __init__(self, script: Script, stats: dict[str, int]) -> None:
        self.script = script
        self.stats = stats
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.next_chunk = 0
        self.paused = False
        self.replies: list[bytes] = []
        self.closing = False  # our close frame is queued: close the socket after it
        self.updates = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=4 * CHUNK_BYTES, low=CHUNK_BYTES)
        self.stats["open"] += 1
        self.stats["max_open"] = max(self.stats["max_open"], self.stats["open"])

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats["open"] -= 1
        self.transport = None

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._pump()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 65536:
                    self._refuse(b"431 Request Header Fields Too Large")
                return
            head = bytes(self.buf[:end]).decode("latin-1")
            del self.buf[: end + 4]
            self._upgrade(head)
            if not self.upgraded:
                return
        self._frames()

    def _refuse(self, status: bytes) -> None:
        if self.transport is not None:
            self.transport.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")
            self.transport.close()

    def _upgrade(self, head: str) -> None:
        lines = head.split("\r\n")
        if not lines[0].startswith("GET "):
            self._refuse(b"405 Method Not Allowed")
            return
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        key = headers.get("sec-websocket-key")
        if not key or "websocket" not in headers.get("upgrade", "").lower():
            self._refuse(b"400 Bad Request")
            return
        if "permessage-deflate" in headers.get("sec-websocket-extensions", ""):
            self.stats["deflate_offered"] += 1  # offered, never accepted
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
            + accept_token(key.encode("latin-1"))
            + b"\r\n\r\n"
        )
        self.upgraded = True
        self.stats["upgraded"] += 1
        self._pump()

    def _pump(self) -> None:
        """Write chunks while the transport takes them, then the queued replies."""
        transport = self.transport
        if transport is None:
            return
        chunks = self.script.chunks
        while not self.paused and self.next_chunk < len(chunks) and not self.closing:
            transport.write(chunks[self.next_chunk])
            self.next_chunk += 1
        if self.next_chunk < len(chunks) and not self.closing:
            return  # resume_writing() calls again
        if self.replies:
            transport.write(b"".join(self.replies))
            self.replies.clear()
        if self.closing:
            transport.close()

    def _frames(self) -> None:
        buf = self.buf
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            length = b1 & 0x7F
            pos = 2
            if length == 126:
                if len(buf) < 4:
                    return
                length = int.from_bytes(buf[2:4], "big")
                pos = 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length = int.from_bytes(buf[2:10], "big")
                pos = 10
            masked = b1 & 0x80
            key = bytes(buf[pos : pos + 4]) if masked else b""
            pos += 4 if masked else 0
            if len(buf) < pos + length:
                return
            payload = bytes(buf[pos : pos + length])
            del buf[: pos + length]
            if masked and payload:
                full = (key * (length // 4 + 1))[:length]
                payload = (int.from_bytes(payload, "big") ^ int.from_bytes(full, "big")).to_bytes(
                    length, "big"
                )
            self._frame(b0 & 0x0F, payload)
            if self.closing:
                return

    def _frame(self, opcode: int, payload: bytes) -> None:
        if opcode == 0x1:
            try:
                kind = json.loads(payload).get("type")
            except (ValueError, AttributeError):
                kind = None
            if kind == "session.update":
                self.updates += 1
                self.replies.append(frame(session_updated(self.updates)))
        elif opcode == 0x9:
            self.replies.append(frame(payload, 0xA))
        elif opcode == 0x8:
            self.replies.append(frame(payload[:2], 0x8))
            self.closing = True
            self.next_chunk = len(self.script.chunks)  # stop streaming at a frame boundary
        self._pump()


async def serve_raw(script: Script, stats: dict[str, int]) -> asyncio.AbstractServer:
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: RawConnection(script, stats), "127.0.0.1", 0, backlog=4096
    )


# ----------------------------------------------------------------- websockets server --


async def serve_websockets(script: Script, stats: dict[str, int]) -> Any:
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosed

    async def handler(ws: Any) -> None:
        stats["open"] += 1
        stats["upgraded"] += 1
        stats["max_open"] = max(stats["max_open"], stats["open"])
        offered = ws.request.headers.get("Sec-WebSocket-Extensions", "") if ws.request else ""
        if "permessage-deflate" in offered:
            stats["deflate_offered"] += 1  # offered, never accepted (compression=None)
        try:
            await ws.send(script.created, text=True)
            for message in script.deltas:
                await ws.send(message, text=True)
            await ws.send(script.done, text=True)
            updates = 0
            async for message in ws:
                try:
                    kind = json.loads(message).get("type")
                except (ValueError, AttributeError):
                    kind = None
                if kind == "session.update":
                    updates += 1
                    await ws.send(session_updated(updates), text=True)
        except ConnectionClosed:
            pass
        finally:
            stats["open"] -= 1

    return await serve(
        handler,
        "127.0.0.1",
        0,
        compression=None,
        max_size=None,
        ping_interval=None,
        backlog=4096,
    )


# ------------------------------------------------------------------ the parent's side --


class ServerProcess:
    """What :func:`running_server` yields: the ready line, then (after exit) the stats."""

    def __init__(self, ready: dict[str, Any]) -> None:
        self.ready = ready
        self.port: int = ready["port"]
        self.url = f"ws://127.0.0.1:{self.port}/v1/realtime?model=gpt-realtime"
        self.stats: dict[str, int] = {}


@contextlib.contextmanager
def running_server(
    events: int, kind: str = "raw", *, ready_timeout: float = 60.0, max_seconds: float = 1800.0
) -> Iterator[ServerProcess]:
    """Start this module as a server process, wait for its ready line, stop it on exit.

    The process stops when its stdin closes; if it does not within 5 s it is terminated,
    then killed. It also stops by itself after ``max_seconds``.
    """
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--events",
        str(events),
        "--kind",
        kind,
        "--max-seconds",
        str(max_seconds),
    ]
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, close_fds=True
        )
        server: ServerProcess | None = None
        try:
            line: list[bytes] = []
            reader = threading.Thread(
                target=lambda: line.append(proc.stdout.readline()),  # type: ignore[union-attr]
                daemon=True,
            )
            reader.start()
            reader.join(ready_timeout)
            if not line or not line[0]:
                raise RuntimeError(f"the server did not start within {ready_timeout} s")
            server = ServerProcess(json.loads(line[0]))
            yield server
        finally:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # type: ignore[union-attr]
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(3)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            with contextlib.suppress(OSError):
                proc.stdout.close()  # type: ignore[union-attr]
            errors.seek(0)
            text = errors.read().decode(errors="replace")
            if server is not None:
                for row in text.splitlines():
                    if row.startswith('{"stats"'):
                        server.stats = json.loads(row)["stats"]
            if proc.returncode not in (0, -15) and text.strip():
                print(f"server stderr:\n{text[-4000:]}", file=sys.stderr)


# ------------------------------------------------------------------------------ main --


def raise_fd_limit(wanted: int = 8192) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def amain(args: argparse.Namespace) -> None:
    raise_fd_limit()
    script = Script(args.events)
    stats = {"open": 0, "max_open": 0, "upgraded": 0, "deflate_offered": 0}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def watch_stdin() -> None:  # the parent closes our stdin (or dies): stop
        with contextlib.suppress(Exception):
            while sys.stdin.buffer.read(65536):
                pass
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if args.kind == "raw":
        server = await serve_raw(script, stats)
    else:
        server = await serve_websockets(script, stats)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"ready": True, "port": port, "kind": args.kind, **script.layout}), flush=True)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), args.max_seconds)
    server.close()
    print(json.dumps({"stats": stats}), file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000, help="audio deltas per connection")
    parser.add_argument("--kind", choices=("raw", "websockets"), default="raw")
    parser.add_argument(
        "--max-seconds", type=float, default=1800.0, help="exit after this long, whatever happens"
    )
    args = parser.parse_args(argv)
    asyncio.run(amain(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
