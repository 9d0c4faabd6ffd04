"""Kept for imports of the stt metrics from here; the class lives in ``roomd.agents.metrics``."""

from ..metrics.base import STTMetrics

__all__ = ["STTMetrics"]
