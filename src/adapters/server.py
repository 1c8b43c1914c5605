"""The emulator's server driver: a TCP listener on anyio around one pure core per connection.

``async with serve(...) as server`` listens on ``host:port`` (``port=0``: any free port, read
``server.port``) and serves every accepted connection in its own task: a read loop that feeds
a :class:`~rtproto.wire.server.ServerWebSocket` and writes what it produced under the
connection's lock, and a timer task for its keepalive, pacing and expiry timers. The core
decides everything; this module only moves bytes, sleeps and logs
(``logging.getLogger("rtproto.server")``, one line per record, ``describe()``).

Backpressure: a connection writes what a call produced before it reads again, and the core
holds client frames back once ``output_high_water`` bytes wait (``backlogged``). A client
that does not read therefore stops the server reading from it: memory per connection stays at
one read plus one batch of output, and TCP flow control slows the client down. A write that
makes no progress for ``write_timeout`` seconds drops the connection.

Shutdown: leaving ``serve`` stops accepting, closes every open session with 1001 (going away)
and waits up to ``shutdown_timeout`` seconds for the close handshakes before cutting the rest.

:func:`start_in_thread` runs the same server on its own event loop in a background thread
(tests, the CLI, applications without an event loop); :func:`run_server` is the CLI's
foreground loop with clean shutdown on SIGINT/SIGTERM.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.resources
import json
import logging
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import anyio.from_thread

from rtproto.errors import RtprotoError
from rtproto.server import (
    ClientError,
    Pace,
    Responder,
    ScriptResponder,
    ServerOptions,
    ServerSession,
    SessionExpired,
    SessionStarted,
    TurnEnded,
    pcm24k_from_wav,
    script_audio_files,
)
from rtproto.server.core import merge_session_configs
from rtproto.server.sip import CALL_NOT_FOUND, SidebandRefused, SipCall, SipCallState
from rtproto.server.validate import Reject, check_session_config
from rtproto.wire.server import (
    Closed,
    ConnectRequest,
    FaultInjected,
    LogRecord,
    Refused,
    Rejected,
    ServerState,
    ServerWebSocket,
    ServerWebSocketOptions,
    mask_key,
)
from rtproto.wire.signalling import (
    DEFAULT_SECRET_SECONDS,
    CallControlRequest,
    CallerRequest,
    CallOffer,
    ClientSecretExchange,
    ClientSecretRequest,
    EphemeralKeys,
    SignallingError,
    SipCallRequest,
    build_response,
    call_created_response,
    client_secret_response,
    error_response,
)
from rtproto.wire.url import split_url

from ._core import ConnectError
from ._http import round_trip
from ._sip_server import SipLine, deliver_webhook, run_line

__all__ = [
    "RunningServer",
    "ScriptError",
    "Server",
    "ServerConfig",
    "ServerStats",
    "demo_page",
    "load_script",
    "run_server",
    "serve",
    "start_in_thread",
]

log = logging.getLogger("rtproto.server")

#: Log records worth a line at INFO (one per session, turn, error, fault and close); the
#: others go to DEBUG.
_INFO_RECORDS = (
    SessionStarted,
    TurnEnded,
    ClientError,
    SessionExpired,
    Refused,
    Rejected,
    Closed,
    FaultInjected,
)
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
)
_WRITE_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, *_TRANSPORT_ERRORS)
#: The close reason of the 1001 sent to every session when the server shuts down.
SHUTDOWN_REASON = "The server is shutting down."


@dataclass(frozen=True)
class ServerConfig:
    """What the emulator serves and how (every field has a default; faults are all off).

    ``pace``, ``max_duration``, ``api_key`` and the fault fields replace the matching fields
    of ``session`` and ``websocket``, which carry everything else (limits, keepalive, seed,
    accepted models...).
    """

    #: ``fast``: a response's deltas all go out at once; ``realtime``: at playback speed.
    pace: Pace = "fast"
    #: Session length cap in seconds (then ``session_expired`` and close 1001); ``None``:
    #: the service's (60 minutes, 30 in the beta dialect).
    max_duration: float | None = None
    #: Accept only this key (``None``: any non-empty key). Never logged.
    api_key: str | None = field(default=None, repr=False)
    #: Makes each session's responder (one per connection: responders may keep state);
    #: ``None``: :class:`~rtproto.server.EchoResponder`. See :func:`load_script`.
    responder: Callable[[], Responder] | None = None
    #: The session template (model and dialect come from each request).
    session: ServerOptions = field(default_factory=ServerOptions)
    #: The connection template (limits, keepalive, accepted models, beta).
    websocket: ServerWebSocketOptions = field(default_factory=ServerWebSocketOptions)
    #: Fault: drop the TCP connection without a close frame after this many server messages.
    drop_after: int | None = None
    #: Fault: close every session with 1001 this many seconds after its upgrade.
    close_1001_after: float | None = None
    #: Fault: follow every server message with an event of an unknown type.
    unknown_events: bool = False
    #: Fault: send every message in several fragments, with PINGs between the fragments.
    fragment: bool = False
    #: Fault: write the answer to the upgrade request one byte at a time.
    slow_handshake: bool = False
    #: Seconds between the bytes of a ``slow_handshake``.
    slow_handshake_delay: float = 0.1
    #: Seconds one write may make no progress before the connection is dropped.
    write_timeout: float = 30.0
    #: Seconds ``serve`` waits on exit for the sessions' close handshakes.
    shutdown_timeout: float = 5.0
    #: Bytes asked of a socket per read.
    read_size: int = 65536
    #: Upstream mode: the API root of a real service (``https://api.openai.com/v1``).
    #: ``POST .../client_secrets`` is then forwarded to ``<upstream>/realtime/client_secrets``
    #: with ``upstream_key``, and the answer tells the page to post its SDP offer to
    #: ``<upstream>/realtime/calls`` (field ``calls_url``): the browser then talks to the
    #: service directly. Everything else is still served by the emulator.
    upstream: str | None = None
    #: The real key used for the upstream (never logged, never sent to a browser).
    upstream_key: str | None = field(default=None, repr=False)
    #: Seconds the upstream may take to answer.
    upstream_timeout: float = 30.0
    #: Seconds a WebRTC call may take to open its ``oai-events`` data channel after the SDP
    #: answer; a peer that has not by then is hung up on.
    call_open_timeout: float = 30.0
    #: Where ``POST .../emulator/sip_calls`` sends the incoming-call webhook (unless the
    #: request names another URL), signed with ``sip_webhook_secret`` (never logged).
    #: :meth:`Server.place_sip_call` takes both as arguments instead.
    sip_webhook_url: str | None = None
    sip_webhook_secret: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.sip_webhook_url is not None:
            try:
                split_url(self.sip_webhook_url)
            except RtprotoError as exc:
                raise ValueError(f"bad sip_webhook_url: {exc}") from None
            if not self.sip_webhook_url.lower().startswith(("http://", "https://")):
                raise ValueError("sip_webhook_url must be an http(s) URL")
        if self.sip_webhook_secret is not None and not self.sip_webhook_secret:
            raise ValueError("sip_webhook_secret must not be empty")
        if self.upstream is not None:
            if not self.upstream_key:
                raise ValueError("upstream needs upstream_key (the real API key)")
            try:
                tls, _, _, _ = split_url(self.upstream)
            except RtprotoError as exc:
                raise ValueError(f"bad upstream URL: {exc}") from None
            if tls is None or not self.upstream.lower().startswith(("http://", "https://")):
                raise ValueError("upstream must be an http(s) URL like https://api.openai.com/v1")
        for name in (
            "write_timeout",
            "shutdown_timeout",
            "slow_handshake_delay",
            "upstream_timeout",
            "call_open_timeout",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds")
        if isinstance(self.read_size, bool) or not isinstance(self.read_size, int):
            raise ValueError("read_size must be an int")
        if self.read_size < 1:
            raise ValueError("read_size must be >= 1")
        # the templates validate the rest
        self.session_options()
        self.websocket_options()

    def session_options(self) -> ServerOptions:
        """The session template with this config's ``pace`` and ``max_duration``."""
        return replace(self.session, pace=self.pace, max_duration=self.max_duration)

    def websocket_options(self) -> ServerWebSocketOptions:
        """The connection options with this config's key and faults."""
        ws = self.websocket
        try:
            return replace(
                ws,
                session=self.session_options(),
                api_key=self.api_key if self.api_key is not None else ws.api_key,
                drop_after=self.drop_after if self.drop_after is not None else ws.drop_after,
                close_1001_after=(
                    self.close_1001_after
                    if self.close_1001_after is not None
                    else ws.close_1001_after
                ),
                unknown_events=self.unknown_events or ws.unknown_events,
                fragment=self.fragment or ws.fragment,
                index_page=ws.index_page if ws.index_page is not None else demo_page(),
            )
        except RtprotoError as exc:
            raise ValueError(str(exc)) from None


