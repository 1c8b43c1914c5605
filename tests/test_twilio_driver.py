"""Phone calls end to end: ``streamdouble`` (a Twilio Media Streams simulator from PyPI) calls
:func:`rtproto.adapters.twilio.serve_twilio`, whose handler bridges each call to the emulator
with :func:`rtproto.adapters.twilio.bridge_call`; plus the accepting socket's edges, driven
by the ``websockets`` client."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Awaitable, Callable, Iterator
from importlib.resources import files
from typing import Any

import anyio
import anyio.to_thread
import pytest
import websockets
from rtproto.adapters.server import RunningServer, ServerConfig, start_in_thread
from rtproto.adapters.twilio import MediaStreamSocket, bridge_call, serve_twilio
from rtproto.adapters.wavfile import read_pcm24k
from streamdouble.api import CallReport, call, call_sync, run_scenario
from streamdouble.scenario import Expect, Say, Scenario, Wait, WaitFor
from streamdouble.session import SessionConfig
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import connect as ws_connect

from rtproto.audio import pcm16_to_array, resample, ulaw_encode
from rtproto.phone import TwilioMessageReceived
from rtproto.session import (
    AudioInterrupted,
    ConnectionChange,
    ConnectionStatus,
    ProtocolWarning,
    TurnDone,
)
from rtproto.wire.twilio import StreamStart

#: Every call here ends within this many seconds.
CALL_TIMEOUT = 30.0


def hello_frames(silence_s: float = 2.0) -> list[bytes]:
    """The packaged greeting as a caller's voice: 20 ms frames of mu-law at 8 kHz, then
    ``silence_s`` of silence (so the server's turn detection hears the speech end)."""
    pcm = read_pcm24k(str(files("rtproto") / "data" / "hello.wav"))
    audio = ulaw_encode(resample(pcm16_to_array(pcm), 24000, 8000))
    audio += b"\xff" * int(8000 * silence_s)
    return [audio[i : i + 160] for i in range(0, len(audio) - 159, 160)]


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningServer]:
    with start_in_thread(ServerConfig()) as running:
        yield running


def realtime_url(emulator: RunningServer) -> str:
    return f"{emulator.url}?model=gpt-realtime"


Handler = Callable[[MediaStreamSocket], Awaitable[None]]


class Bridging:
    """A handler bridging each call to the emulator, recording every event; ``ended()``
    waits until the call ended by itself (the server is still up)."""

    def __init__(self, emulator: RunningServer) -> None:
        self.emulator = emulator
        self.seen: list[Any] = []
        self._ended: anyio.Event | None = None
        #: What ended a call other than its end (a cancellation escaping the call, say).
        self.failures: list[BaseException] = []

    async def __call__(self, socket: MediaStreamSocket) -> None:
        url = realtime_url(self.emulator)
        try:
            async with bridge_call(socket, url, api_key="sk-test") as bridged:
                async for event in bridged:
                    self.seen.append(event)
        except BaseException as exc:
            self.failures.append(exc)
            raise
        finally:
            self._event().set()

    def _event(self) -> anyio.Event:
        if self._ended is None:
            self._ended = anyio.Event()
        return self._ended

    async def ended(self) -> None:
        await self._event().wait()

    def of(self, kind: type[Any]) -> list[Any]:
        return [event for event in self.seen if isinstance(event, kind)]


def test_a_call_through_the_twilio_simulator(emulator: RunningServer) -> None:
    """The caller speaks, the model answers: its audio reaches the caller with a mark per
    chunk and one per item, every mark comes back, nothing breaks Twilio's protocol."""
    calls = Bridging(emulator)

    async def main() -> CallReport:
        async with serve_twilio(calls) as server:
            with anyio.fail_after(CALL_TIMEOUT):
                config = SessionConfig(custom_parameters={"tenant": "acme"})
                report = await call(server.url, frames=hello_frames(), config=config)
                await calls.ended()  # Twilio's stop ends the call
                return report

    report = anyio.run(main)
    assert report.exit_code == 0, report.to_dict()
    assert report.violations == []
    assert len(report.audio_received) == 3 * 8000  # the emulator's 3 s answer, as mu-law
    marks = report.result.marks_received
    assert sorted(report.result.marks_echoed) == sorted(marks)  # (same-time echoes: any order)
    assert all(re.fullmatch(r"item_\w+:\d+:g1:m\d+", name) for name in marks[:-1])
    assert re.fullmatch(r"done:item_\w+:g1:m\d+", marks[-1])
    assert report.result.clears_received == 0
    (start,) = [e.message for e in calls.of(TwilioMessageReceived)][1:2]
    assert isinstance(start, StreamStart)
    assert start.custom_parameters == {"tenant": "acme"}
    assert start.stream_sid == report.stream_sid
    assert calls.of(TurnDone)
    assert not calls.of(ProtocolWarning)
    assert calls.of(ConnectionChange)[-1].status is ConnectionStatus.DISCONNECTED
    assert calls.failures == []  # the call ended by itself, cleanly


