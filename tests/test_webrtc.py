"""WebRTC end to end: the aiortc client driver against the emulator over 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import numpy as np
import pytest

pytest.importorskip("aiortc", reason="aiortc is not installed (pip install 'rtproto[webrtc]')")

from rtproto.adapters._core import ConnectError, ConnectTimeout
from rtproto.adapters._http import round_trip
from rtproto.adapters._media import BorrowedTrack, PcmTrack, loopback_candidates
from rtproto.adapters.calls import control_call
from rtproto.adapters.server import ServerConfig, serve
from rtproto.adapters.webrtc import (
    AUDIO_TAIL_SECONDS,
    WebRTCConnection,
    connect_webrtc,
    post_offer,
)

import rtproto
from rtproto import events as E
from rtproto.server.responder import HookResponder, ResponsePlan, SpeechPart
from rtproto.session import (
    AudioChunk,
    ConnectionChange,
    ConnectionStatus,
    ProtocolWarning,
    ServerError,
)
from rtproto.wire.signalling import (
    CallControlResult,
    CallExchange,
    ClientSecretExchange,
    SignallingError,
    accept_call,
    hangup_call,
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


async def _read_request_body(stream: Any) -> bytes:
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
    return body


def _stub_calls_server(peers: list[Any], *, gone: bool = False) -> Callable[[Any], Awaitable[None]]:
    """A calls endpoint whose peer accepts the data channel and never says a word (or,
    ``gone``, whose peer is gone once it answered: nothing ever answers on its candidates)."""
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    async def handle(stream: Any) -> None:
        body = await _read_request_body(stream)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        peers.append(pc)
        pc.on("datachannel", lambda channel: None)  # accepts the channel, never answers
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body.decode(), type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        answer = pc.localDescription.sdp.encode()
        if gone:
            await pc.close()
        await stream.send(
            b"HTTP/1.1 201 Created\r\nContent-Type: application/sdp\r\nLocation: "
            b"/v1/realtime/calls/rtc_stub\r\nContent-Length: %d\r\n\r\n" % len(answer) + answer
        )
        await stream.aclose()

    return handle


async def test_session_updated_timeout() -> None:
    """A server that never answers session.update: connected after the timeout, warned."""
    peers: list[Any] = []
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, _stub_calls_server(peers))
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


async def test_a_muted_track_sends_silence_and_keeps_time() -> None:
    """Muted, the outgoing track still pulls its audio in real time (a muted microphone
    still captures) and sends silence; unmuted, the audio goes out again."""
    pulled: list[int] = []

    def pull() -> bytes:
        pulled.append(1)
        return tone(20)  # 20 ms at 24 kHz: one 48 kHz frame

    track = PcmTrack(pull)
    track.muted = True
    frames = [await track.recv() for _ in range(3)]
    assert all(not frame.to_ndarray().any() for frame in frames)
    assert len(pulled) >= 3  # the audio was taken, and not heard
    assert [frame.pts for frame in frames] == [0, 960, 1920]  # time went on
    track.muted = False
    await track.recv()  # (the resampler's delay: the first frame after is partly old)
    assert np.abs((await track.recv()).to_ndarray()).max() > 1000
    source = PcmTrack(pull)
    borrowed = BorrowedTrack(source)
    borrowed.muted = True
    silent = await borrowed.recv()
    assert not silent.to_ndarray().any()
    assert (silent.samples, silent.sample_rate, silent.pts) == (960, 48000, 0)
    assert silent.format.name == "s16" and silent.layout.name == "mono"
    borrowed.muted = False
    await borrowed.recv()
    assert np.abs((await borrowed.recv()).to_ndarray()).max() > 1000


async def test_mute_keeps_the_microphone_from_the_model(server: Any) -> None:
    """Speech sent while muted is not heard (no speech_started); after unmuting it is."""
    async with connect_webrtc(calls_url(server), api_key="sk-test") as conn:
        assert conn.muted is False
        conn.mute()
        assert conn.muted is True
        await conn.send_audio(tone(600) + bytes(24 * 2 * 900))
        with pytest.raises(TimeoutError):
            await until(conn, lambda e: isinstance(e, E.InputAudioBufferSpeechStarted), 2.5)
        conn.mute(False)
        await conn.send_audio(tone(600) + bytes(24 * 2 * 900))
        await until(conn, lambda e: isinstance(e, E.InputAudioBufferSpeechStarted), 10)


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


@pytest.mark.parametrize("state", ["failed", "closed"])
async def test_peer_failed_or_closed_ends_at_once(server: Any, state: str) -> None:
    """No grace period for these (spec/transport-behaviour.md 4.4): only ``disconnected``."""
    async with connect_webrtc(calls_url(server), api_key="sk-test", disconnected_grace=30) as conn:
        start = anyio.current_time()
        _peer_state(conn, state)
        seen = await until(conn, lambda e: getattr(e, "status", None) is _DOWN, timeout=3)
        assert anyio.current_time() - start < 1.0
        assert seen[-1].reason == f"peer connection {state}"
        assert conn.call_id is None
        assert await conn.next_event(timeout=1) is None
        with pytest.raises(rtproto.ConnectionClosed):
            await conn.send_message("anyone?")


# --- media the caller owns is never stopped (spec/transport-behaviour.md 4.4 and 10) -----------


async def test_caller_track_outlives_the_connection(server: Any) -> None:
    mine = PcmTrack(lambda: None)  # the application's microphone, say
    async with connect_webrtc(calls_url(server), api_key="sk-test", audio_track=mine) as conn:
        assert conn.call_id is not None and mine.readyState == "live"
        await conn.send_message("hello")
        await until(conn, lambda e: isinstance(e, E.ResponseDone), 20)
    assert conn.pc.connectionState == "closed"
    assert mine.readyState == "live"
    frame = await mine.recv()  # and still usable
    assert frame.sample_rate == 48000
    # a refused connect leaves it alone too
    with pytest.raises(SignallingError) as info:
        async with connect_webrtc(calls_url(server), api_key="ek_unknown", audio_track=mine):
            pass  # pragma: no cover
    assert info.value.status == 401
    assert mine.readyState == "live"
    # and a transport that fails under it
    async with connect_webrtc(calls_url(server), api_key="sk-test", audio_track=mine) as conn:
        _peer_state(conn, "failed")
        await until(conn, lambda e: getattr(e, "status", None) is _DOWN, timeout=3)
    assert mine.readyState == "live"


async def test_close_goes_on_when_a_cleanup_step_fails(server: Any) -> None:
    async with connect_webrtc(calls_url(server), api_key="sk-test") as conn:
        track = conn._track
        original = track.stop
        calls: list[str] = []

        def stop() -> None:  # the driver's own stop() fails; aiortc's (later) one works
            calls.append("stop")
            if len(calls) == 1:
                raise RuntimeError("stop failed")
            original()

        track.stop = stop
    assert calls  # the driver did stop its track
    assert conn.pc.connectionState == "closed"  # and pc.close() still ran


# --- the model's audio: whole, from its first sound to its last -------------------------------


def _reply_server(ms: int) -> Any:
    """An emulator whose every reply is a tone of ``ms`` milliseconds.

    ``fast``: the reply's audio is queued at once and the outgoing track plays it in real
    time (``realtime`` queues it just in time, and a busy machine hears gaps)."""
    audio = tone(ms, 440.0)
    config = ServerConfig(
        pace="fast",
        responder=lambda: HookResponder(lambda context: ResponsePlan((SpeechPart("hi", audio),))),
    )
    return serve(options=config)


async def test_reply_audio_is_delivered_whole() -> None:
    """The media track lags the data channel (jitter buffer, pacing): audio still arrives
    after ``output_audio_buffer.stopped``. It is all delivered, before that event; the
    silence played before the reply reached the track is not."""
    async with (
        _reply_server(600) as running,
        connect_webrtc(calls_url(running), api_key="sk-test") as conn,
    ):
        for _ in range(2):  # every turn, not only the first
            await conn.send_message("hello")
            seen = await until(conn, lambda e: isinstance(e, E.OutputAudioBufferStopped), 20)
            chunks = [e.pcm for e in seen if isinstance(e, AudioChunk)]
            pcm = np.concatenate(chunks).astype(np.int32)
            delivered_ms = len(pcm) / 24
            loud = np.nonzero(np.abs(pcm) > 300)[0]
            sound_ms = (loud[-1] - loud[0] + 1) / 24
            # within one 20 ms frame (the codec's delay shifts the tone inside frames)
            assert abs(delivered_ms - 600) <= 20, delivered_ms
            assert abs(sound_ms - 600) <= 20, sound_ms
            assert loud[0] < 24 * 20  # no silence first (at most one frame's codec delay)
            # and nothing of that response after its stopped event
            more = []
            with anyio.move_on_after(0.4):
                while (event := await conn.next_event()) is not None:
                    more.append(event)
            assert not [e for e in more if isinstance(e, AudioChunk)]


async def test_cleared_cuts_the_audio_at_once() -> None:
    """An interruption (``output_audio_buffer.cleared``) gets no tail: no audio after it."""
    async with (
        _reply_server(5000) as running,
        connect_webrtc(calls_url(running), api_key="sk-test") as conn,
    ):
        await conn.send_message("hello")
        await until(conn, lambda e: isinstance(e, AudioChunk))
        await anyio.sleep(0.3)
        await conn.interrupt()
        seen = await until(conn, lambda e: isinstance(e, E.OutputAudioBufferCleared))
        assert [e for e in seen if isinstance(e, AudioChunk)]
        more = []
        with anyio.move_on_after(0.5):
            while (event := await conn.next_event()) is not None:
                more.append(event)
        assert not [e for e in more if isinstance(e, AudioChunk)]


class _LoudTrack:
    """A remote track that plays a tone forever (or stalls, once ``stall`` is set)."""

    kind = "audio"

    def __init__(self) -> None:
        self.stall = False

    async def recv(self) -> Any:
        import av

        while self.stall:
            await asyncio.sleep(1)
        await asyncio.sleep(0.02)
        samples = (np.sin(np.arange(960) / 10) * 10000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 48000
        return frame


def _bare_connection() -> WebRTCConnection:
    return WebRTCConnection(
        url="http://127.0.0.1:9/v1/realtime/calls",
        api_key="sk-test",
        model=None,
        session=None,
        ice_servers=(),
        session_update_timeout=5,
        connect_timeout=5,
        disconnected_grace=5,
        ssl_context=None,
    )


@pytest.mark.parametrize("stall", [False, True])
async def test_audio_tail_is_bounded(stall: bool) -> None:
    """A track still loud after ``stopped`` (or one that stalls) ends the response's audio
    after AUDIO_TAIL_SECONDS; the held ``stopped`` event and the ones after it follow."""
    conn = _bare_connection()
    track = _LoudTrack()
    conn._remote_track(track)
    conn._spawn(conn._timer_loop())
    try:
        conn._deliver(E.OutputAudioBufferStarted(event_id="e1", response_id="resp_1"))
        await anyio.sleep(0.2)
        assert conn._events and isinstance(conn._events[-1], AudioChunk)
        track.stall = stall
        conn._deliver(E.OutputAudioBufferStopped(event_id="e2", response_id="resp_1"))
        conn._deliver(E.InputAudioBufferCleared(event_id="e3"))
        stopped_at = anyio.current_time()
        seen: list[Any] = []
        with anyio.fail_after(2):
            while not seen or not isinstance(seen[-1], E.InputAudioBufferCleared):
                seen.append(await conn.next_event())
        waited = anyio.current_time() - stopped_at
        assert AUDIO_TAIL_SECONDS - 0.05 <= waited <= AUDIO_TAIL_SECONDS + 0.15
        kinds = [type(e) for e in seen]
        assert kinds[-2:] == [E.OutputAudioBufferStopped, E.InputAudioBufferCleared]
        chunks = [e for e in seen if isinstance(e, AudioChunk)]
        assert all(e.response_id == "resp_1" for e in chunks)
        tail_ms = sum(len(e.pcm) for e in chunks) / 24
        assert tail_ms <= (AUDIO_TAIL_SECONDS * 1000 + 20) * 2  # bounded (with what came first)
        await anyio.sleep(0.1)
        assert not conn._events  # the tone goes on, but no response plays
    finally:
        await conn._end("test over")


# --- the session a call starts with: the client secret's, the offer's over it (spec 1.2) -----


async def _mint(server: Any, session: dict[str, Any]) -> str:
    exchange = ClientSecretExchange(
        api_key="sk-test",
        url=f"http://127.0.0.1:{server.port}/v1/realtime/client_secrets",
        session=session,
    )
    secret = await round_trip(exchange, timeout=5)
    return secret.value


async def _session_created(
    server: Any, api_key: str, session: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Offer a call (with ``session`` as the multipart field) and read its session.created."""
    from aiortc import RTCPeerConnection, RTCSessionDescription

    pc = RTCPeerConnection()
    messages: asyncio.Queue[str] = asyncio.Queue()
    channel = pc.createDataChannel("oai-events")
    channel.on("message", messages.put_nowait)
    pc.addTrack(PcmTrack(lambda: None))
    try:
        await pc.setLocalDescription(await pc.createOffer())
        exchange = CallExchange(
            pc.localDescription.sdp, api_key=api_key, url=calls_url(server), session=session
        )
        answer = await post_offer(exchange, timeout=5)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
        with anyio.fail_after(10):
            while True:
                event = json.loads(await messages.get())
                if event["type"] == "session.created":
                    created: dict[str, Any] = event["session"]
                    return created
    finally:
        await pc.close()


