"""One HTTP/1.1 request and its response over ``anyio.connect_tcp`` (TLS for https).

The request is one of the h11 exchanges of :mod:`rtproto.wire.signalling`
(:class:`~rtproto.wire.signalling.CallExchange`,
:class:`~rtproto.wire.signalling.ClientSecretExchange`): they build the bytes and parse the
answer; this only moves the bytes. Used by the WebRTC driver (the SDP offer) and by the
emulator's upstream mode (minting a client secret with the real service).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeVar

import anyio
import anyio.abc

from ._core import ConnectError, ConnectTimeout

if TYPE_CHECKING:  # ssl loads only for https (about 5 MB)
    import ssl

__all__ = ["round_trip"]

T_co = TypeVar("T_co", covariant=True)


class Exchange(Protocol[T_co]):
    """What :func:`round_trip` drives: a sans-I/O client request."""

    tls: bool
    host: str
    port: int

    def data_to_send(self) -> bytes: ...

    def receive_data(self, data: bytes) -> T_co | None: ...


async def round_trip(
    exchange: Exchange[T_co],
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 30.0,
    what: str = "the request",
) -> T_co:
    """Send the exchange's request and feed it the response until it has its answer.

    Raises:
        SignallingError: from the exchange (an error status, a malformed answer).
        ConnectError / ConnectTimeout: the TCP or TLS connection failed, or no complete
            answer arrived within ``timeout`` seconds.
    """
    try:
        with anyio.fail_after(timeout):
            try:
                if exchange.tls:
                    import ssl

                    stream: anyio.abc.ByteStream = await anyio.connect_tcp(
                        exchange.host,
                        exchange.port,
                        tls=True,
                        ssl_context=ssl_context or ssl.create_default_context(),
                        tls_standard_compatible=False,
                    )
                else:
                    stream = await anyio.connect_tcp(exchange.host, exchange.port)
            except OSError as exc:
                raise ConnectError(f"cannot connect to {exchange.host}:{exchange.port}") from exc
            async with stream:
                await stream.send(exchange.data_to_send())
                while True:
                    try:
                        data = await stream.receive(65536)
                    except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                        data = b""
                    answer = exchange.receive_data(data)
                    if answer is not None:
                        return answer
    except TimeoutError:
        raise ConnectTimeout(f"no answer to {what} within {timeout} s") from None
