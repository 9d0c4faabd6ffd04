"""TranscriptSynchronizer releases the transcript as its audio is heard."""

from __future__ import annotations

import asyncio
import time

import pytest
from livekit import rtc
from reference_style import ClockedAudioOutput
from roomd.agents.utils.audio import sine
from roomd.agents.voice.io import MemoryTextOutput, TextOutput
from roomd.agents.voice.transcription import TranscriptSynchronizer

TIMEOUT = 10.0
TEXT = "one two three four five six seven eight"


class TimedText(TextOutput):
    """Records when each piece of text arrived."""

    def __init__(self) -> None:
        super().__init__(label="timed")
        self.pieces: list[tuple[float, str]] = []
        self.flushed = asyncio.Event()

    async def capture_text(self, text: str) -> None:
        self.pieces.append((time.perf_counter(), text))

    def flush(self) -> None:
        self.flushed.set()


async def speak(sync: TranscriptSynchronizer, seconds: float, *, text: str = TEXT) -> None:
    await sync.text_output.capture_text(text)
    sync.text_output.flush()
    frame = sine(seconds, sample_rate=24000)
    step = 480
    for start in range(0, frame.samples_per_channel, step):
        data = bytes(frame.data)[start * 2 : (start + step) * 2]
        await sync.audio_output.capture_frame(rtc.AudioFrame(data, 24000, 1, len(data) // 2))
    sync.audio_output.flush()


async def test_words_come_out_spread_over_the_audio_and_all_of_them_at_the_end() -> None:
    audio = ClockedAudioOutput(speed=1.0)
    text = TimedText()
    sync = TranscriptSynchronizer(next_in_chain_audio=audio, next_in_chain_text=text)
    started = time.perf_counter()
    await speak(sync, 0.8)
    finished = await asyncio.wait_for(sync.audio_output.wait_for_playout(), TIMEOUT)
    await asyncio.wait_for(text.flushed.wait(), TIMEOUT)
    assert "".join(p for _, p in text.pieces) == TEXT
    assert not finished.interrupted and finished.synchronized_transcript == TEXT
    # words were not all handed over before the audio played: the first came early,
    # the last near the end of the 0.8 s of audio
    first, last = text.pieces[0][0] - started, text.pieces[-1][0] - started
    assert len(text.pieces) == len(TEXT.split()) and last - first > 0.3
    await sync.aclose()
    await audio.aclose()


async def test_an_interruption_keeps_only_the_words_heard() -> None:
    audio = ClockedAudioOutput(speed=1.0)
    text = MemoryTextOutput()
    sync = TranscriptSynchronizer(next_in_chain_audio=audio, next_in_chain_text=text)
    await speak(sync, 3.0)
    await asyncio.sleep(0.4)
    sync.audio_output.clear_buffer()
    finished = await asyncio.wait_for(sync.audio_output.wait_for_playout(), TIMEOUT)
    assert finished.interrupted
    heard = finished.synchronized_transcript or ""
    assert heard and TEXT.startswith(heard) and len(heard) < len(TEXT)
    await sync.barrier()
    assert text.segments == [heard]
    await sync.aclose()
    await audio.aclose()


async def test_disabled_synchronizer_passes_text_straight_through() -> None:
    audio = ClockedAudioOutput(speed=10.0)
    text = MemoryTextOutput()
    sync = TranscriptSynchronizer(next_in_chain_audio=audio, next_in_chain_text=text, speed=1.5)
    sync.set_enabled(False)
    assert not sync.enabled
    await sync.text_output.capture_text("all at once")
    await sync.text_output.flush()  # type: ignore[misc]
    assert text.segments == ["all at once"]
    with pytest.raises(ValueError, match="speed"):
        TranscriptSynchronizer(next_in_chain_audio=audio, next_in_chain_text=text, speed=0)
    await sync.aclose()
    await audio.aclose()
