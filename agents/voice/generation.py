"""One step of an agent utterance on the wire: reply text through the agent's
``tts_node`` into the audio output and through its ``transcription_node`` into the
transcript; and what of it the user actually heard."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from livekit import rtc

from ..llm.llm import ChatChunk, FunctionToolCall
from ..utils.aio import Chan
from ..utils.audio import frame_duration
from ..utils.taskgroup import run_together
from .io import AudioOutput, TextOutput, flush_text_output
from .nodes import iterate, tts_text_listener
from .timed_string import TimedString

if TYPE_CHECKING:
    from .agent import Agent, ModelSettings


class TTSFailed(Exception):
    """The speech's audio could not be made (the TTS node failed); ``cause`` says why."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


#: speaking rate assumed to pace a transcript the TTS did not time (about 150 words a minute)
CHARS_PER_SECOND = 14.0


@dataclass(slots=True)
class LLMOutput:
    """Filled while the LLM node is read: text pieces go out through ``text``."""

    text: Chan[str] = field(default_factory=Chan)
    full_text: list[str] = field(default_factory=list)
    tool_calls: list[FunctionToolCall] = field(default_factory=list)
    first_token_at: float | None = None


async def read_llm_node(result: Any, out: LLMOutput) -> None:
    """Read what ``llm_node`` gave (chunks, str pieces, one str or chunk, or None)."""
    try:
        async for item in iterate(result):
            if isinstance(item, str):
                content, calls = item, []
            elif isinstance(item, ChatChunk):
                if item.delta is None:
                    continue
                content, calls = item.delta.content or "", list(item.delta.tool_calls)
            else:
                raise TypeError(f"llm_node yielded {type(item).__name__}; expected str or ChatChunk")
            if content:
                if out.first_token_at is None:
                    out.first_token_at = time.perf_counter()
                out.full_text.append(content)
                out.text.send_nowait(content)
            out.tool_calls.extend(calls)
    finally:
        out.text.close()


@dataclass(slots=True)
class PlayoutResult:
    text: str  # the transcript given for the utterance (so far)
    heard_text: str  # the part whose audio the user heard (all of it unless interrupted)
    interrupted: bool
    first_frame_at: float | None  # perf_counter of the first audio frame handed to the output


@dataclass(slots=True)
class _Piece:
    offset: float  # seconds of audio queued before this text's first frame
    text: str


