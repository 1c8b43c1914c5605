"""rtproto.wire.websocket against an independent peer, all in memory (no sockets).

The server side is wsproto in the SERVER role (its own h11 handshake, framing and
permessage-deflate); frames wsproto refuses to write (masked, reserved bits, bad lengths) are
written by hand. Time is a number passed in.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import struct
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto import events as wse
from wsproto.extensions import PerMessageDeflate

import rtproto
from rtproto import ConnectionClosed, LocalProtocolError, RemoteProtocolError
from rtproto.dialect import Dialect
from rtproto.events import ErrorEvent, SessionCreated, UnknownEvent
from rtproto.session import (
    ClientSession,
    ConnectionChange,
    ConnectionStatus,
    Limits,
    ProtocolWarning,
    ServerError,
    SessionOptions,
)
from rtproto.wire import (
    HandshakeRefused,
    HandshakeTimeout,
    RealtimeWebSocket,
    WebSocketOptions,
    WebSocketState,
    realtime_url,
)
from rtproto.wire._frames import accept_token, close_payload, encode_frame, mask
from rtproto.wire.websocket import MAX_REFUSAL_BODY, MAX_RESPONSE_HEAD

from .fuzzing import load_harness
from .scripts import Server

KEY = "sk-proj-SECRETSECRETSECRET0123456789"
ROOT = Path(__file__).resolve().parent.parent


def counting_random() -> Callable[[int], bytes]:
    """A deterministic random_bytes: a running byte counter."""
    counter = itertools.count()

    def random_bytes(n: int) -> bytes:
        return bytes(next(counter) % 251 for _ in range(n))

    return random_bytes


def options(**overrides: Any) -> WebSocketOptions:
    base: dict[str, Any] = {"api_key": KEY, "ping_interval": None}
    base.update(overrides)
    return WebSocketOptions(**base)


def drain(conn: RealtimeWebSocket) -> list[Any]:
    out = []
    while (event := conn.next_event()) is not None:
        out.append(event)
    return out


def changes(events: list[Any]) -> list[tuple[ConnectionStatus, int | None, str | None]]:
    return [(e.status, e.code, e.reason) for e in events if isinstance(e, ConnectionChange)]


class Peer:
    """wsproto in the server role, handshaking with one client."""

    def __init__(self, conn: RealtimeWebSocket, now: float = 0.0) -> None:
        self.conn = conn
        self.ws = WSConnection(ConnectionType.SERVER)
        conn.initiate(now)
        self.ws.receive_data(conn.data_to_send())
        request = next(self.ws.events())
        assert isinstance(request, wse.Request)
        self.request = request

    def accept(
        self,
        *,
        extensions: list[Any] | None = None,
        subprotocol: str | None = None,
        then: bytes = b"",
        now: float = 0.0,
    ) -> Peer:
        data = self.ws.send(wse.AcceptConnection(subprotocol=subprotocol, extensions=extensions))
        self.conn.receive_data(data + then, now)
        return self

    def text(self, text: str, *, finished: bool = True) -> bytes:
        return self.ws.send(wse.TextMessage(data=text, message_finished=finished))

    def received(self) -> list[Any]:
        """What the client wrote since the last call, as wsproto events."""
        self.ws.receive_data(self.conn.data_to_send())
        return list(self.ws.events())

    def texts(self) -> list[dict[str, Any]]:
        return [json.loads(e.data) for e in self.received() if isinstance(e, wse.TextMessage)]


def open_conn(
    opts: WebSocketOptions | None = None,
    session: SessionOptions | ClientSession | None = None,
    *,
    deflate: bool = False,
    now: float = 0.0,
) -> tuple[RealtimeWebSocket, Peer]:
    conn = RealtimeWebSocket(opts or options(), session, random_bytes=counting_random())
    peer = Peer(conn, now).accept(extensions=[PerMessageDeflate()] if deflate else [], now=now)
    drain(conn)
    return conn, peer


def raw_response(status: int, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    reason = {101: "Switching Protocols", 401: "Unauthorized"}.get(status, "Whatever")
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    return head.encode("latin-1") + b"\r\n" + body


def request_of(conn: RealtimeWebSocket) -> h11.Request:
    server = h11.Connection(h11.SERVER)
    server.receive_data(conn.data_to_send())
    event = server.next_event()
    assert isinstance(event, h11.Request)
    return event


def upgrade_101(conn: RealtimeWebSocket, *extra: tuple[str, str]) -> bytes:
    request = request_of(conn)
    key = dict(request.headers)[b"sec-websocket-key"]
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_token(key).decode()),
        *extra,
    ]
    return raw_response(101, headers)


# ------------------------------------------------------------------------------- handshake --


def test_request_headers_exact() -> None:
    conn = RealtimeWebSocket(
        options(organization="org_1", project="proj_1", extra_headers=(("X-Trace", "abc"),)),
        random_bytes=counting_random(),
    )
    conn.initiate(0.0)
    request = request_of(conn)
    assert request.method == b"GET"
    assert request.target == b"/v1/realtime?model=gpt-realtime"
    headers = [(k.decode(), v.decode()) for k, v in request.headers]
    key = dict(headers)["sec-websocket-key"]
    assert headers == [
        ("host", "api.openai.com"),
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-key", key),
        ("sec-websocket-version", "13"),
        ("sec-websocket-extensions", "permessage-deflate; client_max_window_bits"),
        ("authorization", f"Bearer {KEY}"),
        ("openai-organization", "org_1"),
        ("openai-project", "proj_1"),
        ("user-agent", f"rtproto/{rtproto.__version__}"),
        ("x-trace", "abc"),
    ]
    assert key == "AAECAwQFBgcICQoLDA0ODw=="  # 16 bytes of the injected source


def test_beta_header_only_when_beta() -> None:
    for beta in (False, True):
        conn = RealtimeWebSocket(options(beta=beta, compression=False))
        conn.initiate(0.0)
        names = {k for k, _ in request_of(conn).headers}
        assert (b"openai-beta" in names) is beta
        assert b"sec-websocket-extensions" not in names
    conn = RealtimeWebSocket(options(beta=True))
    conn.initiate(0.0)
    assert dict(request_of(conn).headers)[b"openai-beta"] == b"realtime=v1"
    assert conn.session.options.dialect is Dialect.BETA


@pytest.mark.parametrize("beta", [False, True])
def test_subprotocol_auth(beta: bool) -> None:
    conn = RealtimeWebSocket(options(subprotocol_auth=True, beta=beta, user_agent=""))
    peer = Peer(conn)
    headers = dict(peer.request.extra_headers)
    assert b"authorization" not in headers
    assert b"openai-beta" not in headers
    assert b"user-agent" not in headers
    expected = ["realtime", f"openai-insecure-api-key.{KEY}"]
    if beta:
        expected.append("openai-beta.realtime-v1")
    assert peer.request.subprotocols == expected
    peer.accept(subprotocol="realtime")
    assert conn.subprotocol == "realtime"
    assert ("sec-websocket-protocol", "realtime") in conn.response_headers


def test_subprotocol_auth_without_key() -> None:
    conn = RealtimeWebSocket(options(api_key=None, subprotocol_auth=True))
    assert Peer(conn).request.subprotocols == ["realtime"]


def test_key_never_shown() -> None:
    opts = options(organization="org_1")
    assert KEY not in repr(opts)
    assert KEY not in str(opts)
    conn = RealtimeWebSocket(opts)
    assert KEY not in repr(conn)
    conn.initiate(0.0)
    body = json.dumps({"error": {"message": f"bad key {KEY}", "code": "invalid_api_key"}})
    response = raw_response(
        401, [("Content-Length", str(len(body))), ("X-Echo", KEY)], body.encode()
    )
    with pytest.raises(HandshakeRefused) as info:
        conn.receive_data(response, 0.0)
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)
    assert "<api key>" in str(info.value)
    for bad in [{"api_key": "a\nb"}, {"api_key": "a b", "subprotocol_auth": True}]:
        secret = bad["api_key"]
        with pytest.raises(LocalProtocolError) as refused:
            options(**bad)
        assert secret not in str(refused.value)
    # an Azure-style key in a header or in the URL's query: reprs show neither
    url = f"wss://x.example/v1/realtime?model=m&api-key={KEY}"
    opts = options(url=url, extra_headers=(("api-key", KEY), ("X-Trace", "abc")))
    conn = RealtimeWebSocket(opts)
    for text in (repr(opts), str(opts), repr(conn)):
        assert KEY not in text
        assert "'wss://x.example/v1/realtime?...'" in text
    assert "extra_headers=(('api-key', '***'), ('X-Trace', '***'))" in repr(opts)
    assert "max_message_size=16777216" in repr(opts)  # the rest as it is


def _echo_subprotocol(value: str) -> Callable[[RealtimeWebSocket], bytes]:
    return lambda conn: upgrade_101(conn, ("Sec-WebSocket-Protocol", f"realtime, {value}"))


def _echo_refusal(value: str) -> Callable[[RealtimeWebSocket], bytes]:
    body = json.dumps({"error": {"message": f"bad key {value}"}}).encode()
    return lambda conn: raw_response(401, [("Content-Length", str(len(body)))], body)


#: A server echoing a credential in every kind of handshake error: (options, response, mark).
ECHOES: dict[str, tuple[dict[str, Any], Callable[[RealtimeWebSocket], bytes], str]] = {
    "api key as the subprotocol selected": (
        {"subprotocol_auth": True},
        _echo_subprotocol(f"openai-insecure-api-key.{KEY}"),
        "openai-insecure-api-key.<api key>",
    ),
    "api key in a malformed response": (
        {},
        lambda conn: f"HTTP/1.1 101 Switching Protocols\r\nbad {KEY}\r\n\r\n".encode(),
        "<api key>",
    ),
    "api key in a refusal": ({}, _echo_refusal(KEY), "bad key <api key>"),
    "api-key header as the subprotocol selected": (
        {"api_key": None, "extra_headers": (("api-key", KEY),)},
        _echo_subprotocol(KEY),
        "realtime, <redacted>",
    ),
    "api-key header in a refusal": (
        {"api_key": None, "extra_headers": (("X-Api-Key", KEY),)},
        _echo_refusal(KEY),
        "bad key <redacted>",
    ),
    "api-key query parameter in a refusal": (
        {"api_key": None, "url": f"wss://x.example/v1/realtime?model=m&api-key={KEY}"},
        _echo_refusal(KEY),
        "bad key <redacted>",
    ),
}


@pytest.mark.parametrize("name", ECHOES)
def test_key_never_shown_in_handshake_errors(name: str) -> None:
    overrides, response, mark = ECHOES[name]
    conn = RealtimeWebSocket(options(**overrides))
    conn.initiate(0.0)
    with pytest.raises(RemoteProtocolError) as info:
        conn.receive_data(response(conn), 0.0)
    error = info.value
    for text in (str(error), repr(error), repr(error.args), conn.close_reason or ""):
        assert KEY not in text
    assert mark in str(error)
    assert conn.state is WebSocketState.CLOSED
    (change,) = [e for e in changes(drain(conn)) if e[0] is ConnectionStatus.DISCONNECTED]
    assert KEY not in (change[2] or "")
    assert mark in (change[2] or "")


def test_handshake_errors_keep_values_that_are_not_credentials() -> None:
    conn = RealtimeWebSocket(options(extra_headers=(("X-Trace", "trace-1234"),)))
    conn.initiate(0.0)
    with pytest.raises(RemoteProtocolError, match="'realtime, trace-1234', not offered"):
        conn.receive_data(_echo_subprotocol("trace-1234")(conn), 0.0)


def _padded_head(head: bytes, size: int) -> bytes:
    """``head`` (ending in a blank line) with an ``X-Pad`` header, ``size`` bytes long."""
    padded = head[:-2] + b"X-Pad: " + b"p" * (size - len(head) - 9) + b"\r\n\r\n"
    assert len(padded) == size
    return padded


def _pieces(data: bytes, step: int) -> list[bytes]:
    return [data[i : i + step] for i in range(0, len(data), step)] if step else [data]


@pytest.mark.parametrize("status", [101, 401])
@pytest.mark.parametrize("size", [MAX_RESPONSE_HEAD + 1, 40_000])
@pytest.mark.parametrize("step", [0, 7, 1000])
def test_oversized_response_head_fails_the_handshake(status: int, size: int, step: int) -> None:
    conn = RealtimeWebSocket(options())
    conn.initiate(0.0)
    head = upgrade_101(conn) if status == 101 else raw_response(401, [("Content-Length", "0")])
    data = _padded_head(head, size)
    with pytest.raises(RemoteProtocolError) as info:  # however the bytes arrive
        for piece in _pieces(data, step):
            conn.receive_data(piece, 0.0)
    assert not isinstance(info.value, HandshakeRefused)
    assert info.value.message == (
        f"invalid answer to the WebSocket upgrade: the response head exceeds"
        f" {MAX_RESPONSE_HEAD} bytes"
    )
    assert conn.state is WebSocketState.CLOSED
    assert changes(drain(conn))[-1] == (ConnectionStatus.DISCONNECTED, None, info.value.message)


@pytest.mark.parametrize("step", [0, 7, 1000])
def test_response_head_at_the_limit_is_accepted(step: int) -> None:
    conn = RealtimeWebSocket(options())
    conn.initiate(0.0)
    interim = b"HTTP/1.1 100 Continue\r\n\r\n"  # each head counts on its own
    head = _padded_head(upgrade_101(conn), MAX_RESPONSE_HEAD)
    then = encode_frame(0x1, Server().session_created().encode())
    for piece in _pieces(interim + head + then, step):
        conn.receive_data(piece, 0.0)
    assert conn.state is WebSocketState.OPEN
    assert any(isinstance(e, SessionCreated) for e in drain(conn))
    refused = RealtimeWebSocket(options())
    refused.initiate(0.0)
    head = _padded_head(raw_response(401, [("Content-Length", "2")]), MAX_RESPONSE_HEAD)
    with pytest.raises(HandshakeRefused):
        for piece in _pieces(head + b"{}", step):
            refused.receive_data(piece, 0.0)


def test_101_connects_and_sends_session_update() -> None:
    conn = RealtimeWebSocket(
        options(), SessionOptions(model="gpt-realtime"), random_bytes=counting_random()
    )
    assert conn.state is WebSocketState.CONNECTING
    peer = Peer(conn).accept()
    assert conn.state is WebSocketState.OPEN
    assert changes(drain(conn)) == [
        (ConnectionStatus.CONNECTING, None, None),
        (ConnectionStatus.CONNECTED, None, None),
    ]
    (update,) = peer.texts()
    assert update["type"] == "session.update"
    assert update["session"]["model"] == "gpt-realtime"
    assert dict(conn.response_headers)["upgrade"] == "websocket"
    assert conn.subprotocol is None


def test_101_with_frames_in_the_same_read() -> None:
    conn = RealtimeWebSocket(options())
    peer = Peer(conn)
    response = peer.ws.send(wse.AcceptConnection())
    conn.receive_data(bytearray(response + peer.text(Server().session_created())), 0.0)
    assert any(isinstance(e, SessionCreated) for e in drain(conn))


def test_handshake_one_byte_at_a_time() -> None:
    conn = RealtimeWebSocket(options())
    peer = Peer(conn)
    data = peer.ws.send(wse.AcceptConnection()) + peer.text(Server().session_created())
    for i in range(len(data)):
        conn.receive_data(data[i : i + 1], 0.0)
    assert any(isinstance(e, SessionCreated) for e in drain(conn))


@pytest.mark.parametrize(
    ("status", "body", "headers", "code", "retry_after"),
    [
        (
            401,
            {"error": {"message": "You didn't provide an API key.", "code": None}},
            [],
            None,
            None,
        ),
        (
            404,
            {"error": {"message": "No session found", "code": "call_id_not_found"}},
            [],
            "call_id_not_found",
            None,
        ),
        (
            429,
            {"error": {"message": "Rate limit", "code": "rate_limit_exceeded"}},
            [("Retry-After", "7")],
            "rate_limit_exceeded",
            7.0,
        ),
        (
            429,
            {"error": {"message": "Rate limit", "code": "rate_limit_exceeded"}},
            [("Retry-After", "7"), ("retry-after-ms", "1500")],
            "rate_limit_exceeded",
            1.5,
        ),
        (429, {"error": "flat"}, [("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")], None, None),
        (503, ["not", "an", "object"], [("Retry-After", "-1")], None, None),
        (503, {"error": None}, [("Retry-After", "0")], None, 0.0),
    ],
)
def test_refusal(
    status: int,
    body: Any,
    headers: list[tuple[str, str]],
    code: str | None,
    retry_after: float | None,
) -> None:
    conn = RealtimeWebSocket(options())
    conn.initiate(0.0)
    conn.data_to_send()
    data = json.dumps(body).encode()
    response = raw_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers],
        data,
    )
    with pytest.raises(HandshakeRefused) as info:
        conn.receive_data(response, 0.0)
    error = info.value
    assert isinstance(error, RemoteProtocolError)
    assert error.status == status == error.hint
    assert error.body == data
    assert ("content-type", "application/json") in error.headers
    assert error.retry_after == retry_after
    if isinstance(body, dict) and isinstance(body["error"], dict):
        assert error.error == body["error"]
        assert error.error["code"] == code
        assert body["error"]["message"] in str(error)
    else:
        assert error.error is None
    assert f"HTTP {status}" in str(error)
    assert conn.state is WebSocketState.CLOSED
    assert changes(drain(conn))[-1][0] is ConnectionStatus.DISCONNECTED
    with pytest.raises(ConnectionClosed):
        conn.session.send_message("hi")
    conn.receive_data(b"more", 1.0)  # ignored once closed
    assert conn.data_to_send() == b""


def test_refusal_body_until_eof_one_byte_at_a_time() -> None:
    conn = RealtimeWebSocket(options())
    conn.initiate(0.0)
    body = json.dumps({"error": {"message": "Incorrect API key provided: sk-abc***xyz."}})
    raw = body.encode()
    response = raw_response(401, [("Connection", "close")], raw)
    for i in range(len(response)):
        conn.receive_data(response[i : i + 1], 0.0)
    assert conn.state is WebSocketState.CONNECTING
    with pytest.raises(HandshakeRefused) as info:
        conn.receive_data(b"", 0.0)
    assert info.value.body == raw
    assert info.value.error == {"message": "Incorrect API key provided: sk-abc***xyz."}


def _chunked(raw: bytes, size: int) -> bytes:
    pieces = [raw[i : i + size] for i in range(0, len(raw), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_refusal_body_one_byte_at_a_time(framing: str) -> None:
    conn = RealtimeWebSocket(options())
    conn.initiate(0.0)
    raw = json.dumps({"error": {"message": "nope", "code": "x"}}).encode()
    if framing == "length":
        response = raw_response(403, [("Content-Length", str(len(raw)))], raw)
    else:
        response = raw_response(403, [("Transfer-Encoding", "chunked")], _chunked(raw, 5))
    for i in range(len(response) - 1):
        conn.receive_data(response[i : i + 1], 0.0)
    assert conn.state is WebSocketState.CONNECTING
    with pytest.raises(HandshakeRefused) as info:
        conn.receive_data(response[-1:], 0.0)
    assert info.value.status == 403
    assert info.value.body == raw
    assert info.value.error == {"message": "nope", "code": "x"}


def test_refusal_without_reason_phrase() -> None:
    conn = RealtimeWebSocket(options())
    conn.initiate(0.0)
    with pytest.raises(HandshakeRefused) as info:
        conn.receive_data(b"HTTP/1.1 502 \r\nContent-Length: 0\r\n\r\n", 0.0)
    assert str(info.value).startswith("the server refused the WebSocket upgrade: HTTP 502;")
    assert info.value.body == b""


def test_refusal_body_is_capped() -> None:
    conn = RealtimeWebSocket(options())
    conn.initiate(0.0)
    big = b"x" * (200 * 1024)
    with pytest.raises(HandshakeRefused) as info:
        conn.receive_data(raw_response(500, [("Content-Length", str(len(big)))], big), 0.0)
    assert len(info.value.body) == 64 * 1024
    assert info.value.error is None


def test_interim_1xx_is_skipped() -> None:
    conn = RealtimeWebSocket(options())
    conn.initiate(0.0)
    conn.receive_data(b"HTTP/1.1 100 Continue\r\n\r\n" + upgrade_101(conn), 0.0)
    assert conn.state is WebSocketState.OPEN


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ([("Sec-WebSocket-Accept", "bad")], "Sec-WebSocket-Accept"),
        ([("Upgrade", "h2c")], "Upgrade"),
        ([("Connection", "keep-alive")], "Connection"),
        ([("Sec-WebSocket-Protocol", "realtime")], "subprotocol"),
        ([("Sec-WebSocket-Extensions", "x-custom")], "not offered"),
        ([("Sec-WebSocket-Extensions", "permessage-deflate, permessage-deflate")], "not offered"),
        ([("Sec-WebSocket-Extensions", "permessage-deflate; foo")], "unknown"),
        ([("Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits=7")], "8 to 15"),
        ([("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits=015")], "8 to"),
        ([("Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits=16")], "8 to"),
        (
            [("Sec-WebSocket-Extensions", "permessage-deflate; server_no_context_takeover=1")],
            "no value",
        ),
        (
            [
                (
                    "Sec-WebSocket-Extensions",
                    "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                )
            ],
            "twice",
        ),
    ],
)
def test_bad_upgrade_response(headers: list[tuple[str, str]], message: str) -> None:
    conn = RealtimeWebSocket(options())
    conn.initiate(0.0)
    request = request_of(conn)
    key = dict(request.headers)[b"sec-websocket-key"]
    base = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Accept": accept_token(key).decode(),
    }
    for name, value in headers:
        base[name] = value
    with pytest.raises(RemoteProtocolError, match=message) as info:
        conn.receive_data(raw_response(101, list(base.items())), 0.0)
    assert not isinstance(info.value, HandshakeRefused)
    assert info.value.hint == 1002
    assert conn.state is WebSocketState.CLOSED
    assert changes(drain(conn))[-1][0] is ConnectionStatus.DISCONNECTED


def test_extension_without_offer_is_refused() -> None:
    conn = RealtimeWebSocket(options(compression=False))
    conn.initiate(0.0)
    with pytest.raises(RemoteProtocolError, match="not offered"):
        conn.receive_data(upgrade_101(conn, ("Sec-WebSocket-Extensions", "permessage-deflate")), 0)


def test_quoted_deflate_parameters_are_accepted() -> None:
    conn = RealtimeWebSocket(options())
    conn.initiate(0.0)
    value = 'permessage-deflate; server_max_window_bits="10"; client_max_window_bits=12'
    conn.receive_data(upgrade_101(conn, ("Sec-WebSocket-Extensions", value)), 0.0)
    assert conn.state is WebSocketState.OPEN


@pytest.mark.parametrize("bits", [8, 15])
def test_window_bits_from_8_to_15_are_accepted(bits: int) -> None:
    conn = RealtimeWebSocket(options())
    conn.initiate(0.0)
    value = f"permessage-deflate; server_max_window_bits={bits}; client_max_window_bits={bits}"
    conn.receive_data(upgrade_101(conn, ("Sec-WebSocket-Extensions", value)), 0.0)
    assert conn.state is WebSocketState.OPEN


@pytest.mark.parametrize(
    "data",
    [b"not http at all\r\n\r\n", b"HTTP/1.1 101 OK\r\nbad header line\r\n\r\n"],
)
def test_garbage_response(data: bytes) -> None:
    conn = RealtimeWebSocket(options())
    conn.initiate(0.0)
    with pytest.raises(RemoteProtocolError, match="invalid answer"):
        conn.receive_data(data, 0.0)
    assert conn.state is WebSocketState.CLOSED


@pytest.mark.parametrize("partial", [b"", b"HTTP/1.1 101 Switching"])
def test_eof_during_handshake(partial: bytes) -> None:
    conn = RealtimeWebSocket(options())
    conn.initiate(0.0)
    if partial:
        conn.receive_data(partial, 0.0)
    with pytest.raises(RemoteProtocolError, match="closed the connection"):
        conn.receive_data(b"", 0.0)
    assert conn.state is WebSocketState.CLOSED


def test_eof_right_after_101() -> None:
    conn = RealtimeWebSocket(options())
    conn.initiate(0.0)
    conn.receive_data(upgrade_101(conn), 0.0)
    conn.receive_data(b"", 0.0)
    assert changes(drain(conn))[-1] == (
        ConnectionStatus.DISCONNECTED,
        1006,
        "connection lost without a close frame",
    )


def test_handshake_timeout() -> None:
    conn = RealtimeWebSocket(options(handshake_timeout=3.0))
    assert conn.get_timer() is None
    conn.initiate(10.0)
    assert conn.get_timer() == 13.0
    conn.handle_timer(12.9)
    assert conn.state is WebSocketState.CONNECTING
    with pytest.raises(HandshakeTimeout) as info:
        conn.handle_timer(13.0)
    assert isinstance(info.value, RemoteProtocolError)
    assert conn.state is WebSocketState.CLOSED
    assert conn.get_timer() is None
    assert changes(drain(conn))[-1][0] is ConnectionStatus.DISCONNECTED


def test_no_handshake_timeout() -> None:
    conn = RealtimeWebSocket(options(handshake_timeout=None))
    conn.initiate(0.0)
    assert conn.get_timer() is None
    conn.handle_timer(1e9)
    assert conn.state is WebSocketState.CONNECTING


def test_misuse() -> None:
    conn = RealtimeWebSocket(options())
    with pytest.raises(LocalProtocolError, match="initiate"):
        conn.receive_data(b"HTTP/1.1", 0.0)
    conn.initiate(0.0)
    with pytest.raises(LocalProtocolError, match="once"):
        conn.initiate(0.0)
    with pytest.raises(LocalProtocolError, match="random_bytes"):
        RealtimeWebSocket(options(), random_bytes=lambda n: b"short").initiate(0.0)
    with pytest.raises(LocalProtocolError, match="session must be"):
        RealtimeWebSocket(options(), object())  # type: ignore[arg-type]
    used = ClientSession()
    used.connection_made(0.0)
    with pytest.raises(LocalProtocolError, match="already connected"):
        RealtimeWebSocket(options(), used)
    with pytest.raises(LocalProtocolError, match="dialect"):
        RealtimeWebSocket(options(beta=True), SessionOptions())
    conn2, _ = open_conn()
    with pytest.raises(LocalProtocolError, match="close code"):
        conn2.close(1005)
    with pytest.raises(LocalProtocolError, match="123 bytes"):
        conn2.close(1000, "x" * 124)


def test_random_source_too_short_for_masks() -> None:
    calls = iter([bytes(16), b""])
    conn = RealtimeWebSocket(options(), random_bytes=lambda n: next(calls))
    Peer(conn).accept()
    with pytest.raises(LocalProtocolError, match="too few"):
        conn.data_to_send()  # the first frame needs a mask key


def test_mask_keys_come_from_the_random_source() -> None:
    keys = iter([b"\x01\x02\x03\x04", b"\x05\x06\x07\x08", b"\x09\x0a\x0b\x0c"])
    conn = RealtimeWebSocket(options(), random_bytes=lambda n: bytes(16) if n == 16 else next(keys))
    peer = Peer(conn).accept()
    first = conn.data_to_send()  # the session.update, masked with the first key
    assert first[4:8] == b"\x01\x02\x03\x04"
    conn.receive_data(encode_frame(0x9, b"ping"), 1.0)
    pong = conn.data_to_send()
    assert pong == b"\x8a\x84\x05\x06\x07\x08" + mask(b"ping", b"\x05\x06\x07\x08")
    peer.ws.receive_data(first + pong)
    assert [type(e) for e in peer.ws.events()] == [wse.TextMessage, wse.Pong]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "ftp://x"}, "scheme"),
        ({"api_key": ""}, "non-empty"),
        ({"organization": "a\r\nb"}, "OpenAI-Organization"),
        ({"extra_headers": (("Bad Name", "v"),)}, "header name"),
        ({"extra_headers": (("X", " padded"),)}, "value"),
        ({"extra_headers": (("Host", "h"),)}, "handshake"),
        ({"extra_headers": (("Authorization", "Bearer x"),)}, "repeats"),
        ({"extra_headers": (("User-Agent", "me"),)}, "repeats"),
        ({"extra_headers": (("only-one",),)}, "pairs"),
        ({"max_message_size": 10}, "max_message_size"),
        ({"max_fragments": 0}, "max_fragments"),
        ({"max_fragments": True}, "max_fragments"),
        ({"max_fragments": 2.0}, "max_fragments"),
        ({"ping_interval": 0}, "ping_interval"),
        ({"ping_timeout": -1}, "ping_timeout"),
        ({"handshake_timeout": "1"}, "handshake_timeout"),
        ({"close_timeout": 0}, "close_timeout"),
    ],
)
def test_options_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        options(**kwargs)


def test_options_allow() -> None:
    opts = options(
        api_key=None,
        user_agent="",
        extra_headers=(("Authorization", "Bearer ek_123"), ("User-Agent", "mine/1")),
    )
    conn = RealtimeWebSocket(opts)
    conn.initiate(0.0)
    headers = dict(request_of(conn).headers)
    assert headers[b"authorization"] == b"Bearer ek_123"
    assert headers[b"user-agent"] == b"mine/1"
    url = realtime_url("http://[::1]:8080/v1", model="m")
    conn = RealtimeWebSocket(options(url=url))
    conn.initiate(0.0)
    request = request_of(conn)
    assert dict(request.headers)[b"host"] == b"[::1]:8080"
    assert request.target == b"/v1/realtime?model=m"


# ---------------------------------------------------------------------------------- frames --


def test_messages_and_commands_round_trip() -> None:
    conn, peer = open_conn()
    peer.texts()
    server = Server()
    conn.receive_data(peer.text(server.session_created()), 1.0)
    events = drain(conn)
    assert [type(e) for e in events] == [SessionCreated]
    conn.session.send_message("hello")
    conn.session.send_audio(b"\x01\x00" * 480)
    assert conn.pending_output > 0
    kinds = [m["type"] for m in peer.texts()]
    assert kinds == ["conversation.item.create", "response.create", "input_audio_buffer.append"]
    assert conn.pending_output == 0
    assert conn.data_to_send() == b""


def test_large_client_messages_are_framed_and_masked() -> None:
    conn, peer = open_conn()
    peer.texts()
    for size in (100, 125, 126, 1000, 65535, 65536, 70001):
        conn.session.send_audio(bytes(range(256)) * (size // 256) + bytes(size % 256))
    sizes = [len(m["audio"]) for m in peer.texts()]
    assert len(sizes) == 7


def test_mask_matches_reference() -> None:
    key = b"\x01\x82\x33\xf4"
    for n in [0, 1, 2, 3, 4, 5, 255, 256, 257, 258, 259, 1000, 4096 + 3]:
        data = bytes((i * 7 + 3) % 256 for i in range(n))
        expected = bytes(b ^ key[i % 4] for i, b in enumerate(data))
        assert mask(data, key) == expected
        assert mask(expected, key) == data


def test_binary_message_is_a_warning() -> None:
    conn, peer = open_conn()
    data = peer.ws.send(wse.BytesMessage(data=b"\x00\x01"))
    conn.receive_data(data + peer.text(Server().session_created()), 1.0)
    events = drain(conn)
    assert isinstance(events[-2], ProtocolWarning)
    assert "binary" in events[-2].message
    assert isinstance(events[-1], SessionCreated)
    assert conn.state is WebSocketState.OPEN


def test_unknown_event_passes_through() -> None:
    conn, peer = open_conn()
    conn.receive_data(peer.text('{"type":"brand.new","x":1}'), 1.0)
    (event,) = [e for e in drain(conn) if not isinstance(e, ConnectionChange)]
    assert isinstance(event, UnknownEvent)


def test_text_that_is_not_an_event_is_a_warning() -> None:
    """Not a WebSocket violation (the frame is valid UTF-8 text): the session drops it with a
    warning, as the JS transport drops it, and the connection carries on."""
    conn, peer = open_conn()
    peer.texts()
    conn.receive_data(peer.text("not json") + peer.text(Server().session_created()), 1.0)
    events = drain(conn)
    assert isinstance(events[-2], ProtocolWarning)
    assert events[-2].message.startswith("dropped a message: message is not valid JSON")
    assert isinstance(events[-1], SessionCreated)
    assert conn.state is WebSocketState.OPEN
    assert peer.received() == []


def test_invalid_utf8_text_closes_1007() -> None:
    conn, peer = open_conn()
    peer.texts()
    with pytest.raises(RemoteProtocolError) as info:
        conn.receive_data(b"\x81\x03\xff\xfe{", 1.0)
    assert info.value.hint == 1007
    assert conn.state is WebSocketState.CLOSED
    assert conn.close_code == 1007
    (close,) = peer.received()
    assert isinstance(close, wse.CloseConnection)
    assert close.code == 1007


def test_automatic_pong() -> None:
    conn, peer = open_conn()
    peer.received()
    conn.receive_data(peer.ws.send(wse.Ping(b"payload-1")), 1.0)
    (pong,) = peer.received()
    assert isinstance(pong, wse.Pong)
    assert pong.payload == b"payload-1"
    conn.receive_data(peer.ws.send(wse.Pong(b"unsolicited")), 1.0)
    assert peer.received() == []


def test_pong_follows_earlier_messages() -> None:
    conn, peer = open_conn()
    peer.received()
    conn.session.send_message("first", trigger_response=False)
    conn.receive_data(peer.ws.send(wse.Ping(b"p")), 1.0)
    kinds = [type(e).__name__ for e in peer.received()]
    assert kinds == ["TextMessage", "Pong"]


def test_keepalive_ping_and_timeout() -> None:
    conn, peer = open_conn(options(ping_interval=20.0, ping_timeout=5.0), now=100.0)
    peer.received()
    assert conn.get_timer() == 120.0
    conn.handle_timer(119.0)
    assert peer.received() == []
    conn.handle_timer(120.0)
    (ping,) = peer.received()
    assert isinstance(ping, wse.Ping)
    assert conn.get_timer() == 125.0
    conn.receive_data(peer.ws.send(ping.response()), 121.0)
    assert conn.get_timer() == 141.0
    conn.receive_data(peer.ws.send(wse.Pong(b"other")), 121.5)  # not ours: ignored
    assert conn.get_timer() == 141.0
    conn.handle_timer(141.0)
    (ping,) = peer.received()
    assert conn.get_timer() == 146.0
    conn.handle_timer(145.9)
    assert conn.state is WebSocketState.OPEN
    conn.handle_timer(146.0)
    assert conn.state is WebSocketState.CLOSED
    assert conn.close_code == 1006
    assert changes(drain(conn))[-1] == (
        ConnectionStatus.DISCONNECTED,
        1006,
        "keepalive ping timeout",
    )
    assert conn.get_timer() is None


def test_server_closes_after_error() -> None:
    conn, peer = open_conn()
    peer.received()
    server = Server()
    reason = "Your session hit the maximum duration of 60 minutes."
    error = server.event(
        "error",
        error={
            "type": "invalid_request_error",
            "code": "session_expired",
            "message": reason,
            "param": None,
            "event_id": None,
        },
    )
    data = peer.text(error) + peer.ws.send(wse.CloseConnection(code=1001, reason=reason))
    conn.receive_data(data, 5.0)
    events = [e for e in drain(conn)]
    assert isinstance(events[0], ErrorEvent)
    assert isinstance(events[1], ServerError)
    assert events[1].event.error.code == "session_expired"
    assert isinstance(events[2], ConnectionChange)
    assert (events[2].status, events[2].code, events[2].reason) == (
        ConnectionStatus.DISCONNECTED,
        1001,
        reason,
    )
    assert conn.state is WebSocketState.CLOSED
    assert (conn.close_code, conn.close_reason) == (1001, reason)
    (reply,) = peer.received()
    assert isinstance(reply, wse.CloseConnection)
    assert reply.code == 1001
    with pytest.raises(ConnectionClosed):
        conn.session.send_message("late")
    conn.receive_data(b"\x81\x02{}", 6.0)  # after the close: ignored
    conn.receive_data(b"", 6.0)
    assert drain(conn) == []


def test_server_close_without_code() -> None:
    conn, peer = open_conn()
    peer.received()
    conn.receive_data(b"\x88\x00", 1.0)
    assert changes(drain(conn))[-1] == (ConnectionStatus.DISCONNECTED, 1005, None)
    reply = conn.data_to_send()
    assert reply[:2] == b"\x88\x80"  # an empty, masked close frame
    assert len(reply) == 6
    peer.ws.receive_data(reply)
    (reply,) = list(peer.ws.events())
    assert isinstance(reply, wse.CloseConnection)
    assert reply.code == 1005  # wsproto's reading of an empty close payload


def test_eof_without_close() -> None:
    conn, peer = open_conn()
    conn.receive_data(peer.text('{"type":"x"}')[:3], 1.0)  # a partial frame, then EOF
    conn.receive_data(b"", 2.0)
    assert conn.state is WebSocketState.CLOSED
    assert conn.close_code == 1006
    assert changes(drain(conn))[-1] == (
        ConnectionStatus.DISCONNECTED,
        1006,
        "connection lost without a close frame",
    )


@pytest.mark.parametrize("fragmented", [False, True])
def test_oversized_message_closes_1009(fragmented: bool) -> None:
    conn, peer = open_conn(options(max_message_size=1000))
    peer.received()
    text = json.dumps({"type": "x", "pad": "a" * 2000})
    first = peer.text(text[:600], finished=False) if fragmented else b""
    data = first + peer.text(text[600:] if fragmented else text)
    conn.receive_data(data[: len(first) + 20], 1.0)  # the header alone is enough to refuse
    assert conn.state is WebSocketState.CLOSED
    assert conn.close_code == 1009
    assert changes(drain(conn))[-1][:2] == (ConnectionStatus.DISCONNECTED, 1009)
    (close,) = peer.received()
    assert isinstance(close, wse.CloseConnection)
    assert close.code == 1009


def test_message_at_the_limit_is_accepted() -> None:
    text = json.dumps({"type": "x", "pad": "a" * 1000})
    conn, peer = open_conn(options(max_message_size=len(text)))
    conn.receive_data(peer.text(text), 1.0)
    assert isinstance(drain(conn)[-1], UnknownEvent)


def test_masked_server_frame_is_a_protocol_error() -> None:
    conn, peer = open_conn()
    peer.received()
    frame = encode_frame(0x1, b'{"type":"x"}', b"\x01\x02\x03\x04")
    with pytest.raises(RemoteProtocolError, match="masked") as info:
        conn.receive_data(frame, 1.0)
    assert info.value.hint == 1002
    assert conn.close_code == 1002
    assert changes(drain(conn))[-1][:2] == (ConnectionStatus.DISCONNECTED, 1002)
    (close,) = peer.received()
    assert isinstance(close, wse.CloseConnection)
    assert close.code == 1002


BAD_FRAMES = {
    "rsv2": (b"\xa1\x02{}", 1002),
    "rsv3": (b"\x91\x02{}", 1002),
    "rsv1 without deflate": (b"\xc1\x02{}", 1002),
    "reserved data opcode": (b"\x83\x00", 1002),
    "reserved control opcode": (b"\x8b\x00", 1002),
    "fragmented ping": (b"\x09\x00", 1002),
    "long ping": (b"\x89\x7e\x00\x7e" + b"x" * 126, 1002),
    "rsv on ping": (b"\xc9\x00", 1002),
    "continuation first": (b"\x80\x02{}", 1002),
    "text inside a message": (b"\x01\x01{\x81\x01}", 1002),
    "rsv1 on continuation": (b"\x01\x01{\xc0\x01}", 1002),
    "16-bit length too small": (b"\x81\x7e\x00\x05hello", 1002),
    "16-bit length 125": (b"\x81\x7e\x00\x7d" + b" " * 125, 1002),
    "64-bit length too small": (b"\x81\x7f" + struct.pack("!Q", 5) + b"hello", 1002),
    "64-bit length 65535": (b"\x81\x7f" + struct.pack("!Q", 65535) + b" " * 65535, 1002),
    "64-bit length msb": (b"\x81\x7f" + struct.pack("!Q", 1 << 63), 1002),
    "close 1 byte": (b"\x88\x01\x03", 1002),
    "close code 1005": (b"\x88\x02\x03\xed", 1002),
    "close code 999": (b"\x88\x02\x03\xe7", 1002),
    "close code 2000": (b"\x88\x02\x07\xd0", 1002),
    "close code 5000": (b"\x88\x02\x13\x88", 1002),
    "close code 1004": (b"\x88\x02\x03\xec", 1002),
    "close code 1006": (b"\x88\x02\x03\xee", 1002),
    "close code 1015": (b"\x88\x02\x03\xf7", 1002),
    "close code 2999": (b"\x88\x02\x0b\xb7", 1002),
    "close reason not utf-8": (b"\x88\x04\x03\xe8\xff\xfe", 1007),
    "text not utf-8": (b"\x81\x02\xc3\x28", 1007),
    "text surrogate": (b"\x81\x03\xed\xa0\x80", 1007),
    "fragmented text not utf-8": (b"\x01\x01\xc3\x80\x01\x28", 1007),
}


@pytest.mark.parametrize("name", BAD_FRAMES)
def test_protocol_violations(name: str) -> None:
    frame, code = BAD_FRAMES[name]
    conn, peer = open_conn()
    peer.received()
    with pytest.raises(RemoteProtocolError) as info:
        conn.receive_data(frame, 1.0)
    assert info.value.hint == code
    assert info.value.state == "OPEN"
    assert conn.state is WebSocketState.CLOSED
    assert conn.close_code == code
    assert changes(drain(conn))[-1][:2] == (ConnectionStatus.DISCONNECTED, code)
    (close,) = peer.received()
    assert isinstance(close, wse.CloseConnection)
    assert close.code == code


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1011, 1012, 1014, 3000, 4999])
def test_valid_close_codes(code: int) -> None:
    conn, _peer = open_conn()
    conn.receive_data(b"\x88\x02" + code.to_bytes(2, "big"), 1.0)
    assert conn.close_code == code


def test_fragments_with_control_frames_between() -> None:
    conn, peer = open_conn()
    peer.received()
    text = Server().session_created()
    third = len(text) // 3
    data = (
        peer.text(text[:third], finished=False)
        + peer.ws.send(wse.Ping(b"1"))
        + peer.text(text[third : 2 * third], finished=False)
        + peer.ws.send(wse.Pong(b"x"))
        + peer.ws.send(wse.Ping(b"2"))
        + peer.text(text[2 * third :])
    )
    conn.receive_data(data, 1.0)
    (event,) = [e for e in drain(conn) if not isinstance(e, ConnectionChange)]
    assert isinstance(event, SessionCreated)
    pongs = [e.payload for e in peer.received() if isinstance(e, wse.Pong)]
    assert pongs == [b"1", b"2"]


@pytest.mark.parametrize("kind", ["text", "binary", "compressed"])
def test_empty_fragments_are_not_kept(kind: str) -> None:
    conn, peer = open_conn(deflate=kind == "compressed")
    peer.received()
    raw = b'{"type":"x"}'
    if kind == "compressed":
        compressor = zlib.compressobj(wbits=-15)
        body = compressor.compress(raw) + compressor.flush(zlib.Z_SYNC_FLUSH)[:-4]
        first, last = encode_frame(0x1, body, rsv=0x40, fin=False), encode_frame(0x0, b"")
    else:
        opcode = 0x1 if kind == "text" else 0x2
        first, last = encode_frame(opcode, raw[:1], fin=False), encode_frame(0x0, raw[1:])
    conn.receive_data(first + encode_frame(0x0, b"", fin=False) * 1000, 1.0)
    assert len(conn._frag_text) + len(conn._frag_chunks) == 1  # not one per empty frame
    conn.receive_data(last, 1.0)
    (event,) = [e for e in drain(conn) if not isinstance(e, ConnectionChange)]
    if kind == "binary":
        assert isinstance(event, ProtocolWarning)
        assert "12 bytes" in event.message
    else:
        assert isinstance(event, UnknownEvent)
        assert event.raw == {"type": "x"}
    assert conn.state is WebSocketState.OPEN


def test_message_in_too_many_fragments_closes_1009() -> None:
    conn, peer = open_conn(options(max_fragments=4))
    peer.received()
    raw = b'{"type":"x"}'
    empty = encode_frame(0x0, b"", fin=False)
    four = encode_frame(0x1, raw[:3], fin=False) + empty * 2 + encode_frame(0x0, raw[3:])
    conn.receive_data(four, 1.0)
    assert isinstance(drain(conn)[-1], UnknownEvent)  # at the limit: accepted
    five = encode_frame(0x1, raw[:3], fin=False) + empty * 3 + encode_frame(0x0, raw[3:])
    conn.receive_data(five[: -len(raw[3:])], 1.0)  # the fifth frame's header is enough
    assert conn.state is WebSocketState.CLOSED
    assert conn.close_code == 1009
    reason = "a message in more than 4 fragments exceeds max_fragments"
    assert conn.close_reason == reason
    assert changes(drain(conn))[-1] == (ConnectionStatus.DISCONNECTED, 1009, reason)
    (close,) = peer.received()
    assert isinstance(close, wse.CloseConnection)
    assert close.code == 1009


def test_empty_fragment_flood_is_bounded() -> None:
    """Empty continuation frames count for nothing towards max_message_size: the default
    max_fragments ends the message, and none of them is kept meanwhile."""
    conn, peer = open_conn(options(max_message_size=1024))
    peer.received()
    conn.receive_data(b"\x01\x01{", 1.0)  # a TEXT fragment, not FIN
    chunk = b"\x00\x00" * 20_000  # 20,000 empty continuation frames, not FIN
    tracemalloc.start()
    try:
        for _ in range(3):
            conn.receive_data(chunk, 1.0)
            if conn.state is WebSocketState.OPEN:
                assert conn._frag_text == ["{"]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert conn.state is WebSocketState.OPEN  # 60,001 frames: under the default 65536
    assert peak < 64 * 1024
    conn.receive_data(chunk, 1.0)
    assert conn.close_code == 1009
    assert conn.close_reason == "a message in more than 65536 fragments exceeds max_fragments"


def test_fragmented_non_ascii_text() -> None:
    conn, _peer = open_conn()
    text = json.dumps({"type": "x", "t": "héllo wörld ✓"}, ensure_ascii=False)
    raw = text.encode()
    data = encode_frame(0x1, raw[:9], fin=False) + encode_frame(0x0, raw[9:])
    conn.receive_data(data + encode_frame(0x1, raw), 1.0)
    events = [e for e in drain(conn) if isinstance(e, UnknownEvent)]
    assert [e.raw["t"] for e in events] == ["héllo wörld ✓"] * 2


@pytest.mark.parametrize("server_no_context_takeover", [False, True])
def test_compressed_messages(server_no_context_takeover: bool) -> None:
    conn = RealtimeWebSocket(options(), random_bytes=counting_random())
    peer = Peer(conn).accept(
        extensions=[PerMessageDeflate(server_no_context_takeover=server_no_context_takeover)]
    )
    peer.received()
    assert any(k == "sec-websocket-extensions" for k, _ in conn.response_headers)
    server = Server()
    texts = [
        server.session_created(),
        *[server.event("x.y", n=i, pad="ab" * 300) for i in range(5)],
    ]
    data = b"".join(peer.text(t) for t in texts)
    assert data[0] & 0x40  # really compressed
    # a fragmented compressed message with a ping in the middle
    half = len(texts[1]) // 2
    data += peer.text(texts[1][:half], finished=False) + peer.ws.send(wse.Ping(b"z"))
    data += peer.text(texts[1][half:])
    conn.receive_data(data, 1.0)
    events = [e for e in drain(conn) if not isinstance(e, ConnectionChange)]
    assert isinstance(events[0], SessionCreated)
    assert [e.raw["n"] for e in events[1:]] == [0, 1, 2, 3, 4, 0]
    # the client never compresses what it sends, and wsproto reads it fine
    conn.session.send_message("hi")
    assert [type(e) for e in peer.received()] == [wse.Pong, wse.TextMessage, wse.TextMessage]


def test_uncompressed_message_on_a_deflate_connection() -> None:
    conn, _peer = open_conn(deflate=True)
    conn.receive_data(encode_frame(0x1, b'{"type":"plain"}'), 1.0)
    assert isinstance(drain(conn)[-1], UnknownEvent)


def test_compressed_message_with_final_block() -> None:
    conn, _peer = open_conn(deflate=True)
    compressor = zlib.compressobj(wbits=-15)
    body = compressor.compress(b'{"type":"final"}') + compressor.flush(zlib.Z_FINISH)
    conn.receive_data(encode_frame(0x1, body, rsv=0x40) * 2, 1.0)
    assert [e.type for e in drain(conn) if isinstance(e, UnknownEvent)] == ["final", "final"]


def test_data_after_final_deflate_block_is_refused() -> None:
    conn, _peer = open_conn(deflate=True)
    compressor = zlib.compressobj(wbits=-15)
    body = compressor.compress(b'{"type":"final"}') + compressor.flush(zlib.Z_FINISH) + b"junk"
    with pytest.raises(RemoteProtocolError) as info:
        conn.receive_data(encode_frame(0x1, body, rsv=0x40), 1.0)
    assert info.value.hint == 1007


def test_corrupt_deflate_data() -> None:
    conn, _peer = open_conn(deflate=True)
    with pytest.raises(RemoteProtocolError) as info:
        conn.receive_data(encode_frame(0x1, b"\xff\xff\xff\xff", rsv=0x40), 1.0)
    assert info.value.hint == 1007


@pytest.mark.parametrize("fragmented", [False, True])
def test_deflate_bomb_is_refused(fragmented: bool) -> None:
    conn, peer = open_conn(options(max_message_size=1 << 20), deflate=True)
    peer.received()
    compressor = zlib.compressobj(wbits=-15)
    body = compressor.compress(b'{"type":"x","pad":"' + b"a" * (200 << 20))
    body += compressor.flush(zlib.Z_SYNC_FLUSH)[:-4]
    assert len(body) < 300_000
    if fragmented:
        data = encode_frame(0x1, body[:1000], rsv=0x40, fin=False) + encode_frame(0x0, body[1000:])
    else:
        data = encode_frame(0x1, body, rsv=0x40)
    tracemalloc.start()
    try:
        conn.receive_data(data, 1.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20  # 200 MiB were never inflated
    assert conn.close_code == 1009
    assert changes(drain(conn))[-1][:2] == (ConnectionStatus.DISCONNECTED, 1009)
    (close,) = peer.received()
    assert isinstance(close, wse.CloseConnection)
    assert close.code == 1009


def test_compressed_message_at_the_limit() -> None:
    text = json.dumps({"type": "x", "pad": "a" * 5000}).encode()
    conn, _peer = open_conn(options(max_message_size=len(text)), deflate=True)
    compressor = zlib.compressobj(wbits=-15)
    body = compressor.compress(text) + compressor.flush(zlib.Z_SYNC_FLUSH)[:-4]
    conn.receive_data(encode_frame(0x1, body, rsv=0x40), 1.0)
    assert isinstance(drain(conn)[-1], UnknownEvent)
    conn2, _ = open_conn(options(max_message_size=len(text) - 1), deflate=True)
    conn2.receive_data(encode_frame(0x1, body, rsv=0x40), 1.0)
    assert conn2.close_code == 1009


# ------------------------------------------------------------------------------- closing --


def test_client_close_handshake() -> None:
    conn, peer = open_conn(options(ping_interval=10.0))
    peer.received()
    conn.session.send_message("bye", trigger_response=False)
    conn.close(1000, "done", now=5.0)
    assert conn.state is WebSocketState.CLOSING
    assert conn.get_timer() == 10.0  # close_timeout 5 s from now=5
    with pytest.raises(LocalProtocolError):
        conn.session.send_message("after close")
    events = peer.received()
    assert [type(e) for e in events] == [wse.TextMessage, wse.CloseConnection]
    assert (events[1].code, events[1].reason) == (1000, "done")
    conn.close()  # idempotent
    # the server may still send messages before its close
    conn.receive_data(encode_frame(0x1, b'{"type":"late"}'), 6.0)
    conn.receive_data(encode_frame(0x9, b"no pong while closing"), 6.0)
    assert peer.received() == []
    conn.receive_data(peer.ws.send(events[1].response()), 6.5)
    assert conn.state is WebSocketState.CLOSED
    assert conn.close_code == 1000
    drained = drain(conn)
    assert isinstance(drained[0], UnknownEvent)
    assert changes(drained)[-1] == (ConnectionStatus.DISCONNECTED, 1000, "done")
    assert conn.get_timer() is None
    with pytest.raises(ConnectionClosed):
        conn.session.send_audio(b"\x00\x00")
    assert conn.data_to_send() == b""


def test_close_timeout() -> None:
    conn, _peer = open_conn(options(close_timeout=2.0), now=1.0)
    conn.handle_timer(3.0)
    conn.close(4000, "app reason")
    assert conn.get_timer() == 5.0  # last now seen was 3.0
    conn.handle_timer(4.9)
    assert conn.state is WebSocketState.CLOSING
    conn.handle_timer(5.0)
    assert conn.state is WebSocketState.CLOSED
    assert conn.close_code == 1006
    assert changes(drain(conn))[-1][:2] == (ConnectionStatus.DISCONNECTED, 1006)


def test_protocol_error_while_closing_sends_no_second_close() -> None:
    conn, peer = open_conn()
    peer.received()
    conn.close()
    assert len(peer.received()) == 1
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(b"\x83\x00", 1.0)
    assert conn.data_to_send() == b""
    assert conn.close_code == 1002


def test_eof_while_closing() -> None:
    conn, _peer = open_conn()
    conn.close()
    conn.receive_data(b"", 1.0)
    assert conn.close_code == 1006


def test_close_before_open() -> None:
    conn = RealtimeWebSocket(options())
    conn.close()
    assert conn.state is WebSocketState.CLOSED
    with pytest.raises(LocalProtocolError):
        conn.initiate(0.0)
    conn = RealtimeWebSocket(options())
    conn.initiate(0.0)
    conn.close()
    assert conn.state is WebSocketState.CLOSED
    assert conn.close_code is None
    assert changes(drain(conn))[-1][0] is ConnectionStatus.DISCONNECTED
    conn.receive_data(b"HTTP/1.1 101 x\r\n\r\n", 1.0)  # ignored
    conn.handle_timer(100.0)


def test_commands_before_open_raise() -> None:
    conn = RealtimeWebSocket(options())
    with pytest.raises(LocalProtocolError):
        conn.session.send_message("too early")


def test_session_timers_are_included() -> None:
    from rtproto.session import Profile

    session = SessionOptions(profile=Profile.WEBRTC, session_update_timeout=3.0)
    conn, _peer = open_conn(options(ping_interval=20.0), session, now=1.0)
    assert conn.get_timer() == 4.0
    conn.handle_timer(4.0)
    assert isinstance(drain(conn)[-2], ProtocolWarning)
    assert conn.get_timer() == 21.0


def test_session_options_and_instance() -> None:
    conn = RealtimeWebSocket(options(), SessionOptions(model="m"))
    assert conn.session.options.model == "m"
    session = ClientSession()
    assert RealtimeWebSocket(options(), session).session is session


# ------------------------------------------------------------------------- backpressure --


def test_event_limit_pauses_parsing_until_drained() -> None:
    session = SessionOptions(limits=Limits(max_pending_events=5))
    conn, peer = open_conn(options(), session)
    drain(conn)
    peer.received()
    data = b"".join(peer.text(json.dumps({"type": "n", "i": i})) for i in range(20))
    data += peer.ws.send(wse.Ping(b"late"))
    conn.receive_data(data, 1.0)
    assert conn.pending_output == 0  # the ping is behind the pause
    conn.receive_data(b"", 1.0)  # EOF waits for the held frames too
    seen = [e.raw["i"] for e in drain(conn) if isinstance(e, UnknownEvent)]
    assert seen == list(range(20))
    assert [type(e) for e in peer.received()] == [wse.Pong]
    assert conn.close_code == 1006


def test_take_events_drains_as_next_event_does() -> None:
    """take_events() hands over what next_event() would, in the same order, one batch per
    call: held-back input is parsed when the queue is empty, so the caller repeats until an
    empty list, and the pong behind the pause goes out."""
    session = SessionOptions(limits=Limits(max_pending_events=5))
    conn, peer = open_conn(options(), session)
    drain(conn)
    peer.received()
    data = b"".join(peer.text(json.dumps({"type": "n", "i": i})) for i in range(12))
    conn.receive_data(data + peer.ws.send(wse.Ping(b"late")), 1.0)
    batches = []
    while batch := conn.take_events():
        batches.append([e.raw["i"] for e in batch if isinstance(e, UnknownEvent)])
    assert [i for batch in batches for i in batch] == list(range(12))
    assert len(batches) > 1  # parsed in turns, within the bound
    assert wse.Pong in [type(e) for e in peer.received()]
    assert conn.take_events() == []


def test_event_limit_pause_resumes_on_receive() -> None:
    session = SessionOptions(limits=Limits(max_pending_events=3))
    conn, peer = open_conn(options(), session)
    drain(conn)
    frames = [peer.text(json.dumps({"type": "n", "i": i})) for i in range(6)]
    conn.receive_data(b"".join(frames[:5]), 1.0)
    first = [conn.next_event() for _ in range(3)]
    assert all(isinstance(e, UnknownEvent) for e in first)
    conn.receive_data(frames[5], 1.0)  # still held: the app has not drained to None
    rest = [e.raw["i"] for e in drain(conn) if isinstance(e, UnknownEvent)]
    assert rest == [3, 4, 5]


def test_event_limit_exact_end_of_buffer() -> None:
    session = SessionOptions(limits=Limits(max_pending_events=2))
    conn, peer = open_conn(options(), session)
    drain(conn)
    frames = b"".join(peer.text(json.dumps({"type": "n", "i": i})) for i in range(2))
    conn.receive_data(frames, 1.0)
    conn.receive_data(peer.text(json.dumps({"type": "n", "i": 2})), 1.0)
    assert [e.raw["i"] for e in drain(conn) if isinstance(e, UnknownEvent)] == [0, 1, 2]


def test_event_limit_with_compressed_and_fragmented_messages() -> None:
    session = SessionOptions(limits=Limits(max_pending_events=2))
    conn, _peer = open_conn(options(), session, deflate=True)
    compressor = zlib.compressobj(wbits=-15)

    def deflated(raw: bytes) -> bytes:
        return (compressor.compress(raw) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]

    data = b"".join(
        encode_frame(0x1, deflated(json.dumps({"type": "n", "i": i}).encode()), rsv=0x40)
        for i in range(5)
    )
    tail = json.dumps({"type": "n", "i": 5}).encode()
    data += encode_frame(0x1, tail[:4], fin=False)  # the start of a message, held back
    conn.receive_data(data, 1.0)
    assert [e.raw["i"] for e in drain(conn) if isinstance(e, UnknownEvent)] == [0, 1, 2, 3, 4]
    conn.receive_data(encode_frame(0x0, tail[4:]), 1.0)
    assert [e.raw["i"] for e in drain(conn) if isinstance(e, UnknownEvent)] == [5]


def test_resume_that_yields_no_event() -> None:
    session = SessionOptions(limits=Limits(max_pending_events=1))
    conn, _peer = open_conn(options(), session)
    tail = json.dumps({"type": "n", "i": 1}).encode()
    conn.receive_data(
        encode_frame(0x1, b'{"type":"n"}') + encode_frame(0x1, tail[:3], fin=False), 1
    )
    assert isinstance(conn.next_event(), UnknownEvent)
    assert conn.next_event() is None  # the held fragment was parsed: no event yet
    conn.receive_data(encode_frame(0x0, tail[3:]), 1.0)
    assert drain(conn)[-1].raw == {"type": "n", "i": 1}


def test_compressed_non_ascii_text() -> None:
    conn, _peer = open_conn(deflate=True)
    compressor = zlib.compressobj(wbits=-15)
    raw = json.dumps({"type": "x", "t": "ça va ✓"}, ensure_ascii=False).encode()
    body = (compressor.compress(raw) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
    conn.receive_data(encode_frame(0x1, body, rsv=0x40), 1.0)
    assert drain(conn)[-1].raw["t"] == "ça va ✓"
    bad = (compressor.compress(b'{"type":"\xff"}') + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
    with pytest.raises(RemoteProtocolError) as info:
        conn.receive_data(encode_frame(0x1, bad, rsv=0x40), 1.0)
    assert info.value.hint == 1007


def test_pending_output_before_open() -> None:
    conn = RealtimeWebSocket(options())
    assert conn.pending_output == 0
    conn.initiate(0.0)
    assert conn.pending_output == len(conn.data_to_send()) > 0


def test_pending_output_counts_session_messages() -> None:
    conn, _peer = open_conn()
    queued = conn.pending_output
    assert queued > 0  # the initial session.update
    assert len(conn.data_to_send()) == queued


# ---------------------------------------------------------- byte-at-a-time vs whole buffer --


def _server_stream(seed: int) -> tuple[list[bytes], RealtimeWebSocket]:
    """A whole server side: the 101, then messages, fragments with control frames between,
    compressed and uncompressed, ending with a close frame. Returns the frames and a client
    whose initiate() was already called (so the 101 matches its key)."""
    conn = RealtimeWebSocket(options(ping_interval=None), random_bytes=counting_random())
    peer = Peer(conn)
    server = Server()
    parts = [peer.ws.send(wse.AcceptConnection(extensions=[PerMessageDeflate()]))]
    parts.append(peer.text(server.session_created()))
    for i in range(6):
        text = server.event(
            "response.output_text.delta",
            response_id="r",
            item_id="i",
            output_index=0,
            content_index=0,
            delta=f"δ{i}" * (i * 40 + 1),
        )
        if i % 2:
            third = len(text) // 3
            parts.append(peer.text(text[:third], finished=False))
            parts.append(peer.ws.send(wse.Ping(f"p{i}".encode())))
            parts.append(peer.text(text[third : 2 * third], finished=False))
            parts.append(peer.ws.send(wse.Ping(b"")))
            parts.append(peer.text(text[2 * third :]))
        else:
            parts.append(peer.text(text))
    parts.append(encode_frame(0x1, json.dumps({"type": "plain", "n": seed}).encode()))
    parts.append(encode_frame(0x1, b'{"type":"big","p":"' + b"z" * 70000 + b'"}'))
    parts.append(peer.ws.send(wse.CloseConnection(code=1000, reason="bye")))
    return parts, conn


def _run(conn: RealtimeWebSocket, chunks: Iterator[bytes]) -> tuple[list[Any], bytes]:
    events: list[Any] = []
    out = conn.data_to_send()
    for chunk in chunks:
        conn.receive_data(chunk, 1.0)
        events.extend(drain(conn))
        out += conn.data_to_send()
    return events, out


def _comparable(events: list[Any]) -> list[Any]:
    return [e if not hasattr(e, "raw") else (type(e), e.raw) for e in events]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.integers(min_value=0, max_value=1 << 20), max_size=40))
def test_split_points_do_not_matter(cuts: list[int]) -> None:
    parts, whole = _server_stream(0)
    data = b"".join(parts)
    reference, reference_out = _run(whole, iter([data]))
    assert changes(reference)[-1] == (ConnectionStatus.DISCONNECTED, 1000, "bye")
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if b > a]
    _, split = _server_stream(0)
    events, out = _run(split, iter(pieces))
    assert _comparable(events) == _comparable(reference)
    assert out == reference_out


def test_one_byte_at_a_time_equals_whole() -> None:
    parts, whole = _server_stream(1)
    data = b"".join(parts)
    reference, reference_out = _run(whole, iter([data]))
    _, single = _server_stream(1)
    events, out = _run(single, (data[i : i + 1] for i in range(len(data))))
    assert _comparable(events) == _comparable(reference)
    assert out == reference_out
    texts = [e for e in reference if isinstance(e, UnknownEvent)]
    assert [e.type for e in texts] == ["plain", "big"]


# --------------------------------------------------------------- differential vs wsproto --


def _wsproto_reference(data: bytes) -> tuple[list[tuple[str, bytes | str]], int | None]:
    """What wsproto's client-role frame layer makes of ``data`` (messages, close code)."""
    from wsproto.connection import Connection

    client = Connection(ConnectionType.CLIENT)
    client.receive_data(data)
    messages: list[tuple[str, bytes | str]] = []
    text: list[str] = []
    binary: list[bytes] = []
    code: int | None = None
    for event in client.events():
        if isinstance(event, wse.TextMessage):
            text.append(event.data)
            if event.message_finished:
                messages.append(("text", "".join(text)))
                text = []
        elif isinstance(event, wse.BytesMessage):
            binary.append(bytes(event.data))
            if event.message_finished:
                messages.append(("binary", b"".join(binary)))
                binary = []
        elif isinstance(event, wse.CloseConnection):
            code = int(event.code)
            break
    return messages, code


