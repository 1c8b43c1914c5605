"""One response at a time: defer, coalesce and release ``response.create`` requests.

A pure state machine after the JS SDK's response-create sequencer. The session core asks it
what to send; it never sends anything itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..models import ResponseCreateParams

__all__ = ["PendingCreate", "ResponseSequencer"]


@dataclass(frozen=True)
class PendingCreate:
    """A ``response.create`` waiting its turn. Automatic requests carry no parameters."""

    params: ResponseCreateParams | None
    manual: bool
    extra: dict[str, object] | None = None
    #: How many requests this one create answers (automatic requests coalesce).
    requests: int = 1

    @property
    def out_of_band(self) -> bool:
        """Whether it asks for a response outside the default conversation."""
        if self.params is not None:
            return self.params.conversation == "none"
        response = self.extra.get("response") if self.extra is not None else None
        return isinstance(response, dict) and response.get("conversation") == "none"


@dataclass
class ResponseSequencer:
    """Decides when a ``response.create`` may go and when a ``response.cancel`` makes sense.

    Invariant: at most one ``response.create`` is in flight (sent, not yet answered by
    ``response.created`` or an error), and none is sent while a response that writes to the
    default conversation is active.
    """

    in_flight: str | None = None  # event_id of the create awaiting response.created
    in_flight_request: PendingCreate | None = None
    active: list[str] = field(default_factory=list)  # default-conversation responses running
    #: A cancel went for the latest active response (reset when the next one starts).
    cancel_requested: bool = False
    pending: list[PendingCreate] = field(default_factory=list)
    #: The server refused a create because a response this session never saw created is
    #: running: nothing goes until a response starts or ends.
    blocked: bool = False

    @property
    def busy(self) -> bool:
        """Whether a create is in flight or a response is active."""
        return self.in_flight is not None or bool(self.active) or self.blocked

    def request(self, params: ResponseCreateParams | None, *, manual: bool) -> None:
        """Queue a create; an automatic request coalesces with an automatic one queued last."""
        if manual or not self._coalesce(-1, 1):
            self.pending.append(PendingCreate(params, manual))

    def _coalesce(self, index: int, requests: int) -> bool:
        """Let the create at ``index`` of the queue answer ``requests`` more, if it is an
        automatic one; False when it is not (or the queue is empty)."""
        if not self.pending or self.pending[index].manual:
            return False
        create = self.pending[index]
        self.pending[index] = replace(create, requests=create.requests + requests)
        return True

    def request_raw(self, extra: dict[str, object]) -> None:
        """Queue a raw ``response.create`` object from the application (always manual)."""
        self.pending.append(PendingCreate(None, True, extra))

    def next_to_send(self) -> PendingCreate | None:
        """The create to send now, if one may go; the caller must then call :meth:`sent`."""
        if self.busy or not self.pending:
            return None
        return self.pending.pop(0)

    def sent(self, request: PendingCreate, event_id: str) -> None:
        """Record that ``request`` went out as the event ``event_id``."""
        self.in_flight = event_id
        self.in_flight_request = request

    def response_created(self, response_id: str, default_conversation: bool) -> None:
        """A response started (ours or the server's, e.g. after VAD)."""
        self.blocked = False
        if default_conversation:
            self.in_flight = None
            self.in_flight_request = None
            if response_id not in self.active:  # (a repeated response.created is one response)
                self.active.append(response_id)
            self.cancel_requested = False
        elif self.in_flight_request is not None and self.in_flight_request.out_of_band:
            # an out-of-band response answers an out-of-band create (one for the default
            # conversation still waits for its own: it must not let a second one go)
            self.in_flight = None
            self.in_flight_request = None

    def response_done(self, response_id: str) -> None:
        """A response ended."""
        self.blocked = False
        if response_id in self.active:
            self.active.remove(response_id)

    def create_failed(self, event_id: str | None, code: str | None, message: str) -> bool:
        """An error may answer the in-flight create; returns whether it did.

        As in the JS sequencer, the refused request is dropped (sent again it would meet the
        same refusal, forever) and the automatic requests it had absorbed get a create of
        their own, ahead of the queue. After a busy refusal (a response this session never
        saw start is running) the automatic ones all wait for a response to start or end.
        """
        if self.in_flight is None:
            return False
        linked = event_id is not None and event_id == self.in_flight
        # a response runs that this session never saw start (the beta service said so with
        # code null and the message alone: service-observations.md 10)
        busy = (
            code == "conversation_already_has_active_response"
            or "already has an active response" in message
        )
        about_create = busy or "response_create" in (code or "") or "response.create" in message
        if not (linked or (event_id is None and about_create)):
            return False
        request = self.in_flight_request
        self.in_flight = None
        self.in_flight_request = None
        # Retrying at once would meet the same refusal: wait for that response to show.
        self.blocked = busy
        if request is not None and not request.manual:
            retried = request.requests if busy else request.requests - 1
            if retried and not self._coalesce(0, retried):
                self.pending.insert(0, PendingCreate(None, False, requests=retried))
        return True

    def begin_cancel(self) -> str | None:
        """The response to cancel, if a cancel makes sense now (then it is marked requested)."""
        if not self.active or self.cancel_requested:
            return None
        self.cancel_requested = True
        return self.active[-1]

    def release(self) -> None:
        """Forget everything (the connection ended)."""
        self.in_flight = None
        self.in_flight_request = None
        self.active.clear()
        self.pending.clear()
        self.blocked = False
