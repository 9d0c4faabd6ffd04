"""Speech-to-text interface and adapters."""

from .metrics import STTMetrics
from .stt import (
    STT,
    RecognitionUsage,
    RecognizeStream,
    SpeechData,
    SpeechEvent,
    SpeechEventType,
    SpeechStream,
    STTCapabilities,
)

__all__ = [
    "RecognitionUsage",
    "RecognizeStream",
    "STT",
    "STTCapabilities",
    "STTMetrics",
    "SpeechData",
    "SpeechEvent",
    "SpeechEventType",
    "SpeechStream",
]
