"""SIP calls on the emulator, end to end: the incoming-call webhook, call control and the
sideband socket (rtproto.server.sip, rtproto.adapters._sip_server, rtproto.adapters.server).

The application side is played by real clients: an HTTP server on 127.0.0.1 receives the
webhook, the official ``openai`` SDK verifies it (``webhooks.unwrap``) and accepts, rejects,
refers or hangs up (``realtime.calls.*``), and rtproto's thread driver opens the sideband
socket in the ``sip`` profile.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest
from rtproto.adapters import connect_sync
from rtproto.adapters.server import RunningServer, ServerConfig, start_in_thread

from rtproto.errors import LocalProtocolError
from rtproto.server import ServerOptions, ServerSession
from rtproto.server.sip import (
    CALL_NOT_FOUND,
    DEFAULT_REJECT_STATUS,
    ControlAnswer,
    SidebandRefused,
    SipCall,
    SipCallState,
)
from rtproto.session import ConnectionChange, ConnectionStatus, SessionOptions, TurnDone
from rtproto.wire.server import ServerWebSocket
from rtproto.wire.signalling import (
    MAX_JSON_BODY_SIZE,
    SIP_CALL_PATH,
    WEBHOOK_USER_AGENT,
    CallerRequest,
    SignallingError,
    SipCallRequest,
    WebhookDelivery,
    parse_server_request,
)
from rtproto.wire.webhooks import IncomingCall, WebhookVerifier

KEY = "sk-test-sip"
SECRET = "whsec_" + "c2lwLXRlc3Qtc2VjcmV0LWtleS0xMjM0NTY="  # base64 of a test key
STEP = 10.0
#: 0.1 s of silence: a caller who says nothing (no turn), for the control tests.
QUIET = bytes(4800)


class Webhooks:
    """The application's webhook endpoint: records each delivery, answers ``status``."""

    def __init__(self) -> None:
        self.received: queue.Queue[tuple[bytes, dict[str, str]]] = queue.Queue()
        self.status = 200
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hooks.received.put((body, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(hooks.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def next(self) -> tuple[bytes, dict[str, str]]:
        return self.received.get(timeout=STEP)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningServer]:
    with start_in_thread(ServerConfig(api_key=KEY)) as running:
        yield running


@pytest.fixture
def hooks() -> Iterator[Webhooks]:
    endpoint = Webhooks()
    yield endpoint
    endpoint.close()


def sdk(emulator: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=emulator.base_url, webhook_secret=SECRET)


def sideband(emulator: RunningServer, call_id: str) -> Any:
    return connect_sync(
        f"{emulator.url}?call_id={call_id}",
        api_key=KEY,
        session=SessionOptions(profile="sip"),
    )


def test_a_call_answered_by_the_openai_sdk_and_driven_over_the_sideband(
    emulator: RunningServer, hooks: Webhooks
) -> None:
    line = emulator.place_sip_call(hooks.url, SECRET, caller="sip:+14155550123@carrier.example")
    assert line.webhook_status == 200
    body, headers = hooks.next()
    # the webhook is the service's: the SDK's verifier and ours both take it
    client = sdk(emulator)
    event = client.webhooks.unwrap(body, headers)
    assert event.type == "realtime.call.incoming"
    assert event.data.call_id == line.call_id
    assert {h.name: h.value for h in event.data.sip_headers}["From"] == (
        "sip:+14155550123@carrier.example"
    )
    ours = WebhookVerifier(SECRET).unwrap(body, headers, now=time.time())
    assert isinstance(ours, IncomingCall) and ours.call_id == line.call_id
    assert headers["user-agent"] == WEBHOOK_USER_AGENT
    assert headers["content-type"] == "application/json"
    # accept with the SDK, attach with rtproto, hear the caller, answer, hang up
    client.realtime.calls.accept(
        line.call_id, type="realtime", instructions="You answer the phone.", model="gpt-realtime"
    )
    assert line.call.state is SipCallState.ACCEPTED
    with sideband(emulator, line.call_id) as conn:
        seen = []
        while not seen or not isinstance(seen[-1], TurnDone):
            item = conn.next_event(timeout=STEP)
            assert item is not None
            seen.append(item)
        names = [type(item).__name__ for item in seen]
        assert names.index("SessionCreated") < names.index("InputAudioBufferSpeechStarted")
        created = seen[names.index("SessionCreated")]
        assert created.session.instructions == "You answer the phone."  # accept's session
        with pytest.raises(Exception, match="sip"):
            conn.send_audio(b"\x00\x00" * 240)  # a SIP session's audio is the phone line's
        client.realtime.calls.hangup(line.call_id)
        rest = list(conn)
        assert isinstance(rest[-1], ConnectionChange)
        assert rest[-1].status is ConnectionStatus.DISCONNECTED and rest[-1].code == 1000
    assert emulator.wait_sip_call(line, STEP) == "hung up"
    assert line.heard_bytes > 24000  # the model's answer reached the caller (over 0.5 s)
    # the call is gone: the service's 404
    with pytest.raises(openai.NotFoundError) as caught:
        client.realtime.calls.hangup(line.call_id)
    assert caught.value.code == "call_id_not_found"


def test_rejected_calls_end_with_their_status(emulator: RunningServer, hooks: Webhooks) -> None:
    client = sdk(emulator)
    line = emulator.place_sip_call(hooks.url, SECRET, audio=QUIET)
    client.realtime.calls.reject(line.call_id, status_code=486)
    assert emulator.wait_sip_call(line, STEP) == "rejected"
    assert line.call.reject_status == 486
    line = emulator.place_sip_call(hooks.url, SECRET, audio=QUIET)
    client.realtime.calls.reject(line.call_id)
    assert emulator.wait_sip_call(line, STEP) == "rejected"
    assert line.call.reject_status == 603  # Decline, by default


def test_a_referred_call_closes_its_sideband(emulator: RunningServer, hooks: Webhooks) -> None:
    client = sdk(emulator)
    line = emulator.place_sip_call(hooks.url, SECRET, audio=QUIET)
    client.realtime.calls.accept(line.call_id, type="realtime")
    with sideband(emulator, line.call_id) as conn:
        assert conn.next_event(timeout=STEP) is not None
        client.realtime.calls.refer(line.call_id, target_uri="tel:+14155550100")
        events = list(conn)
    assert isinstance(events[-1], ConnectionChange) and events[-1].code == 1000
    assert emulator.wait_sip_call(line, STEP) == "referred"
    assert line.call.refer_target == "tel:+14155550100"


def test_the_caller_hangs_up(emulator: RunningServer, hooks: Webhooks) -> None:
    client = sdk(emulator)
    line = emulator.place_sip_call(hooks.url, SECRET, audio=QUIET, hang_up_after=0.1)
    client.realtime.calls.accept(line.call_id, type="realtime")
    with sideband(emulator, line.call_id) as conn:
        events = list(conn)
    assert isinstance(events[-1], ConnectionChange) and events[-1].code == 1000
    assert emulator.wait_sip_call(line, STEP) == "caller hung up"


def test_the_call_runs_without_a_sideband_and_takes_a_new_one(
    emulator: RunningServer, hooks: Webhooks
) -> None:
    """As on the service: the session runs from the accept on; sockets come and go."""
    client = sdk(emulator)
    line = emulator.place_sip_call(hooks.url, SECRET)
    client.realtime.calls.accept(line.call_id, type="realtime")
    with sideband(emulator, line.call_id) as conn:
        assert type(conn.next_event(timeout=STEP)).__name__ == "ConnectionChange"
    deadline = time.monotonic() + STEP
    while line.heard_bytes == 0:  # answered with no socket attached
        assert time.monotonic() < deadline, "the model never answered the caller"
        time.sleep(0.05)
    assert line.call.state is SipCallState.ACCEPTED
    with sideband(emulator, line.call_id) as conn:
        seen = [conn.next_event(timeout=STEP) for _ in range(3)]
        created = seen[2]
        assert type(created).__name__ == "SessionCreated"  # the running session's
        line.press("1#")
        keys = []
        while len(keys) < 2:
            item = conn.next_event(timeout=STEP)
            if type(item).__name__ == "InputAudioBufferDtmfEventReceived":
                keys.append(item.event)  # type: ignore[union-attr]
        assert keys == ["1", "#"]
        client.realtime.calls.hangup(line.call_id)
    assert emulator.wait_sip_call(line, STEP) == "hung up"
    with pytest.raises(ValueError, match="keypad"):
        line.press("x")


def test_wrong_requests_get_the_services_errors(emulator: RunningServer, hooks: Webhooks) -> None:
    client = sdk(emulator)
    line = emulator.place_sip_call(hooks.url, SECRET, audio=QUIET)
    # a sideband socket before the call is accepted, and for no call at all
    for call_id, code in ((line.call_id, "call_not_accepted"), ("rtc_nope", "call_id_not_found")):
        with sideband(emulator, call_id) as conn:
            events = list(conn)
        errors = [e for e in events if type(e).__name__ == "ErrorEvent"]
        assert [e.error.code for e in errors] == [code]
        assert events[-1].code == 4000  # type: ignore[union-attr]
    with pytest.raises(openai.BadRequestError, match="accept it first") as caught:
        client.realtime.calls.refer(line.call_id, target_uri="tel:+1")
    assert caught.value.code == "call_not_accepted"
    with pytest.raises(openai.BadRequestError, match="threshold"):
        client.realtime.calls.accept(
            line.call_id,
            type="realtime",
            audio={"input": {"turn_detection": {"type": "server_vad", "threshold": 0.7}}},
        )
    client.realtime.calls.accept(line.call_id, type="realtime")
    with pytest.raises(openai.BadRequestError, match="already accepted"):
        client.realtime.calls.accept(line.call_id, type="realtime")
    with pytest.raises(openai.BadRequestError, match="hang up"):
        client.realtime.calls.reject(line.call_id)
    with pytest.raises(openai.BadRequestError, match="target_uri"):
        client.realtime.calls.refer(line.call_id, target_uri="mailto:x@example.com")
    with sideband(emulator, line.call_id) as first:
        assert first.next_event(timeout=STEP) is not None
        with sideband(emulator, line.call_id) as second:
            codes = [
                e.error.code for e in second if type(e).__name__ == "ErrorEvent"
            ]  # one socket at a time
        assert codes == ["call_already_attached"]
        client.realtime.calls.hangup(line.call_id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.realtime.calls.accept(line.call_id, type="realtime")
    assert caught.value.code == "call_id_not_found"


def test_an_unanswered_call_stops_ringing(emulator: RunningServer, hooks: Webhooks) -> None:
    hooks.status = 500  # the application's endpoint fails: the call rings out
    line = emulator.place_sip_call(hooks.url, SECRET, audio=QUIET, ring_timeout=0.2)
    assert line.webhook_status == 500
    assert emulator.wait_sip_call(line, STEP) == "no answer"


def test_an_unreachable_webhook_is_recorded(emulator: RunningServer) -> None:
    line = emulator.place_sip_call(
        "http://127.0.0.1:9/webhook", SECRET, audio=QUIET, ring_timeout=0.1
    )
    assert line.webhook_status is None and line.webhook_error
    assert emulator.wait_sip_call(line, STEP) == "no answer"


# ------------------------------------------------------------------------ the pure call --


def call() -> SipCall:
    return SipCall("rtc_1", caller="sip:a@x", callee="sip:b@y", sip_call_id="c1", created_at=7)


def test_the_webhook_payload_is_the_services() -> None:
    assert call().incoming_event("evt_1") == {
        "object": "event",
        "id": "evt_1",
        "type": "realtime.call.incoming",
        "created_at": 7,
        "data": {
            "call_id": "rtc_1",
            "sip_headers": [
                {"name": "From", "value": "sip:a@x"},
                {"name": "To", "value": "sip:b@y"},
                {"name": "Call-ID", "value": "c1"},
            ],
        },
    }


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({}, 400, "type"),
        ({"type": "transcription"}, 400, "type"),
        ({"type": "realtime", "voice": "x"}, 400, "voice"),
        ({"type": "realtime", "output_modalities": ["smell"]}, 400, "output_modalities"),
        ({"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad",
          "silence_duration_ms": 200}}}}, 400, "audio.input.turn_detection.silence_duration_ms"),
        ({"type": "realtime", "audio": {"input": {}}}, 200, None),
    ],
)  # fmt: skip
def test_accept_checks_the_session(body: dict[str, Any], status: int, param: str | None) -> None:
    sip = call()
    answer = sip.control("accept", body)
    assert answer.status == status
    if status == 200:
        assert sip.state is SipCallState.ACCEPTED and sip.config == body
    else:
        assert answer.error is not None and answer.error["param"] is not None
        assert answer.error["param"].startswith(param or "")
        assert sip.state is SipCallState.RINGING


