"""Text-to-speech interface and adapters."""

from .fallback import AvailabilityChangedEvent, FallbackAdapter
from .metrics import TTSMetrics
from .stream_adapter import StreamAdapter
from .tts import TTS, ChunkedStream, SynthesizedAudio, SynthesizeStream, TTSCapabilities

__all__ = [
    "AvailabilityChangedEvent",
    "FallbackAdapter",
    "StreamAdapter",
    "ChunkedStream",
    "SynthesizeStream",
    "SynthesizedAudio",
    "TTS",
    "TTSCapabilities",
    "TTSMetrics",
]
