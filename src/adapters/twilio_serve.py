"""``rtproto twilio``: the I/O half (sockets, event loop, signals). One line per call event
on stderr; Ctrl-C or SIGTERM stops it."""

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

    async def handle(socket: MediaStreamSocket) -> None:
        name = f"call {next(numbers)}"
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
        await _wait_for_signal()


async def _wait_for_signal() -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            _say(f"rtproto twilio: {signal.Signals(signum).name}: stopping")
            return
