"""Fuzz harness for webhook verification (atheris / libFuzzer).

Each input is an HTTP-like delivery: ``name: value`` header lines, a blank line, the body
(no blank line: all headers, no body). It is checked three ways:

* as it is, by :meth:`WebhookVerifier.unwrap` at a fixed ``now``;
* with the body as text too, when it is UTF-8: both verdicts agree;
* re-signed by :func:`sign_webhook` (same body, its ``webhook-id`` when usable): the
  signature always verifies, so unwrap fails only on what the body itself holds.

The contract, for ANY input: only :class:`WebhookError` escapes (a ``RemoteProtocolError``,
hint 400), and a verified delivery is a :class:`WebhookEvent` carrying its ``webhook-id``.

Usage::

    python fuzz/fuzz_webhooks.py [libFuzzer flags] SCRATCH_DIR fuzz/corpus/webhooks
    python fuzz/fuzz_webhooks.py --corpus-only [fuzz/corpus/webhooks ...]
    python fuzz/fuzz_webhooks.py --write-seeds fuzz/corpus/webhooks
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path

try:
    import atheris
except ImportError:  # pragma: no cover - depends on the environment
    atheris = None

import msgspec  # noqa: F401

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))  # the shared fuzz/_corpus.py
from _corpus import harness_main, replay, target_imports  # noqa: E402

with target_imports(__name__, atheris):
    from rtproto.wire.webhooks import (
        WebhookError,
        WebhookEvent,
        WebhookVerifier,
        parse_webhook_event,
        sign_webhook,
    )

SECRET = "whsec_" + "c2VjcmV0LWtleS1mb3ItZnV6emluZw=="  # base64 of "secret-key-for-fuzzing"
NOW = 1_750_287_018
_VERIFIER = WebhookVerifier(SECRET)


def split(data: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The header pairs and the body of one input."""
    head, blank, body = data.partition(b"\n\n")
    headers = []
    for line in head.split(b"\n"):
        name, colon, value = line.partition(b":")
        if colon:
            headers.append((name.strip(), value.strip()))
    return headers, body if blank else b""


def _verdict(body: bytes | str, headers: list[tuple[bytes, bytes]]) -> object:
    try:
        event = _VERIFIER.unwrap(body, headers, now=NOW)
    except WebhookError as exc:
        assert exc.hint == 400, exc.hint
        return "refused"
    assert isinstance(event, WebhookEvent), event
    return event.webhook_id, event.id, event.type


def check_one(data: bytes) -> None:
    """Run one input through the verifier; raise AssertionError if the contract breaks."""
    headers, body = split(data)
    verdict = _verdict(body, headers)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:  # as text, it holds lone surrogates: refused, not a crash
        assert _verdict(body.decode("utf-8", "surrogateescape"), headers) == "refused"
        with contextlib.suppress(WebhookError):
            parse_webhook_event(body.decode("utf-8", "surrogateescape"))
    else:
        assert _verdict(text, headers) == verdict
    given = dict((k.lower(), v) for k, v in headers).get(b"webhook-id", b"")
    webhook_id = given.decode("latin-1") if given.isascii() and given.isalnum() else "wh_fuzz"
    signed = sign_webhook(body, SECRET, webhook_id=webhook_id, timestamp=NOW)
    assert _VERIFIER.verify(body, signed, now=NOW) == webhook_id  # (raises if not)
    try:
        event = parse_webhook_event(body, webhook_id)
    except WebhookError:
        expected: object = "refused"
    else:
        expected = webhook_id, event.id, event.type
    assert _verdict(body, list(signed.items())) == expected


def delivery(body: bytes, headers: dict[str, str]) -> bytes:
    """One input: headers, a blank line, the body."""
    return b"".join(f"{k}: {v}\n".encode() for k, v in headers.items()) + b"\n" + body


def seeds() -> dict[str, bytes]:
    """The seed corpus (``--write-seeds DIR`` writes it)."""
    call = {
        "object": "event",
        "id": "evt_685343a1381c819085d44c354e1b330e",
        "type": "realtime.call.incoming",
        "created_at": NOW,
        "data": {
            "call_id": "rtc_u1_9c6574da8b8a41a18da9308f4ad974ce",
            "sip_headers": [
                {"name": "From", "value": "sip:+142555512112@sip.example.com"},
                {"name": "To", "value": "sip:+18005551212@sip.example.com"},
                {"name": "Call-ID", "value": "03782086-4ce9-44bf-8b0d-4e303d2cc590"},
            ],
        },
    }
    body = json.dumps(call).encode()
    other = b'{"object":"event","id":"evt_2","type":"batch.completed","data":{"id":"batch_1"}}'

    def signed(data: bytes, timestamp: int = NOW, webhook_id: str = "wh_1") -> dict[str, str]:
        return sign_webhook(data, SECRET, webhook_id=webhook_id, timestamp=timestamp)

    rotated = signed(body)
    rotated["webhook-signature"] = "v1,c29tZXRoaW5nIGVsc2U= " + rotated["webhook-signature"]
    return {
        "call": delivery(body, signed(body)),
        "other-type": delivery(other, signed(other, webhook_id="wh_2")),
        "rotated": delivery(body, rotated),
        "stale": delivery(body, signed(body, NOW - 301)),
        "tampered": delivery(body.replace(b"+1425", b"+1426"), signed(body)),
        "not-json": delivery(b"{", signed(b"{")),
        "no-headers": body,
    }


def run_corpus(paths: Iterable[str | Path]) -> int:
    """Run every file under ``paths`` through ``TestOneInput`` once; returns the count."""
    return replay(paths, TestOneInput, "fuzz_webhooks")


def TestOneInput(data: bytes) -> None:
    check_one(data)


def main(argv: list[str]) -> int:
    return harness_main(argv, "webhooks", TestOneInput, atheris, seeds)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
