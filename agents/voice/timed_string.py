"""``TimedString``: a piece of transcript that knows when it is spoken."""

from __future__ import annotations

from ..types import NOT_GIVEN, NotGivenOr


class TimedString(str):
    """A ``str`` with ``start_time`` / ``end_time`` (seconds from the start of the
    speech's audio; NOT_GIVEN when unknown). Transcription nodes receive these when
    ``use_tts_aligned_transcript`` is on, and may yield their own."""

    start_time: NotGivenOr[float]
    end_time: NotGivenOr[float]

    def __new__(
        cls, text: str, start_time: NotGivenOr[float] = NOT_GIVEN, end_time: NotGivenOr[float] = NOT_GIVEN
    ) -> TimedString:
        obj = super().__new__(cls, text)
        obj.start_time = start_time
        obj.end_time = end_time
        return obj


__all__ = ["TimedString"]
