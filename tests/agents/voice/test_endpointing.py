"""Endpointing counts from the last speech, not from the VAD's end-of-speech verdict:
the VAD speaks up ``silence_duration`` after the user stopped, and waiting
``min_endpointing_delay`` on top of that would add the silence twice (the reference
counts from ``now - silence_duration`` too)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from livekit import rtc
from session_helpers import TIMEOUT
from voice_audio import tone, quiet

from roomd.agents.llm import ChatContext
from roomd.agents.testing import EnergyVAD, FakeSTT
from roomd.agents.voice.audio_recognition import AudioRecognition, EndOfTurnInfo
from roomd.agents.types import DEFAULT_API_CONNECT_OPTIONS


class _Frames:
    def __init__(self, frames: list[rtc.AudioFrame]) -> None:
        self._frames = frames

    def __aiter__(self) -> AsyncIterator[rtc.AudioFrame]:
        return self._gen()

    async def _gen(self) -> AsyncIterator[rtc.AudioFrame]:
        for frame in self._frames:
            yield frame
            await asyncio.sleep(0)
        await asyncio.Event().wait()  # a microphone does not end


class _Hooks:
    def __init__(self) -> None:
        self.end_of_speech_seen: list[float] = []
        self.turns: asyncio.Queue[EndOfTurnInfo] = asyncio.Queue()

    def on_start_of_speech(self, ev: Any) -> None: ...
    def on_vad_inference_done(self, ev: Any) -> None: ...
    def on_interim_transcript(self, ev: Any) -> None: ...
    def on_final_transcript(self, ev: Any) -> None: ...
    def on_preemptive_generation(self, transcript: str) -> None: ...
    def on_stt_error(self, exc: BaseException) -> None: ...

    def on_end_of_speech(self, ev: Any) -> None:
        self.end_of_speech_seen.append(time.perf_counter())

    async def on_end_of_turn(self, info: EndOfTurnInfo) -> None:
        self.turns.put_nowait(info)

    def retrieve_chat_ctx(self) -> ChatContext:
        return ChatContext.empty()

    def discard_audio(self) -> bool:
        return False

    def input_audio_enabled(self) -> bool:
        return True


async def test_end_of_speech_is_dated_back_by_the_vads_silence() -> None:
    silence = 0.3
    hooks = _Hooks()
    recognition = AudioRecognition(
        hooks,  # type: ignore[arg-type]
        stt=FakeSTT("hello there", streaming=False),
        vad=EnergyVAD(min_silence_duration=silence),
        turn_detection="vad",
        turn_detector=None,
        min_endpointing_delay=lambda: 0.05,
        max_endpointing_delay=lambda: 1.0,
        stt_conn_options=DEFAULT_API_CONNECT_OPTIONS,
    )
    recognition.start(_Frames(tone(0.4) + quiet(0.8)))  # type: ignore[arg-type]
    try:
        info = await asyncio.wait_for(hooks.turns.get(), TIMEOUT)
    finally:
        await recognition.aclose()
    assert info.transcript == "hello there"
    [seen] = hooks.end_of_speech_seen
    # The turn's end of speech lies at least the VAD's silence before its verdict.
    assert info.end_of_speech_at <= seen - silence
