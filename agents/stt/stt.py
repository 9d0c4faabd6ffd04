"""The STT interface: batch ``recognize`` and streaming ``stream``."""

from __future__ import annotations

import enum
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from livekit import rtc

from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ..utils.audio import AudioBuffer, buffer_duration, frame_duration
from ..utils.events import EventEmitter
from ..utils.ids import shortuuid
from ..utils.retry import call_with_retries
from ..utils.streams import InputOutputStream
from .metrics import STTMetrics

STTEvents: TypeAlias = Literal["metrics_collected", "error", "stt_availability_changed"]


class SpeechEventType(str, enum.Enum):
    START_OF_SPEECH = "start_of_speech"
    INTERIM_TRANSCRIPT = "interim_transcript"
    FINAL_TRANSCRIPT = "final_transcript"
    END_OF_SPEECH = "end_of_speech"
    RECOGNITION_USAGE = "recognition_usage"


@dataclass(slots=True)
class SpeechData:
    language: str
    text: str
    confidence: float = 0.0
    start_time: float = 0.0
    end_time: float = 0.0


@dataclass(slots=True)
class RecognitionUsage:
    audio_duration: float


@dataclass(slots=True)
class SpeechEvent:
    type: SpeechEventType
    alternatives: list[SpeechData] = field(default_factory=list)
    request_id: str = ""
    recognition_usage: RecognitionUsage | None = None


@dataclass(frozen=True, slots=True)
class STTCapabilities:
    streaming: bool
    interim_results: bool


class STT(ABC, EventEmitter[STTEvents]):
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
    async def _recognize_impl(
        self, buffer: AudioBuffer, *, language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent: ...

    async def recognize(
        self,
        buffer: AudioBuffer,
        *,
        language: str | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> SpeechEvent:
        started = time.perf_counter()
        event = await call_with_retries(
            lambda: self._recognize_impl(buffer, language=language, conn_options=conn_options),
            conn_options,
            label=self.label,
        )
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

    def stream(
        self,
        *,
        language: str | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> RecognizeStream:
        raise NotImplementedError(
            f"{self.label} does not support streaming; wrap it in stt.StreamAdapter with a VAD"
        )

    async def aclose(self) -> None:
        """Release resources (optional)."""

    def prewarm(self) -> None:
        """Open connections or load models early (optional)."""


class RecognizeStream(InputOutputStream[rtc.AudioFrame, SpeechEvent]):
    """Frames in (``push_frame``), ``SpeechEvent``s out. Implement ``_run``: read
    ``self._input_ch`` (frames and ``FLUSH`` markers) and ``self._send`` events.

    Emits ``STTMetrics`` (streamed) with the audio duration when it ends.
    """

    def __init__(
        self,
        *,
        stt: STT,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        language: str | None = None,
    ) -> None:
        self._stt = stt
        self._language = language
        self._audio_duration = 0.0
        self._request_id = shortuuid("stt_")
        super().__init__(conn_options=conn_options, label=stt.label)

    def push_frame(self, frame: rtc.AudioFrame) -> None:
        self._audio_duration += frame_duration(frame)
        self._push(frame)

    def _on_done(self, *, cancelled: bool) -> None:
        self._stt.emit(
            "metrics_collected",
            STTMetrics(
                label=self._stt.label,
                request_id=self._request_id,
                timestamp=time.time(),
                duration=0.0,
                audio_duration=self._audio_duration,
                streamed=True,
            ),
        )


# livekit-agents' older name
SpeechStream = RecognizeStream
