"""Kept for imports of ``EOUMetrics`` from here; the class lives in ``roomd.agents.metrics``."""

from ..metrics.base import EOUMetrics

__all__ = ["EOUMetrics"]
