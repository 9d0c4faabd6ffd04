"""The TTS interface: ``synthesize`` (one text) and ``stream`` (text pushed over time).

Two ways to write a stream's ``_run``, both supported by the same base classes:

- livekit-agents style, ``async def _run(self, output_emitter)``: call
  ``output_emitter.initialize(...)`` then ``push`` bytes (PCM or an encoded format);
  streams also ``start_segment`` / ``end_segment`` (or ``flush``) per segment of text;
- roomd style, ``async def _run(self)``: put ``SynthesizedAudio`` with ``self._send``.

Either way the base class retries (``APIConnectOptions``), bounds the wait for the first
audio of a one-shot request, and emits ``metrics_collected`` (``TTSMetrics``) and
``error`` (``TTSError``) on the ``TTS``.
"""

from __future__ import annotations

import inspect
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import Literal, TypeAlias

from livekit import rtc

from ..errors import APIError, ComponentErrorEvent
from ..metrics.base import TTSMetrics
from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions, ComponentIdentity
from ..utils.audio import frame_duration
from ..utils.events import EventEmitter
from ..utils.ids import shortuuid
from ..utils.streams import InputOutputStream, OutputStream
from .emitter import AudioEmitter, SynthesizedAudio

TTSEvents: TypeAlias = Literal["metrics_collected", "error", "tts_availability_changed"]


@dataclass(frozen=True, slots=True)
class TTSCapabilities:
    streaming: bool
    aligned_transcript: bool = False  # word timings come with the audio


@dataclass(slots=True, kw_only=True)
class TTSError(ComponentErrorEvent):
    type: Literal["tts_error"] = "tts_error"


class TTS(ABC, ComponentIdentity, EventEmitter[TTSEvents]):
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

    async def __aenter__(self) -> TTS:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _takes_emitter(cls: type) -> bool:
    """Whether ``cls._run`` is written livekit-agents style (``_run(self, output_emitter)``)."""
    cached = cls.__dict__.get("_roomd_takes_emitter")
    if cached is None:
        params = list(inspect.signature(cls._run).parameters.values())  # type: ignore[attr-defined]
        cached = len(params) >= 2
        type.__setattr__(cls, "_roomd_takes_emitter", cached)
    return bool(cached)


def _report_error(tts: TTS, error: Exception, recoverable: bool) -> None:
    tts.emit(
        "error",
        TTSError(timestamp=time.time(), label=tts.label, error=error, recoverable=recoverable),
    )


class ChunkedStream(OutputStream[SynthesizedAudio]):
    """Audio for one text. Retries happen only before the first frame;
    ``conn_options.timeout`` bounds the wait for it."""

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
        self.__started_at = time.perf_counter()
        self.__ttfb = -1.0
        self.__audio_duration = 0.0
        super().__init__(conn_options=conn_options, label=tts.label)

    @property
    def input_text(self) -> str:
        return self._input_text

    @property
    def request_id(self) -> str:
        return self._request_id

    async def _run_attempt(self) -> None:
        if not _takes_emitter(type(self)):
            await self._run()
            return
        emitter = AudioEmitter(label=self._tts.label, dst_ch=self._event_ch)
        try:
            await self._run(emitter)  # type: ignore[call-arg]
            emitter.end_input()
            await emitter.join()
            if self._input_text.strip() and emitter.pushed_duration() <= 0.0:
                raise APIError(f"{self._tts.label}: no audio for {self._input_text!r}")
        finally:
            await emitter.aclose()

    def _on_output(self, item: SynthesizedAudio) -> None:
        if self.__ttfb < 0:
            self.__ttfb = time.perf_counter() - self.__started_at
        self.__audio_duration += frame_duration(item.frame)

    def _on_failed_attempt(self, error: APIError, *, recoverable: bool) -> None:
        _report_error(self._tts, error, recoverable)

    def _emit_error(self, api_error: Exception, recoverable: bool) -> None:
        _report_error(self._tts, api_error, recoverable)

    def _on_done(self, *, cancelled: bool) -> None:
        self._tts.emit(
            "metrics_collected",
            TTSMetrics(
                label=self._tts.label,
                request_id=self._request_id,
                timestamp=time.time(),
                ttfb=self.__ttfb,
                duration=time.perf_counter() - self.__started_at,
                audio_duration=self.__audio_duration,
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

    ``_run`` reads ``self._input_ch`` (text, and ``self._FlushSentinel`` instances at
    segment ends). A roomd-style ``_run(self)`` calls ``self._segment_done(segment_id)``
    after a segment's last frame so its ``TTSMetrics`` are emitted (ttfb from the
    segment's first text); with an ``AudioEmitter`` that happens at ``end_segment``.
    An emitter-based stream's audio carries, on the first frame of each segment, the
    text pushed for it (``delta_text``), which the session shows as the transcript.
    """

    def __init__(self, *, tts: TTS, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> None:
        self._tts = tts
        self._request_id = shortuuid("tts_")
        # Input runs ahead of output: one record per segment pushed, the oldest being
        # the one whose audio is coming out.
        self.__segments: deque[_SegmentStats] = deque([_SegmentStats()])
        self.__texts: deque[str] = deque()  # emitter streams: text of each flushed segment
        self.__text = ""
        self.__output_segment: str | None = None
        super().__init__(conn_options=conn_options, label=tts.label)

    @property
    def request_id(self) -> str:
        return self._request_id

    def push_text(self, token: str) -> None:
        current = self.__segments[-1]
        if current.first_text_at is None and token:
            current.first_text_at = time.perf_counter()
        current.chars += len(token)
        self.__text += token
        self._push(token)

    def flush(self) -> None:
        super().flush()
        self.__segments.append(_SegmentStats())
        self.__texts.append(self.__text)
        self.__text = ""

    async def _run_attempt(self) -> None:
        if not _takes_emitter(type(self)):
            await self._run()
            return
        emitter = AudioEmitter(
            label=self._tts.label, dst_ch=self._event_ch, on_segment_end=self._segment_done
        )
        try:
            await self._run(emitter)  # type: ignore[call-arg]
            emitter.end_input()
            await emitter.join()
        finally:
            await emitter.aclose()

    def _on_output(self, item: SynthesizedAudio) -> None:
        if _takes_emitter(type(self)) and item.segment_id != self.__output_segment:
            self.__output_segment = item.segment_id
            text = self.__texts.popleft() if self.__texts else ""
            if not item.delta_text:
                item.delta_text = text
        oldest = self.__segments[0]
        if oldest.ttfb < 0 and oldest.first_text_at is not None:
            oldest.ttfb = time.perf_counter() - oldest.first_text_at
        oldest.audio += frame_duration(item.frame)

    def _on_failed_attempt(self, error: APIError, *, recoverable: bool) -> None:
        _report_error(self._tts, error, recoverable)

    def _emit_error(self, api_error: Exception, recoverable: bool) -> None:
        _report_error(self._tts, api_error, recoverable)

    def _segment_done(self, segment_id: str, *, cancelled: bool = False) -> None:
        if len(self.__segments) > 1:
            stats = self.__segments.popleft()
        else:  # the segment still being fed (no flush yet)
            stats, self.__segments[0] = self.__segments[0], _SegmentStats()
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
