"""WebRTC end to end: the aiortc client driver against the emulator over 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import numpy as np
import pytest

pytest.importorskip("aiortc", reason="aiortc is not installed (pip install 'rtproto[webrtc]')")

from rtproto.adapters._media import loopback_candidates
from rtproto.adapters.server import ServerConfig, serve
from rtproto.adapters.webrtc import WebRTCConnection, connect_webrtc, post_offer

import rtproto
from rtproto import events as E
from rtproto.session import (
    AudioChunk,
    ConnectionChange,
    ConnectionStatus,
    ProtocolWarning,
    ServerError,
)
from rtproto.wire.signalling import (
    CallExchange,
    ClientSecretExchange,
    SignallingError,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # aiortc is asyncio-only


@pytest.fixture(autouse=True)
def _loopback() -> Iterator[None]:
    with loopback_candidates():
        yield


@pytest.fixture
async def server() -> AsyncIterator[Any]:
    async with serve(options=ServerConfig(pace="realtime")) as running:
        yield running


def calls_url(server: Any) -> str:
    return f"http://127.0.0.1:{server.port}/v1/realtime/calls"


def tone(ms: int, hz: float = 300.0) -> bytes:
    t = np.arange(24 * ms) / 24000.0
    return (np.sin(2 * np.pi * hz * t) * 12000).astype("<i2").tobytes()


async def until(conn: WebRTCConnection, predicate: Any, timeout: float = 15.0) -> list[Any]:
    seen: list[Any] = []
    with anyio.fail_after(timeout):
        async for event in conn:
            seen.append(event)
            if predicate(event):
                return seen
    raise AssertionError(f"ended before the event; saw {[type(e).__name__ for e in seen]}")


async def test_audio_turn(server: Any) -> None:
    async with connect_webrtc(calls_url(server), api_key="sk-test", model="gpt-realtime") as conn:
        assert conn.call_id is not None and conn.call_id.startswith("rtc_")
        await conn.send_audio(tone(600) + bytes(24 * 2 * 900))
        seen = await until(conn, lambda e: isinstance(e, E.OutputAudioBufferStopped), 20)
        kinds = [type(e) for e in seen]
        assert E.InputAudioBufferSpeechStarted in kinds
        assert E.InputAudioBufferSpeechStopped in kinds
        assert E.ResponseDone in kinds
        audio = [e for e in seen if isinstance(e, AudioChunk)]
        assert audio, "no audio events from the media track"
        pcm = np.concatenate([e.pcm for e in audio])
        assert np.abs(pcm.astype(np.int32)).max() > 500  # the reply is not silence
        assert all(e.response_id == audio[0].response_id for e in audio)
    assert conn.call_id is None


async def test_interrupt_clears_output(server: Any) -> None:
    async with connect_webrtc(calls_url(server), api_key="sk-test") as conn:
        await conn.send_message("tell me a long story")
        await until(conn, lambda e: isinstance(e, E.OutputAudioBufferStarted))
        await conn.interrupt()
        seen = await until(conn, lambda e: isinstance(e, E.OutputAudioBufferCleared))
        assert seen[-1].response_id


async def test_images_and_mcp_responses_go_over_the_data_channel(server: Any) -> None:
    """An image becomes a user item; the emulator has no MCP request by that id, so its
    error names the create we sent."""
    async with connect_webrtc(calls_url(server), api_key="sk-test") as conn:
        await conn.add_image(b"\x89PNG\r\n\x1a\n" + bytes(8), trigger_response=False)
        seen = await until(conn, lambda e: isinstance(e, E.ConversationItemAdded))
        assert seen[-1].item.content[0].image_url.startswith("data:image/png;base64,")
        await conn.send_mcp_response("mcpr_missing", True)
        seen = await until(conn, lambda e: isinstance(e, ServerError))
        assert seen[-1].client_event_type == "conversation.item.create"
        assert seen[-1].event.error.param == "previous_item_id"


async def test_session_updated_timeout() -> None:
    """A server that never answers session.update: connected after the timeout, warned."""
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    peers: list[Any] = []

    async def handle(stream: Any) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await stream.receive()
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        while len(body) < length:
            body += await stream.receive()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        peers.append(pc)
        pc.on("datachannel", lambda channel: None)  # accepts the channel, never answers
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body.decode(), type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        answer = pc.localDescription.sdp.encode()
        await stream.send(
            b"HTTP/1.1 201 Created\r\nContent-Type: application/sdp\r\nLocation: "
            b"/v1/realtime/calls/rtc_stub\r\nContent-Length: %d\r\n\r\n" % len(answer) + answer
        )
        await stream.aclose()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        start = anyio.current_time()
        async with connect_webrtc(
            f"http://127.0.0.1:{port}/v1/realtime/calls",
            api_key="sk-test",
            session_update_timeout=0.5,
        ) as conn:
            waited = anyio.current_time() - start
            assert conn.call_id == "rtc_stub"
            events = []
            while (event := await conn.next_event(timeout=1)) is not None:
                events.append(event)
                if (
                    isinstance(event, ConnectionChange)
                    and event.status is ConnectionStatus.CONNECTED
                ):
                    break
            assert any(
                isinstance(e, ProtocolWarning) and "session.updated" in e.message for e in events
            )
        assert waited >= 0.5
        for pc in peers:
            await pc.close()
        tg.cancel_scope.cancel()


async def test_bad_sdp_is_400(server: Any) -> None:
    exchange = CallExchange("v=0\r\nm=audio nonsense\r\n", api_key="sk-test", url=calls_url(server))
    with pytest.raises(SignallingError) as info:
        await post_offer(exchange)
    assert info.value.status == 400
    exchange = CallExchange("not sdp", api_key="sk-test", url=calls_url(server))
    with pytest.raises(SignallingError) as info:
        await post_offer(exchange)
    assert info.value.status == 400 and info.value.code == "invalid_offer"


async def test_ephemeral_keys(server: Any) -> None:
    base = f"http://127.0.0.1:{server.port}/v1/realtime"
    with pytest.raises(SignallingError) as info:
        async with connect_webrtc(base + "/calls", api_key="ek_unknown"):
            pass  # pragma: no cover
    assert info.value.status == 401
    secret_exchange = ClientSecretExchange(
        api_key="sk-test", url=base + "/client_secrets", session={"type": "realtime"}
    )
    secret = await _post_json(secret_exchange)
    assert secret.value.startswith("ek_") and secret.session["object"] == "realtime.session"
    async with connect_webrtc(base + "/calls", api_key=secret.value) as conn:
        assert conn.call_id is not None


async def _post_json(exchange: ClientSecretExchange) -> Any:
    async with await anyio.connect_tcp(exchange.host, exchange.port) as stream:
        await stream.send(exchange.data_to_send())
        while True:
            try:
                data = await stream.receive()
            except anyio.EndOfStream:
                data = b""
            result = exchange.receive_data(data)
            if result is not None:
                return result


async def test_own_track_and_remote_track(server: Any) -> None:
    """Media left to the application: its own outgoing track, the model's track handed over."""
    from rtproto.adapters._media import PcmTrack

    speech = [tone(600), bytes(24 * 2 * 900)]
    mine = PcmTrack(lambda: speech.pop(0) if speech else None)  # the app's own source
    remote: list[Any] = []
    async with connect_webrtc(
        calls_url(server), api_key="sk-test", audio_track=mine, on_remote_track=remote.append
    ) as conn:
        with pytest.raises(rtproto.LocalProtocolError):
            await conn.send_audio(b"\x00\x00")
        seen = await until(conn, lambda e: isinstance(e, E.ResponseDone), 20)
        assert E.InputAudioBufferSpeechStarted in [type(e) for e in seen]  # our track was heard
        assert not [e for e in seen if isinstance(e, AudioChunk)]  # the app owns playback
        assert len(remote) == 1 and remote[0].kind == "audio"
        frame = await remote[0].recv()  # and it is a live audio track
        assert frame.sample_rate == 48000


