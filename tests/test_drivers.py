"""The drivers against real, independent servers on 127.0.0.1.

One behavioural suite, run three times: the anyio driver on asyncio and on Trio, and the
blocking driver on threads. The servers are the ``websockets`` library, scripted per test,
and raw TCP servers for byte-level faults (see ``driver_fixtures``). Every fault must end in a
clear event or error within its timeout: never a hang, never an unbounded buffer.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import inspect
import json
import logging
import os
import ssl
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest
import trustme
from rtproto.adapters import (
    AsyncConnection,
    ConnectError,
    Reconnected,
    ReconnectFailed,
    Reconnecting,
    ReconnectPolicy,
    Replayed,
    SyncConnection,
    connect,
    connect_sync,
    exponential_backoff,
    replay_items,
)
from websockets.asyncio.server import ServerConnection

import rtproto
from rtproto import events as E
from rtproto import models as M
from rtproto.session import (
    AudioChunk,
    AudioInterrupted,
    ClientSession,
    ConnectionChange,
    ConnectionStatus,
    McpApprovalRequested,
    ProtocolWarning,
    ServerError,
    TurnDone,
)
from rtproto.wire import HandshakeRefused, HandshakeTimeout, WebSocketOptions

from .driver_fixtures import (
    Client,
    Handle,
    Record,
    ServerLoop,
    json_response,
    names,
    open_session,
    raw,
    raw_upgrade,
    read_client_frame,
    receive_until,
    scripted,
    server_frame,
)
from .samples import MCP_APPROVAL_ITEM
from .scripts import Server

pytestmark = pytest.mark.anyio

DRIVERS = ["asyncio", "trio", "threads"]
SECRET = "sk-test-SECRET-4c2f9e"


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def anyio_backend(driver: str) -> str:
    return "trio" if driver == "trio" else "asyncio"


@pytest.fixture
def client(driver: str) -> Iterator[Client]:
    yield Client(driver)
    # the thread driver leaves no thread behind, whatever the test did
    deadline = time.monotonic() + 2
    while _driver_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _driver_threads()


def _driver_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("rtproto-")]


@pytest.fixture(scope="module")
def loop() -> Iterator[ServerLoop]:
    server_loop = ServerLoop()
    yield server_loop
    server_loop.stop()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def disconnected(event: Any) -> bool:
    return isinstance(event, ConnectionChange) and event.status is ConnectionStatus.DISCONNECTED


def audio_delta(server: Server, response_id: str, item_id: str, pcm: bytes) -> str:
    return server.event(
        "response.output_audio.delta",
        response_id=response_id,
        item_id=item_id,
        output_index=0,
        content_index=0,
        delta=base64.b64encode(pcm).decode(),
    )


# ------------------------------------------------------------------------ a whole turn --


async def test_handshake_session_and_turn(client: Client, loop: ServerLoop) -> None:
    """Headers, session.created/update/updated, a text turn with audio, a clean close."""
    chunks = [bytes([n]) * 960 for n in range(3)]

    async def handler(ws: ServerConnection, record: Record, server: Server) -> None:
        await open_session(ws, record, server)
        await receive_until(ws, record, "response.create")
        await ws.send(server.response_created("resp_1"))
        for pcm in chunks:
            await ws.send(audio_delta(server, "resp_1", "item_A", pcm))
        await ws.send(server.response_done("resp_1"))
        await receive_until(ws, record, "input_audio_buffer.append")
        async for _ in ws:  # until the client closes
            pass

    with scripted(loop, handler) as srv:
        with anyio.fail_after(10):
            async with client.connect(srv.url, api_key=SECRET, model="gpt-realtime") as conn:
                seen = await conn.until(lambda e: isinstance(e, E.SessionUpdated))
                await conn.call("send_message", "Hello", previous_item_id="root")
                seen += await conn.until(lambda e: isinstance(e, TurnDone))
                await conn.call("send_audio", b"\x01\x00" * 480)
                assert conn.conn.session.usage.responses == 1
                await conn.close()
                seen += await conn.rest()
        await srv.record.wait_done()

    record = srv.record
    headers = record.headers[0]
    assert headers["Authorization"] == f"Bearer {SECRET}"
    assert "OpenAI-Beta" not in headers
    assert record.paths[0] == "/v1/realtime?model=gpt-realtime"
    update = record.received[0]
    assert update["type"] == "session.update"
    assert update["session"]["type"] == "realtime"
    assert record.types()[1:3] == ["conversation.item.create", "response.create"]
    assert record.received[1]["previous_item_id"] == "root"
    assert record.close_codes == [1000]
    statuses = [e.status for e in seen if isinstance(e, ConnectionChange)]
    assert statuses[0] is ConnectionStatus.CONNECTED or ConnectionStatus.CONNECTED in statuses
    audio = [e for e in seen if isinstance(e, AudioChunk)]
    assert [a.audio for a in audio] == chunks
    assert disconnected(seen[-1]) and seen[-1].code == 1000


async def test_interrupt_uses_the_driver_clock(client: Client, loop: ServerLoop) -> None:
    """interrupt() while audio plays: response.cancel and a truncate at whole ms, never past
    the audio received (1 s here), with the AudioInterrupted event."""

    async def handler(ws: ServerConnection, record: Record, server: Server) -> None:
        await open_session(ws, record, server)
        await ws.send(server.response_created("resp_1"))
        for _ in range(4):  # 4 x 250 ms of 24 kHz PCM16
            await ws.send(audio_delta(server, "resp_1", "item_A", bytes(12_000)))
        await receive_until(ws, record, "conversation.item.truncate")
        async for _ in ws:
            pass

    with scripted(loop, handler) as srv:
        with anyio.fail_after(10):
            async with client.connect(srv.url) as conn:
                chunks = 0
                while chunks < 4:
                    chunks += isinstance(await conn.next(), AudioChunk)
                await anyio.sleep(0.1)
                await conn.call("interrupt")
                seen = await conn.until(lambda e: isinstance(e, AudioInterrupted))
                await conn.close()
    types = srv.record.types()
    assert types.index("response.cancel") < types.index("conversation.item.truncate")
    truncate = srv.record.received[types.index("conversation.item.truncate")]
    assert truncate["item_id"] == "item_A"
    assert isinstance(truncate["audio_end_ms"], int)
    assert 50 <= truncate["audio_end_ms"] <= 1000
    assert seen[-1].truncated[0].received_ms == 1000


async def test_mcp_approval_round_trip(client: Client, loop: ServerLoop) -> None:
    """The approval request arrives once as McpApprovalRequested; send_mcp_response answers
    it through the driver, placed after the request."""

    async def handler(ws: ServerConnection, record: Record, server: Server) -> None:
        await open_session(ws, record, server)
        await ws.send(
            server.event("conversation.item.done", previous_item_id=None, item=MCP_APPROVAL_ITEM)
        )
        await receive_until(ws, record, "conversation.item.create")
        async for _ in ws:
            pass

    with scripted(loop, handler) as srv:
        with anyio.fail_after(10):
            async with client.connect(srv.url) as conn:
                seen = await conn.until(lambda e: isinstance(e, McpApprovalRequested))
                await conn.call("send_mcp_response", seen[-1].item, False, reason="no")
                await conn.close()
        await srv.record.wait_done()
    create = srv.record.received[srv.record.types().index("conversation.item.create")]
    assert create["previous_item_id"] == "mcpr_1"
    assert create["item"] == {
        "type": "mcp_approval_response",
        "approval_request_id": "mcpr_1",
        "approve": False,
        "reason": "no",
    }


async def test_add_image_reaches_the_server(client: Client, loop: ServerLoop) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(8)

    async def handler(ws: ServerConnection, record: Record, server: Server) -> None:
        await open_session(ws, record, server)
        await receive_until(ws, record, "conversation.item.create")
        async for _ in ws:
            pass

    with scripted(loop, handler) as srv:
        with anyio.fail_after(10):
            async with client.connect(srv.url) as conn:
                # (closing before the server's session.updated went out would fail its send)
                await conn.until(lambda e: isinstance(e, E.SessionUpdated))
                await conn.call("add_image", png, detail="high", trigger_response=False)
                await conn.close()
        await srv.record.wait_done()
    create = srv.record.received[srv.record.types().index("conversation.item.create")]
    assert create["item"]["content"] == [
        {
            "type": "input_image",
            "image_url": "data:image/png;base64," + base64.b64encode(png).decode(),
            "detail": "high",
        }
    ]
    assert "response.create" not in srv.record.types()


async def test_api_key_from_env_never_shown(
    client: Client,
    loop: ServerLoop,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """OPENAI_API_KEY is used, and appears in no repr, log record or error message."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    caplog.set_level(logging.DEBUG)

    async def handler(ws: ServerConnection, record: Record, server: Server) -> None:
        await open_session(ws, record, server)
        async for _ in ws:
            pass

    shown: list[str] = []
    with scripted(loop, handler) as srv:
        with anyio.fail_after(10):
            async with client.connect(srv.url, api_key=None) as conn:
                await conn.until(lambda e: isinstance(e, E.SessionUpdated))
                shown += [repr(conn.conn), str(conn.conn)]
                await conn.close()
                await conn.rest()
    assert srv.record.headers[0]["Authorization"] == f"Bearer {SECRET}"

    def refuse(ws: ServerConnection, request: Any) -> Any:
        return json_response(401, "Unauthorized", {"error": {"message": "bad key"}})

    with (
        scripted(loop, handler, process_request=refuse) as srv,
        pytest.raises(HandshakeRefused) as refused,
    ):
        await client.open(srv.url, api_key=None)
    shown += [str(refused.value), repr(refused.value)]
    # every log record but the test server's own (websockets logs the headers it received)
    shown += [r.getMessage() for r in caplog.records if not r.name.startswith("websockets")]
    assert any(r.name.startswith("rtproto") for r in caplog.records)
    shown += [repr(WebSocketOptions(url=srv.url, api_key=SECRET))]
    assert not [text for text in shown if SECRET in text]


