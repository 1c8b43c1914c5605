"""WebRTC signalling and client secrets: request bytes, response parsing, server parsing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtproto.errors import LocalProtocolError, RemoteProtocolError
from rtproto.wire.signalling import (
    CALLS_PATH,
    CLIENT_SECRETS_PATH,
    MAX_HEAD_SIZE,
    MAX_JSON_BODY_SIZE,
    MAX_SDP_SIZE,
    CallExchange,
    CallOffer,
    ClientSecretExchange,
    ClientSecretRequest,
    EphemeralKeys,
    SignallingError,
    build_response,
    call_created_response,
    client_secret_response,
    error_response,
    parse_server_request,
    preflight_response,
)

from .fuzzing import load_harness

ROOT = Path(__file__).resolve().parents[1]
OFFER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
ANSWER = OFFER.replace("o=- 1 1", "o=- 2 2")


def _server_read(data: bytes) -> tuple[str, str, list[tuple[str, str]], bytes]:
    """Parse request bytes as an independent server would (h11)."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    body = b""
    request = None
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            break
        else:  # pragma: no cover
            raise AssertionError(event)
    assert request is not None
    headers = [(k.decode(), v.decode()) for k, v in request.headers]
    return request.method.decode(), request.target.decode(), headers, body


def _feed(exchange: CallExchange | ClientSecretExchange, data: bytes, bytewise: bool) -> object:
    pieces = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
    for piece in [*pieces, b""]:
        result = exchange.receive_data(piece)
        if result is not None:
            return result
    raise AssertionError("no result")  # pragma: no cover


def test_call_request_raw_sdp() -> None:
    exchange = CallExchange(
        OFFER, api_key="ek_abc", url="https://api.example.com/v1/realtime/calls"
    )
    assert (exchange.tls, exchange.host, exchange.port) == (True, "api.example.com", 443)
    method, target, headers, body = _server_read(exchange.data_to_send())
    assert exchange.data_to_send() == b""
    assert (method, target, body) == ("POST", CALLS_PATH, OFFER.encode())
    assert ("authorization", "Bearer ek_abc") in headers
    assert ("content-type", "application/sdp") in headers
    assert ("host", "api.example.com") in headers
    offer = parse_server_request(method, target, headers, body)
    assert offer == CallOffer(sdp=OFFER, session=None, model=None, api_key="ek_abc")


def test_call_request_multipart_with_model() -> None:
    session = {"type": "realtime", "instructions": "be brief"}
    exchange = CallExchange(
        OFFER, api_key="sk-x", url="http://127.0.0.1:8765/v1/realtime/calls", model="gpt-realtime",
        session=session,
    )  # fmt: skip
    method, target, headers, body = _server_read(exchange.data_to_send())
    assert target == CALLS_PATH + "?model=gpt-realtime"
    assert ("host", "127.0.0.1:8765") in headers
    content_type = dict(headers)["content-type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    offer = parse_server_request(method, target, headers, body)
    assert isinstance(offer, CallOffer)
    assert (offer.sdp, offer.session, offer.model) == (OFFER, session, "gpt-realtime")


@pytest.mark.parametrize("bytewise", [False, True])
def test_call_answer_parsed(bytewise: bool) -> None:
    exchange = CallExchange(OFFER, api_key="ek_abc")
    response = call_created_response(ANSWER, "rtc_u1_9c65")
    answer = _feed(exchange, response, bytewise)
    assert answer.sdp == ANSWER  # type: ignore[attr-defined]
    assert answer.call_id == "rtc_u1_9c65"  # type: ignore[attr-defined]
    assert answer.location == "/v1/realtime/calls/rtc_u1_9c65"  # type: ignore[attr-defined]


def test_call_answer_chunked_until_eof() -> None:
    exchange = CallExchange(OFFER, api_key="ek_abc")
    body = ANSWER.encode()
    head = b"HTTP/1.1 201 Created\r\nLocation: https://x/v1/realtime/calls/rtc_1/\r\n\r\n"
    assert exchange.receive_data(head + body) is None
    answer = exchange.receive_data(b"")
    assert answer is not None and answer.call_id == "rtc_1" and answer.sdp == ANSWER


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (400, "invalid_offer", "The SDP offer is not valid SDP."),
        (401, "invalid_api_key", "Incorrect API key provided: ek_***"),
        (404, "model_not_found", "The model `gpt-foo` does not exist."),
    ],
)
@pytest.mark.parametrize("bytewise", [False, True])
def test_call_errors(status: int, code: str, message: str, bytewise: bool) -> None:
    exchange = CallExchange(OFFER, api_key="ek_abc")
    with pytest.raises(SignallingError) as info:
        _feed(exchange, error_response(status, message, code), bytewise)
    error = info.value
    assert isinstance(error, RemoteProtocolError)
    assert (error.status, error.hint, error.code) == (status, status, code)
    assert error.error is not None and error.error["message"] == message
    assert message in str(error)