def test_barge_in_clears_twilio_and_cuts_where_the_caller_was(emulator: RunningServer) -> None:
    """The caller talks over the answer: Twilio is told to clear, and the answer is cut
    where the marks say the caller was (plus 50 ms), far short of what was sent."""
    calls = Bridging(emulator)
    frames = hello_frames(silence_s=0.5)  # the answer starts during this silence
    scenario = Scenario(
        name="barge-in",
        steps=[
            Say(path=files("rtproto") / "data" / "hello.wav", frames=frames),  # type: ignore[arg-type]
            WaitFor("audio"),
            Wait(0.3),
            Say(path=files("rtproto") / "data" / "hello.wav", frames=frames[:50]),  # type: ignore[arg-type]
            Wait(1.0),
            Expect("clear"),
        ],
    )

    async def main() -> CallReport:
        async with serve_twilio(calls) as server:
            with anyio.fail_after(CALL_TIMEOUT):
                report = await run_scenario(server.url, scenario)
                await calls.ended()
                return report

    report = anyio.run(main)
    assert report.result.failed_expectations == [], report.to_dict()
    assert report.result.clears_received >= 1
    (interrupted, *_) = calls.of(AudioInterrupted)
    (cut,) = interrupted.truncated
    assert 400 <= cut.audio_end_ms < cut.received_ms == 3000


def test_the_trio_backend(emulator: RunningServer) -> None:
    calls = Bridging(emulator)

    async def main() -> CallReport:
        async with serve_twilio(calls) as server:
            with anyio.fail_after(CALL_TIMEOUT):
                caller = lambda: call_sync(server.url, frames=hello_frames())  # noqa: E731
                report = await anyio.to_thread.run_sync(caller)
                await calls.ended()
                return report

    report = anyio.run(main, backend="trio")
    assert report.exit_code == 0, report.to_dict()
    assert sorted(report.result.marks_echoed) == sorted(report.result.marks_received) != []


# --------------------------------------------------------------- the accepting socket --


async def serving(handler: Handler, test: Callable[[str], Awaitable[None]], **options: Any) -> None:
    async with serve_twilio(handler, **options) as server:
        with anyio.fail_after(CALL_TIMEOUT):
            await test(server.url)


async def echo(socket: MediaStreamSocket) -> None:
    """Sends back every message, then the ``close`` it ends with."""
    while (message := await socket.receive()) is not None:
        await socket.send(message)


def test_the_signature_is_checked_when_the_auth_token_is_given() -> None:
    public = "wss://agent.example/media-stream?tenant=acme"
    signature = RequestValidator("token-1").compute_signature(public, {})

    async def test(url: str) -> None:
        with pytest.raises(websockets.InvalidStatus) as refused:
            await ws_connect(url + "?tenant=acme")
        assert refused.value.response.status_code == 403
        forged = {"X-Twilio-Signature": RequestValidator("token-2").compute_signature(public, {})}
        with pytest.raises(websockets.InvalidStatus):
            await ws_connect(url + "?tenant=acme", additional_headers=forged)
        headers = {"X-Twilio-Signature": signature}
        async with ws_connect(url + "?tenant=acme", additional_headers=headers) as ws:
            await ws.send('{"event":"connected"}')
            assert await ws.recv() == '{"event":"connected"}'

    anyio.run(lambda: serving(echo, test, auth_token="token-1", public_url=public))


def test_the_signed_url_defaults_to_the_host_and_target() -> None:
    async def test(url: str) -> None:
        host = url.removeprefix("ws://").split("/")[0]
        public = f"wss://{host}/media-stream"
        headers = {"X-Twilio-Signature": RequestValidator("t").compute_signature(public, {})}
        async with ws_connect(url, additional_headers=headers) as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"

    anyio.run(lambda: serving(echo, test, auth_token="t"))


def test_another_path_is_not_found() -> None:
    async def test(url: str) -> None:
        with pytest.raises(websockets.InvalidStatus) as refused:
            await ws_connect(url.replace("/media-stream", "/other"))
        assert refused.value.response.status_code == 404

    anyio.run(lambda: serving(echo, test))


@pytest.mark.parametrize(
    ("message", "code"),
    [("x" * 101, 1009), (b"\x00\x01", 1003)],
    ids=["too-large", "binary"],
)
def test_what_twilio_never_sends_closes_the_socket(message: str | bytes, code: int) -> None:
    async def test(url: str) -> None:
        async with ws_connect(url, max_size=None) as ws:
            await ws.send("x" * 100)  # exactly the bound: taken
            assert await ws.recv() == "x" * 100
            await ws.send(message)
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            assert ws.close_code == code

    anyio.run(lambda: serving(echo, test, max_message_size=100))


def test_pings_are_answered_and_fragments_joined() -> None:
    async def test(url: str) -> None:
        async with ws_connect(url) as ws:
            await (await ws.ping())
            await ws.send(["frag", "ment"])
            assert await ws.recv() == "fragment"

    anyio.run(lambda: serving(echo, test))


