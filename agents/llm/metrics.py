"""Kept for imports of the llm metrics from here; the class lives in ``roomd.agents.metrics``."""

from ..metrics.base import LLMMetrics

__all__ = ["LLMMetrics"]