_DOWN = ConnectionStatus.DISCONNECTED


def _peer_state(conn: WebRTCConnection, state: str) -> None:
    """What a WebRTC stack reports when the network blips (aiortc itself never reports
    ``disconnected``, so the state is set the way other stacks would)."""
    conn.pc._RTCPeerConnection__connectionState = state
    conn.pc.emit("connectionstatechange")


async def test_peer_disconnected_ends_after_the_grace_period(server: Any) -> None:
    async with connect_webrtc(calls_url(server), api_key="sk-test", disconnected_grace=0.3) as conn:
        _peer_state(conn, "disconnected")
        with anyio.fail_after(5):
            seen = await until(conn, lambda e: getattr(e, "status", None) is _DOWN)
        change = seen[-1]
        assert change.status is ConnectionStatus.DISCONNECTED
        assert change.reason == "the transport did not recover within 0.3 s"
        assert conn.call_id is None
        with pytest.raises(rtproto.ConnectionClosed):
            await conn.send_message("anyone?")


async def test_peer_recovering_within_the_grace_period_keeps_the_session(server: Any) -> None:
    async with connect_webrtc(calls_url(server), api_key="sk-test", disconnected_grace=0.3) as conn:
        _peer_state(conn, "disconnected")
        await anyio.sleep(0.1)
        _peer_state(conn, "connected")
        await anyio.sleep(0.4)  # past where the grace period would have ended
        await conn.send_message("still there?")
        seen = await until(conn, lambda e: isinstance(e, E.ResponseDone), 20)
        assert not [e for e in seen if getattr(e, "status", None) is _DOWN]
