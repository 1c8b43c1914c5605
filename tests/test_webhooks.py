"""Webhook verification (rtproto.wire.webhooks): the Standard Webhooks example vector, the
official ``openai`` SDK as the peer that verifies what we sign, the timestamp window, header
handling, typed events, and the fuzz harness's contract."""

from __future__ import annotations

import json
import time
from pathlib import Path

import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtproto.errors import LocalProtocolError, RemoteProtocolError
from rtproto.wire.webhooks import (
    DEFAULT_TOLERANCE,
    INCOMING_CALL,
    IncomingCall,
    SipHeader,
    WebhookError,
    WebhookEvent,
    WebhookVerifier,
    parse_webhook_event,
    sign_webhook,
)

from .fuzzing import load_harness

ROOT = Path(__file__).resolve().parent.parent

# The example of the Standard Webhooks specification (standard-webhooks/standard-webhooks,
# spec/standard-webhooks.md), which the service's signatures follow.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_HEADERS = {
    "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
    "webhook-timestamp": "1614265330",
    "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
}
SPEC_BODY = b'{"test": 2432232314}'
SPEC_NOW = 1614265330.0

SECRET = "whsec_" + "dGhlLXNpcC1wcm9qZWN0LXNlY3JldA=="  # base64 of "the-sip-project-secret"
NOW = 1_750_287_018
CALL = {  # realtime-protocol.md section 1.6
    "object": "event",
    "id": "evt_685343a1381c819085d44c354e1b330e",
    "type": "realtime.call.incoming",
    "created_at": 1750287018,
    "data": {
        "call_id": "rtc_u1_9c6574da8b8a41a18da9308f4ad974ce",
        "sip_headers": [
            {"name": "From", "value": "sip:+142555512112@sip.example.com"},
            {"name": "To", "value": "sip:+18005551212@sip.example.com"},
            {"name": "Call-ID", "value": "03782086-4ce9-44bf-8b0d-4e303d2cc590"},
        ],
    },
}
CALL_BODY = json.dumps(CALL).encode()


def signed(body: bytes = CALL_BODY, timestamp: int = NOW, secret: str = SECRET) -> dict[str, str]:
    return sign_webhook(body, secret, webhook_id="wh_1", timestamp=timestamp)


def test_the_standard_webhooks_example_verifies() -> None:
    verifier = WebhookVerifier(SPEC_SECRET)
    assert verifier.verify(SPEC_BODY, SPEC_HEADERS, now=SPEC_NOW) == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    made = sign_webhook(
        SPEC_BODY, SPEC_SECRET, webhook_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330
    )
    assert made == SPEC_HEADERS


def test_the_openai_sdk_verifies_what_we_sign() -> None:
    """The official SDK's ``webhooks.unwrap`` (which reads the real clock) accepts our
    headers and reads the same call; with another secret it refuses them."""
    now = int(time.time())
    headers = signed(timestamp=now)
    client = openai.OpenAI(api_key="sk-test", webhook_secret=SECRET)
    event = client.webhooks.unwrap(CALL_BODY, headers)
    assert event.type == INCOMING_CALL
    ours = WebhookVerifier(SECRET).unwrap(CALL_BODY, headers, now=now)
    assert isinstance(ours, IncomingCall)
    assert (ours.id, ours.call_id) == (event.id, event.data.call_id)
    assert [(h.name, h.value) for h in ours.sip_headers] == [
        (h.name, h.value) for h in event.data.sip_headers
    ]
    with pytest.raises(openai.InvalidWebhookSignatureError):
        client.webhooks.verify_signature(CALL_BODY, headers, secret="whsec_b3RoZXI=")


def test_an_incoming_call_is_typed() -> None:
    event = WebhookVerifier(SECRET).unwrap(CALL_BODY, signed(), now=NOW)
    assert isinstance(event, IncomingCall)
    assert event.call_id == "rtc_u1_9c6574da8b8a41a18da9308f4ad974ce"
    assert event.webhook_id == "wh_1" and event.created_at == 1750287018
    assert event.sip_headers[0] == SipHeader("From", "sip:+142555512112@sip.example.com")
    assert event.sip_header("call-id") == "03782086-4ce9-44bf-8b0d-4e303d2cc590"
    assert event.sip_header("Contact") is None
    assert event.raw == CALL and event.data == CALL["data"]


