"""The playground in a real browser: headless Chromium (Debian's, driven by Playwright)
opens the page a dev-mode daemon prints, presses Talk with a fake microphone that plays a
recorded question, and hears the receptionist answer; then a question is typed.

PLAYGROUND_SCREENSHOT=docs/playground.png saves the page after the spoken turn.
"""

from __future__ import annotations

import os
import shutil
import wave
from collections.abc import AsyncIterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from daemon_process import DaemonProcess
from roomd.daemon.console_session import RATE, read_wav_48k
from roomd.daemon.ops.playground import FETCH_HINT, find_livekit_client

DATA = Path(__file__).resolve().parents[1] / "data"
AGENT = "receptionist"
# The recorded question starts after the greeting, as a person waits for it.
WAIT_FOR_GREETING = 6.0

pytestmark = [pytest.mark.slow_models, pytest.mark.livekit_server,
              pytest.mark.asyncio(loop_scope="module")]


def _required(what: str, reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is required in CI: {reason}")
    pytest.skip(f"{what} unavailable: {reason}")


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        _required("chromium", "Debian's chromium is not installed (packaging/devenv.sh installs it)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        _required("playwright", "pip install -e '.[test]'")
    if find_livekit_client() is None:
        _required("livekit-client", f"not fetched; run {FETCH_HINT}")
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        _required("the local voice stack", "run packaging/local-stack.sh")
    if not any(ep.name == AGENT for ep in entry_points(group="roomd.agents")):
        _required("the receptionist example", "pip install -e plugins/examples/receptionist")
    return path


def _write_wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.astype(np.int16).tobytes())
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def page_url(livekit_server, tmp_path_factory) -> AsyncIterator[str]:
    """A dev-mode daemon serving the receptionist; the playground URL it printed."""
    _chromium()
    daemon = DaemonProcess(livekit_server, tmp_path_factory.mktemp("daemon"), config={
        "daemon": {"dev": True}, "plugins": {"enabled": [AGENT]},
        "pool": {"initialize_timeout": 120.0}})  # the models load slowly on a busy machine
    try:
        await daemon.start(timeout=180)
        printed = await daemon.wait_event(lambda e: str(e.get("event", "")).startswith("playground"))
        yield printed["url"] + f"?agent={AGENT}"
    finally:
        assert await daemon.stop() == 0


async def _open(url: str, microphone: Path) -> tuple[Any, Any, Any]:
    from playwright.async_api import async_playwright

    driver = await async_playwright().start()
    browser = await driver.chromium.launch(executable_path=_chromium(), args=[
        "--use-fake-ui-for-media-stream",  # grants the microphone as a click would
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}%noloop",
        "--autoplay-policy=no-user-gesture-required",
    ])
    page = await browser.new_page(viewport={"width": 1180, "height": 860})
    await page.goto(url)
    await page.wait_for_selector("#talk:not([disabled])", timeout=20_000)
    return driver, browser, page


async def _close(driver: Any, browser: Any, page: Any) -> None:
    try:
        if await page.evaluate("window.playground.connection") != "idle":
            await page.click("#hangup")
            await page.wait_for_function("window.playground.connection === 'idle'", timeout=10_000)
    finally:
        await browser.close()
        await driver.stop()


ANSWER_AFTER_QUESTION = """() => {
  const lines = window.playground.transcript;
  const asked = lines.findIndex(l => l.who === 'user' && l.final && /librar/i.test(l.text));
  return asked >= 0 && lines.slice(asked + 1).some(l => l.who === 'agent' && l.final && /librar/i.test(l.text));
}"""


async def test_a_spoken_question_is_answered_aloud_on_the_page(page_url: str, tmp_path: Path) -> None:
    question = read_wav_48k(DATA / "library_hours.wav")
    microphone = _write_wav(tmp_path / "mic.wav", np.concatenate([
        np.zeros(int(WAIT_FOR_GREETING * RATE), np.int16), question,
        np.zeros(int(3 * RATE), np.int16)]))
    driver, browser, page = await _open(page_url, microphone)
    try:
        await page.click("#talk")
        await page.wait_for_function(ANSWER_AFTER_QUESTION, timeout=120_000)
        # The answer was heard, not just read: audio with energy came through WebRTC.
        await page.wait_for_function(
            "window.playground.audio.bytesReceived > 20000 && window.playground.audio.energy > 0",
            timeout=10_000)
        seen = await page.evaluate("window.playground")
        assert {"listening", "thinking", "speaking"} <= set(seen["statesSeen"]), seen["statesSeen"]
        await page.wait_for_function(
            "Object.values(window.playground.turns).some(t => t.input === 'voice' && t.first_audio > 0"
            " && t.llm_ttft.length > 0 && t.transcription_delay !== null)", timeout=30_000)
        text = await page.inner_text("#transcript")
        assert "librar" in text.lower()
        rows = await page.locator("#turns tr").count()
        assert rows >= 1
        if target := os.environ.get("PLAYGROUND_SCREENSHOT"):
            await page.wait_for_function("window.playground.agentState === 'listening'", timeout=60_000)
            await page.screenshot(path=target, full_page=True)
    finally:
        await _close(driver, browser, page)


async def test_a_typed_question_is_answered(page_url: str, tmp_path: Path) -> None:
    quiet = _write_wav(tmp_path / "quiet.wav", np.zeros(int(2 * RATE), np.int16))
    driver, browser, page = await _open(page_url, quiet)
    try:
        await page.click("#talk")
        await page.wait_for_function("window.playground.statesSeen.includes('speaking')",
                                     timeout=60_000)  # the greeting
        await page.fill("#text", "When does the library open?")
        await page.click("#send")
        await page.wait_for_function(ANSWER_AFTER_QUESTION, timeout=120_000)
        await page.wait_for_function(
            "Object.values(window.playground.turns).some(t => t.input === 'text' && t.first_audio > 0)",
            timeout=60_000)
        await page.click("#hangup")
        await page.wait_for_function("window.playground.connection === 'idle'", timeout=10_000)
        assert "you hung up" in await page.inner_text("#transcript")
    finally:
        await _close(driver, browser, page)
