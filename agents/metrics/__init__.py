"""Every component's metrics in one place, as livekit-agents users import them."""

from .base import (
    AgentMetrics,
    EOUMetrics,
    LLMMetrics,
    RealtimeModelMetrics,
    STTMetrics,
    TTSMetrics,
    VADMetrics,
)
from .usage_collector import UsageCollector, UsageSummary
from .utils import log_metrics

__all__ = [
    "AgentMetrics",
    "EOUMetrics",
    "LLMMetrics",
    "RealtimeModelMetrics",
    "STTMetrics",
    "TTSMetrics",
    "UsageCollector",
    "UsageSummary",
    "VADMetrics",
    "log_metrics",
]
