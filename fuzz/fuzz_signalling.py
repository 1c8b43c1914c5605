"""Fuzz harness for WebRTC signalling and client secrets (atheris / libFuzzer).

Each input is used in every one of these roles:

* as the server's HTTP response to ``POST /v1/realtime/calls`` (:class:`CallExchange`),
  to ``POST /v1/realtime/client_secrets`` (:class:`ClientSecretExchange`) and to a call
  control request (:class:`CallControlExchange`), fed whole and one byte at a time, then EOF;
* as the body of a server-side request (:func:`parse_server_request`): an SDP offer, a
  multipart form (boundary ``B``), a client secrets JSON body and a call control one.

The contract, for ANY input: only :class:`SignallingError` escapes (a
``RemoteProtocolError``); the whole and byte-at-a-time feeds agree (same answer, or an error
with the same status); a server-side error carries a status in 400/401/404/405/413/415 and
an OpenAI ``error`` object.

Usage::

    python fuzz/fuzz_signalling.py [libFuzzer flags] SCRATCH_DIR fuzz/corpus/signalling
    python fuzz/fuzz_signalling.py --corpus-only [fuzz/corpus/signalling ...]
    python fuzz/fuzz_signalling.py --write-seeds fuzz/corpus/signalling
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

try:
    import atheris
except ImportError:  # pragma: no cover - depends on the environment
    atheris = None

import msgspec  # noqa: F401
import numpy  # noqa: F401

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))  # the shared fuzz/_corpus.py
from _corpus import harness_main, replay, target_imports  # noqa: E402

with target_imports(__name__, atheris, include=["rtproto", "h11"]):
    from rtproto.wire.signalling import (
        CALLS_PATH,
        CLIENT_SECRETS_PATH,
        SIP_CALL_PATH,
        CallExchange,
        ClientSecretExchange,
        SignallingError,
        WebhookDelivery,
        hangup_call,
        parse_server_request,
    )

_OFFER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
_SERVER_STATUSES = {400, 401, 404, 405, 413, 415}


def _outcome(make: Callable[[], Any], data: bytes, whole: bool) -> tuple[str, object]:
    exchange = make()
    exchange.data_to_send()
    try:
        pieces = [data] if whole else [data[i : i + 1] for i in range(len(data))]
        for piece in [*(p for p in pieces if p), b""]:
            result = exchange.receive_data(piece)
            if result is not None:
                return "ok", result
        raise AssertionError("EOF did not end the exchange")  # pragma: no cover
    except SignallingError as exc:
        return "error", exc.status


def _feed(make: Callable[[], Any], data: bytes) -> None:
    whole = _outcome(make, data, True)
    split = _outcome(make, data, False)
    assert whole == split, (whole, split)


def check_one(data: bytes) -> None:
    """Run one input through every parser; raise AssertionError if the contract breaks."""
    _feed(lambda: CallExchange(_OFFER, api_key="sk-test", url="http://127.0.0.1:1/"), data)
    _feed(lambda: ClientSecretExchange(api_key="sk-test", url="http://127.0.0.1:1/"), data)
    _feed(lambda: hangup_call("rtc_1", api_key="sk-test", url="http://127.0.0.1:1/"), data)
    _feed(
        lambda: WebhookDelivery(
            "http://127.0.0.1:1/hook", {"type": "x"}, "s", webhook_id="wh_1", timestamp=1
        ),
        data,
    )
    for path, content_type in (
        (CALLS_PATH, "application/sdp"),
        (CALLS_PATH + "?model=gpt-realtime", "multipart/form-data; boundary=B"),
        (CLIENT_SECRETS_PATH, "application/json"),
        (CALLS_PATH + "/rtc_1/refer", "application/json"),
        (SIP_CALL_PATH, "application/json"),
    ):
        headers = [("Authorization", "Bearer ek_x"), ("Content-Type", content_type)]
        try:
            parse_server_request("POST", path, headers, data)
        except SignallingError as exc:
            assert exc.status in _SERVER_STATUSES, exc.status
            assert exc.error is not None and isinstance(exc.error.get("message"), str)


def seeds() -> dict[str, bytes]:
    """The seed corpus (``--write-seeds DIR`` writes it)."""
    answer = _OFFER.replace("127.0.0.1", "10.0.0.1").encode()
    return {
        "answer-201": b"HTTP/1.1 201 Created\r\nContent-Type: application/sdp\r\nLocation: "
        b"/v1/realtime/calls/rtc_u1_abc\r\nContent-Length: %d\r\n\r\n" % len(answer) + answer,
        "answer-chunked": b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"%x\r\n" % len(answer) + answer + b"\r\n0\r\n\r\n",
        "error-400": b'HTTP/1.1 400 Bad Request\r\nContent-Length: 64\r\n\r\n{"error":{"message'
        b'":"bad sdp","type":"invalid_request_error","code":null}}  ',
        "error-401-close": b"HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\nno key",
        "secret-200": b'HTTP/1.1 200 OK\r\nContent-Length: 71\r\n\r\n{"value":"ek_1",'
        b'"expires_at":1756310470,"session":{"type":"realtime"}}     ',
        "control-200": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        "control-404": b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
        b'Content-Length: 125\r\n\r\n{"error":{"message":"No session found for the provided '
        b'call_id","type":"invalid_request_error","code":"call_id_not_found"}}  ',
        "body-secrets": b'{"expires_after":{"anchor":"created_at","seconds":60},"session":'
        b'{"type":"realtime","model":"gpt-realtime"}}',
        "body-multipart": b'--B\r\nContent-Disposition: form-data; name="sdp"\r\n\r\n'
        + _OFFER.encode()
        + b'\r\n--B\r\nContent-Disposition: form-data; name="session"\r\n\r\n'
        b'{"type":"realtime"}\r\n--B--\r\n',
        "body-sdp": _OFFER.encode(),
        "body-sip-call": b'{"from":"sip:+1@x","to":"sip:b@y","audio":"AAAA//8=",'
        b'"ring_timeout":2.5,"hang_up_after":0,"webhook_url":"http://127.0.0.1:9/h"}',
    }


def run_corpus(paths: Iterable[str | Path]) -> int:
    """Run every file under ``paths`` through ``TestOneInput`` once; returns the count."""
    return replay(paths, TestOneInput, "fuzz_signalling")


def TestOneInput(data: bytes) -> None:
    check_one(data)


def main(argv: list[str]) -> int:
    return harness_main(argv, "signalling", TestOneInput, atheris, seeds)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