def test_error_without_json_uses_text_then_reason() -> None:
    exchange = CallExchange(OFFER, api_key="k")
    with pytest.raises(SignallingError, match="status 429: slow down") as info:
        exchange.receive_data(b"HTTP/1.1 429 Too Many\r\nContent-Length: 9\r\n\r\nslow down")
    assert info.value.error is None
    exchange = CallExchange(OFFER, api_key="k")
    with pytest.raises(SignallingError, match="status 503: Busy"):
        exchange.receive_data(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n")


def test_answer_not_sdp_and_bad_http() -> None:
    exchange = CallExchange(OFFER, api_key="k")
    with pytest.raises(SignallingError, match="not SDP"):
        exchange.receive_data(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}")
    exchange = CallExchange(OFFER, api_key="k")
    with pytest.raises(SignallingError, match="invalid HTTP") as info:
        exchange.receive_data(b"garbage\r\n\r\n")
    assert info.value.status is None
    exchange = CallExchange(OFFER, api_key="k")
    with pytest.raises(SignallingError, match="complete"):
        exchange.receive_data(b"HTTP/1.1 201 Created\r\nContent-Length: 50\r\n\r\nv=0")
        exchange.receive_data(b"")


def test_bodies_are_bounded() -> None:
    with pytest.raises(LocalProtocolError):
        CallExchange("v=0\r\n" + "a" * MAX_SDP_SIZE, api_key="k")
    exchange = CallExchange(OFFER, api_key="k")
    with pytest.raises(SignallingError, match="at most"):
        exchange.receive_data(b"HTTP/1.1 201 Created\r\nContent-Length: 999999999\r\n\r\n")
    exchange = CallExchange(OFFER, api_key="k")
    exchange.receive_data(b"HTTP/1.1 201 Created\r\n\r\n")
    with pytest.raises(SignallingError, match="exceeds"):
        for _ in range(300):
            exchange.receive_data(b"a" * 1024)
    offer = "v=0\r\nm=audio\r\n" + "a" * MAX_SDP_SIZE
    with pytest.raises(SignallingError) as info:
        parse_server_request("POST", CALLS_PATH, _auth("application/sdp"), offer.encode())
    assert info.value.status == 413


def test_bad_arguments() -> None:
    with pytest.raises(LocalProtocolError):
        CallExchange(OFFER, api_key="")
    with pytest.raises(LocalProtocolError):
        CallExchange(OFFER, api_key="k", url="ftp://x/")
    with pytest.raises(LocalProtocolError):
        CallExchange(OFFER, api_key="k", session={"x": object()})
    with pytest.raises(LocalProtocolError):
        CallExchange(OFFER, api_key="k", session={"a": "--zz"}, boundary="zz")
    with pytest.raises(LocalProtocolError):
        ClientSecretExchange(api_key="k", expires_after_seconds=5)
    with pytest.raises(LocalProtocolError):
        ClientSecretExchange(api_key="k", expires_after_seconds=True)
    exchange = CallExchange(OFFER, api_key="k")
    exchange.receive_data(call_created_response(ANSWER, "rtc_1"))
    with pytest.raises(LocalProtocolError):
        exchange.receive_data(b"x")


@pytest.mark.parametrize("bytewise", [False, True])
def test_client_secret_round_trip(bytewise: bool) -> None:
    session = {"type": "realtime", "model": "gpt-realtime"}
    exchange = ClientSecretExchange(
        api_key="sk-x", url="http://127.0.0.1:9/v1/realtime/client_secrets",
        session=session, expires_after_seconds=60,
    )  # fmt: skip
    method, target, headers, body = _server_read(exchange.data_to_send())
    assert json.loads(body) == {
        "expires_after": {"anchor": "created_at", "seconds": 60},
        "session": session,
    }
    request = parse_server_request(method, target, headers, body)
    assert request == ClientSecretRequest(expires_after_seconds=60, session=session, api_key="sk-x")
    secret = _feed(exchange, client_secret_response("ek_1", 1700000060, session), bytewise)
    assert (secret.value, secret.expires_at, secret.session) == ("ek_1", 1700000060, session)  # type: ignore[attr-defined]
    assert "ek_1" not in repr(secret)


def test_client_secret_bad_responses() -> None:
    for body in (b"nope", b'{"value": 1}', b'{"value":"ek","expires_at":true}'):
        exchange = ClientSecretExchange(api_key="k")
        response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        with pytest.raises(SignallingError):
            exchange.receive_data(response)
    exchange = ClientSecretExchange(api_key="k")
    with pytest.raises(SignallingError) as info:
        exchange.receive_data(error_response(401, "Incorrect API key", "invalid_api_key"))
    assert info.value.status == 401


def _auth(content_type: str) -> list[tuple[str, str]]:
    return [("authorization", "Bearer sk-x"), ("content-type", content_type)]


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status"),
    [
        ("POST", "/v1/other", _auth("application/sdp"), OFFER.encode(), 404),
        ("GET", CALLS_PATH, _auth("application/sdp"), b"", 405),
        ("POST", CALLS_PATH, [("content-type", "application/sdp")], OFFER.encode(), 401),
        ("POST", CALLS_PATH, _auth("text/plain"), OFFER.encode(), 415),
        ("POST", CALLS_PATH, _auth("application/sdp"), b"hello", 400),
        ("POST", CALLS_PATH, _auth("application/sdp"), b"v=0\xff\nm=", 400),
        ("POST", CALLS_PATH, _auth("multipart/form-data"), b"--B--", 400),
        ("POST", CALLS_PATH, _auth("multipart/form-data; boundary=B"), b"--B\r\n--B--", 400),
        ("POST", CALLS_PATH, _auth("multipart/form-data; boundary=B"), b"x--B--", 400),
        (
            "POST", CALLS_PATH, _auth("multipart/form-data; boundary=B"),
            b'--B\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--B--', 400,
        ),
        (
            "POST", CALLS_PATH, _auth("multipart/form-data; boundary=B"),
            b"--B\r\nContent-Type: a\r\n\r\n1\r\n--B--", 400,
        ),
        (
            "POST", CALLS_PATH, _auth("multipart/form-data; boundary=B"),
            b'--B\r\nContent-Disposition: form-data; name="sdp"\r\n\r\nv=0\r\nm=a\r\n--B\r\n'
            b'Content-Disposition: form-data; name="session"\r\n\r\n[1]\r\n--B--', 400,
        ),
        ("POST", CLIENT_SECRETS_PATH, _auth("application/json"), b"{", 400),
        ("POST", CLIENT_SECRETS_PATH, _auth("application/json"), b"[]", 400),
        ("POST", CLIENT_SECRETS_PATH, _auth("text/plain"), b"{}", 415),
        ("POST", CLIENT_SECRETS_PATH, _auth("application/json"), b" " * 300_000, 413),
        ("POST", CLIENT_SECRETS_PATH, _auth(""), b'{"expires_after": 5}', 400),
        ("POST", CLIENT_SECRETS_PATH, _auth(""), b'{"expires_after": {"anchor": "x"}}', 400),
        ("POST", CLIENT_SECRETS_PATH, _auth(""), b'{"expires_after": {"seconds": 5}}', 400),
        ("POST", CLIENT_SECRETS_PATH, _auth(""), b'{"session": 1}', 400),
        ("POST", CLIENT_SECRETS_PATH, _auth(""), b'{"session": {"type": "x"}}', 400),
    ],
)  # fmt: skip
def test_server_parse_errors(
    method: str, path: str, headers: list[tuple[str, str]], body: bytes, status: int
) -> None:
    with pytest.raises(SignallingError) as info:
        parse_server_request(method, path, headers, body)
    assert info.value.status == status
    assert info.value.error is not None and info.value.error["message"]


