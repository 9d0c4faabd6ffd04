"""Text-to-speech interface and adapters."""

from .emitter import AudioEmitter
from .fallback import AvailabilityChangedEvent, FallbackAdapter
from .metrics import TTSMetrics
from .stream_adapter import SentenceStreamPacer, StreamAdapter, StreamAdapterWrapper
from .tts import TTS, ChunkedStream, SynthesizedAudio, SynthesizeStream, TTSCapabilities, TTSError

__all__ = [
    "TTS",
    "AudioEmitter",
    "AvailabilityChangedEvent",
    "ChunkedStream",
    "FallbackAdapter",
    "SentenceStreamPacer",
    "StreamAdapter",
    "StreamAdapterWrapper",
    "SynthesizeStream",
    "SynthesizedAudio",
    "TTSCapabilities",
    "TTSError",
    "TTSMetrics",
]