@functools.lru_cache(maxsize=1)
def demo_page() -> bytes | None:
    """The browser demo served at ``GET /`` (package data ``data/demo.html``), if shipped."""
    try:
        return (importlib.resources.files("rtproto") / "data" / "demo.html").read_bytes()
    except (OSError, ModuleNotFoundError):
        return None


@dataclass(frozen=True)
class ServerStats:
    """Counters of a running :class:`Server`."""

    #: Connections open now (handshake included).
    connections: int
    #: Connections accepted so far.
    connections_total: int
    #: Bytes read from clients.
    bytes_received: int
    #: Bytes written to clients.
    bytes_sent: int
    #: The largest single write (one batch of output): the memory bound per connection.
    largest_write: int


class ScriptError(ValueError):
    """A responder script (or a WAV file it names) cannot be used; the message says why."""


def load_script(path: str | Path) -> Callable[[], Responder]:
    """Read a responder script and the WAV files it names; return a responder factory.

    The JSON is read and checked here (file I/O belongs to drivers), the WAV files are read
    relative to the script's folder and converted to PCM16 24 kHz
    (:func:`~rtproto.server.pcm24k_from_wav`); each call of the factory builds a fresh
    :class:`~rtproto.server.ScriptResponder` from the loaded data, so every session plays
    the script from its first turn.

    Raises:
        ScriptError: unreadable file, invalid JSON or script, unreadable WAV.
    """
    script_path = Path(path)
    try:
        text = script_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScriptError(f"cannot read the script {str(script_path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ScriptError(f"the script {str(script_path)!r} is not UTF-8 text") from None
    try:
        data: Any = json.loads(text)
    except ValueError as exc:
        raise ScriptError(f"the script {str(script_path)!r} is not JSON: {exc}") from None
    try:
        names = script_audio_files(data)
    except ValueError as exc:
        raise ScriptError(f"{script_path}: {exc}") from None
    audio: dict[str, bytes] = {}
    for name in names:
        wav = script_path.parent / name
        try:
            audio[name] = pcm24k_from_wav(wav.read_bytes())
        except OSError as exc:
            raise ScriptError(f"cannot read the audio file {str(wav)!r}: {exc.strerror}") from None
        except ValueError as exc:
            raise ScriptError(f"{wav}: {exc}") from None
    try:
        ScriptResponder.from_script(data, audio)
    except ValueError as exc:
        raise ScriptError(f"{script_path}: {exc}") from None

    def make() -> Responder:
        return ScriptResponder.from_script(data, audio)

    return make


class _Signal:
    """Wakes every task waiting for the next :meth:`set` (an ``anyio.Event`` that re-arms)."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        if self._event.is_set():
            self._event = anyio.Event()
        await self._event.wait()


class Server:
    """A listening emulator (from :func:`serve`). ``port`` is the bound port."""

    def __init__(self, listener: anyio.abc.Listener[Any], config: ServerConfig, host: str) -> None:
        self.config = config
        self.host = host
        self._listener = listener
        self._session_template = config.session_options()
        self._ws_options = config.websocket_options()
        self._connections: set[_Connection] = set()
        self._number = 0
        self._received = 0
        self._sent = 0
        self._largest_write = 0
        self._stop = anyio.Event()
        self._idle = _Signal()
        #: Ephemeral keys minted by ``POST /v1/realtime/client_secrets``.
        self.ephemeral_keys = EphemeralKeys()
        self._calls: dict[str, Any] = {}
        self._sip_calls: dict[str, SipLine] = {}
        self._task_group: anyio.abc.TaskGroup | None = None
        sockname = listener.extra(anyio.abc.SocketAttribute.local_address)
        self.port: int = int(sockname[1])

    @property
    def url(self) -> str:
        """The WebSocket endpoint, without query (add ``?model=gpt-realtime``)."""
        return f"ws://{self._authority()}{self._ws_options.path}"

    @property
    def base_url(self) -> str:
        """The API root for SDKs (``base_url`` / ``OPENAI_BASE_URL``): ``http://host:port/v1``."""
        root = self._ws_options.path.rsplit("/", 1)[0]
        return f"http://{self._authority()}{root}"

    def _authority(self) -> str:
        host = self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{self.port}"

    def stats(self) -> ServerStats:
        """The server's counters now."""
        return ServerStats(
            connections=len(self._connections),
            connections_total=self._number,
            bytes_received=self._received,
            bytes_sent=self._sent,
            largest_write=self._largest_write,
        )

    @property
    def connections(self) -> tuple[ServerWebSocket, ...]:
        """The protocol objects of the open connections (read-only use)."""
        return tuple(c.ws for c in self._connections)

    async def serve_forever(self) -> None:
        """Wait until :meth:`close` is called (connections are served meanwhile)."""
        await self._stop.wait()

    def close(self) -> None:
        """Make :meth:`serve_forever` return (leaving ``serve`` then shuts down)."""
        self._stop.set()

    # ----------------------------------------------------------------------- internals --

    def _new_session(self, model: str | None, **changes: Any) -> ServerSession:
        """A session from the template: its own responder and the wall clock, ``model``
        (the template's when None) and ``changes`` to the options."""
        template = self._session_template
        factory = self.config.responder
        return ServerSession(
            replace(
                template,
                model=model or template.model,
                responder=factory() if factory is not None else template.responder,
                wall_clock_offset=time.time() - anyio.current_time(),
                **changes,
            )
        )

    def _make_session(
        self, request: ConnectRequest, conn: _Connection | None = None
    ) -> ServerSession:
        if request.call_id is not None:  # a sideband socket: the SIP call's running session
            line = self._sip_calls.get(request.call_id)
            if line is None:
                if request.call_id in self._calls:
                    raise SidebandRefused(
                        "unsupported_call",
                        "The emulator attaches sideband sockets to SIP calls, not to WebRTC calls.",
                    )
                raise SidebandRefused("call_id_not_found", CALL_NOT_FOUND)
            line.call.attach()
            session = line.session
            assert session is not None  # (made when the call was accepted)
            session.messages_to_send()  # what it said with no socket attached: nobody heard
            if conn is not None:  # the call's events go to this connection from now on
                line.connection = conn
                conn.sip_line = line
            return session
        return self._new_session(request.model, dialect=request.dialect)

    # ------------------------------------------------------------------- SIP calls --

    @property
    def sip_calls(self) -> dict[str, SipLine]:
        """The SIP calls ringing or running now, by call id."""
        return dict(self._sip_calls)

    async def place_sip_call(
        self,
        webhook_url: str,
        secret: str | bytes,
        *,
        caller: str = "sip:+14155550100@pstn.example.com",
        callee: str = "sip:+18005550199@sip.api.openai.com",
        audio: bytes | None = None,
        hang_up_after: float | None = None,
        ring_timeout: float = 30.0,
        webhook_timeout: float = 10.0,
    ) -> SipLine:
        """Ring the emulator's SIP line: POST a signed ``realtime.call.incoming`` webhook to
        ``webhook_url``, as the service does when its SIP trunk gets an INVITE.

        The application then accepts, rejects (or ignores) the call with the call control
        endpoints of this server (``base_url + "/realtime/calls/{call_id}/accept"``...) and
        drives it over sideband sockets (``url + "?call_id=..."``, one at a time). Once the
        call is accepted, its session runs; the caller waits half a second, says ``audio``
        (PCM16 24 kHz mono; default: the demo's "hello") on the line in real time, then
        stays silent (:meth:`SipLine.press` presses keys); the model's audio is what
        :attr:`SipLine.heard` holds.

        Args:
            webhook_url: the application's webhook endpoint (``http://`` or ``https://``).
            secret: the webhook signing secret (``whsec_...``, or raw).
            caller, callee: the INVITE's ``From`` and ``To``.
            hang_up_after: the caller hangs up this many seconds after their audio ends
                (``None``: never; the application hangs up).
            ring_timeout: the call ends unanswered ("no answer") after this many seconds.
            webhook_timeout: seconds for the application to answer the webhook (one
                attempt; the answer is :attr:`SipLine.webhook_status`).

        Returns the line as soon as the webhook was answered (or failed).
        """
        if audio is None:
            from .call import _demo_wav
            from .wavfile import read_pcm24k

            audio = read_pcm24k(_demo_wav())
        call_id = "rtc_" + os.urandom(16).hex()
        call = SipCall(
            call_id,
            caller=caller,
            callee=callee,
            sip_call_id=str(uuid.uuid4()),
            created_at=int(time.time()),
        )
        line = SipLine(call, bytes(audio), hang_up_after)
        self._sip_calls[call_id] = line
        assert self._task_group is not None
        self._task_group.start_soon(self._ring, line, ring_timeout)
        await deliver_webhook(line, webhook_url, secret, webhook_timeout)
        return line

    async def _ring_line(self, conn: _Connection, request: SipCallRequest, server: str) -> None:
        """Answer ``POST .../emulator/sip_calls``: place a call, say how the webhook went."""
        url = request.webhook_url or self.config.sip_webhook_url
        secret = self.config.sip_webhook_secret
        if url is None or secret is None:
            await conn.respond(
                error_response(
                    400,
                    "The emulator has no SIP webhook: start it with --sip-webhook-url and the"
                    " secret in RTPROTO_SIP_WEBHOOK_SECRET (ServerConfig.sip_webhook_url and"
                    " sip_webhook_secret).",
                    "sip_not_configured",
                    server=server,
                ),
                400,
            )
            return
        options: dict[str, Any] = {
            name: value
            for name, value in (
                ("caller", request.caller),
                ("callee", request.callee),
                ("audio", request.audio),
                ("ring_timeout", request.ring_timeout),
            )
            if value is not None
        }
        line = await self.place_sip_call(
            url, secret, hang_up_after=request.hang_up_after, **options
        )
        body = json.dumps(
            {
                "call_id": line.call_id,
                "webhook_status": line.webhook_status,
                "webhook_error": line.webhook_error,
            }
        ).encode("utf-8")
        await conn.respond(build_response(200, body, "application/json", server=server), 200)

    def _caller(self, request: CallerRequest, server: str) -> tuple[int, bytes]:
        """The caller of a SIP call presses keys or hangs up (``.../sip_calls/{id}/...``)."""
        line = self._sip_calls.get(request.call_id)
        if line is None:
            return 404, error_response(404, CALL_NOT_FOUND, "call_id_not_found", server=server)
        if request.action == "hangup":
            self._end_sip_call(line, "caller hung up")
        elif line.call.state is not SipCallState.ACCEPTED:
            return 400, error_response(
                400,
                "The caller can press keys once the call is accepted.",
                "call_not_accepted",
                server=server,
            )
        else:
            line.press(request.digits or "")
        return 200, build_response(200, b"", "application/json", server=server)

    async def _ring(self, line: SipLine, timeout: float) -> None:
        with anyio.move_on_after(timeout):
            while line.call.state is SipCallState.RINGING:
                await anyio.sleep(0.05)
        if line.call.state is SipCallState.RINGING:
            self._end_sip_call(line, "no answer")

    def _end_sip_call(self, line: SipLine, reason: str) -> None:
        """End a SIP call (idempotent): forget it, close its sideband socket with 1000."""
        line.call.end(reason)
        self._sip_calls.pop(line.call_id, None)
        conn = line.connection
        if conn is not None and not conn.ws.closed and self._task_group is not None:
            self._task_group.start_soon(conn.shutdown, 1000, "")
        line.ended()

    def _start_sip_session(self, line: SipLine) -> None:
        """The call was accepted: its session starts, with the accepted configuration, and
        the caller is on the line."""
        config = line.call.config or {}
        model = config.get("model")
        session = self._new_session(
            model if isinstance(model, str) else None,
            profile="sip",
            initial_session=config or None,
        )
        session.connection_made(anyio.current_time())
        session.messages_to_send()  # (session.created: no socket yet; each one gets its own)
        line.session = session
        assert self._task_group is not None
        self._task_group.start_soon(run_line, line, self._end_sip_call)

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        self._number += 1
        conn = _Connection(self, stream, self._number)
        self._connections.add(conn)
        try:
            await conn.run()
        except Exception:  # one connection's bug must not stop the server
            log.exception("#%d: connection failed", conn.number)
        finally:
            self._connections.discard(conn)
            self._idle.set()
            line = conn.sip_line
            if line is not None and line.connection is conn:  # the call runs on without it
                line.connection = None
                line.call.detach()
            with anyio.CancelScope(shield=True):
                await conn.close_transport()

    @property
    def calls(self) -> dict[str, Any]:
        """The WebRTC calls running now, by call id (``WebRTCCall`` objects)."""
        return dict(self._calls)

    async def _answer_rest(self, conn: _Connection) -> None:
        """Answer ``POST .../client_secrets`` or ``POST .../calls`` (WebRTC)."""
        request = conn.ws.http_request
        assert request is not None
        server = f"rtproto/{_version()}"
        key = request.api_key
        now = time.time()
        expected = self.config.api_key
        # minting a key, controlling a call and ringing the SIP line need a standard key
        standard_only = isinstance(
            request, (ClientSecretRequest, CallControlRequest, SipCallRequest, CallerRequest)
        )
        if standard_only or not key.startswith("ek_"):
            wrong = key.startswith("ek_") or (expected is not None and key != expected)
            if wrong:
                await conn.respond(
                    error_response(
                        401,
                        f"Incorrect API key provided: {mask_key(key)}. You can find your API "
                        "key at https://platform.openai.com/account/api-keys.",
                        "invalid_api_key",
                        server=server,
                    ),
                    401,
                )
                return
        elif not self.ephemeral_keys.check(key, now):
            await conn.respond(
                error_response(
                    401,
                    "Invalid ephemeral key: unknown or expired.",
                    "invalid_api_key",
                    server=server,
                ),
                401,
            )
            return
        if isinstance(request, ClientSecretRequest):
            if self.config.upstream is not None:
                await self._upstream_secret(conn, request, server)
                return
            given = request.session
            if given is not None and given.get("type", "realtime") == "realtime":
                try:  # the service refuses a bad configuration when the key is minted
                    check_session_config(given)
                except Reject as exc:
                    await conn.respond(_rejected(exc, server), 400)
                    return
            await conn.respond(self._client_secret(request, now, server), 200)
            return
        if isinstance(request, CallControlRequest):
            status, answer = self._control_call(request, server)
            await conn.respond(answer, status)
            return
        if isinstance(request, SipCallRequest):
            await self._ring_line(conn, request, server)
            return
        if isinstance(request, CallerRequest):
            status, answer = self._caller(request, server)
            await conn.respond(answer, status)
            return
        await self._answer_call(conn, request, server)

    def _control_call(self, request: CallControlRequest, server: str) -> tuple[int, bytes]:
        """Accept, reject, refer or hang up a SIP call; hang up a WebRTC call."""
        line = self._sip_calls.get(request.call_id)
        if line is not None:
            answer = line.call.control(request.action, request.body)
            if line.call.state is SipCallState.ACCEPTED and line.session is None:
                self._start_sip_session(line)
            if line.call.state is SipCallState.ENDED:
                self._end_sip_call(line, line.call.end_reason or request.action)
            if answer.error is None:
                return 200, build_response(200, b"", "application/json", server=server)
            body = (json.dumps({"error": answer.error}, indent=4) + "\n").encode("utf-8")
            return answer.status, build_response(
                answer.status, body, "application/json", server=server
            )
        call = self._calls.get(request.call_id)
        if call is None:  # the service's answer for a call that ended or never was
            return 404, error_response(
                404,
                "No session found for the provided call_id",
                "call_id_not_found",
                server=server,
            )
        if request.action != "hangup":
            return 400, error_response(
                400,
                f"This is a WebRTC call: {request.action} is for SIP calls.",
                None,
                server=server,
            )
        call.close()
        return 200, build_response(200, b"", "application/json", server=server)

    def _client_secret(self, request: ClientSecretRequest, now: float, server: str) -> bytes:
        value, expires_at = self.ephemeral_keys.mint(
            os.urandom(16), now, request.expires_after_seconds, request.session
        )
        given = request.session or {"type": "realtime"}
        kind = given.get("type", "realtime")
        session: dict[str, Any] = {
            "type": kind,
            "object": "realtime.session"
            if kind == "realtime"
            else "realtime.transcription_session",
            "id": "sess_" + os.urandom(11).hex(),
            **({"model": self._session_template.model} if kind == "realtime" else {}),
            "expires_at": 0,
            **{k: v for k, v in given.items() if k not in ("object", "id", "expires_at")},
        }
        return client_secret_response(value, expires_at, session, server=server)

    async def _upstream_secret(
        self, conn: _Connection, request: ClientSecretRequest, server: str
    ) -> None:
        """Upstream mode: mint the secret with the real service, add ``calls_url``."""
        upstream = self.config.upstream
        key = self.config.upstream_key
        assert upstream is not None and key is not None
        root = upstream.rstrip("/")
        seconds = request.expires_after_seconds
        try:
            secret = await round_trip(
                ClientSecretExchange(
                    api_key=key,
                    url=root + "/realtime/client_secrets",
                    session=request.session,
                    expires_after_seconds=None if seconds == DEFAULT_SECRET_SECONDS else seconds,
                ),
                timeout=self.config.upstream_timeout,
                what="the client secret request",
            )
        except SignallingError as exc:
            log.info("#%d upstream client secret: %s", conn.number, exc.message)
            status = exc.status or 502
            if exc.status and exc.error is not None:  # the upstream's own error, passed on
                body = json.dumps({"error": exc.error}, indent=4).encode("utf-8") + b"\n"
                await conn.respond(
                    build_response(status, body, "application/json", server=server), status
                )
            else:
                await conn.respond(
                    error_response(502, f"Upstream: {exc.message}"[:500], None, server=server),
                    502,
                )
            return
        except ConnectError as exc:
            log.info("#%d upstream client secret: %s", conn.number, exc)
            await conn.respond(
                error_response(502, f"Upstream: {exc}"[:500], None, server=server), 502
            )
            return
        log.info("#%d client secret minted by the upstream %s", conn.number, root)
        body = json.dumps(
            {
                "value": secret.value,
                "expires_at": secret.expires_at,
                "session": secret.session,
                "calls_url": root + "/realtime/calls",
            }
        ).encode("utf-8")
        await conn.respond(build_response(200, body, "application/json", server=server), 200)

    async def _answer_call(self, conn: _Connection, offer: CallOffer, server: str) -> None:
        import sniffio

        if sniffio.current_async_library() != "asyncio":
            await conn.respond(
                error_response(
                    501, "The WebRTC endpoint needs the asyncio backend.", None, server=server
                ),
                501,
            )
            return
        try:
            from ._webrtc_server import WebRTCCall
        except ImportError:
            await conn.respond(
                error_response(
                    501,
                    "WebRTC needs aiortc: pip install 'rtproto[webrtc]'.",
                    None,
                    server=server,
                ),
                501,
            )
            return
        # the session: the client secret's, with the offer's session field over it (spec 1.2)
        minted = (
            self.ephemeral_keys.session_of(offer.api_key)
            if offer.api_key.startswith("ek_")
            else None
        )
        if any(
            c is not None and c.get("type", "realtime") != "realtime"
            for c in (minted, offer.session)
        ):
            await conn.respond(
                error_response(
                    501,
                    "The emulator's WebRTC calls run realtime sessions, not transcription "
                    "sessions.",
                    None,
                    server=server,
                ),
                501,
            )
            return
        config = merge_session_configs(minted, offer.session)
        try:
            check_session_config(config)
        except Reject as exc:
            await conn.respond(_rejected(exc, server), 400)
            return
        model = offer.model  # ?model=, or the offer's session.model
        if model is None and isinstance(config.get("model"), str):
            model = config["model"] or None  # the secret's
        session = self._new_session(model, profile="webrtc", initial_session=config or None)
        call_id = "rtc_u1_" + os.urandom(16).hex()
        number = conn.number
        call = WebRTCCall(
            session,
            call_id,
            lambda record: _log_record(number, record),
            open_timeout=self.config.call_open_timeout,
        )
        try:
            answer = await call.answer(offer.sdp)
        except Exception as exc:  # aiortc rejects the offer: the client's fault
            await call.aclose()
            await conn.respond(
                error_response(
                    400, f"Invalid SDP offer: {exc}"[:500], "invalid_offer", server=server
                ),
                400,
            )
            return
        self._calls[call_id] = call
        assert self._task_group is not None
        self._task_group.start_soon(self._run_call, call)
        await conn.respond(call_created_response(answer, call_id, server=server), 201)

    async def _run_call(self, call: Any) -> None:
        try:
            await call.run()
        except Exception:  # one call's bug must not stop the server
            log.exception("call %s failed", call.call_id)
        finally:
            self._calls.pop(call.call_id, None)

    async def _shutdown(self) -> None:
        """Close every session with 1001 and wait for the handshakes (bounded)."""
        for call in list(self._calls.values()):
            call.close()
        for line in list(self._sip_calls.values()):
            line.call.end("the server shut down")
            self._sip_calls.pop(line.call_id, None)
            line.ended()
        with anyio.move_on_after(self.config.shutdown_timeout):
            async with anyio.create_task_group() as tg:
                for conn in list(self._connections):
                    tg.start_soon(conn.shutdown, 1001, SHUTDOWN_REASON)
            while self._connections:
                await self._idle.wait()


class _Connection:
    """One accepted socket: a read loop and a timer task around a ServerWebSocket."""

    def __init__(self, server: Server, stream: anyio.abc.SocketStream, number: int) -> None:
        self.server = server
        self.stream = stream
        self.number = number
        self.config = server.config
        self.ws = ServerWebSocket(
            server._ws_options,
            session_factory=lambda request: server._make_session(request, self),
        )
        self._lock = anyio.Lock()
        self._timer_changed = _Signal()
        self._done = anyio.Event()
        self._handshake_written = False
        #: The SIP call this connection is the sideband of.
        self.sip_line: SipLine | None = None
        try:
            peer = stream.extra(anyio.abc.SocketAttribute.remote_address)
            self._peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        except Exception:  # pragma: no cover - every IP socket has one
            self._peer = "?"

    async def run(self) -> None:
        log.debug("#%d: connection from %s", self.number, self._peer)
        self.ws.connection_made(anyio.current_time())
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._read_loop)
            tg.start_soon(self._timer_loop)
            await self._done.wait()
            tg.cancel_scope.cancel()
        if self.ws.http_request is not None:
            await self.server._answer_rest(self)

    async def respond(self, response: bytes, status: int) -> None:
        """Answer the connection's REST request and write it."""
        async with self._lock:
            self.ws.respond(response, status)
            await self._flush()

    async def shutdown(self, code: int, reason: str) -> None:
        async with self._lock:
            self.ws.close(anyio.current_time(), code, reason)
            await self._flush()
        self._timer_changed.set()
        self._check_done()

    async def close_transport(self) -> None:
        with contextlib.suppress(Exception):  # the socket is gone either way
            await self.stream.aclose()

    def _check_done(self) -> None:
        if self.ws.closed:
            self._done.set()

    async def _read_loop(self) -> None:
        ws = self.ws
        size = self.config.read_size
        while not ws.closed and ws.state is not ServerState.REQUEST:
            try:
                data = await self.stream.receive(size)
            except _TRANSPORT_ERRORS:
                data = b""
            self.server._received += len(data)
            async with self._lock:
                ws.receive_data(data, anyio.current_time())
                await self._flush()
                while ws.backlogged:
                    ws.resume(anyio.current_time())
                    await self._flush()
            self._timer_changed.set()
        self._done.set()

    async def _timer_loop(self) -> None:
        ws = self.ws
        while not ws.closed:
            deadline = ws.get_timer()
            if deadline is None:
                await self._timer_changed.wait()
                continue
            delay = deadline - anyio.current_time()
            if delay > 0:
                with anyio.move_on_after(delay):
                    await self._timer_changed.wait()
                continue
            async with self._lock:
                ws.handle_timer(anyio.current_time())
                await self._flush()
        self._done.set()

    async def _flush(self) -> None:
        """Write what the core produced (under the lock) and log its records."""
        ws = self.ws
        data = ws.data_to_send()
        self._log_records()
        if data:
            head = ws.handshake_response
            try:
                if self.config.slow_handshake and not self._handshake_written and head:
                    self._handshake_written = True
                    delay = self.config.slow_handshake_delay
                    for index in range(len(head)):
                        await self._write(data[index : index + 1])
                        await anyio.sleep(delay)
                    data = data[len(head) :]
                self._handshake_written = True
                if data:
                    await self._write(data)
            except _WRITE_ERRORS as exc:
                log.debug("#%d: write failed: %r", self.number, exc)
                ws.connection_lost(anyio.current_time())
                self._log_records()
        self._check_done()

    async def _write(self, data: bytes) -> None:
        server = self.server
        server._largest_write = max(server._largest_write, len(data))
        with anyio.fail_after(self.config.write_timeout):
            await self.stream.send(data)
        server._sent += len(data)

    def _log_records(self) -> None:
        record = self.ws.next_event()
        while record is not None:
            _log_record(self.number, record)
            record = self.ws.next_event()


