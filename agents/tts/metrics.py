"""Kept for imports of the tts metrics from here; the class lives in ``roomd.agents.metrics``."""

from ..metrics.base import TTSMetrics

__all__ = ["TTSMetrics"]
