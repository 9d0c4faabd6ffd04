"""Voice activity detection interface."""

from ..metrics.base import VADMetrics
from .vad import VAD, VADCapabilities, VADEvent, VADEventType, VADStream

__all__ = ["VAD", "VADCapabilities", "VADEvent", "VADEventType", "VADMetrics", "VADStream"]
