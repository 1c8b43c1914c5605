"""Fuzz harness for the client WebSocket layer's receive path (atheris / libFuzzer).

Each input is fed to :class:`rtproto.wire.RealtimeWebSocket` in three modes:

* ``handshake``: the input is the server's answer to the upgrade (``@ACCEPT@`` in it is
  replaced by the ``Sec-WebSocket-Accept`` value that matches the request, so mutations of a
  valid 101 stay interesting);
* ``frames``: the input follows a valid 101, as frames;
* ``deflate``: the same with permessage-deflate negotiated (``server_no_context_takeover``
  when the input's length is odd).

and in each mode twice: as one buffer and in small pieces (1 byte, or 7 for long inputs);
then a timer fires and the stream ends (EOF). The contract, for ANY input:

* only :class:`rtproto.RemoteProtocolError` (``HandshakeRefused``, ``HandshakeTimeout`` ...)
  escapes, and after it the state is ``CLOSED``;
* after EOF the state is ``CLOSED``; the last event is the one
  ``ConnectionChange(disconnected)``, whose ``code`` is ``close_code``;
* how the bytes are split changes nothing: same events, same output bytes, same error
  (only h11's wording of a malformed HTTP response may differ);
* everything the client wrote after the upgrade is valid to wsproto in the server role:
  masked frames, UTF-8 JSON text messages, at most one close frame and nothing after it.

Usage::

    python fuzz/fuzz_websocket.py [libFuzzer flags] SCRATCH_DIR fuzz/corpus/websocket
    python fuzz/fuzz_websocket.py --corpus-only [fuzz/corpus/websocket ...]
    python fuzz/fuzz_websocket.py --write-seeds fuzz/corpus/websocket

Without atheris (or with ``--corpus-only``) every corpus file runs through
:func:`check_one` once. ``tests/test_wire_websocket.py`` imports :func:`check_one`.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

try:
    import atheris
except ImportError:  # pragma: no cover - depends on the environment
    atheris = None

# Heavy dependencies first, so that only rtproto and h11 are instrumented.
import msgspec  # noqa: F401
import numpy  # noqa: F401

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))  # the shared fuzz/_corpus.py
from _corpus import harness_main, replay, target_imports  # noqa: E402

with target_imports(__name__, atheris, include=["rtproto", "h11"]):
    import h11  # noqa: F401

    import rtproto
    from rtproto.session import ConnectionChange, ConnectionStatus, Limits, SessionOptions
    from rtproto.wire import RealtimeWebSocket, WebSocketOptions, WebSocketState
    from rtproto.wire._frames import accept_token

# The independent peer that checks what the client writes (not instrumented).
from wsproto import ConnectionType  # noqa: E402
from wsproto import events as wse  # noqa: E402
from wsproto.connection import Connection, ConnectionState  # noqa: E402

__all__ = ["TestOneInput", "check_one", "main", "run_corpus", "seeds"]

RemoteProtocolError = rtproto.RemoteProtocolError
CLOSED = WebSocketState.CLOSED
ACCEPT = b"@ACCEPT@"
#: Small limits, so that oversized messages, messages in too many fragments and event
#: backpressure are reachable.
MAX_MESSAGE = 4096
MAX_FRAGMENTS = 8
MAX_EVENTS = 16
_OPTIONS = WebSocketOptions(
    url="ws://fuzz.invalid/v1/realtime?model=m",
    api_key="sk-fuzz",
    max_message_size=MAX_MESSAGE,
    max_fragments=MAX_FRAGMENTS,
    ping_interval=10.0,
    ping_timeout=5.0,
    handshake_timeout=20.0,
)


class Outcome(NamedTuple):
    events: list[Any]
    output: bytes
    error: tuple[str, object] | None


def _random() -> Callable[[int], bytes]:
    counter = itertools.count()
    return lambda n: bytes(next(counter) % 251 for _ in range(n))


def _upgrade(accept: bytes, extensions: str | None) -> bytes:
    head = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n"
    )
    if extensions is not None:
        head += b"Sec-WebSocket-Extensions: " + extensions.encode() + b"\r\n"
    return head + b"\r\n"


def _run(mode: str, data: bytes, pieces: Callable[[bytes], Iterator[bytes]]) -> Outcome:
    conn = RealtimeWebSocket(
        _OPTIONS,
        SessionOptions(limits=Limits(max_pending_events=MAX_EVENTS)),
        random_bytes=_random(),
    )
    events: list[Any] = []
    output: list[bytes] = []

    def drain() -> None:  # by next_event() and by take_events(), in turn: the same events
        if len(output) % 2:
            while batch := conn.take_events():
                events.extend(batch)
        else:
            while (event := conn.next_event()) is not None:
                events.append(event)
        output.append(conn.data_to_send())

    conn.initiate(0.0)
    request = conn.data_to_send()
    assert request.startswith(b"GET /v1/realtime?model=m HTTP/1.1\r\n")
    accept = accept_token(dict(_request_headers(request))[b"sec-websocket-key"])
    error: tuple[str, object] | None = None
    try:
        if mode == "handshake":
            data = data.replace(ACCEPT, accept)
        else:
            extension = None
            if mode == "deflate":
                extension = "permessage-deflate"
                if len(data) % 2:
                    extension += "; server_no_context_takeover"
            conn.receive_data(_upgrade(accept, extension), 0.0)
            assert conn.state is WebSocketState.OPEN
            drain()
        for piece in pieces(data):
            conn.receive_data(piece, 1.0)
            drain()
        conn.handle_timer(30.0)
        drain()
        conn.receive_data(b"", 31.0)
        drain()
    except RemoteProtocolError as exc:
        error = (type(exc).__name__, exc.hint)
        assert conn.state is CLOSED, conn.state
        drain()
    assert conn.state is CLOSED, conn.state
    assert conn.data_to_send() == b""
    final = events[-1]
    assert isinstance(final, ConnectionChange), final
    assert final.status is ConnectionStatus.DISCONNECTED
    assert final.code == conn.close_code
    assert [e for e in events if isinstance(e, ConnectionChange)].count(final) == 1
    _check_output(output, conn)
    return Outcome(events, b"".join(output), error)


def _request_headers(request: bytes) -> list[tuple[bytes, bytes]]:
    lines = request.split(b"\r\n")[1:]
    pairs = [line.split(b":", 1) for line in lines if b":" in line]
    return [(name.strip().lower(), value.strip()) for name, value in pairs]


def _check_output(output: list[bytes], conn: RealtimeWebSocket) -> None:
    """What the client wrote after the upgrade is valid to an independent server."""
    if not conn.response_headers:
        assert not any(output), "frames written without an upgrade"
        return
    server = Connection(ConnectionType.SERVER)
    closed = False
    for chunk in output:
        if not chunk:
            continue
        assert not closed, "bytes written after the close frame"
        server.receive_data(chunk)
        for event in server.events():
            if isinstance(event, wse.CloseConnection):
                assert server.state is ConnectionState.REMOTE_CLOSING, event  # not a parse error
                closed = True
            elif isinstance(event, wse.TextMessage):
                assert event.message_finished
                assert isinstance(json.loads(event.data)["type"], str)
            else:
                assert isinstance(event, (wse.Ping, wse.Pong)), event


def _whole(data: bytes) -> Iterator[bytes]:
    if data:  # b"" would be the end of the stream
        yield data


def _split(data: bytes) -> Iterator[bytes]:
    step = 1 if len(data) <= 1024 else 7
    for i in range(0, len(data), step):
        yield data[i : i + step]


_H11_ERROR = "invalid answer to the WebSocket upgrade:"


def _comparable(events: list[Any]) -> list[Any]:
    """The events, with h11's wording of a malformed response left out: h11 words some
    errors differently depending on where the bytes were split."""
    out = []
    for event in events:
        if isinstance(event, ConnectionChange) and (event.reason or "").startswith(_H11_ERROR):
            event = ConnectionChange(status=event.status, reason=_H11_ERROR, code=event.code)
        out.append(event)
    return out


def check_one(data: bytes) -> None:
    """Run ``data`` through every mode, whole and split; raise on a contract violation."""
    for mode in ("handshake", "frames", "deflate"):
        whole = _run(mode, data, _whole)
        split = _run(mode, data, _split)
        assert whole.error == split.error, (mode, whole.error, split.error)
        assert _comparable(whole.events) == _comparable(split.events), mode
        assert whole.output == split.output, mode


def TestOneInput(data: bytes) -> None:  # the name atheris and libFuzzer expect
    check_one(data)


def run_corpus(paths: Iterable[str | Path]) -> int:
    """Run every file under ``paths`` through ``TestOneInput`` once; returns the count."""
    return replay(paths, TestOneInput, "fuzz_websocket")


def seeds() -> dict[str, bytes]:
    """The seed corpus (``--write-seeds DIR`` writes it)."""
    import zlib

    from rtproto.wire._frames import encode_frame

    def text(obj: Any) -> bytes:
        return encode_frame(0x1, json.dumps(obj, separators=(",", ":")).encode())

    def deflated(raw: bytes) -> bytes:
        compressor = zlib.compressobj(wbits=-15)
        return compressor.compress(raw) + compressor.flush(zlib.Z_SYNC_FLUSH)[:-4]

    created = {"type": "session.created", "event_id": "e1", "session": {"type": "realtime"}}
    delta = {
        "type": "response.output_audio.delta",
        "event_id": "e2",
        "response_id": "r",
        "item_id": "i",
        "output_index": 0,
        "content_index": 0,
        "delta": "AAAA" * 40,
    }
    error = {
        "type": "error",
        "event_id": "e3",
        "error": {"type": "invalid_request_error", "code": "session_expired", "message": "x"},
    }
    raw_created = json.dumps(created).encode()
    close_1000 = encode_frame(0x8, b"\x03\xe8bye")
    body = json.dumps({"error": {"message": "nope", "code": "invalid_api_key"}}).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    return {
        "handshake-101-then-frames": _upgrade(ACCEPT, None)
        + text(created)
        + text(delta)
        + encode_frame(0x9, b"ka")
        + close_1000,
        "handshake-101-deflate": _upgrade(ACCEPT, "permessage-deflate")
        + encode_frame(0x1, deflated(raw_created), rsv=0x40),
        "handshake-101-subprotocol": _upgrade(ACCEPT, None)[:-2]
        + b"Sec-WebSocket-Protocol: realtime\r\n\r\n",
        "handshake-100-then-101": b"HTTP/1.1 100 Continue\r\n\r\n" + _upgrade(ACCEPT, None),
        "handshake-101-bad-accept": _upgrade(b"AAAAAAAAAAAAAAAAAAAAAAAAAAA=", None),
        "handshake-401-json": b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body,
        "handshake-429-chunked": b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\n"
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + chunked,
        "handshake-403-until-eof": b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n" + body,
        "frames-fragmented-pings": encode_frame(0x1, raw_created[:10], fin=False)
        + encode_frame(0x9, b"1")
        + encode_frame(0x0, raw_created[10:30], fin=False)
        + encode_frame(0xA, b"x")
        + encode_frame(0x0, raw_created[30:])
        + close_1000,
        "frames-error-then-1001": text(error)
        + encode_frame(0x8, b"\x03\xe9Your session hit the maximum duration of 60 minutes."),
        "frames-binary": encode_frame(0x2, b"\x00\x01\x02") + text(created),
        "frames-masked": encode_frame(0x1, raw_created, b"\x01\x02\x03\x04"),
        "frames-invalid-utf8": encode_frame(0x1, b'{"type":"\xc3\x28"}'),
        "frames-too-big": b"\x81\x7e\x13\x88" + b"a" * 64,
        "frames-too-many-fragments": encode_frame(0x1, b"{", fin=False)
        + encode_frame(0x0, b"", fin=False) * MAX_FRAGMENTS
        + encode_frame(0x0, b"}"),
        "frames-empty-fragments": encode_frame(0x1, b"", fin=False)
        + encode_frame(0x0, raw_created[:7], fin=False)
        + encode_frame(0x0, b"", fin=False)
        + encode_frame(0x9, b"p")
        + encode_frame(0x0, raw_created[7:], fin=False)
        + encode_frame(0x0, b""),
        "frames-16bit-length": text({"type": "x.y", "pad": "p" * 300}),
        "frames-compressed": encode_frame(0x1, deflated(raw_created), rsv=0x40)
        + encode_frame(0x1, deflated(raw_created)[:5], rsv=0x40, fin=False)
        + encode_frame(0x0, deflated(raw_created)[5:]),
        "frames-deflate-bomb": encode_frame(0x1, deflated(b"a" * 200_000), rsv=0x40),
        "frames-many-small": b"".join(text({"type": "n", "i": i}) for i in range(40)),
        "frames-non-json": encode_frame(0x1, b"hello"),
        "garbage": bytes((i * 37 + 11) % 256 for i in range(300)),
    }


def main(argv: list[str]) -> int:
    return harness_main(argv, "websocket", TestOneInput, atheris, seeds)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
