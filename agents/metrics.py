"""Every component's metrics in one place, as livekit-agents users import them."""

from .llm import LLMMetrics
from .stt import STTMetrics
from .tts import TTSMetrics
from .vad import VADMetrics
from .voice import EOUMetrics

__all__ = ["EOUMetrics", "LLMMetrics", "STTMetrics", "TTSMetrics", "VADMetrics"]
