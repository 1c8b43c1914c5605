"""WebRTC signalling and client secrets over HTTP: request bytes out, parsed answers in, no I/O.

Client side (spec sections 1.2, 1.3 and 6.4), one exchange per object, driven like every
other rtproto wire object::

    exchange = CallExchange(offer_sdp, api_key=key, model="gpt-realtime")
    write(exchange.data_to_send())            # to exchange.host:exchange.port (TLS: .tls)
    while (answer := exchange.receive_data(read() or b"")) is None:
        pass                                   # b"": the server closed its side
    answer.sdp, answer.call_id                 # 201: the SDP answer and rtc_... call id

A non-2xx answer raises :class:`SignallingError` (a ``RemoteProtocolError``) with the HTTP
``status`` and the parsed OpenAI ``error`` object. :class:`ClientSecretExchange` mints an
ephemeral ``ek_...`` key the same way, and :class:`CallControlExchange` (built by
:func:`accept_call`, :func:`reject_call`, :func:`refer_call`, :func:`hangup_call`) answers,
declines, transfers or ends a SIP or WebRTC call (spec 1.5).

Server side (the emulator): :func:`parse_server_request` turns a complete HTTP request for
``POST /v1/realtime/calls`` or ``POST /v1/realtime/client_secrets`` into a
:class:`CallOffer` or :class:`ClientSecretRequest` (or a :class:`SignallingError` whose
``status`` is the answer to send, built with :func:`error_response`);
:class:`EphemeralKeys` remembers minted keys and their expiry (time is an argument).

Every body is bounded: SDP (both ways) at :data:`MAX_SDP_SIZE`, JSON at
:data:`MAX_JSON_BODY_SIZE`, the response head at :data:`MAX_HEAD_SIZE`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import h11
import msgspec

from ..config import DTMF_KEYS, sip_accept_session
from ..errors import LocalProtocolError, RemoteProtocolError
from ..models import RealtimeSession
from .url import HEADER_NAME, HEADER_VALUE, host_header, split_url

__all__ = [
    "CALLS_PATH",
    "CLIENT_SECRETS_PATH",
    "DEFAULT_CALLS_URL",
    "DEFAULT_CLIENT_SECRETS_URL",
    "MAX_HEAD_SIZE",
    "MAX_JSON_BODY_SIZE",
    "MAX_SDP_SIZE",
    "CALL_ACTIONS",
    "CALLER_ACTIONS",
    "SIP_CALL_PATH",
    "CallerRequest",
    "SipCallRequest",
    "WEBHOOK_USER_AGENT",
    "WebhookDelivery",
    "CallAnswer",
    "CallControlExchange",
    "CallControlRequest",
    "CallControlResult",
    "CallExchange",
    "CallOffer",
    "ClientSecret",
    "ClientSecretExchange",
    "ClientSecretRequest",
    "EphemeralKeys",
    "SignallingError",
    "accept_call",
    "build_response",
    "call_created_response",
    "client_secret_response",
    "error_body",
    "error_response",
    "hangup_call",
    "parse_server_request",
    "preflight_response",
    "refer_call",
    "reject_call",
]

CALLS_PATH = "/v1/realtime/calls"
#: The emulator's own endpoint (not the service's): ring its SIP line (docs/sip.md).
SIP_CALL_PATH = "/v1/realtime/emulator/sip_calls"
CLIENT_SECRETS_PATH = "/v1/realtime/client_secrets"
DEFAULT_CALLS_URL = "https://api.openai.com" + CALLS_PATH
DEFAULT_CLIENT_SECRETS_URL = "https://api.openai.com" + CLIENT_SECRETS_PATH
#: Largest SDP offer or answer (real ones are a few KiB).
MAX_SDP_SIZE = 256 * 1024
#: Largest JSON body (client secrets request and response, error bodies, multipart forms).
MAX_JSON_BODY_SIZE = 256 * 1024
#: Largest HTTP response head.
MAX_HEAD_SIZE = 16 * 1024
#: ``expires_after.seconds`` bounds and default (spec 1.3).
MIN_SECRET_SECONDS, MAX_SECRET_SECONDS, DEFAULT_SECRET_SECONDS = 10, 7200, 600
#: What can be done to a call: ``POST /v1/realtime/calls/{call_id}/{action}`` (spec 1.5).
CALL_ACTIONS = ("accept", "reject", "refer", "hangup")
#: Where a call can be referred to: the schemes of a SIP ``Refer-To``.
_REFER_SCHEMES = ("tel:", "sip:", "sips:")

#: What an API key may hold: printable ASCII, no spaces (a bearer token; spec 1.2).
_KEY = re.compile(r"[\x21-\x7e]+")
#: What a call id (the last segment of ``Location``) may hold: URL-unreserved characters.
_CALL_ID = re.compile(r"[A-Za-z0-9._~-]+")
_REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


class SignallingError(RemoteProtocolError):
    """An HTTP exchange failed: the server answered an error, or the bytes were not HTTP.

    Attributes:
        status: the HTTP status (``None`` when the response was not valid HTTP); also
            ``hint``.
        error: the ``error`` object of an OpenAI JSON error body, when there was one.
        code: ``error["code"]`` when it is a string.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error: Mapping[str, Any] | None = None,
        data: object = None,
    ) -> None:
        super().__init__(message, hint=status, data=data)
        self.status = status
        self.error: dict[str, Any] | None = dict(error) if error is not None else None
        code = self.error.get("code") if self.error is not None else None
        self.code: str | None = code if isinstance(code, str) else None


