"""``TranscriptSynchronizer``: the agent's transcript released word by word as its audio
is heard, instead of all at once when the TTS gets the text.

It sits in front of an audio output and a text output (``next_in_chain_audio`` /
``next_in_chain_text``) and exposes its own ``audio_output`` and ``text_output`` for the
session to write to. Words go out at a speaking rate measured in syllables
(``hyphenate_word``): 3.83 syllables per second times ``speed`` while the segment's audio
is still arriving, then exactly the rate that makes the text end with the audio. When
playback finishes the rest of the text is released at once; when it is interrupted only
the words already released remain, and ``playback_finished`` carries them as
``synchronized_transcript``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

from livekit import rtc

from ...tokenize import basic
from ...types import NOT_GIVEN, NotGivenOr, is_given
from ...utils.aio import TaskOwner
from .. import io

STANDARD_SPEECH_RATE = 3.83  # syllables per second of ordinary speech
_WORD = re.compile(r"\s*\S+")


class _Segment:
    """One utterance: its text and audio as they arrive, and what has been released."""

    def __init__(self) -> None:
        self.text = ""
        self.text_done = False
        self.audio_duration = 0.0
        self.audio_done = False
        self.started_at: float | None = None  # perf_counter when its audio started playing
        self.released = ""
        self.changed = asyncio.Event()
        self.finished = False
        self.task: asyncio.Task[None] | None = None  # releasing its words


class TranscriptSynchronizer:
    def __init__(
        self,
        *,
        next_in_chain_audio: io.AudioOutput,
        next_in_chain_text: io.TextOutput,
        speed: float = 1.0,
        hyphenate_word: Callable[[str], list[str]] = basic.hyphenate_word,
        word_tokenizer: NotGivenOr[basic.WordTokenizer] = NOT_GIVEN,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self._next_text = next_in_chain_text
        self._speed = speed
        self._hyphenate = hyphenate_word
        hyphenate_word("warm")  # loads the patterns now, not in the middle of a sentence
        self._word_tokenizer = word_tokenizer if is_given(word_tokenizer) else basic.WordTokenizer(ignore_punctuation=True)
        self._enabled = True
        self._closed = False
        self._segment = _Segment()
        self._tasks = TaskOwner("transcript synchronizer")
        self._audio = _SyncedAudioOutput(self, next_in_chain_audio)
        self._text = _SyncedTextOutput(self, next_in_chain_text)

    @property
    def audio_output(self) -> io.AudioOutput:
        return self._audio

    @property
    def text_output(self) -> io.TextOutput:
        return self._text

    @property
    def enabled(self) -> bool:
        return self._enabled

    def set_enabled(self, enabled: bool) -> None:
        """Disabled, text goes straight through (nothing is held back)."""
        if enabled == self._enabled:
            return
        self._enabled = enabled
        self.rotate_segment()

    def rotate_segment(self) -> None:
        """Start a new segment; what is left of the current one is released now."""
        old = self._segment
        old.text_done = old.audio_done = True
        old.started_at = old.started_at or 0.0
        old.changed.set()
        self._segment = _Segment()

    async def barrier(self) -> None:
        """Until the current segment's text has all been released (or it was cut)."""
        task = self._segment.task
        if task is not None:
            await asyncio.shield(task)

    async def aclose(self) -> None:
        self._closed = True
        await self._tasks.aclose()

    # -- called by the two outputs --------------------------------------------------------

    def _ensure_releasing(self) -> None:
        segment = self._segment
        if segment.task is None and not self._closed:
            segment.task = self._tasks.create_task(self._release(segment), name="transcript_synchronizer")

    async def _release(self, segment: _Segment) -> None:
        """Hand words to the next text output as the audio reaches them."""
        sent = 0  # characters of segment.text released
        syllables_sent = 0
        while not segment.finished:
            pending = _WORD.match(segment.text, sent)
            if pending is None:
                if segment.text_done:
                    break
                segment.changed.clear()
                await segment.changed.wait()
                continue
            word = pending.group()
            if pending.end() == len(segment.text) and not segment.text_done:
                segment.changed.clear()  # the word may not be complete yet
                await segment.changed.wait()
                continue
            syllables = max(1, sum(len(self._hyphenate(w)) for w in self._word_tokenizer.tokenize(word)))
            due = (syllables_sent + syllables) / self._rate(segment)
            if segment.started_at is None:
                segment.changed.clear()
                await segment.changed.wait()
                continue
            delay = segment.started_at + due - time.perf_counter()
            if delay > 0:
                segment.changed.clear()
                try:
                    async with asyncio.timeout(delay):
                        await segment.changed.wait()
                    continue  # something changed (rate, playback ended): recompute
                except TimeoutError:
                    pass
            await self._next_text.capture_text(word)
            segment.released += word
            sent = pending.end()
            syllables_sent += syllables
        if not segment.finished and sent < len(segment.text):
            rest = segment.text[sent:]
            await self._next_text.capture_text(rest)
            segment.released += rest
        await io.flush_text_output(self._next_text)

    def _rate(self, segment: _Segment) -> float:
        """Syllables per second: fitted to the audio once both text and audio are complete."""
        if segment.audio_done and segment.text_done and segment.audio_duration > 0:
            words = self._word_tokenizer.tokenize(segment.text)
            total = sum(max(1, len(self._hyphenate(w))) for w in words)
            if total:
                return total / segment.audio_duration
        return STANDARD_SPEECH_RATE * self._speed

    def _playback_finished(self, ev: io.PlaybackFinishedEvent) -> str:
        """The segment's audio ended: release the rest (heard) or stop (interrupted)."""
        segment = self._segment
        if ev.interrupted:
            segment.finished = True
        else:
            segment.text_done = segment.audio_done = True
            segment.started_at = 0.0  # everything is due now
        segment.changed.set()
        self._segment = _Segment()
        return segment.released if ev.interrupted else segment.text