def test_other_event_types_pass_through() -> None:
    body = b'{"object":"event","id":"evt_2","type":"batch.completed","created_at":"x"}'
    event = WebhookVerifier(SECRET).unwrap(body, signed(body), now=NOW)
    assert type(event) is WebhookEvent
    assert (event.id, event.type, event.created_at, event.data) == (
        "evt_2",
        "batch.completed",
        None,
        {},
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{", "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"id":"evt","type":3}', "string id and type"),
        (b'{"type":"x"}', "string id and type"),
        (b'{"id":"e","type":"x","data":[]}', "data is not an object"),
        (b'{"id":"e","type":"realtime.call.incoming","data":{}}', "call_id"),
        (b'{"id":"e","type":"realtime.call.incoming","data":{"call_id":""}}', "call_id"),
        (
            b'{"id":"e","type":"realtime.call.incoming","data":{"call_id":"rtc",'
            b'"sip_headers":[{"name":"To"}]}}',
            "sip_headers",
        ),
        (
            b'{"id":"e","type":"realtime.call.incoming","data":{"call_id":"rtc","sip_headers":{}}}',
            "sip_headers",
        ),
    ],
)
def test_a_signed_body_that_is_not_an_event_is_refused(body: bytes, problem: str) -> None:
    verifier = WebhookVerifier(SECRET)
    assert verifier.verify(body, signed(body), now=NOW) == "wh_1"
    with pytest.raises(WebhookError, match=problem) as caught:
        verifier.unwrap(body, signed(body), now=NOW)
    assert caught.value.hint == 400


def test_a_call_without_sip_headers_has_none() -> None:
    body = b'{"id":"e","type":"realtime.call.incoming","data":{"call_id":"rtc_1"}}'
    event = parse_webhook_event(body)
    assert isinstance(event, IncomingCall) and event.sip_headers == () and event.webhook_id == ""


@pytest.mark.parametrize(
    "change",
    [
        lambda h, b: (h, b.replace(b"+1425", b"+1426")),  # the body
        lambda h, b: (h, b + b" "),  # even whitespace: the raw bytes are signed
        lambda h, b: ({**h, "webhook-id": "wh_2"}, b),
        lambda h, b: ({**h, "webhook-timestamp": str(NOW + 1)}, b),
        lambda h, b: ({**h, "webhook-signature": h["webhook-signature"][:-2] + "A="}, b),
        lambda h, b: ({**h, "webhook-signature": "v2," + h["webhook-signature"][3:]}, b),
        lambda h, b: ({**h, "webhook-signature": h["webhook-signature"][3:]}, b),
        lambda h, b: ({**h, "webhook-signature": "v1,é" + h["webhook-signature"][4:]}, b),
        lambda h, b: (signed(b, secret="whsec_b3RoZXI="), b),
    ],
)
def test_anything_changed_is_refused(change: object) -> None:
    headers, body = change(signed(), CALL_BODY)  # type: ignore[operator]
    with pytest.raises(WebhookError, match="no webhook-signature matches") as caught:
        WebhookVerifier(SECRET).verify(body, headers, now=NOW)
    assert isinstance(caught.value, RemoteProtocolError) and caught.value.hint == 400


def test_one_matching_signature_of_several_is_enough() -> None:
    """Several entries, space-separated: the service signs with old and new secrets while one
    is being rotated."""
    old = signed(secret="whsec_b2xk")["webhook-signature"]
    new = signed()["webhook-signature"]
    for entries in (f"{old} {new}", f"{new} {old}", f"  v2,abc {new}  "):
        headers = {**signed(), "webhook-signature": entries}
        assert WebhookVerifier(SECRET).verify(CALL_BODY, headers, now=NOW) == "wh_1"


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (0, True),
        (DEFAULT_TOLERANCE, True),
        (DEFAULT_TOLERANCE + 1, False),
        (-DEFAULT_TOLERANCE, True),
        (-DEFAULT_TOLERANCE - 1, False),
    ],
)
def test_the_timestamp_window(offset: float, accepted: bool) -> None:
    verifier = WebhookVerifier(SECRET)
    if accepted:
        verifier.verify(CALL_BODY, signed(), now=NOW + offset)
    else:
        with pytest.raises(WebhookError, match="too old" if offset > 0 else "too new"):
            verifier.verify(CALL_BODY, signed(), now=NOW + offset)