def test_server_parse_defaults() -> None:
    request = parse_server_request("POST", CLIENT_SECRETS_PATH, _auth(""), b"")
    assert request == ClientSecretRequest(expires_after_seconds=600, session=None, api_key="sk-x")
    multipart = (
        b'--B\r\nContent-Disposition: form-data; name="sdp"\r\n\r\n' + OFFER.encode() + b"\r\n--B"
        b'\r\nContent-Disposition: form-data; name="session"\r\n\r\n{"model":"m1"}\r\n--B--\r\n'
    )
    offer = parse_server_request(
        "POST", CALLS_PATH, _auth('multipart/form-data; boundary="B"'), multipart
    )
    assert isinstance(offer, CallOffer) and offer.model == "m1" and offer.sdp == OFFER


def test_ephemeral_keys() -> None:
    keys = EphemeralKeys(max_keys=2)
    value, expires_at = keys.mint(b"\x01" * 16, 1000.5, 60, {"type": "realtime"})
    assert value == "ek_" + "01" * 16 and expires_at == 1060
    assert keys.check(value, 1059.9) and not keys.check(value, 1060)
    assert not keys.check("ek_unknown", 1000)
    assert keys.session_of(value) == {"type": "realtime"} and keys.session_of("x") is None
    second, _ = keys.mint(b"\x02" * 16, 1001, 600)
    third, _ = keys.mint(b"\x03" * 16, 1002, 600)
    assert len(keys) == 2 and not keys.check(value, 1003)  # the oldest was dropped
    keys.mint(b"\x04" * 16, 5000, 600)  # both earlier keys expired: forgotten
    assert len(keys) == 1 and not keys.check(second, 1003) and not keys.check(third, 1003)
    with pytest.raises(LocalProtocolError):
        keys.mint(b"x", 0, 10)


# --- the fuzz harness's contract over its corpus and random inputs ---------------------------


HARNESS = load_harness("signalling")


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "fuzz" / "corpus" / "signalling").iterdir()),
    ids=lambda p: p.name,
)
def test_fuzz_corpus(path: Path) -> None:
    HARNESS.check_one(path.read_bytes())


def test_fuzz_corpus_matches_seeds() -> None:
    folder = ROOT / "fuzz" / "corpus" / "signalling"
    for name, data in HARNESS.seeds().items():
        assert (folder / name).read_bytes() == data


@given(st.binary(max_size=300))
def test_fuzz_random(data: bytes) -> None:
    HARNESS.check_one(data)


@given(
    st.sampled_from(sorted(HARNESS.seeds().values())), st.binary(max_size=8), st.integers(0, 400)
)
def test_fuzz_mutated_seeds(seed: bytes, insert: bytes, at: int) -> None:
    HARNESS.check_one(seed[:at] + insert + seed[at:])


# --- the emulator's wire: REST requests next to the WebSocket ---------------------------------


def _wire(data: bytes) -> object:
    from rtproto.wire.server import ServerWebSocket

    conn = ServerWebSocket()
    conn.connection_made(0.0)
    conn.receive_data(data, 0.0)
    return conn


