"""The STT interface: batch ``recognize`` and streaming ``stream``.

Written as for livekit-agents: implement ``_recognize_impl`` (batch) and, for a
streaming STT, a ``RecognizeStream`` whose ``_run`` reads ``self._input_ch`` (frames, and
``self._FlushSentinel`` instances at segment ends) and puts ``SpeechEvent``s with
``self._event_ch.send_nowait`` (or roomd's ``self._send``). The base classes retry per
``APIConnectOptions`` and emit ``metrics_collected`` (``STTMetrics``) and ``error``
(``STTError``) on the ``STT``.
"""

from __future__ import annotations

import enum
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from livekit import rtc

from ..errors import APIError, ComponentErrorEvent
from ..metrics.base import STTMetrics
from ..types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, ComponentIdentity, NotGivenOr, is_given
from ..utils.audio import AudioBuffer, buffer_duration, frame_duration
from ..utils.events import EventEmitter
from ..utils.ids import shortuuid
from ..utils.retry import call_with_retries
from ..utils.streams import InputOutputStream

STTEvents: TypeAlias = Literal["metrics_collected", "error", "stt_availability_changed"]


class SpeechEventType(str, enum.Enum):
    START_OF_SPEECH = "start_of_speech"
    INTERIM_TRANSCRIPT = "interim_transcript"
    FINAL_TRANSCRIPT = "final_transcript"
    RECOGNITION_USAGE = "recognition_usage"
    END_OF_SPEECH = "end_of_speech"
    # roomd's (newer livekit-agents have it too): a likely transcript of the speech so far,
    # sent before the final one during a pause; it may still change (for preemptive_generation)
    PREFLIGHT_TRANSCRIPT = "preflight_transcript"


@dataclass(slots=True)
class SpeechData:
    language: str
    text: str
    start_time: float = 0.0
    end_time: float = 0.0
    confidence: float = 0.0
    speaker_id: str | None = None
    is_primary_speaker: bool | None = None


@dataclass(slots=True)
class RecognitionUsage:
    audio_duration: float


@dataclass(slots=True)
class SpeechEvent:
    type: SpeechEventType
    request_id: str = ""
    alternatives: list[SpeechData] = field(default_factory=list)
    recognition_usage: RecognitionUsage | None = None


@dataclass(frozen=True, slots=True)
class STTCapabilities:
    streaming: bool
    interim_results: bool
    diarization: bool = False


@dataclass(slots=True, kw_only=True)
class STTError(ComponentErrorEvent):
    type: Literal["stt_error"] = "stt_error"


class STT(ABC, ComponentIdentity, EventEmitter[STTEvents]):
    """Base class for speech-to-text.

    Implement ``_recognize_impl`` (batch) and, when ``capabilities.streaming``,
    ``stream``. ``recognize`` adds retries/timeouts per ``conn_options`` and emits
    ``STTMetrics``.
    """

    def __init__(self, *, capabilities: STTCapabilities) -> None:
        super().__init__()
        self._capabilities = capabilities

    @property
    def capabilities(self) -> STTCapabilities:
        return self._capabilities

    @abstractmethod
    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> SpeechEvent: ...

    async def recognize(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> SpeechEvent:
        if language is None:  # roomd's older callers said None for "the STT's default"
            language = NOT_GIVEN
        started = time.perf_counter()

        async def attempt() -> SpeechEvent:
            try:
                return await self._recognize_impl(buffer, language=language, conn_options=conn_options)
            except APIError as exc:
                self._emit_error(exc, recoverable=exc.retryable)
                raise

        event = await call_with_retries(attempt, conn_options, label=self.label)
        self.emit(
            "metrics_collected",
            STTMetrics(
                label=self.label,
                request_id=event.request_id,
                timestamp=time.time(),
                duration=time.perf_counter() - started,
                audio_duration=buffer_duration(buffer),
                streamed=False,
            ),
        )
        return event

    def _emit_error(self, api_error: Exception, recoverable: bool) -> None:
        self.emit(
            "error",
            STTError(timestamp=time.time(), label=self.label, error=api_error, recoverable=recoverable),
        )

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> RecognizeStream:
        raise NotImplementedError(
            f"{self.label} does not support streaming; wrap it in stt.StreamAdapter with a VAD"
        )

    async def aclose(self) -> None:
        """Release resources (optional)."""

    def prewarm(self) -> None:
        """Open connections or load models early (optional)."""

    async def __aenter__(self) -> STT:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class RecognizeStream(InputOutputStream[rtc.AudioFrame, SpeechEvent]):
    """Frames in (``push_frame``), ``SpeechEvent``s out.

    With ``sample_rate`` the frames are resampled to it before ``_run`` sees them.
    ``STTMetrics`` (streamed) are emitted for every ``RECOGNITION_USAGE`` event, or once
    at the end with the audio pushed when the stream reported no usage.
    """

    def __init__(
        self,
        *,
        stt: STT,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        sample_rate: NotGivenOr[int] = NOT_GIVEN,
        language: NotGivenOr[str] | None = NOT_GIVEN,
    ) -> None:
        self._stt = stt
        self._language = language if language is not None else NOT_GIVEN
        self._request_id = shortuuid("stt_")
        self.__needed_rate = sample_rate if is_given(sample_rate) else None
        self.__resampler: rtc.AudioResampler | None = None
        self.__resampler_rate = 0
        self.__audio_duration = 0.0
        self.__usage_reported = False
        super().__init__(conn_options=conn_options, label=stt.label)

    def push_frame(self, frame: rtc.AudioFrame) -> None:
        self.__audio_duration += frame_duration(frame)
        rate = self.__needed_rate
        if rate is None or frame.sample_rate == rate:
            self._push(frame)
            return
        if self.__resampler is None or self.__resampler_rate != frame.sample_rate:
            self.__resampler = rtc.AudioResampler(frame.sample_rate, rate, num_channels=frame.num_channels)
            self.__resampler_rate = frame.sample_rate
        for out in self.__resampler.push(frame):
            self._push(out)

    def flush(self) -> None:
        if self.__resampler is not None and not self._input_ch.closed:
            for out in self.__resampler.flush():
                self._push(out)
            self.__resampler = None
        super().flush()

    def _on_output(self, item: SpeechEvent) -> None:
        if item.type == SpeechEventType.RECOGNITION_USAGE and item.recognition_usage is not None:
            self.__usage_reported = True
            self.__emit_metrics(item.request_id or self._request_id, item.recognition_usage.audio_duration)

    def _on_failed_attempt(self, error: APIError, *, recoverable: bool) -> None:
        self._stt._emit_error(error, recoverable)

    def _emit_error(self, api_error: Exception, recoverable: bool) -> None:
        self._stt._emit_error(api_error, recoverable)

    def _on_done(self, *, cancelled: bool) -> None:
        if not self.__usage_reported:
            self.__emit_metrics(self._request_id, self.__audio_duration)

    def __emit_metrics(self, request_id: str, audio_duration: float) -> None:
        self._stt.emit(
            "metrics_collected",
            STTMetrics(
                label=self._stt.label,
                request_id=request_id,
                timestamp=time.time(),
                duration=0.0,
                audio_duration=audio_duration,
                streamed=True,
            ),
        )


# livekit-agents' older name
SpeechStream = RecognizeStream
