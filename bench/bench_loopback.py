"""End-to-end loopback benchmark: received audio events per second over a real socket.

A local server in a separate process (``bench/_loopback_server.py``; by default a raw
asyncio server: hand-made HTTP upgrade, then one pre-built buffer of unmasked TEXT frames
written in frame-aligned 256 KiB chunks under flow control) sends, on every connection,
``session.created``, N ``response.output_audio.delta`` messages (20 ms of 24 kHz PCM16 each:
960 random bytes, base64; all built once at server start-up), then ``response.done``, and
keeps the connection open until the client closes it (it answers ``session.update`` with
``session.updated``, after what is queued, without ever waiting for it). Nobody
compresses: the server accepts no extension, and every client is told not to offer one.

Clients (each decodes every audio delta, as an application that plays the audio must):

* ``rtproto asyncio``: ``async with rtproto.adapters.connect(url, ...) as conn: async for
  event in conn``, counting ``rtproto.session.AudioChunk`` events and reading ``event.pcm``
  (base64 decode + int16 view), under ``asyncio.run``;
* ``rtproto trio``: the same coroutine under ``anyio.run(..., backend="trio")``;
* ``rtproto sync``: ``with rtproto.adapters.connect_sync(...) as conn: for event in
  conn.events(timeout=10)`` (reader thread + queue);
* ``websockets+orjson``: ``websockets.asyncio.client.connect(url, compression=None)``,
  ``async for message in ws``, ``orjson.loads`` + ``pybase64.b64decode(obj["delta"])``
  (the floor of a hand-written client);
* ``websockets+json``: the same with ``json.loads`` + ``base64.b64decode``;
* ``SDK``: the official ``openai`` SDK, ``AsyncOpenAI(api_key=..., base_url=...,
  websocket_base_url=...)``, ``async with client.realtime.connect(model=...,
  websocket_connection_options={"compression": None}) as conn: async for event in conn``,
  counting ``response.output_audio.delta`` events + ``base64.b64decode(event.delta)``;
* ``socket floor`` (reference, not a contender): a blocking socket doing the upgrade by hand
  and ``recv_into`` a reused buffer until the last delta frame's bytes have arrived, with no
  parsing at all: what the server plus the loopback interface can deliver. It shows that the
  server is not the ceiling.

Timing: each run is timed from the first audio delta the client receives to the N-th
(``perf_counter``); events/s = (N - 1) / that time. Connecting, the upgrade,
``session.created`` and closing are outside the window. Every contender runs once to warm
up, then ``--repeats`` (default 5) interleaved repeats in a freshly shuffled order each;
``gc.collect()`` before every run, GC left on during it (as in an application). Reported:
the median of the repeats. Each run is bounded (60 s; the blocking client 10 s per event)
and checked: N deltas, N x 960 bytes of audio, no extension negotiated.

Also recorded: the client process's CPU time over the same window (``process_time``, all
its threads), per event. On a machine shared with other work the wall-clock figures move
with CPU contention (the client and the server process compete for the same CPUs); CPU time
per event does not, so the ratios are also shown computed from it (for information).

Targets (on events/s): rtproto asyncio at least 6x the SDK's, and at least 0.8x the
websockets+orjson+pybase64 client's.

Run from the project root::

    .venv/bin/python bench/bench_loopback.py              # markdown tables
    .venv/bin/python bench/bench_loopback.py --quick      # smoke test, a few seconds
    .venv/bin/python bench/bench_loopback.py --json       # machine-readable results
    .venv/bin/python bench/bench_loopback.py --events 5000 --repeats 7
    .venv/bin/python bench/bench_loopback.py --server websockets   # websockets' own server
    .venv/bin/python bench/bench_loopback.py --profile rtproto-asyncio   # cProfile one run
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import gc
import json
import os
import platform
import pstats
import random
import socket
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import openai
import orjson
import pybase64
import rtproto.adapters
import websockets
from _loopback_server import PCM_BYTES, ServerProcess, running_server
from websockets.asyncio.client import connect as ws_connect

import rtproto
from rtproto.session import AudioChunk
from rtproto.wire import WebSocketOptions

SDK_TARGET = 6.0
FLOOR_TARGET = 0.8
RUN_LIMIT_S = 60.0
API_KEY = "sk-test"
MODEL = "gpt-realtime"
AUDIO_DELTA = "response.output_audio.delta"

CONTENDERS = (
    "rtproto-asyncio",
    "rtproto-trio",
    "rtproto-sync",
    "websockets+orjson",
    "websockets+json",
    "sdk",
    "socket-floor",
)
LABELS = {
    "rtproto-asyncio": "rtproto asyncio (`connect`, `event.pcm`)",
    "rtproto-trio": "rtproto Trio (`connect` under anyio/trio)",
    "rtproto-sync": "rtproto blocking (`connect_sync`, `events()`)",
    "websockets+orjson": "websockets + orjson + pybase64",
    "websockets+json": "websockets + json + base64",
    "sdk": "openai SDK realtime + base64",
    "socket-floor": "socket floor (recv only, no parsing; reference)",
}


@dataclass
class Run:
    """One client run: what it received, and the timing window."""

    count: int
    audio_bytes: int
    first: float
    last: float
    cpu: float  # the client process's CPU seconds over the same window (all its threads)
    extensions: str  # what was negotiated ("" = none)

    def rate(self) -> float:
        return (self.count - 1) / (self.last - self.first)

    def cpu_us(self) -> float:
        return self.cpu / (self.count - 1) * 1e6


class Counter:
    """Counts audio deltas and timestamps the first and the N-th."""

    __slots__ = ("audio_bytes", "count", "cpu_first", "cpu_last", "first", "last", "target")

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.audio_bytes = 0
        self.first = self.last = 0.0
        self.cpu_first = self.cpu_last = 0.0

    def add(self, nbytes: int) -> bool:
        """Record one decoded delta; True once the N-th arrived."""
        self.count += 1
        self.audio_bytes += nbytes
        if self.count == 1:
            self.first = time.perf_counter()
            self.cpu_first = time.process_time()
        if self.count == self.target:
            self.last = time.perf_counter()
            self.cpu_last = time.process_time()
            return True
        return False

    def run(self, extensions: str) -> Run:
        cpu = self.cpu_last - self.cpu_first
        return Run(self.count, self.audio_bytes, self.first, self.last, cpu, extensions)


# ------------------------------------------------------------------------------ clients --


def _rtproto_options() -> WebSocketOptions:
    # The URL and key given to connect() replace these; compression is off, ping left on.
    return WebSocketOptions(compression=False)


async def rtproto_async(url: str, n: int) -> Run:
    counter = Counter(n)
    with anyio.fail_after(RUN_LIMIT_S):
        async with rtproto.adapters.connect(
            url, model=MODEL, api_key=API_KEY, ws_options=_rtproto_options()
        ) as conn:
            ws = conn._core.ws  # (private: only to check that nothing was negotiated)
            extensions = "permessage-deflate" if ws is not None and ws._deflate else ""
            async for event in conn:
                if type(event) is AudioChunk and counter.add(event.pcm.nbytes):
                    break
    return counter.run(extensions)


def run_rtproto_asyncio(server: ServerProcess, n: int) -> Run:
    return asyncio.run(rtproto_async(server.url, n))


def run_rtproto_trio(server: ServerProcess, n: int) -> Run:
    return anyio.run(rtproto_async, server.url, n, backend="trio")


def run_rtproto_sync(server: ServerProcess, n: int) -> Run:
    counter = Counter(n)
    deadline = time.monotonic() + RUN_LIMIT_S
    with rtproto.adapters.connect_sync(
        server.url, model=MODEL, api_key=API_KEY, ws_options=_rtproto_options()
    ) as conn:
        ws = conn._core.ws
        extensions = "permessage-deflate" if ws is not None and ws._deflate else ""
        for event in conn.events(timeout=10):
            if type(event) is AudioChunk and counter.add(event.pcm.nbytes):
                break
            if counter.count % 1000 == 0 and time.monotonic() > deadline:
                raise TimeoutError(f"rtproto-sync: over {RUN_LIMIT_S} s")
    return counter.run(extensions)


async def websockets_client(url: str, n: int, loads: Callable[[Any], Any], b64: Any) -> Run:
    counter = Counter(n)
    async with ws_connect(
        url,
        compression=None,
        additional_headers={"Authorization": f"Bearer {API_KEY}"},
    ) as ws:
        extensions = ",".join(type(e).__name__ for e in ws.protocol.extensions)
        async for message in ws:
            obj = loads(message)
            if obj["type"] == AUDIO_DELTA and counter.add(len(b64(obj["delta"]))):
                break
    return counter.run(extensions)


def run_websockets_orjson(server: ServerProcess, n: int) -> Run:
    return asyncio.run(
        asyncio.wait_for(
            websockets_client(server.url, n, orjson.loads, pybase64.b64decode), RUN_LIMIT_S
        )
    )


def run_websockets_json(server: ServerProcess, n: int) -> Run:
    return asyncio.run(
        asyncio.wait_for(
            websockets_client(server.url, n, json.loads, base64.b64decode), RUN_LIMIT_S
        )
    )


async def sdk_client(port: int, n: int) -> Run:
    counter = Counter(n)
    client = openai.AsyncOpenAI(
        api_key=API_KEY,
        base_url=f"http://127.0.0.1:{port}/v1",
        websocket_base_url=f"ws://127.0.0.1:{port}/v1",
    )
    try:
        async with client.realtime.connect(
            model=MODEL, websocket_connection_options={"compression": None}
        ) as conn:
            protocol = conn._connection.protocol  # (private: only to check the extensions)
            extensions = ",".join(type(e).__name__ for e in protocol.extensions)
            async for event in conn:
                if event.type == AUDIO_DELTA and counter.add(len(base64.b64decode(event.delta))):
                    break
    finally:
        await client.close()
    return counter.run(extensions)


def run_sdk(server: ServerProcess, n: int) -> Run:
    return asyncio.run(asyncio.wait_for(sdk_client(server.port, n), RUN_LIMIT_S))


def run_socket_floor(server: ServerProcess, n: int) -> Run:
    """Bytes only: how fast the server and the loopback deliver the stream (no parsing)."""
    layout = server.ready
    first_end = layout["created_frame_bytes"] + layout["first_delta_frame_bytes"]
    last_end = layout["created_frame_bytes"] + layout["delta_frame_bytes"]
    if layout["events"] < n:
        raise ValueError("the server sends fewer events than asked")
    if layout["events"] != n:  # the layout gives the end of the last delta only
        raise ValueError("socket-floor needs --events equal to the server's")
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16))
        sock.sendall(
            b"GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\n"
            b"Host: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
            b"Authorization: Bearer sk-test\r\n\r\n" % (server.port, key)
        )
        head = bytearray()
        while b"\r\n\r\n" not in head:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("no upgrade response")
            head += data
        status, _, rest = bytes(head).partition(b"\r\n\r\n")
        if not status.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(status.split(b"\r\n", 1)[0].decode())
        extensions = "deflate" if b"sec-websocket-extensions" in status.lower() else ""
        got = len(rest)
        first = time.perf_counter() if got >= first_end else 0.0
        cpu_first = time.process_time()
        buf = memoryview(bytearray(1 << 20))
        recv_into = sock.recv_into
        while got < last_end:
            k = recv_into(buf)
            if not k:
                raise ConnectionError("the server closed early")
            got += k
            if not first and got >= first_end:
                first = time.perf_counter()
                cpu_first = time.process_time()
        last = time.perf_counter()
        cpu = time.process_time() - cpu_first
        sock.sendall(b"\x88\x82\x00\x00\x00\x00\x03\xe8")  # close 1000 (mask key 0)
        while recv_into(buf):  # the rest, the server's close frame, EOF
            pass
    finally:
        sock.close()
    return Run(n, n * PCM_BYTES, first, last, cpu, extensions)


RUNNERS: dict[str, Callable[[ServerProcess, int], Run]] = {
    "rtproto-asyncio": run_rtproto_asyncio,
    "rtproto-trio": run_rtproto_trio,
    "rtproto-sync": run_rtproto_sync,
    "websockets+orjson": run_websockets_orjson,
    "websockets+json": run_websockets_json,
    "sdk": run_sdk,
    "socket-floor": run_socket_floor,
}


def run_one(name: str, server: ServerProcess, n: int) -> Run:
    gc.collect()
    result = RUNNERS[name](server, n)
    if result.count != n or result.audio_bytes != n * PCM_BYTES:
        raise AssertionError(
            f"{name}: {result.count} deltas / {result.audio_bytes} bytes, expected"
            f" {n} / {n * PCM_BYTES}"
        )
    if result.extensions:
        raise AssertionError(f"{name}: negotiated {result.extensions}: nobody may compress")
    return result


# ---------------------------------------------------------------------------- the runs --


def measure(
    server: ServerProcess, n: int, repeats: int, names: list[str], progress: bool
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Events/s and client CPU µs/event per contender, one entry per repeat."""
    for name in names:  # warm-up: imports, lazy model building, caches
        run_one(name, server, n)
    rates: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    rng = random.Random(20240917)
    order = list(names)
    for r in range(repeats):
        rng.shuffle(order)
        for name in order:
            run = run_one(name, server, n)
            rates[name].append(run.rate())
            cpu[name].append(run.cpu_us())
        if progress:
            print(f"  repeat {r + 1}/{repeats} done", file=sys.stderr)
    return rates, cpu


