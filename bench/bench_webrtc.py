"""WebRTC latency benchmark: connect and first reply audio, aiortc and Chromium vs WebSocket.

One emulator (``rtproto.adapters.server.start_in_thread``, inside ``loopback_candidates()`` so
ICE runs over 127.0.0.1, default ``pace="realtime"``: replies are played out in real time, as
the API does; ``--pace fast`` sends WebSocket audio as fast as it is made, the WebRTC track is
real time either way) serves every client on this machine. One round per client:

* ``aiortc``: ``rtproto.adapters.webrtc.WebRTCConnection``, opened as ``connect_webrtc`` opens
  it (the bench wraps ``pc.createDataChannel`` to time the channel's ``open``). ``t0`` is just
  before ``createOffer``; *open* is the data channel's ``open``; *connected* is when
  ``connect_webrtc`` would return (``session.updated`` for the initial ``session.update``).
  Then ``send_message("Hello")`` (``conversation.item.create`` + ``response.create``) and the
  time to the first ``AudioChunk`` (decoded from the emulator's Opus track);
* ``Chromium``: headless Debian Chromium through Playwright (fake microphone,
  ``--allow-loopback-in-peer-connection``), a minimal page on the emulator's origin (served by
  ``page.route``) doing what OpenAI's browser example does with an ``ek_`` key minted from
  Python (untimed): ``getUserMedia``, ``createDataChannel('oai-events')``, ``addTrack``; ``t0``
  just before ``createOffer``, then ``fetch`` of the offer to ``/v1/realtime/calls``,
  ``setRemoteDescription``; *open* is the channel's ``open`` event, *connected* the
  ``session.updated`` for a ``session.update`` (server VAD off, so the fake microphone's
  beeps start no turn). Then ``conversation.item.create`` + ``response.create`` and the time
  until ``getStats()`` (polled every 5 ms) shows decoded inbound audio with energy above zero:
  the first audible frame out of the jitter buffer, so it includes Chromium's jitter delay and
  up to one poll interval;
* ``WebSocket``: ``rtproto.adapters.connect`` (asyncio, no initial session); *connected* is
  ``connect()`` returning (TCP + HTTP upgrade; there is no offer and no data channel), then
  the same ``send_message("Hello")`` and the time to the first ``AudioChunk``.

Each figure is the median (and min/max) over ``--rounds`` rounds (default 10), each on a new
connection. Run from the project root::

    .venv/bin/python bench/bench_webrtc.py            # markdown table
    .venv/bin/python bench/bench_webrtc.py --quick    # 3 rounds
    .venv/bin/python bench/bench_webrtc.py --json
    .venv/bin/python bench/bench_webrtc.py --pace fast --no-browser
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from rtproto.adapters import connect
from rtproto.adapters._media import loopback_candidates
from rtproto.adapters.server import RunningServer, ServerConfig, start_in_thread
from rtproto.adapters.webrtc import WebRTCConnection

from rtproto import events as E
from rtproto.session import AudioChunk

CHROMIUM = os.environ.get("RTPROTO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--allow-loopback-in-peer-connection",
]
PAGE = "/__rtproto_bench/index.html"
TIMEOUT = 20.0

#: In the page: one call and one turn; milliseconds from just before createOffer.
CHROMIUM_JS = """
async ({ calls, key, timeoutMs }) => {
  const deadline = new Promise((_, reject) =>
    setTimeout(() => reject(new Error('timed out')), timeoutMs));
  const run = async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const pc = new RTCPeerConnection();
    const dc = pc.createDataChannel('oai-events');
    pc.addTrack(stream.getAudioTracks()[0], stream);
    const audio = new Audio();
    audio.autoplay = true;
    pc.ontrack = (e) => { audio.srcObject = e.streams[0]; };
    const waiters = [];
    dc.onmessage = (m) => {
      const type = JSON.parse(m.data).type;
      for (const w of waiters.splice(0)) if (!w(type)) waiters.push(w);
    };
    const next = (kind) => new Promise((resolve) =>
      waiters.push((type) => type === kind && (resolve(performance.now()), true)));
    const opened = new Promise((resolve) => { dc.onopen = () => resolve(performance.now()); });
    const t0 = performance.now();
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const answer = await fetch(calls + '?model=gpt-realtime', {
      method: 'POST', body: offer.sdp,
      headers: { 'Content-Type': 'application/sdp', Authorization: 'Bearer ' + key },
    });
    if (!answer.ok) throw new Error('calls: ' + answer.status + ' ' + await answer.text());
    await pc.setRemoteDescription({ type: 'answer', sdp: await answer.text() });
    const open = await opened;
    const updated = next('session.updated');
    dc.send(JSON.stringify({ type: 'session.update', session: {
      type: 'realtime', audio: { input: { turn_detection: null } } } }));
    const connected = await updated;
    const energy = async () => {
      let total = 0;
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'audio') total = s.totalAudioEnergy || 0;
      });
      return total;
    };
    const before = await energy();
    const trigger = performance.now();
    dc.send(JSON.stringify({ type: 'conversation.item.create', item: {
      type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello' }] } }));
    dc.send(JSON.stringify({ type: 'response.create' }));
    let heard = null;
    while (heard === null) {
      if ((await energy()) > before) heard = performance.now();
      else await new Promise((r) => setTimeout(r, 5));
    }
    pc.close();
    stream.getTracks().forEach((t) => t.stop());
    return { open: open - t0, connected: connected - t0, audio: heard - trigger };
  };
  return await Promise.race([run(), deadline]);
}
"""


@dataclass
class Result:
    name: str
    open_ms: list[float] = field(default_factory=list)
    connected_ms: list[float] = field(default_factory=list)
    audio_ms: list[float] = field(default_factory=list)
    note: str = ""


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{median(values):.1f} ({min(values):.1f}..{max(values):.1f})"


# ----------------------------------------------------------------------------- aiortc client


async def aiortc_round(calls: str) -> tuple[float, float, float]:
    """One call with the aiortc driver: (open, connected, first audio after trigger), in ms."""
    conn = WebRTCConnection(
        url=calls,
        api_key="sk-bench",
        model="gpt-realtime",
        session={"type": "realtime", "audio": {"input": {"turn_detection": None}}},
        ice_servers=(),
        session_update_timeout=5.0,
        connect_timeout=TIMEOUT,
        disconnected_grace=5.0,
        ssl_context=None,
    )
    opened: list[float] = []
    create = conn.pc.createDataChannel

    def timed_channel(*args: Any, **kwargs: Any) -> Any:
        channel = create(*args, **kwargs)
        channel.on("open", lambda: opened.append(time.perf_counter()))
        return channel

    conn.pc.createDataChannel = timed_channel  # type: ignore[method-assign]
    t0 = time.perf_counter()
    try:
        await asyncio.wait_for(conn._open(), TIMEOUT)
        connected = time.perf_counter()
        await conn.send_message("Hello")
        trigger = time.perf_counter()
        async with asyncio.timeout(TIMEOUT):
            async for event in conn:
                if isinstance(event, AudioChunk):
                    heard = time.perf_counter()
                    break
            else:
                raise RuntimeError("the call ended before any audio")
    finally:
        await conn.close()
    return (opened[0] - t0) * 1e3, (connected - t0) * 1e3, (heard - trigger) * 1e3


# ----------------------------------------------------------------------------- WebSocket


async def websocket_round(url: str) -> tuple[float, float]:
    """One WebSocket session: (connected, first AudioChunk after trigger), in ms."""
    t0 = time.perf_counter()
    async with connect(f"{url}?model=gpt-realtime", api_key="sk-bench") as conn:
        connected = time.perf_counter()
        await conn.send_message("Hello")
        trigger = time.perf_counter()
        async with asyncio.timeout(TIMEOUT):
            async for event in conn:
                if isinstance(event, AudioChunk):
                    heard = time.perf_counter()
                    break
                if isinstance(event, E.ResponseDone):
                    raise RuntimeError("response.done before any audio")
    return (connected - t0) * 1e3, (heard - trigger) * 1e3


# ----------------------------------------------------------------------------- Chromium


def mint_key(base: str) -> str:
    request = urllib.request.Request(
        f"{base}/v1/realtime/client_secrets",
        data=json.dumps({"session": {"type": "realtime", "model": "gpt-realtime"}}).encode(),
        headers={"Authorization": "Bearer sk-bench", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        value: str = json.load(response)["value"]
    return value


def chromium_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM}"
    return None


def chromium_rounds(base: str, rounds: int, result: Result) -> None:
    from playwright.sync_api import sync_playwright

    html = "<!doctype html><meta charset='utf-8'><title>rtproto bench</title>"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"],
            headless=True,
        )
        try:
            for _ in range(rounds):
                key = mint_key(base)
                context = browser.new_context(permissions=["microphone"])
                try:
                    page = context.new_page()
                    page.route(
                        f"{base}{PAGE}",
                        lambda route: route.fulfill(
                            status=200, content_type="text/html", body=html
                        ),
                    )
                    page.goto(f"{base}{PAGE}", timeout=10_000)
                    times = page.evaluate(
                        CHROMIUM_JS,
                        {
                            "calls": f"{base}/v1/realtime/calls",
                            "key": key,
                            "timeoutMs": TIMEOUT * 1e3,
                        },
                    )
                finally:
                    context.close()
                result.open_ms.append(times["open"])
                result.connected_ms.append(times["connected"])
                result.audio_ms.append(times["audio"])
        finally:
            browser.close()


# ----------------------------------------------------------------------------- main


def run(rounds: int, pace: Literal["realtime", "fast"], browser: bool) -> list[Result]:
    aiortc = Result("aiortc (connect_webrtc)", note="first AudioChunk")
    chromium = Result("Chromium (Playwright)", note="first getStats energy > 0")
    websocket = Result("WebSocket (connect)", note="first AudioChunk")
    with loopback_candidates(), start_in_thread(ServerConfig(pace=pace)) as server:
        base = f"http://127.0.0.1:{server.port}"
        calls = f"{base}/v1/realtime/calls"

        async def async_rounds(running: RunningServer) -> None:
            for _ in range(rounds):
                open_, connected, audio = await aiortc_round(calls)
                aiortc.open_ms.append(open_)
                aiortc.connected_ms.append(connected)
                aiortc.audio_ms.append(audio)
            for _ in range(rounds):
                connected, audio = await websocket_round(running.url)
                websocket.connected_ms.append(connected)
                websocket.audio_ms.append(audio)

        asyncio.run(async_rounds(server))
        results = [aiortc]
        if browser:
            missing = chromium_missing()
            if missing is None:
                chromium_rounds(base, rounds, chromium)
                results.append(chromium)
            else:
                print(f"Chromium skipped: {missing}", file=sys.stderr)
        results.append(websocket)
    return results


def table(results: list[Result], rounds: int, pace: str) -> str:
    lines = [
        f"WebRTC vs WebSocket against the emulator on 127.0.0.1 (pace={pace}), "
        f"median (min..max) of {rounds} rounds, ms",
        "",
        "| client | offer → data channel open | offer → connected (session.updated) "
        "| trigger → first reply audio | audio measured as |",
        "|---|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {spread(r.open_ms)} | {spread(r.connected_ms)} "
            f"| {spread(r.audio_ms)} | {r.note} |"
        )
    lines += [
        "",
        f"Python {platform.python_version()}, {platform.machine()}, {platform.system()}; "
        "WebSocket: connected = connect() returned (TCP + upgrade; no offer, no data channel).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    parser.add_argument("--pace", choices=("realtime", "fast"), default="realtime")
    parser.add_argument("--no-browser", action="store_true", help="skip Chromium")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else args.rounds
    started = time.perf_counter()
    results = run(rounds, args.pace, not args.no_browser)
    if args.json:
        out: Callable[[Result], dict[str, Any]] = lambda r: {  # noqa: E731
            "client": r.name,
            "open_ms": r.open_ms,
            "connected_ms": r.connected_ms,
            "first_audio_ms": r.audio_ms,
            "median": {
                "open_ms": median(r.open_ms) if r.open_ms else None,
                "connected_ms": median(r.connected_ms),
                "first_audio_ms": median(r.audio_ms),
            },
        }
        print(
            json.dumps({"pace": args.pace, "rounds": rounds, "results": [out(r) for r in results]})
        )
    else:
        print(table(results, rounds, args.pace))
        print(f"\n(total {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