def _ours(data: bytes) -> tuple[list[tuple[str, bytes | str]], int | None, bool]:
    conn = RealtimeWebSocket(options(compression=False))
    conn.initiate(0.0)
    conn.receive_data(upgrade_101(conn), 0.0)
    delivered: list[tuple[str, bytes | str]] = []
    session = conn.session

    class Spy:  # records the text delivered (a compiled ClientSession takes no patched method)
        def __getattr__(self, name: str) -> Any:
            return getattr(session, name)

        def receive(self, message: Any, now: float) -> None:
            delivered.append(("text", message if isinstance(message, str) else message.decode()))
            session.receive('{"type":"x"}', now)

    conn.session = Spy()  # type: ignore[assignment]
    with contextlib.suppress(RemoteProtocolError):
        if data:
            conn.receive_data(data, 1.0)
    for event in drain(conn):
        if isinstance(event, ProtocolWarning):
            delivered.append(("binary", b""))
    waiting = conn.state is not WebSocketState.CLOSED
    return delivered, conn.close_code, waiting


_FRAME = st.tuples(
    st.sampled_from([0x0, 0x1, 0x2, 0x8, 0x9, 0xA, 0x3, 0xB]),
    st.booleans(),  # fin
    st.sampled_from([0, 0, 0, 0x40, 0x20, 0x10]),
    st.one_of(
        st.binary(max_size=20),
        st.text(max_size=10).map(lambda s: s.encode()),
        st.sampled_from([b"\x03\xe8", b"\x03\xe9ok", b"\x03\xed", b"\x0b\xb8", b"\x03", b"\xc3"]),
    ),
)


