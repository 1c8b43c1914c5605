"""Emulator under load: concurrent audio turns against ``rtproto serve --pace fast`` on one core.

What is measured, for 1, 10, 100 and 500 concurrent sessions (``--quick``: 1, 10, 50):

* **server events per second**: every server event the clients receive during the turn phase
  (from the moment all sessions start their turn to the last event of the last turn),
  divided by that time;
* **events per server CPU-second**: the same events over the CPU time the server process
  used for them (its scheduler runtime, ``/proc/<pid>/task/*/schedstat``, from the start of
  the turn phase until it has used under 10 % of a CPU for 50 ms, so the appends it reads
  after the one that ended a turn count too): what the server would sustain on a core of
  its own with an infinitely fast client;
* **turn latency** (median and p99 over the sessions of a run): from the moment a session's
  last ``input_audio_buffer.append`` was written to its ``TurnDone`` (VAD ends the turn 200 ms
  into the silence, so a server that keeps up has answered before the last append is out,
  and this is near zero: it measures how far the server lags behind);
* **memory per session**: the server process's RSS (``VmRSS`` in ``/proc/<pid>/status``) with
  N idle connected sessions (N = 500; ``--quick``: 50) minus its RSS with none, over N.

The load: each session connects with rtproto's asyncio driver
(``rtproto.adapters.connect(url, model="gpt-realtime", api_key="sk-test", session=...)``, at
most 64 handshakes in flight) with server VAD on (``{"audio": {"input": {"turn_detection":
{"type": "server_vad", "silence_duration_ms": 200}}}}``) and waits for ``session.updated``.
Once every session is ready they all start at once: 1 s of a 300 Hz tone (amplitude 8000) and
0.5 s of silence, PCM16 24 kHz, as 75 appends of 20 ms sent as fast as ``send_audio``
returns (not in real time), then every event is read until ``TurnDone`` and the rest of the
turn (the input transcription follows the response). A server event is any event the driver
yields that is not one of rtproto's derived transport events (``AudioChunk``, ``TurnDone``...).
Connections stay open until the measurement is over, then all close.

Processes: the server runs in its own process pinned to one core
(``os.sched_setaffinity(0, {cpu})``, ``--server-cpu``, default the first CPU this process may
use), the client load in another pinned to another core (``--client-cpu``, default the second;
a fresh process per run); ``RLIMIT_NOFILE`` is raised within the hard limit in both. The
emulator is ``rtproto serve --host 127.0.0.1 --port 0 --pace fast`` itself (the CLI's
``main``, called in the pinned child, logging its usual one line per session and turn to a
temporary file); its URL is read from the first line it prints on stderr. Before anything
else, two busy processes pinned to the two CPUs check that the CPUs are independent (on a
virtual machine whose vCPUs share one host core they are not: then server and client take
CPU time from each other, events/s measures both, and only the server-CPU figures isolate
the server; the run says so).

The reference: no peer emulator exists, so the floor is the loopback itself. Before the load,
one turn is recorded from the emulator with a raw ``websockets`` client sending the exact
messages rtproto's client sends (built by the same sans-I/O ``ClientSession``), one at a time,
each followed by a PING whose PONG marks the end of what that message caused (plus a short
quiet wait for timer-driven output such as the transcription). ``bench/_emulator_reference.py``
then serves every connection that recording with a bare ``websockets`` server (own process,
same core): ``session.created`` at once, and after the n-th client message of a type the
frames the emulator sent after it. The same rtproto client load runs against both servers in
the same run.

Target: at 100 sessions (``--quick``: 50) the emulator sustains >= 50 % of the reference's
events/s. Both ratios are checked, events/s and events per server CPU-second (when the client
is the bottleneck, as rtproto's client on one core is, events/s is about the same for any
server that keeps up, and only the second ratio says how much of a core the emulator needs);
the exit status is 0 only if both pass.

Method: both servers start once and stay up (memory is measured first, after a warm-up
turn); a warm-up round of each count up to 100, then ``--repeats`` (default 3; ``--quick``:
1) repeats, each running every session count against both servers in a freshly shuffled
order. Before every run the script waits until the server process has used under 1 ms of
CPU in 100 ms. Reported: the median over the repeats of each run's figure, with the server's
CPU time and the client's, each over the turn phase's duration (a client near 100 % is the
bottleneck; the server's can pass 100 %: it includes the appends read after the last event).
Every run is checked: every session got ``TurnDone`` and exactly the recording's number of
events. A default run takes about a minute.

Profiling (``--profile cprofile|py-spy``): after the tables, a fresh emulator serves
``--profile-runs`` loads of 100 sessions (``--quick``: 50). cProfile is switched on and off in
the server by SIGUSR1/SIGUSR2, which the client sends as the turns start and once they are
over, so it covers the turn phases only; ``py-spy record --gil --function`` (500 Hz, pinned
to the client's CPU; blocking, so every stack is whole) is attached for the whole runs,
connects and closes included. The top functions by own and inclusive time are printed;
py-spy's samples are also split by layer (VAD, wsproto parsing, the driver...) and by file.

Run from the project root::

    .venv/bin/python bench/bench_emulator.py              # markdown tables
    .venv/bin/python bench/bench_emulator.py --quick      # smoke test, about 20 s
    .venv/bin/python bench/bench_emulator.py --json       # machine-readable results
    .venv/bin/python bench/bench_emulator.py --profile py-spy   # where the server's time goes
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import pstats
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _emulator_reference as reference
import numpy as np

import rtproto

SESSION_CONFIG: dict[str, Any] = {
    "audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 200}}}
}
MODEL = "gpt-realtime"
API_KEY = "sk-test"
RATE = 24_000
CHUNK_MS = 20
COUNTS = (1, 10, 100, 500)
QUICK_COUNTS = (1, 10, 50)
TARGET_RATIO = 0.5
TARGET_SESSIONS = 100
CONNECT_LIMIT = 64
SERVERS = ("emulator", "reference")
APPEND = "input_audio_buffer.append"
HERE = Path(__file__).resolve()
_READY = re.compile(r"listening on (ws://\S+)")


def turn_audio() -> list[bytes]:
    """1 s of a 300 Hz tone at amplitude 8000, then 0.5 s of silence, in 20 ms chunks."""
    t = np.arange(RATE) / RATE
    tone = np.round(8000 * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes()
    pcm = tone + bytes(RATE)  # 0.5 s of silence: 12000 samples, 24000 bytes
    step = RATE * 2 * CHUNK_MS // 1000
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


# ------------------------------------------------------------------------- /proc probes --


def cpu_seconds(pid: int) -> float:
    """CPU time a process has run so far: the scheduler's own count (``sum_exec_runtime``,
    nanoseconds, first field of ``/proc/<pid>/task/*/schedstat``), the clock behind
    ``time.process_time()``. (The tick counts of ``/proc/<pid>/stat`` overstate it on a
    virtual machine whose host preempts its vCPUs.)"""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/schedstat") as file:
            total += int(file.read().split()[0])
    return total / 1e9


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (``VmRSS`` in ``/proc/<pid>/status``)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as file:
        for line in file:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def wait_idle(pid: int, quiet: float = 0.1, limit: float = 10.0, busy: float = 0.01) -> None:
    """Wait until the process used under ``busy`` of a CPU for ``quiet`` seconds (at most
    ``limit``)."""
    deadline = time.monotonic() + limit
    last = cpu_seconds(pid)
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.025)
        now = time.monotonic()
        if cpu_seconds(pid) - last > busy * quiet:
            last, still_since = cpu_seconds(pid), now
        elif now - still_since >= quiet:
            return


_SPIN = """
import os, sys, time
os.sched_setaffinity(0, {int(sys.argv[1])})
end = time.perf_counter() + float(sys.argv[2])
n = 0
while time.perf_counter() < end:
    n += 1
print(n)
"""


def core_independence(cpus: tuple[int, int], seconds: float = 0.5) -> float:
    """Work two busy processes pinned to the two CPUs get done together, over twice what one
    alone gets done: about 1.0 for two real cores, 0.5 when the vCPUs share one."""

    def spin(*which: int) -> list[int]:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _SPIN, str(cpu), str(seconds)], stdout=subprocess.PIPE
            )
            for cpu in which
        ]
        return [int(p.communicate(timeout=30)[0]) for p in procs]

    alone = spin(cpus[0])[0]
    both = spin(*cpus)
    return sum(both) / (2 * alone)


# -------------------------------------------------------------------- child processes --


def child_emulator(args: argparse.Namespace) -> int:
    """The emulator process: pinned, then ``rtproto serve`` itself.

    Stops (SIGTERM to itself: the CLI's clean shutdown) when stdin reaches EOF or after
    ``--max-seconds``. SIGUSR1/SIGUSR2 switch cProfile on/off when ``--cprofile FILE`` is
    given (the stats are written at SIGUSR2).
    """
    reference.pin_to_cpu(args.cpu)
    reference.raise_fd_limit()

    def stop_later() -> None:
        with contextlib.suppress(Exception):
            while sys.stdin.buffer.read(65536):
                pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_later, daemon=True).start()
    timer = threading.Timer(args.max_seconds, os.kill, (os.getpid(), signal.SIGTERM))
    timer.daemon = True
    timer.start()
    if args.cprofile:
        import cProfile

        profiler = cProfile.Profile()
        signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())

        def dump(*_: Any) -> None:  # cumulative over every on/off window so far
            profiler.disable()
            profiler.dump_stats(args.cprofile)

        signal.signal(signal.SIGUSR2, dump)
    from rtproto.cli.main import main as cli_main

    return cli_main(["serve", "--host", "127.0.0.1", "--port", "0", "--pace", "fast"])


async def _client_load(args: argparse.Namespace) -> dict[str, Any]:
    from rtproto.adapters import connect

    from rtproto.events import SessionUpdated
    from rtproto.session import TransportEvent, TurnDone

    n: int = args.sessions
    chunks = turn_audio()
    expect: int = args.expect
    idle = args.mode == "idle"
    limit = asyncio.Semaphore(CONNECT_LIMIT)
    all_ready, go, all_done = asyncio.Event(), asyncio.Event(), asyncio.Event()
    release = asyncio.Event()  # set once the measurement is over: then every session closes
    tally = {"ready": 0, "done": 0}
    results: list[dict[str, Any]] = []
    kinds: Counter[str] = Counter()
    perf = time.perf_counter

    def mark(result: dict[str, Any], step: str, event: asyncio.Event) -> None:
        if not result.get(step):
            result[step] = True
            tally[step] += 1
            if tally[step] == n:
                event.set()

    async def session() -> None:
        result: dict[str, Any] = {"setup_events": 0, "turn_events": 0}
        results.append(result)
        await limit.acquire()
        held = True
        try:
            async with connect(
                args.url, model=MODEL, api_key=API_KEY, session=SESSION_CONFIG
            ) as conn:
                limit.release()
                held = False
                async for event in conn:
                    if not isinstance(event, TransportEvent):
                        result["setup_events"] += 1
                    if isinstance(event, SessionUpdated):
                        break
                mark(result, "ready", all_ready)
                await go.wait()
                if not idle:
                    for chunk in chunks:
                        await conn.send_audio(chunk)
                    last_append = perf()
                    turn_done = None
                    count = 0
                    while turn_done is None or count < expect:
                        event = await conn.next_event()
                        if event is None:
                            raise RuntimeError(f"connection ended after {count} events")
                        if isinstance(event, TurnDone):
                            turn_done = perf()
                        elif not isinstance(event, TransportEvent):
                            count += 1
                            kinds[type(event).__name__] += 1
                    result.update(
                        turn_events=count,
                        last_append=last_append,
                        latency=turn_done - last_append,
                        last_event=perf(),
                    )
                result["ok"] = True
                mark(result, "done", all_done)
                await release.wait()
        except Exception as exc:
            result["close_error" if result.get("ok") else "error"] = repr(exc)[:300]
        finally:
            if held:
                limit.release()
            mark(result, "ready", all_ready)
            mark(result, "done", all_done)

    async def conduct() -> dict[str, Any]:
        started = perf()
        tasks = [asyncio.ensure_future(session()) for _ in range(n)]
        await all_ready.wait()
        out: dict[str, Any] = {"sessions": n, "connect_s": perf() - started}
        await asyncio.sleep(0.1)  # let the server finish the handshakes' aftermath
        if idle:
            print(json.dumps({"ready": True}), flush=True)
            line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            out["released"] = bool(line)
            go.set()
            await all_done.wait()
        else:
            if args.profile_window:  # cProfile on in the server for the turn phase only
                os.kill(args.server_pid, signal.SIGUSR1)
            server_cpu, client_cpu = cpu_seconds(args.server_pid), time.process_time()
            t_go = perf()
            go.set()
            await all_done.wait()
            client_cpu = time.process_time() - client_cpu
            # the server may still be reading appends that came after the one that ended a
            # turn: its CPU counts until it has been still (under 10 %) for 50 ms, or 2 s
            settled, still = cpu_seconds(args.server_pid), perf()
            give_up = still + 2.0
            while perf() - still < 0.05 and perf() < give_up:
                await asyncio.sleep(0.01)
                now = cpu_seconds(args.server_pid)
                if now - settled > 0.001:
                    settled, still = now, perf()
            if args.profile_window:
                os.kill(args.server_pid, signal.SIGUSR2)
            t_end = max((r.get("last_event", t_go) for r in results), default=t_go)
            window = max(t_end - t_go, 1e-9)

            def spread(key: str) -> list[float]:
                values = sorted(r[key] - t_go for r in results if key in r)
                if not values:
                    return []
                return [values[round(q * (len(values) - 1))] for q in (0, 0.5, 0.9, 0.99, 1)]

            out.update(
                appends_done_s=spread("last_append"),
                turns_done_s=spread("last_event"),
                window_s=window,
                server_cpu_s=settled - server_cpu,
                client_cpu_s=client_cpu,
            )
        release.set()
        await asyncio.gather(*tasks)
        ok = [r for r in results if r.get("ok") and "error" not in r]
        out.update(
            ok=len(ok),
            errors=[r["error"] for r in results if "error" in r][:5],
            close_errors=[r["close_error"] for r in results if "close_error" in r][:5],
            setup_events=sum(r["setup_events"] for r in results),
            turn_events=sum(r["turn_events"] for r in results),
            latencies=[r["latency"] for r in ok if "latency" in r],
            kinds=dict(kinds),
        )
        return out

    return await asyncio.wait_for(conduct(), args.timeout)


def child_client(args: argparse.Namespace) -> int:
    """The load process: pinned, one asyncio loop, all sessions; one JSON line at the end."""
    reference.pin_to_cpu(args.cpu)
    reference.raise_fd_limit(max(8192, 2 * args.sessions + 256))
    result = asyncio.run(_client_load(args))
    print(json.dumps(result), flush=True)
    return 0


# ----------------------------------------------------------------- the parent's side --


class ServerProcess:
    """A running server child: ``url`` (with ``?model=``), ``pid``, ``name``."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], url: str, log: IO[bytes]):
        self.name = name
        self.proc = proc
        self.pid = proc.pid
        self.url = url
        self.log = log

    def log_tail(self, size: int = 3000) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-size:]


def _stop(proc: subprocess.Popen[bytes], gentle: bool = True) -> None:
    if proc.poll() is None and gentle:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    with contextlib.suppress(OSError):
        if proc.stdin is not None:
            proc.stdin.close()
    with contextlib.suppress(OSError):
        if proc.stdout is not None:
            proc.stdout.close()


def _read_line(stream: IO[bytes], timeout: float) -> bytes:
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return line[0] if line else b""


@contextlib.contextmanager
def emulator_process(cpu: int, *, cprofile: str | None = None) -> Iterator[ServerProcess]:
    """``rtproto serve --port 0 --pace fast`` in a pinned child; stopped (SIGTERM) on exit."""
    cmd = [sys.executable, str(HERE), "--child", "emulator", "--cpu", str(cpu)]
    if cprofile:
        cmd += ["--cprofile", cprofile]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 30
            url = None
            while url is None:
                log.seek(0)
                match = _READY.search(log.read().decode(errors="replace"))
                if match:
                    url = match.group(1)
                elif proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"the emulator did not start: {log.read()[-2000:]!r}")
                else:
                    time.sleep(0.02)
            yield ServerProcess("emulator", proc, url, log)
        finally:
            _stop(proc)


@contextlib.contextmanager
def reference_process(recording: str, cpu: int) -> Iterator[ServerProcess]:
    """``_emulator_reference.py`` in a pinned child; stopped (stdin EOF) on exit."""
    ref_script = HERE.parent / "_emulator_reference.py"
    cmd = [sys.executable, str(ref_script), "--recording", recording, "--cpu", str(cpu)]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        try:
            assert proc.stdout is not None
            line = _read_line(proc.stdout, 30)
            if not line:
                log.seek(0)
                raise RuntimeError(f"the reference did not start: {log.read()[-2000:]!r}")
            port = json.loads(line)["port"]
            url = f"ws://127.0.0.1:{port}/v1/realtime?model={MODEL}"
            yield ServerProcess("reference", proc, url, log)
        finally:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # type: ignore[union-attr]
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                _stop(proc)
            _stop(proc, gentle=False)


def _client_cmd(
    server: ServerProcess, n: int, mode: str, expect: int, opts: Any, window: bool = False
) -> list[str]:
    return [
        sys.executable,
        str(HERE),
        *(["--profile-window"] if window else []),
        "--child",
        "client",
        "--url",
        server.url,
        "--sessions",
        str(n),
        "--mode",
        mode,
        "--expect",
        str(expect),
        "--server-pid",
        str(server.pid),
        "--cpu",
        str(opts.client_cpu),
        "--timeout",
        str(opts.timeout),
    ]


def run_load(
    server: ServerProcess, n: int, expect: int, opts: Any, profile_window: bool = False
) -> dict[str, Any]:
    """One client process doing ``n`` concurrent turns against ``server``; checked.

    ``profile_window``: the client sends the server SIGUSR1 as the turns start and SIGUSR2
    once they are over (cProfile on and off in a ``--cprofile`` emulator)."""
    wait_idle(server.pid, busy=getattr(opts, "idle_cpu", 0.01))
    cmd = _client_cmd(server, n, "turn", expect, opts, profile_window)
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=opts.timeout + 20, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{server.name}, {n} sessions: the client hung") from None
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"{server.name}, {n} sessions: client failed ({done.returncode}): "
            f"{done.stderr.decode(errors='replace')[-3000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    if result["ok"] != n or result["turn_events"] != n * expect:
        raise RuntimeError(
            f"{server.name}, {n} sessions: {result['ok']}/{n} turns ok, "
            f"{result['turn_events']} events (expected {n * expect}): {result['errors']}\n"
            f"server log: {server.log_tail()}"
        )
    lat = sorted(result["latencies"])
    return {
        "events_per_s": result["turn_events"] / result["window_s"],
        "window_s": result["window_s"],
        "latency_median_ms": statistics.median(lat) * 1e3,
        "latency_p99_ms": lat[max(0, math.ceil(0.99 * len(lat)) - 1)] * 1e3,
        "server_cpu": result["server_cpu_s"] / result["window_s"],
        "client_cpu": result["client_cpu_s"] / result["window_s"],
        "server_us_per_event": result["server_cpu_s"] / result["turn_events"] * 1e6,
        "events_per_server_cpu_s": result["turn_events"] / max(result["server_cpu_s"], 1e-9),
        "connect_s": result["connect_s"],
    }


def measure_memory(server: ServerProcess, n: int, opts: Any) -> dict[str, Any]:
    """Server RSS with ``n`` idle connected sessions minus with none, per session."""
    wait_idle(server.pid)
    before = rss_bytes(server.pid)
    cmd = _client_cmd(server, n, "idle", 0, opts)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = _read_line(proc.stdout, opts.timeout)
        if not line or not json.loads(line).get("ready"):
            raise RuntimeError(f"{server.name}: {n} idle sessions did not connect")
        wait_idle(server.pid)
        during = rss_bytes(server.pid)
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        out = _read_line(proc.stdout, opts.timeout)
        proc.wait(opts.timeout)
        result = json.loads(out) if out else {}
        if result.get("ok") != n:
            raise RuntimeError(f"{server.name}: idle sessions failed: {result.get('errors')}")
    finally:
        _stop(proc, gentle=False)
    return {
        "sessions": n,
        "rss_idle_mib": before / 2**20,
        "rss_loaded_mib": during / 2**20,
        "kib_per_session": (during - before) / n / 1024,
    }


def record_turn(url: str) -> dict[str, Any]:
    """The emulator's exact frames for one turn, keyed by the client message that caused them."""
    from websockets.sync.client import connect as ws_connect

    from rtproto.session import ClientSession, SessionOptions

    session = ClientSession(SessionOptions(model=MODEL, session=SESSION_CONFIG))
    session.connection_made(0.0)
    sent = list(session.messages_to_send())
    for chunk in turn_audio():
        session.send_audio(chunk)
        sent += session.messages_to_send()
    replies: list[list[Any]] = []
    counts: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with ws_connect(
        url, additional_headers=headers, compression=None, open_timeout=10, max_size=None
    ) as ws:
        created = ws.recv(timeout=10)
        assert json.loads(created)["type"] == "session.created", created[:200]
        for index, text in enumerate(sent):
            kind = reference.message_kind(text)
            counts[kind] += 1
            ws.send(text)
            pong = ws.ping()
            got = []
            deadline = time.monotonic() + 10
            while not pong.is_set():  # what arrives before the PONG: what the message caused
                if time.monotonic() > deadline:
                    raise RuntimeError("the emulator did not answer a ping while recording")
                with contextlib.suppress(TimeoutError):
                    got.append(ws.recv(timeout=0.005))
            quiet = 0.5 if index == len(sent) - 1 else 0.03  # timer-driven output too
            while True:
                try:
                    got.append(ws.recv(timeout=quiet))
                except TimeoutError:
                    break
            if got:
                replies.append([kind, counts[kind], got])
    turn = [json.loads(m)["type"] for _, _, ms in replies for m in ms]
    if "response.done" not in turn:
        raise RuntimeError(f"the recorded turn has no response.done: {turn}")
    setup = sum(len(ms) for kind, _, ms in replies if kind != APPEND)
    return {
        "created": created,
        "replies": replies,
        "client_messages": len(sent),
        "turn_events": sum(len(ms) for kind, _, ms in replies if kind == APPEND),
        "setup_events": 1 + setup,
        "types": Counter(turn),
        "bytes": len(created) + sum(len(m) for _, _, ms in replies for m in ms),
    }


# ------------------------------------------------------------------------- profiling --


#: Where a py-spy sample's time goes: the first layer (in this order) one of whose markers is
#: in the sample's stack; samples matching none are the driver's (anyio, asyncio, sockets).
_LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("VAD: EnergyVad.process, numpy per 20 ms chunk", ("EnergyVad.",)),
    (
        "turn: commit, response and transcription events built and serialized",
        (
            "ServerSession._speech_stopped",
            "ServerSession._start_response",
            "ServerSession._transcribe",
            "ServerSession.handle_timer",
        ),
    ),
    ("append: base64 decode", ("decode_base64 (",)),
    (
        "append: buffer and turn-detection bookkeeping",
        ("ServerSession._add_audio", "ServerSession._on_append"),
    ),
    ("frames out: wsproto framing of server messages", ("Connection.send (wsproto",)),
    (
        "client event: JSON decode, validation, dispatch",
        ("ServerSession.receive", "(rtproto/server/validate"),
    ),
    ("frames in: wsproto parsing and unmasking", ("(wsproto/",)),
    (
        "upgrade: HTTP handshake (h11), session set-up, close",
        ("ServerWebSocket._handshake", "ServerWebSocket._answer", "(h11/", "close_transport"),
    ),
    ("logging", ("(logging/",)),
    ("rtproto wire layer (ServerWebSocket) itself", ("(rtproto/wire/",)),
)


def _layer_lines(path: str) -> list[str]:
    """The share of py-spy samples per layer of the server (see ``_LAYERS``)."""
    shares: Counter[str] = Counter()
    total = 0
    with open(path, encoding="utf-8", errors="replace") as file:
        for line in file:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            total += int(count_text)
            for label, markers in _LAYERS:
                if any(marker in stack for marker in markers):
                    shares[label] += int(count_text)
                    break
            else:
                shares["driver: anyio tasks, locks, events, cancel scopes; asyncio loop"] += int(
                    count_text
                )
    lines = ["| share % | where |", "|---:|---|"]
    lines += [f"| {100 * c / total:.1f} | {label} |" for label, c in shares.most_common()]
    return lines if total else []


def _collapsed_tables(path: str, top: int) -> tuple[list[str], int]:
    """Own and inclusive sample shares per function and own share per file, from ``py-spy
    record --format raw --function`` output (one ``frame;frame;... count`` line per stack)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    files: Counter[str] = Counter()
    total = 0
    with open(path, encoding="utf-8", errors="replace") as file:
        for line in file:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = stack.split(";")
            total += count
            own[frames[-1]] += count
            files[frames[-1].rpartition(" (")[2].rpartition(":")[0] or "?"] += count
            for frame in set(frames):
                inclusive[frame] += count
    if not total:
        return ["py-spy recorded no samples"], 0

    def pct(count: int) -> str:
        return f"{100 * count / total:.1f}"

    lines = ["| own % | inclusive % | function (file:first line) |", "|---:|---:|---|"]
    lines += [f"| {pct(c)} | {pct(inclusive[f])} | {f} |" for f, c in own.most_common(top)]
    lines += ["", "| inclusive % | function (file:first line) |", "|---:|---|"]
    lines += [f"| {pct(c)} | {f} |" for f, c in inclusive.most_common(top)]
    lines += ["", "| own % | file |", "|---:|---|"]
    lines += [f"| {pct(c)} | {f} |" for f, c in files.most_common(top)]
    return lines, total


def profile_emulator(expect: int, opts: Any) -> list[str]:
    """Profile a fresh emulator during ``opts.profile_runs`` loads; markdown lines."""
    n = opts.profile_sessions
    out: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        prof = os.path.join(tmp, "emulator.prof")
        cprofile = prof if opts.profile == "cprofile" else None
        with emulator_process(opts.server_cpu, cprofile=cprofile) as server:
            run_load(server, n, expect, opts)  # warm up, unprofiled
            wait_idle(server.pid)
            spy: subprocess.Popen[bytes] | None = None
            raw = os.path.join(tmp, "emulator.txt")
            if not cprofile:
                exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
                spy = subprocess.Popen(
                    [
                        *(exe, "record", "--pid", str(server.pid), "--rate", "500"),
                        *("--gil", "--function"),  # blocking: whole stacks
                        *("--format", "raw", "--output", raw),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    preexec_fn=lambda: reference.pin_to_cpu(opts.client_cpu),
                )
                time.sleep(1.0)  # attached
            runs = []
            # py-spy's pauses cost the server a few % of CPU: "idle" is laxer meanwhile
            opts = argparse.Namespace(**{**vars(opts), "idle_cpu": 0.01 if cprofile else 0.2})
            try:
                for _ in range(opts.profile_runs):
                    runs.append(run_load(server, n, expect, opts, profile_window=bool(cprofile)))
            finally:
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    try:
                        spy.wait(30)
                    except subprocess.TimeoutExpired:
                        _stop(spy, gentle=False)
            wait_idle(server.pid, busy=opts.idle_cpu)  # the last SIGUSR2's dump is written
            rates = ", ".join(f"{r['events_per_s']:,.0f}" for r in runs)
            what = (
                "the turn phases only (connects and closes excluded)"
                if cprofile
                else "whole runs (connects and closes included)"
            )
            out.append(
                f"profiled emulator ({opts.profile}) over {what}, {opts.profile_runs} runs of "
                f"{n} sessions: {rates} events/s (profiler overhead included)"
            )
            if cprofile:
                if not os.path.exists(prof):
                    raise RuntimeError("the emulator wrote no cProfile stats")
                for sort in ("tottime", "cumulative"):
                    buffer = _Capture()
                    stats = pstats.Stats(prof, stream=buffer)  # type: ignore[arg-type]
                    stats.sort_stats(sort).print_stats(opts.profile_top)
                    out += ["", f"cProfile, sorted by {sort}:", "```", buffer.text(), "```"]
            else:
                if not os.path.exists(raw):
                    err = spy.stderr.read().decode() if spy and spy.stderr else ""
                    raise RuntimeError(f"py-spy wrote nothing: {err[-2000:]}")
                lines, total = _collapsed_tables(raw, opts.profile_top)
                out += [
                    "",
                    f"py-spy (500 Hz, samples holding the GIL only): {total} samples",
                    "",
                    *_layer_lines(raw),
                    "",
                    *lines,
                ]
    return out


class _Capture:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def text(self) -> str:
        return "".join(self.parts).strip("\n")


# ----------------------------------------------------------------------- reporting --


def summarise(runs: dict[tuple[str, int], list[dict[str, Any]]], counts: list[int]) -> list[Any]:
    rows = []
    for n in counts:
        row: dict[str, Any] = {"sessions": n}
        for name in SERVERS:
            samples = runs[(name, n)]
            row[name] = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
            row[name]["events_per_s_samples"] = [s["events_per_s"] for s in samples]
        emu, ref = row["emulator"], row["reference"]
        row["ratio"] = emu["events_per_s"] / ref["events_per_s"]
        row["cpu_ratio"] = emu["events_per_server_cpu_s"] / ref["events_per_server_cpu_s"]
        rows.append(row)
    return rows


def _verdict(ratio: float) -> str:
    return "PASS" if ratio >= TARGET_RATIO else "FAIL"


def load_markdown(rows: list[dict[str, Any]], target_n: int) -> str:
    lines = [
        "| sessions | emulator events/s | reference events/s | emulator / reference "
        "| emulator events per server CPU-s | reference events per server CPU-s "
        "| emulator / reference (server CPU) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        emu, ref = row["emulator"], row["reference"]
        at_target = row["sessions"] == target_n
        cells = [
            str(row["sessions"]),
            f"{emu['events_per_s']:,.0f}",
            f"{ref['events_per_s']:,.0f}",
            f"{row['ratio']:.2f}" + (f" ({_verdict(row['ratio'])})" if at_target else ""),
            f"{emu['events_per_server_cpu_s']:,.0f}",
            f"{ref['events_per_server_cpu_s']:,.0f}",
            f"{row['cpu_ratio']:.2f}" + (f" ({_verdict(row['cpu_ratio'])})" if at_target else ""),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "| sessions | emulator turn latency median / p99 ms | reference turn latency median / "
        "p99 ms | server µs CPU per event emu / ref | server CPU / turn phase emu / ref "
        "| client CPU / turn phase emu / ref | connect s emu / ref |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        emu, ref = row["emulator"], row["reference"]
        cells = [
            str(row["sessions"]),
            f"{emu['latency_median_ms']:.1f} / {emu['latency_p99_ms']:.1f}",
            f"{ref['latency_median_ms']:.1f} / {ref['latency_p99_ms']:.1f}",
            f"{emu['server_us_per_event']:.0f} / {ref['server_us_per_event']:.0f}",
            f"{emu['server_cpu']:.0%} / {ref['server_cpu']:.0%}",
            f"{emu['client_cpu']:.0%} / {ref['client_cpu']:.0%}",
            f"{emu['connect_s']:.2f} / {ref['connect_s']:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def memory_markdown(memory: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| server | idle sessions | RSS, no session (MiB) | RSS, sessions open (MiB) "
        "| KiB per session |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, m in memory.items():
        lines.append(
            f"| {name} | {m['sessions']} | {m['rss_idle_mib']:.1f} | {m['rss_loaded_mib']:.1f} "
            f"| {m['kib_per_session']:.1f} |"
        )
    return "\n".join(lines)


def environment() -> dict[str, str]:
    import websockets

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
        "rtproto": rtproto.__version__,
        "websockets": websockets.__version__,
    }


# ------------------------------------------------------------------------------ main --


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1, 10, 50 sessions, one repeat")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON only")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats (3)")
    parser.add_argument("--counts", default=None, help="session counts, comma-separated")
    parser.add_argument("--memory-sessions", type=int, default=None, help="idle sessions (500)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per client run")
    parser.add_argument("--profile", choices=("cprofile", "py-spy"), default=None)
    parser.add_argument("--profile-runs", type=int, default=3, help="loads while profiling")
    parser.add_argument("--profile-sessions", type=int, default=None, help="sessions (100)")
    parser.add_argument("--profile-top", type=int, default=30, help="functions listed")
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    parser.add_argument("--server-cpu", type=int, default=cpus[0])
    parser.add_argument("--client-cpu", type=int, default=cpus[1 % len(cpus)])
    # child processes (internal)
    parser.add_argument("--child", choices=("emulator", "client"), help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--max-seconds", type=float, default=900.0, help=argparse.SUPPRESS)
    parser.add_argument("--cprofile", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--sessions", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("turn", "idle"), default="turn", help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--profile-window", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is None:
        if args.repeats is None:
            args.repeats = 1 if args.quick else 3
        if args.repeats < 1:
            parser.error("--repeats must be at least 1")
        if args.counts:
            args.counts = [int(c) for c in args.counts.split(",")]
        else:
            args.counts = list(QUICK_COUNTS if args.quick else COUNTS)
        if args.memory_sessions is None:
            args.memory_sessions = 50 if args.quick else 500
        if args.profile_sessions is None:
            args.profile_sessions = 50 if args.quick else TARGET_SESSIONS
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child == "emulator":
        return child_emulator(args)
    if args.child == "client":
        return child_client(args)
    if args.server_cpu == args.client_cpu:
        print("warning: server and client share a CPU", file=sys.stderr)
    reference.pin_to_cpu(args.client_cpu)
    progress = not args.json
    counts: list[int] = args.counts
    target_n = max((n for n in counts if n <= TARGET_SESSIONS), default=counts[0])
    started = time.perf_counter()
    independence = core_independence((args.server_cpu, args.client_cpu))
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    runs.update(((name, n), []) for name in SERVERS for n in counts)
    memory: dict[str, dict[str, Any]] = {}
    with contextlib.ExitStack() as stack:
        emulator = stack.enter_context(emulator_process(args.server_cpu))
        recording = record_turn(emulator.url)
        expect = recording["turn_events"]
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        path = os.path.join(tmp, "turn.json")
        with open(path, "w", encoding="utf-8") as file:
            json.dump({"created": recording["created"], "replies": recording["replies"]}, file)
        ref = stack.enter_context(reference_process(path, args.server_cpu))
        servers = {"emulator": emulator, "reference": ref}
        if progress:
            print(
                f"core independence {independence:.2f}; recorded turn: "
                f"{recording['client_messages']} client messages, "
                f"{recording['setup_events']} setup + {expect} turn events, "
                f"{recording['bytes']:,} bytes",
                file=sys.stderr,
            )
        for name in SERVERS:  # warm up (lazy imports, caches) before the memory baseline
            run_load(servers[name], 1, expect, args)
        for name in SERVERS:
            memory[name] = measure_memory(servers[name], args.memory_sessions, args)
            if progress:
                kib = memory[name]["kib_per_session"]
                print(f"memory {name}: {kib:.1f} KiB/session", file=sys.stderr)
        for n in counts:  # a warm-up round, not recorded (the largest count warms nothing new)
            for name in SERVERS:
                if n <= TARGET_SESSIONS:
                    run_load(servers[name], n, expect, args)
        rng = random.Random(20240917)
        jobs = [(name, n) for n in counts for name in SERVERS]
        for r in range(args.repeats):
            rng.shuffle(jobs)
            for name, n in jobs:
                runs[(name, n)].append(run_load(servers[name], n, expect, args))
            if progress:
                print(f"  repeat {r + 1}/{args.repeats} done", file=sys.stderr)
    rows = summarise(runs, counts)
    target_row = next(row for row in rows if row["sessions"] == target_n)
    passed_wall = target_row["ratio"] >= TARGET_RATIO
    passed_cpu = target_row["cpu_ratio"] >= TARGET_RATIO
    elapsed = time.perf_counter() - started
    profile_lines: list[str] = []
    if args.profile:
        if progress:
            print(f"profiling the emulator ({args.profile})...", file=sys.stderr)
        profile_lines = profile_emulator(expect, args)
    result = {
        "meta": {
            "repeats": args.repeats,
            "quick": args.quick,
            "counts": counts,
            "server_cpu": args.server_cpu,
            "client_cpu": args.client_cpu,
            "core_independence": independence,
            "turn_events_per_session": expect,
            "setup_events_per_session": recording["setup_events"],
            "client_messages_per_session": recording["client_messages"],
            "recorded_event_types": dict(recording["types"]),
            "seconds": round(elapsed, 1),
        },
        "environment": environment(),
        "rows": rows,
        "memory": memory,
        "target": {
            "sessions": target_n,
            "min_ratio": TARGET_RATIO,
            "ratio": target_row["ratio"],
            "pass": passed_wall,
            "server_cpu_ratio": target_row["cpu_ratio"],
            "server_cpu_pass": passed_cpu,
        },
        "profile": profile_lines,
    }
    status = 0 if passed_wall and passed_cpu else 1
    if args.json:
        print(json.dumps(result, indent=2))
        return status
    env = result["environment"]
    print(
        f"rtproto emulator under load (--pace fast, server on CPU {args.server_cpu}, client on "
        f"CPU {args.client_cpu}): median of {args.repeats} interleaved repeats"
    )
    print(", ".join(f"{k} {v}" for k, v in env.items()))
    print(
        f"one turn: {recording['client_messages']} client messages (session.update + 75 appends "
        f"of 20 ms), {recording['setup_events']} setup events + {expect} turn events per session"
    )
    if independence < 0.8:
        print(
            f"warning: the two CPUs are not independent (two busy processes get "
            f"{independence:.2f}x the work of two real cores): server and client share CPU "
            "time, so events/s counts the client's CPU too; the server-CPU columns do not"
        )
    if args.repeats < 3:
        print("note: fewer than 3 repeats; medians are not reliable")
    print()
    print(load_markdown(rows, target_n))
    print()
    print(memory_markdown(memory))
    print()
    print(
        f"emulator / reference at {target_n} sessions (target >= {TARGET_RATIO}): "
        f"events/s {target_row['ratio']:.2f} {_verdict(target_row['ratio'])}, "
        f"events per server CPU-second {target_row['cpu_ratio']:.2f} "
        f"{_verdict(target_row['cpu_ratio'])}; overall {'PASS' if status == 0 else 'FAIL'} "
        f"({elapsed:.0f} s)"
    )
    if profile_lines:
        print()
        print("\n".join(profile_lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