@pytest.mark.parametrize("status", [399, 700, "486", True, None])
def test_reject_takes_a_sip_error_status(status: object) -> None:
    sip = call()
    answer = sip.control("reject", {"status_code": status})
    assert answer.status == 400 and answer.error is not None
    assert answer.error["param"] == "status_code"


def test_refer_needs_a_target() -> None:
    sip = call()
    sip.control("accept", {"type": "realtime"})
    answer = sip.control("refer", {})
    assert answer.error is not None and answer.error["code"] == "missing_required_parameter"
    assert sip.control("refer", {"target_uri": "SIPS:desk@example.com"}).status == 200
    assert sip.state is SipCallState.ENDED and sip.end_reason == "referred"


def test_an_ended_call_is_unknown() -> None:
    sip = call()
    assert sip.control("hangup", {}).status == 200
    assert sip.end("again") is False and sip.end_reason == "hung up"
    for action in ("accept", "reject", "refer", "hangup", "other"):
        answer = sip.control(action, {})
        assert answer.status == 404 and answer.error is not None
        assert answer.error["message"] == CALL_NOT_FOUND
    with pytest.raises(SidebandRefused) as refused:
        sip.attach()
    assert refused.value.code == "call_id_not_found"
    assert repr(sip) == "<SipCall rtc_1 ended>"


