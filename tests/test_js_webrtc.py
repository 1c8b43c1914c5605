"""OpenAI's own browser client against the emulator: ``OpenAIRealtimeWebRTC`` from
``@openai/agents-realtime`` (the lock-filed fixture in ``tests/interop``), bundled with esbuild
and run in headless Chromium with a fake microphone.

The test mints an ephemeral key from Python (``POST /v1/realtime/client_secrets`` with a
server API key), builds ``tests/interop/webrtc_entry.js`` into a temporary directory
(``esbuild --bundle --format=esm --platform=browser``; no CDN), and serves it, with a tiny page
loading it as a module script, through Playwright's ``page.route`` on the emulator's own origin
(so the transport's ``fetch`` of ``/v1/realtime/calls`` is same-origin). In the page the
transport gets ``baseUrl`` (the emulator's calls endpoint) and an ``audioElement``; it opens the
microphone itself (``getUserMedia``: Chromium's fake device). ``connect()`` resolves on
``session.updated``; ``sendMessage('Hello')`` then has to produce a turn (``turn_done``,
``response.done``) whose audio arrives on the media track (``getStats()``: inbound audio
bytes and energy) and plays in the audio element. Server VAD is switched off in
``initialSessionConfig`` so the fake microphone's beeps do not start turns of their own.

Needs what ``tests/test_browser.py`` needs (Playwright's Python package, Debian Chromium,
aiortc) and what ``tests/test_js_interop.py`` needs (``node`` and ``npm``; ``npm ci`` on
demand). Without them the test skips, unless ``CI`` is set: then it fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from rtproto.adapters.server import RunningServer, ServerConfig, start_in_thread

from .test_browser import CHROMIUM, CHROMIUM_ARGS, _missing
from .test_js_interop import INTEROP, node  # noqa: F401  (``node`` is a fixture)

ENTRY = INTEROP / "webrtc_entry.js"
#: npm's link: a JS shim, or the native binary when esbuild's install script ran.
ESBUILD = INTEROP / "node_modules" / ".bin" / "esbuild"
API_KEY = "sk-server-test"
PAGE = "/__rtproto_sdk_webrtc/index.html"
SCRIPT = "/__rtproto_sdk_webrtc/bundle.js"

#: Runs in the page: the whole call, one JSON-able summary back (or an exception).
TURN_JS = """
async ({ calls, key, timeoutMs }) => {
  const deadline = (ms, what) => new Promise((_, reject) =>
    setTimeout(() => reject(new Error('timed out waiting for ' + what)), ms));
  const within = (promise, what) => Promise.race([promise, deadline(timeoutMs, what)]);
  const audio = document.createElement('audio');
  document.body.append(audio);
  const transport = new OpenAIRealtimeWebRTC({ baseUrl: calls, audioElement: audio });
  const events = [], errors = [], statuses = [];
  let transcript = '', audioEvents = 0, turnDone = null, session = null, responseDone = null;
  transport.on('*', (e) => {
    events.push(e.type);
    if (e.type === 'session.updated') session = e.session;
    if (e.type === 'response.done') responseDone = e.response;
  });
  transport.on('error', (e) => errors.push(String(e?.error?.message ?? e?.error ?? e)));
  transport.on('connection_change', (s) => statuses.push(s));
  transport.on('audio_transcript_delta', (e) => { transcript += e.delta; });
  transport.on('audio', () => { audioEvents += 1; });
  const done = new Promise((resolve) => transport.on('turn_done', (e) => {
    turnDone = e.response;
    resolve();
  }));
  const seen = (type) => new Promise((resolve) => {
    const check = () => events.includes(type) ? resolve() : setTimeout(check, 20);
    check();
  });
  await within(transport.connect({
    apiKey: key,
    model: 'gpt-realtime',
    initialSessionConfig: {
      instructions: 'Echo what you hear.',
      audio: { input: { turnDetection: null } },
    },
  }), 'connect()');
  const connected = { status: transport.status, callId: transport.callId };
  const pc = transport.connectionState.peerConnection;
  transport.sendMessage('Hello', {});
  await within(done, 'turn_done');
  await within(seen('output_audio_buffer.stopped'), 'output_audio_buffer.stopped');
  let inbound = null;
  for (let i = 0; i < 50; i++) {
    const stats = await pc.getStats();
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') inbound = s;
    });
    if (inbound && inbound.bytesReceived > 0 && inbound.totalAudioEnergy > 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const track = audio.srcObject ? audio.srcObject.getAudioTracks()[0] : null;
  const playing = {
    srcObject: audio.srcObject !== null,
    trackState: track ? track.readyState : null,
    paused: audio.paused,
    currentTime: audio.currentTime,
  };
  transport.close();
  return {
    connected, statuses, events, errors, transcript, audioEvents, playing,
    session: session && { turn_detection: session.audio?.input?.turn_detection ?? 'missing',
                          instructions: session.instructions, model: session.model },
    turnDone: turnDone && { id: turnDone.id, outputs: (turnDone.output ?? []).length,
                            tokens: turnDone.usage.totalTokens },
    responseDone: responseDone && { status: responseDone.status, id: responseDone.id },
    inbound: inbound && { bytes: inbound.bytesReceived, packets: inbound.packetsReceived,
                          energy: inbound.totalAudioEnergy,
                          samples: inbound.totalSamplesReceived },
  };
}
"""


@pytest.fixture(scope="module")
def bundle(node: str, tmp_path_factory: pytest.TempPathFactory) -> str:  # noqa: F811
    """``webrtc_entry.js`` bundled for the browser (about 1 MB of ESM), as text."""
    out = tmp_path_factory.mktemp("sdk-webrtc") / "bundle.js"
    done = subprocess.run(
        [
            str(ESBUILD),
            str(ENTRY),
            "--bundle",
            "--format=esm",
            "--platform=browser",
            "--log-level=warning",
            f"--outfile={out}",
        ],
        cwd=INTEROP,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"esbuild failed:\n{done.stdout}\n{done.stderr}"
    return out.read_text()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _missing()
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and the browser test cannot run: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"],
            headless=True,
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def server() -> Iterator[RunningServer]:
    from rtproto.adapters._media import loopback_candidates

    config = ServerConfig(pace="realtime", api_key=API_KEY)
    with loopback_candidates(), start_in_thread(config) as running:
        yield running


def mint_key(base: str) -> str:
    """An ``ek_`` key from the emulator, as an app server would mint it."""
    request = urllib.request.Request(
        f"{base}/v1/realtime/client_secrets",
        data=json.dumps({"session": {"type": "realtime", "model": "gpt-realtime"}}).encode(),
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.load(response)
    value = body["value"]
    assert isinstance(value, str) and value.startswith("ek_"), body
    return value


def open_page(browser: Any, base: str, bundle: str) -> tuple[Any, Any, list[str]]:
    """A page on the emulator's origin with the bundle loaded (``OpenAIRealtimeWebRTC`` set)."""
    context = browser.new_context(permissions=["microphone"])
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    html = f'<!doctype html><meta charset="utf-8"><script type="module" src="{SCRIPT}"></script>'
    page.route(
        f"{base}{PAGE}",
        lambda route: route.fulfill(status=200, content_type="text/html", body=html),
    )
    page.route(
        f"{base}{SCRIPT}",
        lambda route: route.fulfill(status=200, content_type="application/javascript", body=bundle),
    )
    page.goto(f"{base}{PAGE}", timeout=10_000)
    page.wait_for_function("() => typeof OpenAIRealtimeWebRTC === 'function'", timeout=10_000)
    return context, page, console