def test_the_realtime_side_ending_hangs_up_the_call() -> None:
    """The Realtime session ends (here the emulator closes it with 1001): Twilio's socket
    is closed, so the caller is not left on a silent line."""
    with start_in_thread(ServerConfig(close_1001_after=0.5)) as short:
        calls = Bridging(short)

        async def main() -> CallReport:
            async with serve_twilio(calls) as server:
                with anyio.fail_after(CALL_TIMEOUT):
                    report = await call(server.url, frames=[b"\xff" * 160] * 200)
                    await calls.ended()
                    return report

        report = anyio.run(main)
    assert report.result.closed_by == "agent"
    assert report.time_to_first_audio_ms is None


def test_an_upgrade_that_never_comes_is_dropped() -> None:
    async def test(url: str) -> None:
        port = int(url.split(":")[2].split("/")[0])
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(b"GET /media-stream HTTP/1.1\r\n")  # and nothing more
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await stream.receive()

    anyio.run(lambda: serving(echo, test, handshake_timeout=0.2))


def test_a_request_that_is_not_an_upgrade_is_refused() -> None:
    async def test(url: str) -> None:
        port = int(url.split(":")[2].split("/")[0])
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(b"GET /media-stream HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            with contextlib.suppress(anyio.EndOfStream):
                while chunk := await stream.receive():
                    answer += chunk
            assert answer.startswith(b"HTTP/1.1 400 ")

    anyio.run(lambda: serving(echo, test))


# ------------------------------------------------------------------ on plain threads --


class BlockingSocket:
    """A ``websockets.sync`` server connection as bridge_call_sync's Twilio socket (what a
    blocking framework's WebSocket looks like)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    def receive(self) -> str | bytes | None:
        try:
            message: str | bytes = self.ws.recv()
        except websockets.ConnectionClosed:
            return None
        return message

    def send(self, text: str) -> None:
        try:
            self.ws.send(text)
        except websockets.ConnectionClosed as exc:
            raise OSError("closed") from exc

    def close(self) -> None:
        self.ws.close()


def test_the_thread_driver(emulator: RunningServer) -> None:
    """The same call on threads: a blocking server hands the socket to bridge_call_sync."""
    from rtproto.adapters.twilio_sync import bridge_call_sync
    from websockets.sync.server import serve

    seen: list[Any] = []
    ended = threading.Event()

    def handler(ws: Any) -> None:
        try:
            with bridge_call_sync(
                BlockingSocket(ws), realtime_url(emulator), api_key="sk-test"
            ) as bridged:
                seen.extend(bridged)
        finally:
            ended.set()

    with serve(handler, "127.0.0.1", 0) as server:
        worker = threading.Thread(target=server.serve_forever, daemon=True)
        worker.start()
        url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}/media-stream"
        report = call_sync(url, frames=hello_frames())
        assert ended.wait(CALL_TIMEOUT)  # Twilio's stop ended the call
        server.shutdown()
    assert report.exit_code == 0, report.to_dict()
    assert len(report.audio_received) == 3 * 8000
    assert sorted(report.result.marks_echoed) == sorted(report.result.marks_received) != []
    assert [e for e in seen if isinstance(e, TurnDone)]
    assert [e for e in seen if isinstance(e, ConnectionChange)][-1].status is (
        ConnectionStatus.DISCONNECTED
    )
    assert not [t.name for t in threading.enumerate() if t.name.startswith("rtproto-twilio")]


def test_leaving_the_call_early_hangs_up_cleanly(emulator: RunningServer) -> None:
    """The application stops iterating and leaves the ``async with`` mid-call: the Realtime
    connection closes, Twilio's socket closes, nothing escapes."""
    failures: list[BaseException] = []

    async def handler(socket: MediaStreamSocket) -> None:
        try:
            async with bridge_call(socket, realtime_url(emulator), api_key="sk-test") as call:
                async for event in call:
                    if isinstance(event, TwilioMessageReceived) and event.message.event == "start":
                        break
        except BaseException as exc:
            failures.append(exc)
            raise

    async def main() -> CallReport:
        async with serve_twilio(handler) as server:
            with anyio.fail_after(CALL_TIMEOUT):
                return await call(server.url, frames=hello_frames())

    report = anyio.run(main)
    assert failures == []
    assert report.result.closed_by == "agent"
    assert report.time_to_first_audio_ms is None


def test_a_bridged_call_does_not_reconnect() -> None:
    from rtproto.adapters.twilio_sync import bridge_call_sync

    from rtproto.errors import LocalProtocolError

    for bridging_call in (bridge_call, bridge_call_sync):
        with pytest.raises(LocalProtocolError, match="does not reconnect"):
            bridging_call(None, "ws://127.0.0.1:9/v1/realtime", reconnect=True)  # type: ignore[arg-type]
