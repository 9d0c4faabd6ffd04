"""Text tokenizers: sentences for streaming TTS, words for interruption thresholds."""

from .sentences import (
    DEFAULT_ABBREVIATIONS,
    SentenceBuffer,
    SentenceStream,
    SentenceTokenizer,
    TokenData,
    split_words,
)

__all__ = [
    "DEFAULT_ABBREVIATIONS",
    "SentenceBuffer",
    "SentenceStream",
    "SentenceTokenizer",
    "TokenData",
    "split_words",
]