# --------------------------------------------------------------------------- client side --


@dataclass(frozen=True)
class CallAnswer:
    """The answer to a call request: the SDP answer and the call id (``rtc_...``)."""

    sdp: str
    #: The last path segment of ``Location`` (``None`` when the server sent none).
    call_id: str | None
    location: str | None = None
    status: int = 201


@dataclass(frozen=True)
class ClientSecret:
    """A minted ephemeral key: ``value`` (``ek_...``), ``expires_at`` (Unix seconds) and the
    effective ``session`` configuration."""

    value: str = field(repr=False)
    expires_at: int
    session: dict[str, Any]


def _json_text(value: Mapping[str, Any] | msgspec.Struct) -> str:
    if isinstance(value, msgspec.Struct):
        return msgspec.json.encode(value).decode("utf-8")
    if not isinstance(value, Mapping):
        raise LocalProtocolError(f"a session must be a mapping, not {type(value).__name__}")
    try:
        return json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise LocalProtocolError(f"the session is not JSON: {exc}") from None


class _Exchange:
    """One HTTP/1.1 request and its response over h11 (the client role)."""

    _max_body = MAX_JSON_BODY_SIZE

    def __init__(
        self,
        method: str,
        url: str,
        *,
        api_key: str | None,
        content_type: str,
        body: bytes,
        accept: str,
        extra_headers: Sequence[tuple[str, str]] = (),
        user_agent: str | None = None,
    ) -> None:
        # The key is checked here, never by h11: h11's errors quote the offending header
        # (and a non-ASCII key made a UnicodeEncodeError carrying it). None: no key is sent.
        if api_key is not None and (not isinstance(api_key, str) or not _KEY.fullmatch(api_key)):
            raise LocalProtocolError(
                "api_key must be a non-empty str of printable ASCII characters without spaces"
            )
        self.tls, self.host, self.port, self.target = split_url(url)
        for pair in extra_headers:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise LocalProtocolError("extra_headers must hold (name, value) pairs")
            name, value = pair
            if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
                raise LocalProtocolError("an extra header has an invalid name")
            if not isinstance(value, str) or not HEADER_VALUE.fullmatch(value):
                # the value may be a credential: named, never shown
                raise LocalProtocolError(f"the value of the extra header {name} is invalid")
        headers = [
            ("Host", host_header(self.host, self.port, self.tls)),
            *([("Authorization", f"Bearer {api_key}")] if api_key is not None else []),
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Accept", accept),
            ("User-Agent", _user_agent() if user_agent is None else user_agent),
            *extra_headers,
        ]
        self._api_key = api_key or ""  # kept out of error messages a server may echo it in
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_SIZE)
        try:
            head = self._h11.send(h11.Request(method=method, target=self.target, headers=headers))
        except (h11.LocalProtocolError, UnicodeError, ValueError):
            # h11's message quotes the header or target it refused, which may be a secret
            raise LocalProtocolError(
                "cannot build the request: a header or the target is not valid HTTP"
            ) from None
        data = self._h11.send(h11.Data(data=body))
        end = self._h11.send(h11.EndOfMessage())
        self._out = (head or b"") + (data or b"") + (end or b"")
        self._status: int | None = None
        self._reason = ""
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._size = 0
        self._head_size = 0  # bytes given to h11 since the current response head began
        self._done = False

    def data_to_send(self) -> bytes:
        """The request bytes (once; then ``b""``)."""
        out, self._out = self._out, b""
        return out

    @property
    def status(self) -> int | None:
        """The response status, once its head arrived."""
        return self._status

    def header(self, name: str) -> str | None:
        """A response header (the first of that name), once the head arrived."""
        name = name.lower()
        return next((value for key, value in self._headers if key == name), None)

    def _receive(self, data: bytes) -> bytes | None:
        if self._done:
            raise LocalProtocolError("the response was already complete")
        conn = self._h11
        if self._status is None:
            self._head_size += len(data)
        try:
            conn.receive_data(bytes(data))
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    return None
                if isinstance(event, (h11.InformationalResponse, h11.Response)):
                    # h11 refuses a head still incomplete after MAX_HEAD_SIZE bytes; this, a
                    # longer one that arrived whole: the limit holds however the bytes split
                    size = self._head_size - len(conn.trailing_data[0])
                    self._head_size -= size
                    if size > MAX_HEAD_SIZE:
                        raise h11.RemoteProtocolError("head too long", error_status_hint=431)
                if isinstance(event, h11.InformationalResponse):
                    continue
                if isinstance(event, h11.Response):
                    self._status = event.status_code
                    self._reason = event.reason.decode("latin-1", "replace")
                    self._headers = [
                        (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in event.headers
                    ]
                    length = self.header("content-length")
                    if length is not None and length.isdigit() and int(length) > self._max_body:
                        raise SignallingError(
                            f"the response body is {length} bytes; at most {self._max_body}",
                            status=self._status,
                        )
                elif isinstance(event, h11.Data):
                    self._size += len(event.data)
                    if self._size > self._max_body:
                        raise SignallingError(
                            f"the response body exceeds {self._max_body} bytes",
                            status=self._status,
                        )
                    self._body.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    self._done = True
                    return b"".join(self._body)
                else:  # ConnectionClosed or PAUSED before the end of the response
                    raise SignallingError(
                        "the server closed the connection before a complete response",
                        status=self._status,
                    )
        except h11.RemoteProtocolError as exc:
            if exc.error_status_hint == 431:  # over max_incomplete_event_size, or ours
                what = "the response head" if self._status is None else "a line of the body"
                message = f"invalid HTTP response: {what} exceeds {MAX_HEAD_SIZE} bytes"
            elif not data:
                message = "the server closed the connection before a complete response"
            elif self._status is None:  # never h11's words: they quote the header line
                message = "invalid HTTP response: a malformed status line or header"
            else:  # (a chunked body's trailers are headers too)
                message = "invalid HTTP response: the body is incomplete or badly framed"
            raise SignallingError(message, status=self._status) from None

    def _successful(self, data: bytes) -> bytes | None:
        """:meth:`_receive`, raising the server's error for a status other than 2xx."""
        body = self._receive(data)
        if body is not None and not 200 <= (self._status or 0) < 300:
            raise self._fail(body)
        return body

    def _fail(self, body: bytes) -> SignallingError:
        status = self._status if self._status is not None else 0
        error: dict[str, Any] | None = None
        detail = ""
        key = self._api_key
        if len(key) >= 8:  # a server may echo the key it refused: never in the error
            body = body.replace(key.encode("ascii"), b"<api key>")
        try:
            parsed = json.loads(body.decode("utf-8")) if body else None
        except (ValueError, UnicodeDecodeError, RecursionError):
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            error = parsed["error"]
            message = error.get("message")
            detail = message if isinstance(message, str) else ""
        if not detail:
            detail = body[:500].decode("utf-8", "replace").strip() or self._reason
        return SignallingError(
            f"the request failed with status {status}: {detail}",
            status=status,
            error=error,
            data=body,
        )


class CallExchange(_Exchange):
    """``POST /v1/realtime/calls``: send an SDP offer, receive the SDP answer (spec 1.2).

    Without ``session`` the body is the raw offer (``Content-Type: application/sdp``); with
    it, a ``multipart/form-data`` form with the fields ``sdp`` and ``session`` (JSON text).
    ``model`` adds ``?model=``.

    Raises:
        LocalProtocolError: a bad URL or key, an offer over :data:`MAX_SDP_SIZE`.
    """

    _max_body = MAX_SDP_SIZE

    def __init__(
        self,
        offer_sdp: str,
        *,
        api_key: str,
        url: str = DEFAULT_CALLS_URL,
        model: str | None = None,
        session: Mapping[str, Any] | msgspec.Struct | None = None,
        boundary: str | None = None,
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        if not isinstance(offer_sdp, str):
            raise LocalProtocolError("the SDP offer must be a str")
        sdp = offer_sdp.encode("utf-8")
        if len(sdp) > MAX_SDP_SIZE:
            raise LocalProtocolError(f"the SDP offer is {len(sdp)} bytes; at most {MAX_SDP_SIZE}")
        if model is not None:
            url += ("&" if "?" in url else "?") + "model=" + quote(model, safe="")
        if session is None:
            content_type, body = "application/sdp", sdp
        else:
            session_text = _json_text(session).encode("utf-8")
            if boundary is None:
                digest = hashlib.sha256(sdp + b"\0" + session_text).hexdigest()[:32]
                boundary = f"----rtproto{digest}"
            if not boundary.isascii():
                raise LocalProtocolError("the multipart boundary must be ASCII")
            marker = b"--" + boundary.encode("ascii")
            if marker in sdp or marker in session_text:
                raise LocalProtocolError("the multipart boundary occurs in the content")
            content_type = f"multipart/form-data; boundary={boundary}"
            body = b"".join(
                [
                    marker + b'\r\nContent-Disposition: form-data; name="sdp"\r\n\r\n',
                    sdp,
                    b"\r\n" + marker,
                    b'\r\nContent-Disposition: form-data; name="session"\r\n',
                    b"Content-Type: application/json\r\n\r\n",
                    session_text,
                    b"\r\n" + marker + b"--\r\n",
                ]
            )
        super().__init__(
            "POST",
            url,
            api_key=api_key,
            content_type=content_type,
            body=body,
            accept="application/sdp",
            extra_headers=extra_headers,
        )

    def receive_data(self, data: bytes) -> CallAnswer | None:
        """Response bytes (``b""`` at EOF); the :class:`CallAnswer` once complete.

        Raises:
            SignallingError: an error status (with the parsed error), not HTTP, not SDP.
        """
        body = self._successful(data)
        if body is None:
            return None
        status = self._status or 0
        try:
            sdp = body.decode("utf-8")
        except UnicodeDecodeError:
            raise SignallingError("the SDP answer is not UTF-8", status=status) from None
        if not sdp.startswith("v=0"):
            raise SignallingError(
                "the answer is not SDP (it does not start with v=0)", status=status, data=body
            )
        location = self.header("location")
        call_id = _call_id(location) if location is not None else None
        return CallAnswer(sdp=sdp, call_id=call_id, location=location, status=status)


@dataclass(frozen=True)
class CallControlResult:
    """A call control request the server carried out (HTTP 200; its body is empty)."""

    call_id: str
    action: str
    status: int


class CallControlExchange(_Exchange):
    """``POST /v1/realtime/calls/{call_id}/{action}``: accept, reject, refer or hang up a
    call (spec 1.5), with a JSON ``body`` (``{}`` when ``None``; hang-up sends none). The
    helpers below build each action's body; this is the raw form.

    Raises:
        LocalProtocolError: a bad URL, key, call id or action; a body over
            :data:`MAX_JSON_BODY_SIZE` or not JSON.
    """

    def __init__(
        self,
        call_id: str,
        action: str,
        *,
        api_key: str,
        body: Mapping[str, Any] | msgspec.Struct | None = None,
        url: str = DEFAULT_CALLS_URL,
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        if not isinstance(call_id, str) or not _CALL_ID.fullmatch(call_id):
            raise LocalProtocolError(
                "call_id must be the call's id (rtc_...): letters, digits and ._~- only"
            )
        if action not in CALL_ACTIONS:
            raise LocalProtocolError(f"action must be one of {', '.join(CALL_ACTIONS)}")
        if action == "hangup":
            if body is not None:
                raise LocalProtocolError("a hang-up carries no body")
            data = b""
        else:
            data = (_json_text(body) if body is not None else "{}").encode("utf-8")
            if len(data) > MAX_JSON_BODY_SIZE:
                raise LocalProtocolError(
                    f"the request is {len(data)} bytes; at most {MAX_JSON_BODY_SIZE}"
                )
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.query or parts.fragment:
            raise LocalProtocolError("the calls URL must be a str with no query or fragment")
        path = f"{parts.path.rstrip('/')}/{call_id}/{action}"
        super().__init__(
            "POST",
            parts._replace(path=path).geturl(),
            api_key=api_key,
            content_type="application/json",
            body=data,
            accept="*/*",
            extra_headers=extra_headers,
        )
        self.call_id = call_id
        self.action = action

    def receive_data(self, data: bytes) -> CallControlResult | None:
        """Response bytes (``b""`` at EOF); the :class:`CallControlResult` once complete.

        Raises:
            SignallingError: an error status, such as 404 ``call_id_not_found`` for a call
                that ended or never was (with the parsed error), or not HTTP.
        """
        body = self._successful(data)
        if body is None:
            return None
        return CallControlResult(self.call_id, self.action, status=self._status or 0)


#: The ``User-Agent`` of the service's webhook deliveries (spec 1.6).
WEBHOOK_USER_AGENT = "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)"


class WebhookDelivery(_Exchange):
    """``POST`` of a signed webhook event to an application, as the service delivers
    ``realtime.call.incoming`` (spec 1.6): JSON body, ``webhook-id``,
    ``webhook-timestamp`` and ``webhook-signature`` (Standard Webhooks, made by
    :func:`rtproto.wire.webhooks.sign_webhook`). For emulators and tests.

    Raises:
        LocalProtocolError: a bad URL, secret or webhook id; an event over
            :data:`MAX_JSON_BODY_SIZE` or not JSON.
    """

    def __init__(
        self,
        url: str,
        event: Mapping[str, Any],
        secret: str | bytes,
        *,
        webhook_id: str,
        timestamp: int,
    ) -> None:
        from .webhooks import sign_webhook

        body = _json_text(event).encode("utf-8")
        if len(body) > MAX_JSON_BODY_SIZE:
            raise LocalProtocolError(
                f"the event is {len(body)} bytes; at most {MAX_JSON_BODY_SIZE}"
            )
        signed = sign_webhook(body, secret, webhook_id=webhook_id, timestamp=timestamp)
        super().__init__(
            "POST",
            url,
            api_key=None,
            content_type="application/json",
            body=body,
            accept="*/*",
            extra_headers=tuple(signed.items()),
            user_agent=WEBHOOK_USER_AGENT,
        )
        self.webhook_id = webhook_id

    def receive_data(self, data: bytes) -> int | None:
        """Response bytes (``b""`` at EOF); the response's status once it is complete
        (2xx: delivered; anything else, the application refused it).

        Raises:
            SignallingError: not HTTP, or a body over :data:`MAX_JSON_BODY_SIZE`.
        """
        body = self._receive(data)
        return None if body is None else self._status or 0


def accept_call(
    call_id: str,
    session: Mapping[str, Any] | RealtimeSession,
    *,
    api_key: str,
    model: str | None = None,
    url: str = DEFAULT_CALLS_URL,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> CallControlExchange:
    """Answer a ringing SIP call with this session configuration (any shape
    :func:`~rtproto.config.normalize_session_config` takes), normalised for a phone call by
    :func:`~rtproto.config.sip_accept_session` (which refuses the VAD tuning SIP calls
    refuse)."""
    body = sip_accept_session(session, model=model)
    return CallControlExchange(
        call_id, "accept", api_key=api_key, body=body, url=url, extra_headers=extra_headers
    )


def reject_call(
    call_id: str,
    *,
    api_key: str,
    status_code: int | None = None,
    url: str = DEFAULT_CALLS_URL,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> CallControlExchange:
    """Decline a ringing SIP call with a SIP status (the server's default: 603 Decline)."""
    body: dict[str, Any] = {}
    if status_code is not None:
        if isinstance(status_code, bool) or not isinstance(status_code, int):
            raise LocalProtocolError("status_code must be an int (a SIP status, 400-699)")
        if not 400 <= status_code <= 699:
            raise LocalProtocolError(f"status_code {status_code} is not a SIP error (400-699)")
        body["status_code"] = status_code
    return CallControlExchange(
        call_id, "reject", api_key=api_key, body=body, url=url, extra_headers=extra_headers
    )


def refer_call(
    call_id: str,
    target_uri: str,
    *,
    api_key: str,
    url: str = DEFAULT_CALLS_URL,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> CallControlExchange:
    """Transfer a SIP call (SIP REFER) to ``tel:+14155550123`` or ``sip:agent@example.com``."""
    if (
        not isinstance(target_uri, str)
        or not target_uri.lower().startswith(_REFER_SCHEMES)
        or not target_uri.isprintable()
        or " " in target_uri
        or len(target_uri) > 2048
    ):
        raise LocalProtocolError(
            "target_uri must be a tel:, sip: or sips: URI (printable, no spaces, 2048 at most)"
        )
    return CallControlExchange(
        call_id,
        "refer",
        api_key=api_key,
        body={"target_uri": target_uri},
        url=url,
        extra_headers=extra_headers,
    )


def hangup_call(
    call_id: str,
    *,
    api_key: str,
    url: str = DEFAULT_CALLS_URL,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> CallControlExchange:
    """End a SIP or WebRTC call."""
    return CallControlExchange(
        call_id, "hangup", api_key=api_key, url=url, extra_headers=extra_headers
    )


def _user_agent() -> str:
    from .. import __version__  # lazily, as the WebSocket's default User-Agent

    return f"rtproto/{__version__}"


def _call_id(location: str) -> str | None:
    """The call id in a ``Location``: its path's last non-empty segment (query and fragment
    left out); ``None`` when that is the ``calls`` collection itself or not an id."""
    try:
        path = urlsplit(location.strip()).path
    except ValueError:
        return None
    segments = [segment for segment in path.split("/") if segment]
    if not segments or segments[-1] == "calls" or not _CALL_ID.fullmatch(segments[-1]):
        return None
    return segments[-1]


class ClientSecretExchange(_Exchange):
    """``POST /v1/realtime/client_secrets``: mint an ephemeral key (spec 1.3).

    Raises:
        LocalProtocolError: a bad URL or key, ``expires_after_seconds`` outside 10-7200.
    """

    def __init__(
        self,
        *,
        api_key: str,
        url: str = DEFAULT_CLIENT_SECRETS_URL,
        session: Mapping[str, Any] | msgspec.Struct | None = None,
        expires_after_seconds: int | None = None,
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        parts: list[str] = []
        if expires_after_seconds is not None:
            seconds = expires_after_seconds
            if isinstance(seconds, bool) or not isinstance(seconds, int):
                raise LocalProtocolError("expires_after_seconds must be an int")
            if not MIN_SECRET_SECONDS <= seconds <= MAX_SECRET_SECONDS:
                raise LocalProtocolError(
                    f"expires_after_seconds must be {MIN_SECRET_SECONDS}-{MAX_SECRET_SECONDS}"
                )
            parts.append(f'"expires_after":{{"anchor":"created_at","seconds":{seconds}}}')
        if session is not None:
            parts.append('"session":' + _json_text(session))
        body = ("{" + ",".join(parts) + "}").encode("utf-8")
        if len(body) > MAX_JSON_BODY_SIZE:
            raise LocalProtocolError(
                f"the request is {len(body)} bytes; at most {MAX_JSON_BODY_SIZE}"
            )
        super().__init__(
            "POST",
            url,
            api_key=api_key,
            content_type="application/json",
            body=body,
            accept="application/json",
            extra_headers=extra_headers,
        )

    def receive_data(self, data: bytes) -> ClientSecret | None:
        """Response bytes (``b""`` at EOF); the :class:`ClientSecret` once complete.

        Raises:
            SignallingError: an error status (with the parsed error), not HTTP, bad JSON.
        """
        body = self._successful(data)
        if body is None:
            return None
        status = self._status or 0
        try:
            parsed = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise SignallingError("the response is not JSON", status=status, data=body) from None
        value = parsed.get("value") if isinstance(parsed, dict) else None
        expires_at = parsed.get("expires_at") if isinstance(parsed, dict) else None
        session = parsed.get("session", {}) if isinstance(parsed, dict) else None
        if (
            not isinstance(value, str)
            or not value
            or isinstance(expires_at, bool)
            or not isinstance(expires_at, int)
            or not isinstance(session, dict)
        ):
            raise SignallingError(
                "the response lacks value, expires_at or session", status=status, data=body
            )
        return ClientSecret(value=value, expires_at=expires_at, session=session)


# --------------------------------------------------------------------------- server side --


@dataclass(frozen=True)
class CallOffer:
    """A parsed ``POST /v1/realtime/calls``."""

    sdp: str
    #: The ``session`` form field (multipart requests), parsed.
    session: dict[str, Any] | None
    #: ``?model=`` (or ``session.model``), when given.
    model: str | None
    api_key: str = field(repr=False)


@dataclass(frozen=True)
class ClientSecretRequest:
    """A parsed ``POST /v1/realtime/client_secrets``."""

    expires_after_seconds: int
    session: dict[str, Any] | None
    api_key: str = field(repr=False)


@dataclass(frozen=True)
class CallControlRequest:
    """A parsed ``POST /v1/realtime/calls/{call_id}/{action}`` (accept, reject, refer or
    hang up; the body is not checked against the action: the server knows its calls)."""

    call_id: str
    action: str
    body: dict[str, Any]
    api_key: str = field(repr=False)


#: What the caller of an emulated SIP call can do (``POST SIP_CALL_PATH/{call_id}/{action}``).
CALLER_ACTIONS = ("dtmf", "hangup")


@dataclass(frozen=True)
class CallerRequest:
    """A parsed ``POST`` to ``SIP_CALL_PATH/{call_id}/{action}``: the caller of an emulated
    call presses keys (``dtmf``, with ``digits``) or hangs up (``hangup``)."""

    call_id: str
    action: str
    digits: str | None
    api_key: str = field(repr=False)


@dataclass(frozen=True)
class SipCallRequest:
    """A parsed ``POST`` to the emulator's :data:`SIP_CALL_PATH`: ring its SIP line. Every
    field is optional (``None``: the emulator's default); ``audio`` is PCM16 24 kHz mono,
    sent base64-encoded; ``from`` and ``to`` arrive as ``caller`` and ``callee``."""

    webhook_url: str | None
    caller: str | None
    callee: str | None
    audio: bytes | None
    hang_up_after: float | None
    ring_timeout: float | None
    api_key: str = field(repr=False)


def _sip_call_request(request: dict[str, Any], api_key: str) -> SipCallRequest:
    known = {"webhook_url", "from", "to", "audio", "hang_up_after", "ring_timeout"}
    for name in request:
        if name not in known:
            raise _bad(f"Unknown parameter: '{str(name)[:100]}'.", "unknown_parameter")
    texts: dict[str, str | None] = {}
    for name in ("webhook_url", "from", "to", "audio"):
        value = request.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            raise _bad(f"Invalid type for '{name}': expected a non-empty string.")
        texts[name] = value
    url = texts["webhook_url"]
    if url is not None:
        try:
            split_url(url)
        except LocalProtocolError:
            raise _bad("Invalid 'webhook_url': expected an http:// or https:// URL.") from None
        if not url.lower().startswith(("http://", "https://")):
            raise _bad("Invalid 'webhook_url': expected an http:// or https:// URL.")
    audio = None
    if texts["audio"] is not None:
        from .._b64 import decode_base64

        try:
            audio = decode_base64(texts["audio"])
        except ValueError:
            raise _bad("Invalid 'audio': expected base64 of PCM16 24 kHz mono.") from None
        if len(audio) % 2:
            raise _bad("Invalid 'audio': PCM16 has an even number of bytes.")
    seconds: dict[str, float | None] = {}
    for name, least in (("hang_up_after", 0.0), ("ring_timeout", 0.001)):
        value = request.get(name)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not least <= value <= 3600
        ):
            raise _bad(f"Invalid value for '{name}': expected seconds, {least:g} to 3600.")
        seconds[name] = None if value is None else float(value)
    return SipCallRequest(
        webhook_url=url,
        caller=texts["from"],
        callee=texts["to"],
        audio=audio,
        hang_up_after=seconds["hang_up_after"],
        ring_timeout=seconds["ring_timeout"],
        api_key=api_key,
    )


def _bad(message: str, code: str | None = "invalid_value", status: int = 400) -> SignallingError:
    return SignallingError(
        message,
        status=status,
        error={"message": message, "type": "invalid_request_error", "param": None, "code": code},
    )


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _bad(f"{what} is not valid JSON.", "invalid_json") from None
    if not isinstance(value, dict):
        raise _bad(f"{what} must be a JSON object.")
    return value


def _session_field(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad("Invalid type for 'session': expected an object.")
    kind = value.get("type", "realtime")
    if kind not in ("realtime", "transcription"):
        raise _bad(f"Invalid value for 'session.type': {str(kind)[:50]!r}.")
    return value


def _multipart(body: bytes, content_type: str) -> dict[str, bytes]:
    boundary = ""
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "boundary":
            boundary = value.strip().strip('"')
    if not boundary or len(boundary) > 200:
        raise _bad("multipart/form-data needs a boundary.")
    marker = b"--" + boundary.encode("latin-1", "replace")
    fields: dict[str, bytes] = {}
    chunks = body.split(marker)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise _bad("The multipart body is not terminated.")
    for chunk in chunks[1:-1]:
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise _bad("A multipart part has no header.")
        field_name: str | None = None
        for line in head.split(b"\r\n"):
            key, _, header_value = line.partition(b":")
            if key.strip().lower() == b"content-disposition":
                for part_param in header_value.split(b";")[1:]:
                    pkey, _, pvalue = part_param.strip().partition(b"=")
                    if pkey.strip().lower() == b"name":
                        field_name = pvalue.strip().strip(b'"').decode("latin-1")
        if field_name is None:
            raise _bad("A multipart part has no name.")
        fields.setdefault(field_name, content[:-2] if content.endswith(b"\r\n") else content)
    return fields


def parse_server_request(
    method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes
) -> CallOffer | ClientSecretRequest | CallControlRequest | SipCallRequest | CallerRequest:
    """A complete request for the calls, call control or client secrets endpoints (or the
    emulator's :data:`SIP_CALL_PATH`), parsed and checked.

    ``headers`` are ``(name, value)`` pairs (any case). Bearer keys are not checked against
    anything here (the caller knows which keys it accepts); a missing one is a 401.

    Raises:
        SignallingError: ``status`` 404 (path), 405 (method), 401 (no key), 413 (body too
            large), 415 (content type) or 400 (malformed body); ``error`` is the JSON error.
    """
    path, _, query_text = target.partition("?")
    control = _call_control_path(path)
    caller = _caller_path(path)
    if (
        path not in (CALLS_PATH, CLIENT_SECRETS_PATH, SIP_CALL_PATH)
        and control is None
        and caller is None
    ):
        raise _bad(f"Invalid URL ({method} {path[:200]})", None, 404)
    if method != "POST":
        raise _bad(f"Invalid method for {path}: use POST.", None, 405)
    lowered = [(name.lower(), value) for name, value in headers]
    api_key = ""
    for name, value in lowered:
        scheme, _, credential = value.strip().partition(" ")
        if name == "authorization" and scheme.lower() == "bearer" and credential.strip():
            api_key = credential.strip()
            break
    if not api_key:
        raise _bad(
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            None,
            401,
        )
    content_type = next((v for k, v in lowered if k == "content-type"), "").strip()
    media = content_type.split(";", 1)[0].strip().lower()
    if path == CALLS_PATH:
        return _call_offer(query_text, media, content_type, body, api_key)
    if len(body) > MAX_JSON_BODY_SIZE:
        raise _bad(f"The request body exceeds {MAX_JSON_BODY_SIZE} bytes.", None, 413)
    if body.strip() and media not in ("application/json", ""):
        raise _bad(f"Unsupported content type {media[:100]!r}: use application/json.", None, 415)
    request = _json_object(body, "The request body") if body.strip() else {}
    if control is not None:
        return CallControlRequest(*control, body=request, api_key=api_key)
    if path == SIP_CALL_PATH:
        return _sip_call_request(request, api_key)
    if caller is not None:
        return _caller_request(*caller, request, api_key)
    seconds = DEFAULT_SECRET_SECONDS
    expires = request.get("expires_after")
    if expires is not None:
        if not isinstance(expires, dict):
            raise _bad("Invalid type for 'expires_after': expected an object.")
        if expires.get("anchor", "created_at") != "created_at":
            raise _bad("Invalid value for 'expires_after.anchor': only 'created_at'.")
        value = expires.get("seconds", DEFAULT_SECRET_SECONDS)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not MIN_SECRET_SECONDS <= value <= MAX_SECRET_SECONDS
        ):
            raise _bad(
                "Invalid value for 'expires_after.seconds': expected an integer between "
                f"{MIN_SECRET_SECONDS} and {MAX_SECRET_SECONDS}."
            )
        seconds = value
    session = _session_field(request.get("session"))
    return ClientSecretRequest(expires_after_seconds=seconds, session=session, api_key=api_key)


def _caller_path(path: str) -> tuple[str, str] | None:
    """``(call_id, action)`` of a :data:`SIP_CALL_PATH` ``/{call_id}/{action}`` path."""
    call_id, slash, action = path.removeprefix(SIP_CALL_PATH + "/").partition("/")
    if not path.startswith(SIP_CALL_PATH + "/") or not slash or action not in CALLER_ACTIONS:
        return None
    return (call_id, action) if _CALL_ID.fullmatch(call_id) else None


def _caller_request(
    call_id: str, action: str, request: dict[str, Any], api_key: str
) -> CallerRequest:
    digits = request.get("digits")
    if action == "dtmf":
        if not isinstance(digits, str) or not digits or len(digits) > 64:
            raise _bad("Invalid 'digits': expected 1 to 64 keypad keys (0-9, *, #, A-D).")
        if digits.strip(DTMF_KEYS):
            raise _bad("Invalid 'digits': expected keypad keys only (0-9, *, #, A-D).")
    elif request:
        raise _bad("A caller's hang-up takes no parameters.", "unknown_parameter")
    return CallerRequest(call_id, action, digits if action == "dtmf" else None, api_key)


def _call_control_path(path: str) -> tuple[str, str] | None:
    """``(call_id, action)`` of a call control path, else None."""
    call_id, slash, action = path.removeprefix(CALLS_PATH + "/").partition("/")
    if not path.startswith(CALLS_PATH + "/") or not slash or action not in CALL_ACTIONS:
        return None
    return (call_id, action) if _CALL_ID.fullmatch(call_id) else None


def _call_offer(
    query_text: str, media: str, content_type: str, body: bytes, api_key: str
) -> CallOffer:
    limit = MAX_SDP_SIZE + (MAX_JSON_BODY_SIZE if media == "multipart/form-data" else 0)
    if len(body) > limit:
        raise _bad(f"The request body exceeds {limit} bytes.", None, 413)
    session: dict[str, Any] | None = None
    if media == "application/sdp":
        sdp_bytes = body
    elif media == "multipart/form-data":
        fields = _multipart(body, content_type)
        if "sdp" not in fields:
            raise _bad("Missing required parameter: 'sdp'.", "missing_required_parameter")
        sdp_bytes = fields["sdp"]
        if "session" in fields:
            session = _session_field(_json_object(fields["session"], "The 'session' field"))
    else:
        raise _bad(
            f"Unsupported content type {media[:100]!r}: use application/sdp or "
            "multipart/form-data.",
            None,
            415,
        )
    if len(sdp_bytes) > MAX_SDP_SIZE:
        raise _bad(f"The SDP offer exceeds {MAX_SDP_SIZE} bytes.", None, 413)
    try:
        sdp = sdp_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("The SDP offer is not UTF-8 text.", "invalid_offer") from None
    if not sdp.startswith("v=0") or "\nm=" not in sdp:
        raise _bad("The SDP offer is not valid SDP (v=0 and m= lines).", "invalid_offer")
    query = dict(parse_qsl(query_text, keep_blank_values=True))
    model = query.get("model") or None
    if model is None and session is not None and isinstance(session.get("model"), str):
        model = session["model"] or None
    return CallOffer(sdp=sdp, session=session, model=model, api_key=api_key)


def error_body(
    message: str, code: str | None = None, error_type: str = "invalid_request_error"
) -> bytes:
    """The OpenAI REST error envelope (spec 6.4)."""
    error = {"message": message, "type": error_type, "param": None, "code": code}
    return (json.dumps({"error": error}, indent=4) + "\n").encode("utf-8")


def build_response(
    status: int,
    body: bytes,
    content_type: str,
    extra_headers: Sequence[tuple[str, str]] = (),
    server: str = "rtproto",
) -> bytes:
    """A complete ``HTTP/1.1`` response that closes the connection."""
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *_CORS_HEADERS,
        *(f"{name}: {value}" for name, value in extra_headers),
        f"Server: {server}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


#: On every REST answer, as the service does: a page of another origin may call the
#: endpoints directly (the browser demo served by an upstream-mode emulator posts its offer
#: to the real service, or to another emulator) and read the call's ``Location``.
_CORS_HEADERS = (
    "Access-Control-Allow-Origin: *",
    "Access-Control-Expose-Headers: Location",
)


def preflight_response(server: str = "rtproto") -> bytes:
    """``204 No Content`` to a CORS preflight (``OPTIONS``) of a REST endpoint."""
    lines = [
        "HTTP/1.1 204 No Content",
        "Connection: close",
        *_CORS_HEADERS,
        "Access-Control-Allow-Methods: POST, OPTIONS",
        "Access-Control-Allow-Headers: Authorization, Content-Type, OpenAI-Beta",
        "Access-Control-Max-Age: 600",
        f"Server: {server}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def error_response(
    status: int, message: str, code: str | None = None, server: str = "rtproto"
) -> bytes:
    """An error answer with the OpenAI JSON envelope."""
    return build_response(status, error_body(message, code), "application/json", server=server)


def call_created_response(answer_sdp: str, call_id: str, server: str = "rtproto") -> bytes:
    """``201 Created`` with the SDP answer and ``Location: /v1/realtime/calls/<call_id>``."""
    return build_response(
        201,
        answer_sdp.encode("utf-8"),
        "application/sdp",
        [("Location", f"{CALLS_PATH}/{call_id}")],
        server=server,
    )


def client_secret_response(
    value: str, expires_at: int, session: Mapping[str, Any], server: str = "rtproto"
) -> bytes:
    """``200 OK`` with ``{value, expires_at, session}``."""
    body = json.dumps({"value": value, "expires_at": expires_at, "session": dict(session)})
    return build_response(200, body.encode("utf-8"), "application/json", server=server)


class EphemeralKeys:
    """The ``ek_...`` keys a server minted and when each expires (Unix seconds, as input).

    At most ``max_keys`` are remembered; expired keys are forgotten as new ones are minted.
    """

    def __init__(self, max_keys: int = 10_000) -> None:
        self._keys: OrderedDict[str, tuple[float, dict[str, Any] | None]] = OrderedDict()
        self._max = max_keys

    def __len__(self) -> int:
        return len(self._keys)

    def mint(
        self, token: bytes, now: float, seconds: int, session: dict[str, Any] | None = None
    ) -> tuple[str, int]:
        """Remember a new key made from ``token`` (random bytes); ``(value, expires_at)``."""
        if len(token) < 8:
            raise LocalProtocolError("a key needs at least 8 random bytes")
        keys = self._keys
        while keys and next(iter(keys.values()))[0] <= now:
            keys.popitem(last=False)
        while len(keys) >= self._max:
            keys.popitem(last=False)
        value = "ek_" + token.hex()
        expires_at = int(now) + seconds
        keys[value] = (expires_at, session)
        return value, expires_at

    def check(self, value: str, now: float) -> bool:
        """Whether ``value`` is a key minted here that has not expired at ``now``."""
        entry = self._keys.get(value)
        return entry is not None and now < entry[0]

    def session_of(self, value: str) -> dict[str, Any] | None:
        """The session configuration the key was minted with, if any."""
        entry = self._keys.get(value)
        return entry[1] if entry is not None else None
