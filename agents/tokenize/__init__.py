"""Text tokenizers: sentences for streaming TTS, words and syllables for transcripts."""

from . import basic, utils
from .basic import WordTokenizer
from .sentences import (
    DEFAULT_ABBREVIATIONS,
    SentenceBuffer,
    SentenceStream,
    SentenceTokenizer,
    TokenData,
    split_words,
)
from .token_stream import (
    BufferedSentenceStream,
    BufferedTokenStream,
    BufferedWordStream,
    WordStream,
)

__all__ = [
    "DEFAULT_ABBREVIATIONS",
    "BufferedSentenceStream",
    "BufferedTokenStream",
    "BufferedWordStream",
    "SentenceBuffer",
    "SentenceStream",
    "SentenceTokenizer",
    "TokenData",
    "WordStream",
    "WordTokenizer",
    "basic",
    "split_words",
    "utils",
]