async def _serve_forever(ws: ServerConnection, record: Record, server: Server) -> None:
    await open_session(ws, record, server)
    async for _ in ws:
        pass


async def _count_connections(
    connections: list[int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    connections.append(1)
    writer.transport.abort()


async def test_api_key_callable_errors_at_connect(client: Client, loop: ServerLoop) -> None:
    """A key function that raises: its own exception from connect; one that returns no
    non-empty str: LocalProtocolError naming the type, never the value. Both before any
    I/O (the function is called before the TCP connect)."""
    connections: list[int] = []

    def fail() -> str:
        raise RuntimeError("the token service is down")

    with raw(loop, functools.partial(_count_connections, connections)) as srv:
        with anyio.fail_after(10):
            with pytest.raises(RuntimeError, match="token service is down"):
                await client.open(srv.url, api_key=fail)
            with pytest.raises(rtproto.LocalProtocolError, match="empty str"):
                await client.open(srv.url, api_key=lambda: "")
            for value, kind in ((42, "int"), (None, "NoneType"), (b"ek_bytes", "bytes")):
                with pytest.raises(rtproto.LocalProtocolError, match=kind) as bad:
                    await client.open(srv.url, api_key=lambda value=value: value)
                assert "ek_bytes" not in str(bad.value)
            with pytest.raises(rtproto.LocalProtocolError, match="header cannot carry"):
                await client.open(srv.url, api_key=lambda: "ek_a\r\nX-Injected: 1")
            if client.threaded:

                async def mint() -> str:
                    return "ek_async"

                # an async function is refused by connect_sync itself; a sync one that
                # returns a coroutine when it is called (the coroutine is closed, unawaited)
                with pytest.raises(rtproto.LocalProtocolError, match="without awaiting"):
                    connect_sync(srv.url, api_key=mint)
                returned: list[Any] = []

                def returns_a_coroutine() -> Any:
                    returned.append(mint())
                    return returned[-1]

                with pytest.raises(rtproto.LocalProtocolError, match="coroutine"):
                    await client.open(srv.url, api_key=returns_a_coroutine)
                assert inspect.getcoroutinestate(returned[0]) == inspect.CORO_CLOSED
    assert connections == []


async def test_api_key_callable_sync_and_async(client: Client, loop: ServerLoop) -> None:
    """The async driver takes a sync function, an async one, and a sync one returning an
    awaitable (awaited); the thread driver a sync one. The key is fetched at connect time,
    not when connect() is called."""
    calls: list[str] = []

    def sync_key() -> str:
        calls.append("sync")
        return "ek_sync"

    async def async_key() -> str:
        await anyio.sleep(0)
        calls.append("async")
        return "ek_async"

    functions: list[Callable[[], Any]] = [sync_key]
    if not client.threaded:
        functions += [async_key, lambda: async_key()]
    with scripted(loop, _serve_forever) as srv:
        with anyio.fail_after(10):
            for function in functions:
                async with client.connect(srv.url, api_key=function) as conn:
                    await conn.until(lambda e: isinstance(e, E.SessionUpdated))
                    await conn.close()
    expected = ["ek_sync"] if client.threaded else ["ek_sync", "ek_async", "ek_async"]
    assert [h["Authorization"] for h in srv.record.headers] == [f"Bearer {k}" for k in expected]
    assert calls == [k.removeprefix("ek_") for k in expected]
    calls.clear()
    connect_sync(srv.url, api_key=sync_key)
    connect(srv.url, api_key=async_key)
    assert calls == []  # planned, not called


async def test_subprotocol_auth_takes_only_ek_keys(
    client: Client, loop: ServerLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Browser-style auth (the key in Sec-WebSocket-Protocol) refuses a key that is not an
    ek_ client secret, whether given, from OPENAI_API_KEY or from a key function, before any
    I/O and without showing it; an explicit override lets it through."""
    browser = WebSocketOptions(subprotocol_auth=True)
    connections: list[int] = []
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with raw(loop, functools.partial(_count_connections, connections)) as srv:
        with anyio.fail_after(10):
            for key in (SECRET, None, lambda: SECRET):
                with pytest.raises(rtproto.LocalProtocolError, match="ek_") as refused:
                    await client.open(srv.url, api_key=key, ws_options=browser)
                assert SECRET not in str(refused.value)
    assert connections == []

    with scripted(loop, _serve_forever) as srv:
        with anyio.fail_after(10):
            for key, allow in (
                ("ek_test_given", False),
                (lambda: "ek_test_called", False),
                (SECRET, True),
                (lambda: SECRET, True),
            ):
                async with client.connect(
                    srv.url,
                    api_key=key,
                    ws_options=browser,
                    dangerously_allow_api_key_in_subprotocol=allow,
                ) as conn:
                    await conn.until(lambda e: isinstance(e, E.SessionUpdated))
                    await conn.close()
    offered = [h["Sec-WebSocket-Protocol"] for h in srv.record.headers]
    assert [p.split(", ")[1] for p in offered] == [
        f"openai-insecure-api-key.{k}" for k in ("ek_test_given", "ek_test_called", SECRET, SECRET)
    ]
    assert not [h for h in srv.record.headers if "Authorization" in h]


async def test_tls_with_trusted_ca(client: Client, loop: ServerLoop, ca: trustme.CA) -> None:
    """wss:// with a certificate from a test CA; the default context (system CAs) rejects it."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    async def handler(ws: ServerConnection, record: Record, server: Server) -> None:
        await open_session(ws, record, server)
        await ws.send(server.event("rate_limits.updated", rate_limits=[]))
        async for _ in ws:
            pass

    with scripted(loop, handler, ssl_context=server_context) as srv:
        assert srv.url.startswith("wss://")
        with anyio.fail_after(10):
            async with client.connect(srv.url, ssl_context=client_context) as conn:
                seen = await conn.until(lambda e: isinstance(e, E.RateLimitsUpdated))
                await conn.close()
                seen += await conn.rest()
            assert isinstance(seen[-1], ConnectionChange) and seen[-1].code == 1000
            with pytest.raises(ConnectError) as failed:
                await client.open(srv.url)  # system CAs: verification is on by default
            assert isinstance(failed.value.__cause__, ssl.SSLError | OSError)


# ------------------------------------------------------------------------------ faults --


async def test_drop_mid_response(client: Client, loop: ServerLoop) -> None:
    """TCP dropped without a close frame mid-response: ConnectionChange(1006), clean end,
    then sending raises ConnectionClosed."""

    async def handler(ws: ServerConnection, record: Record, server: Server) -> None:
        await open_session(ws, record, server)
        await ws.send(server.response_created("resp_1"))
        await ws.send(audio_delta(server, "resp_1", "item_A", b"\x00" * 4800))
        await asyncio.sleep(0.05)
        ws.transport.abort()

    with scripted(loop, handler) as srv:
        with anyio.fail_after(10):
            async with client.connect(srv.url) as conn:
                seen = await conn.rest()
                assert isinstance(seen[-2], AudioChunk) or AudioChunk in map(type, seen)
                last = seen[-1]
                assert disconnected(last) and last.code == 1006, names(seen)
                assert await conn.next() is None
                with pytest.raises(rtproto.ConnectionClosed) as closed:
                    await conn.call("send_message", "anyone there?")
                assert closed.value.code == 1006


async def test_error_then_close_1001(client: Client, loop: ServerLoop) -> None:
    """An error event then close 1001 with a reason: ServerError, then ConnectionChange."""
    reason = "Your session hit the maximum duration of 60 minutes."

    async def handler(ws: ServerConnection, record: Record, server: Server) -> None:
        await open_session(ws, record, server)
        error = {
            "type": "invalid_request_error",
            "code": "session_expired",
            "message": reason,
            "param": None,
            "event_id": None,
        }
        await ws.send(server.event("error", error=error))
        await ws.close(1001, reason)

    with scripted(loop, handler) as srv:
        with anyio.fail_after(10):
            async with client.connect(srv.url) as conn:
                seen = await conn.rest()
    errors = [e for e in seen if isinstance(e, ServerError)]
    assert errors and errors[0].event.error.code == "session_expired"
    assert seen.index(errors[0]) < len(seen) - 1
    last = seen[-1]
    assert disconnected(last) and last.code == 1001 and last.reason == reason
    assert srv.record.close_codes == [1001]


async def test_invalid_key_error_and_close_3000(client: Client, loop: ServerLoop) -> None:
    """The service's answer to a bad key: upgrade, error, close 3000 at once. connect()
    succeeds, the app reads the error and the code; no reconnect (3000 is final)."""
    message = "Incorrect API key provided: sk-abc***xyz."

    async def handler(ws: ServerConnection, record: Record, server: Server) -> None:
        error = {
            "type": "invalid_request_error",
            "code": "invalid_api_key",
            "message": message,
            "param": None,
            "event_id": None,
        }
        await ws.send(server.event("error", error=error))
        await ws.close(3000, "invalid_request_error.invalid_api_key")

    policy = ReconnectPolicy(backoff=lambda attempt: 0.01)
    with scripted(loop, handler) as srv:
        with anyio.fail_after(10):
            async with client.connect(srv.url, reconnect=policy) as conn:
                seen = await conn.rest()
    errors = [e for e in seen if isinstance(e, ServerError)]
    assert errors and errors[0].event.error.message == message
    assert disconnected(seen[-1]) and seen[-1].code == 3000
    assert seen[-1].reason == "invalid_request_error.invalid_api_key"
    assert not [e for e in seen if isinstance(e, Reconnecting)]
    assert srv.record.connections == 1


async def test_handshake_trickle_times_out(client: Client, loop: ServerLoop) -> None:
    """An upgrade answered one byte per 100 ms: HandshakeTimeout after handshake_timeout."""
    answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" * 10

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            for byte in answer:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.1)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    with raw(loop, trickle) as srv:
        started = time.monotonic()
        with anyio.fail_after(5), pytest.raises(HandshakeTimeout):
            await client.open(srv.url, handshake_timeout=0.5)
        assert time.monotonic() - started < 2.5


@pytest.mark.parametrize(
    ("status", "reason", "code"),
    [(401, "Unauthorized", "invalid_api_key"), (404, "Not Found", "model_not_found")],
)
async def test_handshake_refused(
    client: Client, loop: ServerLoop, status: int, reason: str, code: str
) -> None:
    """A refused upgrade raises HandshakeRefused with the status and the JSON body."""
    body = {
        "error": {
            "message": f"refused: {code}",
            "type": "invalid_request_error",
            "param": None,
            "code": code,
        }
    }

    def refuse(ws: ServerConnection, request: Any) -> Any:
        return json_response(status, reason, body)

    async def handler(ws: ServerConnection, record: Record, server: Server) -> None:
        raise AssertionError("never upgraded")

    with (
        scripted(loop, handler, process_request=refuse) as srv,
        anyio.fail_after(5),
        pytest.raises(HandshakeRefused) as refused,
    ):
        await client.open(srv.url)
    error = refused.value
    assert error.status == status
    assert json.loads(bytes(error.body)) == body


async def test_connect_refused(client: Client, loop: ServerLoop) -> None:
    """Nobody listening: ConnectError at once (with the OS error as its cause)."""
    with raw(loop, _never) as srv:
        port = srv.port
    with anyio.fail_after(5), pytest.raises(ConnectError) as failed:
        await client.open(f"ws://127.0.0.1:{port}/v1/realtime?model=m", connect_timeout=2)
    assert isinstance(failed.value.__cause__, OSError)


async def _never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def test_oversized_message_closes_1009(client: Client, loop: ServerLoop) -> None:
    """A message above max_message_size: the client closes with 1009 and says so."""

    async def handler(ws: ServerConnection, record: Record, server: Server) -> None:
        await open_session(ws, record, server)
        await ws.send(audio_delta(server, "resp_1", "item_A", b"\x00" * 60_000))
        async for _ in ws:
            pass

    options = WebSocketOptions(url="ws://unused/v1/realtime?model=m", max_message_size=32_768)
    with scripted(loop, handler) as srv:
        with anyio.fail_after(10):
            async with client.connect(srv.url, ws_options=options) as conn:
                try:
                    seen = await conn.rest()
                except rtproto.RemoteProtocolError as exc:
                    assert exc.hint == 1009
                    seen = []
        await srv.record.wait_done()
    assert srv.record.close_codes == [1009]
    assert not [e for e in seen if isinstance(e, AudioChunk)]
    if seen:
        assert disconnected(seen[-1]) and seen[-1].code == 1009


async def test_fragmented_message_with_pings(client: Client, loop: ServerLoop) -> None:
    """A message in fragments with pings between them: reassembled; every ping answered."""
    text = json.dumps(
        {
            "type": "response.output_text.delta",
            "event_id": "event_frag",
            "response_id": "resp_1",
            "item_id": "item_T",
            "output_index": 0,
            "content_index": 0,
            "delta": "fragmented " * 500,
        }
    )
    pieces = [text[i : i + 700] for i in range(0, len(text), 700)]

    async def handler(ws: ServerConnection, record: Record, server: Server) -> None:
        await open_session(ws, record, server)
        pongs: list[Any] = []

        async def fragments() -> Any:
            for piece in pieces:
                yield piece
                pongs.append(await ws.ping())

        await ws.send(fragments())
        await asyncio.wait_for(asyncio.gather(*pongs), 5)
        record.notes["pongs"] = len(pongs)
        await ws.send(server.event("rate_limits.updated", rate_limits=[]))
        async for _ in ws:
            pass

    with scripted(loop, handler) as srv:
        with anyio.fail_after(10):
            async with client.connect(srv.url) as conn:
                seen = await conn.until(lambda e: isinstance(e, E.RateLimitsUpdated))
                await conn.close()
    deltas = [e for e in seen if isinstance(e, E.ResponseOutputTextDelta)]
    assert len(deltas) == 1 and deltas[0].delta == "fragmented " * 500
    assert srv.record.notes["pongs"] == len(pieces) > 5


async def test_unknown_events_pass_through(client: Client, loop: ServerLoop) -> None:
    """An event type nobody knows reaches the application as UnknownEvent, raw kept."""

    async def handler(ws: ServerConnection, record: Record, server: Server) -> None:
        await open_session(ws, record, server)
        await ws.send(server.event("response.hologram.delta", beam={"x": 1}, delta="~"))
        await ws.send(server.event("rate_limits.updated", rate_limits=[]))
        async for _ in ws:
            pass

    with scripted(loop, handler) as srv:
        with anyio.fail_after(10):
            async with client.connect(srv.url) as conn:
                seen = await conn.until(lambda e: isinstance(e, E.RateLimitsUpdated))
                await conn.close()
    unknown = [e for e in seen if isinstance(e, rtproto.UnknownEvent)]
    assert len(unknown) == 1
    assert unknown[0].type == "response.hologram.delta"
    assert unknown[0].raw["beam"] == {"x": 1}


async def test_backpressure_when_the_app_stops_reading(client: Client, loop: ServerLoop) -> None:
    """The server floods audio while the app reads nothing: the queue stays at its bound,
    memory stays flat, the server is held back by TCP; then every event arrives."""
    total = 600
    pcm = os.urandom(24_000)  # 500 ms of audio, ~32 KB of JSON per event
    limit = 16

    async def handler(ws: ServerConnection, record: Record, server: Server) -> None:
        await open_session(ws, record, server)
        await ws.send(server.response_created("resp_1"))
        for number in range(total):
            await ws.send(audio_delta(server, "resp_1", "item_A", pcm))
            record.notes["sent"] = number + 1
            await asyncio.sleep(0)  # a real server reads while it sends
        await ws.send(server.response_done("resp_1"))
        async for _ in ws:
            pass

    with scripted(loop, handler) as srv:
        with anyio.fail_after(20):
            async with client.connect(srv.url, max_queued_events=limit) as conn:
                await conn.until(lambda e: isinstance(e, E.SessionUpdated))
                tracemalloc.start()
                try:
                    await anyio.sleep(1.0)  # the application is busy elsewhere
                    queued = conn.conn.queued_events
                    _, peak = tracemalloc.get_traced_memory()
                finally:
                    tracemalloc.stop()
                sent = srv.record.notes.get("sent", 0)
                assert queued <= limit + 8, queued
                assert sent < total // 2, f"the server was not held back ({sent} sent)"
                assert peak < 12 * 1024 * 1024, f"peak {peak} bytes while not reading"
                chunks = 0
                while True:
                    event = await conn.next()
                    assert event is not None
                    if isinstance(event, AudioChunk):
                        chunks += 1
                    if isinstance(event, TurnDone):
                        break
                assert chunks == total
                await conn.close()


async def test_close_while_the_app_does_not_read(client: Client, loop: ServerLoop) -> None:
    """close() returns promptly even with a full queue and a server still flooding."""
    pcm = os.urandom(24_000)

    async def handler(ws: ServerConnection, record: Record, server: Server) -> None:
        await open_session(ws, record, server)
        try:
            while True:
                await ws.send(audio_delta(server, "resp_1", "item_A", pcm))
                await asyncio.sleep(0)  # let the server read (our close frame) while it floods
        except Exception:
            pass

    with scripted(loop, handler) as srv:
        with anyio.fail_after(10):
            async with client.connect(srv.url, max_queued_events=4) as conn:
                await conn.until(lambda e: isinstance(e, E.SessionUpdated))
                await anyio.sleep(0.2)
                started = time.monotonic()
                await conn.close()
                assert time.monotonic() - started < 3
                seen = await conn.rest()
    assert disconnected(seen[-1])


async def test_send_after_reset_raises_connection_closed(client: Client, loop: ServerLoop) -> None:
    """The peer resets while the reader is paused (so nobody noticed): the failing write
    raises rtproto.ConnectionClosed, and the events end with ConnectionChange(1006)."""

    async def handler(ws: ServerConnection, record: Record, server: Server) -> None:
        await open_session(ws, record, server)
        await asyncio.sleep(0.1)
        ws.transport.abort()

    with scripted(loop, handler) as srv:
        with anyio.fail_after(10):
            async with client.connect(srv.url, max_queued_events=1) as conn:
                await srv.record.wait_done()
                with pytest.raises(rtproto.ConnectionClosed) as closed:
                    for _ in range(500):
                        await conn.call("send_audio", b"\x00\x01" * 4800)
                        await anyio.sleep(0.005)
                assert closed.value.code == 1006
                seen = await conn.rest()
    assert disconnected(seen[-1]) and seen[-1].code == 1006


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Upgrades, says session.created, then reads and never answers (no pong, no close)."""
    try:
        await raw_upgrade(reader, writer)
        writer.write(server_frame(0x1, Server().session_created().encode()))
        await writer.drain()
        while await reader.read(65536):
            pass
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def test_keepalive_timeout(client: Client, loop: ServerLoop) -> None:
    """Pings nobody answers: the driver's timer ends the connection (1006) in time."""
    options = WebSocketOptions(
        url="ws://unused/v1/realtime?model=m", ping_interval=0.2, ping_timeout=0.3
    )
    with raw(loop, _silent) as srv:
        started = time.monotonic()
        with anyio.fail_after(5):
            async with client.connect(srv.url, ws_options=options) as conn:
                seen = await conn.rest()
        assert time.monotonic() - started < 3
    assert isinstance(seen[2], E.SessionCreated)
    assert disconnected(seen[-1]) and seen[-1].code == 1006
    assert "ping" in (seen[-1].reason or "")


async def test_close_timeout(client: Client, loop: ServerLoop) -> None:
    """A server that never answers the close frame: close() gives up after close_timeout."""
    options = WebSocketOptions(
        url="ws://unused/v1/realtime?model=m", ping_interval=None, close_timeout=0.3
    )
    with raw(loop, _silent) as srv:
        with anyio.fail_after(5):
            async with client.connect(srv.url, ws_options=options) as conn:
                await conn.until(lambda e: isinstance(e, E.SessionCreated))
                started = time.monotonic()
                await conn.close()
                assert time.monotonic() - started < 2
                seen = await conn.rest()
    assert disconnected(seen[-1]) and seen[-1].code == 1006


async def test_write_timeout_when_the_peer_stops_reading(client: Client, loop: ServerLoop) -> None:
    """A server that stops reading: a write blocked past write_timeout loses the
    connection (ConnectionClosed for the sender, then ConnectionChange 1006)."""

    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await raw_upgrade(reader, writer)
            writer.write(server_frame(0x1, Server().session_created().encode()))
            await writer.drain()
            await asyncio.sleep(30)  # never reads again
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    options = WebSocketOptions(url="ws://unused/v1/realtime?model=m", ping_interval=None)
    chunk = bytes(1_000_000)
    with raw(loop, deaf) as srv:
        with anyio.fail_after(15):
            async with client.connect(srv.url, ws_options=options, write_timeout=0.5) as conn:
                await conn.until(lambda e: isinstance(e, E.SessionCreated))
                started = time.monotonic()
                with pytest.raises(rtproto.ConnectionClosed):
                    for _ in range(200):
                        await conn.call("send_audio", chunk)
                assert time.monotonic() - started < 8
                seen = await conn.rest()
    assert disconnected(seen[-1]) and seen[-1].code == 1006


async def test_protocol_error_is_raised_after_the_last_event(
    client: Client, loop: ServerLoop
) -> None:
    """A frame that breaks the WebSocket protocol (a text message that is not UTF-8): the
    client closes (1007), reports the end, then raises RemoteProtocolError from the
    iteration. (Valid text that is not an event is only a warning.)"""
    seen_by_server: list[tuple[int, bytes]] = []

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await raw_upgrade(reader, writer)
            writer.write(server_frame(0x1, Server().session_created().encode()))
            writer.write(server_frame(0x1, b"this is not JSON"))  # dropped, a warning
            writer.write(server_frame(0x1, b"\xff\xfe not UTF-8"))
            await writer.drain()
            while True:
                opcode, payload = await read_client_frame(reader)
                seen_by_server.append((opcode, payload))
                if opcode == 0x8:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    with raw(loop, garbage) as srv:
        with anyio.fail_after(5):
            async with client.connect(srv.url) as conn:
                seen: list[Any] = []
                with pytest.raises(rtproto.RemoteProtocolError) as failed:
                    while True:
                        event = await conn.next()
                        assert event is not None
                        seen.append(event)
    assert isinstance(seen[2], E.SessionCreated)
    assert isinstance(seen[3], ProtocolWarning) and "not valid JSON" in seen[3].message
    assert disconnected(seen[-1]) and seen[-1].code == failed.value.hint == 1007
    closes = [payload for opcode, payload in seen_by_server if opcode == 0x8]
    assert closes and int.from_bytes(closes[0][:2], "big") == failed.value.hint


# ---------------------------------------------------------------------------- reconnect --


async def test_reconnect_replays_history(client: Client, loop: ServerLoop) -> None:
    """A drop: the driver reconnects, re-sends session.update, replays the text history
    (function calls lost) and says so with Reconnecting, Reconnected and Replayed."""

    async def handler(ws: ServerConnection, record: Record, server: Server) -> None:
        await open_session(ws, record, server)
        if record.connections > 1:  # echo what is recreated, as the service does
            previous: str | None = None
            async for text in ws:
                record.received.append(json.loads(text))
                message = record.received[-1]
                if message["type"] == "conversation.item.create":
                    item = message["item"]
                    await ws.send(
                        server.event(
                            "conversation.item.added", previous_item_id=previous, item=item
                        )
                    )
                    previous = item["id"]
            return
        create = await receive_until(ws, record, "conversation.item.create")
        user_item = {**create["item"], "id": "item_user", "status": "completed"}
        await ws.send(server.event("conversation.item.added", item=user_item))
        await receive_until(ws, record, "response.create")
        await ws.send(server.response_created("resp_1"))
        for message in server.function_call("resp_1", "item_call", "call_1", "item_user"):
            await ws.send(message)
        answer = {
            "id": "item_answer",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_audio", "transcript": "Sunny in Paris."}],
        }
        await ws.send(
            server.event("conversation.item.added", previous_item_id="item_call", item=answer)
        )
        await ws.send(server.response_done("resp_1"))
        await asyncio.sleep(0.05)
        ws.transport.abort()

    policy = ReconnectPolicy(max_attempts=3, backoff=lambda attempt: 0.05)
    with scripted(loop, handler) as srv:
        with anyio.fail_after(15):
            async with client.connect(srv.url, reconnect=policy) as conn:
                await conn.until(lambda e: isinstance(e, E.SessionUpdated))
                await conn.call("update_session", {"instructions": "Be brief."})
                await conn.call("send_message", "Weather in Paris?")
                seen = await conn.until(lambda e: isinstance(e, Replayed))
                seen += await conn.until(
                    lambda e: isinstance(e, E.ConversationItemAdded) and e.item.id == "item_answer"
                )
                history = conn.conn.session.history
                await conn.close()
                seen += await conn.rest()

    kinds = [type(e) for e in seen]
    drop = next(e for e in seen if disconnected(e))
    assert drop.code == 1006
    reconnecting = next(e for e in seen if isinstance(e, Reconnecting))
    assert reconnecting.attempt == 1 and reconnecting.delay == pytest.approx(0.05)
    reconnected = next(e for e in seen if isinstance(e, Reconnected))
    replayed = next(e for e in seen if isinstance(e, Replayed))
    assert kinds.index(Reconnecting) < kinds.index(Reconnected) < kinds.index(Replayed)
    assert reconnected.attempt == 1
    assert replayed.restored == ("item_user", "item_answer")
    assert replayed.lost == ("item_call",)
    assert srv.record.connections == 2
    second = srv.record.received[srv.record.types().index("response.create") + 1 :]
    assert [m["type"] for m in second[:4]] == [
        "session.update",  # the initial configuration
        "session.update",  # then the application's update, re-applied
        "conversation.item.create",
        "conversation.item.create",
    ]
    assert second[1]["session"]["instructions"] == "Be brief."
    assert second[2]["item"]["content"] == [{"type": "input_text", "text": "Weather in Paris?"}]
    assert second[3]["item"]["content"] == [{"type": "output_text", "text": "Sunny in Paris."}]
    assert second[3]["item"]["id"] == "item_answer"
    assert [item.id for item in history] == ["item_user", "item_answer"]
    assert disconnected(seen[-1]) and seen[-1].code == 1000


async def test_reconnect_gives_up(client: Client, loop: ServerLoop) -> None:
    """The server drops and never comes back: attempts, then ReconnectFailed, then the end."""

    async def handler(ws: ServerConnection, record: Record, server: Server) -> None:
        await open_session(ws, record, server)
        ws.transport.abort()

    policy = ReconnectPolicy(max_attempts=2, backoff=lambda attempt: 0.01)
    with scripted(loop, handler) as srv:
        url = srv.url
        with anyio.fail_after(10):
            async with client.connect(url, reconnect=policy) as conn:
                await conn.until(lambda e: isinstance(e, E.SessionUpdated))
                srv.stop()  # nobody listens any more
                seen = await conn.rest()
        srv.stop = lambda: None  # type: ignore[method-assign]
    attempts = [e.attempt for e in seen if isinstance(e, Reconnecting)]
    assert attempts == [1, 2], names(seen)
    assert isinstance(seen[-1], ReconnectFailed)
    assert seen[-1].attempts == 2 and "ConnectError" in seen[-1].reason


async def test_no_reconnect_after_a_normal_close(client: Client, loop: ServerLoop) -> None:
    """Close 1000 from the server ends the connection even with a reconnect policy."""

    async def handler(ws: ServerConnection, record: Record, server: Server) -> None:
        await open_session(ws, record, server)
        await ws.close(1000, "bye")

    policy = ReconnectPolicy(backoff=lambda attempt: 0.01)
    with scripted(loop, handler) as srv:
        with anyio.fail_after(10):
            async with client.connect(srv.url, reconnect=policy) as conn:
                seen = await conn.rest()
    assert not [e for e in seen if isinstance(e, Reconnecting)]
    assert disconnected(seen[-1]) and seen[-1].code == 1000
    assert srv.record.connections == 1


async def _upgrade_then_drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accepts the upgrade, then drops the TCP connection at once (no close frame)."""
    try:
        await raw_upgrade(reader, writer)
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.transport.abort()


async def test_reconnect_gives_up_when_every_upgrade_is_dropped(
    client: Client, loop: ServerLoop
) -> None:
    """A server that accepts every upgrade and drops it at once: the attempt count does not
    restart at each successful upgrade, so the backoff grows and ReconnectFailed comes after
    max_attempts (the reconnect loop that never ends, peers.md pain point 8)."""
    accepted: list[float] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(time.monotonic())
        await _upgrade_then_drop(reader, writer)

    policy = ReconnectPolicy(max_attempts=3, backoff=lambda attempt: 0.02 * attempt)
    with raw(loop, handler) as srv:
        with anyio.fail_after(3):
            async with client.connect(srv.url, reconnect=policy) as conn:
                seen = await conn.rest(timeout=3)
    reconnecting = [e for e in seen if isinstance(e, Reconnecting)]
    assert [e.attempt for e in reconnecting] == [1, 2, 3], names(seen)
    assert [e.delay for e in reconnecting] == pytest.approx([0.02, 0.04, 0.06])
    assert all(e.code == 1006 for e in reconnecting)
    assert [e.attempt for e in seen if isinstance(e, Reconnected)] == [1, 2, 3]
    assert isinstance(seen[-1], ReconnectFailed) and seen[-1].attempts == 3
    assert len(accepted) == 4  # the first connection and three attempts, no more
    gaps = [accepted[n + 1] - accepted[n] for n in range(3)]
    assert gaps[2] >= 0.06 * 0.9, gaps


async def test_reconnect_count_restarts_after_a_healthy_connection(
    client: Client, loop: ServerLoop
) -> None:
    """A connection that stayed up healthy_after seconds resets the count: each of these
    drops is attempt 1 again; the one that drops at once uses up max_attempts=1."""
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections) + 1)
        if len(connections) > 3:
            await _upgrade_then_drop(reader, writer)
            return
        try:
            await raw_upgrade(reader, writer)
            await asyncio.sleep(0.25)  # healthy: up longer than healthy_after
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()

    policy = ReconnectPolicy(max_attempts=1, backoff=lambda attempt: 0.01, healthy_after=0.15)
    with raw(loop, handler) as srv:
        with anyio.fail_after(4):
            async with client.connect(srv.url, reconnect=policy) as conn:
                seen = await conn.rest(timeout=4)
    assert [e.attempt for e in seen if isinstance(e, Reconnecting)] == [1, 1, 1], names(seen)
    assert isinstance(seen[-1], ReconnectFailed) and seen[-1].attempts == 1
    assert len(connections) == 4


def _refusing(
    answers: dict[int, tuple[int, str, tuple[tuple[str, str], ...]]],
) -> tuple[Any, list[int]]:
    """A process_request refusing the n-th request (1-based) as ``answers`` says."""
    requests: list[int] = []

    def process_request(ws: ServerConnection, request: Any) -> Any:
        requests.append(len(requests) + 1)
        answer = answers.get(len(requests))
        if answer is None:
            return None
        status, reason, headers = answer
        body = {"error": {"message": reason, "type": "invalid_request_error", "code": None}}
        return json_response(status, reason, body, headers)

    return process_request, requests


async def _drop_first_then_serve(ws: ServerConnection, record: Record, server: Server) -> None:
    if record.connections == 1:
        ws.transport.abort()
        return
    await open_session(ws, record, server)
    async for _ in ws:
        pass


async def test_reconnect_honours_a_capped_retry_after(client: Client, loop: ServerLoop) -> None:
    """429 and 503 refusals are retried after their Retry-After: a day is capped at
    max_retry_after, 150 ms (Retry-After-Ms) lengthens the backoff's 10 ms."""
    process_request, requests = _refusing(
        {
            2: (429, "Too Many Requests", (("Retry-After", "86400"),)),
            3: (503, "Service Unavailable", (("Retry-After-Ms", "150"),)),
        }
    )
    policy = ReconnectPolicy(backoff=lambda attempt: 0.01, max_retry_after=0.3)
    with scripted(loop, _drop_first_then_serve, process_request=process_request) as srv:
        with anyio.fail_after(4):
            async with client.connect(srv.url, reconnect=policy) as conn:
                seen = await conn.until(lambda e: isinstance(e, E.SessionUpdated), timeout=4)
                await conn.close()
    reconnecting = [e for e in seen if isinstance(e, Reconnecting)]
    assert [(e.attempt, e.delay) for e in reconnecting] == [(1, 0.01), (2, 0.3), (3, 0.15)]
    assert "429" in reconnecting[1].reason and "503" in reconnecting[2].reason
    assert [e.attempt for e in seen if isinstance(e, Reconnected)] == [3]
    assert requests == [1, 2, 3, 4]


async def test_reconnect_gives_up_at_once_on_401(client: Client, loop: ServerLoop) -> None:
    """A 401 refusal is final: ReconnectFailed after the first attempt, no more requests."""
    process_request, requests = _refusing({2: (401, "Unauthorized", ())})
    policy = ReconnectPolicy(backoff=lambda attempt: 0.01)
    with scripted(loop, _drop_first_then_serve, process_request=process_request) as srv:
        with anyio.fail_after(4):
            async with client.connect(srv.url, reconnect=policy) as conn:
                seen = await conn.rest(timeout=4)
    assert [e.attempt for e in seen if isinstance(e, Reconnecting)] == [1]
    assert isinstance(seen[-1], ReconnectFailed) and seen[-1].attempts == 1
    assert "HandshakeRefused" in seen[-1].reason and "401" in seen[-1].reason
    assert requests == [1, 2]


def _minting() -> tuple[list[str], Any]:
    """Keys minted by a test's key function, and a process_request accepting only the
    latest one (as the service accepts an ephemeral key only until it expires)."""
    minted: list[str] = []

    def process_request(ws: ServerConnection, request: Any) -> Any:
        if minted and request.headers.get("Authorization") == f"Bearer {minted[-1]}":
            return None
        body = {"error": {"message": "Client secret expired", "code": "invalid_api_key"}}
        return json_response(401, "Unauthorized", body)

    return minted, process_request


@pytest.mark.parametrize("kind", ["sync", "async", "awaitable"])
async def test_reconnect_gets_a_fresh_key(client: Client, loop: ServerLoop, kind: str) -> None:
    """A reconnect calls the key function again: the stale key would get a 401 (final) and
    ReconnectFailed; the fresh one is accepted."""
    if client.threaded and kind != "sync":
        pytest.skip("the thread driver takes sync key functions")
    minted, process_request = _minting()

    def mint() -> str:
        minted.append(f"ek_test_{len(minted) + 1}")
        return minted[-1]

    async def mint_async() -> str:
        await anyio.sleep(0)
        return mint()

    function: Callable[[], Any] = {
        "sync": mint,
        "async": mint_async,
        "awaitable": lambda: mint_async(),
    }[kind]
    policy = ReconnectPolicy(max_attempts=2, backoff=lambda attempt: 0.01)
    with scripted(loop, _drop_first_then_serve, process_request=process_request) as srv:
        with anyio.fail_after(10):
            async with client.connect(srv.url, api_key=function, reconnect=policy) as conn:
                seen = await conn.until(
                    lambda e: isinstance(e, (E.SessionUpdated, ReconnectFailed))
                )
                await conn.close()
                seen += await conn.rest()
    assert not [e for e in seen if isinstance(e, ReconnectFailed)], names(seen)
    assert [e.attempt for e in seen if isinstance(e, Reconnected)] == [1]
    assert minted == ["ek_test_1", "ek_test_2"]
    assert [h["Authorization"] for h in srv.record.headers] == [
        "Bearer ek_test_1",
        "Bearer ek_test_2",
    ]


async def test_api_key_callable_failures_while_reconnecting(
    client: Client, loop: ServerLoop, caplog: pytest.LogCaptureFixture
) -> None:
    """While reconnecting, a key function that raises or returns no key makes a failed
    attempt (retried after the backoff) whose message is the next Reconnecting's reason;
    no key it returned shows in a reason, a repr or a log record, even one the server
    echoes in a 401."""
    caplog.set_level(logging.DEBUG)
    first, last = "ek_test-SECRET-first", "ek_test-SECRET-last"
    answers: list[Any] = [first, RuntimeError("token service down"), "", last]

    def key() -> str:
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return str(answer)

    def refuse_last(ws: ServerConnection, request: Any) -> Any:
        sent = request.headers.get("Authorization", "")
        if sent.endswith(last):
            message = f"Incorrect API key provided: {sent.removeprefix('Bearer ')}."
            return json_response(401, "Unauthorized", {"error": {"message": message}})
        return None

    policy = ReconnectPolicy(max_attempts=4, backoff=lambda attempt: 0.01)
    shown: list[str] = []
    with scripted(loop, _drop_first_then_serve, process_request=refuse_last) as srv:
        with anyio.fail_after(10):
            async with client.connect(srv.url, api_key=key, reconnect=policy) as conn:
                shown += [repr(conn.conn), repr(conn.conn._plan)]
                seen = await conn.rest()
                shown += [repr(conn.conn)]
    assert answers == []
    reasons = [e.reason for e in seen if isinstance(e, Reconnecting)]
    assert len(reasons) == 3, names(seen)
    assert "RuntimeError: token service down" in reasons[1]
    assert "api_key callable" in reasons[1]
    assert "LocalProtocolError" in reasons[2] and "empty str" in reasons[2]
    failed = seen[-1]
    assert isinstance(failed, ReconnectFailed) and failed.attempts == 3
    assert "401" in failed.reason and "<api key>" in failed.reason
    shown += [repr(e) for e in seen]
    shown += [r.getMessage() for r in caplog.records if not r.name.startswith("websockets")]
    assert not [text for text in shown if first in text or last in text]
    assert srv.record.connections == 1  # the refused upgrade never reached the handler


@pytest.mark.parametrize("stage", ["upgrade", "tls"])
async def test_close_cancels_a_slow_reconnect(
    client: Client, loop: ServerLoop, ca: trustme.CA, stage: str
) -> None:
    """close() while a reconnect attempt waits for the server (which accepted TCP, then
    stalls the TLS handshake or the upgrade): close returns at once, and when the server
    finally answers nobody is there (no session opened after close, no thread left)."""
    if stage == "tls" and not hasattr(asyncio.StreamWriter, "start_tls"):
        pytest.skip("StreamWriter.start_tls needs Python 3.11")
    tls = stage == "tls"
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    stalled = threading.Event()
    finished = threading.Event()
    late: list[bytes] = []
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections) + 1)
        if len(connections) == 1:
            if tls:
                await writer.start_tls(server_context)
            await _upgrade_then_drop(reader, writer)
            return
        try:
            stalled.set()
            await asyncio.sleep(0.5)  # the slow server
            if tls:
                await writer.start_tls(server_context)
            await raw_upgrade(reader, writer)
            late.append(await asyncio.wait_for(reader.read(1), 1))  # a session.update?
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            late.append(b"")
        finally:
            writer.transport.abort()
            finished.set()

    policy = ReconnectPolicy(backoff=lambda attempt: 0.01)
    with raw(loop, handler) as srv:
        url = srv.url.replace("ws://", "wss://") if tls else srv.url
        options: dict[str, Any] = {"ssl_context": client_context} if tls else {}
        with anyio.fail_after(4):
            async with client.connect(url, reconnect=policy, **options) as conn:
                await conn.until(lambda e: isinstance(e, Reconnecting))
                assert await anyio.to_thread.run_sync(stalled.wait, 2)
                await anyio.sleep(0.05)  # the attempt waits for the server
                started = time.monotonic()
                await conn.close()
                assert time.monotonic() - started < 1.0  # (was close_timeout + 0.5 s)
                seen = await conn.rest()
            assert await anyio.to_thread.run_sync(finished.wait, 2)
    assert late == [b""]  # the client was gone before the server answered
    assert len(connections) == 2
    assert not [e for e in seen if isinstance(e, (Reconnected, ReconnectFailed))], names(seen)