def _rejected(exc: Reject, server: str) -> bytes:
    """A 400 with the error object the service sends for an invalid session configuration."""
    error = {
        "message": exc.message,
        "type": "invalid_request_error",
        "param": exc.param,
        "code": exc.code,
    }
    body = (json.dumps({"error": error}, indent=4) + "\n").encode("utf-8")
    return build_response(400, body, "application/json", server=server)


def _version() -> str:
    from rtproto import __version__

    return __version__


def _log_record(number: int, record: LogRecord) -> None:
    level = logging.INFO if isinstance(record, _INFO_RECORDS) else logging.DEBUG
    if log.isEnabledFor(level):
        log.log(level, "#%d %s", number, record.describe())


@asynccontextmanager
async def serve(
    host: str = "127.0.0.1", port: int = 0, options: ServerConfig | None = None
) -> AsyncIterator[Server]:
    """Listen on ``host:port`` and serve Realtime sessions until the block ends.

    Args:
        host: the address to bind (``127.0.0.1`` by default: the emulator has no TLS and
            accepts any key unless ``options.api_key`` is set).
        port: the port; ``0`` picks a free one (read ``server.port``).
        options: the server's configuration.

    Raises:
        OSError: the address cannot be bound.
    """
    config = options if options is not None else ServerConfig()
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    server = Server(listener, config, host)
    log.debug("listening on %s", server.url)
    async with anyio.create_task_group() as tg:
        server._task_group = tg
        accepting = anyio.CancelScope()
        stopped_accepting = anyio.Event()

        async def accept() -> None:
            try:
                with accepting:
                    await listener.serve(server._handle, task_group=tg)
            finally:
                stopped_accepting.set()

        tg.start_soon(accept)
        try:
            yield server
        finally:
            with anyio.CancelScope(shield=True):
                accepting.cancel()
                await stopped_accepting.wait()
                await listener.aclose()
                await server._shutdown()
            tg.cancel_scope.cancel()