class Playout:
    """Speaks text from an async iterable: through the agent's ``tts_node`` into
    ``audio`` (or ``frames`` given by ``say(audio=)``), and through its
    ``transcription_node`` into ``transcript``. ``run`` returns when the audio was heard;
    ``interrupt`` (after cancelling ``run``) drops the rest and works out what was heard.

    With ``aligned`` the transcription node receives ``TimedString`` pieces timed by the
    TTS (when the TTS reports which text each audio voices) instead of the raw text.

    With ``gate`` (a preemptive generation), text and audio are made at once but nothing
    reaches the outputs before the gate opens: the speech has not got the floor yet."""

    def __init__(self, *, agent: Agent, model_settings: ModelSettings, audio: AudioOutput | None,
                 transcript: TextOutput | None, speak: bool, aligned: bool = False, sync: bool = False,
                 speed: float = 1.0, on_result: Callable[[PlayoutResult], None] | None = None,
                 gate: asyncio.Event | None = None) -> None:
        self._agent = agent
        self._settings = model_settings
        self._audio = audio if speak else None
        self._transcript = transcript
        self._aligned = aligned and self._audio is not None
        self._pieces: list[_Piece] = []
        self._tts_text: list[str] = []
        self._transcribed: list[str] = []
        self._queued = 0.0
        self._first_frame_at: float | None = None
        self._timed: Chan[str] = Chan()
        self._pending: _Piece | None = None
        self._sync = sync and self._audio is not None
        self._speed = speed
        self._on_result = on_result
        self._first_frame = asyncio.Event()
        self._gate = gate

    async def run(self, text: AsyncIterable[str], frames: AsyncIterable[rtc.AudioFrame] | None = None) -> PlayoutResult:
        audio = self._audio
        if audio is None:
            await self._transcribe(text)
            await self._opened()
            return await self._result(interrupted=False, position=0.0)
        to_tts: Chan[str] = Chan()
        to_transcript: Chan[str] = Chan()

        async def pump() -> None:
            try:
                async for piece in text:
                    self._tts_text.append(piece)
                    if frames is None:
                        to_tts.send_nowait(piece)
                    if not self._aligned or frames is not None:
                        to_transcript.send_nowait(piece)
            finally:
                to_tts.close()
                to_transcript.close()

        async def play() -> None:
            tts_text_listener.set(self._on_voiced)
            source = frames if frames is not None else iterate(self._agent.tts_node(to_tts, self._settings))
            try:
                async for frame in iterate(source):
                    if not isinstance(frame, rtc.AudioFrame):
                        raise TypeError(f"tts_node yielded {type(frame).__name__}; expected rtc.AudioFrame")
                    if self._first_frame_at is None:
                        await self._opened()
                        self._first_frame_at = time.perf_counter()
                        self._first_frame.set()
                    self._queued += frame_duration(frame)
                    await audio.capture_frame(frame)
            except (asyncio.CancelledError, TypeError):
                raise
            except Exception as exc:
                raise TTSFailed(exc) from exc
            finally:
                if self._first_frame_at is None:
                    self._first_frame_at = time.perf_counter()
                self._first_frame.set()  # no audio at all: nothing to wait for
                self._end_timed()

        timed = self._aligned and frames is None
        try:
            await run_together(pump(), play(), self._transcribe(self._timed if timed else to_transcript))
        except TTSFailed:
            await self._opened()  # the outputs are another speech's until then
            # End the segment already shown, or the next speech's text is appended to it.
            if self._transcript is not None:
                await flush_text_output(self._transcript)
            raise
        await self._opened()  # (all made before the floor: the outputs are another speech's until then)
        audio.flush()
        finished = await audio.wait_for_playout()
        return await self._result(interrupted=finished.interrupted, position=finished.playback_position)

    async def _opened(self) -> None:
        if self._gate is not None:
            await self._gate.wait()

    def _on_voiced(self, text: str) -> None:
        piece = _Piece(self._queued, text)
        self._pieces.append(piece)
        if self._aligned:
            self._emit_pending(self._queued)
            self._pending = piece

    def _emit_pending(self, end: float) -> None:
        if self._pending is not None:
            self._timed.send_nowait(TimedString(self._pending.text, start_time=self._pending.offset, end_time=end))
            self._pending = None

    def _end_timed(self) -> None:
        if not self._aligned or self._timed.closed:
            return
        if not self._pieces and self._tts_text:
            # The TTS did not say which audio voices which text: one piece for the whole.
            self._timed.send_nowait(TimedString("".join(self._tts_text), start_time=0.0, end_time=self._queued))
        self._emit_pending(self._queued)
        self._timed.close()

    async def _transcribe(self, text: AsyncIterable[str]) -> None:
        async for piece in iterate(self._agent.transcription_node(text, self._settings)):
            if not isinstance(piece, str):
                raise TypeError(f"transcription_node yielded {type(piece).__name__}; expected str")
            said_before = sum(len(p) for p in self._transcribed)
            self._transcribed.append(piece)
            if self._transcript is not None:
                await self._opened()
                if self._sync:
                    await self._pace(piece, said_before)
                await self._transcript.capture_text(str(piece))

    async def _pace(self, piece: str, said_before: int) -> None:
        """sync_transcription: release ``piece`` when its audio plays (the TTS's timing
        when known, else an estimated speaking rate times the speed factor)."""
        start = getattr(piece, "start_time", None)
        if not isinstance(start, (int, float)):
            start = said_before / (CHARS_PER_SECOND * self._speed)
        await self._first_frame.wait()
        assert self._first_frame_at is not None
        delay = self._first_frame_at + min(float(start), self._queued) - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)

    async def interrupt(self) -> PlayoutResult:
        """Call after cancelling ``run``: drop the queued audio, report what was heard."""
        position = self._queued
        if self._audio is not None:
            self._audio.clear_buffer()
            finished = await self._audio.wait_for_playout()
            position = finished.playback_position
        return await self._result(interrupted=True, position=position)

    def _heard(self, position: float) -> str:
        transcript = "".join(self._transcribed)
        if self._audio is None:
            return transcript
        voiced = "".join(p.text for p in self._pieces)
        if self._pieces and voiced.strip() == "".join(self._tts_text).strip() and transcript.strip() == voiced.strip():
            return "".join(p.text for p in self._pieces if p.offset <= position + 1e-6)
        if self._queued <= 0:
            return ""
        # No alignment for this text: assume it is spoken evenly over the audio.
        cut = int(len(transcript) * min(1.0, position / self._queued))
        if cut < len(transcript):
            space = transcript.rfind(" ", 0, cut + 1)
            cut = space if space > 0 else 0
        return transcript[:cut]

    async def _result(self, *, interrupted: bool, position: float) -> PlayoutResult:
        given = "".join(self._transcribed)
        heard = self._heard(position).strip() if interrupted else given
        result = PlayoutResult(given, heard, interrupted, self._first_frame_at)
        if self._on_result is not None:
            # before the transcript is closed: whoever sees it final finds the message kept
            self._on_result(result)
        if self._transcript is not None:
            await flush_text_output(self._transcript)
        return result


async def text_once(text: str) -> AsyncIterator[str]:
    yield text


__all__ = ["LLMOutput", "Playout", "PlayoutResult", "TTSFailed", "read_llm_node", "text_once"]