async def test_send_audio_while_reconnecting_is_dropped(client: Client, loop: ServerLoop) -> None:
    """send_audio during a reconnect returns quietly (counted in dropped_audio): a
    microphone task survives the drop. Once the connection is over for good it raises."""
    gate = threading.Event()  # holds the reconnect's upgrade until the audio was sent
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections) + 1)
        first = len(connections) == 1
        try:
            if not first:
                await asyncio.get_running_loop().run_in_executor(None, gate.wait, 3)
            await raw_upgrade(reader, writer)
            writer.write(server_frame(0x1, Server().session_created().encode()))
            await writer.drain()
            await read_client_frame(reader)  # the session.update
            if first:
                return  # dropped without a close frame
            writer.write(server_frame(0x8, (1000).to_bytes(2, "big") + b"bye"))
            await writer.drain()
            while (await read_client_frame(reader))[0] != 0x8:
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()

    policy = ReconnectPolicy(backoff=lambda attempt: 0.01)
    with raw(loop, handler) as srv:
        with anyio.fail_after(4):
            async with client.connect(srv.url, reconnect=policy) as conn:
                await conn.until(lambda e: isinstance(e, Reconnecting))
                for _ in range(3):
                    await conn.call("send_audio", b"\x00\x01" * 480)
                assert conn.conn.dropped_audio == 3
                gate.set()
                seen = await conn.rest()
                assert Reconnected in map(type, seen), names(seen)
                assert disconnected(seen[-1]) and seen[-1].code == 1000, names(seen)
                with pytest.raises(rtproto.ConnectionClosed):
                    await conn.call("send_audio", b"\x00\x01" * 480)
                assert conn.conn.dropped_audio == 3
    assert len(connections) == 2