def test_a_tolerance_of_its_own() -> None:
    verifier = WebhookVerifier(SECRET, tolerance=10)
    verifier.verify(CALL_BODY, signed(), now=NOW + 10)
    with pytest.raises(WebhookError, match="too old"):
        verifier.verify(CALL_BODY, signed(), now=NOW + 11)
    with pytest.raises(WebhookError, match="too old"):
        verifier.verify(CALL_BODY, signed(), now=float("nan"))
    for bad in (-1, float("inf"), float("nan"), "300"):
        with pytest.raises(LocalProtocolError, match="tolerance"):
            WebhookVerifier(SECRET, tolerance=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "timestamp",
    # (the fullwidth digits pass str.isdigit() and int(), not the check: ASCII only)
    ["-5", "+5", "1.5", "1e9", "\uff11\uff12\uff13", "9" * 13, "0x10"],
)
def test_a_timestamp_not_in_whole_seconds_is_refused(timestamp: str) -> None:
    headers = {**signed(), "webhook-timestamp": timestamp}
    with pytest.raises(WebhookError, match="not a Unix time in whole seconds"):
        WebhookVerifier(SECRET).verify(CALL_BODY, headers, now=NOW)


def test_headers_in_any_form() -> None:
    """A mapping in any case, or (name, value) pairs of str or bytes as h11 hands them over;
    other headers are ignored."""
    headers = signed()
    verifier = WebhookVerifier(SECRET)
    forms: list[object] = [
        {k.upper(): v for k, v in headers.items()},
        [(k.encode(), v.encode()) for k, v in headers.items()],
        [("Content-Type", "application/json"), *headers.items()],
        {k.title(): f"  {v} " for k, v in headers.items()},
    ]
    for form in forms:
        assert verifier.verify(CALL_BODY, form, now=NOW) == "wh_1"  # type: ignore[arg-type]
    assert verifier.verify(CALL_BODY.decode(), headers, now=NOW) == "wh_1"
    assert verifier.verify(bytearray(CALL_BODY), headers, now=NOW) == "wh_1"


def test_missing_repeated_and_oversized_headers_are_refused() -> None:
    headers = signed()
    verifier = WebhookVerifier(SECRET)
    for name in headers:
        without = {k: v for k, v in headers.items() if k != name}
        with pytest.raises(WebhookError, match=f"missing webhook header: {name}"):
            verifier.verify(CALL_BODY, without, now=NOW)
        with pytest.raises(WebhookError, match="missing"):
            verifier.verify(CALL_BODY, {**headers, name: "  "}, now=NOW)
    twice = [*headers.items(), ("Webhook-Signature", headers["webhook-signature"])]
    with pytest.raises(WebhookError, match="webhook-signature appears twice"):
        verifier.verify(CALL_BODY, twice, now=NOW)
    long = {**headers, "webhook-signature": "v1,x " * 2000}
    with pytest.raises(WebhookError, match="longer than"):
        verifier.verify(CALL_BODY, long, now=NOW)


def test_text_with_a_lone_surrogate_is_refused_not_a_crash() -> None:
    """Found by the Twilio harness in its twin parser: a str holding a lone surrogate (a
    framework decoding with ``surrogateescape``) cannot be encoded; it is refused, 400."""
    verifier = WebhookVerifier(SECRET)
    body = CALL_BODY.decode().replace("sip:+1425", "sip:\udc80")
    with pytest.raises(WebhookError, match="body is not UTF-8 text"):
        verifier.unwrap(body, signed(), now=NOW)
    with pytest.raises(WebhookError, match="not JSON"):
        parse_webhook_event(body)
    with pytest.raises(WebhookError, match="webhook-id is not UTF-8 text"):
        verifier.verify(CALL_BODY, {**signed(), "webhook-id": "wh_\udc80"}, now=NOW)


def test_the_body_is_bounded() -> None:
    body = b" " * 2049
    verifier = WebhookVerifier(SECRET, max_body_size=2048)
    with pytest.raises(WebhookError, match="2049 bytes exceeds max_body_size"):
        verifier.verify(body, signed(body), now=NOW)
    verifier.verify(body[:-1], signed(body[:-1]), now=NOW)


def test_secrets() -> None:
    """``whsec_`` is base64 (as the SDKs read it); any other str is its UTF-8 bytes; the
    secret never shows in a repr or an error."""
    raw = sign_webhook(b"x", "plain-secret", webhook_id="wh", timestamp=1)
    assert WebhookVerifier(b"plain-secret").verify(b"x", raw, now=1) == "wh"
    assert WebhookVerifier("plain-secret").verify(b"x", raw, now=1) == "wh"
    verifier = WebhookVerifier(SECRET)
    assert SECRET[6:] not in repr(verifier) and repr(verifier) == "WebhookVerifier(tolerance=300)"
    try:
        verifier.verify(CALL_BODY, signed(secret="whsec_b3RoZXI="), now=NOW)
    except WebhookError as exc:
        assert SECRET[6:] not in str(exc) + repr(exc)
    for bad, problem in (("", "empty"), ("whsec_", "empty"), ("whsec_!!", "invalid base64")):
        with pytest.raises(LocalProtocolError, match=problem):
            WebhookVerifier(bad)
    with pytest.raises(LocalProtocolError, match="str or bytes"):
        WebhookVerifier(None)  # type: ignore[arg-type]


