"""Call control on real I/O: send one :class:`~rtproto.wire.signalling.CallControlExchange`
(accept, reject, refer or hang up a SIP or WebRTC call) over TCP, TLS for https, on asyncio
or Trio. See docs/sip.md.

::

    from rtproto.wire.signalling import accept_call
    from rtproto.adapters.calls import control_call

    await control_call(accept_call(call_id, {"instructions": "Be brief."}, api_key=key))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtproto.wire.signalling import CallControlExchange, CallControlResult

from ._http import round_trip

if TYPE_CHECKING:  # ssl loads only for https
    import ssl

__all__ = ["control_call"]


async def control_call(
    exchange: CallControlExchange,
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 30.0,
) -> CallControlResult:
    """Send the request and wait for the server to carry it out.

    Raises:
        SignallingError: the server refused it (404 ``call_id_not_found`` for a call that
            ended), or did not answer HTTP.
        ConnectError / ConnectTimeout: no connection, or no answer within ``timeout`` s.
    """
    return await round_trip(
        exchange,
        ssl_context=ssl_context,
        timeout=timeout,
        what=f"the {exchange.action} of call {exchange.call_id}",
    )