# ------------------------------------------------------------------ connect arguments --

#: The initial session.update for session={"instructions": "hi"}, without the model.
_INITIAL_SESSION: dict[str, Any] = {
    "type": "realtime",
    "output_modalities": ["audio"],
    "instructions": "hi",
    "audio": {
        "input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "noise_reduction": None,
            "transcription": {"model": "gpt-4o-mini-transcribe"},
            "turn_detection": {"type": "semantic_vad"},
        },
        "output": {"format": {"type": "audio/pcm", "rate": 24000}, "speed": 1.0},
    },
}


@pytest.mark.parametrize(
    ("query", "model", "sent"),
    [
        ("model=gpt-realtime-mini", None, None),  # the URL's model: nothing to add
        ("model=gpt-realtime-mini", "gpt-realtime-mini", "gpt-realtime-mini"),  # asked for
        ("call_id=rtc_123", None, None),  # a call's model is fixed
        ("call_id=rtc_123", "gpt-realtime", None),
    ],
)
async def test_initial_session_update_model(
    client: Client, loop: ServerLoop, query: str, model: str | None, sent: str | None
) -> None:
    """The model comes from the URL; session.update names one only when the application
    gave it (and never with a call_id): the default never overrides the URL's model."""

    async def handler(ws: ServerConnection, record: Record, server: Server) -> None:
        await receive_until(ws, record, "session.update")
        await ws.close(1000)

    with scripted(loop, handler) as srv:
        url = srv.url.split("?")[0] + "?" + query
        given = {} if model is None else {"model": model}  # None: connect's default
        with anyio.fail_after(4):
            async with client.connect(url, session={"instructions": "hi"}, **given) as conn:
                await conn.rest()
        await srv.record.wait_done()
    session = dict(_INITIAL_SESSION)
    if sent is not None:
        session = {"type": "realtime", "model": sent, **_INITIAL_SESSION}
    assert srv.record.received == [
        {"type": "session.update", "event_id": "rtproto_session_update_1", "session": session}
    ]
    assert list(srv.record.received[0]["session"]) == list(session)  # (the order too)
    assert srv.record.paths == ["/v1/realtime?" + query]