def test_server_wire_call_request() -> None:
    from rtproto.wire.server import HttpAnswered, ServerState

    exchange = CallExchange(OFFER, api_key="ek_1", url="http://127.0.0.1:1/v1/realtime/calls")
    conn: Any = _wire(exchange.data_to_send())
    assert conn.state is ServerState.REQUEST and conn.get_timer() is None
    assert isinstance(conn.http_request, CallOffer) and conn.http_request.sdp == OFFER
    conn.receive_data(b"ignored", 0.0)
    conn.respond(call_created_response(ANSWER, "rtc_1"), 201)
    assert conn.closed and conn.http_request is None
    answer = exchange.receive_data(conn.data_to_send())
    assert answer is not None and answer.call_id == "rtc_1"
    assert any(isinstance(r, HttpAnswered) and r.status == 201 for r in iter(conn.next_event, None))
    with pytest.raises(LocalProtocolError):
        conn.respond(b"", 200)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /v1/realtime/calls HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"POST /v1/realtime/calls HTTP/1.1\r\nHost: x\r\nContent-Length: 9999999\r\n\r\n", 413),
        (b"POST /v1/realtime/calls HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 401),
        (
            b"POST /v1/realtime/client_secrets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
            b"Content-Length: 1\r\n\r\n{",
            400,
        ),
    ],
)
def test_server_wire_rest_errors(request_bytes: bytes, status: int) -> None:
    conn: Any = _wire(request_bytes)
    assert conn.closed
    exchange = ClientSecretExchange(api_key="k", url="http://x/")
    with pytest.raises(SignallingError) as info:
        exchange.receive_data(conn.data_to_send())
    assert info.value.status == status


#: A calls request whose body comes in chunks.
_CHUNKED_CALL = b"POST /v1/realtime/calls HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_server_wire_body_cap_while_streaming() -> None:
    conn: Any = _wire(_CHUNKED_CALL)
    chunk = b"%x\r\n" % 65536 + b"a" * 65536 + b"\r\n"
    for _ in range(10):
        conn.receive_data(chunk, 0.0)
    assert conn.closed and b" 413 " in conn.data_to_send()
    conn = _wire(b"POST /v1/realtime/calls HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab")
    conn.connection_lost(0.0)
    assert conn.closed


def test_server_wire_body_cap_is_exact() -> None:
    """A body of exactly MAX_REST_BODY bytes is read (the parser judges it); one more is
    refused at once, whether announced by Content-Length or streamed in chunks."""
    from rtproto.wire.server import MAX_REST_BODY

    head = b"POST /v1/realtime/calls HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
    conn: Any = _wire(head % MAX_REST_BODY)
    assert not conn.closed and conn.data_to_send() == b""  # waits for the body
    conn = _wire(head % (MAX_REST_BODY + 1))
    assert conn.closed and b" 413 " in conn.data_to_send()
    for size, refused in ((MAX_REST_BODY, False), (MAX_REST_BODY + 1, True)):
        conn = _wire(_CHUNKED_CALL)
        conn.receive_data(b"%x\r\n" % size + b"a" * size + b"\r\n", 0.0)
        assert conn.closed is refused
        assert (b" 413 " in conn.data_to_send()) is refused


def test_more_edges() -> None:
    from rtproto import models as M
    from rtproto.wire.server import HttpAnswered

    session = M.RealtimeSession(instructions="hi")
    exchange = CallExchange(OFFER, api_key="k", session=session)
    assert b'"instructions":"hi"' in exchange.data_to_send()
    assert exchange.status is None
    with pytest.raises(LocalProtocolError):
        CallExchange(OFFER, api_key="k", session=[1])  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        CallExchange(b"v=0", api_key="k")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        CallExchange(OFFER, api_key="k", extra_headers=[("X-Bad", "a\r\nb")])
    with pytest.raises(LocalProtocolError):
        ClientSecretExchange(api_key="k", session={"x": "a" * 300_000})
    exchange = CallExchange(OFFER, api_key="k")
    answer = exchange.receive_data(
        b"HTTP/1.1 100 Continue\r\n\r\n" + call_created_response(ANSWER, "rtc_9")
    )
    assert answer is not None and exchange.status == 201
    exchange = CallExchange(OFFER, api_key="k")
    with pytest.raises(SignallingError, match="exceeds"):
        exchange.receive_data(
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
            + (b"%x\r\n" % MAX_SDP_SIZE + b"a" * MAX_SDP_SIZE + b"\r\n") * 2
        )
    big = b"v=0\r\nm=audio\r\n" + b"a" * MAX_SDP_SIZE
    body = b'--B\r\nContent-Disposition: form-data; name="sdp"\r\n\r\n' + big + b"\r\n--B--\r\n"
    with pytest.raises(SignallingError) as info:
        parse_server_request(
            "POST", CALLS_PATH, _auth("multipart/form-data; charset=x; boundary=B"), body
        )
    assert info.value.status == 413
    assert "HTTP 201" in HttpAnswered("POST", CALLS_PATH, 201).describe()


# --- credentials stay out of errors and reprs ---------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "sk-test-SECRET\t",
        "sk-test-SECRET\x00",
        "sk-test-SECRET\x7f",
        "sk-test-SECRET\x0b",
        "sk-test-SECRET\u00e9",
        "sk-test-SECRET\u2028",
        "sk-test SECRET",
        "sk-test-SECRET\r\nX-Injected: 1",
        " sk-test-SECRET",
    ],
)
@pytest.mark.parametrize("kind", ["call", "secret"])
def test_a_malformed_key_is_refused_without_showing_it(key: str, kind: str) -> None:
    with pytest.raises(LocalProtocolError) as info:
        if kind == "call":
            CallExchange(OFFER, api_key=key)
        else:
            ClientSecretExchange(api_key=key)
    error = info.value
    assert "SECRET" not in str(error) + repr(error) + repr(error.args)
    assert "printable ASCII" in str(error)


@pytest.mark.parametrize("value", ["SECRET\x00", "SECRET\u00e9", "SECRET\r\nX: y", " SECRET"])
def test_a_malformed_extra_header_is_refused_without_showing_it(value: str) -> None:
    with pytest.raises(LocalProtocolError) as info:
        CallExchange(OFFER, api_key="sk-x", extra_headers=[("X-Token", value)])
    error = info.value
    assert "SECRET" not in str(error) + repr(error) + repr(error.args)
    assert "X-Token" in str(error)
    with pytest.raises(LocalProtocolError):
        ClientSecretExchange(api_key="sk-x", extra_headers=[("X Bad", "v")])