@settings(
    max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.lists(_FRAME, max_size=8))
def test_parser_agrees_with_wsproto(frames: list[tuple[int, bool, int, bytes]]) -> None:
    data = b"".join(encode_frame(op, payload, fin=fin, rsv=rsv) for op, fin, rsv, payload in frames)
    expected, expected_code = _wsproto_reference(data)
    messages, code, waiting = _ours(data)
    if expected_code == 1014 or code == 1014:
        return  # IANA-registered (bad gateway); wsproto's list predates it
    binaries = [m for m in expected if m[0] == "binary"]
    texts = [m for m in expected if m[0] == "text"]
    assert [m for m in messages if m[0] == "text"] == texts
    assert len([m for m in messages if m[0] == "binary"]) == len(binaries)
    if waiting:  # we wait for a frame to complete; wsproto may have judged its start
        assert expected_code in (None, 1002, 1007)
    else:
        assert code == expected_code


# ------------------------------------------------------------------------- fuzz corpus --


harness = load_harness("websocket")
CORPUS = sorted((ROOT / "fuzz" / "corpus" / "websocket").iterdir())


def test_corpus_is_there() -> None:
    assert len(CORPUS) >= 8


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_fuzz_corpus(path: Path) -> None:
    harness.check_one(path.read_bytes())


