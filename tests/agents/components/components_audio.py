"""Audio helpers for the component tests (imported by name: tests are not a package)."""

from __future__ import annotations

from livekit import rtc

from roomd.agents.utils import silence, sine, split_frame

RATE = 16000
FRAME = 0.02


def speech_frames(seconds: float) -> list[rtc.AudioFrame]:
    """A loud tone standing in for speech (what the energy-driven components detect)."""
    return split_frame(sine(seconds, amplitude=0.3, sample_rate=RATE), FRAME)


def quiet_frames(seconds: float) -> list[rtc.AudioFrame]:
    return split_frame(silence(seconds, sample_rate=RATE), FRAME)
