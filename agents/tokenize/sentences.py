"""Split text into sentences, in one go or as text streams in (LLM output to TTS)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..utils.aio import Chan
from ..utils.ids import shortuuid

# Words whose trailing period does not end a sentence (compared lowercased, without it).
DEFAULT_ABBREVIATIONS: frozenset[str] = frozenset(
    {
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "inc",
        "ltd", "co", "corp", "no", "fig", "approx", "dept", "est", "min", "max", "mt", "ave",
        "a.m", "p.m", "u.s", "u.k", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
        "sept", "oct", "nov", "dec", "gen", "col", "capt", "lt", "sgt", "rev", "hon",
    }
)

# End punctuation, optional closing quotes/brackets, then whitespace.
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)")
_NEWLINES = re.compile(r"\n\s*\n")


@dataclass(frozen=True, slots=True)
class TokenData:
    segment_id: str = ""
    token: str = ""


class SentenceTokenizer:
    """Sentence boundaries: ``.``/``!``/``?``/``…`` followed by whitespace (so ``3.14``
    and ``example.com`` never split), except after a known abbreviation or a single
    initial (``J. Smith``), plus blank lines. Sentences shorter than
    ``min_sentence_len`` characters are joined to the next one so a TTS is not asked to
    say "Yes." on its own. Joining the sentences with spaces gives back the text's words.
    """

    def __init__(
        self,
        *,
        language: str = "en",
        min_sentence_len: int = 20,
        abbreviations: frozenset[str] = DEFAULT_ABBREVIATIONS,
    ) -> None:
        self._language = language
        self._min_len = min_sentence_len
        self._abbreviations = abbreviations

    @property
    def min_sentence_len(self) -> int:
        return self._min_len

    def tokenize(self, text: str, *, language: str | None = None) -> list[str]:
        return self._merge_short(self._split(text))

    def stream(self, *, language: str | None = None) -> SentenceStream:
        return SentenceStream(self.buffer())

    def buffer(self) -> SentenceBuffer:
        """A synchronous incremental splitter (what ``stream`` is built on)."""
        return SentenceBuffer(self)

    def _split(self, text: str) -> list[str]:
        """Raw sentences (before joining short ones), stripped, none empty."""
        cuts = [0]
        for match in _BOUNDARY.finditer(text):
            if self._is_boundary(text, match):
                cuts.append(match.end())
        for match in _NEWLINES.finditer(text):
            cuts.append(match.start())
        cuts.append(len(text))
        cuts = sorted(set(cuts))
        pieces = (text[a:b].strip() for a, b in zip(cuts, cuts[1:], strict=False))
        return [p for p in pieces if p]

    def _is_boundary(self, text: str, match: re.Match[str]) -> bool:
        punct = match.group()
        if not punct.startswith("."):
            return True
        word = text[: match.start()].rsplit(None, 1)[-1] if text[: match.start()].strip() else ""
        word = word.lstrip("\"'“‘([").lower()
        if word in self._abbreviations:
            return False
        return not (len(word) == 1 and word.isalpha())  # an initial: "J. Smith"

    def _merge_short(self, sentences: list[str]) -> list[str]:
        """Join sentences shorter than the minimum to the next (the tail may stay short)."""
        merged: list[str] = []
        pending = ""
        for sentence in sentences:
            pending = f"{pending} {sentence}" if pending else sentence
            if len(pending) >= self._min_len:
                merged.append(pending)
                pending = ""
        if pending:
            merged.append(pending)
        return merged


class SentenceBuffer:
    """Incremental splitting: ``push`` returns the sentences that became complete,
    ``flush`` returns the rest. A sentence is complete once text after it shows its end
    (and it is long enough, or joined with the next)."""

    def __init__(self, tokenizer: SentenceTokenizer) -> None:
        self._tokenizer = tokenizer
        self._buffer = ""

    def push(self, text: str) -> list[str]:
        self._buffer += text
        sentences = self._tokenizer._split(self._buffer)
        if len(sentences) < 2:
            return []
        # The last sentence may still grow; a short complete one waits for what follows.
        complete = self._tokenizer._merge_short(sentences[:-1])
        if complete and len(complete[-1]) < self._tokenizer.min_sentence_len:
            complete.pop()
        if complete:
            self._buffer = _drop_prefix_words(self._buffer, " ".join(complete))
        return complete

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer, ""
        return self._tokenizer.tokenize(rest)


class SentenceStream:
    """Push text as it arrives; complete sentences come out as soon as they are known.
    ``flush()`` emits what is left and starts a new segment; ``end_input()`` flushes and
    ends the stream."""

    def __init__(self, buffer: SentenceBuffer) -> None:
        self._buffer = buffer
        self._out: Chan[TokenData] = Chan()
        self._segment_id = shortuuid("seg_")

    def push_text(self, text: str) -> None:
        if self._out.closed:
            raise RuntimeError("sentence stream already ended")
        for sentence in self._buffer.push(text):
            self._out.send_nowait(TokenData(segment_id=self._segment_id, token=sentence))

    def flush(self) -> None:
        if self._out.closed:
            raise RuntimeError("sentence stream already ended")
        for sentence in self._buffer.flush():
            self._out.send_nowait(TokenData(segment_id=self._segment_id, token=sentence))
        self._segment_id = shortuuid("seg_")

    def end_input(self) -> None:
        if self._out.closed:
            return
        self.flush()
        self._out.close()

    async def aclose(self) -> None:
        self._out.close()

    def __aiter__(self) -> SentenceStream:
        return self

    async def __anext__(self) -> TokenData:
        return await self._out.__anext__()


def _drop_prefix_words(buffer: str, consumed: str) -> str:
    """``buffer`` minus the leading text whose words are ``consumed``'s words."""
    words = consumed.split()
    position = 0
    for word in words:
        position = buffer.index(word, position) + len(word)
    return buffer[position:]


_WORD = re.compile(r"\S+")


def split_words(text: str) -> list[str]:
    """Words (whitespace-separated, punctuation stripped from the edges, empties dropped)."""
    words = (w.strip(".,!?;:\"'()[]…“”‘’") for w in _WORD.findall(text))
    return [w for w in words if w]
