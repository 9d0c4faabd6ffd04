"""The TTS interface: ``synthesize`` (one text) and ``stream`` (text pushed over time)."""

from __future__ import annotations

import time
from collections import deque
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal, TypeAlias

from livekit import rtc

from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ..utils.audio import frame_duration
from ..utils.events import EventEmitter
from ..utils.ids import shortuuid
from ..utils.streams import InputOutputStream, OutputStream
from .metrics import TTSMetrics

TTSEvents: TypeAlias = Literal["metrics_collected", "error", "tts_availability_changed"]


@dataclass(frozen=True, slots=True)
class TTSCapabilities:
    streaming: bool


@dataclass(slots=True)
class SynthesizedAudio:
    frame: rtc.AudioFrame
    request_id: str
    is_final: bool = False  # the last frame of a request (chunked) or segment (stream)
    segment_id: str = ""
    delta_text: str = ""  # text this audio speaks, on the first frame of each piece


class TTS(ABC, EventEmitter[TTSEvents]):
    """Base class for text-to-speech producing 16-bit PCM at ``sample_rate``."""

    def __init__(self, *, capabilities: TTSCapabilities, sample_rate: int, num_channels: int) -> None:
        super().__init__()
        self._capabilities = capabilities
        self._sample_rate = sample_rate
        self._num_channels = num_channels

    @property
    def capabilities(self) -> TTSCapabilities:
        return self._capabilities

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def num_channels(self) -> int:
        return self._num_channels

    @property
    def label(self) -> str:
        return f"{type(self).__module__}.{type(self).__name__}"

    @property
    def model(self) -> str:
        return "unknown"

    @property
    def provider(self) -> str:
        return "unknown"

    @abstractmethod
    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> ChunkedStream: ...

    def stream(self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> SynthesizeStream:
        raise NotImplementedError(
            f"{self.label} does not support streaming; wrap it in tts.StreamAdapter"
        )

    def prewarm(self) -> None:
        """Open connections or load models early (optional)."""

    async def aclose(self) -> None:
        """Release resources (optional)."""


class ChunkedStream(OutputStream[SynthesizedAudio]):
    """Audio for one text. Implement ``_run`` calling ``self._send``. Retries happen only
    before the first frame; ``conn_options.timeout`` bounds the wait for it."""

    def __init__(
        self,
        *,
        tts: TTS,
        input_text: str,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> None:
        self._tts = tts
        self._input_text = input_text
        self._request_id = shortuuid("tts_")
        self._started_at = time.perf_counter()
        self._ttfb = -1.0
        self._audio_duration = 0.0
        super().__init__(conn_options=conn_options, label=tts.label)

    @property
    def input_text(self) -> str:
        return self._input_text

    @property
    def request_id(self) -> str:
        return self._request_id

    def _send(self, item: SynthesizedAudio) -> None:
        if self._ttfb < 0:
            self._ttfb = time.perf_counter() - self._started_at
        self._audio_duration += frame_duration(item.frame)
        super()._send(item)

    def _on_done(self, *, cancelled: bool) -> None:
        self._tts.emit(
            "metrics_collected",
            TTSMetrics(
                label=self._tts.label,
                request_id=self._request_id,
                timestamp=time.time(),
                ttfb=self._ttfb,
                duration=time.perf_counter() - self._started_at,
                audio_duration=self._audio_duration,
                characters_count=len(self._input_text),
                cancelled=cancelled,
                streamed=False,
            ),
        )

    async def collect(self) -> rtc.AudioFrame:
        """All the audio as one frame."""
        frames = [audio.frame async for audio in self]
        if not frames:
            raise ValueError(f"{self._tts.label} produced no audio for {self._input_text!r}")
        return rtc.combine_audio_frames(frames)


class SynthesizeStream(InputOutputStream[str, SynthesizedAudio]):
    """Text in (``push_text``; ``flush`` ends a segment), audio out.

    Implement ``_run`` reading ``self._input_ch`` (text and ``FLUSH``) and calling
    ``self._send``; call ``self._segment_done(segment_id)`` after a segment's last
    frame so its ``TTSMetrics`` (ttfb from the segment's first text) are emitted.
    """

    def __init__(self, *, tts: TTS, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> None:
        self._tts = tts
        self._request_id = shortuuid("tts_")
        # Input runs ahead of output: one record per segment pushed, the oldest being
        # the one whose audio is coming out.
        self._segments: deque[_SegmentStats] = deque([_SegmentStats()])
        super().__init__(conn_options=conn_options, label=tts.label)

    @property
    def request_id(self) -> str:
        return self._request_id

    def push_text(self, token: str) -> None:
        current = self._segments[-1]
        if current.first_text_at is None and token:
            current.first_text_at = time.perf_counter()
        current.chars += len(token)
        self._push(token)

    def flush(self) -> None:
        super().flush()
        self._segments.append(_SegmentStats())

    def _send(self, item: SynthesizedAudio) -> None:
        oldest = self._segments[0]
        if oldest.ttfb < 0 and oldest.first_text_at is not None:
            oldest.ttfb = time.perf_counter() - oldest.first_text_at
        oldest.audio += frame_duration(item.frame)
        super()._send(item)

    def _segment_done(self, segment_id: str, *, cancelled: bool = False) -> None:
        if len(self._segments) > 1:
            stats = self._segments.popleft()
        else:  # the segment still being fed (no flush yet)
            stats, self._segments[0] = self._segments[0], _SegmentStats()
        started = stats.first_text_at
        self._tts.emit(
            "metrics_collected",
            TTSMetrics(
                label=self._tts.label,
                request_id=self._request_id,
                timestamp=time.time(),
                ttfb=stats.ttfb,
                duration=time.perf_counter() - started if started is not None else 0.0,
                audio_duration=stats.audio,
                characters_count=stats.chars,
                cancelled=cancelled,
                streamed=True,
                segment_id=segment_id,
            ),
        )


@dataclass(slots=True)
class _SegmentStats:
    first_text_at: float | None = None
    chars: int = 0
    ttfb: float = -1.0
    audio: float = 0.0