def test_sdk_webrtc_turn(browser: Any, server: RunningServer, bundle: str) -> None:
    base = f"http://127.0.0.1:{server.port}"
    key = mint_key(base)
    context, page, console = open_page(browser, base, bundle)
    try:
        summary: dict[str, Any] = page.evaluate(
            TURN_JS, {"calls": f"{base}/v1/realtime/calls", "key": key, "timeoutMs": 15_000}
        )
    except Exception as exc:
        raise AssertionError(f"{exc}\nconsole: {console}") from exc
    finally:
        context.close()
    context_info = f"{json.dumps(summary, indent=1)}\nconsole: {console}"
    assert summary["errors"] == [], context_info
    assert summary["connected"]["status"] == "connected", context_info
    assert summary["connected"]["callId"].startswith("rtc_"), context_info
    assert summary["statuses"][:2] == ["connecting", "connected"], context_info
    events = summary["events"]
    # connect() waited for the echo of its session.update, which took effect
    assert "session.updated" in events, context_info
    session = summary["session"]
    # VAD off: the emulator leaves a null turn_detection out of session.updated
    assert session["turn_detection"] in (None, "missing"), context_info
    assert "input_audio_buffer.speech_started" not in events, context_info
    assert session["instructions"] == "Echo what you hear.", context_info
    assert session["model"] == "gpt-realtime", context_info
    for kind in (
        "conversation.item.added",
        "response.created",
        "output_audio_buffer.started",
        "response.done",
        "output_audio_buffer.stopped",
    ):
        assert kind in events, f"{kind} missing: {context_info}"
    assert events.count("response.done") == 1, context_info
    assert summary["responseDone"]["status"] == "completed", context_info
    assert summary["turnDone"]["id"] == summary["responseDone"]["id"], context_info
    assert summary["turnDone"]["id"].startswith("resp_"), context_info
    assert summary["turnDone"]["outputs"] >= 1, context_info
    assert summary["turnDone"]["tokens"] > 0, context_info
    assert "Hello" in summary["transcript"], context_info
    # the reply played on the media track, not as data-channel audio deltas
    assert summary["audioEvents"] == 0, context_info
    inbound = summary["inbound"]
    assert inbound is not None, context_info
    assert inbound["bytes"] > 0 and inbound["packets"] > 0, context_info
    assert inbound["energy"] > 0, context_info  # decoded audio that is not silence
    playing = summary["playing"]
    assert playing["srcObject"] is True, context_info
    assert playing["trackState"] == "live", context_info
    assert playing["paused"] is False and playing["currentTime"] > 0, context_info
    assert not [line for line in console if line.startswith("pageerror")], console
