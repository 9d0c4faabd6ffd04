"""The VAD interface: a stream of speech start/end events with probabilities.

Written as for livekit-agents: a ``VADStream`` subclass implements ``_main_task``,
reading ``self._input_ch`` (frames, and ``self._FlushSentinel`` instances) and putting
``VADEvent``s with ``self._event_ch.send_nowait``. roomd's own VADs implement ``_run``
instead (and may use ``self._send``); either works. The base class emits
``metrics_collected`` (``VADMetrics``) on the ``VAD`` about once per second of inferences.
"""

from __future__ import annotations

import enum
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from livekit import rtc

from ..metrics.base import VADMetrics
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


class VAD(ABC, EventEmitter[VADEvents]):
    def __init__(self, *, capabilities: VADCapabilities) -> None:
        super().__init__()
        self._capabilities = capabilities
        self._label = f"{type(self).__module__}.{type(self).__name__}"

    @property
    def capabilities(self) -> VADCapabilities:
        return self._capabilities

    @property
    def label(self) -> str:
        return self._label

    @abstractmethod
    def stream(self) -> VADStream: ...

    async def aclose(self) -> None:
        """Release resources (optional)."""


class VADStream(InputOutputStream[rtc.AudioFrame, VADEvent]):
    """Frames in, ``VADEvent``s out. Implement ``_main_task`` (or roomd's ``_run``)."""

    def __init__(self, vad: VAD, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> None:
        self._vad = vad
        self._last_activity_time = time.perf_counter()
        self.__inference_total = 0.0
        self.__inference_count = 0
        super().__init__(conn_options=conn_options, label=vad.label)

    async def _run(self) -> None:
        await self._main_task()

    async def _main_task(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _main_task (or _run)")

    def push_frame(self, frame: rtc.AudioFrame) -> None:
        self._push(frame)

    def _on_output(self, item: VADEvent) -> None:
        if item.type in (VADEventType.START_OF_SPEECH, VADEventType.END_OF_SPEECH):
            self._last_activity_time = time.perf_counter()
            return
        self.__inference_total += item.inference_duration
        self.__inference_count += 1
        # About one report per second of audio: update_interval is seconds per inference.
        if self.__inference_count * self._vad.capabilities.update_interval >= 1.0:
            self._vad.emit(
                "metrics_collected",
                VADMetrics(
                    label=self._vad.label,
                    timestamp=time.time(),
                    idle_time=time.perf_counter() - self._last_activity_time,
                    inference_duration_total=self.__inference_total,
                    inference_count=self.__inference_count,
                ),
            )
            self.__inference_total, self.__inference_count = 0.0, 0
