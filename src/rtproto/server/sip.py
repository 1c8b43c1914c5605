"""A SIP call's life in the emulator, from the INVITE to its end, without I/O.

On the service, a call to the project's SIP address makes OpenAI POST the project's webhook
(``realtime.call.incoming``, spec 1.6); the application answers through the call control
endpoints (``POST /v1/realtime/calls/{call_id}/accept|reject|refer|hangup``, spec 1.5) and
drives the session over a sideband WebSocket (``?call_id=``). :class:`SipCall` is one such
call: the webhook's payload, what each control request does in each state and what it
answers, and whether a sideband socket may attach. The emulator's driver
(``rtproto.adapters.server``) delivers the webhook, serves the requests and plays the caller.

The state machine::

    RINGING --accept--> ACCEPTED --hangup / refer / caller hangs up--> ENDED
    RINGING --reject / hangup / no answer------------------------------> ENDED

Where the service's answer to a request in the wrong state is not documented (accepting a
call twice, referring a ringing call), the emulator answers 400 with an
``invalid_request_error`` saying what to do instead; an ended call answers as an unknown one,
404 ``call_id_not_found`` (spec 1.5).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config import SIP_REFUSED_TURN_DETECTION
from .validate import Reject, check_session_config

__all__ = [
    "CALL_NOT_FOUND",
    "DEFAULT_REJECT_STATUS",
    "ControlAnswer",
    "SipCall",
    "SipCallState",
    "SidebandRefused",
]

#: ``reject`` without ``status_code``: 603 Decline (spec 1.5).
DEFAULT_REJECT_STATUS = 603
#: The service's message for a call it does not know (spec 1.5).
CALL_NOT_FOUND = "No session found for the provided call_id"
_REFER_SCHEMES = ("tel:", "sip:", "sips:")


class SipCallState(enum.Enum):
    """Where a :class:`SipCall` is."""

    #: The webhook went out; the call waits for ``accept`` or ``reject``.
    RINGING = "ringing"
    #: Answered: the session runs, a sideband socket may attach.
    ACCEPTED = "accepted"
    #: Rejected, referred, hung up (by either side) or never answered.
    ENDED = "ended"


@dataclass(frozen=True)
class ControlAnswer:
    """What a control request gets: its HTTP status and, for an error, the error object."""

    status: int
    error: dict[str, Any] | None = None


class SidebandRefused(Exception):
    """A sideband socket may not attach now (``code`` and ``message`` for the error event)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _error(message: str, code: str | None = None, param: str | None = None) -> ControlAnswer:
    return ControlAnswer(
        400, {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    )


def not_found() -> ControlAnswer:
    """404 ``call_id_not_found``: the call ended, or never was."""
    return ControlAnswer(
        404,
        {
            "message": CALL_NOT_FOUND,
            "type": "invalid_request_error",
            "param": None,
            "code": "call_id_not_found",
        },
    )


class SipCall:
    """One incoming SIP call (see the module docs).

    Args:
        call_id: the call's id (``rtc_...``).
        caller, callee: the ``From`` and ``To`` URIs of the INVITE.
        sip_call_id: the INVITE's ``Call-ID``.
        created_at: Unix seconds, for the webhook's ``created_at``.
    """

    def __init__(
        self, call_id: str, *, caller: str, callee: str, sip_call_id: str, created_at: int
    ) -> None:
        self.call_id = call_id
        self.caller = caller
        self.callee = callee
        self.sip_call_id = sip_call_id
        self.created_at = created_at
        self.state = SipCallState.RINGING
        #: The session configuration the call was accepted with (``accept``'s body).
        self.config: dict[str, Any] | None = None
        #: Why it ended: ``rejected``, ``referred``, ``hung up``, ``caller hung up``,
        #: ``no answer``, ``sideband closed``.
        self.end_reason: str | None = None
        #: ``reject``'s SIP status, ``refer``'s target.
        self.reject_status: int | None = None
        self.refer_target: str | None = None
        #: A sideband socket is attached (at most one at a time).
        self.attached = False

    def __repr__(self) -> str:
        return f"<SipCall {self.call_id} {self.state.value}>"

    @property
    def sip_headers(self) -> list[dict[str, str]]:
        """The INVITE's headers the webhook carries."""
        return [
            {"name": "From", "value": self.caller},
            {"name": "To", "value": self.callee},
            {"name": "Call-ID", "value": self.sip_call_id},
        ]

    def incoming_event(self, event_id: str) -> dict[str, Any]:
        """The ``realtime.call.incoming`` webhook payload (spec 1.6)."""
        return {
            "object": "event",
            "id": event_id,
            "type": "realtime.call.incoming",
            "created_at": self.created_at,
            "data": {"call_id": self.call_id, "sip_headers": self.sip_headers},
        }

    # ----------------------------------------------------------------------- control --

    def control(self, action: str, body: Mapping[str, Any]) -> ControlAnswer:
        """Carry out ``POST /v1/realtime/calls/{call_id}/{action}`` with its JSON body."""
        state = self.state
        if state is SipCallState.ENDED:
            return not_found()
        if action == "hangup":
            self.end("hung up")
            return ControlAnswer(200)
        if action == "accept":
            if state is not SipCallState.RINGING:
                return _error("The call was already accepted.", "call_already_accepted")
            return self._accept(body)
        if action == "reject":
            if state is not SipCallState.RINGING:
                return _error(
                    "Only a ringing call can be rejected: hang up an accepted call instead.",
                    "call_already_accepted",
                )
            return self._reject(body)
        if action == "refer":
            if state is not SipCallState.ACCEPTED:
                return _error(
                    "Only an accepted call can be referred: accept it first, or reject it.",
                    "call_not_accepted",
                )
            return self._refer(body)
        return ControlAnswer(
            404,
            {
                "message": f"Invalid URL (POST /v1/realtime/calls/{self.call_id}/{action})",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            },
        )

    def _accept(self, body: Mapping[str, Any]) -> ControlAnswer:
        if "type" not in body:
            return _error(
                "Missing required parameter: 'type'.", "missing_required_parameter", "type"
            )
        config = dict(body)
        try:
            check_session_config(config, path="")  # the body is the session
        except Reject as exc:
            return _error(exc.message, exc.code, exc.param)
        turn = _turn_detection(config)
        for name in SIP_REFUSED_TURN_DETECTION:  # as the JS SDK refuses them for SIP
            if isinstance(turn, Mapping) and name in turn:
                return _error(
                    f"'{name}' cannot be set for a SIP call.",
                    "unknown_parameter",
                    f"audio.input.turn_detection.{name}",
                )
        self.state = SipCallState.ACCEPTED
        self.config = config
        return ControlAnswer(200)

    def _reject(self, body: Mapping[str, Any]) -> ControlAnswer:
        status = body.get("status_code", DEFAULT_REJECT_STATUS)
        if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 699:
            return _error(
                f"Invalid 'status_code': {status!r}. Expected a SIP error status (400-699).",
                "invalid_value",
                "status_code",
            )
        self.reject_status = status
        self.end("rejected")
        return ControlAnswer(200)

    def _refer(self, body: Mapping[str, Any]) -> ControlAnswer:
        target = body.get("target_uri")
        if target is None:
            return _error(
                "Missing required parameter: 'target_uri'.",
                "missing_required_parameter",
                "target_uri",
            )
        if not isinstance(target, str) or not target.lower().startswith(_REFER_SCHEMES):
            return _error(
                f"Invalid 'target_uri': {target!r}. Expected a tel:, sip: or sips: URI.",
                "invalid_value",
                "target_uri",
            )
        self.refer_target = target
        self.end("referred")
        return ControlAnswer(200)

    # ---------------------------------------------------------------------- the line --

    def attach(self) -> None:
        """A sideband socket attaches (``?call_id=``).

        Raises:
            SidebandRefused: the call is not accepted yet, has ended, or has a socket.
        """
        if self.state is SipCallState.ENDED:
            raise SidebandRefused("call_id_not_found", CALL_NOT_FOUND)
        if self.state is SipCallState.RINGING:
            raise SidebandRefused(
                "call_not_accepted",
                "The call has not been accepted: POST /v1/realtime/calls/{call_id}/accept first.",
            )
        if self.attached:
            raise SidebandRefused(
                "call_already_attached", "A sideband socket is already attached to this call."
            )
        self.attached = True

    def detach(self) -> None:
        """The sideband socket left; another may attach while the call runs."""
        self.attached = False

    def end(self, reason: str) -> bool:
        """The call ends (``reason``); False when it had ended already."""
        if self.state is SipCallState.ENDED:
            return False
        self.state = SipCallState.ENDED
        self.end_reason = reason
        return True


def _turn_detection(config: Mapping[str, Any]) -> object:
    audio = config.get("audio")
    if not isinstance(audio, Mapping):
        return None
    audio_input = audio.get("input")
    return audio_input.get("turn_detection") if isinstance(audio_input, Mapping) else None