async def test_url_argument_overrides_ws_options_url(client: Client, loop: ServerLoop) -> None:
    """connect(url, ws_options=...): the url argument wins over ws_options.url, everything
    else in ws_options is used."""

    async def handler(ws: ServerConnection, record: Record, server: Server) -> None:
        await receive_until(ws, record, "session.update")
        await ws.close(1000)

    with raw(loop, _never) as nobody:
        port = nobody.port  # (closed: a connection there would fail)
    options = WebSocketOptions(
        url=f"ws://127.0.0.1:{port}/v1/realtime?model=elsewhere",
        extra_headers=(("X-Rtproto-Test", "kept"),),
    )
    with scripted(loop, handler) as srv:
        with anyio.fail_after(4):
            async with client.connect(srv.url, ws_options=options) as conn:
                await conn.rest()
        await srv.record.wait_done()
    assert srv.record.paths == ["/v1/realtime?model=gpt-realtime"]
    assert srv.record.headers[0]["X-Rtproto-Test"] == "kept"


async def test_a_connection_is_entered_once(client: Client, loop: ServerLoop) -> None:
    """Entering a connection while its first connect is under way (an overlapping connect),
    or after it closed, raises LocalProtocolError and leaves the first one alone."""
    accepted = threading.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            accepted.set()
            await asyncio.sleep(0.2)  # the first connect is under way meanwhile
            await raw_upgrade(reader, writer)
            writer.write(server_frame(0x1, Server().session_created().encode()))
            await writer.drain()
            while (frame := await read_client_frame(reader))[0] != 0x8:
                pass
            writer.write(server_frame(0x8, frame[1]))  # the close reply
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    with raw(loop, slow) as srv:
        entered = anyio.Event()
        release = anyio.Event()
        if client.threaded:
            conn: Any = connect_sync(srv.url, api_key="sk-test-key")

            async def first() -> None:
                await anyio.to_thread.run_sync(conn.__enter__)
                entered.set()
                await release.wait()
                await anyio.to_thread.run_sync(conn.close)

            async def again() -> None:
                await anyio.to_thread.run_sync(conn.__enter__)
        else:
            conn = connect(srv.url, api_key="sk-test-key")

            async def first() -> None:
                async with conn:
                    entered.set()
                    await release.wait()

            async def again() -> None:
                async with conn:
                    pass

        with anyio.fail_after(4):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(first)
                assert await anyio.to_thread.run_sync(accepted.wait, 2)
                assert not entered.is_set()
                with pytest.raises(rtproto.LocalProtocolError, match="entered once"):
                    await again()
                await entered.wait()  # the first connect went on undisturbed
                assert isinstance(await Handle(conn, client.threaded).next(), ConnectionChange)
                release.set()
            with pytest.raises(rtproto.LocalProtocolError):
                await again()  # nor after it closed


