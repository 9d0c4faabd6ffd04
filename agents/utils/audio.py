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


class AudioByteStream:
    """Cuts a stream of 16-bit PCM bytes into frames of ``samples_per_channel``
    (default 100 ms): ``push`` returns the whole frames available, ``flush`` the rest."""

    def __init__(self, sample_rate: int, num_channels: int, samples_per_channel: int | None = None) -> None:
        if sample_rate <= 0 or num_channels <= 0:
            raise ValueError(f"need a positive sample rate and channel count, got {sample_rate}, {num_channels}")
        self._sample_rate = sample_rate
        self._num_channels = num_channels
        self._samples_per_channel = samples_per_channel or sample_rate // 10
        self._bytes_per_frame = self._samples_per_channel * num_channels * 2
        self._buf = bytearray()

    def push(self, data: bytes | bytearray | memoryview) -> list[rtc.AudioFrame]:
        self._buf.extend(data)
        frames = []
        while len(self._buf) >= self._bytes_per_frame:
            chunk = bytes(self._buf[: self._bytes_per_frame])
            del self._buf[: self._bytes_per_frame]
            frames.append(rtc.AudioFrame(chunk, self._sample_rate, self._num_channels, self._samples_per_channel))
        return frames

    write = push

    def flush(self) -> list[rtc.AudioFrame]:
        whole = len(self._buf) - len(self._buf) % (2 * self._num_channels)  # drop a torn sample
        if whole == 0:
            self._buf.clear()
            return []
        chunk = bytes(self._buf[:whole])
        self._buf.clear()
        samples = whole // (2 * self._num_channels)
        return [rtc.AudioFrame(chunk, self._sample_rate, self._num_channels, samples)]

    def clear(self) -> None:
        self._buf.clear()


def combine_frames(buffer: AudioBuffer) -> rtc.AudioFrame:
    """One frame from a frame or a list of frames (the reference's ``utils.combine_frames``)."""
    return merge_frames(buffer)


def calculate_audio_duration(frames: AudioBuffer) -> float:
    """Seconds of audio in a frame or list of frames."""
    return buffer_duration(frames)


# The reference exposes file decoding here; it lives in its own module (PyAV is only
# imported when a file is decoded).
from .audio_decode import audio_frames_from_file as audio_frames_from_file  # noqa: E402
