"""The loopback floor for ``bench_emulator.py``: a bare ``websockets`` replay of a recorded turn.

Run as a separate process by ``bench_emulator.py`` (never by hand in normal use)::

    python bench/_emulator_reference.py --recording turn.json [--cpu 0]

The recording (made by ``bench_emulator.py`` against the emulator, once per run) holds the
emulator's exact text frames for one audio turn: ``created`` (the ``session.created`` it
sends unprompted) and ``replies``, a list of ``[kind, ordinal, [messages...]]``: what the
emulator sent after the ``ordinal``-th client message of type ``kind`` (``session.update`` 1:
``session.updated``; ``input_audio_buffer.append`` 2: ``speech_started``; the append that
ended the speech: the committed item, the whole response and the input transcription).

Every connection gets the same replay: ``session.created`` at once, then for each client
message its type (an anchored regex on the head of the text, ``json.loads`` only if that
fails), a per-type counter, and the recorded replies for that (type, count), each sent with
``await ws.send(text)``. No JSON is built, no audio decoded: the server does the WebSocket
work the emulator must do (upgrade, unmasking, UTF-8 checks, framing) and nothing else.

``websockets`` asyncio server, ``compression=None`` (the emulator negotiates no extension
either), no keepalive pings, listen backlog 1024. The process pins itself to ``--cpu``,
raises ``RLIMIT_NOFILE`` (within the hard limit), prints one JSON ready line to stdout
(``{"ready": true, "port": ..., "pid": ...}``) and serves until its stdin reaches EOF, it gets
SIGTERM/SIGINT, or ``--max-seconds`` pass.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import signal
import sys
import threading
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

_KIND = re.compile(r'\{\s*"type"\s*:\s*"([^"]+)"')


def message_kind(text: str | bytes) -> str:
    """The ``type`` of a client event (the head of the text; a full parse if needed)."""
    if isinstance(text, bytes):
        text = text.decode()
    match = _KIND.match(text)
    if match is not None:
        return match.group(1)
    try:
        value = json.loads(text)
    except ValueError:
        return "?"
    return str(value.get("type", "?")) if isinstance(value, dict) else "?"


def pin_to_cpu(cpu: int | None) -> None:
    """Run this process (and its threads) on one CPU only."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


def raise_fd_limit(wanted: int = 8192) -> None:
    """Raise the soft RLIMIT_NOFILE to ``wanted`` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def load_recording(path: str) -> tuple[str, dict[tuple[str, int], tuple[str, ...]]]:
    with open(path, encoding="utf-8") as file:
        data: dict[str, Any] = json.load(file)
    table = {(kind, int(n)): tuple(messages) for kind, n, messages in data["replies"]}
    return data["created"], table


async def amain(args: argparse.Namespace) -> None:
    created, table = load_recording(args.recording)
    kind_of = message_kind
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def handler(ws: ServerConnection) -> None:
        counts: dict[str, int] = {}
        try:
            await ws.send(created)
            async for message in ws:
                kind = kind_of(message)
                n = counts[kind] = counts.get(kind, 0) + 1
                for reply in table.get((kind, n), ()):
                    await ws.send(reply)
        except ConnectionClosed:
            pass

    def watch_stdin() -> None:  # the parent closed our stdin (or died): stop
        with contextlib.suppress(Exception):
            while sys.stdin.buffer.read(65536):
                pass
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with serve(
        handler,
        "127.0.0.1",
        0,
        compression=None,
        ping_interval=None,
        max_size=32 * 1024 * 1024,
        backlog=1024,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(json.dumps({"ready": True, "port": port, "pid": os.getpid()}), flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), args.max_seconds)
        server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--recording", required=True, help="the JSON recording of one turn")
    parser.add_argument("--cpu", type=int, default=None, help="pin the process to this CPU")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="stop after this long")
    args = parser.parse_args(argv)
    pin_to_cpu(args.cpu)
    raise_fd_limit()
    asyncio.run(amain(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