def test_fuzz_corpus_loop() -> None:
    assert harness.run_corpus([ROOT / "fuzz" / "corpus" / "websocket"]) == len(CORPUS)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(max_size=300))
def test_fuzz_contract_on_random_bytes(data: bytes) -> None:
    harness.check_one(data)


def test_close_payload_truncates_utf8() -> None:
    payload = close_payload(1000, "é" * 100)
    assert payload == b"\x03\xe8" + "é".encode() * 61  # 122 bytes: a 62nd "é" would not fit
    assert close_payload(1000, "r" * 123) == b"\x03\xe8" + b"r" * 123
    assert close_payload(1000, "r" * 124) == b"\x03\xe8" + b"r" * 123
    assert close_payload(None) == b""


def test_a_close_reason_of_123_bytes_is_the_longest_sent() -> None:
    conn, peer = open_conn()
    peer.received()
    with pytest.raises(LocalProtocolError, match="at most 123 bytes"):
        conn.close(1000, "r" * 124)
    conn.close(1000, "r" * 123)
    (close,) = peer.received()
    assert (close.code, close.reason) == (1000, "r" * 123)


# --- frame lengths at the edges of the 7-, 16- and 64-bit encodings ----------------------------

EDGES = [125, 126, 127, 65535, 65536, 65537]


