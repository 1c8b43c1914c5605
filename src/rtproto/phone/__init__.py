"""Phone lines bridged to a Realtime session, with no I/O: Twilio Media Streams
(:class:`TwilioBridge`), playback acknowledged by marks, silence for the audio the line did
not deliver. See docs/twilio.md."""

from __future__ import annotations

from .marks import Acknowledged, MarkLedger, SentItem
from .padding import InputPadding
from .twilio import TwilioBridge, TwilioBridgeOptions, TwilioMessageReceived

__all__ = [
    "Acknowledged",
    "InputPadding",
    "MarkLedger",
    "SentItem",
    "TwilioBridge",
    "TwilioBridgeOptions",
    "TwilioMessageReceived",
]