async def test_call_session_comes_from_the_client_secret(server: Any) -> None:
    key = await _mint(
        server,
        {
            "type": "realtime",
            "instructions": "FROM_SECRET",
            "audio": {"output": {"voice": "verse"}},
        },
    )
    async with connect_webrtc(calls_url(server), api_key=key) as conn:
        seen = await until(conn, lambda e: isinstance(e, E.SessionCreated), 5)
    created = seen[-1].session
    assert created.instructions == "FROM_SECRET"
    assert created.audio.output.voice == "verse"


async def test_call_session_offer_field_over_the_secret(server: Any) -> None:
    key = await _mint(
        server,
        {
            "type": "realtime",
            "instructions": "FROM_SECRET",
            "audio": {"output": {"voice": "verse"}},
        },
    )
    offer_session = {
        "type": "realtime",
        "instructions": "FROM_OFFER",
        "audio": {"input": {"turn_detection": None}, "output": {"speed": 1.25}},
    }
    created = await _session_created(server, key, offer_session)
    assert created["instructions"] == "FROM_OFFER"  # the offer's over the secret's
    assert created["audio"]["output"]["voice"] == "verse"  # the secret's, kept
    assert created["audio"]["output"]["speed"] == 1.25  # the offer's, merged next to it
    assert created["audio"]["input"]["turn_detection"] is None  # the offer's
    # a standard key: the offer's session alone
    created = await _session_created(server, "sk-test", {"type": "realtime", "instructions": "X"})
    assert created["instructions"] == "X" and created["audio"]["output"]["voice"] == "alloy"


