"""Text-to-speech interface and adapters."""

from .metrics import TTSMetrics
from .tts import TTS, ChunkedStream, SynthesizedAudio, SynthesizeStream, TTSCapabilities

__all__ = [
    "ChunkedStream",
    "SynthesizeStream",
    "SynthesizedAudio",
    "TTS",
    "TTSCapabilities",
    "TTSMetrics",
]