def profile(server: ServerProcess, name: str, n: int, top: int = 30) -> None:
    run_one(name, server, n)  # warm up outside the profile
    profiler = cProfile.Profile()
    profiler.enable()
    run_one(name, server, n)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def summarise(rates: dict[str, list[float]], cpu: dict[str, list[float]]) -> dict[str, Any]:
    med = {name: statistics.median(vals) for name, vals in rates.items()}
    ours = med["rtproto-asyncio"]
    ratios = [
        {
            "key": "rtproto_asyncio_over_sdk",
            "label": "rtproto asyncio / SDK",
            "value": ours / med["sdk"],
            "target": SDK_TARGET,
        },
        {
            "key": "rtproto_asyncio_over_websockets_orjson",
            "label": "rtproto asyncio / websockets+orjson+pybase64",
            "value": ours / med["websockets+orjson"],
            "target": FLOOR_TARGET,
        },
    ]
    cpu_med = {name: statistics.median(vals) for name, vals in cpu.items()}
    for ratio, other in zip(ratios, ("sdk", "websockets+orjson"), strict=True):
        ratio["pass"] = ratio["value"] >= ratio["target"]
        # the same ratio from client CPU time per event: insensitive to CPU contention
        ratio["cpu_value"] = cpu_med[other] / cpu_med["rtproto-asyncio"]
    return {
        "median_events_per_s": med,
        "samples_events_per_s": rates,
        "median_cpu_us_per_event": {name: statistics.median(v) for name, v in cpu.items()},
        "samples_cpu_us_per_event": cpu,
        "ratios": ratios,
        "all_pass": all(r["pass"] for r in ratios),
    }