async def test_call_session_invalid_is_400(server: Any) -> None:
    offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    exchange = CallExchange(
        offer, api_key="sk-test", url=calls_url(server), session={"type": "realtime", "voice": "x"}
    )
    with pytest.raises(SignallingError) as info:
        await post_offer(exchange, timeout=5)
    assert info.value.status == 400 and info.value.code == "unknown_parameter"
    assert info.value.error is not None and info.value.error["param"] == "session.voice"
    # minting with one is refused the same way
    with pytest.raises(SignallingError) as info:
        await _mint(server, {"type": "realtime", "output_modalities": ["audio", "text"]})
    assert info.value.status == 400 and info.value.code == "invalid_value"


# --- the emulator hangs up on a peer that never opens oai-events --------------------------------


async def test_emulator_closes_a_call_whose_data_channel_never_opens() -> None:
    from aiortc import RTCPeerConnection, RTCSessionDescription

    async with serve(options=ServerConfig(pace="realtime", call_open_timeout=0.5)) as running:
        pc = RTCPeerConnection()  # audio only: no oai-events channel
        pc.addTrack(PcmTrack(lambda: None))
        try:
            await pc.setLocalDescription(await pc.createOffer())
            exchange = CallExchange(
                pc.localDescription.sdp, api_key="sk-test", url=calls_url(running)
            )
            answer = await post_offer(exchange, timeout=5)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
            assert answer.call_id in running.calls
            with anyio.fail_after(5):
                while running.calls:
                    await anyio.sleep(0.05)
        finally:
            await pc.close()
        # a call that opened its channel is not affected by the timeout
        async with connect_webrtc(calls_url(running), api_key="sk-test") as conn:
            await anyio.sleep(0.8)
            assert conn.call_id in running.calls
            await conn.send_message("still there?")
            await until(conn, lambda e: isinstance(e, E.ResponseDone), 20)