def test_a_key_the_server_echoes_is_not_in_the_error() -> None:
    key = "sk-test-SECRET-0123456789"
    body = json.dumps({"error": {"message": f"Incorrect API key provided: {key}"}}).encode()
    response = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    for exchange in (CallExchange(OFFER, api_key=key), ClientSecretExchange(api_key=key)):
        with pytest.raises(SignallingError) as info:
            exchange.receive_data(response)
        error = info.value
        assert error.status == 401
        shown = str(error) + repr(error) + repr(error.args) + repr(error.error)
        assert "SECRET" not in shown + str(error.excerpt)
        assert "<api key>" in str(error)
    # echoed in any field of the error object, too
    body = json.dumps({"error": {"message": "no", "param": key, "code": "x"}}).encode()
    response = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    with pytest.raises(SignallingError) as info:
        CallExchange(OFFER, api_key=key).receive_data(response)
    assert info.value.error == {"message": "no", "param": "<api key>", "code": "x"}


def test_a_boundary_that_is_not_ascii_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="boundary must be ASCII"):
        CallExchange(OFFER, api_key="sk-x", session={"type": "realtime"}, boundary="é")


def test_a_malformed_response_head_is_not_quoted() -> None:
    """h11 quotes the header line it refuses: none of its words reach the error."""
    exchange = CallExchange(OFFER, api_key="sk-x")
    with pytest.raises(SignallingError) as info:
        exchange.receive_data(b"HTTP/1.1 201 Created\r\nSet-Cookie SECRET\r\n\r\n")
    error = info.value
    assert "SECRET" not in str(error) + repr(error) + str(error.excerpt)
    assert error.status is None


def test_offer_and_secret_request_reprs_hide_the_key() -> None:
    headers = [("authorization", "Bearer ek_SECRET"), ("content-type", "application/sdp")]
    offer = parse_server_request("POST", CALLS_PATH, headers, OFFER.encode())
    assert isinstance(offer, CallOffer) and offer.api_key == "ek_SECRET"
    assert "SECRET" not in repr(offer) + str(offer)
    headers = [("authorization", "Bearer sk-SECRET")]
    request = parse_server_request("POST", CLIENT_SECRETS_PATH, headers, b"")
    assert isinstance(request, ClientSecretRequest) and request.api_key == "sk-SECRET"
    assert "SECRET" not in repr(request) + str(request)


# --- the response head is bounded however it arrives ------------------------------------------


@pytest.mark.parametrize("piece", [0, 1000])
@pytest.mark.parametrize("kind", ["call", "secret"])
def test_response_head_limit(piece: int, kind: str) -> None:
    response = call_created_response(ANSWER, "rtc_1")
    big = response.replace(b"Server:", b"X-Big: " + b"a" * 41_000 + b"\r\nServer:")
    exchange = (
        CallExchange(OFFER, api_key="k") if kind == "call" else ClientSecretExchange(api_key="k")
    )
    pieces = [big] if not piece else [big[i : i + piece] for i in range(0, len(big), piece)]
    with pytest.raises(SignallingError, match=f"head exceeds {MAX_HEAD_SIZE} bytes") as info:
        for data in pieces:
            exchange.receive_data(data)
    assert info.value.status is None
    # a head just under the limit is fine
    exchange = CallExchange(OFFER, api_key="k")
    filler = b"a" * (MAX_HEAD_SIZE - len(response) + len(ANSWER.encode()) - 200)
    ok = response.replace(b"Server:", b"X-Big: " + filler + b"\r\nServer:")
    answer = exchange.receive_data(ok)
    assert answer is not None and answer.call_id == "rtc_1"


# --- request details --------------------------------------------------------------------------


def test_user_agent_names_the_version() -> None:
    import rtproto

    for exchange in (CallExchange(OFFER, api_key="k"), ClientSecretExchange(api_key="k")):
        _, _, headers, _ = _server_read(exchange.data_to_send())
        assert ("user-agent", f"rtproto/{rtproto.__version__}") in headers


@pytest.mark.parametrize(
    ("location", "call_id"),
    [
        ("/v1/realtime/calls/rtc_u1_9c65", "rtc_u1_9c65"),
        ("https://api.openai.com/v1/realtime/calls/rtc_1", "rtc_1"),
        ("https://x/v1/realtime/calls/rtc_1/", "rtc_1"),
        ("/v1/realtime/calls/rtc_1?x=y", "rtc_1"),
        ("/v1/realtime/calls/rtc_1#fragment", "rtc_1"),
        ("/v1/realtime/calls/rtc_1?x=/y#/z", "rtc_1"),
        ("rtc_1", "rtc_1"),
        ("/v1/realtime/calls/", None),
        ("/v1/realtime/calls", None),
        ("/", None),
        ("", None),
        ("/v1/realtime/calls/rtc%20x", None),
        ("http://[::1/v1/realtime/calls/rtc_1", None),  # urlsplit refuses the bracket
    ],
)
def test_call_id_from_location(location: str, call_id: str | None) -> None:
    exchange = CallExchange(OFFER, api_key="k")
    body = ANSWER.encode()
    answer = exchange.receive_data(
        b"HTTP/1.1 201 Created\r\nLocation: %s\r\nContent-Length: %d\r\n\r\n"
        % (location.encode(), len(body))
        + body
    )
    assert answer is not None
    assert answer.call_id == call_id
    assert answer.location == location


