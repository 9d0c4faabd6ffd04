"""One log line per metrics event, with the numbers as structured fields."""

from __future__ import annotations

import logging

from .base import (
    AgentMetrics,
    EOUMetrics,
    LLMMetrics,
    RealtimeModelMetrics,
    STTMetrics,
    TTSMetrics,
    VADMetrics,
)

_default_logger = logging.getLogger("roomd.agents")


def log_metrics(metrics: AgentMetrics, *, logger: logging.Logger | None = None) -> None:
    """Log ``metrics`` at INFO under a title naming its kind ("LLM metrics", ...)."""
    log = logger or _default_logger
    if isinstance(metrics, LLMMetrics):
        title, fields = "LLM metrics", {
            "ttft": round(metrics.ttft, 2),
            "prompt_tokens": metrics.prompt_tokens,
            "prompt_cached_tokens": metrics.prompt_cached_tokens,
            "completion_tokens": metrics.completion_tokens,
            "tokens_per_second": round(metrics.tokens_per_second, 2),
        }
    elif isinstance(metrics, RealtimeModelMetrics):
        title, fields = "RealtimeModel metrics", {
            "ttft": round(metrics.ttft, 2),
            "input_tokens": metrics.input_tokens,
            "cached_input_tokens": metrics.input_token_details.cached_tokens,
            "output_tokens": metrics.output_tokens,
            "total_tokens": metrics.total_tokens,
            "tokens_per_second": round(metrics.tokens_per_second, 2),
        }
    elif isinstance(metrics, TTSMetrics):
        title, fields = "TTS metrics", {
            "ttfb": round(metrics.ttfb, 3),
            "audio_duration": round(metrics.audio_duration, 2),
        }
    elif isinstance(metrics, EOUMetrics):
        title, fields = "EOU metrics", {
            "end_of_utterance_delay": round(metrics.end_of_utterance_delay, 2),
            "transcription_delay": round(metrics.transcription_delay, 2),
        }
    elif isinstance(metrics, STTMetrics):
        title, fields = "STT metrics", {"audio_duration": round(metrics.audio_duration, 2)}
    elif isinstance(metrics, VADMetrics):
        title, fields = "VAD metrics", {
            "inference_count": metrics.inference_count,
            "inference_duration_total": round(metrics.inference_duration_total, 3),
        }
    else:
        raise TypeError(f"log_metrics: not a metrics object: {type(metrics).__name__}")
    log.info(title, extra=fields)
