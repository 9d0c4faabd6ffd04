"""Audio files and small waits shared by the voice-stack tests."""

from __future__ import annotations

import os
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from livekit import rtc

DATA = Path(__file__).resolve().parent.parent / "data"


def load_wav(name: str) -> rtc.AudioFrame:
    """A 16-bit mono WAV from tests/data as one frame."""
    with wave.open(str(DATA / name)) as wav:
        assert wav.getsampwidth() == 2 and wav.getnchannels() == 1, name
        pcm = wav.readframes(wav.getnframes())
        return rtc.AudioFrame(pcm, wav.getframerate(), 1, len(pcm) // 2)


def split(frame: rtc.AudioFrame, duration: float = 0.02) -> list[rtc.AudioFrame]:
    samples = np.frombuffer(frame.data, dtype=np.int16)
    step = int(frame.sample_rate * duration)
    return [
        rtc.AudioFrame(samples[i : i + step].tobytes(), frame.sample_rate, 1, samples[i : i + step].size)
        for i in range(0, samples.size, step)
    ]


def resample(frame: rtc.AudioFrame, rate: int) -> rtc.AudioFrame:
    if frame.sample_rate == rate:
        return frame
    resampler = rtc.AudioResampler(frame.sample_rate, rate, num_channels=1)
    return rtc.combine_audio_frames(resampler.push(frame) + resampler.flush())


def silence(duration: float, rate: int) -> rtc.AudioFrame:
    return rtc.AudioFrame.create(rate, 1, int(rate * duration))


_NUMBERS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve".split()
    )
}


def words(text: str) -> list[str]:
    """Lowercase words without punctuation, numbers as digits ("nine" and "9" agree)."""
    plain = "".join(c.lower() if c.isalnum() or c.isspace() else " " for c in text).split()
    return [_NUMBERS.get(w, w) for w in plain]


def word_recall(reference: str, heard: str) -> float:
    """The share of the reference's words that were heard (order ignored)."""
    ref, got = words(reference), set(words(heard))
    return sum(1 for w in ref if w in got) / len(ref) if ref else 0.0


def require_local_stack(module: str) -> None:
    """Skip without the local stack, except under CI, where it must be installed."""
    try:
        __import__(module)
    except ImportError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the local voice stack is required in CI (packaging/local-stack.sh): {exc}")
        pytest.skip(f"local voice stack not installed ({exc}); run packaging/local-stack.sh")


async def serve_app(app: Any) -> tuple[Any, str]:
    """Serve an aiohttp ``app`` on a free 127.0.0.1 port: (runner to clean up, base URL ending in /v1)."""
    from aiohttp import web

    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/v1"
