"""The Cloudflare Workers path: the fetch-upgrade plan (rtproto.wire.cloudflare) and the
driver (rtproto.adapters.cloudflare) against the real emulator.

Here the platform (a Worker's ``fetch`` upgrade and its accepted ``WebSocket``) is played by
:class:`WebSocketsUpgrader`: the ``websockets`` library opens the request the plan describes
and hands whole messages to the driver, as workerd does. The driver's own Workers code
(``workers_upgrade``, Pyodide's ``js`` objects) runs in ``tests/test_cloudflare_pyodide.py``,
and the plan's request goes through real workerd there too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from rtproto.adapters.cloudflare import MessageListener, WorkersConnection, connect_cloudflare
from rtproto.adapters.server import RunningServer, ServerConfig, start_in_thread
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed as WsClosed
from websockets.exceptions import InvalidStatus

from rtproto.errors import ConnectionClosed, LocalProtocolError
from rtproto.session import ConnectionChange, ConnectionStatus, ProtocolWarning, TurnDone
from rtproto.wire import HandshakeRefused, WebSocketOptions
from rtproto.wire.cloudflare import (
    MAX_REFUSED_BODY,
    FetchUpgrade,
    plan_fetch_upgrade,
    refused_upgrade,
)

KEY = "sk-test-cloudflare"
STEP = 5.0

# ------------------------------------------------------------------------------ the plan --


def test_the_request_is_the_js_transports() -> None:
    """The JS Cloudflare transport's request: ws -> http, GET, the upgrade headers,
    Sec-WebSocket-Protocol: realtime, Bearer auth and a User-Agent."""
    options = WebSocketOptions(
        url="wss://api.openai.com/v1/realtime?model=gpt-realtime", api_key=KEY, user_agent="ua/1"
    )
    plan = plan_fetch_upgrade(options)
    assert plan.url == "https://api.openai.com/v1/realtime?model=gpt-realtime"
    assert plan.method == "GET"
    assert plan.headers == (
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Protocol", "realtime"),
        ("Authorization", f"Bearer {KEY}"),
        ("User-Agent", "ua/1"),
    )
    assert plan.protocols == ("realtime",)
    assert plan.header_dict()["Authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    ("url", "fetched"),
    [
        ("ws://127.0.0.1:9/v1/realtime", "http://127.0.0.1:9/v1/realtime"),
        ("WSS://Example.com/x?ws=1", "https://Example.com/x?ws=1"),
        ("Ws://h/ws", "http://h/ws"),
    ],
)
def test_only_the_leading_ws_becomes_http(url: str, fetched: str) -> None:
    assert plan_fetch_upgrade(WebSocketOptions(url=url)).url == fetched


def test_the_options_headers_follow() -> None:
    options = WebSocketOptions(
        url="ws://h/v1/realtime",
        api_key=KEY,
        beta=True,
        organization="org-1",
        project="proj-1",
        user_agent="",
        extra_headers=(("X-Trace", "t1"),),
    )
    assert plan_fetch_upgrade(options).headers == (
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Protocol", "realtime"),
        ("Authorization", f"Bearer {KEY}"),
        ("OpenAI-Beta", "realtime=v1"),
        ("OpenAI-Organization", "org-1"),
        ("OpenAI-Project", "proj-1"),
        ("X-Trace", "t1"),
    )


def test_subprotocol_auth_carries_the_key_in_the_protocols() -> None:
    options = WebSocketOptions(
        url="ws://h/v1/realtime", api_key="ek_1", subprotocol_auth=True, beta=True, user_agent=""
    )
    plan = plan_fetch_upgrade(options)
    protocols = ("realtime", "openai-insecure-api-key.ek_1", "openai-beta.realtime-v1")
    assert plan.protocols == protocols
    assert plan.headers == (
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Protocol", ", ".join(protocols)),
    )
    bare = WebSocketOptions(url="ws://h/v1/realtime", subprotocol_auth=True)
    assert plan_fetch_upgrade(bare).protocols == ("realtime",)


def test_the_repr_shows_no_secret() -> None:
    options = WebSocketOptions(
        url="wss://h/v1/realtime?model=m&token=q-secret",
        api_key=KEY,
        extra_headers=(("X-Api-Token", "x-secret"),),
    )
    text = repr(plan_fetch_upgrade(options))
    for secret in (KEY, "q-secret", "x-secret"):
        assert secret not in text
    assert "'Upgrade', 'websocket'" in text and "https://h/v1/realtime" in text


def test_a_refused_upgrade_says_what_the_server_said() -> None:
    error = refused_upgrade(400, "No upgrade")
    assert isinstance(error, HandshakeRefused)
    assert (error.status, error.hint, error.body, error.error) == (400, 400, b"No upgrade", None)
    assert str(error).startswith("the server refused the WebSocket upgrade: HTTP 400: No upgrade")
    body = json.dumps({"error": {"message": "Incorrect API key", "type": "invalid_request_error"}})
    error = refused_upgrade(401, body.encode(), [("Retry-After", "3")])
    assert error.error is not None and error.error["message"] == "Incorrect API key"
    assert str(error).count("Incorrect API key") == 1
    assert error.headers == [("retry-after", "3")] and error.retry_after == 3.0
    assert str(refused_upgrade(200, "")).startswith("the server refused the WebSocket upgrade")


def test_a_refused_body_is_bounded() -> None:
    assert MAX_REFUSED_BODY == 64 * 1024  # as a refused WebSocket upgrade's (documented)
    error = refused_upgrade(502, "x" * (MAX_REFUSED_BODY + 10))
    assert len(error.body) == MAX_REFUSED_BODY
    assert str(error) == "the server refused the WebSocket upgrade: HTTP 502: " + "x" * 300 + (
        "; hint 502"
    )


def test_the_request_is_immutable() -> None:
    plan = plan_fetch_upgrade(WebSocketOptions(url="ws://h/v1/realtime"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.url = "http://elsewhere/"  # type: ignore[misc]


# ---------------------------------------------------------------------------- the driver --


class WebSocketsChannel:
    """A socket accepted from a fetch upgrade, as the driver sees it: ``send`` and ``close``
    return at once (the platform queues), messages arrive whole."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.outbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.sent: list[str] = []
        self.writer = asyncio.ensure_future(self._write())

    def send(self, message: str) -> None:
        if self.ws.close_code is not None:
            raise RuntimeError("WebSocket is closed")  # as workerd throws
        self.sent.append(message)
        self.outbox.put_nowait(("send", message))

    def close(self, code: int, reason: str) -> None:
        self.outbox.put_nowait(("close", (code, reason)))

    async def _write(self) -> None:
        with contextlib.suppress(WsClosed):
            while True:
                kind, value = await self.outbox.get()
                if kind == "send":
                    await self.ws.send(value)
                else:
                    await self.ws.close(*value)
                    return


