"""Memory and import-cost benchmark: rtproto against the official openai SDK.

(a) Resident memory per idle connected session. A local server in its own process
(``bench/_loopback_server.py --events 0``: raw asyncio server, hand-made upgrade, then
``session.created``; it answers ``session.update`` with ``session.updated``, pings with
pongs, close with close) takes every connection. For each contender, in a fresh interpreter
(one per contender and repeat, interleaved in a shuffled order):

1. import everything, build what is shared (the SDK's ``AsyncOpenAI`` client);
2. warm up: open one connection, wait for ``session.created``, close it (lazy imports, the
   SDK's model building, caches: one-off costs, not per-session ones), ``gc.collect()``;
3. RSS before (``/proc/self/statm``, resident pages);
4. open ``--count`` (500) connections one after the other, each entered on one
   ``contextlib.AsyncExitStack`` and left idle once its ``session.created`` arrived;
5. wait 0.5 s (everything in flight lands), take the events still queued (rtproto's driver
   holds the ``session.updated`` that answers its initial ``session.update`` until the
   application reads it; an application would), ``gc.collect()``;
6. RSS after; per session = (after - before) / count. Then every connection is closed
   and the child reports (the parent bounds the child's run time).

Also shown: the first (warm-up) connection's RSS cost, and (after - RSS before the warm-up)
/ count, the figure without a warm-up, where one-off costs are spread over the sessions
(the SDK builds its pydantic models for server events on the first connection).

Contenders: ``rtproto asyncio`` (``rtproto.adapters.connect``, compression off), the SDK
(``client.realtime.connect(model=..., websocket_connection_options={"compression": None})``)
and, for reference, a bare ``websockets.asyncio.client.connect`` (what the SDK is built on).
The figure is the median over ``--repeats`` (3) children. Target: rtproto at most 24 KiB per
session.

(b) Import cost, in fresh interpreters: wall time of ``python -c "import X"`` (a tiny script
that imports nothing else before ``X``) minus the wall time of the same script importing
nothing (the bare interpreter start), median of ``--import-repeats`` (5) interleaved runs
after one warm-up run each; and the RSS increase across the import, read in the child
before and after it. The child also times the import itself (``perf_counter``), shown as a
cross-check. Bytecode: every child uses one private ``PYTHONPYCACHEPREFIX`` (a temporary
directory) with bytecode writing on, so that after the warm-up every module, rtproto's and
the SDK's alike, loads from cached bytecode, as after a normal installation; the source tree
is not touched. Modules: ``rtproto``, ``rtproto.adapters`` (the anyio driver; its figures
include ``rtproto`` and anyio), ``openai``, and for reference ``openai`` plus the realtime
resource (what the SDK's realtime client loads before connecting). Target: rtproto and the
driver each at most a third of ``import openai``'s time and memory.

Run from the project root::

    .venv/bin/python bench/bench_memory.py            # both, markdown tables
    .venv/bin/python bench/bench_memory.py --quick    # smoke test (100 sessions, fewer runs)
    .venv/bin/python bench/bench_memory.py --json
    .venv/bin/python bench/bench_memory.py --only sessions --count 1000
    .venv/bin/python bench/bench_memory.py --profile rtproto-asyncio   # tracemalloc, per site
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
SESSION_TARGET_KIB = 24.0
IMPORT_FRACTION = 1 / 3
CHILD_TIMEOUT_S = 300.0
API_KEY = "sk-test"
MODEL = "gpt-realtime"

SESSION_CONTENDERS = ("rtproto-asyncio", "sdk", "websockets")
SESSION_LABELS = {
    "rtproto-asyncio": "rtproto asyncio driver (`connect`)",
    "sdk": "openai SDK (`client.realtime.connect`)",
    "websockets": "websockets client (reference)",
}
IMPORTS = {
    "bare": "",
    "rtproto": "import rtproto",
    "rtproto.adapters": "import rtproto.adapters",
    "openai": "import openai",
    "openai+realtime": "import openai.resources.realtime.realtime, openai.lib._websocket",
}
IMPORT_LABELS = {
    "rtproto": "`import rtproto`",
    "rtproto.adapters": "`import rtproto.adapters` (driver, incl. rtproto + anyio)",
    "openai": "`import openai`",
    "openai+realtime": "`import openai` + realtime resource + websockets (reference)",
}


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ------------------------------------------------------------------ (a) the session child --


async def _child_sessions(contender: str, port: int, count: int, trace: bool) -> dict[str, Any]:
    import contextlib
    import gc
    import resource

    import anyio

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            raise RuntimeError(f"the fd hard limit {hard} is below {wanted}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))

    url = f"ws://127.0.0.1:{port}/v1/realtime?model={MODEL}"
    drain: Any = None
    if contender == "rtproto-asyncio":
        import rtproto.adapters

        from rtproto.events import SessionCreated
        from rtproto.wire import WebSocketOptions

        options = WebSocketOptions(compression=False)

        async def open_one(stack: contextlib.AsyncExitStack) -> Any:
            conn = await stack.enter_async_context(
                rtproto.adapters.connect(url, model=MODEL, api_key=API_KEY, ws_options=options)
            )
            while not isinstance(await conn.next_event(timeout=10), SessionCreated):
                pass
            return conn

        async def drain(conn: Any) -> None:
            while conn.queued_events:
                await conn.next_event()

    elif contender == "sdk":
        import openai

        client = openai.AsyncOpenAI(
            api_key=API_KEY,
            base_url=f"http://127.0.0.1:{port}/v1",
            websocket_base_url=f"ws://127.0.0.1:{port}/v1",
        )

        async def open_one(stack: contextlib.AsyncExitStack) -> Any:
            conn = await stack.enter_async_context(
                client.realtime.connect(
                    model=MODEL, websocket_connection_options={"compression": None}
                )
            )
            with anyio.fail_after(10):
                event = await conn.recv()
            assert event.type == "session.created", event.type
            return conn

    elif contender == "websockets":
        import orjson
        from websockets.asyncio.client import connect as ws_connect

        async def open_one(stack: contextlib.AsyncExitStack) -> Any:
            ws = await stack.enter_async_context(
                ws_connect(
                    url,
                    compression=None,
                    additional_headers={"Authorization": f"Bearer {API_KEY}"},
                )
            )
            with anyio.fail_after(10):
                message = await ws.recv()
            assert orjson.loads(message)["type"] == "session.created"
            return ws

    else:
        raise ValueError(contender)

    # warm-up: one connection, opened and closed
    r0 = rss_bytes()
    async with contextlib.AsyncExitStack() as stack:
        await open_one(stack)
    gc.collect()
    await anyio.sleep(0.2)
    warm = rss_bytes() - r0

    if trace:
        import tracemalloc

        tracemalloc.start(8)
    before = rss_bytes()
    conns = []
    stack = contextlib.AsyncExitStack()
    started = time.perf_counter()
    try:
        for _ in range(count):
            conns.append(await open_one(stack))
        opened_s = time.perf_counter() - started
        await anyio.sleep(0.5)
        if drain is not None:
            for conn in conns:
                await drain(conn)
        gc.collect()
        after = rss_bytes()
        snapshot = tracemalloc.take_snapshot() if trace else None
        if trace:
            tracemalloc.stop()
    finally:
        # No cancel scope around this: rtproto's connections hold task groups entered
        # outside it (anyio scopes must nest). The parent's timeout bounds the child.
        await stack.aclose()
    result = {
        "contender": contender,
        "count": count,
        "rss_before": before,
        "rss_after": after,
        "per_session_kib": (after - before) / count / 1024,
        "cold_per_session_kib": (after - r0) / count / 1024,
        "first_connection_kib": warm / 1024,
        "open_seconds": round(opened_s, 3),
    }
    if snapshot is not None:
        result["top"] = _top_allocations(snapshot, count)
    return result


def _top_allocations(snapshot: Any, count: int, limit: int = 25) -> list[str]:
    """The allocation sites holding the most memory, per session."""
    rows = []
    stats = snapshot.statistics("lineno")
    total = sum(s.size for s in stats)
    rows.append(f"traced total: {total / count / 1024:.2f} KiB per session")
    for stat in stats[:limit]:
        frame = stat.traceback[0]
        rows.append(
            f"{stat.size / count:8.0f} B/session {stat.count / count:6.2f} blocks/session"
            f"  {frame.filename}:{frame.lineno}"
        )
    rows.append("-- grouped by traceback (top 12, 8 frames) --")
    for stat in snapshot.statistics("traceback")[:12]:
        rows.append(f"{stat.size / count:8.0f} B/session {stat.count / count:6.2f} blocks/session")
        rows.extend(f"      {line}" for line in stat.traceback.format()[-16:])
    return rows


def child_sessions_main(contender: str, port: int, count: int, trace: bool) -> int:
    import anyio

    result = anyio.run(_child_sessions, contender, port, count, trace, backend="asyncio")
    print(json.dumps(result))
    return 0


# ------------------------------------------------------------------ (b) the import child --

# Imports nothing before the statement but what the interpreter already loaded (os via site).
IMPORT_CHILD = """\
import os, sys, time
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
r0 = rss()
t0 = time.perf_counter()
{statement}
t1 = time.perf_counter()
r1 = rss()
sys.stdout.write("%d %d %.9f %d\\n" % (r0, r1, t1 - t0, len(sys.modules)))
"""


def child_env(prefix: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = prefix
    return env


def run_import(statement: str, env: dict[str, str]) -> dict[str, float]:
    code = IMPORT_CHILD.format(statement=statement or "pass")
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{statement!r} failed:\n{proc.stderr[-2000:]}")
    r0, r1, inner, modules = proc.stdout.split()
    return {
        "wall_s": wall,
        "import_s": float(inner),
        "rss_kib": (int(r1) - int(r0)) / 1024,
        "modules": int(modules),
    }


def measure_imports(repeats: int, progress: bool) -> dict[str, Any]:
    prefix = tempfile.mkdtemp(prefix="rtproto-bench-pycache-")
    try:
        env = child_env(prefix)
        names = list(IMPORTS)
        for name in names:  # warm-up: writes the bytecode cache, warms the page cache
            run_import(IMPORTS[name], env)
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        rng = random.Random(7)
        for r in range(repeats):
            rng.shuffle(names)
            for name in names:
                samples[name].append(run_import(IMPORTS[name], env))
            if progress:
                print(f"  imports: repeat {r + 1}/{repeats} done", file=sys.stderr)
    finally:
        shutil.rmtree(prefix, ignore_errors=True)

    def med(name: str, key: str) -> float:
        return statistics.median(s[key] for s in samples[name])

    bare_wall = med("bare", "wall_s")
    bare_modules = med("bare", "modules")
    rows: dict[str, dict[str, Any]] = {}
    for name in IMPORTS:
        if name == "bare":
            continue
        rows[name] = {
            "wall_ms": (med(name, "wall_s") - bare_wall) * 1e3,
            "import_ms": med(name, "import_s") * 1e3,
            "rss_kib": med(name, "rss_kib"),
            "modules": med(name, "modules") - bare_modules,
            "samples": samples[name],
        }
    ref = rows["openai"]
    for name in ("rtproto", "rtproto.adapters"):
        row = rows[name]
        row["time_fraction"] = row["wall_ms"] / ref["wall_ms"]
        row["rss_fraction"] = row["rss_kib"] / ref["rss_kib"]
        row["pass"] = (
            row["time_fraction"] <= IMPORT_FRACTION and row["rss_fraction"] <= IMPORT_FRACTION
        )
    return {
        "bare_wall_ms": bare_wall * 1e3,
        "bare_samples": samples["bare"],
        "rows": rows,
        "pass": all(rows[n]["pass"] for n in ("rtproto", "rtproto.adapters")),
    }


# ------------------------------------------------------------------------ (a) the parent --


def run_session_child(
    contender: str, port: int, count: int, env: dict[str, str], trace: bool = False
) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE), "--child-sessions", contender, "--port", str(port)]
    cmd += ["--count", str(count)]
    if trace:
        cmd.append("--trace")
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{contender} child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_sessions(
    count: int, repeats: int, names: list[str], progress: bool
) -> tuple[dict[str, Any], dict[str, int]]:
    from _loopback_server import running_server

    prefix = tempfile.mkdtemp(prefix="rtproto-bench-pycache-")
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    try:
        env = child_env(prefix)
        with running_server(0) as server:
            rng = random.Random(11)
            order = list(names)
            for r in range(repeats):
                rng.shuffle(order)
                for name in order:
                    samples[name].append(run_session_child(name, server.port, count, env))
                if progress:
                    print(f"  sessions: repeat {r + 1}/{repeats} done", file=sys.stderr)
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
    rows: dict[str, dict[str, Any]] = {}
    for name in names:
        per = [s["per_session_kib"] for s in samples[name]]
        rows[name] = {
            "per_session_kib": statistics.median(per),
            "min_kib": min(per),
            "max_kib": max(per),
            "first_connection_kib": statistics.median(
                s["first_connection_kib"] for s in samples[name]
            ),
            "cold_per_session_kib": statistics.median(
                s["cold_per_session_kib"] for s in samples[name]
            ),
            "open_seconds": statistics.median(s["open_seconds"] for s in samples[name]),
            "samples": samples[name],
        }
    result: dict[str, Any] = {"count": count, "repeats": repeats, "rows": rows}
    if "rtproto-asyncio" in rows:
        ours = rows["rtproto-asyncio"]["per_session_kib"]
        result["pass"] = ours <= SESSION_TARGET_KIB
        if "sdk" in rows:
            result["rtproto_over_sdk"] = ours / rows["sdk"]["per_session_kib"]
    return result, server.stats


# ----------------------------------------------------------------------------- reporting --


def sessions_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"| client ({result['count']} idle sessions) | KiB/session (median) | min - max |"
        " first connection KiB | KiB/session incl. first-connection cost | open time s |"
        " target | result |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for name in SESSION_CONTENDERS:
        row = result["rows"].get(name)
        if row is None:
            continue
        target, verdict = "", ""
        if name == "rtproto-asyncio":
            target = f"≤ {SESSION_TARGET_KIB:g} KiB"
            verdict = "PASS" if result["pass"] else "FAIL"
        lines.append(
            f"| {SESSION_LABELS[name]} | {row['per_session_kib']:.1f} |"
            f" {row['min_kib']:.1f} - {row['max_kib']:.1f} | {row['first_connection_kib']:.0f} |"
            f" {row['cold_per_session_kib']:.1f} | {row['open_seconds']:.2f} | {target} |"
            f" {verdict} |"
        )
    return "\n".join(lines)


def imports_markdown(result: dict[str, Any]) -> str:
    rows = result["rows"]
    ref = rows["openai"]
    lines = [
        "| import | wall ms (minus bare start) | in-process ms | RSS KiB | modules |"
        " time / openai | RSS / openai | target | result |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, row in rows.items():
        target, verdict = "", ""
        if "pass" in row:
            target = "≤ 1/3 of openai (both)"
            verdict = "PASS" if row["pass"] else "FAIL"
        lines.append(
            f"| {IMPORT_LABELS[name]} | {row['wall_ms']:.1f} | {row['import_ms']:.1f} |"
            f" {row['rss_kib']:,.0f} | {row['modules']:.0f} |"
            f" {row['wall_ms'] / ref['wall_ms']:.2f} | {row['rss_kib'] / ref['rss_kib']:.2f} |"
            f" {target} | {verdict} |"
        )
    return "\n".join(lines)


def environment() -> dict[str, str]:
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        **{pkg: version(pkg) for pkg in ("rtproto", "openai", "websockets", "anyio", "pydantic")},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=None, help="idle sessions per child (500)")
    parser.add_argument("--repeats", type=int, default=None, help="children per contender (3)")
    parser.add_argument("--import-repeats", type=int, default=None, help="import runs (5)")
    parser.add_argument("--quick", action="store_true", help="100 sessions, fewer runs")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON only")
    parser.add_argument("--only", choices=("sessions", "imports"), default=None)
    parser.add_argument(
        "--profile",
        choices=SESSION_CONTENDERS,
        default=None,
        help="one child under tracemalloc: where the per-session memory is allocated",
    )
    # internal: the session child
    parser.add_argument("--child-sessions", choices=SESSION_CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    count = args.count or (100 if args.quick else 500)
    if args.child_sessions:
        return child_sessions_main(args.child_sessions, args.port, count, args.trace)
    repeats = args.repeats or (1 if args.quick else 3)
    import_repeats = args.import_repeats or (3 if args.quick else 5)
    if count < 1 or repeats < 1 or import_repeats < 1:
        parser.error("--count, --repeats and --import-repeats must be at least 1")

    if args.profile:
        from _loopback_server import running_server

        prefix = tempfile.mkdtemp(prefix="rtproto-bench-pycache-")
        try:
            with running_server(0) as server:
                out = run_session_child(
                    args.profile, server.port, count, child_env(prefix), trace=True
                )
        finally:
            shutil.rmtree(prefix, ignore_errors=True)
        print(
            f"{args.profile}: {out['per_session_kib']:.1f} KiB/session RSS "
            f"(under tracemalloc, so higher than the real figure)"
        )
        print("\n".join(out["top"]))
        return 0

    started = time.perf_counter()
    env = environment()
    result: dict[str, Any] = {"environment": env}
    progress = not args.json
    if args.only in (None, "sessions"):
        sessions, stats = measure_sessions(count, repeats, list(SESSION_CONTENDERS), progress)
        result["sessions"] = sessions
        result["server_stats"] = stats
    if args.only in (None, "imports"):
        result["imports"] = measure_imports(import_repeats, progress)
    verdicts = [part["pass"] for key in ("sessions", "imports") if (part := result.get(key))]
    result["all_pass"] = all(verdicts)
    result["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0

    print("rtproto memory benchmark")
    print(", ".join(f"{k} {v}" for k, v in env.items()))
    if "sessions" in result:
        s = result["sessions"]
        print()
        print(
            f"(a) resident memory per idle session: (RSS after - RSS before) / {s['count']}, "
            f"fresh interpreter per run, median of {s['repeats']}"
        )
        print()
        print(sessions_markdown(s))
        if "rtproto_over_sdk" in s:
            print(f"\nrtproto / SDK per session: {s['rtproto_over_sdk']:.2f}x")
        stats = result["server_stats"]
        if stats:
            print(
                f"server: {stats.get('upgraded')} upgrades, at most {stats.get('max_open')} "
                f"connections open at once, {stats.get('deflate_offered')} offered "
                "permessage-deflate (none accepted)"
            )
    if "imports" in result:
        imp = result["imports"]
        print()
        print(
            f"(b) import cost: fresh interpreter per run, median of {import_repeats} runs, "
            f"bare interpreter start {imp['bare_wall_ms']:.1f} ms subtracted"
        )
        print()
        print(imports_markdown(imp))
    print(f"\noverall: {'PASS' if result['all_pass'] else 'FAIL'} ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
