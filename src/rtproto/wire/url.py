"""Realtime WebSocket URLs: build one from a base URL and split one for a driver to dial.

Both functions are pure string work and raise :class:`~rtproto.errors.LocalProtocolError`
(the application gave a bad URL) rather than ``ValueError``; an error message never repeats
the URL's query (it may carry a key): :func:`redact_url` shows a URL without it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from urllib.parse import SplitResult, parse_qsl, quote, urlencode, urlsplit, urlunsplit

from ..errors import LocalProtocolError

__all__ = ["DEFAULT_BASE_URL", "realtime_url", "redact_url", "split_url"]

#: Where the service listens.
DEFAULT_BASE_URL = "wss://api.openai.com/v1/realtime"

_WS_SCHEMES = {"wss": "wss", "https": "wss", "ws": "ws", "http": "ws"}
_TLS = {"wss": True, "https": True, "ws": False, "http": False}
_DEFAULT_PORT = {True: 443, False: 80}
# Control characters and space: urlsplit() silently drops some of them (tab, CR, LF).
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9_-]+)*\.?")
# Characters left as they are in a request target: RFC 3986 unreserved, reserved and '%'.
_TARGET_SAFE = "/?:@!$&'()*+,;=-._~%[]"


def realtime_url(
    base: str = DEFAULT_BASE_URL,
    *,
    model: str | None = None,
    call_id: str | None = None,
    intent: str | None = None,
    query: Mapping[str, str] | None = None,
) -> str:
    """The WebSocket URL of a Realtime session.

    ``base`` may be the API root (``https://api.openai.com/v1``): the scheme becomes ``wss``
    (``http`` becomes ``ws``) and ``/realtime`` is appended unless the path already ends with
    it. ``model`` (a new session), ``call_id`` (attach to a WebRTC or SIP call) and ``intent``
    (``"transcription"``) are merged with ``base``'s own query and the ``query`` given;
    values are URL-encoded.

    Raises:
        LocalProtocolError: both ``model`` and ``call_id``; neither of them and no
            ``intent``; a parameter given twice; a scheme other than ``ws``, ``wss``,
            ``http`` or ``https``; credentials or a fragment in ``base``.
    """
    _check_chars(base)
    parts = _urlsplit(base)
    scheme = _WS_SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise LocalProtocolError(
            f"a Realtime URL needs a ws, wss, http or https scheme, not {parts.scheme!r}"
        )
    _check_authority(parts.netloc, parts.fragment)
    path = parts.path.rstrip("/")
    if not path.endswith("/realtime"):
        path += "/realtime"
    named = {"model": model, "call_id": call_id, "intent": intent}
    merged: dict[str, str] = {key: value for key, value in named.items() if value is not None}
    for key, value in [*parse_qsl(parts.query, keep_blank_values=True), *(query or {}).items()]:
        if not isinstance(key, str) or not isinstance(value, str):
            raise LocalProtocolError("query keys and values must be strings")
        if named.get(key) is not None:
            raise LocalProtocolError(f"query parameter {key!r} is given twice")
        merged[key] = value
    if "model" in merged and "call_id" in merged:
        raise LocalProtocolError(
            "give either model (a new session) or call_id (attach to a call), not both"
        )
    if "model" not in merged and "call_id" not in merged and "intent" not in merged:
        raise LocalProtocolError("a Realtime URL needs a model, a call_id or an intent")
    encoded = urlencode(list(merged.items()), quote_via=quote, safe="")
    return urlunsplit((scheme, parts.netloc, path, encoded, ""))


def split_url(url: str) -> tuple[bool, str, int, str]:
    """What a driver needs to dial ``url``: ``(tls, host, port, target)``.

    ``tls`` is true for ``wss`` and ``https``; ``host`` is bare (an IPv6 literal without its
    brackets, IDNA-encoded when not ASCII); ``port`` defaults to 443 or 80; ``target`` is the
    path and query to request, percent-encoded where needed (``/`` when the path is empty).

    Raises:
        LocalProtocolError: another scheme, no host, a bad port, credentials, a fragment,
            spaces or control characters.
    """
    _check_chars(url)
    parts = _urlsplit(url)
    tls = _TLS.get(parts.scheme.lower())
    if tls is None:
        raise LocalProtocolError(
            f"a WebSocket URL needs a ws, wss, http or https scheme, not {parts.scheme!r}"
        )
    _check_authority(parts.netloc, parts.fragment)
    host = _host(parts.netloc)
    try:
        port = parts.port
    except ValueError:
        raise LocalProtocolError(f"bad port in URL {redact_url(url)!r}") from None
    if port is None:
        if parts.netloc.endswith(":"):
            raise LocalProtocolError(f"empty port in URL {redact_url(url)!r}")
        port = _DEFAULT_PORT[tls]
    if port == 0:
        raise LocalProtocolError(f"bad port in URL {redact_url(url)!r}")
    target = quote(parts.path or "/", safe=_TARGET_SAFE)  # with a host, the path starts "/"
    if parts.query:
        target += "?" + quote(parts.query, safe=_TARGET_SAFE)
    return tls, host, port, target


def redact_url(url: str) -> str:
    """``url`` without its query or fragment (``?...`` marks a query that was there), for
    reprs and error messages: a query may carry a key (``?api-key=...``)."""
    cut = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=-1)
    if cut < 0:
        return url
    return url[:cut] + ("?..." if url[cut] == "?" else "")


#: An HTTP header name (RFC 9110 token) and value (no control characters, no edge spaces),
#: for the requests this package writes.
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
HEADER_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?")


def host_header(host: str, port: int, tls: bool) -> str:
    """The ``Host`` header value for a bare host and port (brackets for IPv6)."""
    name = f"[{host}]" if ":" in host else host
    return name if port == _DEFAULT_PORT[tls] else f"{name}:{port}"


# --------------------------------------------------------------------------------- internals --


def _check_chars(url: object) -> None:
    if not isinstance(url, str):
        raise LocalProtocolError(f"a URL must be a str, not {type(url).__name__}")
    if _UNSAFE.search(url):
        raise LocalProtocolError("a URL must not contain spaces or control characters")


def _urlsplit(url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError as exc:  # e.g. an unbalanced '[' in the host
        raise LocalProtocolError(f"invalid URL: {exc}") from None


def _check_authority(netloc: str, fragment: str) -> None:
    if "@" in netloc:
        raise LocalProtocolError("credentials in a URL are not supported: use api_key")
    if fragment:
        raise LocalProtocolError("a WebSocket URL must not have a fragment")


def _host(netloc: str) -> str:
    if netloc.startswith("["):
        end = netloc.find("]")
        literal = netloc[1:end]
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            raise LocalProtocolError(f"invalid IPv6 address {literal!r}") from None
        return literal.lower()
    host = netloc.rsplit(":", 1)[0] if ":" in netloc else netloc
    if not host:
        raise LocalProtocolError("a URL needs a host")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise LocalProtocolError(f"invalid host name {host!r}") from None
    if not _HOSTNAME.fullmatch(host):
        raise LocalProtocolError(f"invalid host name {host!r}")
    return host.lower()