class WebSocketsUpgrader:
    """The Worker platform played by ``websockets``: opens what the plan asks for."""

    def __init__(self) -> None:
        self.requests: list[FetchUpgrade] = []
        self.channel: WebSocketsChannel | None = None
        self.tasks: list[asyncio.Task[None]] = []

    async def __call__(self, request: FetchUpgrade, listener: MessageListener) -> Any:
        self.requests.append(request)
        assert request.method == "GET"
        headers = [
            (name, value)
            for name, value in request.headers
            if name not in ("Upgrade", "Connection", "Sec-WebSocket-Protocol", "User-Agent")
        ]
        url = "ws" + request.url[len("http") :]
        try:
            ws = await ws_connect(
                url,
                additional_headers=headers,
                subprotocols=list(request.protocols),  # type: ignore[arg-type]
                user_agent_header=request.header_dict().get("User-Agent"),
                compression=None,
            )
        except InvalidStatus as exc:
            response = exc.response
            raise refused_upgrade(
                response.status_code, response.body or b"", list(response.headers.raw_items())
            ) from None
        self.channel = channel = WebSocketsChannel(ws)
        listener.opened(channel)
        self.tasks.append(asyncio.ensure_future(self._read(ws, listener)))
        return channel

    @staticmethod
    async def _read(ws: ClientConnection, listener: MessageListener) -> None:
        try:
            async for message in ws:
                listener.message(message)
        except WsClosed:
            pass
        code = ws.close_code
        listener.closed(1006 if code is None else code, ws.close_reason or "")


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningServer]:
    with start_in_thread(ServerConfig(api_key=KEY)) as running:
        yield running


@contextlib.asynccontextmanager
async def opened(
    emulator: RunningServer, **kwargs: Any
) -> AsyncIterator[tuple[WorkersConnection, WebSocketsUpgrader]]:
    upgrader = WebSocketsUpgrader()
    kwargs.setdefault("api_key", KEY)
    async with connect_cloudflare(
        emulator.url + "?model=gpt-realtime", upgrade=upgrader, **kwargs
    ) as conn:
        yield conn, upgrader
    for task in upgrader.tasks:
        await asyncio.wait_for(task, STEP)


async def until_turn_done(conn: WorkersConnection) -> list[Any]:
    seen = []
    while True:
        event = await conn.next_event(timeout=STEP)
        assert event is not None
        seen.append(event)
        if isinstance(event, TurnDone):
            return seen