# ------------------------------------------------------------------- not parametrised --


@pytest.mark.parametrize("driver", ["asyncio"])
def test_drivers_share_one_api(driver: str) -> None:
    """Both connection classes have the same public members with the same parameters."""

    def public(cls: type) -> dict[str, list[str]]:
        members = {}
        for name, member in inspect.getmembers(cls):
            if name.startswith("_") or name in ("events",):
                continue
            if callable(member):
                members[name] = list(inspect.signature(member).parameters)
            else:
                members[name] = []
        return members

    assert public(AsyncConnection) == public(SyncConnection)


#: Driver members named like a session command that differ from it on purpose: the driver's
#: own close handshake, a wait with a timeout, and WebRTC audio that goes to the media track.
OWN_SIGNATURES = {"close", "next_event", ("webrtc", "send_audio")}


@pytest.mark.parametrize("driver", ["asyncio"])
def test_driver_commands_take_the_sessions_parameters(driver: str) -> None:
    """A command the drivers forward to the session takes the session's parameters (the
    driver passes ``now`` itself), so a new option of the session cannot be left out."""
    webrtc = pytest.importorskip("rtproto.adapters.webrtc")
    compared = 0
    for kind, cls in (("websocket", AsyncConnection), ("webrtc", webrtc.WebRTCConnection)):
        for name, member in inspect.getmembers(cls):
            command = getattr(ClientSession, name, None)
            if name.startswith("_") or not callable(member) or not callable(command):
                continue
            if name in OWN_SIGNATURES or (kind, name) in OWN_SIGNATURES:
                continue
            theirs = [p for p in inspect.signature(member).parameters if p != "self"]
            ours = [p for p in inspect.signature(command).parameters if p not in ("self", "now")]
            assert theirs == ours, f"{cls.__name__}.{name}"
            compared += 1
    assert compared >= 20