def test_extra_headers_follow_the_defaults_and_must_be_pairs() -> None:
    extra = [("OpenAI-Beta", "realtime=v1"), ("X-Trace", "a b\tc")]
    for exchange in (
        CallExchange(OFFER, api_key="sk-x", extra_headers=extra),
        ClientSecretExchange(api_key="sk-x", extra_headers=extra),
    ):
        _, _, headers, _ = _server_read(exchange.data_to_send())
        assert headers[-2:] == [("openai-beta", "realtime=v1"), ("x-trace", "a b\tc")]
    for bad in ([("X-Token",)], [("X-Token", "v", "w")], [["X-Token", "v"]], ["X-Token"]):
        with pytest.raises(
            LocalProtocolError, match=r"^extra_headers must hold \(name, value\) pairs$"
        ):
            CallExchange(OFFER, api_key="sk-x", extra_headers=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("boundary", ["SECRET\nX: y", "SECRET\x00"])
def test_a_request_h11_refuses_is_refused_without_quoting_it(boundary: str) -> None:
    with pytest.raises(LocalProtocolError) as info:
        CallExchange(OFFER, api_key="sk-x", session={"model": "m"}, boundary=boundary)
    error = info.value
    assert str(error) == "cannot build the request: a header or the target is not valid HTTP"
    assert "SECRET" not in str(error) + repr(error) + repr(error.args)
    assert error.__cause__ is None and error.__suppress_context__


def test_a_switch_of_protocols_is_not_an_answer() -> None:
    """With an ``Upgrade`` extra header, a ``101`` pauses h11: no response will follow."""
    exchange = CallExchange(
        OFFER, api_key="sk-x", extra_headers=[("Upgrade", "websocket"), ("Connection", "upgrade")]
    )
    exchange.data_to_send()
    with pytest.raises(SignallingError) as info:
        exchange.receive_data(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        )
    assert str(info.value) == "the server closed the connection before a complete response"
    assert info.value.status is None


def test_an_echoed_key_is_hidden_when_the_error_has_no_message() -> None:
    key = "sk-test-SECRET-0123456789"
    body = json.dumps({"error": {"code": "invalid_api_key", "message": None}, "key": key})
    response = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: %d\r\n\r\n" % len(body)
    with pytest.raises(SignallingError) as info:
        CallExchange(OFFER, api_key=key).receive_data(response + body.encode())
    error = info.value
    assert error.status == 401 and error.code == "invalid_api_key"
    assert error.error == {"code": "invalid_api_key", "message": None}  # as it arrived
    shown = body.replace(key, "<api key>")
    assert str(error) == f"the request failed with status 401: {shown}; hint 401"
    assert "SECRET" not in str(error) + repr(error.args)


def test_server_multipart_name_after_other_parameters() -> None:
    multipart = (
        b'--B\r\nContent-Disposition: form-data; filename="offer.sdp"; name="sdp"\r\n\r\n'
        + OFFER.encode()
        + b"\r\n--B--\r\n"
    )
    offer = parse_server_request(
        "POST", CALLS_PATH, _auth("multipart/form-data; boundary=B"), multipart
    )
    assert offer == CallOffer(sdp=OFFER, model=None, session=None, api_key="sk-x")


def test_preflight_response_bytes() -> None:
    assert preflight_response("emu/1") == (
        b"HTTP/1.1 204 No Content\r\n"
        b"Connection: close\r\n"
        b"Access-Control-Allow-Origin: *\r\n"
        b"Access-Control-Expose-Headers: Location\r\n"
        b"Access-Control-Allow-Methods: POST, OPTIONS\r\n"
        b"Access-Control-Allow-Headers: Authorization, Content-Type, OpenAI-Beta\r\n"
        b"Access-Control-Max-Age: 600\r\n"
        b"Server: emu/1\r\n\r\n"
    )
    assert preflight_response().endswith(b"\r\nServer: rtproto\r\n\r\n")


# --- exact limits and rules (each pinned after a mutation run found it loose) -------------------


def _sdp_of(size: int) -> bytes:
    """A valid SDP offer of exactly ``size`` bytes."""
    head = OFFER.encode() + b"a="
    return head + b"x" * (size - len(head))


def _multipart_offer(sdp: bytes, session: bytes = b'{"model":"m1"}') -> bytes:
    return (
        b'--B\r\nContent-Disposition: form-data; name="sdp"\r\n\r\n' + sdp + b"\r\n--B\r\n"
        b'Content-Disposition: form-data; name="session"\r\n\r\n' + session + b"\r\n--B--\r\n"
    )


def _status_of(headers: list[tuple[str, str]], body: bytes, path: str = CALLS_PATH) -> int:
    try:
        parse_server_request("POST", path, headers, body)
    except SignallingError as exc:
        assert exc.status is not None
        return exc.status
    return 200


@pytest.mark.parametrize(
    "headers",
    [
        [("content-type", "application/sdp")],
        [("user-agent", "curl 8.0"), ("content-type", "application/sdp")],
        [("x-auth", "Bearer sk-x"), ("content-type", "application/sdp")],
        [("authorization", "Basic c2s6eA=="), ("content-type", "application/sdp")],
        [("authorization", "Bearer  "), ("content-type", "application/sdp")],
    ],
)
def test_only_an_authorization_bearer_header_carries_the_key(
    headers: list[tuple[str, str]],
) -> None:
    assert _status_of(headers, OFFER.encode()) == 401


def test_the_bearer_scheme_and_header_name_are_case_insensitive() -> None:
    headers = [("Authorization", "bearer   sk-x "), ("Content-Type", "application/sdp")]
    offer = parse_server_request("POST", CALLS_PATH, headers, OFFER.encode())
    assert offer.api_key == "sk-x"


def test_server_sdp_limit_is_exact_and_a_form_has_room_for_its_session() -> None:
    assert _status_of(_auth("application/sdp"), _sdp_of(MAX_SDP_SIZE)) == 200
    assert _status_of(_auth("application/sdp"), _sdp_of(MAX_SDP_SIZE + 1)) == 413
    form = _auth("multipart/form-data; boundary=B")
    # the whole form is over MAX_SDP_SIZE; its SDP part is not
    assert _status_of(form, _multipart_offer(_sdp_of(MAX_SDP_SIZE))) == 200
    assert _status_of(form, _multipart_offer(_sdp_of(MAX_SDP_SIZE + 1))) == 413
    session = b'{"instructions":"' + b"i" * (MAX_JSON_BODY_SIZE - 100) + b'"}'
    assert _status_of(form, _multipart_offer(_sdp_of(MAX_SDP_SIZE), session)) == 413


@pytest.mark.parametrize(
    "sdp",
    [
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",  # no media line
        b"o=- 1 1 IN IP4 127.0.0.1\r\nv=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",  # v=0 late
    ],
)
def test_an_offer_needs_v0_first_and_a_media_line(sdp: bytes) -> None:
    with pytest.raises(SignallingError) as info:
        parse_server_request("POST", CALLS_PATH, _auth("application/sdp"), sdp)
    assert (info.value.status, info.value.code) == (400, "invalid_offer")


def test_multipart_boundary_length_and_termination() -> None:
    longest = "B" * 200
    body = _multipart_offer(OFFER.encode()).replace(b"--B", b"--" + longest.encode())
    assert _status_of(_auth(f"multipart/form-data; boundary={longest}"), body) == 200
    too_long = body.replace(longest.encode(), longest.encode() + b"B")
    assert _status_of(_auth(f"multipart/form-data; boundary={longest}B"), too_long) == 400
    assert _status_of(_auth("multipart/form-data; boundary="), body) == 400
    unterminated = _multipart_offer(OFFER.encode()).removesuffix(b"--\r\n") + b"\r\n"
    with pytest.raises(SignallingError, match="not terminated"):
        parse_server_request(
            "POST", CALLS_PATH, _auth("multipart/form-data; boundary=B"), unterminated
        )


@pytest.mark.parametrize(("seconds", "ok"), [(10, True), (7200, True), (9, False), (7201, False)])
def test_secret_lifetime_bounds_on_both_sides(seconds: int, ok: bool) -> None:
    body = json.dumps({"expires_after": {"seconds": seconds}}).encode()
    assert _status_of(_auth("application/json"), body, CLIENT_SECRETS_PATH) == (200 if ok else 400)
    if ok:
        ClientSecretExchange(api_key="k", expires_after_seconds=seconds)
    else:
        with pytest.raises(LocalProtocolError, match="10-7200"):
            ClientSecretExchange(api_key="k", expires_after_seconds=seconds)


@pytest.mark.parametrize("seconds", [60.0, "60"])
def test_secret_lifetime_must_be_an_int(seconds: object) -> None:
    with pytest.raises(LocalProtocolError, match="must be an int"):
        ClientSecretExchange(api_key="k", expires_after_seconds=seconds)  # type: ignore[arg-type]


def test_any_2xx_answer_is_a_success_and_3xx_is_not() -> None:
    answer = CallExchange(OFFER, api_key="k").receive_data(
        build_response(200, ANSWER.encode(), "application/sdp")
    )
    assert answer is not None and (answer.status, answer.call_id) == (200, None)
    secret = json.dumps({"value": "ek_1", "expires_at": 1, "session": {}}).encode()
    exchange = ClientSecretExchange(api_key="k")
    assert exchange.receive_data(build_response(201, secret, "application/json")) is not None
    for failed in (CallExchange(OFFER, api_key="k"), ClientSecretExchange(api_key="k")):
        with pytest.raises(SignallingError, match="failed with status 300: moved") as info:
            failed.receive_data(build_response(300, b"moved", "text/plain"))
        assert info.value.status == 300


@pytest.mark.parametrize("chunked", [False, True])
def test_response_body_limit_is_exact(chunked: bool) -> None:
    def response(size: int) -> bytes:
        body = _sdp_of(size)
        if not chunked:
            return build_response(201, body, "application/sdp")
        return (
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n" % len(body)
            + body
            + b"\r\n0\r\n\r\n"
        )

    answer = CallExchange(OFFER, api_key="k").receive_data(response(MAX_SDP_SIZE))
    assert answer is not None and len(answer.sdp) == MAX_SDP_SIZE
    with pytest.raises(SignallingError, match=r"at most|exceeds"):
        CallExchange(OFFER, api_key="k").receive_data(response(MAX_SDP_SIZE + 1))


def _head_of(size: int) -> bytes:
    """A ``201`` head of exactly ``size`` bytes (its blank line included), no body."""
    start = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nX-Pad: "
    return start + b"p" * (size - len(start) - 4) + b"\r\n\r\n"


@pytest.mark.parametrize("piece", [0, 1000])
def test_response_head_limit_is_exact_and_per_head(piece: int) -> None:
    def feed(data: bytes) -> None:
        exchange = CallExchange(OFFER, api_key="k")
        pieces = [data] if not piece else [data[i : i + piece] for i in range(0, len(data), piece)]
        for part in pieces:
            exchange.receive_data(part)

    with pytest.raises(SignallingError, match="not SDP"):  # the head passed, the body is empty
        feed(_head_of(MAX_HEAD_SIZE))
    with pytest.raises(SignallingError, match=f"head exceeds {MAX_HEAD_SIZE} bytes"):
        feed(_head_of(MAX_HEAD_SIZE + 1))
    # each head has its own limit: an interim 100 Continue does not count against the final
    interim = b"HTTP/1.1 100 Continue\r\nX-Pad: " + b"q" * (MAX_HEAD_SIZE - 100) + b"\r\n\r\n"
    final = _head_of(MAX_HEAD_SIZE - 200).replace(b"Content-Length: 0", b"Content-Length: 3")
    with pytest.raises(SignallingError, match="not SDP"):
        feed(interim + final + b"x=0")


def test_response_framing_errors_say_which_part_was_bad() -> None:
    with pytest.raises(SignallingError, match="a malformed status line or header"):
        CallExchange(OFFER, api_key="k").receive_data(b"HTTP/1.1 201 Created\r\nNo colon\r\n\r\n")
    exchange = CallExchange(OFFER, api_key="k")
    exchange.receive_data(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n")
    with pytest.raises(SignallingError, match="the body is incomplete or badly framed"):
        exchange.receive_data(b"zz\r\n")


def test_an_eight_character_key_echoed_back_is_hidden() -> None:
    key = "sk-SECRT"
    assert len(key) == 8
    body = json.dumps({"error": {"message": f"Incorrect API key provided: {key}"}}).encode()
    with pytest.raises(SignallingError) as info:
        CallExchange(OFFER, api_key=key).receive_data(build_response(401, body, "application/json"))
    assert "SECRT" not in str(info.value) and "<api key>" in str(info.value)


def test_an_invalid_extra_header_name_is_named_as_such() -> None:
    with pytest.raises(LocalProtocolError, match=r"^an extra header has an invalid name$"):
        CallExchange(OFFER, api_key="k", extra_headers=[("X Bad", "v")])


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (200, "OK"), (201, "Created"), (400, "Bad Request"), (401, "Unauthorized"),
        (404, "Not Found"), (405, "Method Not Allowed"), (413, "Payload Too Large"),
        (415, "Unsupported Media Type"), (500, "Internal Server Error"),
        (501, "Not Implemented"), (503, "Service Unavailable"), (418, "Error"),
    ],
)  # fmt: skip
def test_responses_carry_the_standard_reason_phrase(status: int, reason: str) -> None:
    assert error_response(status, "m").startswith(f"HTTP/1.1 {status} {reason}\r\n".encode())


