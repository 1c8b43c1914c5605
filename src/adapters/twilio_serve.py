"""``rtproto twilio``: the I/O half (sockets, event loop, signals). One line per call event
on stderr. Ctrl-C or SIGTERM stops it: at once with no call in progress; else it takes no new
call and waits for those in progress to end, and a second signal cuts them."""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import sys
from contextlib import ExitStack

import anyio

from rtproto.cli.twilio import describe, ready_lines, session_config
from rtproto.phone import TwilioBridgeOptions

from .call import LOCAL_KEY
from .server import start_in_thread
from .twilio import MediaStreamSocket, bridge_call, serve_twilio

__all__ = ["run_command"]


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_command(args: argparse.Namespace) -> int:
    """Serve Twilio streams until a signal; the exit code of the command."""
    with ExitStack() as stack:
        if args.url:
            realtime, api_key = args.url, os.environ.get("OPENAI_API_KEY") or None
            if api_key is None:
                _say("rtproto twilio: error: --url needs OPENAI_API_KEY")
                return 2
        else:
            emulator = stack.enter_context(start_in_thread())
            realtime, api_key = f"{emulator.url}?model={args.model}", LOCAL_KEY
        token = os.environ.get("TWILIO_AUTH_TOKEN") or None
        try:
            anyio.run(_serve, args, realtime, api_key, token)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            _say(f"rtproto twilio: error: cannot listen on {args.host}:{args.port}: {reason}")
            return 1
        except KeyboardInterrupt:  # a second Ctrl-C during the shutdown
            return 130
    _say("rtproto twilio: stopped")
    return 0


async def _serve(
    args: argparse.Namespace, realtime: str, api_key: str | None, token: str | None
) -> None:
    numbers = itertools.count(1)
    config = session_config(args)
    calls: set[str] = set()
    stopping = False
    all_ended = anyio.Event()

    async def handle(socket: MediaStreamSocket) -> None:
        if stopping:  # no new call once stopping: Twilio hears the stream end
            await socket.close(1001, "the server is stopping")
            return
        name = f"call {next(numbers)}"
        calls.add(name)
        try:
            async with bridge_call(
                socket,
                realtime,
                model=args.model,
                api_key=api_key,
                session=config,
                bridge_options=TwilioBridgeOptions(outbound_frame_ms=args.frame_ms),
            ) as call:
                async for event in call:
                    line = describe(name, event)
                    if line is not None:
                        _say(line)
        except Exception as exc:  # one call failing must not stop the others
            _say(f"{name}: failed: {type(exc).__name__}: {exc}")
        finally:
            calls.discard(name)
            if stopping and not calls:
                all_ended.set()
        _say(f"{name}: ended")

    async with serve_twilio(
        handle,
        host=args.host,
        port=args.port,
        path=args.path,
        auth_token=token,
        public_url=args.public_url,
    ) as server:
        for line in ready_lines(server.url, realtime.split("?")[0], signed=token is not None):
            _say(line)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            signals = aiter(signals)
            name = signal.Signals(await anext(signals)).name
            if not calls:
                _say(f"rtproto twilio: {name}: stopping")
                return
            # calls in progress end as they would; a second signal cuts them
            stopping = True
            _say(
                f"rtproto twilio: {name}: no new calls; waiting for {len(calls)} to end"
                " (again to cut them)"
            )
            async with anyio.create_task_group() as tasks:

                async def cut() -> None:
                    again = signal.Signals(await anext(signals)).name
                    _say(f"rtproto twilio: {again}: cutting {len(calls)} call(s)")
                    tasks.cancel_scope.cancel()

                tasks.start_soon(cut)
                await all_ended.wait()
                tasks.cancel_scope.cancel()
            _say("rtproto twilio: stopping")
