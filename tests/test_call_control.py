"""Call control (accept, reject, refer, hang up; rtproto.wire.signalling): the requests are
the official ``openai`` SDK's, checked against it on a local HTTP server; answers and
refusals are parsed as the other HTTP exchanges parse theirs."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import openai
import pytest
from rtproto.adapters import ConnectError
from rtproto.adapters.calls import control_call

from rtproto.errors import LocalProtocolError
from rtproto.wire.signalling import (
    CALL_ACTIONS,
    CALLS_PATH,
    CallControlExchange,
    CallControlRequest,
    CallControlResult,
    SignallingError,
    accept_call,
    hangup_call,
    parse_server_request,
    refer_call,
    reject_call,
)

KEY = "sk-test-call-control"
NOT_FOUND = (
    b'{"error":{"message":"No session found for the provided call_id",'
    b'"type":"invalid_request_error","code":"call_id_not_found","param":null}}'
)


class Recorder(ThreadingHTTPServer):
    """A local server that records each POST and answers 200 with an empty body (404 with
    the service's error for the call id ``rtc_gone``)."""

    requests: list[tuple[str, dict[str, str], bytes]]


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.requests.append((self.path, headers, body))
        answer = NOT_FOUND if "/rtc_gone/" in self.path else b""
        self.send_response(404 if answer else 200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder(("127.0.0.1", 0), _Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _calls_url(server: Recorder) -> str:
    return f"http://127.0.0.1:{server.server_port}/v1/realtime/calls"


def _exchange(exchange: CallControlExchange, server: Recorder) -> CallControlResult:
    """Run one exchange over a real socket, as a driver does."""
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=5) as sock:
        sock.sendall(exchange.data_to_send())
        while True:
            result = exchange.receive_data(sock.recv(65536))
            if result is not None:
                return result


def test_the_requests_are_the_openai_sdks(recorder: Recorder) -> None:
    client = openai.OpenAI(
        api_key=KEY, base_url=f"http://127.0.0.1:{recorder.server_port}/v1", max_retries=0
    )
    client.realtime.calls.accept(
        "rtc_1", type="realtime", model="gpt-realtime", instructions="Be brief."
    )
    client.realtime.calls.reject("rtc_1", status_code=486)
    client.realtime.calls.reject("rtc_1")
    client.realtime.calls.refer("rtc_1", target_uri="tel:+14155550123")
    client.realtime.calls.hangup("rtc_1")
    theirs = list(recorder.requests)
    recorder.requests.clear()
    url = _calls_url(recorder)
    ours = [
        accept_call(
            "rtc_1", {"instructions": "Be brief."}, api_key=KEY, model="gpt-realtime", url=url
        ),
        reject_call("rtc_1", api_key=KEY, status_code=486, url=url),
        reject_call("rtc_1", api_key=KEY, url=url),
        refer_call("rtc_1", "tel:+14155550123", api_key=KEY, url=url),
        hangup_call("rtc_1", api_key=KEY, url=url),
    ]
    for exchange in ours:
        result = _exchange(exchange, recorder)
        assert result == CallControlResult(exchange.call_id, exchange.action, 200)
    assert [path for path, _, _ in recorder.requests] == [path for path, _, _ in theirs]
    for (path, headers, body), (_, sdk_headers, sdk_body) in zip(
        recorder.requests, theirs, strict=True
    ):
        for name in ("authorization", "content-type", "accept", "content-length"):
            if name != "content-length" or not path.endswith("/accept"):
                assert headers.get(name) == sdk_headers.get(name), (path, name)
        if path.endswith("/accept"):
            # the SDK sends what it is given; ours is the whole configuration of a phone call
            sent = json.loads(body)
            assert json.loads(sdk_body).items() <= sent.items()
            # (the JS SDK's defaults, as the sip profile sends them)
            assert sent["audio"]["input"]["turn_detection"] == {"type": "semantic_vad"}
        else:
            assert body == sdk_body, path


def test_a_call_that_ended_is_refused_with_the_services_error(recorder: Recorder) -> None:
    with pytest.raises(SignallingError) as caught:
        _exchange(hangup_call("rtc_gone", api_key=KEY, url=_calls_url(recorder)), recorder)
    assert caught.value.status == 404 and caught.value.code == "call_id_not_found"
    assert "No session found" in caught.value.message


@pytest.mark.parametrize("one_byte_at_a_time", [False, True])
def test_answers_in_any_pieces(one_byte_at_a_time: bool) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    exchange = refer_call("rtc_1", "sip:agent@example.com", api_key=KEY)
    assert exchange.host == "api.openai.com" and exchange.tls
    assert exchange.data_to_send().startswith(b"POST /v1/realtime/calls/rtc_1/refer HTTP/1.1")
    assert exchange.data_to_send() == b""
    pieces = [answer[i : i + 1] for i in range(len(answer))] if one_byte_at_a_time else [answer]
    results = [exchange.receive_data(piece) for piece in pieces]
    assert results[-1] == CallControlResult("rtc_1", "refer", 200)
    assert all(result is None for result in results[:-1])


def test_a_connection_closed_early_is_an_error() -> None:
    exchange = reject_call("rtc_1", api_key=KEY)
    exchange.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}")
    with pytest.raises(SignallingError, match="closed the connection"):
        exchange.receive_data(b"")


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda: hangup_call("", api_key=KEY), "call_id"),
        (lambda: hangup_call("rtc/../x", api_key=KEY), "call_id"),
        (lambda: hangup_call(7, api_key=KEY), "call_id"),
        (lambda: CallControlExchange("rtc_1", "transfer", api_key=KEY), "action must be one of"),
        (lambda: CallControlExchange("rtc_1", "hangup", api_key=KEY, body={}), "no body"),
        (
            lambda: CallControlExchange("rtc_1", "refer", api_key=KEY, body={"x": "y" * 300_000}),
            "at most",
        ),
        (lambda: CallControlExchange("rtc_1", "refer", api_key=KEY, body=[1]), "mapping"),
        (lambda: hangup_call("rtc_1", api_key=KEY, url="https://h/calls?x=1"), "no query"),
        (lambda: hangup_call("rtc_1", api_key=KEY, url=None), "must be a str"),
        (lambda: hangup_call("rtc_1", api_key="sk bad"), "api_key"),
        (lambda: reject_call("rtc_1", api_key=KEY, status_code=True), "must be an int"),
        (lambda: reject_call("rtc_1", api_key=KEY, status_code="486"), "must be an int"),
        (lambda: reject_call("rtc_1", api_key=KEY, status_code=399), "not a SIP error"),
        (lambda: reject_call("rtc_1", api_key=KEY, status_code=700), "not a SIP error"),
        (lambda: refer_call("rtc_1", "https://example.com", api_key=KEY), "target_uri"),
        (lambda: refer_call("rtc_1", "tel:+1 415", api_key=KEY), "target_uri"),
        (lambda: refer_call("rtc_1", "sip:" + "a" * 2045, api_key=KEY), "target_uri"),
        (lambda: refer_call("rtc_1", None, api_key=KEY), "target_uri"),
        (
            lambda: accept_call("rtc_1", {"turn_detection": {"threshold": 0.4}}, api_key=KEY),
            "threshold",
        ),
    ],
)
def test_what_cannot_be_sent_is_refused(make: Any, problem: str) -> None:
    with pytest.raises(LocalProtocolError, match=problem):
        make()


