"""Real servers on 127.0.0.1 for the driver tests, and one client facade over every driver.

The servers are independent of rtproto: the ``websockets`` library (scripted per test by a
handler coroutine) and raw asyncio TCP servers for byte-level faults. They all run on one
asyncio loop in a background thread, so the client under test may run on asyncio, Trio or
plain threads. :class:`Client` gives the three drivers one async interface: the async driver
is called directly, the thread driver's blocking calls run in worker threads.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from rtproto.adapters import connect, connect_sync
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from .scripts import Server

T = TypeVar("T")

#: Every wait in these tests is bounded by this many seconds at most.
STEP_TIMEOUT = 5.0


class ServerLoop:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-server")
        self.thread.daemon = True
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = STEP_TIMEOUT) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.call(cancel_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(STEP_TIMEOUT)
        self.loop.close()


@dataclass
class Record:
    """What a scripted server saw (written on the server thread, read by the test)."""

    connections: int = 0
    paths: list[str] = field(default_factory=list)
    headers: list[Headers] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    close_codes: list[int | None] = field(default_factory=list)
    close_reasons: list[str | None] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)

    def types(self) -> list[str]:
        return [str(message.get("type")) for message in self.received]

    async def wait_done(self, timeout: float = STEP_TIMEOUT) -> None:
        """Wait (from the test's side, any backend) until the handler said it finished."""
        finished = await anyio.to_thread.run_sync(self.done.wait, timeout)
        assert finished, "the scripted server did not finish in time"


Handler = Callable[[ServerConnection, Record, Server], Awaitable[None]]


async def receive(ws: ServerConnection, record: Record) -> dict[str, Any]:
    """The next client message, parsed and recorded."""
    text = await asyncio.wait_for(ws.recv(), STEP_TIMEOUT)
    message: dict[str, Any] = json.loads(text)
    record.received.append(message)
    return message


async def receive_until(ws: ServerConnection, record: Record, kind: str) -> dict[str, Any]:
    """Client messages until one of type ``kind`` (returned)."""
    while True:
        message = await receive(ws, record)
        if message.get("type") == kind:
            return message


async def open_session(ws: ServerConnection, record: Record, server: Server) -> None:
    """What every Realtime server does first: session.created, then answer session.update."""
    await ws.send(server.session_created())
    await receive_until(ws, record, "session.update")
    await ws.send(server.session_updated())


async def drain(ws: ServerConnection, record: Record) -> None:
    """Record client messages until the client closes."""
    try:
        async for text in ws:
            record.received.append(json.loads(text))
    except Exception:
        pass


class ScriptedServer:
    """A ``websockets`` server whose every connection runs ``handler``."""

    def __init__(
        self,
        loop: ServerLoop,
        handler: Handler,
        *,
        ssl_context: ssl.SSLContext | None = None,
        process_request: Callable[[ServerConnection, Request], Response | None] | None = None,
        max_size: int | None = None,
        ping_interval: float | None = None,
    ) -> None:
        self.loop = loop
        self.record = Record()
        self.events = Server()
        record = self.record

        async def run(ws: ServerConnection) -> None:
            record.connections += 1
            record.paths.append(ws.request.path if ws.request else "")
            if ws.request is not None:
                record.headers.append(ws.request.headers)
            try:
                await handler(ws, record, self.events)
            finally:
                if ws.close_code is None:
                    with suppress(Exception):
                        await asyncio.wait_for(ws.wait_closed(), STEP_TIMEOUT)
                record.close_codes.append(ws.close_code)
                record.close_reasons.append(ws.close_reason)
                record.done.set()

        async def start() -> Any:
            return await serve(
                run,
                "127.0.0.1",
                0,
                ssl=ssl_context,
                process_request=process_request,
                max_size=max_size,
                ping_interval=ping_interval,
                close_timeout=2,
            )

        self.server = loop.call(start())
        self.port: int = self.server.sockets[0].getsockname()[1]
        scheme = "wss" if ssl_context is not None else "ws"
        self.url = f"{scheme}://127.0.0.1:{self.port}/v1/realtime?model=gpt-realtime"

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()
            await asyncio.wait_for(self.server.wait_closed(), STEP_TIMEOUT)

        self.loop.call(close())


class RawServer:
    """A plain TCP server whose every connection runs ``handler(reader, writer)``."""

    def __init__(
        self,
        loop: ServerLoop,
        handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    ) -> None:
        self.loop = loop

        async def start() -> asyncio.Server:
            return await asyncio.start_server(handler, "127.0.0.1", 0)

        self.server = loop.call(start())
        self.port: int = self.server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/v1/realtime?model=gpt-realtime"

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()

        self.loop.call(close())


@contextmanager
def scripted(loop: ServerLoop, handler: Handler, **options: Any) -> Iterator[ScriptedServer]:
    server = ScriptedServer(loop, handler, **options)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def raw(
    loop: ServerLoop,
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> Iterator[RawServer]:
    server = RawServer(loop, handler)
    try:
        yield server
    finally:
        server.stop()


def json_response(
    status: int, reason: str, body: dict[str, Any], extra: Sequence[tuple[str, str]] = ()
) -> Response:
    """An HTTP error answer to the upgrade, with an OpenAI error envelope (and ``extra``
    headers, such as ``Retry-After``)."""
    data = json.dumps(body).encode()
    headers = Headers(
        [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *extra]
    )
    return Response(status, reason, headers, data)


# ------------------------------------------------------------------------ client facade --


class Handle:
    """One connection, whatever the driver: awaitable commands and ``next``."""

    def __init__(self, conn: Any, threaded: bool) -> None:
        self.conn = conn
        self.threaded = threaded

    async def next(self, timeout: float = STEP_TIMEOUT) -> Any:
        """The next event (None at the end), failing the test after ``timeout``."""
        if self.threaded:
            return await anyio.to_thread.run_sync(self.conn.next_event, timeout)
        with anyio.fail_after(timeout):
            return await self.conn.next_event()

    async def until(
        self, predicate: Callable[[Any], bool], timeout: float = STEP_TIMEOUT
    ) -> list[Any]:
        """Events up to and including the first that matches (fails at the end or timeout)."""
        seen: list[Any] = []
        with anyio.fail_after(timeout):
            while True:
                event = await self.next(timeout)
                assert event is not None, f"ended before the expected event; saw {names(seen)}"
                seen.append(event)
                if predicate(event):
                    return seen

    async def rest(self, timeout: float = STEP_TIMEOUT) -> list[Any]:
        """Every event until the end."""
        seen: list[Any] = []
        with anyio.fail_after(timeout):
            while (event := await self.next(timeout)) is not None:
                seen.append(event)
        return seen

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.conn, name)
        if self.threaded:
            return await anyio.to_thread.run_sync(lambda: method(*args, **kwargs))
        return await method(*args, **kwargs)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.call("close", code, reason)


class Client:
    """Opens connections with one driver: ``asyncio``, ``trio`` or ``threads``."""

    def __init__(self, driver: str) -> None:
        self.driver = driver
        self.threaded = driver == "threads"

    @asynccontextmanager
    async def connect(self, url: str, **options: Any) -> AsyncIterator[Handle]:
        options.setdefault("api_key", "sk-test-key")
        if self.threaded:
            conn = connect_sync(url, **options)
            await anyio.to_thread.run_sync(conn.__enter__)
            try:
                yield Handle(conn, threaded=True)
            finally:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(conn.close)
        else:
            async with connect(url, **options) as aconn:
                yield Handle(aconn, threaded=False)

    async def open(self, url: str, **options: Any) -> None:
        """Connect and close at once (for connect-time failures: raises what connect raises)."""
        async with self.connect(url, **options):
            pass


def names(events: list[Any]) -> list[str]:
    """A readable list of event names, for assertion messages."""
    return [str(getattr(e, "name", None) or getattr(e, "type", type(e).__name__)) for e in events]


# --------------------------------------------------------------- a hand-made WebSocket --

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def raw_upgrade(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """Accept the client's upgrade by hand (no extensions); returns the request."""
    request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), STEP_TIMEOUT)
    found = re.search(rb"(?im)^sec-websocket-key:\s*(\S+)", request)
    assert found is not None
    accept = base64.b64encode(hashlib.sha1(found.group(1) + _GUID).digest())
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    await writer.drain()
    return request


def server_frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final frame as a server sends it."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big")
    return header + payload


async def read_client_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One masked client frame: (opcode, unmasked payload)."""
    head = await reader.readexactly(2)
    length = head[1] & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    key = await reader.readexactly(4)
    data = await reader.readexactly(length)
    return head[0] & 0x0F, bytes(b ^ key[i % 4] for i, b in enumerate(data))
