"""The Cloudflare Workers way to open a Realtime WebSocket: a ``fetch()`` upgrade.

A Worker cannot open an outbound WebSocket with the ``WebSocket`` constructor. It calls
``fetch(url, {headers: {Upgrade: "websocket", ...}})`` on the ``http(s)://`` form of the URL;
when the server agrees, the response carries a ready ``webSocket`` that the Worker
``accept()``s. The platform then does the framing, so the session core gets whole messages
and no WebSocket layer is needed (see ``rtproto.adapters.cloudflare``).

This module is the pure part: :func:`plan_fetch_upgrade` turns the same
:class:`~rtproto.wire.WebSocketOptions` the WebSocket driver takes into the request to
``fetch``, and :func:`refused_upgrade` turns a response without a socket into the same
:class:`~rtproto.wire.HandshakeRefused` the WebSocket driver raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .url import redact_url
from .websocket import HandshakeRefused, WebSocketOptions, handshake_credentials

__all__ = ["FetchUpgrade", "plan_fetch_upgrade", "refused_upgrade"]

#: Most bytes of a refused upgrade's body kept in the error (as the WebSocket layer keeps).
MAX_REFUSED_BODY = 64 * 1024
_SCHEME = re.compile(r"^wss?:", re.IGNORECASE)


@dataclass(frozen=True, repr=False)
class FetchUpgrade:
    """The request a Worker passes to ``fetch`` to open the WebSocket.

    Its ``repr`` shows neither the URL's query nor the value of any header that may carry
    a credential (``Authorization``, the subprotocols, every extra header).
    """

    #: ``https://`` (or ``http://``) form of the WebSocket URL.
    url: str
    #: Always ``GET``.
    method: str
    #: The request headers, in order.
    headers: tuple[tuple[str, str], ...] = field(default=())
    #: Subprotocols asked for (the server must pick ``realtime``).
    protocols: tuple[str, ...] = ()

    def header_dict(self) -> dict[str, str]:
        """The headers as a dict (for ``fetch``'s ``headers`` option)."""
        return dict(self.headers)

    def __repr__(self) -> str:
        shown = tuple(
            (name, value if name.lower() in _PLAIN_HEADERS else "***")
            for name, value in self.headers
        )
        return (
            f"FetchUpgrade(url={redact_url(self.url)!r}, method={self.method!r}, headers={shown!r})"
        )


_PLAIN_HEADERS = frozenset(
    {"upgrade", "connection", "openai-beta", "openai-organization", "openai-project", "user-agent"}
)


def plan_fetch_upgrade(options: WebSocketOptions) -> FetchUpgrade:
    """The ``fetch`` request that opens ``options.url`` in a Worker.

    As the JS SDK's Cloudflare transport does: the URL's ``ws`` scheme becomes ``http``
    (``wss://`` gives ``https://``, in lower case), the method is ``GET``, and the headers are
    ``Upgrade: websocket``, ``Connection: Upgrade``, ``Sec-WebSocket-Protocol: realtime``
    and the credentials. The credentials and the other headers are the WebSocket driver's
    (``Authorization`` or the subprotocol key, ``OpenAI-Beta`` for the beta dialect,
    organization, project, ``User-Agent``, extra headers). There is no
    ``Sec-WebSocket-Key`` nor extension offer: the platform adds its own.
    """
    protocols, identity = handshake_credentials(options)
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Protocol", ", ".join(protocols)),
        *identity,
    ]
    url = _SCHEME.sub(lambda match: "https:" if len(match[0]) == 4 else "http:", options.url)
    return FetchUpgrade(url=url, method="GET", headers=tuple(headers), protocols=tuple(protocols))


def refused_upgrade(
    status: int, body: bytes | str, headers: list[tuple[str, str]] | None = None
) -> HandshakeRefused:
    """The error for a ``fetch`` upgrade answered without a WebSocket.

    ``body`` is the response's text (at most :data:`MAX_REFUSED_BODY` bytes are kept);
    an OpenAI error body's message is in the error's text and ``error``, as for a refused
    WebSocket upgrade. ``status`` is the error's ``hint``.
    """
    if isinstance(body, str):
        body = body.encode("utf-8", "replace")
    body = body[:MAX_REFUSED_BODY]
    pairs = [(name.lower(), value) for name, value in headers or ()]
    error = HandshakeRefused(status, pairs, body)
    text = body.decode("utf-8", "replace").strip()[:300]
    if error.error is None and text:
        # no OpenAI error object: say what the server said, as the JS transport does
        error.message = f"{error.message}: {text}"
        error.args = (error.message,)
    return error
