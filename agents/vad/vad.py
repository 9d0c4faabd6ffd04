"""The VAD interface: a stream of speech start/end events with probabilities."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from livekit import rtc

from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ..utils.events import EventEmitter
from ..utils.streams import InputOutputStream

VADEvents: TypeAlias = Literal["metrics_collected"]


class VADEventType(str, enum.Enum):
    START_OF_SPEECH = "start_of_speech"
    INFERENCE_DONE = "inference_done"
    END_OF_SPEECH = "end_of_speech"


@dataclass(slots=True)
class VADEvent:
    type: VADEventType
    samples_index: int  # index (in samples at the input rate) of the end of the inferred audio
    timestamp: float  # seconds of audio pushed so far
    speech_duration: float  # of the current/ended speech
    silence_duration: float  # since the speech ended (or before it started)
    frames: list[rtc.AudioFrame] = field(default_factory=list)  # END_OF_SPEECH: the speech
    probability: float = 0.0
    inference_duration: float = 0.0
    speaking: bool = False
    raw_accumulated_silence: float = 0.0
    raw_accumulated_speech: float = 0.0


@dataclass(frozen=True, slots=True)
class VADCapabilities:
    update_interval: float  # seconds of audio between INFERENCE_DONE events


@dataclass(frozen=True, slots=True)
class VADMetrics:
    label: str
    timestamp: float
    idle_time: float  # seconds since the last inference, when reported
    inference_duration_total: float
    inference_count: int
    type: Literal["vad_metrics"] = "vad_metrics"


class VAD(ABC, EventEmitter[VADEvents]):
    def __init__(self, *, capabilities: VADCapabilities) -> None:
        super().__init__()
        self._capabilities = capabilities

    @property
    def capabilities(self) -> VADCapabilities:
        return self._capabilities

    @property
    def label(self) -> str:
        return f"{type(self).__module__}.{type(self).__name__}"

    @abstractmethod
    def stream(self) -> VADStream: ...

    async def aclose(self) -> None:
        """Release resources (optional)."""


class VADStream(InputOutputStream[rtc.AudioFrame, VADEvent]):
    """Frames in, ``VADEvent``s out. Implement ``_run`` reading ``self._input_ch``."""

    def __init__(self, vad: VAD, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> None:
        self._vad = vad
        super().__init__(conn_options=conn_options, label=vad.label)

    def push_frame(self, frame: rtc.AudioFrame) -> None:
        self._push(frame)