def test_ephemeral_keys_expire_at_their_second_and_need_eight_random_bytes() -> None:
    keys = EphemeralKeys()
    first, expires_at = keys.mint(b"\x01" * 8, 1000, 60)
    keys.mint(b"\x02" * 8, expires_at - 1, 60)
    assert len(keys) == 2  # the first is still valid a second before its end
    keys.mint(b"\x03" * 8, expires_at, 60)
    assert len(keys) == 2 and keys.session_of(first) is None and not keys.check(first, 0)
    with pytest.raises(LocalProtocolError, match="at least 8 random bytes"):
        keys.mint(b"\x04" * 7, 1000, 60)


def test_request_limits_are_exact() -> None:
    CallExchange(_sdp_of(MAX_SDP_SIZE).decode(), api_key="k")
    with pytest.raises(LocalProtocolError, match=f"at most {MAX_SDP_SIZE}"):
        CallExchange(_sdp_of(MAX_SDP_SIZE + 1).decode(), api_key="k")
    frame = len(b'{"session":{"instructions":""}}')
    exact = {"instructions": "i" * (MAX_JSON_BODY_SIZE - frame)}
    _, _, _, body = _server_read(ClientSecretExchange(api_key="k", session=exact).data_to_send())
    assert len(body) == MAX_JSON_BODY_SIZE
    with pytest.raises(LocalProtocolError, match=f"at most {MAX_JSON_BODY_SIZE}"):
        ClientSecretExchange(api_key="k", session={"instructions": exact["instructions"] + "i"})
    padded = b"{}" + b" " * (MAX_JSON_BODY_SIZE - 2)
    assert _status_of(_auth("application/json"), padded, CLIENT_SECRETS_PATH) == 200
    assert _status_of(_auth("application/json"), padded + b" ", CLIENT_SECRETS_PATH) == 413


def test_client_secret_response_is_200_as_the_service_answers() -> None:
    assert client_secret_response("ek_1", 1, {}).startswith(b"HTTP/1.1 200 OK\r\n")


def test_parsed_requests_and_answers_are_immutable() -> None:
    import dataclasses

    offer = parse_server_request("POST", CALLS_PATH, _auth("application/sdp"), OFFER.encode())
    request = parse_server_request("POST", CLIENT_SECRETS_PATH, _auth(""), b"")
    answer = CallExchange(OFFER, api_key="k").receive_data(call_created_response(ANSWER, "rtc_1"))
    secret = ClientSecretExchange(api_key="k").receive_data(client_secret_response("ek", 1, {}))
    for value in (offer, request, answer, secret):
        with pytest.raises(dataclasses.FrozenInstanceError):
            value.api_key = "changed"  # type: ignore[union-attr]
