"""Rule-based tokenizers with livekit-agents' ``tokenize.basic`` names: sentences
(roomd's splitter), words, and syllables (``hyphenate_word``, from pyphen's TeX
hyphenation patterns), used to pace transcripts to speech."""

from __future__ import annotations

import functools
import re

import pyphen

from ..types import NOT_GIVEN, NotGivenOr
from . import sentences
from .token_stream import BufferedWordStream

_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)
_PARAGRAPH = re.compile(r"\n\s*\n")


class SentenceTokenizer(sentences.SentenceTokenizer):
    """Sentences: ``min_sentence_len`` joins short ones to the next. ``language`` other
    than English keeps the same rules (abbreviations are English ones)."""

    def __init__(
        self,
        *,
        language: str = "english",
        min_sentence_len: int = 20,
        stream_context_len: int = 10,
        retain_format: bool = False,
    ) -> None:
        super().__init__(language=language, min_sentence_len=min_sentence_len)
        self.stream_context_len = stream_context_len
        self.retain_format = retain_format


class WordTokenizer:
    """Words split on whitespace. ``ignore_punctuation`` removes punctuation from them
    (``"It's"`` becomes ``"Its"``; tokens of punctuation only disappear);
    ``split_character`` cuts CJK-style text with no spaces into single characters."""

    def __init__(self, *, ignore_punctuation: bool = True, split_character: bool = False, retain_format: bool = False) -> None:
        self._ignore_punctuation = ignore_punctuation
        self._split_character = split_character
        self._retain_format = retain_format

    def _spans(self, text: str) -> list[tuple[str, int, int]]:
        spans = []
        for match in re.finditer(r"\S+", text):
            word = match.group()
            pieces = [(c, match.start() + i) for i, c in enumerate(word)] if self._split_character and not word.isascii() else [(word, match.start())]
            for piece, start in pieces:
                token = _PUNCTUATION.sub("", piece) if self._ignore_punctuation else piece
                if token:
                    spans.append((token, start, start + len(piece)))
        return spans

    def tokenize(self, text: str, *, language: NotGivenOr[str] = NOT_GIVEN) -> list[str]:
        return [token for token, _s, _e in self._spans(text)]

    def stream(self, *, language: NotGivenOr[str] = NOT_GIVEN) -> BufferedWordStream:
        return BufferedWordStream(tokenizer=self._spans, min_token_len=1, min_ctx_len=1)


@functools.lru_cache(maxsize=1)
def _english() -> pyphen.Pyphen:
    return pyphen.Pyphen(lang="en_US")


def hyphenate_word(word: str) -> list[str]:
    """The syllables of an English ``word`` (``"hello"`` → ``["hel", "lo"]``)."""
    if not word:
        return []
    return _english().inserted(word).split("-")


def tokenize_paragraphs(text: str) -> list[str]:
    """Paragraphs: text between blank lines, stripped, none empty."""
    return [p.strip() for p in _PARAGRAPH.split(text) if p.strip()]


__all__ = ["SentenceTokenizer", "WordTokenizer", "hyphenate_word", "tokenize_paragraphs"]