class _SyncedAudioOutput(io.AudioOutput):
    def __init__(self, sync: TranscriptSynchronizer, next_in_chain: io.AudioOutput) -> None:
        super().__init__(
            label="TranscriptSynchronizer",
            capabilities=io.AudioOutputCapabilities(pause=next_in_chain.can_pause),
            next_in_chain=None,  # finishes are forwarded by hand, with the transcript
            sample_rate=next_in_chain.sample_rate,
        )
        self._sync = sync
        self._next = next_in_chain
        next_in_chain.on("playback_started", self._on_started)
        next_in_chain.on("playback_finished", self._on_finished)

    @property
    def next_in_chain(self) -> io.AudioOutput | None:
        return self._next

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        segment = self._sync._segment
        segment.audio_duration += frame.duration
        if self._sync._enabled:
            self._sync._ensure_releasing()
        await self._next.capture_frame(frame)

    def flush(self) -> None:
        super().flush()
        self._sync._segment.audio_done = True
        self._sync._segment.changed.set()
        self._next.flush()

    def clear_buffer(self) -> None:
        self._next.clear_buffer()

    def pause(self) -> None:
        self._next.pause()

    def resume(self) -> None:
        self._next.resume()

    def _on_started(self, at: float) -> None:
        segment = self._sync._segment
        if segment.started_at is None:
            segment.started_at = at
            segment.changed.set()
        self.emit("playback_started", at)

    def _on_finished(self, ev: io.PlaybackFinishedEvent) -> None:
        transcript = self._sync._playback_finished(ev)
        self.on_playback_finished(
            playback_position=ev.playback_position, interrupted=ev.interrupted, synchronized_transcript=transcript
        )


class _SyncedTextOutput(io.TextOutput):
    def __init__(self, sync: TranscriptSynchronizer, next_in_chain: io.TextOutput) -> None:
        super().__init__(label="TranscriptSynchronizer", next_in_chain=next_in_chain)
        self._sync = sync

    async def capture_text(self, text: str) -> None:
        if not self._sync._enabled:
            await self._sync._next_text.capture_text(text)
            return
        segment = self._sync._segment
        segment.text += text
        segment.changed.set()
        self._sync._ensure_releasing()

    def flush(self) -> object:
        if not self._sync._enabled:
            return self._sync._next_text.flush()
        self._sync._segment.text_done = True
        self._sync._segment.changed.set()
        return None
