"""A speech whose audio fails still ends its transcript segment, so the next speech's text
is a segment of its own (not appended to the failed one's)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from livekit import rtc
from session_helpers import TIMEOUT

from roomd.agents import Agent


async def _broken_audio() -> AsyncIterator[rtc.AudioFrame]:
    raise OSError("not audio a decoder can read")
    yield  # an async generator


async def test_each_failed_speech_closes_its_own_transcript_segment(make: Any) -> None:
    h = await make(Agent(instructions="x"))
    for text in ("Sorry, one moment.", "Still there?"):
        handle = h.session.say(text, audio=_broken_audio())
        await asyncio.wait_for(handle.wait_for_playout(), TIMEOUT)
        ev = await h.events.wait("error", lambda ev, text=text: ev.error.type == "tts_error")
        assert not ev.error.recoverable
    assert h.text_out.segments == ["Sorry, one moment.", "Still there?"]
    assert h.text_out.current == []
