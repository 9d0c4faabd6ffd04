"""What each component call cost, as the ``metrics_collected`` events carry it.

The field names and meanings follow livekit-agents 1.2 (``livekit.agents.metrics``), so an
exporter written for it reads these unchanged. They are keyword-only dataclasses; the
``model_dump`` / ``model_dump_json`` helpers give the dict and JSON forms users of the
reference's pydantic models call.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal, Union


class _Dumpable:
    def model_dump(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]

    def model_dump_json(self) -> str:
        return json.dumps(self.model_dump())


@dataclasses.dataclass(slots=True, kw_only=True)
class LLMMetrics(_Dumpable):
    type: Literal["llm_metrics"] = "llm_metrics"
    label: str
    request_id: str
    timestamp: float
    duration: float  # seconds for the whole stream
    ttft: float  # seconds to the first chunk; -1 when none arrived
    cancelled: bool
    completion_tokens: int
    prompt_tokens: int
    prompt_cached_tokens: int = 0
    total_tokens: int
    tokens_per_second: float
    speech_id: str | None = None


@dataclasses.dataclass(slots=True, kw_only=True)
class STTMetrics(_Dumpable):
    type: Literal["stt_metrics"] = "stt_metrics"
    label: str
    request_id: str
    timestamp: float
    duration: float  # processing time of a batch request; 0 for a stream
    audio_duration: float  # seconds of audio recognised
    streamed: bool


@dataclasses.dataclass(slots=True, kw_only=True)
class TTSMetrics(_Dumpable):
    type: Literal["tts_metrics"] = "tts_metrics"
    label: str
    request_id: str
    timestamp: float
    ttfb: float  # seconds from the request (or segment's first text) to the first audio; -1 if none
    duration: float  # seconds until the last audio of the request/segment
    audio_duration: float
    cancelled: bool
    characters_count: int
    streamed: bool
    segment_id: str | None = None
    speech_id: str | None = None


@dataclasses.dataclass(slots=True, kw_only=True)
class VADMetrics(_Dumpable):
    type: Literal["vad_metrics"] = "vad_metrics"
    label: str
    timestamp: float
    idle_time: float  # seconds since the last inference, when reported
    inference_duration_total: float
    inference_count: int


@dataclasses.dataclass(slots=True, kw_only=True)
class EOUMetrics(_Dumpable):
    """End of utterance: how long the turn took to be declared over.

    ``end_of_utterance_delay``: from the end of user speech (VAD) to the turn being
    committed; ``transcription_delay``: from the end of speech to the final transcript;
    ``on_user_turn_completed_delay``: time spent in ``Agent.on_user_turn_completed``;
    ``last_speaking_time``: when the user stopped speaking (``time.time()``).
    """

    type: Literal["eou_metrics"] = "eou_metrics"
    timestamp: float
    end_of_utterance_delay: float
    transcription_delay: float
    on_user_turn_completed_delay: float
    last_speaking_time: float = 0.0
    speech_id: str | None = None


@dataclasses.dataclass(slots=True, kw_only=True)
class _CachedTokenDetails(_Dumpable):
    audio_tokens: int = 0
    text_tokens: int = 0
    image_tokens: int = 0


@dataclasses.dataclass(slots=True, kw_only=True)
class _InputTokenDetails(_Dumpable):
    audio_tokens: int = 0
    text_tokens: int = 0
    image_tokens: int = 0
    cached_tokens: int = 0
    cached_tokens_details: _CachedTokenDetails | None = None


@dataclasses.dataclass(slots=True, kw_only=True)
class _OutputTokenDetails(_Dumpable):
    text_tokens: int = 0
    audio_tokens: int = 0
    image_tokens: int = 0


@dataclasses.dataclass(slots=True, kw_only=True)
class RealtimeModelMetrics(_Dumpable):
    CachedTokenDetails = _CachedTokenDetails
    InputTokenDetails = _InputTokenDetails
    OutputTokenDetails = _OutputTokenDetails

    type: Literal["realtime_model_metrics"] = "realtime_model_metrics"
    label: str
    model: str = ""
    request_id: str
    timestamp: float
    duration: float
    ttft: float
    cancelled: bool
    input_tokens: int
    output_tokens: int
    total_tokens: int
    tokens_per_second: float
    input_token_details: _InputTokenDetails = dataclasses.field(default_factory=_InputTokenDetails)
    output_token_details: _OutputTokenDetails = dataclasses.field(default_factory=_OutputTokenDetails)


AgentMetrics = Union[STTMetrics, LLMMetrics, TTSMetrics, VADMetrics, EOUMetrics, RealtimeModelMetrics]
