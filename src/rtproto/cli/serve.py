"""``rtproto serve``: run the local Realtime emulator (arguments and output only).

The server itself (sockets, event loop, signals, script files) is
:mod:`rtproto.adapters.server`, imported when the command runs. See docs/serve.md.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Any

from .main import Command, UsageError

__all__ = [
    "COMMAND",
    "FAULTS",
    "add_arguments",
    "configure_logging",
    "parse_faults",
    "parse_responder",
    "ready_lines",
    "run",
]

DEFAULT_PORT = 8765
#: ``--fault`` names -> (ServerConfig field, kind of value: ``int``, ``seconds`` or ``None``).
FAULTS: dict[str, tuple[str, str | None]] = {
    "drop-after": ("drop_after", "int"),
    "close-1001-after": ("close_1001_after", "seconds"),
    "unknown-events": ("unknown_events", None),
    "fragment": ("fragment", None),
    "slow-handshake": ("slow_handshake", None),
}
_FAULT_USAGE = "drop-after=N, close-1001-after=S, unknown-events, fragment or slow-handshake"


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is not in 0-65535")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"seconds must be a positive number, not {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``rtproto serve``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT}; 0: any free)"
    )
    parser.add_argument(
        "--responder",
        default="echo",
        metavar="echo|script:FILE",
        help="what answers: echo what was heard (default), or play a JSON script",
    )
    parser.add_argument(
        "--pace",
        choices=("realtime", "fast"),
        default="fast",
        help="send a response's deltas at once (fast, default) or at playback speed",
    )
    parser.add_argument(
        "--max-duration",
        type=_seconds,
        default=None,
        metavar="S",
        help="session length cap in seconds (the service's: 3600, 1800 in the beta dialect),"
        " then session_expired and close 1001",
    )
    parser.add_argument(
        "--api-key", default=None, metavar="KEY", help="accept only this key (default: any)"
    )
    parser.add_argument(
        "--upstream",
        default=None,
        metavar="URL",
        help="mint client secrets with a real service (e.g. https://api.openai.com/v1) using "
        "the key in OPENAI_API_KEY; the browser demo then calls that service directly",
    )
    parser.add_argument(
        "--sip-webhook-url",
        default=None,
        metavar="URL",
        help="your app's webhook endpoint: POST /v1/realtime/emulator/sip_calls then rings the"
        " emulator's SIP line and sends it realtime.call.incoming, signed with the secret in"
        " RTPROTO_SIP_WEBHOOK_SECRET (docs/sip.md)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="FAULT",
        help=f"inject a fault into every session: {_FAULT_USAGE} (repeatable)",
    )
    parser.add_argument(
        "--debug", action="store_true", help="log every event of every session, not just turns"
    )


def parse_faults(values: list[str]) -> dict[str, Any]:
    """``--fault`` values as ServerConfig keyword arguments.

    Raises:
        UsageError: an unknown fault, a missing or bad value, a fault given twice.
    """
    faults: dict[str, Any] = {}
    for text in values:
        name, has_value, value = text.partition("=")
        spec = FAULTS.get(name.strip())
        if spec is None:
            raise UsageError(f"unknown fault {text!r}: use {_FAULT_USAGE}")
        field, kind = spec
        if field in faults:
            raise UsageError(f"fault {name!r} given twice")
        if kind is None:
            if has_value:
                raise UsageError(f"fault {name!r} takes no value")
            faults[field] = True
        elif not has_value or not value.strip():
            raise UsageError(
                f"fault {name!r} needs a value: {name}={'N' if kind == 'int' else 'S'}"
            )
        elif kind == "int":
            try:
                number = int(value)
            except ValueError:
                number = -1
            if number < 0:
                raise UsageError(f"{name} needs a whole number >= 0, not {value!r}")
            faults[field] = number
        else:
            try:
                faults[field] = _seconds(value)
            except argparse.ArgumentTypeError as exc:
                raise UsageError(f"{name}: {exc}") from None
    return faults


def parse_responder(value: str) -> str | None:
    """``--responder``: ``None`` for ``echo``, else the script's path (``script:FILE``).

    Raises:
        UsageError: anything else.
    """
    if value == "echo":
        return None
    kind, _, path = value.partition(":")
    if kind == "script" and path:
        return path
    raise UsageError(f"--responder must be echo or script:FILE, not {value!r}")


def ready_lines(url: str, base_url: str, *, key_required: bool) -> list[str]:
    """What ``rtproto serve`` prints once it listens (the first line carries the URL)."""
    ws_base = base_url.replace("http://", "ws://", 1)
    key = "the key given with --api-key" if key_required else "any key"
    return [
        f"rtproto serve: listening on {url}?model=gpt-realtime",
        f"  official SDK: AsyncOpenAI(api_key=..., base_url={base_url!r}, "
        f"websocket_base_url={ws_base!r}); {key} is accepted",
        f"  browser demo (WebRTC): {base_url.removesuffix('/v1')}/",
        "  Ctrl-C stops the server",
    ]


def configure_logging(debug: bool) -> None:
    """Log lines of the server to stderr: one per session and turn, every event with debug."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d %(message)s", "%H:%M:%S"))
    for name in ("rtproto.server", "rtproto.adapters"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
        logger.setLevel(logging.DEBUG if debug else logging.INFO)


def run(args: argparse.Namespace) -> int:
    """Run the emulator until Ctrl-C (or SIGTERM); 0 after a clean shutdown."""
    faults = parse_faults(args.fault)
    script = parse_responder(args.responder)
    # The I/O half of the command (sockets, event loop, signals, files), imported by name:
    # src/adapters is installed as rtproto.adapters, which type checkers of src/ do not see.
    driver: Any = importlib.import_module("rtproto.adapters.server")

    responder = None
    if script is not None:
        try:
            responder = driver.load_script(script)
        except driver.ScriptError as exc:
            raise UsageError(str(exc)) from None
    upstream_key = None
    if args.upstream:
        upstream_key = os.environ.get("OPENAI_API_KEY", "").strip() or None
        if upstream_key is None:
            raise UsageError("--upstream needs the real API key in OPENAI_API_KEY")
    sip_secret = None
    if args.sip_webhook_url:
        sip_secret = os.environ.get("RTPROTO_SIP_WEBHOOK_SECRET", "").strip() or None
        if sip_secret is None:
            raise UsageError(
                "--sip-webhook-url needs the webhook signing secret in RTPROTO_SIP_WEBHOOK_SECRET"
            )
    try:
        config = driver.ServerConfig(
            pace=args.pace,
            max_duration=args.max_duration,
            api_key=args.api_key or None,
            responder=responder,
            upstream=args.upstream or None,
            upstream_key=upstream_key,
            sip_webhook_url=args.sip_webhook_url or None,
            sip_webhook_secret=sip_secret,
            **faults,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    configure_logging(args.debug)

    def ready(server: Any) -> None:
        for line in ready_lines(server.url, server.base_url, key_required=bool(args.api_key)):
            print(line, file=sys.stderr, flush=True)
        if args.upstream:
            print(
                f"  upstream: client secrets are minted by {args.upstream}; "
                "the browser demo calls it directly",
                file=sys.stderr,
                flush=True,
            )
        if args.sip_webhook_url:
            print(
                f"  SIP: POST {server.base_url}/realtime/emulator/sip_calls rings the line; "
                f"the webhook goes to {args.sip_webhook_url}",
                file=sys.stderr,
                flush=True,
            )

    try:
        driver.run_server(config, host=args.host, port=args.port, on_ready=ready)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(
            f"rtproto serve: error: cannot listen on {args.host}:{args.port}: {reason}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C during the shutdown
        return 130
    print("rtproto serve: stopped", file=sys.stderr)
    return 0


COMMAND = Command(
    name="serve",
    help="run the local Realtime emulator",
    description="Serve the OpenAI Realtime protocol on a local WebSocket, for any client or "
    "SDK to test against (see docs/serve.md).",
    add_arguments=add_arguments,
    run=run,
)