def client_frames(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """The client's frames, parsed by hand: ``(first byte, mask key, unmasked payload)``;
    every length must be in its shortest form (RFC 6455 5.2)."""
    frames, pos = [], 0
    while pos < len(data):
        b0, b1 = data[pos], data[pos + 1]
        assert b1 & 0x80, "a client frame is masked"
        length, pos = b1 & 0x7F, pos + 2
        if length == 126:
            (length,), pos = struct.unpack_from("!H", data, pos), pos + 2
            assert length >= 126
        elif length == 127:
            (length,), pos = struct.unpack_from("!Q", data, pos), pos + 8
            assert length >= 65536
        key, pos = data[pos : pos + 4], pos + 4
        frames.append((b0, key, mask(data[pos : pos + length], key)))
        pos += length
    return frames


def event_of_size(size: int) -> dict[str, str]:
    """A raw client event whose compact JSON text is ``size`` bytes."""
    bare = len(json.dumps({"type": "x", "p": ""}, separators=(",", ":")))
    return {"type": "x", "p": "a" * (size - bare)}


@pytest.mark.parametrize("size", EDGES)
def test_client_frame_lengths_at_the_edges(size: int) -> None:
    conn, peer = open_conn()
    peer.received()
    conn.session.send_event(event_of_size(size))
    data = conn.data_to_send()
    ((b0, _key, payload),) = client_frames(data)
    assert (b0, len(payload)) == (0x81, size)
    peer.ws.receive_data(data)
    (message,) = peer.ws.events()
    assert json.loads(message.data) == event_of_size(size)


@pytest.mark.parametrize("fragmented", [False, True])
@pytest.mark.parametrize("size", EDGES)
def test_server_frame_lengths_at_the_edges(size: int, fragmented: bool) -> None:
    text = json.dumps(event_of_size(size), separators=(",", ":"))
    conn, peer = open_conn(options(max_message_size=1 << 20))
    peer.received()
    frame = (  # the first fragment at the edge: the general path, not the whole-text one
        encode_frame(0x1, text.encode(), fin=False) + encode_frame(0x0, b"")
        if fragmented
        else peer.text(text)
    )
    small = peer.text('{"type":"small"}')
    for split in range(1, 12):  # the header cut anywhere, after a whole frame in the same read
        conn.receive_data(small + frame[:split], 1.0)
        conn.receive_data(frame[split : split + 40], 1.0)  # the rest in two more reads
        conn.receive_data(frame[split + 40 :], 1.0)
        first, event = drain(conn)
        assert isinstance(first, UnknownEvent) and first.type == "small"
        assert isinstance(event, UnknownEvent) and event.raw == event_of_size(size)


@pytest.mark.parametrize("size", EDGES)
def test_encode_frame_lengths_at_the_edges(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert client_frames(encode_frame(0x1, payload, b"abcd")) == [(0x81, b"abcd", payload)]


def test_every_frame_has_its_own_mask_key() -> None:
    """RFC 6455 5.3: a fresh key per frame, data and control frames alike, across pools."""
    conn = RealtimeWebSocket(options(ping_interval=1.0), random_bytes=random.Random(7).randbytes)
    Peer(conn).accept()
    drain(conn)
    keys = []
    for round_ in range(300):
        conn.session.send_event({"type": "x", "n": round_})
        conn.handle_timer(1.0 + round_)  # a ping each time (the pong arrives below)
        frames = client_frames(conn.data_to_send())
        keys += [key for _b0, key, _payload in frames]
        for b0, _key, payload in frames:
            if b0 == 0x89:
                conn.receive_data(encode_frame(0xA, payload), 1.0 + round_)
    conn.close(1000)
    keys += [key for _b0, key, _payload in client_frames(conn.data_to_send())]
    assert len(keys) > 600
    assert len(set(keys)) == len(keys)


# --- rules a mutation run found untested --------------------------------------------------------


def test_a_message_over_the_limit_in_fragments_each_under_it_closes_1009() -> None:
    conn, peer = open_conn(options(max_message_size=1000))
    peer.received()
    text = json.dumps({"type": "x", "pad": "a" * 1100})
    pieces = [text[:400], text[400:800], text[800:]]  # each under 1000, together over
    data = b"".join(peer.text(p, finished=i == 2) for i, p in enumerate(pieces))
    conn.receive_data(data, 1.0)
    assert conn.close_code == 1009
    # at the limit exactly, in fragments: delivered
    conn, peer = open_conn(options(max_message_size=len(text)))
    data = b"".join(peer.text(p, finished=i == 2) for i, p in enumerate(pieces))
    conn.receive_data(data, 1.0)
    assert isinstance(drain(conn)[-1], UnknownEvent)


def test_compressed_fragments_count_their_inflated_size_together() -> None:
    text = json.dumps({"type": "x", "pad": "a" * 3000}).encode()
    compressor = zlib.compressobj(wbits=-15)
    first = compressor.compress(text[:2000]) + compressor.flush(zlib.Z_SYNC_FLUSH)
    rest = compressor.compress(text[2000:]) + compressor.flush(zlib.Z_SYNC_FLUSH)[:-4]
    data = encode_frame(0x1, first, rsv=0x40, fin=False) + encode_frame(0x0, rest)
    conn, _peer = open_conn(options(max_message_size=len(text) - 1), deflate=True)
    conn.receive_data(data, 1.0)  # each fragment inflates to under the limit
    assert conn.close_code == 1009
    conn, _peer = open_conn(options(max_message_size=len(text)), deflate=True)
    conn.receive_data(data, 1.0)
    assert isinstance(drain(conn)[-1], UnknownEvent)


def test_pending_output_counts_control_frames() -> None:
    conn, _peer = open_conn()
    conn.data_to_send()
    conn.receive_data(encode_frame(0x9, b"p"), 1.0)  # a ping: the pong is queued
    conn.close()
    queued = conn.pending_output
    assert queued == len(conn.data_to_send()) == (2 + 4 + 1) + (2 + 4 + 2)


def test_close_defaults_to_1000_and_sends_one_close_frame() -> None:
    conn, peer = open_conn()
    peer.received()
    conn.close()
    conn.close(1001, "again")  # already closing: nothing more
    ((b0, _key, payload),) = client_frames(conn.data_to_send())
    assert (b0, payload) == (0x88, b"\x03\xe8")


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_receive_data_takes_any_buffer(kind: Callable[[bytes], Any]) -> None:
    conn, peer = open_conn()
    frame = peer.text(Server().session_created())
    conn.receive_data(kind(frame[:5]), 1.0)
    conn.receive_data(kind(frame[5:]), 1.0)
    conn.receive_data(kind(frame), 1.0)  # whole
    assert [type(e) for e in drain(conn)] == [SessionCreated, SessionCreated]


def test_a_late_pong_to_an_earlier_ping_does_not_answer_the_current_one() -> None:
    conn, peer = open_conn(options(ping_interval=10.0, ping_timeout=5.0))
    peer.received()
    conn.handle_timer(10.0)
    (first,) = peer.received()
    conn.receive_data(peer.ws.send(first.response()), 11.0)
    conn.handle_timer(21.0)
    (second,) = peer.received()
    assert second.payload != first.payload
    conn.receive_data(peer.ws.send(first.response()), 22.0)  # a duplicate of the old pong
    conn.handle_timer(26.0)
    assert (conn.state, conn.close_code) == (WebSocketState.CLOSED, 1006)


@pytest.mark.parametrize("how", ["server close", "protocol error"])
def test_queued_messages_go_out_before_the_close_frame(how: str) -> None:
    conn, peer = open_conn()
    peer.received()
    conn.session.send_message("queued before the close", trigger_response=False)
    frame = peer.ws.send(wse.CloseConnection(code=1000)) if how == "server close" else b"\xa1\x00"
    with contextlib.suppress(RemoteProtocolError):
        conn.receive_data(frame, 1.0)
    kinds = [type(e).__name__ for e in peer.received()]
    assert kinds == ["TextMessage", "CloseConnection"]


def test_options_are_immutable() -> None:
    opts = options()
    with pytest.raises(AttributeError):
        opts.api_key = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "ok"),
    [
        ({"max_message_size": 125}, True),
        ({"max_message_size": 124}, False),
        ({"max_fragments": 1}, True),
        ({"ping_interval": None}, True),
        ({"handshake_timeout": None}, True),
        ({"ping_timeout": None}, False),  # only the interval and the handshake may be off
        ({"close_timeout": None}, False),
        ({"ping_timeout": 0.001}, True),
    ],
)
def test_options_at_their_edges(kwargs: dict[str, Any], ok: bool) -> None:
    if ok:
        options(**kwargs)
    else:
        with pytest.raises(LocalProtocolError):
            options(**kwargs)


