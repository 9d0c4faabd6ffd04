"""Helpers for 16-bit PCM ``rtc.AudioFrame``s."""

from __future__ import annotations

import numpy as np
from livekit import rtc

AudioBuffer = list[rtc.AudioFrame] | rtc.AudioFrame


def frame_samples(frame: rtc.AudioFrame) -> np.ndarray:
    """Samples as int16, interleaved when there is more than one channel."""
    return np.frombuffer(frame.data, dtype=np.int16)


def frame_rms(frame: rtc.AudioFrame) -> float:
    """Root-mean-square level in [0, 1] (1.0 is a full-scale square wave)."""
    samples = frame_samples(frame)
    if samples.size == 0:
        return 0.0
    as_float = samples.astype(np.float32) / 32768.0
    return float(np.sqrt(np.mean(as_float * as_float)))


def frame_duration(frame: rtc.AudioFrame) -> float:
    return frame.samples_per_channel / frame.sample_rate


def buffer_duration(buffer: AudioBuffer) -> float:
    if isinstance(buffer, rtc.AudioFrame):
        return frame_duration(buffer)
    return sum(frame_duration(f) for f in buffer)


def merge_frames(buffer: AudioBuffer) -> rtc.AudioFrame:
    """One frame holding the whole buffer (all frames must share rate and channels)."""
    if isinstance(buffer, rtc.AudioFrame):
        return buffer
    if not buffer:
        raise ValueError("cannot merge an empty audio buffer")
    return rtc.combine_audio_frames(buffer)


def silence(duration: float, *, sample_rate: int = 48000, num_channels: int = 1) -> rtc.AudioFrame:
    samples = int(round(duration * sample_rate))
    return rtc.AudioFrame.create(sample_rate, num_channels, samples)


def sine(
    duration: float,
    *,
    frequency: float = 440.0,
    amplitude: float = 0.3,
    sample_rate: int = 48000,
    num_channels: int = 1,
    phase_samples: int = 0,
) -> rtc.AudioFrame:
    """A sine tone; ``phase_samples`` continues a tone across consecutive frames."""
    samples = int(round(duration * sample_rate))
    t = (np.arange(samples) + phase_samples) / sample_rate
    wave = (amplitude * 32767.0 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)
    if num_channels > 1:
        wave = np.repeat(wave, num_channels)
    return rtc.AudioFrame(wave.tobytes(), sample_rate, num_channels, samples)


def split_frame(frame: rtc.AudioFrame, frame_duration_s: float) -> list[rtc.AudioFrame]:
    """Cut a frame into frames of ``frame_duration_s`` (the last may be shorter)."""
    step = max(1, int(frame.sample_rate * frame_duration_s))
    data = frame_samples(frame)
    per = step * frame.num_channels
    out = []
    for start in range(0, data.size, per):
        chunk = data[start : start + per]
        out.append(
            rtc.AudioFrame(chunk.tobytes(), frame.sample_rate, frame.num_channels, chunk.size // frame.num_channels)
        )
    return out


combine_frames = merge_frames  # the reference's other name for it


def calculate_audio_duration(frames: AudioBuffer) -> float:
    """Seconds of audio in a frame or list of frames."""
    return buffer_duration(frames)


class AudioByteStream:
    """Cuts a stream of 16-bit PCM bytes into frames of ``samples_per_channel`` (default
    50 ms): ``write``/``push`` return the frames completed so far, ``flush`` the rest."""

    def __init__(self, sample_rate: int, num_channels: int, samples_per_channel: int | None = None) -> None:
        if sample_rate <= 0 or num_channels <= 0:
            raise ValueError(f"sample_rate and num_channels must be > 0, got {sample_rate}, {num_channels}")
        self._rate = sample_rate
        self._channels = num_channels
        self._samples = samples_per_channel or sample_rate // 20
        self._frame_bytes = self._samples * num_channels * 2
        self._buf = bytearray()

    def write(self, data: bytes | memoryview) -> list[rtc.AudioFrame]:
        self._buf += data
        frames = []
        while len(self._buf) >= self._frame_bytes:
            chunk, self._buf = bytes(self._buf[: self._frame_bytes]), self._buf[self._frame_bytes :]
            frames.append(rtc.AudioFrame(chunk, self._rate, self._channels, self._samples))
        return frames

    push = write

    def flush(self) -> list[rtc.AudioFrame]:
        """The remaining whole samples as a last, shorter frame (a trailing partial sample is dropped)."""
        whole = len(self._buf) - len(self._buf) % (2 * self._channels)
        data, self._buf = bytes(self._buf[:whole]), bytearray()
        if not data:
            return []
        return [rtc.AudioFrame(data, self._rate, self._channels, len(data) // (2 * self._channels))]

    def clear(self) -> None:
        self._buf.clear()


# The reference exposes file decoding here; it lives in its own module (PyAV is only
# imported when a file is decoded).
from .audio_decode import audio_frames_from_file as audio_frames_from_file
