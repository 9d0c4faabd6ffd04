from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class TTSMetrics:
    label: str
    request_id: str
    timestamp: float
    ttfb: float  # seconds from the request (or segment's first text) to the first audio; -1 if none
    duration: float  # seconds until the last audio of the request/segment
    audio_duration: float
    characters_count: int
    cancelled: bool
    streamed: bool
    segment_id: str = ""
    type: Literal["tts_metrics"] = "tts_metrics"
