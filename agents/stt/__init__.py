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
    "STT",
    "AvailabilityChangedEvent",
    "FallbackAdapter",
    "RecognitionUsage",
    "RecognizeStream",
    "STTCapabilities",
    "STTError",
    "STTMetrics",
    "SpeechData",
    "SpeechEvent",
    "SpeechEventType",
    "SpeechStream",
    "StreamAdapter",
    "StreamAdapterWrapper",
]