@pytest.mark.parametrize("driver", ["asyncio"])
def test_replay_items(driver: str) -> None:
    """What can be recreated is, in order, with its id; what cannot is reported lost."""
    history: list[M.Item] = [
        M.MessageItem(
            id="sys", role="system", content=[M.ContentPart(type="input_text", text="Be brief.")]
        ),
        M.MessageItem(
            id="u1", role="user", content=[M.ContentPart(type="input_audio", transcript="Hi")]
        ),
        M.MessageItem(id="u2", role="user", content=[M.ContentPart(type="input_audio")]),
        M.MessageItem(
            id="a1",
            role="assistant",
            content=[M.ContentPart(type="output_audio", transcript="Hello!")],
        ),
        M.FunctionCallItem(id="f1", name="f", arguments="{}", call_id="c1"),
        M.FunctionCallOutputItem(id="o1", call_id="c1", output="42"),
    ]
    creates, restored, lost = replay_items(history)
    assert restored == ("sys", "u1", "a1")
    assert lost == ("u2", "f1", "o1")
    payloads = [rtproto.serialize_client_event(c) for c in creates]
    assert [json.loads(p)["item"] for p in payloads] == [
        {
            "id": "sys",
            "type": "message",
            "role": "system",
            "content": [{"type": "input_text", "text": "Be brief."}],
        },
        {
            "id": "u1",
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Hi"}],
        },
        {
            "id": "a1",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hello!"}],
        },
    ]


