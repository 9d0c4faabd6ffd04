from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class STTMetrics:
    label: str
    request_id: str
    timestamp: float
    duration: float  # processing time (batch: the recognize call; stream: 0)
    audio_duration: float  # seconds of audio recognised
    streamed: bool
    type: Literal["stt_metrics"] = "stt_metrics"
