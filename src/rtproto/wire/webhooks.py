"""Webhooks the Realtime service sends, such as ``realtime.call.incoming`` for a SIP call:
signatures verified (Standard Webhooks, as the service signs them), payloads typed, no I/O.

Your web framework hands over the raw body and the headers; you pass the current Unix time
(``time.time()``: a wall clock, unlike the session's ``now``)::

    verifier = WebhookVerifier(os.environ["OPENAI_WEBHOOK_SECRET"])   # "whsec_..."
    try:
        event = verifier.unwrap(body, headers, now=time.time())
    except WebhookError as exc:
        return exc.hint, exc.message                  # 400: not from the service, or stale
    if isinstance(event, IncomingCall):               # then accept_call(event.call_id, ...)
        ...                                           # (rtproto.wire.signalling, docs/sip.md)

The signature is ``v1,`` and the base64 HMAC-SHA256 of ``"{webhook-id}.{webhook-timestamp}.
{body}"`` keyed by the secret (base64-decoded after ``whsec_``; else its UTF-8 bytes). A
``webhook-signature`` header may list several, space-separated (a secret being rotated): one
match is enough; each is compared in constant time. The timestamp must be within
``tolerance`` seconds (300 by default) of ``now`` either way. :func:`sign_webhook` makes the
headers, for tests and emulators.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "DEFAULT_TOLERANCE",
    "INCOMING_CALL",
    "MAX_WEBHOOK_BODY_SIZE",
    "IncomingCall",
    "SipHeader",
    "WebhookError",
    "WebhookEvent",
    "WebhookVerifier",
    "parse_webhook_event",
    "sign_webhook",
]

#: Seconds a webhook's timestamp may be from ``now``, either way (the service's SDKs' default).
DEFAULT_TOLERANCE = 300.0
#: Largest body verified (an incoming call is a few KiB, most of it SIP headers).
MAX_WEBHOOK_BODY_SIZE = 1024 * 1024
#: Largest value of a ``webhook-*`` header read (a signature entry is 47 characters).
MAX_HEADER_SIZE = 8 * 1024
#: The event type of an incoming SIP call.
INCOMING_CALL = "realtime.call.incoming"

_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
_SECRET_PREFIX = "whsec_"
_TIMESTAMP_DIGITS = 12  # (Unix seconds until the year 33658)


class WebhookError(RemoteProtocolError):
    """A webhook that did not come from the service as it is (unsigned, tampered with, stale,
    replayed outside the window) or that is not a webhook event. ``hint`` is the HTTP status
    to answer: 400, so the sender sees a failed delivery."""

    def __init__(self, message: str) -> None:
        super().__init__(message, hint=400)


@dataclass(frozen=True)
class SipHeader:
    """One header of the SIP INVITE, as the service passes it on."""

    name: str
    value: str


@dataclass(frozen=True)
class WebhookEvent:
    """A verified webhook event of any type (the service adds types: none is refused).

    ``webhook_id`` is the delivery's ``webhook-id``, the same on every retry of one delivery:
    the key to handle each delivery once.
    """

    id: str
    type: str
    created_at: int | None
    data: dict[str, Any]
    webhook_id: str
    raw: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class IncomingCall(WebhookEvent):
    """``realtime.call.incoming``: a SIP call waits to be accepted, rejected or referred."""

    call_id: str
    sip_headers: tuple[SipHeader, ...]

    def sip_header(self, name: str) -> str | None:
        """The first value of a SIP header (``From``, ``To``, ``Call-ID``...), any case."""
        wanted = name.lower()
        return next((h.value for h in self.sip_headers if h.name.lower() == wanted), None)


class WebhookVerifier:
    """Verifies and types the webhooks signed with one secret.

    Raises:
        LocalProtocolError: the secret is empty, or ``whsec_`` followed by invalid base64
            (a configuration mistake, found at once rather than as failed deliveries).
    """

    __slots__ = ("_key", "max_body_size", "tolerance")

    def __init__(
        self,
        secret: str | bytes,
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        max_body_size: int = MAX_WEBHOOK_BODY_SIZE,
    ) -> None:
        self._key = _key_of(secret)
        if not (isinstance(tolerance, (int, float)) and 0 <= tolerance < math.inf):
            raise LocalProtocolError(f"tolerance must be a finite number >= 0, not {tolerance!r}")
        self.tolerance = float(tolerance)
        self.max_body_size = max_body_size

    def __repr__(self) -> str:  # never the secret
        return f"WebhookVerifier(tolerance={self.tolerance:g})"

    def verify(
        self,
        body: bytes | bytearray | memoryview | str,
        headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]],
        *,
        now: float,
    ) -> str:
        """Check that ``body`` is what the service signed, recently; returns its
        ``webhook-id``. Raises :class:`WebhookError` otherwise."""
        try:
            data = _bytes_of(body)
        except UnicodeEncodeError:  # (a str with a lone surrogate: no service sent that)
            raise WebhookError("the webhook body is not UTF-8 text") from None
        if len(data) > self.max_body_size:
            raise WebhookError(
                f"a webhook body of {len(data)} bytes exceeds max_body_size ({self.max_body_size})"
            )
        webhook_id, timestamp, signatures = _webhook_headers(headers)
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > _TIMESTAMP_DIGITS:
            raise WebhookError("webhook-timestamp is not a Unix time in whole seconds")
        age = now - int(timestamp)
        if not age <= self.tolerance:  # (a NaN now refuses too)
            raise WebhookError(f"webhook-timestamp is too old ({age:.0f} s)")
        if age < -self.tolerance:
            raise WebhookError(f"webhook-timestamp is too new ({-age:.0f} s ahead)")
        expected = _signature(self._key, webhook_id, timestamp, data)
        matched = False
        for entry in signatures.split():
            version, _, candidate = entry.partition(",")
            if version == "v1" and candidate.isascii():  # (other versions: not ours to check)
                matched |= hmac.compare_digest(expected, candidate.encode("ascii"))
        if not matched:
            raise WebhookError("no webhook-signature matches the body: not signed with this secret")
        return webhook_id

    def unwrap(
        self,
        body: bytes | bytearray | memoryview | str,
        headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]],
        *,
        now: float,
    ) -> WebhookEvent:
        """:meth:`verify`, then the event: an :class:`IncomingCall` for
        ``realtime.call.incoming``, a :class:`WebhookEvent` for any other type."""
        webhook_id = self.verify(body, headers, now=now)
        return parse_webhook_event(body, webhook_id)


def parse_webhook_event(
    body: bytes | bytearray | memoryview | str, webhook_id: str = ""
) -> WebhookEvent:
    """The event in a webhook body (verify it first: :meth:`WebhookVerifier.unwrap`).

    Raises:
        WebhookError: the body is not a JSON object with string ``id`` and ``type``, or an
            incoming call lacks its ``call_id`` or has malformed SIP headers.
    """
    try:
        raw = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError, UnicodeError) as exc:
        raise WebhookError(f"the webhook body is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise WebhookError("the webhook body is not a JSON object")
    event_id, kind, created_at, data = (
        raw.get("id"),
        raw.get("type"),
        raw.get("created_at"),
        raw.get("data", {}),
    )
    if not isinstance(event_id, str) or not isinstance(kind, str):
        raise WebhookError("a webhook event needs a string id and type")
    if not isinstance(data, dict):
        raise WebhookError(f"{kind}: data is not an object")
    created = created_at if type(created_at) is int else None
    if kind != INCOMING_CALL:
        return WebhookEvent(event_id, kind, created, data, webhook_id, raw)
    call_id = data.get("call_id")
    if not isinstance(call_id, str) or not call_id:
        raise WebhookError(f"{kind}: data.call_id is not a non-empty string")
    headers = data.get("sip_headers", [])
    if not isinstance(headers, list) or not all(
        isinstance(h, dict) and isinstance(h.get("name"), str) and isinstance(h.get("value"), str)
        for h in headers
    ):
        raise WebhookError(f"{kind}: data.sip_headers is not a list of {{name, value}} strings")
    sip = tuple(SipHeader(h["name"], h["value"]) for h in headers)
    return IncomingCall(event_id, kind, created, data, webhook_id, raw, call_id, sip)


def sign_webhook(
    body: bytes | bytearray | memoryview | str,
    secret: str | bytes,
    *,
    webhook_id: str,
    timestamp: int,
) -> dict[str, str]:
    """The ``webhook-*`` headers the service sends with ``body`` (for tests and emulators)."""
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0:
        raise LocalProtocolError(f"timestamp must be Unix seconds (an int >= 0), not {timestamp!r}")
    if not webhook_id or not webhook_id.isprintable() or " " in webhook_id:
        raise LocalProtocolError("webhook_id must be a non-empty token (no spaces)")
    data = _bytes_of(body)
    signature = _signature(_key_of(secret), webhook_id, str(timestamp), data)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + signature.decode("ascii"),
    }


def _key_of(secret: str | bytes) -> bytes:
    if isinstance(secret, str) and secret.startswith(_SECRET_PREFIX):
        try:
            key = base64.b64decode(secret[len(_SECRET_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            raise LocalProtocolError("the webhook secret is whsec_ and invalid base64") from None
    elif isinstance(secret, (bytes, str)):
        key = _bytes_of(secret)
    else:
        raise LocalProtocolError(f"the webhook secret must be str or bytes, not {type(secret)}")
    if not key:
        raise LocalProtocolError("the webhook secret is empty")
    return key


def _bytes_of(value: bytes | bytearray | memoryview | str) -> bytes:
    """Bytes as given, text as UTF-8: what is signed and what keys the signature."""
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _signature(key: bytes, webhook_id: str, timestamp: str, body: bytes) -> bytes:
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.".encode(), hashlib.sha256)
    mac.update(body)
    return base64.b64encode(mac.digest())


def _webhook_headers(
    headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]],
) -> tuple[str, str, str]:
    """The three ``webhook-*`` values, by name in any case; each exactly once."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    found: dict[str, str] = {}
    for name, value in pairs:
        key = (name.decode("latin-1") if isinstance(name, bytes) else str(name)).lower()
        if key not in _HEADERS:
            continue
        if key in found:
            raise WebhookError(f"{key} appears twice")
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        if len(text) > MAX_HEADER_SIZE:
            raise WebhookError(f"{key} is longer than {MAX_HEADER_SIZE} characters")
        try:
            text.encode("utf-8")  # (what is signed: a lone surrogate cannot be)
        except UnicodeEncodeError:
            raise WebhookError(f"{key} is not UTF-8 text") from None
        found[key] = text.strip()
    missing = [name for name in _HEADERS if not found.get(name)]
    if missing:
        raise WebhookError(f"missing webhook header: {', '.join(missing)}")
    return found["webhook-id"], found["webhook-timestamp"], found["webhook-signature"]