def test_an_unknown_action_is_not_found() -> None:
    answer = call().control("transfer", {})
    assert answer.status == 404 and answer.error is not None
    assert answer.error["message"].startswith("Invalid URL (POST /v1/realtime/calls/rtc_1/")


def test_the_webhook_delivery_request() -> None:
    delivery = WebhookDelivery(
        "http://127.0.0.1:9/hook", call().incoming_event("evt_1"), SECRET,
        webhook_id="wh_1", timestamp=1_750_000_000,
    )  # fmt: skip
    request = delivery.data_to_send()
    head, body = request.split(b"\r\n\r\n", 1)
    assert head.startswith(b"POST /hook HTTP/1.1\r\n")
    assert b"authorization" not in head.lower()
    assert f"User-Agent: {WEBHOOK_USER_AGENT}".encode() in head
    assert b"webhook-id: wh_1" in head and b"webhook-timestamp: 1750000000" in head
    headers = dict(
        line.split(": ", 1) for line in head.decode().split("\r\n")[1:]
    )  # the signature checks out with the SDK's verifier
    client = openai.OpenAI(api_key="x", webhook_secret=SECRET)
    with pytest.raises(openai.InvalidWebhookSignatureError, match="too old"):
        client.webhooks.unwrap(body, headers)
    assert json.loads(body)["data"]["call_id"] == "rtc_1"
    assert delivery.receive_data(b"HTTP/1.1 204 No Content\r\n\r\n") == 204