# --- the SDP POST: TLS verified by default, bounded in time; the data channel too --------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


_ANSWER = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"


async def test_tls_is_verified_by_default(self_signed: tuple[Path, Path]) -> None:
    from anyio.streams.tls import TLSListener

    from rtproto.wire.signalling import call_created_response, client_secret_response

    cert, key = self_signed
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)

    async def handle(stream: Any) -> None:
        with anyio.move_on_after(5):
            request = await stream.receive()
            if b"client_secrets" in request:
                await stream.send(client_secret_response("ek_1", 2_000_000_000, {}))
            else:
                await stream.send(call_created_response(_ANSWER, "rtc_tls"))

    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = tcp.extra(anyio.abc.SocketAttribute.local_port)
    listener = TLSListener(tcp, server_context, standard_compatible=False)
    base = f"https://127.0.0.1:{port}/v1/realtime"
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        for send in (
            lambda ctx: post_offer(
                CallExchange(_ANSWER, api_key="sk-test", url=base + "/calls"),
                ssl_context=ctx,
                timeout=5,
            ),
            lambda ctx: round_trip(
                ClientSecretExchange(api_key="sk-test", url=base + "/client_secrets"),
                ssl_context=ctx,
                timeout=5,
            ),
        ):
            with pytest.raises(ConnectError) as info:
                await send(None)  # the default context: the self-signed certificate fails
            assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
            trusted = ssl.create_default_context(cafile=str(cert))
            assert await send(trusted) is not None  # the same server, trusted: answers
        tg.cancel_scope.cancel()