def test_a_text_turn_over_the_emulator(emulator: RunningServer) -> None:
    async def main() -> None:
        async with opened(emulator, session={"output_modalities": ["text"]}) as (conn, up):
            statuses = [getattr(await conn.next_event(timeout=STEP), "status", None)]
            statuses.append(getattr(await conn.next_event(timeout=STEP), "status", None))
            # connected at once, as after accept(), with no event from the server yet
            assert statuses == [ConnectionStatus.CONNECTING, ConnectionStatus.CONNECTED]
            await conn.send_message("Hello there")
            seen = await until_turn_done(conn)
            names = [getattr(event, "name", None) for event in seen]
            assert "text_delta" in names and names[-1] == "turn_done"
            assert conn.session.history[-1].role == "assistant"  # type: ignore[union-attr]
            assert up.channel is not None
            sent = [json.loads(text)["type"] for text in up.channel.sent]
            assert sent == ["session.update", "conversation.item.create", "response.create"]
            assert up.requests[0].header_dict()["Authorization"] == f"Bearer {KEY}"
            assert "WorkersConnection" in repr(conn) and KEY not in repr(conn)
        # the close handshake completed: the server's close frame ended the connection
        assert conn.close_code == 1000
        rest = [event async for event in conn]
        assert isinstance(rest[-1], ConnectionChange)
        assert rest[-1].status is ConnectionStatus.DISCONNECTED and rest[-1].code == 1000
        with pytest.raises(ConnectionClosed, match="cannot send message"):
            await conn.send_message("again")

    asyncio.run(main())


def test_an_audio_turn_and_an_interruption() -> None:
    async def main(emulator: RunningServer) -> None:
        async with opened(emulator) as (conn, up):
            await conn.send_message("Tell me a long story")
            while True:
                event = await conn.next_event(timeout=STEP)
                if getattr(event, "name", None) == "audio":
                    break
            await conn.interrupt()
            assert up.channel is not None
            kinds = [json.loads(text)["type"] for text in up.channel.sent]
            assert kinds[-2:] == ["response.cancel", "conversation.item.truncate"]
            truncate = json.loads(up.channel.sent[-1])
            assert 0 <= truncate["audio_end_ms"] < 100  # the loop's clock since the audio
            names = []
            while "turn_done" not in names:
                event = await conn.next_event(timeout=STEP)
                names.append(getattr(event, "name", None))
            assert "audio_interrupted" in names

    with start_in_thread(ServerConfig(api_key=KEY, pace="realtime")) as emulator:
        asyncio.run(main(emulator))


def test_no_key_is_a_refused_upgrade(emulator: RunningServer) -> None:
    async def main() -> None:
        with pytest.raises(HandshakeRefused) as caught:
            async with connect_cloudflare(emulator.url, upgrade=WebSocketsUpgrader()):
                pass
        assert caught.value.status == 401
        assert caught.value.error is not None and "API key" in str(caught.value)

    asyncio.run(main())


def test_a_wrong_key_is_an_error_event_then_the_close(emulator: RunningServer) -> None:
    """As the service does: the upgrade succeeds, then an error event and close 3000."""

    async def main() -> None:
        async with opened(emulator, api_key="sk-wrong") as (conn, _):
            events = [event async for event in conn]
        errors = [event for event in events if getattr(event, "name", None) == "error"]
        assert len(errors) == 1 and "Incorrect API key" in str(errors[0])
        assert conn.close_code == 3000

    asyncio.run(main())


def test_a_key_function_is_awaited_and_checked(emulator: RunningServer) -> None:
    async def key() -> str:
        return KEY

    async def main() -> None:
        async with opened(emulator, api_key=key) as (conn, up):
            assert conn.session is not None
            assert up.requests[0].header_dict()["Authorization"] == f"Bearer {KEY}"
        with pytest.raises(LocalProtocolError, match="empty str"):
            async with opened(emulator, api_key=lambda: ""):
                pass

    asyncio.run(main())


def test_the_server_closing_ends_the_events(emulator: RunningServer) -> None:
    async def main() -> None:
        async with opened(emulator) as (conn, up):
            await conn.next_event(timeout=STEP)
            assert up.channel is not None
            await up.channel.ws.close(4001, "bye")  # stands in for the server's close
            events = [event async for event in conn]
            assert isinstance(events[-1], ConnectionChange)
            assert events[-1].status is ConnectionStatus.DISCONNECTED
            assert conn.close_code is not None

    asyncio.run(main())