def test_the_edges_of_what_is_sent() -> None:
    for code in (400, 699):
        body = reject_call("rtc_1", api_key=KEY, status_code=code).data_to_send()
        assert body.endswith(b'{"status_code":%d}' % code)
    uri = "SIPS:" + "a" * 2043
    assert refer_call("rtc_1", uri, api_key=KEY).data_to_send().endswith(b'"%s"}' % uri.encode())
    assert set(CALL_ACTIONS) == {"accept", "reject", "refer", "hangup"}
    exchange = hangup_call("rtc_1", api_key=KEY, url="http://127.0.0.1:9/v1/realtime/calls/")
    assert exchange.data_to_send().startswith(b"POST /v1/realtime/calls/rtc_1/hangup HTTP/1.1")


# --- the driver: rtproto.adapters.calls, on asyncio and Trio ---------------------------------


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_driver_sends_each_action(recorder: Recorder, backend: str) -> None:
    url = _calls_url(recorder)

    async def main() -> list[CallControlResult]:
        return [
            await control_call(refer_call("rtc_1", "sip:agent@example.com", api_key=KEY, url=url)),
            await control_call(hangup_call("rtc_1", api_key=KEY, url=url), timeout=5),
        ]

    assert anyio.run(main, backend=backend) == [
        CallControlResult("rtc_1", "refer", 200),
        CallControlResult("rtc_1", "hangup", 200),
    ]
    assert [path for path, _, _ in recorder.requests] == [
        "/v1/realtime/calls/rtc_1/refer",
        "/v1/realtime/calls/rtc_1/hangup",
    ]

    async def gone() -> None:
        await control_call(hangup_call("rtc_gone", api_key=KEY, url=url))

    with pytest.raises(SignallingError, match="No session found"):
        anyio.run(gone, backend=backend)


