"""Decoding audio files (wav, ogg, mp3, flac, ... anything FFmpeg reads) into frames, with PyAV.

Decoding runs in a worker thread a slice at a time, so a long file never blocks the
event loop and frames start flowing before the whole file is read.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncGenerator, Iterator
from typing import Any, BinaryIO

import numpy as np
from livekit import rtc

_SLICE_SECONDS = 0.5  # decoded per trip to the worker thread
_LAYOUTS = {1: "mono", 2: "stereo"}


class Decoder:
    """One open file (a path or a binary file object such as ``io.BytesIO``);
    ``next_slice`` may run in a worker thread, one call at a time. ``close`` waits for a
    slice being decoded: a reader cancelled mid-slice (a sound stopped) leaves that slice
    running in its thread, and closing the container under it crashes FFmpeg."""

    def __init__(self, source: str | BinaryIO, sample_rate: int, num_channels: int) -> None:
        import av

        path = source if isinstance(source, str) else "audio data"
        try:
            self._container: Any = av.open(source, "r")
        except av.error.FileNotFoundError:
            raise FileNotFoundError(f"audio file not found: {path}") from None
        except av.error.FFmpegError as exc:
            raise ValueError(f"{path} is not audio FFmpeg can read: {exc}") from None
        if not self._container.streams.audio:
            self._container.close()
            raise ValueError(f"{path} has no audio stream")
        self._path = path
        self._stream = self._container.streams.audio[0]
        self._resampler = av.AudioResampler(format="s16", layout=_LAYOUTS[num_channels], rate=sample_rate)
        self._frames: Iterator[Any] = self._container.decode(self._stream)
        self._sample_rate = sample_rate
        self._num_channels = num_channels
        self._flushed = False
        self._lock = threading.Lock()
        self._closed = False

    def next_slice(self) -> list[rtc.AudioFrame]:
        """About ``_SLICE_SECONDS`` of converted frames; an empty list at the end (or once closed)."""
        with self._lock:
            return [] if self._closed else self._decode()

    def _decode(self) -> list[rtc.AudioFrame]:
        import av

        out: list[rtc.AudioFrame] = []
        samples = 0
        while samples < _SLICE_SECONDS * self._sample_rate and not self._flushed:
            try:
                decoded = next(self._frames, None)
            except av.error.FFmpegError as exc:
                raise ValueError(f"{self._path}: decoding failed: {exc}") from None
            if decoded is None:
                self._flushed = True
            for frame in self._resampler.resample(decoded):
                converted = self._to_rtc(frame)
                if converted is not None:
                    out.append(converted)
                    samples += converted.samples_per_channel
        return out

    def _to_rtc(self, frame: Any) -> rtc.AudioFrame | None:
        # packed s16: one plane, channels interleaved
        data = np.ascontiguousarray(frame.to_ndarray(), dtype=np.int16).reshape(-1)
        count = data.size // self._num_channels
        if count == 0:
            return None
        return rtc.AudioFrame(data[: count * self._num_channels].tobytes(), self._sample_rate,
                              self._num_channels, count)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._container.close()


async def audio_frames_from_file(
    file_path: str, sample_rate: int = 48000, num_channels: int = 1
) -> AsyncGenerator[rtc.AudioFrame, None]:
    """Yield the audio of ``file_path`` as 16-bit ``rtc.AudioFrame``s at ``sample_rate`` with
    ``num_channels`` (1 or 2), converting as needed. Any format FFmpeg decodes is accepted.

    ``FileNotFoundError`` if the file does not exist; ``ValueError`` if it holds no
    decodable audio.
    """
    if num_channels not in _LAYOUTS:
        raise ValueError(f"num_channels must be 1 or 2, got {num_channels}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
    path = os.fspath(file_path)
    decoder = await asyncio.to_thread(Decoder, path, sample_rate, num_channels)
    try:
        while frames := await asyncio.to_thread(decoder.next_slice):
            for frame in frames:
                yield frame
    finally:
        decoder.close()