def test_a_beta_header_is_set_by_the_options_so_not_an_extra_header() -> None:
    beta = (("OpenAI-Beta", "realtime=v1"),)
    with pytest.raises(LocalProtocolError, match="repeats one set by the options"):
        options(beta=True, extra_headers=beta)
    options(beta=False, extra_headers=beta)
    options(beta=True, subprotocol_auth=True, extra_headers=beta)  # beta rides the subprotocol


def test_a_refusal_body_is_kept_up_to_its_cap_exactly() -> None:
    conn = RealtimeWebSocket(options())
    conn.initiate(0.0)
    body = b"x" * (MAX_REFUSAL_BODY + 10)
    head = raw_response(500, [("Content-Length", str(len(body)))])
    conn.receive_data(head + body[: MAX_REFUSAL_BODY - 1], 0.0)  # not yet: one byte short
    with pytest.raises(HandshakeRefused) as info:
        conn.receive_data(body[MAX_REFUSAL_BODY - 1 : MAX_REFUSAL_BODY], 0.0)  # the cap: done
    assert info.value.body == body[:MAX_REFUSAL_BODY]


def test_a_ping_of_125_bytes_is_answered() -> None:
    conn, peer = open_conn()
    peer.received()
    conn.receive_data(encode_frame(0x9, b"p" * 125), 1.0)
    (pong,) = peer.received()
    assert isinstance(pong, wse.Pong) and pong.payload == b"p" * 125


