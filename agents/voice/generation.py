"""One agent utterance on the wire: LLM text streamed into TTS, audio into the output,
text into the transcript; and what of it the user actually heard."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass, field

from ..llm.chat_context import ChatContext
from ..llm.llm import LLM, FunctionToolCall
from ..llm.tools import Tool
from ..tts.tts import TTS
from ..types import APIConnectOptions
from ..utils.aio import Chan
from ..utils.audio import frame_duration
from ..utils.taskgroup import run_together
from .io import AudioOutput, TextOutput, flush_text_output


@dataclass(slots=True)
class LLMOutput:
    """Filled while the LLM stream is read: text pieces go out through ``text``."""

    text: Chan[str] = field(default_factory=Chan)
    full_text: list[str] = field(default_factory=list)
    tool_calls: list[FunctionToolCall] = field(default_factory=list)
    first_token_at: float | None = None


async def read_llm(
    llm: LLM, *, chat_ctx: ChatContext, tools: Sequence[Tool], conn_options: APIConnectOptions, out: LLMOutput
) -> None:
    try:
        async with llm.chat(chat_ctx=chat_ctx, tools=list(tools) or None, conn_options=conn_options) as stream:
            async for chunk in stream:
                if chunk.delta is None:
                    continue
                if chunk.delta.content:
                    if out.first_token_at is None:
                        out.first_token_at = time.perf_counter()
                    out.full_text.append(chunk.delta.content)
                    out.text.send_nowait(chunk.delta.content)
                out.tool_calls.extend(chunk.delta.tool_calls)
    finally:
        out.text.close()


@dataclass(slots=True)
class PlayoutResult:
    text: str  # all the text given for the utterance (so far)
    heard_text: str  # the part whose audio the user heard (all of it unless interrupted)
    interrupted: bool
    first_frame_at: float | None  # perf_counter of the first audio frame handed to the output


@dataclass(slots=True)
class _Piece:
    offset: float  # seconds of audio queued before this text's first frame
    text: str


class Playout:
    """Speaks text from an async iterable: through ``tts`` into ``audio`` when both
    exist, else straight to the transcript. ``run`` returns when the audio was heard;
    ``interrupt`` stops it and works out what was heard."""

    def __init__(self, *, tts: TTS | None, audio: AudioOutput | None, transcript: TextOutput | None,
                 conn_options: APIConnectOptions) -> None:
        self._tts = tts if audio is not None else None
        self._audio = audio if tts is not None else None
        self._transcript = transcript
        self._conn_options = conn_options
        self._pieces: list[_Piece] = []
        self._given: list[str] = []
        self._queued = 0.0
        self._first_frame_at: float | None = None
        self._voiced_text = False  # the TTS reported which text each audio voices

    async def run(self, text: AsyncIterable[str]) -> PlayoutResult:
        if self._tts is None or self._audio is None:
            async for piece in text:
                self._given.append(piece)
                if self._transcript is not None:
                    await self._transcript.capture_text(piece)
            if self._transcript is not None:
                await flush_text_output(self._transcript)
            joined = "".join(self._given)
            return PlayoutResult(joined, joined, False, None)
        await self._synthesize(text, self._tts, self._audio)
        self._audio.flush()
        finished = await self._audio.wait_for_playout()
        return await self._result(interrupted=finished.interrupted, position=finished.playback_position)

    async def _synthesize(self, text: AsyncIterable[str], tts: TTS, audio: AudioOutput) -> None:
        stream = tts.stream(conn_options=self._conn_options)

        async def push() -> None:
            async for piece in text:
                self._given.append(piece)
                stream.push_text(piece)
            stream.end_input()

        async def pull() -> None:
            async for synthesized in stream:
                if synthesized.delta_text:
                    self._voiced_text = True
                    self._pieces.append(_Piece(self._queued, synthesized.delta_text))
                    if self._transcript is not None:
                        await self._transcript.capture_text(synthesized.delta_text)
                if self._first_frame_at is None:
                    self._first_frame_at = time.perf_counter()
                self._queued += frame_duration(synthesized.frame)
                await audio.capture_frame(synthesized.frame)

        try:
            await run_together(push(), pull())
        finally:
            await stream.aclose()

    async def interrupt(self) -> PlayoutResult:
        """Call after cancelling ``run``: drop the queued audio, report what was heard."""
        position = self._queued
        if self._audio is not None:
            self._audio.clear_buffer()
            finished = await self._audio.wait_for_playout()
            position = finished.playback_position
        return await self._result(interrupted=True, position=position)

    async def _result(self, *, interrupted: bool, position: float) -> PlayoutResult:
        given = "".join(self._given)
        if not self._voiced_text:
            # The TTS did not say which audio voices which text: all or nothing.
            heard = given if not interrupted else ""
            if self._transcript is not None and heard:
                await self._transcript.capture_text(heard)
        else:
            heard = "".join(p.text for p in self._pieces if p.offset <= position + 1e-6) if interrupted else given
        if self._transcript is not None:
            await flush_text_output(self._transcript)
        return PlayoutResult(given, heard.strip() if interrupted else heard, interrupted, self._first_frame_at)


async def text_once(text: str) -> AsyncIterator[str]:
    yield text


__all__ = ["LLMOutput", "Playout", "PlayoutResult", "read_llm", "text_once"]
