"""What an LLM call cost, emitted as ``metrics_collected``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class LLMMetrics:
    label: str
    request_id: str
    timestamp: float
    ttft: float  # seconds to the first chunk; -1 when none arrived
    duration: float  # seconds for the whole stream
    cancelled: bool
    completion_tokens: int
    prompt_tokens: int
    total_tokens: int
    tokens_per_second: float
    type: Literal["llm_metrics"] = "llm_metrics"
