"""A real browser against the emulator: headless Chromium loads the demo page served at ``/``,
mints an ephemeral key, calls over WebRTC with its fake microphone (a tone) and talks.

Needs Debian's Chromium (``/usr/bin/chromium``, or ``RTPROTO_CHROMIUM``) and Playwright's
Python package (never ``playwright install``: the system browser is used). Without them the
test is skipped, unless ``CI`` is set: then it fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rtproto.adapters.server import RunningServer, ServerConfig, start_in_thread

CHROMIUM = os.environ.get("RTPROTO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    # ICE over 127.0.0.1 (the emulator's side is forced there too): works without a LAN
    "--allow-loopback-in-peer-connection",
]


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    try:
        import aiortc  # noqa: F401
    except ImportError:
        return "aiortc is not installed (pip install 'rtproto[webrtc]')"
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _missing()
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and the browser test cannot run: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def server() -> Iterator[RunningServer]:
    from rtproto.adapters._media import loopback_candidates

    with loopback_candidates(), start_in_thread(ServerConfig(pace="realtime")) as running:
        yield running


def test_browser_call_upstream(browser: Any) -> None:
    """The same page against an upstream-mode server: A mints the key with B (the stand-in for
    the real service, which accepts only the real key) and the page calls B directly."""
    from rtproto.adapters._media import loopback_candidates

    with (
        loopback_candidates(),
        start_in_thread(ServerConfig(pace="realtime", api_key="sk-real")) as service,
        start_in_thread(
            ServerConfig(upstream=service.base_url, upstream_key="sk-real", api_key="sk-local")
        ) as front,
    ):
        assert "sk-real" not in repr(front.server.config)
        context = browser.new_context(permissions=["microphone"])
        page = context.new_page()
        console: list[str] = []
        page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
        try:
            page.goto(f"http://127.0.0.1:{front.port}/", timeout=10_000)
            page.click("#talk")  # the page's key is sk-local: only A accepts it
            try:
                page.wait_for_function(
                    "() => rtproto.state === 'connected'", timeout=15_000, polling=100
                )
            except Exception as exc:
                state = page.evaluate("() => ({state: rtproto.state, error: rtproto.error})")
                raise AssertionError(f"{state}; console: {console}") from exc
            call_id = page.evaluate("() => rtproto.callId")
            assert call_id in service.server.calls  # the call went straight to B
            assert front.server.calls == {}
            assert len(service.server.ephemeral_keys) == 1  # B minted the key, through A
            assert len(front.server.ephemeral_keys) == 0
        finally:
            context.close()
    assert not console, console


def test_browser_call(browser: Any, server: RunningServer, tmp_path: Path) -> None:
    context = browser.new_context(
        permissions=["microphone"], viewport={"width": 1000, "height": 900}
    )
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    try:
        page.goto(f"http://127.0.0.1:{server.port}/", timeout=10_000)
        page.click("#talk")

        def until(expression: str, timeout: float = 15_000) -> None:
            try:
                page.wait_for_function(expression, timeout=timeout, polling=100)
            except Exception as exc:
                state = page.evaluate(
                    "() => ({state: rtproto.state, error: rtproto.error, "
                    "events: rtproto.events.map(e => e.direction + ' ' + e.type), "
                    "sent: rtproto.bytesSent, received: rtproto.bytesReceived})"
                )
                raise AssertionError(f"{expression}: {state}; console: {console}") from exc

        def seen(kind: str) -> str:
            return f"() => rtproto.events.some(e => e.direction === 'in' && e.type === '{kind}')"

        until("() => rtproto.dc && rtproto.dc.readyState === 'open'")
        until(seen("session.updated"))
        assert page.text_content("#state") == "connected"
        sent = page.evaluate("() => rtproto.events.filter(e => e.direction === 'out')")
        assert sent[0]["type"] == "session.update"
        # the fake microphone plays a tone: the server VAD hears it and the model answers
        until(seen("input_audio_buffer.speech_started"))
        until(seen("response.created"))
        until(seen("output_audio_buffer.started"))
        until("() => rtproto.bytesSent > 0 && rtproto.bytesReceived > 0")
        until("() => rtproto.level > 0.01", 5_000)  # the mic meter moves
        page.wait_for_timeout(500)
        shot = page.screenshot(full_page=True)
    finally:
        context.close()
    (tmp_path / "browser-demo.png").write_bytes(shot)
    target = os.environ.get("RTPROTO_SCREENSHOT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_bytes(shot)
    assert not [line for line in console if line.startswith("pageerror")], console