async def test_sdp_post_times_out_on_a_silent_server() -> None:
    async def silent(stream: Any) -> None:
        await anyio.sleep(30)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    base = f"http://127.0.0.1:{port}/v1/realtime"
    with anyio.fail_after(10):  # (without the timeouts this would hang for 30 s)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, silent)
            start = anyio.current_time()
            with pytest.raises(ConnectTimeout, match="the SDP offer"):
                await post_offer(
                    CallExchange(_ANSWER, api_key="sk-test", url=base + "/calls"), timeout=0.3
                )
            with pytest.raises(ConnectTimeout):
                await round_trip(
                    ClientSecretExchange(api_key="sk-test", url=base + "/client_secrets"),
                    timeout=0.3,
                )
            with pytest.raises(ConnectTimeout):
                async with connect_webrtc(base + "/calls", api_key="sk-test", connect_timeout=0.3):
                    pass  # pragma: no cover
            assert anyio.current_time() - start < 3
            tg.cancel_scope.cancel()


async def test_data_channel_open_times_out() -> None:
    """An answer whose peer is gone: the data channel never opens."""
    peers: list[Any] = []
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    with anyio.fail_after(10):  # bounded even if the connect timeout is not
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, _stub_calls_server(peers, gone=True))
            start = anyio.current_time()
            with pytest.raises(ConnectTimeout, match="data channel did not open"):
                async with connect_webrtc(
                    f"http://127.0.0.1:{port}/v1/realtime/calls",
                    api_key="sk-test",
                    connect_timeout=1.0,
                ):
                    pass  # pragma: no cover
            assert 1.0 <= anyio.current_time() - start < 3
            tg.cancel_scope.cancel()


