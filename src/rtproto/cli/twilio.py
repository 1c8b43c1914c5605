"""``rtproto twilio``: a Twilio Media Streams endpoint bridging every call to a Realtime
session, on the embedded emulator by default (arguments and output only).

Point TwiML's ``<Connect><Stream url=...>`` at it (through your TLS terminator). With
``--url`` (and ``OPENAI_API_KEY``) calls go to the real service; with ``TWILIO_AUTH_TOKEN``
set, only upgrades carrying a valid ``X-Twilio-Signature`` are accepted. The I/O lives in
:mod:`rtproto.adapters.twilio_serve`, imported when the command runs. See docs/twilio.md.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from ..phone import TwilioMessageReceived
from ..session import AudioInterrupted, ConnectionChange, ConnectionStatus, ServerError, TurnDone
from ..wire.twilio import StreamDtmf, StreamStart, StreamStop
from .main import Command, UsageError

__all__ = ["COMMAND", "DEFAULT_PORT", "add_arguments", "describe", "ready_lines", "run"]

DEFAULT_PORT = 8766


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``twilio`` options."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT}; 0: any free)"
    )
    parser.add_argument("--path", default="/media-stream", help="the stream's path")
    parser.add_argument("--url", help="a Realtime WebSocket URL (default: the embedded emulator)")
    parser.add_argument("--model", default="gpt-realtime")
    parser.add_argument("--instructions", help="the model's instructions for every call")
    parser.add_argument("--voice", help="the model's voice (e.g. marin)")
    parser.add_argument(
        "--frame-ms",
        type=int,
        metavar="MS",
        help="send the model's audio to Twilio in frames of MS milliseconds (20: 160 bytes),"
        " not delta by delta (the fix for clicks some callers hear at word starts)",
    )
    parser.add_argument(
        "--public-url",
        metavar="URL",
        help="the wss:// URL Twilio connects to, as signed (with TWILIO_AUTH_TOKEN; default "
        "wss://<Host header><path>)",
    )


def ready_lines(url: str, realtime: str, *, signed: bool) -> list[str]:
    """What the command prints once it listens (the first line carries the URL)."""
    check = "a valid X-Twilio-Signature is required" if signed else "signatures not checked"
    return [
        f"rtproto twilio: accepting Twilio media streams on {url}",
        f"  calls are bridged to {realtime}; {check}",
        '  TwiML: <Connect><Stream url="wss://<your host><path>"/></Connect>',
        "  Ctrl-C stops the server",
    ]


def describe(call: str, event: object) -> str | None:
    """One line for what matters in a call (``call``: a short name for it), else None."""
    if isinstance(event, TwilioMessageReceived):
        message = event.message
        if isinstance(message, StreamStart):
            params = f" {dict(message.custom_parameters)}" if message.custom_parameters else ""
            return f"{call}: started (call {message.call_sid}, stream {message.stream_sid}){params}"
        if isinstance(message, StreamDtmf):
            return f"{call}: caller pressed {message.digit}"
        if isinstance(message, StreamStop):
            return f"{call}: Twilio stopped the stream"
        return None
    if isinstance(event, TurnDone):
        return f"{call}: turn {event.response.status}"
    if isinstance(event, AudioInterrupted):
        cuts = ", ".join(f"{cut.audio_end_ms} of {cut.received_ms} ms" for cut in event.truncated)
        return f"{call}: caller interrupted" + (f" (cut at {cuts})" if cuts else "")
    if isinstance(event, ServerError):
        error = event.event.error
        return f"{call}: server error {error.code or error.type}: {error.message}"
    if isinstance(event, ConnectionChange) and event.status is ConnectionStatus.DISCONNECTED:
        why = f" ({event.code} {event.reason})" if event.code or event.reason else ""
        return f"{call}: Realtime session ended{why}"
    return None


def session_config(args: argparse.Namespace) -> dict[str, Any]:
    """The session configuration of every call."""
    config: dict[str, Any] = {}
    if args.instructions:
        config["instructions"] = args.instructions
    if args.voice:
        config["audio"] = {"output": {"voice": args.voice}}
    return config


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C; 0 after a clean shutdown, 1 when the address cannot be bound."""
    if not 0 <= args.port <= 65535:
        raise UsageError(f"rtproto twilio: error: port {args.port} is not in 0-65535")
    if not args.path.startswith("/"):
        raise UsageError(f"rtproto twilio: error: --path must start with '/', not {args.path!r}")
    if args.frame_ms is not None and not 1 <= args.frame_ms <= 1000:
        raise UsageError(
            f"rtproto twilio: error: --frame-ms must be 1 to 1000, not {args.frame_ms}"
        )
    driver: Any = importlib.import_module("rtproto.adapters.twilio_serve")
    code: int = driver.run_command(args)
    return code


COMMAND = Command(
    "twilio",
    "bridge Twilio phone calls (Media Streams) to Realtime sessions (default: the emulator)",
    add_arguments,
    run,
    description=__doc__,
)