class ScriptedChannel:
    """A channel under the test's control, for what a real server will not do."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closes: list[tuple[int, str]] = []
        self.fail_sends = False

    def send(self, message: str) -> None:
        if self.fail_sends:
            raise RuntimeError("socket gone")
        self.sent.append(message)

    def close(self, code: int, reason: str) -> None:
        self.closes.append((code, reason))


def scripted(**kwargs: Any) -> tuple[WorkersConnection, ScriptedChannel]:
    channel = ScriptedChannel()

    async def upgrade(request: FetchUpgrade, listener: MessageListener) -> ScriptedChannel:
        listener.opened(channel)
        return channel

    conn = connect_cloudflare(
        "ws://127.0.0.1:9/v1/realtime", api_key=KEY, upgrade=upgrade, **kwargs
    )
    return conn, channel


SESSION_CREATED = json.dumps(
    {"type": "session.created", "event_id": "e1", "session": {"id": "s1", "type": "realtime"}}
)


def test_unread_events_past_the_bound_close_the_connection() -> None:
    async def main() -> None:
        conn, channel = scripted(max_queued_events=3, session=None)
        async with conn:
            for _ in range(4):
                conn.message(SESSION_CREATED)
            assert channel.closes == [(1008, "the application did not read its events")]
            with pytest.raises(ConnectionClosed):
                await conn.commit_audio()
            conn.closed(1008, "the application did not read its events")
            assert conn.queued_events >= 4
        assert conn.close_code == 1008

    asyncio.run(main())


def test_binary_messages_are_ignored_with_a_warning() -> None:
    async def main() -> None:
        conn, _ = scripted()
        async with conn:
            conn.message(b"\x00\x01")
            events = [await conn.next_event(timeout=STEP) for _ in range(3)]
            assert isinstance(events[2], ProtocolWarning)
            assert "binary message of 2 bytes" in events[2].message
            conn.closed(1000, "")

    asyncio.run(main())


def test_no_close_reply_drops_the_connection_after_close_timeout() -> None:
    async def main() -> None:
        options = WebSocketOptions(url="ws://127.0.0.1:9/v1/realtime", close_timeout=0.05)
        conn, channel = scripted(ws_options=options)
        async with conn:
            pass
        assert channel.closes == [(1000, "")]
        assert (conn.close_code, conn.close_reason) == (1006, "no close reply from the server")
        await conn.close()  # idempotent

    asyncio.run(main())


def test_a_failed_send_stops_commands_and_waits_for_the_close_event() -> None:
    async def main() -> None:
        conn, channel = scripted()
        async with conn:
            channel.fail_sends = True
            await conn.commit_audio()  # refused by the socket: it is closing
            with pytest.raises(ConnectionClosed):
                await conn.commit_audio()
            assert conn.close_code is None  # the platform's close event tells the code
            conn.closed(1001, "going away")
        assert (conn.close_code, conn.close_reason) == (1001, "going away")
        assert channel.closes == []  # closing already: no second close

    asyncio.run(main())


def test_a_failed_send_without_a_close_event_ends_after_close_timeout() -> None:
    async def main() -> None:
        options = WebSocketOptions(url="ws://127.0.0.1:9/v1/realtime", close_timeout=0.05)
        conn, channel = scripted(ws_options=options)
        async with conn:
            channel.fail_sends = True
            await conn.commit_audio()
            events = [event async for event in conn]
        assert isinstance(events[-1], ConnectionChange)
        assert (conn.close_code, conn.close_reason) == (1006, "the socket failed while sending")

    asyncio.run(main())


def test_misuse_is_refused() -> None:
    async def main() -> None:
        conn, _ = scripted()
        with pytest.raises(LocalProtocolError, match="not open yet"):
            _ = conn.session
        async with conn:
            with pytest.raises(LocalProtocolError, match="entered once"):
                await conn.__aenter__()
            with pytest.raises(LocalProtocolError, match="close code"):
                await conn.close(1005)
            with pytest.raises(LocalProtocolError, match="123 bytes"):
                await conn.close(1000, "x" * 124)
            await conn.next_event()  # connecting
            await conn.next_event()  # connected
            with pytest.raises(TimeoutError):
                await conn.next_event(timeout=0.01)
            conn.closed(1000, "")

        async def silent(request: FetchUpgrade, listener: MessageListener) -> Any:
            return None

        with pytest.raises(LocalProtocolError, match="without calling opened"):
            async with connect_cloudflare("ws://h/v1/realtime", upgrade=silent):
                pass
        with pytest.raises(ValueError, match="platform does TLS"):
            from rtproto.adapters._core import plan_connect

            plan_connect(
                "wss://h/",
                model=None,
                api_key=None,
                session=None,
                ws_options=None,
                connect_timeout=1,
                handshake_timeout=1,
                ssl_context=object(),  # type: ignore[arg-type]
                max_queued_events=1,
                reconnect=None,
                platform_tls=True,
            )

    asyncio.run(main())