def test_the_driver_reports_what_it_cannot_reach() -> None:
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}/v1/realtime/calls"

    async def main() -> None:
        await control_call(hangup_call("rtc_1", api_key=KEY, url=url), timeout=5)

    with pytest.raises(ConnectError):
        anyio.run(main)


# --- the server side: parse_server_request (the emulator's REST endpoints) -------------------


def _parse(target: str, body: bytes = b"", headers: Any = None, method: str = "POST") -> Any:
    given = [("Authorization", "Bearer sk-x"), ("Content-Type", "application/json")]
    return parse_server_request(method, target, given if headers is None else headers, body)


def test_call_control_requests_are_parsed() -> None:
    request = _parse(CALLS_PATH + "/rtc_1/refer", b'{"target_uri":"tel:+1"}')
    assert request == CallControlRequest("rtc_1", "refer", {"target_uri": "tel:+1"}, "sk-x")
    assert "sk-x" not in repr(request)
    assert _parse(CALLS_PATH + "/rtc_1/hangup", headers=[("authorization", "Bearer k")]) == (
        CallControlRequest("rtc_1", "hangup", {}, "k")
    )
    for action in CALL_ACTIONS:  # what our exchanges send, the server reads
        exchange = CallControlExchange(
            "rtc_9", action, api_key="sk-x", body=None if action == "hangup" else {"a": 1}
        )
        head, _, body = exchange.data_to_send().partition(b"\r\n\r\n")
        target = head.split(b" ")[1].decode()
        assert _parse(target, body).action == action


@pytest.mark.parametrize(
    ("target", "body", "headers", "method", "status"),
    [
        (CALLS_PATH + "/rtc_1/transfer", b"", None, "POST", 404),
        (CALLS_PATH + "/rtc_1", b"", None, "POST", 404),
        (CALLS_PATH + "/rtc 1/hangup", b"", None, "POST", 404),
        (CALLS_PATH + "//hangup", b"", None, "POST", 404),
        (CALLS_PATH + "/rtc_1/hangup", b"", None, "GET", 405),
        (CALLS_PATH + "/rtc_1/hangup", b"", [], "POST", 401),
        (CALLS_PATH + "/rtc_1/reject", b"[1]", None, "POST", 400),
        (CALLS_PATH + "/rtc_1/reject", b"{", None, "POST", 400),
        (CALLS_PATH + "/rtc_1/reject", b"x" * 300_000, None, "POST", 413),
        (
            CALLS_PATH + "/rtc_1/reject",
            b"{}",
            [("Authorization", "Bearer k"), ("Content-Type", "text/plain")],
            "POST",
            415,
        ),
    ],
)
def test_bad_call_control_requests_get_the_services_status(
    target: str, body: bytes, headers: Any, method: str, status: int
) -> None:
    with pytest.raises(SignallingError) as caught:
        _parse(target, body, headers, method)
    assert caught.value.status == status


def test_results_and_requests_are_immutable() -> None:
    result = CallControlResult("rtc_1", "hangup", 200)
    request = CallControlRequest("rtc_1", "hangup", {}, "sk-x")
    for value in (result, request):
        with pytest.raises(AttributeError):
            value.call_id = "rtc_2"  # type: ignore[misc]


def test_a_body_of_the_largest_size_is_sent() -> None:
    largest = {"x": "y" * (256 * 1024 - len('{"x":""}'))}
    CallControlExchange("rtc_1", "refer", api_key=KEY, body=largest)
    with pytest.raises(LocalProtocolError, match="at most 262144"):
        CallControlExchange("rtc_1", "refer", api_key=KEY, body={"x": largest["x"] + "y"})
