"""Text rewriting for TTS input: whole-word replacements, on a string or a text stream."""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from typing import overload


def _pattern(replacements: dict[str, str]) -> re.Pattern[str]:
    words = sorted(replacements, key=len, reverse=True)  # longest first: "New York" before "New"
    return re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)


@overload
def replace_words(*, text: str, replacements: dict[str, str]) -> str: ...
@overload
def replace_words(*, text: AsyncIterable[str], replacements: dict[str, str]) -> AsyncIterable[str]: ...


def replace_words(*, text: str | AsyncIterable[str], replacements: dict[str, str]) -> str | AsyncIterable[str]:
    """Replace whole words (matched case-insensitively) by their replacement, e.g. to
    make a TTS say a brand name right. On a stream, text is held back only up to the
    last word boundary, so words split across chunks are still found."""
    if not replacements:
        return text
    lookup = {k.lower(): v for k, v in replacements.items()}
    pattern = _pattern(replacements)

    def substitute(chunk: str) -> str:
        return pattern.sub(lambda m: lookup[m.group(0).lower()], chunk)

    if isinstance(text, str):
        return substitute(text)

    longest = max(len(k) for k in replacements)

    async def stream() -> AsyncIterator[str]:
        held = ""
        async for chunk in text:
            held += chunk
            # Cut at a space far enough from the end that any key starting before it is
            # wholly in ``held``; move the cut past a match that straddles it.
            cut = max(held.rfind(" ", 0, max(0, len(held) - longest)), held.rfind("\n", 0, max(0, len(held) - longest)))
            if cut < 0:
                continue
            for match in pattern.finditer(held):
                if match.start() <= cut < match.end():
                    cut = match.end()
            ready, held = held[: cut + 1], held[cut + 1 :]
            yield substitute(ready)
        if held:
            yield substitute(held)

    return stream()
