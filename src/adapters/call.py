"""``rtproto call``: one voice turn against a Realtime server, on asyncio, Trio or threads.

The input (PCM16 24 kHz, or a text message) is streamed in 20 ms frames at real time, then
a second of silence lets the server's turn detection end the turn; every event goes to a
:class:`~rtproto.cli.report.CallReport`, which decides when the call is over.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import anyio

from rtproto import RtprotoError
from rtproto.cli.main import UsageError
from rtproto.cli.report import CallReport, ExitCode
from rtproto.wire import realtime_url

from .aio import AsyncConnection, connect
from .server import start_in_thread
from .sync import SyncConnection, connect_sync
from .wavfile import WavError, read_pcm24k, write_pcm24k

__all__ = ["CallOptions", "run_call", "run_command"]

#: The key sent to the embedded emulator when none is given (it accepts any key).
LOCAL_KEY = "sk-local-emulator"

FRAME_BYTES = 960  # 20 ms of PCM16 at 24 kHz
TRAILING_SILENCE_FRAMES = 50  # one second, so server VAD sees the end of the turn
#: Turn detection for the call: server VAD, a short silence ends the user's turn.
CALL_SESSION: dict[str, Any] = {
    "audio": {
        "input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 500}},
        "output": {"voice": "alloy"},
    }
}


@dataclass(frozen=True)
class CallOptions:
    """What one call does."""

    url: str
    api_key: str | None = None
    model: str = "gpt-realtime"
    input_pcm: bytes | None = None
    text: str | None = None
    driver: str = "asyncio"
    realtime: bool = True
    timeout: float = 60.0
    connect_timeout: float = 5.0


def run_call(options: CallOptions, report: CallReport, emit: Callable[[str], None]) -> None:
    """Run one call to the end (or the timeout), feeding ``report`` and printing via ``emit``.

    Connection failures propagate (``ConnectError``, ``HandshakeRefused``...).
    """
    if options.driver == "thread":
        _call_sync(options, report, emit)
    else:
        anyio.run(_call_async, options, report, emit, backend=options.driver)


def _frames(options: CallOptions) -> list[bytes]:
    pcm = options.input_pcm or b""
    frames = [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]
    return frames + [bytes(FRAME_BYTES)] * TRAILING_SILENCE_FRAMES if frames else []


def _connect_kwargs(options: CallOptions) -> dict[str, Any]:
    # a URL that names its model (or a call) chooses it: connect() refuses a different one
    named = "model=" in options.url or "call_id=" in options.url
    return {
        "model": None if named else options.model,
        "api_key": options.api_key,
        "session": CALL_SESSION,
        "connect_timeout": options.connect_timeout,
        "handshake_timeout": options.connect_timeout,
    }


async def _call_async(
    options: CallOptions, report: CallReport, emit: Callable[[str], None]
) -> None:
    async with connect(options.url, **_connect_kwargs(options)) as conn:
        report.started_at = anyio.current_time()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_send_input_async, conn, options, report)
            with anyio.move_on_after(options.timeout):
                async for event in conn:
                    for line in report.handle(event, anyio.current_time()):
                        emit(line)
                    if report.finished:
                        break
            tasks.cancel_scope.cancel()
    if not report.finished:
        report.timed_out(options.timeout)


async def _send_input_async(
    conn: AsyncConnection, options: CallOptions, report: CallReport
) -> None:
    try:
        if options.text is not None:
            await conn.send_message(options.text)
            report.started_at = anyio.current_time()
            return
        start = anyio.current_time()
        for number, frame in enumerate(_frames(options)):
            await conn.send_audio(frame)
            if options.realtime:  # pace against the clock, not by sleeping a fixed 20 ms
                await anyio.sleep(max(0.0, start + (number + 1) * 0.02 - anyio.current_time()))
    except RtprotoError:  # the connection ended under us; the event loop reports why
        return


def _call_sync(options: CallOptions, report: CallReport, emit: Callable[[str], None]) -> None:
    with connect_sync(options.url, **_connect_kwargs(options)) as conn:
        report.started_at = time.monotonic()
        sender = threading.Thread(
            target=_send_input_sync, args=(conn, options, report), daemon=True
        )
        sender.start()
        deadline = time.monotonic() + options.timeout
        try:
            for event in conn.events(timeout=options.timeout):
                for line in report.handle(event, time.monotonic()):
                    emit(line)
                if report.finished or time.monotonic() > deadline:
                    break
        except TimeoutError:
            pass
        sender.join(timeout=1.0)
    if not report.finished:
        report.timed_out(options.timeout)


def _send_input_sync(conn: SyncConnection, options: CallOptions, report: CallReport) -> None:
    try:
        if options.text is not None:
            conn.send_message(options.text)
            report.started_at = time.monotonic()
            return
        start = time.monotonic()
        for number, frame in enumerate(_frames(options)):
            conn.send_audio(frame)
            if options.realtime:
                time.sleep(max(0.0, start + (number + 1) * 0.02 - time.monotonic()))
    except RtprotoError:  # the connection ended under us; the event loop reports why
        return


def run_command(args: argparse.Namespace) -> int:
    """``rtproto call`` with parsed arguments: load the input, call, write the reply."""
    pcm: bytes | None = None
    if args.text is None:
        try:
            pcm = read_pcm24k(args.input or _demo_wav())
        except WavError as exc:
            raise UsageError(f"rtproto call: error: {exc}") from None
        if not pcm:
            raise UsageError(f"rtproto call: error: {args.input}: the file has no audio")
    report = CallReport(as_json=args.json, live=sys.stderr.isatty() and not args.json)
    on_progress_line = False

    def emit(line: str) -> None:
        nonlocal on_progress_line
        if args.json:
            print(line, flush=True)
        elif line.startswith("\r"):  # live progress: rewrite the same terminal line
            sys.stderr.write(line)
            sys.stderr.flush()
            on_progress_line = True
        else:
            print(("\n" if on_progress_line else "") + line, file=sys.stderr, flush=True)
            on_progress_line = False

    with ExitStack() as stack:
        try:
            url, key = _endpoint(args, stack)
            options = CallOptions(
                url=url,
                api_key=key,
                model=args.model,
                input_pcm=pcm,
                text=args.text,
                driver=args.driver,
                realtime=not args.fast,
                timeout=args.timeout,
            )
            run_call(options, report, emit)
        except Exception as exc:  # one clear line, no traceback (unless --debug)
            if args.debug:
                traceback.print_exc()
            print(f"rtproto call: {describe_failure(exc)}", file=sys.stderr)
            return int(ExitCode.CONNECTION)
    if report.audio:
        try:
            write_pcm24k(args.output, b"".join(report.audio))
        except OSError as exc:
            print(f"rtproto call: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
            return int(ExitCode.USAGE)
    if not args.json:
        print(report.summary(args.output), file=sys.stderr)
    return int(report.exit_code)


def _demo_wav() -> Path:
    return Path(str(resources.files("rtproto") / "data" / "hello.wav"))


def _endpoint(args: argparse.Namespace, stack: ExitStack) -> tuple[str, str | None]:
    if args.url is not None:
        url: str = args.url
        if "model=" not in url and "call_id=" not in url and url.rstrip("/").endswith("realtime"):
            url = realtime_url(url, model=args.model)
        return url, os.environ.get("OPENAI_API_KEY")
    server = stack.enter_context(start_in_thread())
    print(f"emulator listening on {server.url}", file=sys.stderr)
    return realtime_url(server.url, model=args.model), LOCAL_KEY


def describe_failure(exc: BaseException) -> str:
    """One line for a failed call (the innermost error of an exception group)."""
    inner = getattr(exc, "exceptions", None)  # an exception group (3.10: the backport)
    while isinstance(inner, tuple) and len(inner) == 1 and isinstance(inner[0], BaseException):
        exc = inner[0]
        inner = getattr(exc, "exceptions", None)
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        error = getattr(exc, "error", None)
        detail = error.get("error", {}).get("message", "") if isinstance(error, dict) else ""
        suffix = f": {detail}" if detail else ""
        return f"the server refused the connection: HTTP {status}{suffix}"
    return str(exc) or type(exc).__name__
