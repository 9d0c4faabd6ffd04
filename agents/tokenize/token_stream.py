"""Token streams built from any tokenize function: push text as it arrives, get whole
tokens (sentences or words) out once enough text follows them to be sure they ended."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..utils.aio import Chan
from ..utils.ids import shortuuid
from .sentences import TokenData

# A tokenizer returns tokens, or (token, start, end) with the token's place in the text.
TokenizeCallable = Callable[[str], Sequence[str] | Sequence[tuple[str, int, int]]]


def _spans(text: str, tokens: Sequence[str] | Sequence[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Each token with where it ends in ``text`` (found in order when not given)."""
    spans: list[tuple[str, int, int]] = []
    position = 0
    for token in tokens:
        if isinstance(token, tuple):
            spans.append(token)
            position = token[2]
            continue
        start = text.find(token, position)
        if start < 0:  # the tokenizer rewrote it (punctuation dropped): end at the next space
            start = position
            while start < len(text) and text[start].isspace():
                start += 1
            end = start
            while end < len(text) and not text[end].isspace():
                end += 1
        else:
            end = start + len(token)
        spans.append((token, start, end))
        position = end
    return spans


class BufferedTokenStream:
    """Push text, read ``TokenData``. All tokens but the last are emitted once at least
    ``min_ctx_len`` characters follow them; tokens shorter than ``min_token_len`` are
    joined (with a space) to the next. ``flush()`` emits the rest and starts a new
    segment; ``end_input()`` flushes and ends the stream."""

    def __init__(self, *, tokenizer: TokenizeCallable, min_token_len: int, min_ctx_len: int) -> None:
        self.__tokenize = tokenizer
        self.__min_token_len = min_token_len
        self.__min_ctx_len = min_ctx_len
        self.__buffer = ""
        self.__pending = ""  # short tokens waiting to be joined to the next
        self.__out: Chan[TokenData] = Chan()
        self.__segment_id = shortuuid("seg_")

    def push_text(self, text: str) -> None:
        self.__check_open()
        self.__buffer += text
        spans = _spans(self.__buffer, self.__tokenize(self.__buffer))
        consumed = 0
        for token, _start, end in spans[:-1]:
            if len(self.__buffer) - end < self.__min_ctx_len:
                break
            self.__emit(token, final=False)
            consumed = end
        if consumed:
            self.__buffer = self.__buffer[consumed:]

    def flush(self) -> None:
        self.__check_open()
        if self.__buffer:
            for token, _start, _end in _spans(self.__buffer, self.__tokenize(self.__buffer)):
                self.__emit(token, final=False)
        self.__emit("", final=True)
        self.__buffer = ""
        self.__segment_id = shortuuid("seg_")

    def end_input(self) -> None:
        if self.__out.closed:
            return
        self.flush()
        self.__out.close()

    async def aclose(self) -> None:
        self.__out.close()

    def __emit(self, token: str, *, final: bool) -> None:
        text = f"{self.__pending} {token}".strip() if self.__pending else token
        if not final and len(text) < self.__min_token_len:
            self.__pending = text
            return
        self.__pending = ""
        if text:
            self.__out.send_nowait(TokenData(segment_id=self.__segment_id, token=text))

    def __check_open(self) -> None:
        if self.__out.closed:
            raise RuntimeError(f"{type(self).__name__}: input already ended")

    def __aiter__(self) -> BufferedTokenStream:
        return self

    async def __anext__(self) -> TokenData:
        return await self.__out.__anext__()


class BufferedSentenceStream(BufferedTokenStream):
    """Sentences out of pushed text (see ``BufferedTokenStream``)."""


class BufferedWordStream(BufferedTokenStream):
    """Words out of pushed text (see ``BufferedTokenStream``)."""


WordStream = BufferedWordStream
