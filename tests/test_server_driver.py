"""The emulator's wire (rtproto.wire.server), its anyio driver (rtproto.adapters.server) and
``rtproto serve``, on real sockets on 127.0.0.1.

The clients are independent of the server's code: the ``websockets`` library, and a raw
socket that writes requests and masked frames by hand and parses the server's frames itself
(for what a library hides: fragments, pings, a missing close frame, a byte-by-byte upgrade).
The first half drives the pure ServerWebSocket directly with bytes and a fake clock.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import runpy
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from rtproto.adapters.server import (
    SHUTDOWN_REASON,
    RunningServer,
    ScriptError,
    ServerConfig,
    load_script,
    serve,
    start_in_thread,
)
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

import rtproto
import rtproto.cli.main as cli_main
import rtproto.cli.serve as cli_serve
from rtproto.dialect import Dialect
from rtproto.errors import LocalProtocolError
from rtproto.server import ServerOptions, ServerSession
from rtproto.wire._frames import BINARY, CLOSE, PING, PONG, TEXT, encode_frame
from rtproto.wire.server import (
    MISSING_KEY_MESSAGE,
    UNKNOWN_EVENT_TYPE,
    ConnectRequest,
    ServerState,
    ServerWebSocket,
    ServerWebSocketOptions,
    mask_key,
)

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 5.0
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ITEM = {
    "type": "conversation.item.create",
    "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --------------------------------------------------------------------------- helpers --


def request_bytes(
    target: str = "/v1/realtime?model=gpt-realtime",
    *,
    key: str | None = "sk-test",
    method: str = "GET",
    headers: tuple[str, ...] = (),
    upgrade: bool = True,
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    if upgrade:
        lines += [
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {KEY}",
            "Sec-WebSocket-Version: 13",
        ]
    if key is not None:
        lines.append(f"Authorization: Bearer {key}")
    lines += headers
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def client_frame(opcode: int, payload: bytes | str, *, fin: bool = True) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return encode_frame(opcode, data, os.urandom(4), fin=fin)


def client_text(event: dict[str, Any]) -> bytes:
    return client_frame(TEXT, json.dumps(event))


def take_frame(buf: bytes) -> tuple[tuple[bool, int, bytes], bytes] | None:
    """The first server frame (unmasked) of ``buf`` as (fin, opcode, payload), and the rest."""
    if len(buf) < 2:
        return None
    b0, b1 = buf[0], buf[1]
    assert not b1 & 0x80, "the server masked a frame"
    length = b1 & 0x7F
    start = 2
    if length == 126:
        if len(buf) < 4:
            return None
        (length,) = struct.unpack("!H", buf[2:4])
        start = 4
    elif length == 127:
        if len(buf) < 10:
            return None
        (length,) = struct.unpack("!Q", buf[2:10])
        start = 10
    if len(buf) < start + length:
        return None
    return (bool(b0 & 0x80), b0 & 0x0F, buf[start : start + length]), buf[start + length :]


def parse_frames(buf: bytes) -> tuple[list[tuple[bool, int, bytes]], bytes]:
    """Every complete server frame in ``buf``, and the rest."""
    frames = []
    while (taken := take_frame(buf)) is not None:
        frame, buf = taken
        frames.append(frame)
    return frames, buf


def split_response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


def texts(frames: list[tuple[bool, int, bytes]]) -> list[dict[str, Any]]:
    return [json.loads(p) for fin, op, p in frames if op == TEXT and fin]


def close_of(frames: list[tuple[bool, int, bytes]]) -> tuple[int, str] | None:
    for _, op, payload in frames:
        if op == CLOSE:
            return struct.unpack("!H", payload[:2])[0], payload[2:].decode()
    return None


def answer(
    request: bytes, options: ServerWebSocketOptions | None = None, **kw: Any
) -> tuple[ServerWebSocket, int, dict[str, str], bytes]:
    """A new ServerWebSocket given ``request``: it, and the status, headers and rest it sent."""
    conn = ServerWebSocket(options, **kw)
    conn.connection_made(0.0)
    conn.receive_data(request, 0.0)
    return conn, *split_response(conn.data_to_send())


def upgraded(
    options: ServerWebSocketOptions | None = None,
    request: bytes | None = None,
    random_bytes: Callable[[int], bytes] = lambda n: b"\x07" * n,
    **kw: Any,
) -> tuple[ServerWebSocket, list[tuple[bool, int, bytes]]]:
    """A ServerWebSocket after its upgrade, and the frames it sent first."""
    request = request if request is not None else request_bytes()
    conn, status, _, rest = answer(request, options, random_bytes=random_bytes, **kw)
    assert status == 101
    frames, left = parse_frames(rest)
    assert left == b""
    return conn, frames


def feed(conn: ServerWebSocket, data: bytes, now: float = 0.0) -> list[tuple[bool, int, bytes]]:
    conn.receive_data(data, now)
    frames, left = parse_frames(conn.data_to_send())
    assert left == b""
    return frames


def logs(conn: ServerWebSocket) -> list[str]:
    out = []
    while (record := conn.next_event()) is not None:
        out.append(record.describe())
    return out


# ================================================================ the pure server wire ==


def test_upgrade_sends_101_then_session_created() -> None:
    conn, status, headers, rest = answer(
        request_bytes(headers=("Sec-WebSocket-Protocol: realtime, other",))
    )
    assert status == 101
    assert headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert headers["sec-websocket-protocol"] == "realtime"
    assert headers["server"] == "rtproto/" + rtproto.__version__
    frames, _ = parse_frames(rest)
    (created,) = texts(frames)
    assert created["type"] == "session.created"
    assert created["session"]["model"] == "gpt-realtime"
    assert conn.state is ServerState.OPEN and not conn.closed
    request = conn.request
    assert isinstance(request, ConnectRequest)
    assert (request.model, request.dialect, request.auth) == ("gpt-realtime", Dialect.GA, "header")
    assert "sk-test" not in repr(request)
    assert all(name != "authorization" for name, _ in request.headers)
    lines = logs(conn)
    assert lines[0].startswith("upgraded GET /v1/realtime?model=gpt-realtime")
    assert any("session" in line and "started" in line for line in lines)


def test_subprotocol_key_and_beta() -> None:
    protocols = "realtime, openai-insecure-api-key.sk-browser, openai-beta.realtime-v1"
    conn, frames = upgraded(
        request=request_bytes(key=None, headers=(f"Sec-WebSocket-Protocol: {protocols}",))
    )
    assert conn.request is not None
    assert conn.request.auth == "subprotocol"
    assert conn.request.api_key == "sk-browser"
    assert conn.request.dialect is Dialect.BETA
    assert "sk-browser" not in repr(conn.request) and "sk-browser" not in str(conn.request.headers)
    assert [e["type"] for e in texts(frames)] == ["session.created", "conversation.created"]


def test_beta_header_selects_beta() -> None:
    conn, frames = upgraded(request=request_bytes(headers=("OpenAI-Beta: realtime=v1",)))
    assert conn.request is not None and conn.request.dialect is Dialect.BETA
    assert texts(frames)[1]["type"] == "conversation.created"


@pytest.mark.parametrize(
    ("request_data", "status", "message"),
    [
        (request_bytes(key=None), 401, MISSING_KEY_MESSAGE),
        (request_bytes(key=None, headers=("Authorization: Basic abc",)), 401, "You didn't"),
        (request_bytes("/v1/other?model=gpt-realtime"), 404, "Invalid URL (GET /v1/other)"),
        (request_bytes(method="POST"), 404, "Invalid URL (POST /v1/realtime)"),
        (request_bytes(upgrade=False), 426, "only accepts WebSocket"),
        (
            request_bytes().replace(b"Version: 13", b"Version: 12"),
            426,
            "Unsupported WebSocket version",
        ),
        (request_bytes().replace(KEY.encode(), b"short"), 400, "Sec-WebSocket-Key"),
        (request_bytes(headers=("Content-Length: 3",)) + b"abc", 400, "no body"),
        (b"NOT HTTP AT ALL\r\n\r\n", 400, "Invalid HTTP request"),
        (request_bytes(headers=("X-Big: " + "a" * 20000,))[:-4], 431, "Invalid HTTP request"),
    ],
    ids=[
        "no-key",
        "basic-auth",
        "path",
        "post",
        "no-upgrade",
        "version",
        "ws-key",
        "body",
        "garbage",
        "huge",
    ],
)
def test_refusals_are_http_errors_with_openai_bodies(
    request_data: bytes, status: int, message: str
) -> None:
    conn, got, headers, body = answer(request_data)
    assert got == status
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    error = json.loads(body)["error"]
    assert message in error["message"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] is None and error["code"] is None
    assert conn.closed and conn.session is None
    assert conn.handshake_response is not None
    assert logs(conn)[0].startswith(f"refused the upgrade: HTTP {status}")
    conn.receive_data(b"more", 1.0)  # ignored once closed
    assert conn.data_to_send() == b""


PAGE = b"<!doctype html><title>demo</title>"


@pytest.mark.parametrize(
    ("request_data", "status", "body"),
    [
        (request_bytes("/", upgrade=False, key=None), 200, PAGE),
        (request_bytes("/", upgrade=False, key=None, method="HEAD"), 200, b""),
        (request_bytes("/"), 404, None),  # a WebSocket upgrade to / is not the page
        (request_bytes("/index.html", upgrade=False), 404, None),
    ],
    ids=["get", "head", "upgrade", "other-path"],
)
def test_index_page(request_data: bytes, status: int, body: bytes | None) -> None:
    conn, got, headers, content = answer(request_data, ServerWebSocketOptions(index_page=PAGE))
    assert got == status and conn.closed and conn.session is None
    if body is not None:
        assert headers["content-type"] == "text/html; charset=utf-8"
        assert headers["content-length"] == str(len(PAGE)) and content == body
        record = conn.next_event()
        assert (
            record is not None
            and record.describe() == "answered " + request_data.split()[0].decode() + " /: HTTP 200"
        )


def test_no_index_page_is_a_404() -> None:
    assert answer(request_bytes("/", upgrade=False))[1] == 404
    with pytest.raises(LocalProtocolError):
        ServerWebSocketOptions(index_page="not bytes")  # type: ignore[arg-type]


def test_serve_answers_the_demo_page(server: RunningServer) -> None:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=TIMEOUT) as answer:
        assert answer.status == 200
        assert b"oai-events" in answer.read()


def _post(url: str, key: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def test_upstream_mode_mints_with_the_upstream_and_names_its_calls_url() -> None:
    import urllib.request

    with start_in_thread(ServerConfig(api_key="sk-real")) as service:
        upstream = service.base_url
        config = ServerConfig(upstream=upstream, upstream_key="sk-real", api_key="sk-local")
        assert "sk-real" not in repr(config)
        with start_in_thread(config) as front:
            url = front.base_url + "/realtime/client_secrets"
            body = {"session": {"type": "realtime", "instructions": "hi"}}
            status, headers, answer = _post(url, "sk-local", body)
            assert status == 200
            assert headers["Access-Control-Allow-Origin"] == "*"
            assert answer["value"].startswith("ek_")
            assert answer["session"]["instructions"] == "hi"
            assert answer["calls_url"] == upstream + "/realtime/calls"
            assert len(service.server.ephemeral_keys) == 1
            assert len(front.server.ephemeral_keys) == 0
            # the front's own key rule still applies
            status, _, answer = _post(url, "sk-other", body)
            assert status == 401 and answer["error"]["code"] == "invalid_api_key"
        # the upstream's refusal is passed on with its status and error
        with start_in_thread(ServerConfig(upstream=upstream, upstream_key="sk-wrong")) as front:
            status, _, answer = _post(front.base_url + "/realtime/client_secrets", "k", {})
            assert status == 401 and answer["error"]["code"] == "invalid_api_key"
            assert "sk-wrong" not in json.dumps(answer)
        # a CORS preflight of the service's calls endpoint
        preflight = urllib.request.Request(service.base_url + "/realtime/calls", method="OPTIONS")
        with urllib.request.urlopen(preflight, timeout=TIMEOUT) as answer:
            assert answer.status == 204
            assert "Authorization" in answer.headers["Access-Control-Allow-Headers"]
    # an upstream that does not answer: 502
    with start_in_thread(
        ServerConfig(upstream=upstream, upstream_key="sk-real", upstream_timeout=2)
    ) as front:
        status, _, answer = _post(front.base_url + "/realtime/client_secrets", "k", {})
        assert status == 502 and answer["error"]["message"].startswith("Upstream:")
    with pytest.raises(ValueError, match="upstream_key"):
        ServerConfig(upstream="https://api.openai.com/v1")
    with pytest.raises(ValueError, match="http"):
        ServerConfig(upstream="wss://api.openai.com/v1", upstream_key="k")


@pytest.mark.parametrize(
    ("options", "target", "close", "code", "message"),
    [
        (
            ServerWebSocketOptions(api_key="sk-the-right-key"),
            "/v1/realtime?model=gpt-realtime",
            3000,
            "invalid_api_key",
            "Incorrect API key provided: sk-tes***. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
        ),
        (
            None,
            "/v1/realtime",
            4000,
            "missing_model",
            "You must provide a model parameter, for example "
            "wss://api.openai.com/v1/realtime?model=gpt-realtime-1.5",
        ),
        (
            None,
            "/v1/realtime?model=gpt-4o",
            4000,
            "invalid_model",
            'Model "gpt-4o" is not supported in realtime mode.',
        ),
        (
            ServerWebSocketOptions(models=("gpt-realtime-mini",)),
            "/v1/realtime?model=gpt-realtime",
            4000,
            "invalid_model",
            'Model "gpt-realtime" is not supported',
        ),
    ],
)
def test_rejections_upgrade_then_error_and_close(
    options: ServerWebSocketOptions | None, target: str, close: int, code: str, message: str
) -> None:
    conn, frames = upgraded(options, request_bytes(target, key="sk-testkeyXYZ"))
    (error,) = texts(frames)
    assert error["type"] == "error"
    assert error["event_id"].startswith("event_")
    if code == "invalid_api_key":
        message = message.replace("sk-tes***", mask_key("sk-testkeyXYZ"))
    assert error["error"]["message"].startswith(message)
    assert error["error"]["code"] == code
    assert error["error"]["param"] is None and error["error"]["event_id"] is None
    assert close_of(frames) == (close, f"invalid_request_error.{code}")
    assert conn.state is ServerState.CLOSING and conn.session is None
    # the client answers the close: done
    assert feed(conn, client_frame(CLOSE, struct.pack("!H", close)), 0.1) == []
    assert conn.closed and conn.close_code == close
    assert any(f"rejected the session: {code}" in line for line in logs(conn))


def test_beta_can_be_refused_like_the_retired_beta() -> None:
    options = ServerWebSocketOptions(allow_beta=False)
    _, frames = upgraded(options, request_bytes(headers=("OpenAI-Beta: realtime=v1",)))
    assert texts(frames)[0]["error"]["code"] == "beta_api_shape_disabled"
    assert close_of(frames) == (4000, "invalid_request_error.beta_api_shape_disabled")


@pytest.mark.parametrize("query", ["call_id=rtc_123", "intent=transcription"])
def test_call_id_and_intent_need_no_model(query: str) -> None:
    conn, frames = upgraded(request=request_bytes(f"/v1/realtime?{query}"))
    assert texts(frames)[0]["type"] == "session.created"
    assert conn.session is not None


def test_mask_key() -> None:
    assert mask_key("sk-abcdefghijklmnopqrstu") == "sk-abc" + "*" * 14 + "rstu"
    assert mask_key("sk-proj-" + "a" * 30 + "sQoA").startswith("sk-proj-***")
    assert mask_key("sk-proj-" + "a" * 30 + "sQoA").endswith("sQoA")
    assert mask_key("sk-short12") == "sk-****t12"
    assert mask_key("tiny") == "ti***"
    # the edges: up to 8 characters only 2 show; 3 + 3 until 6 + 4 leave 3 masked
    assert mask_key("abcdefgh") == "ab***"
    assert mask_key("abcdefghi") == "abc***ghi"
    assert mask_key("abcdefghijkl") == "abc******jkl"
    assert mask_key("abcdefghijklm") == "abcdef***jklm"


@pytest.mark.parametrize(
    "protocols",
    ["realtime, openai-insecure-api-key.", "realtime, a-long-subprotocol-that-is-no-key-at-all"],
)
def test_only_a_nonempty_key_subprotocol_carries_a_key(protocols: str) -> None:
    request = request_bytes(key=None, headers=(f"Sec-WebSocket-Protocol: {protocols}",))
    assert answer(request)[1] == 401


def test_options_never_show_the_key_or_the_page_in_repr() -> None:
    options = ServerWebSocketOptions(api_key="sk-only-this-one", index_page=b"<html>secret")
    shown = repr(options)
    assert "sk-only-this-one" not in shown and "secret" not in shown
    assert "api_key" not in shown and "index_page" not in shown


def test_the_request_keeps_its_headers_without_credentials() -> None:
    protocols = "Sec-WebSocket-Protocol: realtime, openai-insecure-api-key.sk-secret"
    conn, _ = upgraded(request=request_bytes(headers=(protocols, "X-Trace: 42")))
    assert conn.request is not None
    headers = dict(conn.request.headers)
    assert "authorization" not in headers and "sk-test" not in repr(conn.request.headers)
    assert headers["x-trace"] == "42" and headers["host"] == "127.0.0.1"
    assert headers["sec-websocket-protocol"] == "realtime, openai-insecure-api-key.***"


def test_an_upgrade_needs_both_upgrade_and_connection_headers() -> None:
    for only_one in ("Upgrade: websocket", "Connection: Upgrade"):
        lines = (only_one, f"Sec-WebSocket-Key: {KEY}", "Sec-WebSocket-Version: 13")
        _, status, headers, _ = answer(request_bytes(upgrade=False, headers=lines))
        assert status == 426 and headers["upgrade"] == "websocket"
        assert headers["server"].startswith("rtproto/")


def test_frames_in_the_request_packet_are_handled() -> None:
    update = {"type": "session.update", "session": {"type": "realtime", "instructions": "x"}}
    _, frames = upgraded(request=request_bytes() + client_text(update))
    assert [e["type"] for e in texts(frames)] == ["session.created", "session.updated"]


def test_text_turn_fragmented_message_and_binary() -> None:
    conn, _ = upgraded()
    text = json.dumps(ITEM)
    frames = feed(
        conn,
        client_frame(TEXT, text[:10], fin=False)
        + client_frame(PING, b"hi")
        + client_frame(0, text[10:]),
    )
    assert frames[0] == (True, PONG, b"hi")
    assert [e["type"] for e in texts(frames)] == [
        "conversation.item.added",
        "conversation.item.done",
    ]
    frames = feed(conn, client_frame(BINARY, b"\x00\x01"))
    (error,) = texts(frames)
    assert error["error"]["code"] == "invalid_event"
    assert not conn.closed
    frames = feed(conn, client_text({"type": "response.create"}))
    assert texts(frames)[-1]["type"] in ("response.done", "rate_limits.updated")
    assert conn.messages_sent > 5


def test_message_too_big_closes_1009() -> None:
    conn, _ = upgraded(ServerWebSocketOptions(max_message_size=200))
    frames = feed(conn, client_frame(TEXT, "x" * 150, fin=False) + client_frame(0, "y" * 100))
    assert close_of(frames) is not None and close_of(frames)[0] == 1009  # type: ignore[index]
    assert conn.closed and conn.close_code == 1009
    conn2, _ = upgraded(ServerWebSocketOptions(max_message_size=200))
    assert close_of(feed(conn2, client_frame(BINARY, b"z" * 300)))[0] == 1009  # type: ignore[index]
    text = json.dumps({"type": "input_audio_buffer.clear", "event_id": "e" * 100})
    exact, _ = upgraded(ServerWebSocketOptions(max_message_size=len(text)))
    (cleared,) = texts(feed(exact, client_frame(TEXT, text)))  # exactly the limit: accepted
    assert cleared["type"] == "input_audio_buffer.cleared" and not exact.closed


def test_protocol_violation_closes_1002() -> None:
    conn, _ = upgraded()
    frames = feed(conn, encode_frame(TEXT, b"{}"))  # unmasked
    assert close_of(frames) == (1002, "server received unexpected unmasked frame")
    assert conn.closed and conn.close_reason == "server received unexpected unmasked frame"
    assert any("(protocol)" in line for line in logs(conn))
    other, _ = upgraded()
    assert close_of(feed(other, client_frame(0x3, b"x"))) == (1002, "Invalid opcode 0x3")


def test_a_key_that_is_not_strict_base64_is_refused() -> None:
    """RFC 6455 4.2.1: the key is base64 of 16 bytes; a lenient decoder would skip the '!'."""
    request = request_bytes().replace(KEY.encode(), b"dGhlIHNhbXBs!ZSBub25jZQ==")
    _, status, _, body = answer(request)
    assert status == 400 and b"Invalid Sec-WebSocket-Key header." in body


def test_injected_event_ids_look_like_the_services() -> None:
    """``event_`` and 21 characters drawn from all of base62 (the injected unknown events)."""
    conn, frames = upgraded(ServerWebSocketOptions(unknown_events=True), random_bytes=os.urandom)
    for _ in range(20):
        frames += feed(conn, client_text(ITEM))
    ids = [e["event_id"] for e in texts(frames) if e["type"] == UNKNOWN_EVENT_TYPE]
    assert len(ids) > 20 and all(re.fullmatch(r"event_[0-9A-Za-z]{21}", i) for i in ids)
    assert len(set("".join(i[6:] for i in ids))) > 40  # 400+ draws cover most of 62


def test_client_close_is_answered_with_1000() -> None:
    conn, _ = upgraded()
    frames = feed(conn, client_frame(CLOSE, struct.pack("!H", 1001) + b"bye"))
    assert close_of(frames) == (1000, "")
    assert conn.closed and conn.close_code == 1001 and conn.close_reason == "bye"
    assert any("connection closed (client): 1001 bye" in line for line in logs(conn))
    assert conn.get_timer() is None


def test_keepalive_ping_pong_and_timeout() -> None:
    conn, _ = upgraded(ServerWebSocketOptions(ping_interval=20.0, ping_timeout=5.0))
    assert conn.get_timer() == 20.0
    conn.handle_timer(20.0)
    (ping,) = parse_frames(conn.data_to_send())[0]
    assert ping[1] == PING
    assert conn.get_timer() == 25.0
    assert feed(conn, client_frame(PONG, b"not it"), 21.0) == []  # unsolicited: ignored
    assert conn.get_timer() == 25.0
    feed(conn, client_frame(PONG, ping[2]), 21.0)
    assert conn.get_timer() == 41.0
    conn.handle_timer(41.0)
    conn.data_to_send()
    conn.handle_timer(46.0)  # no pong
    assert close_of(parse_frames(conn.data_to_send())[0]) == (1011, "keepalive ping timeout")
    assert conn.closed


def test_keepalive_without_timeout() -> None:
    conn, _ = upgraded(ServerWebSocketOptions(ping_interval=1.0, ping_timeout=None))
    conn.handle_timer(1.0)
    assert parse_frames(conn.data_to_send())[0][0][1] == PING
    assert conn.get_timer() == 2.0


def test_server_close_waits_for_the_client_then_times_out() -> None:
    conn, _ = upgraded(ServerWebSocketOptions(close_timeout=2.0, ping_interval=None))
    conn.close(1.0, 1001, "going")
    assert close_of(parse_frames(conn.data_to_send())[0]) == (1001, "going")
    assert conn.state is ServerState.CLOSING and conn.get_timer() == 3.0
    feed(conn, client_text(ITEM), 1.5)  # dropped: we are closing
    conn.handle_timer(2.0)
    assert not conn.closed
    conn.handle_timer(3.0)
    assert conn.closed and conn.close_code == 1001
    assert any("(timeout)" in line for line in logs(conn))
    conn.close(4.0)  # nothing left to do
    conn.connection_lost(4.0)
    plain, _ = upgraded()
    plain.close(1.0)
    assert close_of(parse_frames(plain.data_to_send())[0]) == (1000, "")
    assert plain.close_code == 1000 and plain.close_reason is None


def test_a_cors_preflight_to_a_rest_endpoint_is_answered_204() -> None:
    _, status, headers, rest = answer(b"OPTIONS /v1/realtime/calls HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, rest) == (204, b"")
    assert "POST" in headers["access-control-allow-methods"]


def test_session_expiry_closes_1001() -> None:
    session = ServerOptions(max_duration=60.0)
    conn, _ = upgraded(ServerWebSocketOptions(session=session, ping_interval=None))
    assert conn.get_timer() == 60.0
    conn.handle_timer(60.0)
    frames, _ = parse_frames(conn.data_to_send())
    assert texts(frames)[0]["error"]["code"] == "session_expired"
    assert close_of(frames) == (1001, "Your session hit the maximum duration of 1 minutes.")


def test_handshake_timeout_eof_and_close_during_handshake() -> None:
    conn = ServerWebSocket(ServerWebSocketOptions(handshake_timeout=1.0))
    conn.connection_made(0.0)
    conn.receive_data(b"GET /v1/real", 0.1)
    assert conn.get_timer() == 1.0
    conn.handle_timer(0.5)
    assert not conn.closed
    conn.handle_timer(1.0)
    assert conn.closed and conn.data_to_send() == b""
    assert logs(conn)[-1] == "connection closed (timeout): no close code no upgrade request in time"
    conn.handle_timer(2.0)
    other = ServerWebSocket()
    other.connection_made(0.0)
    other.receive_data(b"", 0.1)
    assert other.closed
    third = ServerWebSocket()
    third.close(0.0, 1001, "shutting down")
    assert third.closed
    assert logs(third) == ["connection closed (server): no close code shutting down"]
    fourth = ServerWebSocket()
    fourth.connection_made(0.0)
    fourth.receive_data(b"GET /v1/real", 0.1)
    fourth.connection_lost(0.2)
    assert fourth.closed and fourth.get_timer() is None
    assert logs(fourth)[-1] == (
        "connection closed (lost): no close code the client left during the handshake"
    )


def test_eof_after_upgrade_ends_the_session() -> None:
    conn, _ = upgraded()
    conn.receive_data(b"", 1.0)
    assert conn.closed and conn.close_code == 1006
    assert any("connection ended" in line for line in logs(conn))


def test_backlog_holds_frames_until_resume() -> None:
    conn, _ = upgraded(ServerWebSocketOptions(output_high_water=125))
    burst = b"".join(client_text(ITEM) for _ in range(3))
    conn.receive_data(burst, 0.0)
    assert conn.backlogged and conn.pending_output > 0
    first = texts(parse_frames(conn.data_to_send())[0])
    conn.resume(0.0)
    second = texts(parse_frames(conn.data_to_send())[0])
    conn.resume(0.0)
    third = texts(parse_frames(conn.data_to_send())[0])
    conn.resume(0.0)
    assert not conn.backlogged
    assert [len(first), len(second), len(third)] == [2, 2, 2]
    conn.receive_data(burst, 1.0)
    assert conn.backlogged
    conn.connection_lost(2.0)  # the held frames die with the connection
    assert conn.closed and not conn.backlogged


def test_faults_drop_after_and_unknown_events() -> None:
    conn, frames = upgraded(ServerWebSocketOptions(unknown_events=True, drop_after=2))
    events = texts(frames)
    assert [e["type"] for e in events] == ["session.created", UNKNOWN_EVENT_TYPE]
    frames = feed(conn, client_text(ITEM))
    assert [e["type"] for e in texts(frames)] == ["conversation.item.added"]
    assert close_of(frames) is None  # dropped, not closed
    assert conn.closed and conn.aborted and conn.close_code == 1006
    assert any("fault drop-after" in line for line in logs(conn))


def test_fault_drop_after_zero() -> None:
    conn, frames = upgraded(ServerWebSocketOptions(drop_after=0))
    assert conn.aborted and texts(frames) == []


def test_fault_fragment_puts_pings_between_fragments() -> None:
    _, frames = upgraded(ServerWebSocketOptions(fragment=True))
    kinds = [(fin, op) for fin, op, _ in frames]
    assert kinds == [(False, TEXT), (True, PING), (False, 0), (True, PING), (True, 0)]
    payload = b"".join(p for _, op, p in frames if op in (TEXT, 0))
    assert json.loads(payload)["type"] == "session.created"


def test_fault_close_1001_after_timer() -> None:
    conn, _ = upgraded(ServerWebSocketOptions(close_1001_after=2.0, ping_interval=None))
    assert conn.get_timer() == 2.0
    conn.handle_timer(2.0)
    assert close_of(parse_frames(conn.data_to_send())[0]) == (1001, "going away")
    assert conn.state is ServerState.CLOSING
    assert any("fault close-1001-after" in line for line in logs(conn))


def test_session_factory_is_used_and_its_failure_closes_1011() -> None:
    seen: list[ConnectRequest] = []

    def factory(request: ConnectRequest) -> ServerSession:
        seen.append(request)
        return ServerSession(ServerOptions(model="custom"))

    conn, frames = upgraded(session_factory=factory)
    assert seen and texts(frames)[0]["session"]["model"] == "custom"

    def broken(request: ConnectRequest) -> ServerSession:
        raise ValueError("no")

    conn = ServerWebSocket(session_factory=broken)
    conn.receive_data(request_bytes(), 0.0)
    _, _, rest = split_response(conn.data_to_send())
    assert close_of(parse_frames(rest)[0]) == (1011, "could not start the session: no")
    assert conn.closed


@pytest.mark.parametrize(
    "kwargs",
    [
        {"api_key": ""},
        {"models": ("ok", 3)},
        {"path": "v1"},
        {"max_message_size": 10},
        {"output_high_water": True},
        {"ping_interval": 0},
        {"close_timeout": None},
        {"handshake_timeout": "1"},
        {"close_1001_after": -1},
        {"drop_after": -1},
        {"session": "no"},
    ],
)
def test_options_are_validated(kwargs: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError):
        ServerWebSocketOptions(**kwargs)


def test_options_accept_their_edges() -> None:
    edges = ServerWebSocketOptions(
        max_message_size=125,
        max_handshake_size=125,
        output_high_water=125,
        handshake_timeout=0.5,
        ping_interval=0.25,
        ping_timeout=0.1,
        close_timeout=0.01,
        close_1001_after=0,  # 0: at once (only this one may be 0)
        drop_after=0,
    )
    assert edges.close_1001_after == 0 and edges.close_timeout == 0.01
    for name in ("max_message_size", "output_high_water"):
        with pytest.raises(LocalProtocolError, match="at least 125"):
            ServerWebSocketOptions(**{name: 124})
    for name in ("handshake_timeout", "ping_interval", "ping_timeout", "close_timeout"):
        with pytest.raises(LocalProtocolError, match="positive number of seconds"):
            ServerWebSocketOptions(**{name: 0})


def test_output_high_water_is_exact() -> None:
    """Frames are held once the output reaches ``output_high_water`` bytes, not after."""
    probe, _ = upgraded()
    probe.receive_data(client_text(ITEM), 0.0)
    one = len(probe.data_to_send())  # what one item's answer takes
    burst = client_text(ITEM) * 3
    for high_water, answered in ((one, 1), (one + 1, 2)):
        conn, _ = upgraded(ServerWebSocketOptions(output_high_water=high_water))
        conn.receive_data(burst, 0.0)
        assert conn.backlogged
        frames = parse_frames(conn.data_to_send())[0]
        assert len(texts(frames)) == 2 * answered  # conversation.item.added and .done


# ============================================================ the driver on real sockets ==


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with start_in_thread(ServerConfig()) as running:
        yield running


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[RunningServer]:
    with start_in_thread(ServerConfig(api_key="sk-the-right-key")) as running:
        yield running


def connect(url: str, key: str | None = "sk-test", **kwargs: Any) -> ClientConnection:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return ws_connect(
        url, additional_headers=headers, open_timeout=TIMEOUT, close_timeout=2, **kwargs
    )


def recv(ws: ClientConnection) -> dict[str, Any]:
    message = ws.recv(timeout=TIMEOUT)
    assert isinstance(message, str)
    event: dict[str, Any] = json.loads(message)
    return event


def recv_until(ws: ClientConnection, kind: str) -> list[dict[str, Any]]:
    events = []
    while True:
        events.append(recv(ws))
        if events[-1]["type"] == kind:
            return events


def text_turn(ws: ClientConnection) -> list[dict[str, Any]]:
    ws.send(json.dumps(ITEM))
    ws.send(json.dumps({"type": "response.create"}))
    return recv_until(ws, "response.done")


class RawClient:
    """A WebSocket client by hand: the request, masked frames, parsing of server frames."""

    def __init__(self, port: int, request: bytes | None = None, *, rcvbuf: int = 0) -> None:
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.received = 0
        if request is not None:
            self.sock.sendall(request)

    def read_head(self) -> int:
        while b"\r\n\r\n" not in self.buf:
            self._read()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        return int(head.split()[1])

    def _read(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.received += len(data)
        self.buf += data

    def frame(self) -> tuple[bool, int, bytes]:
        while (taken := take_frame(self.buf)) is None:
            self._read()
        frame, self.buf = taken
        return frame

    def event(self) -> dict[str, Any]:
        while True:
            fin, op, payload = self.frame()
            if op == TEXT and fin:
                return dict(json.loads(payload))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()


def test_handshake_and_session_created_first(server: RunningServer) -> None:
    with connect(server.url + "?model=gpt-realtime", subprotocols=["realtime"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "realtime"
        first = recv(ws)
        assert first["type"] == "session.created"
        assert first["session"]["model"] == "gpt-realtime"
        assert first["session"]["expires_at"] > time.time() + 3500
        events = text_turn(ws)
        assert events[-1]["response"]["status"] == "completed"


def test_browser_style_subprotocol_key(server: RunningServer) -> None:
    protocols = ["realtime", "openai-insecure-api-key.sk-browser"]
    with connect(server.url + "?model=gpt-realtime", key=None, subprotocols=protocols) as ws:  # type: ignore[arg-type]
        assert ws.subprotocol == "realtime"
        assert recv(ws)["type"] == "session.created"


def test_no_key_is_a_401_with_a_json_body(server: RunningServer) -> None:
    with pytest.raises(InvalidStatus) as caught:
        connect(server.url + "?model=gpt-realtime", key=None)
    response = caught.value.response
    assert response.status_code == 401
    assert json.loads(response.body) == {
        "error": {
            "message": MISSING_KEY_MESSAGE,
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }


def test_unknown_path_is_a_404(server: RunningServer) -> None:
    with pytest.raises(InvalidStatus) as caught:
        connect(server.url.replace("/v1/realtime", "/v1/realtim") + "?model=gpt-realtime")
    assert caught.value.response.status_code == 404
    assert "Invalid URL" in json.loads(caught.value.response.body)["error"]["message"]


def test_bad_key_gets_an_error_event_and_close_3000(keyed_server: RunningServer) -> None:
    with connect(keyed_server.url + "?model=gpt-realtime", key="sk-wrong-key-1234") as ws:
        error = recv(ws)
        assert error["error"]["code"] == "invalid_api_key"
        assert error["error"]["message"].startswith("Incorrect API key provided: sk-wro")
        assert "sk-wrong-key-1234" not in error["error"]["message"]
        with pytest.raises(ConnectionClosed) as caught:
            recv(ws)
    assert caught.value.rcvd is not None
    assert (caught.value.rcvd.code, caught.value.rcvd.reason) == (
        3000,
        "invalid_request_error.invalid_api_key",
    )
    with connect(keyed_server.url + "?model=gpt-realtime", key="sk-the-right-key") as ws:
        assert recv(ws)["type"] == "session.created"


def test_missing_model_gets_close_4000(server: RunningServer) -> None:
    with connect(server.url) as ws:
        assert recv(ws)["error"]["code"] == "missing_model"
        with pytest.raises(ConnectionClosed) as caught:
            recv(ws)
    assert caught.value.rcvd is not None and caught.value.rcvd.code == 4000
    assert caught.value.rcvd.reason == "invalid_request_error.missing_model"


def test_beta_header_gets_the_beta_dialect(server: RunningServer) -> None:
    headers = {"Authorization": "Bearer sk-test", "OpenAI-Beta": "realtime=v1"}
    with ws_connect(server.url + "?model=gpt-realtime", additional_headers=headers) as ws:
        created = recv(ws)
        assert created["type"] == "session.created"
        assert "modalities" in created["session"]  # the flat beta session
        assert recv(ws)["type"] == "conversation.created"


def test_binary_frame_is_an_error_event_and_the_socket_stays_open(server: RunningServer) -> None:
    with connect(server.url + "?model=gpt-realtime") as ws:
        recv(ws)
        ws.send(b"\x00\x01\x02")
        error = recv(ws)
        assert (error["type"], error["error"]["code"]) == ("error", "invalid_event")
        ws.send("{not json")
        assert recv(ws)["error"]["code"] == "invalid_json"
        assert text_turn(ws)[-1]["type"] == "response.done"
        ws.close()
        assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000


@pytest.mark.anyio
async def test_fifty_concurrent_sessions_each_with_a_text_turn() -> None:
    from websockets.asyncio.client import connect as aconnect

    async with serve(port=0, options=ServerConfig()) as srv:
        url = f"ws://127.0.0.1:{srv.port}/v1/realtime?model=gpt-realtime"
        results: list[str] = []

        async def one(number: int) -> None:
            headers = {"Authorization": f"Bearer sk-{number}"}
            async with aconnect(url, additional_headers=headers, open_timeout=10) as ws:
                assert json.loads(await ws.recv())["type"] == "session.created"
                item = json.loads(json.dumps(ITEM))
                item["item"]["content"][0]["text"] = f"number {number}"
                await ws.send(json.dumps(item))
                await ws.send(json.dumps({"type": "response.create"}))
                transcript = ""
                while True:
                    event = json.loads(await ws.recv())
                    if event["type"] == "response.output_audio_transcript.done":
                        transcript = event["transcript"]
                    if event["type"] == "response.done":
                        break
                results.append(transcript)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for number in range(50):
                    tg.start_soon(one, number)
        assert sorted(results) == sorted(f"You said: number {n}" for n in range(50))
        assert srv.stats().connections_total == 50
        srv.close()
        with anyio.fail_after(1):
            await srv.serve_forever()


def test_fault_drop_after(tmp_path: Path) -> None:
    with start_in_thread(ServerConfig(drop_after=3)) as srv:
        with connect(srv.url + "?model=gpt-realtime") as ws:
            ws.send(json.dumps(ITEM))
            types = [recv(ws)["type"] for _ in range(3)]
            with pytest.raises(ConnectionClosed) as caught:
                recv(ws)
        assert types == ["session.created", "conversation.item.added", "conversation.item.done"]
        assert caught.value.rcvd is None  # no close frame: 1006


def test_fault_close_1001_after() -> None:
    with start_in_thread(ServerConfig(close_1001_after=0.3)) as srv:
        started = time.monotonic()
        with connect(srv.url + "?model=gpt-realtime") as ws:
            recv(ws)
            with pytest.raises(ConnectionClosed) as caught:
                recv(ws)
        assert 0.2 < time.monotonic() - started < 3
        assert caught.value.rcvd is not None and caught.value.rcvd.code == 1001


def test_fault_unknown_events() -> None:
    with start_in_thread(ServerConfig(unknown_events=True)) as srv:
        with connect(srv.url + "?model=gpt-realtime") as ws:
            events = [recv(ws), recv(ws)]
            events += text_turn(ws)
        types = [e["type"] for e in events]
        assert types[:2] == ["session.created", UNKNOWN_EVENT_TYPE]
        known = [t for t in types if t != UNKNOWN_EVENT_TYPE]
        assert types.count(UNKNOWN_EVENT_TYPE) >= len(known) - 1


def test_fault_fragment_observed_on_the_wire() -> None:
    with start_in_thread(ServerConfig(fragment=True)) as srv:
        raw = RawClient(srv.port, request_bytes())
        try:
            assert raw.read_head() == 101
            kinds = [raw.frame()[:2] for _ in range(5)]
            assert kinds == [(False, TEXT), (True, PING), (False, 0), (True, PING), (True, 0)]
        finally:
            raw.close()
        with connect(srv.url + "?model=gpt-realtime") as ws:  # a library reassembles them
            assert recv(ws)["type"] == "session.created"
            assert text_turn(ws)[-1]["response"]["status"] == "completed"


def test_fault_slow_handshake() -> None:
    config = ServerConfig(slow_handshake=True, slow_handshake_delay=0.1)
    with start_in_thread(config) as srv:
        raw = RawClient(srv.port, request_bytes())
        try:
            got = b""
            raw.sock.settimeout(0.05)
            deadline = time.monotonic() + 0.45
            while time.monotonic() < deadline:
                with contextlib.suppress(socket.timeout):
                    got += raw.sock.recv(100)
            assert 3 <= len(got) <= 7, got
            assert b"HTTP/1.1 101".startswith(got)
        finally:
            raw.close()
        with pytest.raises(TimeoutError):
            ws_connect(
                srv.url + "?model=gpt-realtime",
                additional_headers={"Authorization": "Bearer sk-test"},
                open_timeout=0.5,
            )


def test_keepalive_pings_are_sent_and_a_silent_peer_is_closed() -> None:
    websocket = ServerWebSocketOptions(ping_interval=0.2, ping_timeout=0.3)
    with start_in_thread(ServerConfig(websocket=websocket)) as srv:
        raw = RawClient(srv.port, request_bytes())
        try:
            assert raw.read_head() == 101
            assert raw.event()["type"] == "session.created"
            _, op, payload = raw.frame()
            assert op == PING
            raw.send(client_frame(PONG, payload))
            assert raw.frame()[1] == PING  # the next one: never answered
            _, op, payload = raw.frame()
            assert op == CLOSE and struct.unpack("!H", payload[:2])[0] == 1011
        finally:
            raw.close()


def test_clean_shutdown_closes_every_session_with_1001() -> None:
    srv = start_in_thread(ServerConfig(shutdown_timeout=3))
    stack = contextlib.ExitStack()
    clients = [stack.enter_context(connect(srv.url + "?model=gpt-realtime")) for _ in range(3)]
    for ws in clients:
        recv(ws)
    closed: list[Any] = []

    def reader(ws: ClientConnection) -> None:
        try:
            while True:
                ws.recv(timeout=TIMEOUT)
        except ConnectionClosed as exc:
            closed.append(exc.rcvd)

    threads = [threading.Thread(target=reader, args=(ws,)) for ws in clients]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    srv.stop()
    assert time.monotonic() - started < 3
    for thread in threads:
        thread.join(TIMEOUT)
    stack.close()
    assert [(c.code, c.reason) for c in closed] == [(1001, SHUTDOWN_REASON)] * 3
    srv.stop()  # idempotent
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=1)


def test_slow_reader_backpressure_keeps_memory_bounded() -> None:
    """A client that sends but does not read stops the server reading from it."""
    websocket = ServerWebSocketOptions(ping_interval=None)
    with start_in_thread(ServerConfig(websocket=websocket)) as srv:
        raw = RawClient(srv.port, request_bytes(), rcvbuf=32768)
        try:
            assert raw.read_head() == 101
            turns = 400
            item = dict(ITEM, event_id="p" * 2000)  # big input, small output per turn
            burst = (client_text(item) + client_text({"type": "response.create"})) * turns
            sender = threading.Thread(target=raw.send, args=(burst,), daemon=True)
            sender.start()
            previous = -1
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # until the server stops reading
                time.sleep(0.3)
                now_received = srv.stats().bytes_received
                if now_received == previous:
                    break
                previous = now_received
            stats = srv.stats()
            assert stats.bytes_received < len(burst) // 2, stats
            assert stats.largest_write < 3 * 1024 * 1024, stats
            # reading again lets everything through, in order
            done = 0
            while done < turns:
                event = raw.event()
                done += event["type"] == "response.done"
            sender.join(TIMEOUT)
            assert raw.received > 10 * srv.stats().largest_write
        finally:
            raw.close()


def test_trio_backend_serves_too() -> None:
    with (
        start_in_thread(ServerConfig(), backend="trio") as srv,
        connect(srv.url + "?model=gpt-realtime") as ws,
    ):
        assert recv(ws)["type"] == "session.created"
        assert text_turn(ws)[-1]["response"]["status"] == "completed"


def test_pace_and_max_duration_reach_the_session() -> None:
    with start_in_thread(ServerConfig(max_duration=0.3, pace="realtime")) as srv:
        with connect(srv.url + "?model=gpt-realtime") as ws:
            assert recv(ws)["type"] == "session.created"
            error = recv(ws)
            assert error["error"]["code"] == "session_expired"
            with pytest.raises(ConnectionClosed) as caught:
                recv(ws)
        assert caught.value.rcvd is not None and caught.value.rcvd.code == 1001


# ------------------------------------------------------------------------ scripts --


def write_wav(path: Path, seconds: float = 0.2, rate: int = 16000) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x10\x00" * int(seconds * rate))


def write_script(tmp_path: Path) -> Path:
    write_wav(tmp_path / "hello.wav")
    script = {"turns": [{"text": "Scripted hello.", "audio": "hello.wav"}, {"text": "Second."}]}
    path = tmp_path / "script.json"
    path.write_text(json.dumps(script))
    return path


def test_script_responder_per_session(tmp_path: Path) -> None:
    factory = load_script(write_script(tmp_path))
    with start_in_thread(ServerConfig(responder=factory)) as srv:
        for _ in range(2):  # every session starts the script from its first turn
            with connect(srv.url + "?model=gpt-realtime") as ws:
                recv(ws)
                events = text_turn(ws)
                done = [e for e in events if e["type"] == "response.output_audio_transcript.done"]
                assert done[0]["transcript"] == "Scripted hello."
                audio = b"".join(
                    base64.b64decode(e["delta"])
                    for e in events
                    if e["type"] == "response.output_audio.delta"
                )
                assert len(audio) == int(0.2 * 24000) * 2


@pytest.mark.parametrize(
    ("content", "wav", "message"),
    [
        (None, None, "cannot read the script"),
        ("{bad", None, "is not JSON"),
        ('{"turns": 3}', None, "expected a list of turns"),
        ('[{"audio": "missing.wav"}]', None, "cannot read the audio file"),
        ('[{"audio": "bad.wav"}]', b"not a wav", "not a PCM WAV file"),
        ('[{"text": 3}]', None, "'text' must be a string"),
        (b"\xff\xfe", None, "is not UTF-8"),
    ],
)
def test_script_errors(
    tmp_path: Path, content: str | bytes | None, wav: bytes | None, message: str
) -> None:
    path = tmp_path / "script.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    if wav is not None:
        (tmp_path / "bad.wav").write_bytes(wav)
    with pytest.raises(ScriptError, match=re.escape(message)):
        load_script(path)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        ServerConfig(write_timeout=0)
    with pytest.raises(ValueError):
        ServerConfig(read_size=0)
    with pytest.raises(ValueError):
        ServerConfig(drop_after=-1)
    with pytest.raises(ValueError):
        ServerConfig(pace="slow")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- CLI --


def test_cli_usage_errors_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        ([], "give a command"),
        (["bogus"], "invalid choice"),
        (["serve", "--port", "99999"], "not in 0-65535"),
        (["serve", "--port", "eighty"], "invalid port 'eighty'"),
        (["serve", "--max-duration", "long"], "invalid number of seconds"),
        (["serve", "--max-duration", "0"], "positive"),
        (["serve", "--fault", "explode"], "unknown fault 'explode'"),
        (["serve", "--fault", "drop-after"], "needs a value"),
        (["serve", "--fault", "drop-after=x"], "whole number"),
        (["serve", "--fault", "close-1001-after=-1"], "positive"),
        (["serve", "--fault", "fragment=1"], "takes no value"),
        (["serve", "--fault", "fragment", "--fault", "fragment"], "given twice"),
        (["serve", "--responder", "parrot"], "echo or script:FILE"),
        (["serve", "--responder", "script:/no/such/file.json"], "cannot read the script"),
    ]
    for argv, message in cases:
        assert cli_main.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (argv, err)
        assert err.startswith("rtproto")


def test_cli_parses_faults_and_runs_the_driver(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli_serve.parse_faults(
        ["drop-after=3", "close-1001-after=1.5", "unknown-events", "fragment", "slow-handshake"]
    ) == {
        "drop_after": 3,
        "close_1001_after": 1.5,
        "unknown_events": True,
        "fragment": True,
        "slow_handshake": True,
    }
    seen: dict[str, Any] = {}

    class FakeServer:
        url = "ws://127.0.0.1:1234/v1/realtime"
        base_url = "http://127.0.0.1:1234/v1"

    def fake_run(config: ServerConfig, **kwargs: Any) -> None:
        seen.update(kwargs, config=config)
        kwargs["on_ready"](FakeServer())

    import rtproto.adapters.server as driver

    monkeypatch.setattr(driver, "run_server", fake_run)
    script = write_script(tmp_path)
    argv = ["serve", "--port", "0", "--pace", "realtime", "--api-key", "sk-x", "--debug"]
    argv += ["--fault", "drop-after=2", "--responder", f"script:{script}"]
    assert cli_main.main(argv) == 0
    config = seen["config"]
    assert (config.pace, config.api_key, config.drop_after) == ("realtime", "sk-x", 2)
    assert config.responder is not None and seen["port"] == 0
    err = capsys.readouterr().err
    assert "listening on ws://127.0.0.1:1234/v1/realtime?model=gpt-realtime" in err
    assert "stopped" in err

    def no_port(config: ServerConfig, **kwargs: Any) -> None:
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(driver, "run_server", no_port)
    assert cli_main.main(["serve"]) == 1
    assert "Address already in use" in capsys.readouterr().err

    def interrupted(config: ServerConfig, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(driver, "run_server", interrupted)
    assert cli_main.main(["serve"]) == 130


def test_cli_serve_takes_the_edges_of_its_ranges(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Port 65535, a fraction of a second, drop-after=0 are valid; a blank fault value, an
    empty script path and --upstream without OPENAI_API_KEY are usage errors."""
    import rtproto.adapters.server as driver

    seen: dict[str, Any] = {}
    monkeypatch.setattr(driver, "run_server", lambda config, **kw: seen.update(kw, config=config))
    argv = ["serve", "--port", "65535", "--max-duration", "0.5", "--fault", "drop-after=0"]
    assert cli_main.main(argv) == 0
    assert seen["port"] == 65535
    assert (seen["config"].max_duration, seen["config"].drop_after) == (0.5, 0)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    for argv, message in [
        (["serve", "--port", "65536"], "port 65536 is not in 0-65535"),
        (["serve", "--fault", "drop-after= "], "fault 'drop-after' needs a value"),
        (["serve", "--responder", "script:"], "echo or script:FILE, not 'script:'"),
        (["serve", "--upstream", "https://api.openai.com/v1"], "needs the real API key"),
    ]:
        assert cli_main.main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv


def test_cli_version_from_sys_argv(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["rtproto", "--version"])
    with pytest.raises(SystemExit) as caught:
        cli_main.main()
    assert caught.value.code == 0
    assert capsys.readouterr().out == f"rtproto {rtproto.__version__}\n"


def test_python_dash_m_rtproto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["rtproto", "serve", "--fault", "nope"])
    with pytest.raises(SystemExit) as caught:
        runpy.run_module("rtproto", run_name="__main__")
    assert caught.value.code == 2


def test_cli_serve_subprocess_then_sigint() -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtproto", "serve", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        found = re.search(
            r"listening on (ws://127\.0\.0\.1:\d+/v1/realtime\?model=gpt-realtime)", first
        )
        assert found, first
        with connect(found.group(1)) as ws:
            assert recv(ws)["type"] == "session.created"
            assert text_turn(ws)[-1]["type"] == "response.done"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(TIMEOUT) == 0
        rest = proc.stderr.read()
        assert "started" in rest and "completed" in rest and "stopped" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