async def test_peer_failing_before_the_data_channel_opens_ends_the_connect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No waiting out connect_timeout once the peer connection failed."""
    made: list[WebRTCConnection] = []
    original = WebRTCConnection.__init__

    def capture(self: WebRTCConnection, **kwargs: Any) -> None:
        original(self, **kwargs)
        made.append(self)

    monkeypatch.setattr(WebRTCConnection, "__init__", capture)
    peers: list[Any] = []
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def fail_when_answered() -> None:
        while not made or made[0].call_id is None:
            await anyio.sleep(0.01)
        _peer_state(made[0], "failed")

    with anyio.fail_after(10):  # bounded even if the connect timeout is not
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, _stub_calls_server(peers, gone=True))
            tg.start_soon(fail_when_answered)
            start = anyio.current_time()
            with pytest.raises(ConnectError, match="peer connection failed"):
                async with connect_webrtc(
                    f"http://127.0.0.1:{port}/v1/realtime/calls",
                    api_key="sk-test",
                    connect_timeout=30,
                ):
                    pass  # pragma: no cover
            assert anyio.current_time() - start < 3
            tg.cancel_scope.cancel()


# --- call control: the emulator hangs up its WebRTC calls (spec 1.5) -------------------------


async def test_hangup_ends_the_call(server: Any) -> None:
    url = calls_url(server)
    async with connect_webrtc(url, api_key="sk-test", disconnected_grace=30) as conn:
        call_id = conn.call_id
        assert call_id is not None and call_id in server.calls
        with pytest.raises(SignallingError) as refused:  # accepting is for SIP calls
            await control_call(accept_call(call_id, {}, api_key="sk-test", url=url))
        assert refused.value.status == 400
        assert "WebRTC call" in str(refused.value)
        from rtproto.adapters import connect  # a sideband socket: the emulator's are SIP's only

        async with connect(f"{server.url}?call_id={call_id}", api_key="sk-test") as side:
            codes = [e.error.code async for e in side if isinstance(e, E.ErrorEvent)]
        assert codes == ["unsupported_call"] and side.close_code == 4000
        result = await control_call(hangup_call(call_id, api_key="sk-test", url=url))
        assert result == CallControlResult(call_id, "hangup", 200)
        seen = await until(conn, lambda e: getattr(e, "status", None) is _DOWN, timeout=10)
        assert seen[-1].status is ConnectionStatus.DISCONNECTED
        with anyio.fail_after(5):
            while call_id in server.calls:
                await anyio.sleep(0.05)
    with pytest.raises(SignallingError) as gone:
        await control_call(hangup_call(call_id, api_key="sk-test", url=url))
    assert (gone.value.status, gone.value.code) == (404, "call_id_not_found")
    with pytest.raises(SignallingError) as unkeyed:  # a standard key, never an ephemeral one
        await control_call(hangup_call(call_id, api_key="ek_123", url=url))
    assert unkeyed.value.status == 401
