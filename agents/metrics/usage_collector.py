"""Running totals of what a session used (tokens, characters, audio seconds)."""

from __future__ import annotations

import dataclasses

from .base import AgentMetrics, LLMMetrics, RealtimeModelMetrics, STTMetrics, TTSMetrics


@dataclasses.dataclass(slots=True)
class UsageSummary:
    llm_prompt_tokens: int = 0
    llm_prompt_cached_tokens: int = 0
    llm_input_audio_tokens: int = 0
    llm_completion_tokens: int = 0
    llm_output_audio_tokens: int = 0
    tts_characters_count: int = 0
    tts_audio_duration: float = 0.0
    stt_audio_duration: float = 0.0


class UsageCollector:
    """Feed it every ``metrics_collected`` payload (it is callable, so it can be the
    listener itself); ``get_summary()`` returns a copy of the totals so far."""

    def __init__(self) -> None:
        self._summary = UsageSummary()

    def __call__(self, metrics: AgentMetrics) -> None:
        self.collect(metrics)

    def collect(self, metrics: AgentMetrics) -> None:
        s = self._summary
        if isinstance(metrics, LLMMetrics):
            s.llm_prompt_tokens += metrics.prompt_tokens
            s.llm_prompt_cached_tokens += metrics.prompt_cached_tokens
            s.llm_completion_tokens += metrics.completion_tokens
        elif isinstance(metrics, RealtimeModelMetrics):
            s.llm_prompt_tokens += metrics.input_tokens
            s.llm_prompt_cached_tokens += metrics.input_token_details.cached_tokens
            s.llm_input_audio_tokens += metrics.input_token_details.audio_tokens
            s.llm_completion_tokens += metrics.output_tokens
            s.llm_output_audio_tokens += metrics.output_token_details.audio_tokens
        elif isinstance(metrics, TTSMetrics):
            s.tts_characters_count += metrics.characters_count
            s.tts_audio_duration += metrics.audio_duration
        elif isinstance(metrics, STTMetrics):
            s.stt_audio_duration += metrics.audio_duration

    def get_summary(self) -> UsageSummary:
        return dataclasses.replace(self._summary)