def test_events_a_command_adds_come_out_of_the_connection() -> None:
    """Events the session queues outside receive_data (a command's) are drained too."""
    server = Server()
    for drain_with in ("next_event", "take_events"):
        conn, peer = open_conn(now=0.0)
        conn.receive_data(peer.text(server.response_created("resp_1")), 1.0)
        for text in server.assistant_audio("resp_1", "item_1", None, [100]):
            conn.receive_data(peer.text(text), 1.0)
        drain(conn)
        conn.session.interrupt(1.05)
        events = drain(conn) if drain_with == "next_event" else conn.take_events()
        assert "AudioInterrupted" in [type(e).__name__ for e in events]


def test_a_ping_goes_out_after_the_messages_queued_before_it() -> None:
    conn, peer = open_conn(options(ping_interval=10.0))
    peer.received()
    conn.session.send_message("queued", trigger_response=False)
    conn.handle_timer(10.0)
    assert [type(e).__name__ for e in peer.received()] == ["TextMessage", "Ping"]


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        ({"message": "m" * 400}, ": " + "m" * 300),
        ({"message": 42}, ""),
        ({"message": ""}, ""),
    ],
)
def test_a_refusal_shows_at_most_300_characters_of_a_text_error_message(
    error: dict[str, Any], shown: str
) -> None:
    conn = RealtimeWebSocket(options())
    conn.initiate(0.0)
    body = json.dumps({"error": error}).encode()
    with pytest.raises(HandshakeRefused) as info:
        conn.receive_data(raw_response(400, [("Content-Length", str(len(body)))], body), 0.0)
    assert str(info.value).split("; ")[0] == (
        "the server refused the WebSocket upgrade: HTTP 400 Whatever" + shown
    )


def test_response_headers_are_empty_before_the_upgrade() -> None:
    conn = RealtimeWebSocket(options())
    assert conn.response_headers == []
    conn.initiate(0.0)
    assert conn.response_headers == []


def test_secrets_are_redacted_longest_first_down_to_four_characters() -> None:
    """A token inside the API key must not be replaced first (it would leave the key's
    other characters showing); a 4-character token is still a secret."""
    key = "sk-wxyz-0123456789"
    conn = RealtimeWebSocket(
        options(api_key=key, extra_headers=(("X-Token", "wxyz"),)),
    )
    conn.initiate(0.0)
    body = json.dumps({"error": {"message": f"key {key} token wxyz"}}).encode()
    with pytest.raises(HandshakeRefused) as info:
        conn.receive_data(raw_response(401, [("Content-Length", str(len(body)))], body), 0.0)
    assert "key <api key> token <redacted>" in str(info.value)
