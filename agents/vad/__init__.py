"""Voice activity detection interface."""

from .vad import VAD, VADCapabilities, VADEvent, VADEventType, VADMetrics, VADStream

__all__ = ["VAD", "VADCapabilities", "VADEvent", "VADEventType", "VADMetrics", "VADStream"]