class RunningServer:
    """A server running on its own event loop in a background thread (:func:`start_in_thread`).

    Use as a context manager, or call :meth:`stop` when done.
    """

    def __init__(
        self, server: Server, stack: ExitStack, portal: anyio.from_thread.BlockingPortal
    ) -> None:
        self.server = server
        self._stack = stack
        self._portal = portal
        #: The WebSocket endpoint (``ws://127.0.0.1:<port>/v1/realtime``).
        self.url = server.url
        #: The API root for SDKs (``http://127.0.0.1:<port>/v1``).
        self.base_url = server.base_url
        #: The WebSocket root for SDKs (``ws://127.0.0.1:<port>/v1``).
        self.websocket_base_url = server.base_url.replace("http://", "ws://", 1)
        self.host = server.host
        self.port = server.port

    def stats(self) -> ServerStats:
        """The server's counters (read from another thread: a snapshot)."""
        return self.server.stats()

    def place_sip_call(self, webhook_url: str, secret: str | bytes, **options: Any) -> SipLine:
        """:meth:`Server.place_sip_call` from this thread (blocks until the webhook was
        answered). Wait for the call's end with :meth:`wait_sip_call`."""
        return self._portal.call(
            functools.partial(self.server.place_sip_call, webhook_url, secret, **options)
        )

    def wait_sip_call(self, line: SipLine, timeout: float) -> str:
        """Block until the call ended (why), at most ``timeout`` seconds (``TimeoutError``)."""

        async def wait() -> str:
            with anyio.fail_after(timeout):
                return await line.wait_ended()

        return self._portal.call(wait)

    def stop(self) -> None:
        """Shut down cleanly (1001 to every session) and end the thread. Idempotent."""
        self._stack.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_in_thread(
    config: ServerConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    backend: str = "asyncio",
) -> RunningServer:
    """Start :func:`serve` on a new event loop (``backend``: asyncio or trio) in a thread.

    Returns once the server listens. Raises ``OSError`` when the address cannot be bound.
    """
    stack = ExitStack()
    try:
        portal = stack.enter_context(anyio.from_thread.start_blocking_portal(backend))
        server = stack.enter_context(portal.wrap_async_context_manager(serve(host, port, config)))
    except BaseException:
        stack.close()
        raise
    return RunningServer(server, stack, portal)


def run_server(
    config: ServerConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    on_ready: Callable[[Server], None] | None = None,
    backend: str = "asyncio",
) -> None:
    """Serve in the foreground until SIGINT or SIGTERM, then shut down cleanly.

    ``on_ready`` is called once the server listens (the CLI prints the URL there).
    """
    anyio.run(_run_server, config, host, port, on_ready, backend=backend)


async def _run_server(
    config: ServerConfig | None,
    host: str,
    port: int,
    on_ready: Callable[[Server], None] | None,
) -> None:
    async with serve(host, port, config) as server:
        if on_ready is not None:
            on_ready(server)
        async with anyio.create_task_group() as tg:

            async def stop_on_signal() -> None:
                try:
                    receiver = anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM)
                    signals = receiver.__enter__()
                except (NotImplementedError, ValueError, RuntimeError):
                    return  # not the main thread, or no signals here: KeyboardInterrupt only
                try:
                    async for signum in signals:
                        log.info("%s: shutting down", signal.Signals(signum).name)
                        server.close()
                        return
                finally:
                    receiver.__exit__(None, None, None)

            tg.start_soon(stop_on_signal)
            await server.serve_forever()
            tg.cancel_scope.cancel()