def test_a_webhook_event_is_bounded() -> None:
    event = {"type": "realtime.call.incoming", "data": {"pad": "x" * MAX_JSON_BODY_SIZE}}
    with pytest.raises(LocalProtocolError, match="at most"):
        WebhookDelivery("http://h/hook", event, SECRET, webhook_id="wh_1", timestamp=1)


def test_line_audio_waits_for_an_open_session() -> None:
    ws = ServerWebSocket()
    ws.feed_audio(QUIET, 0.0)  # no session yet: nothing happens
    assert ws.data_to_send() == b"" and ws.session is None


# ------------------------------------------------- ringing the line over REST (the CLI's) --


def post(url: str, body: object, key: str = KEY) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=STEP) as response:
            body = response.read()
            return response.status, json.loads(body) if body else {}
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_line_rings_over_rest(hooks: Webhooks) -> None:
    config = ServerConfig(api_key=KEY, sip_webhook_url=hooks.url, sip_webhook_secret=SECRET)
    with start_in_thread(config) as emulator:
        ring = emulator.base_url + "/realtime/emulator/sip_calls"
        body = {
            "from": "sip:+1999@x",
            "audio": base64.b64encode(QUIET).decode(),
            "ring_timeout": 5,
            "hang_up_after": 0,
        }
        status, answer = post(ring, body)
        assert status == 200 and answer["webhook_status"] == 200
        assert answer["webhook_error"] is None
        sent, headers = hooks.next()
        event = sdk(emulator).webhooks.unwrap(sent, headers)
        assert event.data.call_id == answer["call_id"]
        assert event.data.sip_headers[0].value == "sip:+1999@x"
        line = emulator.server.sip_calls[answer["call_id"]]
        assert line.caller_audio == QUIET and line.hang_up_after == 0
        sdk(emulator).realtime.calls.reject(answer["call_id"])
        assert emulator.wait_sip_call(line, STEP) == "rejected"
        # a client secret may not ring the line; nor any key when a key is required
        assert post(ring, {}, key="ek_abc")[0] == 401
        assert post(ring, {}, key="sk-wrong")[0] == 401
    with start_in_thread(ServerConfig()) as bare:  # no webhook configured
        status, answer = post(bare.base_url + "/realtime/emulator/sip_calls", {})
        assert status == 400 and answer["error"]["code"] == "sip_not_configured"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"caller": "x"}, "Unknown parameter: 'caller'"),
        ({"from": 5}, "'from': expected a non-empty string"),
        ({"webhook_url": "ftp://x/"}, "'webhook_url'"),
        ({"webhook_url": "ws://x/"}, "'webhook_url'"),
        ({"audio": "%%%"}, "'audio': expected base64"),
        ({"audio": "AAAA"}, "even number of bytes"),
        ({"ring_timeout": 0}, "'ring_timeout'"),
        ({"hang_up_after": -1}, "'hang_up_after'"),
        ({"hang_up_after": True}, "'hang_up_after'"),
        ({"ring_timeout": 3601}, "'ring_timeout'"),
    ],
)
def test_a_bad_ring_request_is_a_400(body: dict[str, Any], message: str) -> None:
    headers = [("Authorization", "Bearer sk-x"), ("Content-Type", "application/json")]
    with pytest.raises(SignallingError) as refused:
        parse_server_request("POST", SIP_CALL_PATH, headers, json.dumps(body).encode())
    assert refused.value.status == 400 and message in str(refused.value)


