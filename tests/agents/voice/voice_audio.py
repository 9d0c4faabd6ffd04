"""Speech-like test audio: tone bursts (which EnergyVAD and FakeSTT hear as speech)
and silence, in 20 ms frames at 48 kHz mono like a room microphone."""

from __future__ import annotations

from livekit import rtc

from roomd.agents.utils.audio import silence, sine, split_frame

RATE = 48000
FRAME = 0.02


def tone(seconds: float, *, frequency: float = 300.0, amplitude: float = 0.3) -> list[rtc.AudioFrame]:
    return split_frame(sine(seconds, frequency=frequency, amplitude=amplitude, sample_rate=RATE), FRAME)


def quiet(seconds: float) -> list[rtc.AudioFrame]:
    return split_frame(silence(seconds, sample_rate=RATE), FRAME)


def utterance(speech: float = 0.4, pause: float = 0.6) -> list[rtc.AudioFrame]:
    """Speech followed by enough silence for the VAD to call it ended."""
    return tone(speech) + quiet(pause)
