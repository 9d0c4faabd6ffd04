"""Speech-to-text interface and adapters."""

from .fallback import AvailabilityChangedEvent, FallbackAdapter
from .metrics import STTMetrics
from .stream_adapter import StreamAdapter, StreamAdapterWrapper
from .stt import (
    STT,
    RecognitionUsage,
    RecognizeStream,
    SpeechData,
    SpeechEvent,
    SpeechEventType,
    SpeechStream,
    STTCapabilities,
    STTError,
)

__all__ = [
    "AvailabilityChangedEvent",
    "FallbackAdapter",
    "StreamAdapter",
    "StreamAdapterWrapper",
    "STTError",
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