def test_a_ring_request_parses() -> None:
    headers = [("Authorization", "Bearer sk-x")]
    body = {"webhook_url": "https://app.example/hook", "to": "sip:b@y", "ring_timeout": 2}
    parsed = parse_server_request("POST", SIP_CALL_PATH, headers, json.dumps(body).encode())
    assert parsed == SipCallRequest(
        webhook_url="https://app.example/hook",
        caller=None,
        callee="sip:b@y",
        audio=None,
        hang_up_after=None,
        ring_timeout=2.0,
        api_key="sk-x",
    )
    assert "sk-x" not in repr(parsed)


def test_the_cli_takes_a_sip_webhook(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import rtproto.adapters.server as driver

    from rtproto.cli import main as cli_main

    seen: dict[str, Any] = {}

    class FakeServer:
        url = "ws://127.0.0.1:1234/v1/realtime"
        base_url = "http://127.0.0.1:1234/v1"

    def fake_run(config: ServerConfig, **kwargs: Any) -> None:
        seen["config"] = config
        kwargs["on_ready"](FakeServer())

    monkeypatch.setattr(driver, "run_server", fake_run)
    monkeypatch.delenv("RTPROTO_SIP_WEBHOOK_SECRET", raising=False)
    argv = ["serve", "--sip-webhook-url", "http://127.0.0.1:9/hook"]
    assert cli_main.main(argv) == 2
    assert "RTPROTO_SIP_WEBHOOK_SECRET" in capsys.readouterr().err
    monkeypatch.setenv("RTPROTO_SIP_WEBHOOK_SECRET", SECRET)
    assert cli_main.main(argv) == 0
    config = seen["config"]
    assert (config.sip_webhook_url, config.sip_webhook_secret) == (
        "http://127.0.0.1:9/hook",
        SECRET,
    )
    err = capsys.readouterr().err
    assert "POST http://127.0.0.1:1234/v1/realtime/emulator/sip_calls rings the line" in err
    assert SECRET not in err and SECRET not in repr(config)
    assert cli_main.main(["serve", "--sip-webhook-url", "ftp://x/"]) == 2
    with pytest.raises(ValueError, match="must not be empty"):
        ServerConfig(sip_webhook_secret="")
    with pytest.raises(ValueError, match="bad sip_webhook_url"):
        ServerConfig(sip_webhook_url="http://")


@pytest.mark.parametrize(
    ("accepted", "action", "body", "status", "code", "state", "reason"),
    [
        (False, "accept", {"type": "realtime"}, 200, None, "accepted", None),
        (False, "reject", {}, 200, None, "ended", "rejected"),
        (False, "reject", {"status_code": 486}, 200, None, "ended", "rejected"),
        (False, "reject", {"status_code": 400}, 200, None, "ended", "rejected"),
        (False, "reject", {"status_code": 699}, 200, None, "ended", "rejected"),
        (False, "refer", {"target_uri": "tel:+1"}, 400, "call_not_accepted", "ringing", None),
        (False, "hangup", {}, 200, None, "ended", "hung up"),
        (True, "accept", {"type": "realtime"}, 400, "call_already_accepted", "accepted", None),
        (True, "reject", {}, 400, "call_already_accepted", "accepted", None),
        (True, "refer", {"target_uri": "tel:+1"}, 200, None, "ended", "referred"),
        (True, "refer", {"target_uri": "mailto:a@b"}, 400, "invalid_value", "accepted", None),
        (True, "refer", {"target_uri": 5}, 400, "invalid_value", "accepted", None),
        (True, "hangup", {}, 200, None, "ended", "hung up"),
    ],
)
def test_each_action_in_each_state(
    accepted: bool,
    action: str,
    body: dict[str, Any],
    status: int,
    code: str | None,
    state: str,
    reason: str | None,
) -> None:
    sip = call()
    if accepted:
        assert sip.control("accept", {"type": "realtime"}) == ControlAnswer(200)
    answer = sip.control(action, body)
    assert answer.status == status
    assert (answer.error or {}).get("code") == code
    if answer.error is not None:
        assert answer.error["type"] == "invalid_request_error" and answer.error["message"]
    assert (sip.state.value, sip.end_reason) == (state, reason)
    if action == "reject" and status == 200:
        assert sip.reject_status == body.get("status_code", 603)  # Decline by default
        assert DEFAULT_REJECT_STATUS == 603


def test_one_sideband_at_a_time_once_accepted() -> None:
    sip = call()
    assert sip.attached is False
    with pytest.raises(SidebandRefused, match="not been accepted") as refused:
        sip.attach()
    assert refused.value.code == "call_not_accepted" and str(refused.value) == refused.value.message
    sip.control("accept", {"type": "realtime"})
    sip.attach()
    assert sip.attached is True
    with pytest.raises(SidebandRefused) as refused:
        sip.attach()
    assert refused.value.code == "call_already_attached"
    sip.detach()  # the socket left: another may come
    sip.attach()
    assert sip.end("caller hung up") is True and sip.end_reason == "caller hung up"
    with pytest.raises(dataclasses.FrozenInstanceError):
        ControlAnswer(200).status = 201  # type: ignore[misc]


def test_a_running_session_takes_another_channel() -> None:
    session = ServerSession(ServerOptions(profile="sip"))
    assert session.started is False
    with pytest.raises(LocalProtocolError, match="running session"):
        session.attach(0.0)
    session.connection_made(0.0)
    first = [json.loads(m) for m in session.messages_to_send()]
    session.attach(1.0)  # a sideband socket joins: it gets the session as it is
    again = [json.loads(m) for m in session.messages_to_send()]
    assert session.started is True
    assert [m["type"] for m in again] == ["session.created"]
    assert again[0]["session"] == first[0]["session"]
    session.connection_lost(2.0)
    with pytest.raises(LocalProtocolError):
        session.attach(3.0)


def test_the_caller_presses_keys_and_hangs_up_over_rest(hooks: Webhooks) -> None:
    config = ServerConfig(api_key=KEY, sip_webhook_url=hooks.url, sip_webhook_secret=SECRET)
    with start_in_thread(config) as emulator:
        ring = emulator.base_url + "/realtime/emulator/sip_calls"
        call_id = post(ring, {"audio": base64.b64encode(QUIET).decode()})[1]["call_id"]
        status, answer = post(f"{ring}/{call_id}/dtmf", {"digits": "1"})
        assert (status, answer["error"]["code"]) == (400, "call_not_accepted")
        sdk(emulator).realtime.calls.accept(call_id, type="realtime")
        line = emulator.server.sip_calls[call_id]
        with sideband(emulator, call_id) as conn:
            assert conn.next_event(timeout=STEP) is not None
            request = urllib.request.Request(
                f"{ring}/{call_id}/dtmf",
                data=b'{"digits": "9*"}',
                headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=STEP) as response:
                assert response.status == 200 and response.read() == b""
            keys = []
            while len(keys) < 2:
                item = conn.next_event(timeout=STEP)
                if type(item).__name__ == "InputAudioBufferDtmfEventReceived":
                    keys.append(item.event)  # type: ignore[union-attr]
            assert keys == ["9", "*"]
            assert post(f"{ring}/{call_id}/hangup", {})[0] == 200
            events = list(conn)
        assert isinstance(events[-1], ConnectionChange) and events[-1].code == 1000
        assert emulator.wait_sip_call(line, STEP) == "caller hung up"
        status, answer = post(f"{ring}/{call_id}/hangup", {})
        assert (status, answer["error"]["code"]) == (404, "call_id_not_found")
        assert post(f"{ring}/{call_id}/dance", {})[0] == 404
        assert post(f"{ring}/{call_id}/dtmf", {"digits": "1"}, key="ek_1")[0] == 401


@pytest.mark.parametrize(
    ("action", "body", "message"),
    [
        ("dtmf", {}, "'digits'"),
        ("dtmf", {"digits": ""}, "'digits'"),
        ("dtmf", {"digits": "1" * 65}, "'digits'"),
        ("dtmf", {"digits": "12x"}, "keypad keys only"),
        ("hangup", {"now": True}, "takes no parameters"),
    ],
)
def test_a_bad_caller_request_is_a_400(action: str, body: dict[str, Any], message: str) -> None:
    headers = [("Authorization", "Bearer sk-x")]
    with pytest.raises(SignallingError) as refused:
        parse_server_request(
            "POST", f"{SIP_CALL_PATH}/rtc_1/{action}", headers, json.dumps(body).encode()
        )
    assert refused.value.status == 400 and message in str(refused.value)
    parsed = parse_server_request(
        "POST", f"{SIP_CALL_PATH}/rtc_1/dtmf", headers, b'{"digits": "0#AD"}'
    )
    assert parsed == CallerRequest("rtc_1", "dtmf", "0#AD", api_key="sk-x")