@pytest.mark.parametrize("driver", ["asyncio"])
def test_backoff_is_exponential_with_a_cap(driver: str) -> None:
    backoff = exponential_backoff(initial=0.5, factor=2.0, cap=4.0, jitter=0.0)
    assert [backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    with pytest.raises(ValueError):
        ReconnectPolicy(max_attempts=0)


def plan_of(**options: Any) -> Any:
    """``plan_connect`` with test defaults for every argument not given."""
    from rtproto.adapters._core import plan_connect

    arguments: dict[str, Any] = {
        "url": None,
        "model": None,
        "api_key": None,
        "session": None,
        "ws_options": None,
        "connect_timeout": 1,
        "handshake_timeout": 2,
        "ssl_context": None,
        "max_queued_events": 8,
        "reconnect": None,
    }
    return plan_connect(**{**arguments, **options})


@pytest.mark.parametrize("driver", ["asyncio"])
def test_connect_arguments(driver: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """URL, key and TLS resolution, all before any I/O."""

    def plan(**options: Any) -> Any:
        return plan_of(**{"model": "gpt-realtime-mini", **options})

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    default = plan()
    assert default.url == "wss://api.openai.com/v1/realtime?model=gpt-realtime-mini"
    assert (default.tls, default.host, default.port) == (True, "api.openai.com", 443)
    assert default.ssl_context is not None
    assert default.ssl_context.verify_mode is ssl.CERT_REQUIRED
    assert default.ssl_context.check_hostname
    assert default.ws_options.api_key == SECRET
    assert default.ws_options.handshake_timeout == 2
    assert SECRET not in repr(default)
    in_query = plan(url=f"wss://example.com/v1/realtime?model=m&api-key={SECRET}", model=None)
    assert SECRET not in repr(in_query)  # (the URL and target are left out of the repr)
    assert plan(api_key="sk-other").ws_options.api_key == "sk-other"
    limits = WebSocketOptions(max_message_size=1000)  # no url: the model still picks it
    assert plan(ws_options=limits).url.endswith("model=gpt-realtime-mini")
    assert plan(ws_options=limits).ws_options.max_message_size == 1000
    beta = plan(ws_options=WebSocketOptions(beta=True))
    assert beta.session_options.dialect is rtproto.Dialect.BETA
    assert plan(reconnect=True).reconnect.max_attempts == ReconnectPolicy().max_attempts
    with pytest.raises(ValueError):
        plan(url="ws://127.0.0.1:1/v1/realtime?model=m", ssl_context=ssl.create_default_context())
    with pytest.raises(rtproto.LocalProtocolError):
        plan(url="ftp://example.com/")
    with pytest.raises(rtproto.LocalProtocolError):
        plan(session={"voice": 42})


@pytest.mark.parametrize("driver", ["asyncio"])
def test_connect_model_resolution(driver: str) -> None:
    """The URL names the model; the argument only fills the default URL, reaches the
    session.update when given, and may not contradict the URL."""

    def plan(url: str | None, model: str | None) -> Any:
        return plan_of(url=url, model=model, api_key="k")

    default = plan(None, None)
    assert default.url == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    assert (default.model, default.session_options.model) == ("gpt-realtime", None)
    chosen = plan(None, "gpt-realtime-mini")
    assert chosen.url.endswith("?model=gpt-realtime-mini")
    assert (chosen.model, chosen.session_options.model) == ("gpt-realtime-mini",) * 2
    mini = "wss://api.openai.com/v1/realtime?model=gpt-realtime-mini"
    assert (plan(mini, None).model, plan(mini, None).session_options.model) == (
        "gpt-realtime-mini",
        None,
    )
    call = plan("wss://api.openai.com/v1/realtime?call_id=rtc_1", "gpt-realtime")
    assert (call.model, call.session_options.model) == (None, None)
    custom = plan("ws://127.0.0.1:9/realtime", "my-model")  # a URL that names none
    assert (custom.model, custom.session_options.model) == ("my-model", "my-model")
    with pytest.raises(rtproto.LocalProtocolError, match="gpt-realtime-mini"):
        plan(mini, "gpt-realtime")
    assert inspect.signature(connect).parameters["model"].default is None
    assert inspect.signature(connect_sync).parameters["model"].default is None


@pytest.mark.parametrize("driver", ["asyncio"])
def test_reconnect_policy_limits(driver: str) -> None:
    assert ReconnectPolicy().healthy_after == 10.0
    assert ReconnectPolicy().max_retry_after == 30.0
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            ReconnectPolicy(healthy_after=bad)
        with pytest.raises(ValueError):
            ReconnectPolicy(max_retry_after=bad)


@pytest.mark.parametrize("driver", ["asyncio"])
def test_connect_plan_api_key(driver: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """plan_connect keeps a key function (uncalled, out of the repr, OPENAI_API_KEY unused)
    and validates the rest as if it had returned a key; keyed_options checks what it
    returns; the ek_ guard applies to given, environment and returned keys alike."""
    from rtproto.adapters._core import DriverCore

    plan = plan_of

    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    calls: list[int] = []

    def key() -> str:
        calls.append(1)
        return "ek_fresh"

    planned = plan(api_key=key)
    assert calls == [] and planned.key_function is key
    assert planned.ws_options.api_key is None  # not the environment's
    core = DriverCore(planned)
    assert core.keyed_options("ek_fresh").api_key == "ek_fresh"
    assert core.keyed_options("sk-standard").api_key == "sk-standard"  # header auth
    for bad, match in (("", "empty"), (None, "NoneType"), (7, "int"), ("a\nb", "header")):
        with pytest.raises(rtproto.LocalProtocolError, match=match):
            core.keyed_options(bad)
    assert SECRET not in repr(plan(api_key=functools.partial(str, SECRET)))
    assert plan(api_key="sk-given").key_function is None
    clash = WebSocketOptions(extra_headers=(("Authorization", "Bearer x"),))
    with pytest.raises(rtproto.LocalProtocolError, match="repeats"):
        plan(api_key=key, ws_options=clash)  # before any call, before any I/O
    with pytest.raises(rtproto.LocalProtocolError, match="str or a callable"):
        plan(api_key=b"sk-bytes")

    browser = WebSocketOptions(subprotocol_auth=True)
    for given in ("sk-given", None):  # given, and OPENAI_API_KEY
        with pytest.raises(rtproto.LocalProtocolError, match="ek_"):
            plan(api_key=given, ws_options=browser)
        allowed = plan(
            api_key=given, ws_options=browser, dangerously_allow_api_key_in_subprotocol=True
        )
        assert allowed.ws_options.api_key == (given or "sk-from-env")
    assert plan(api_key="ek_given", ws_options=browser).ws_options.api_key == "ek_given"
    monkeypatch.delenv("OPENAI_API_KEY")
    assert plan(ws_options=browser).ws_options.api_key is None  # no key: nothing to guard
    browser_core = DriverCore(plan(api_key=key, ws_options=browser))
    assert browser_core.keyed_options("ek_fresh").subprotocol_auth
    with pytest.raises(rtproto.LocalProtocolError, match="ek_") as refused:
        browser_core.keyed_options("sk-standard-secret")
    assert "sk-standard-secret" not in str(refused.value)
    allowing = DriverCore(
        plan(api_key=key, ws_options=browser, dangerously_allow_api_key_in_subprotocol=True)
    )
    assert allowing.keyed_options("sk-standard").api_key == "sk-standard"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_scope_cancelled_around_a_connection_ends_it_at_once(backend: str) -> None:
    """The application's scope is cancelled with the connection open: its reader is
    cancelled with it, so there is no close handshake to wait for (before: the whole close
    timeout, 5.5 s); the connection ends without one."""
    from rtproto.adapters.server import start_in_thread

    with start_in_thread() as emulator:

        async def main() -> tuple[float, list[Any]]:
            started = time.monotonic()
            with anyio.move_on_after(0.3):
                async with connect(f"{emulator.url}?model=gpt-realtime", api_key="k") as conn:
                    await anyio.sleep(10)
            return time.monotonic() - started, [e async for e in conn]

        took, rest = anyio.run(main, backend=backend)
    assert took < 2.0
    assert disconnected(rest[-1])