def test_signing_refuses_what_cannot_be_sent() -> None:
    for timestamp in (-1, 1.5, True):
        with pytest.raises(LocalProtocolError, match="timestamp"):
            sign_webhook(b"", SECRET, webhook_id="wh", timestamp=timestamp)  # type: ignore[arg-type]
    for webhook_id in ("", "wh 1", "wh\n"):
        with pytest.raises(LocalProtocolError, match="webhook_id"):
            sign_webhook(b"", SECRET, webhook_id=webhook_id, timestamp=1)


@given(
    body=st.binary(max_size=500),
    webhook_id=st.from_regex(r"[A-Za-z0-9_]{1,40}", fullmatch=True),
    timestamp=st.integers(0, 10**11),
    skew=st.integers(-300, 300),
)
def test_what_we_sign_verifies(body: bytes, webhook_id: str, timestamp: int, skew: int) -> None:
    headers = sign_webhook(body, SECRET, webhook_id=webhook_id, timestamp=timestamp)
    assert WebhookVerifier(SECRET).verify(body, headers, now=timestamp + skew) == webhook_id


# --- the fuzz harness's contract over its corpus and random inputs ---------------------------


HARNESS = load_harness("webhooks")
CORPUS = ROOT / "fuzz" / "corpus" / "webhooks"


@pytest.mark.parametrize("path", sorted(CORPUS.iterdir()), ids=lambda p: p.name)
def test_fuzz_corpus(path: Path) -> None:
    HARNESS.check_one(path.read_bytes())


def test_fuzz_corpus_matches_seeds() -> None:
    for name, data in HARNESS.seeds().items():
        assert (CORPUS / name).read_bytes() == data


@given(st.binary(max_size=400))
def test_fuzz_random(data: bytes) -> None:
    HARNESS.check_one(data)


@given(
    st.sampled_from(sorted(HARNESS.seeds().values())), st.binary(max_size=8), st.integers(0, 900)
)
def test_fuzz_mutated_seeds(seed: bytes, insert: bytes, at: int) -> None:
    HARNESS.check_one(seed[:at] + insert + seed[at:])


def test_limits_at_their_edges() -> None:
    """The default body bound, a header of exactly the largest size, 12-digit timestamps,
    and a tolerance of 0 (only the exact second)."""
    verifier = WebhookVerifier(SECRET)
    body = b" " * (1024 * 1024)
    verifier.verify(body, signed(body), now=NOW)
    with pytest.raises(WebhookError, match="exceeds max_body_size"):
        verifier.verify(body + b" ", signed(body + b" "), now=NOW)
    headers = signed()
    edge = headers["webhook-signature"] + " " * (8192 - len(headers["webhook-signature"]))
    assert len(edge) == 8192
    verifier.verify(CALL_BODY, {**headers, "webhook-signature": edge}, now=NOW)
    with pytest.raises(WebhookError, match="longer than 8192"):
        verifier.verify(CALL_BODY, {**headers, "webhook-signature": edge + " "}, now=NOW)
    far = sign_webhook(CALL_BODY, SECRET, webhook_id="wh", timestamp=10**12 - 1)
    with pytest.raises(WebhookError, match="too new"):  # read, then out of the window
        verifier.verify(CALL_BODY, far, now=NOW)
    exact = WebhookVerifier(SECRET, tolerance=0)
    exact.verify(CALL_BODY, signed(), now=NOW)
    with pytest.raises(WebhookError, match="too old"):
        exact.verify(CALL_BODY, signed(), now=NOW + 0.5)


def test_events_are_immutable_and_compare_without_their_raw_object() -> None:
    event = parse_webhook_event(CALL_BODY, "wh_1")
    with pytest.raises(AttributeError):
        event.call_id = "rtc_2"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        event.sip_headers[0].value = "sip:someone-else"  # type: ignore[misc]
    assert "raw=" not in repr(event) and "rtc_u1_" in repr(event)
    same = IncomingCall(
        event.id,
        event.type,
        event.created_at,
        event.data,
        event.webhook_id,
        {},
        event.call_id,
        event.sip_headers,
    )
    assert same == event