def markdown(summary: dict[str, Any]) -> str:
    med = summary["median_events_per_s"]
    samples = summary["samples_events_per_s"]
    ours = med["rtproto-asyncio"]
    lines = [
        "| client | events/s (median) | min - max | wall µs/event | client CPU µs/event |"
        " vs rtproto asyncio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    cpu = summary["median_cpu_us_per_event"]
    for name in CONTENDERS:
        if name not in med:
            continue
        vals = samples[name]
        lines.append(
            f"| {LABELS[name]} | {med[name]:,.0f} | {min(vals):,.0f} - {max(vals):,.0f} |"
            f" {1e6 / med[name]:.2f} | {cpu[name]:.2f} | {med[name] / ours:.2f}x |"
        )
    lines += [
        "",
        "| ratio | events/s ratio | target | result | same ratio by client CPU (info) |",
        "|---|---:|---:|---|---:|",
    ]
    for ratio in summary["ratios"]:
        lines.append(
            f"| {ratio['label']} | {ratio['value']:.2f}x | ≥ {ratio['target']:g}x |"
            f" {'PASS' if ratio['pass'] else 'FAIL'} | {ratio['cpu_value']:.2f}x |"
        )
    return "\n".join(lines)


def environment() -> dict[str, str]:
    from importlib.metadata import version

    import trio

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
        "rtproto": rtproto.__version__,
        "openai": openai.__version__,
        "websockets": websockets.__version__,
        "anyio": version("anyio"),
        "trio": trio.__version__,
        "orjson": orjson.__version__,
        "pybase64": pybase64.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=None, help="audio deltas per run (20000)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats (5)")
    parser.add_argument("--quick", action="store_true", help="2000 events, 3 repeats")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON only")
    parser.add_argument(
        "--server", choices=("raw", "websockets"), default="raw", help="server implementation"
    )
    parser.add_argument(
        "--only", default=None, help="comma-separated clients to run (default: all)"
    )
    parser.add_argument(
        "--profile", choices=CONTENDERS, default=None, help="cProfile one run of this client"
    )
    args = parser.parse_args(argv)
    n = args.events or (2000 if args.quick else 20_000)
    repeats = args.repeats or (3 if args.quick else 5)
    if n < 2 or repeats < 1:
        parser.error("--events must be at least 2 and --repeats at least 1")
    names = list(CONTENDERS)
    if args.only:
        names = [name.strip() for name in args.only.split(",")]
        unknown = set(names) - set(CONTENDERS)
        if unknown:
            parser.error(f"unknown clients: {', '.join(sorted(unknown))}")
        for needed in ("rtproto-asyncio", "sdk", "websockets+orjson"):
            if needed not in names:
                names.append(needed)  # the ratios need them

    started = time.perf_counter()
    with running_server(n, args.server) as server:
        if args.profile:
            profile(server, args.profile, n)
            return 0
        rates, cpu = measure(server, n, repeats, names, progress=not args.json)
    summary = summarise(rates, cpu)
    meta = {
        "events": n,
        "repeats": repeats,
        "server": args.server,
        "server_stats": server.stats,
        "seconds": round(time.perf_counter() - started, 1),
        "load_average": os.getloadavg(),
    }
    result = {"meta": meta, "environment": environment(), **summary}
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    env = result["environment"]
    print(
        f"rtproto loopback benchmark: {n:,} `{AUDIO_DELTA}` (20 ms PCM16) per run, "
        f"median of {repeats} interleaved repeats, {args.server} server in its own process"
    )
    print(", ".join(f"{k} {v}" for k, v in env.items()))
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average at the end: {load} ({os.cpu_count()} CPUs, shared with the server)")
    if repeats < 5:
        print("note: fewer than 5 repeats; medians are not reliable")
    print()
    print(markdown(summary))
    print()
    stats = server.stats
    if stats:
        print(
            f"server: {stats.get('upgraded', '?')} connections upgraded, "
            f"{stats.get('deflate_offered', '?')} offered permessage-deflate (none accepted)"
        )
    print(f"overall: {'PASS' if summary['all_pass'] else 'FAIL'} ({meta['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
