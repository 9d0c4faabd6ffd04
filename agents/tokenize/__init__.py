"""Text tokenizers: sentences for streaming TTS, words and syllables for transcripts."""

from . import basic, utils
from .sentences import (
    DEFAULT_ABBREVIATIONS,
    SentenceBuffer,
    SentenceStream,
    SentenceTokenizer,
    TokenData,
    split_words,
)
from .basic import WordTokenizer
from .token_stream import BufferedSentenceStream, BufferedTokenStream, BufferedWordStream, WordStream

__all__ = [
    "BufferedSentenceStream",
    "BufferedTokenStream",
    "BufferedWordStream",
    "DEFAULT_ABBREVIATIONS",
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
