"""The agent session's path for a realtime model (``llm=`` a ``RealtimeModel``).

``RealtimeDriver`` owns the model's ``RealtimeSession`` for the agent session: it feeds
it the user's audio, turns its events into the session's (user state, transcripts,
interruptions, conversation items) and plays its generations as speeches: the model's
own audio when it speaks, else its text through the session's TTS. Tool calls run
through the session's tool path; their outputs go back to the model, which is then
asked to answer them (unless it does so by itself).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from livekit import rtc

from ..llm.chat_context import ChatMessage
from ..llm.llm import FunctionToolCall
from ..llm.realtime import (
    GenerationCreatedEvent,
    InputSpeechStartedEvent,
    InputSpeechStoppedEvent,
    InputTranscriptionCompleted,
    MessageGeneration,
    RealtimeModel,
    RealtimeModelError,
    RealtimeSession,
)
from ..types import NOT_GIVEN
from ..utils.aio import TaskOwner, cancel_and_wait
from ..utils.audio import frame_duration
from .events import AgentState
from .io import AudioInput, AudioOutput, TextOutput, flush_text_output
from .nodes import iterate
from .speech_handle import SpeechHandle

if TYPE_CHECKING:
    from .agent import Agent
    from .agent_session import AgentSession

logger = logging.getLogger("roomd.agents")


@dataclass(slots=True)
class _Played:
    message_id: str
    text: str
    heard_text: str
    interrupted: bool
    audio_end: float  # seconds of the message's audio that were heard


class RealtimeDriver:
    def __init__(self, session: AgentSession[Any], model: RealtimeModel) -> None:
        self._session = session
        self._model = model
        self._rt: RealtimeSession = model.session()
        self._tasks = TaskOwner()
        self._listening: AudioInput | None = None
        self._rt.on("input_speech_started", self._on_speech_started)
        self._rt.on("input_speech_stopped", self._on_speech_stopped)
        self._rt.on("input_audio_transcription_completed", self._on_transcription)
        self._rt.on("generation_created", self._on_generation)
        self._rt.on("error", self._on_error)
        self._rt.on("metrics_collected", lambda metrics: model.emit("metrics_collected", metrics))

    @property
    def model(self) -> RealtimeModel:
        return self._model

    @property
    def realtime_session(self) -> RealtimeSession:
        return self._rt

    async def sync(self, agent: Agent) -> None:
        """Give the model the agent's instructions, conversation and tools."""
        await self._rt.update_instructions(agent.instructions)
        await self._rt.update_chat_ctx(agent.chat_ctx)
        await self._rt.update_tools([*agent.tools, *self._session._mcp_tools])

    def listen(self, audio: AudioInput) -> None:
        """Push the user's audio to the model (once per input: the session calls this
        whenever its input may have changed)."""
        if audio is self._listening:
            return
        self._listening = audio
        self._tasks.create_task(self._forward_audio(audio), name="realtime.audio_in")

    async def _forward_audio(self, audio: AudioInput) -> None:
        async for frame in audio:
            if self._session.discard_audio():
                continue
            self._rt.push_audio(frame)

    async def aclose(self) -> None:
        await self._tasks.aclose()
        await self._rt.aclose()

    # -- the model's events -------------------------------------------------------------

    def _on_speech_started(self, ev: InputSpeechStartedEvent) -> None:
        session = self._session
        session.on_start_of_speech(None)
        current = session.current_speech
        if current is not None and current.allow_interruptions and not current.done():
            current.interrupt()

    def _on_speech_stopped(self, ev: InputSpeechStoppedEvent) -> None:
        self._session.on_end_of_speech(None)

    def _on_transcription(self, ev: InputTranscriptionCompleted) -> None:
        self._session._transcribed(ev.transcript, is_final=ev.is_final, language=None)
        if ev.is_final and ev.transcript:
            self._session._add_item(ChatMessage(role="user", content=[ev.transcript], id=ev.item_id))

    def _on_generation(self, ev: GenerationCreatedEvent) -> None:
        if ev.user_initiated:
            return  # played by the speech that asked for it (reply())
        session = self._session
        handle = SpeechHandle(allow_interruptions=session._allows(NOT_GIVEN))

        async def run() -> None:
            if await handle._wait_for_authorization():
                await self._play_and_follow_up(handle, ev)

        session._start_speech(handle, run(), source="generate_reply", user_initiated=False)

    def _on_error(self, ev: RealtimeModelError) -> None:
        logger.error("realtime model %s failed: %s", ev.label, ev.error)
        self._session._report_error("llm", self._model, ev.error, recoverable=ev.recoverable)

    # -- speeches --------------------------------------------------------------------------

    async def reply(self, handle: SpeechHandle, *, instructions: str | None) -> None:
        """The speech of ``session.generate_reply`` (called once it has the floor): ask
        the model, play its answer."""
        agent = self._session._agent
        if agent is None:
            return
        await self._rt.update_chat_ctx(agent.chat_ctx)  # e.g. the user_input just added
        self._session._set_agent_state(AgentState.THINKING)
        event = await self._rt.generate_reply(instructions=instructions if instructions else NOT_GIVEN)
        await self._play_and_follow_up(handle, event)

    async def _play_and_follow_up(self, handle: SpeechHandle, event: GenerationCreatedEvent) -> None:
        """Play ``event`` (``handle`` has the floor), then its tool rounds as the LLM path
        does: the floor is released while the tools run and taken again to play the answer."""
        session = self._session
        step = 0
        while True:
            agent = session._agent
            if agent is None:
                return
            calls = await self._play(handle, event)
            if handle.interrupted or not calls:
                return
            session._set_agent_state(AgentState.THINKING)
            handle._mark_generation_done()  # other speeches may play while the tools run
            tools = [*agent.tools, *session._mcp_tools]
            again = await session._run_tools(handle, agent, tools, calls)
            if session._agent is not agent or session._realtime is not self:
                return  # handed off: the new agent's model session takes over
            await self._rt.update_chat_ctx(agent.chat_ctx)  # the tool outputs
            if not again or step >= session.max_tool_steps:
                return
            if self._model.capabilities.auto_tool_reply_generation:
                return  # the model answers the outputs on its own (a server-initiated generation)
            step += 1
            handle._num_steps += 1
            session._enqueue(handle, force=True)
            if not await handle._wait_for_authorization():
                return
            session._set_agent_state(AgentState.THINKING)
            event = await self._rt.generate_reply()

    async def _play(self, handle: SpeechHandle, event: GenerationCreatedEvent) -> list[FunctionToolCall]:
        calls: list[FunctionToolCall] = []

        async def collect_calls() -> None:
            async for call in event.function_stream:
                calls.append(FunctionToolCall(name=call.name, arguments=call.arguments, call_id=call.call_id))

        calls_task = asyncio.ensure_future(collect_calls())
        try:
            async for message in event.message_stream:
                played = await self._play_message(handle, message)
                if played.heard_text or (played.text and not played.interrupted):
                    self._session._add_item(
                        ChatMessage(role="assistant", content=[played.heard_text or played.text],
                                    interrupted=played.interrupted, id=played.message_id),
                        speech=handle,
                    )
                if played.interrupted:
                    self._rt.interrupt()
                    if self._model.capabilities.message_truncation:
                        modalities = await message.modalities
                        self._rt.truncate(message_id=played.message_id, modalities=list(modalities),
                                          audio_end_ms=int(played.audio_end * 1000),
                                          audio_transcript=played.heard_text)
                    await cancel_and_wait(calls_task)
                    return []
            await calls_task
        finally:
            await cancel_and_wait(calls_task)
        return [] if handle.interrupted else calls

    async def _play_message(self, handle: SpeechHandle, message: MessageGeneration) -> _Played:
        session = self._session
        modalities = await message.modalities
        audio_out = session.output.audio
        if "audio" in modalities and audio_out is not None:
            from .agent import ModelSettings  # agent.py imports this module

            # the model's own voice and text, through the agent's nodes (overridable)
            agent, settings = session.current_agent, ModelSettings()
            audio = iterate(agent.realtime_audio_output_node(message.audio_stream, settings))
            text = iterate(agent.transcription_node(message.text_stream, settings))
            player = _AudioPlayer(message.message_id, audio_out, session.output.transcription)
            task = asyncio.ensure_future(player.run(text, audio))
            await handle.wait_if_not_interrupted([task])
            if not task.done():
                await cancel_and_wait(task)
                return await player.interrupt()
            return task.result()
        # text only (or no audio output): the session's own playout voices it with its TTS
        result = await session._speak(handle, _drain_audio(message))
        return _Played(message.message_id, result.text, result.heard_text, result.interrupted, 0.0)


async def _drain_audio(message: MessageGeneration) -> AsyncIterable[str]:
    """The message's text; its audio (if any) is read and dropped so the model never blocks."""

    async def drop() -> None:
        async for _ in message.audio_stream:
            pass

    dropper = asyncio.ensure_future(drop())
    try:
        async for piece in message.text_stream:
            yield piece
    finally:
        await cancel_and_wait(dropper)


class _AudioPlayer:
    """Plays a message's own audio and writes its text to the transcript; on
    interruption, the heard text is the share of the text matching the heard audio."""

    def __init__(self, message_id: str, audio: AudioOutput, transcript: TextOutput | None) -> None:
        self._message_id = message_id
        self._audio = audio
        self._transcript = transcript
        self._text: list[str] = []
        self._queued = 0.0

    async def run(self, text: AsyncIterable[str], audio: AsyncIterable[rtc.AudioFrame]) -> _Played:
        async def read_text() -> None:
            async for piece in text:
                self._text.append(piece)
                if self._transcript is not None:
                    await self._transcript.capture_text(piece)

        text_task = asyncio.ensure_future(read_text())
        try:
            async for frame in audio:
                self._queued += frame_duration(frame)
                await self._audio.capture_frame(frame)
            await text_task
        finally:
            await cancel_and_wait(text_task)
        self._audio.flush()
        finished = await self._audio.wait_for_playout()
        if self._transcript is not None:
            await flush_text_output(self._transcript)
        full = "".join(self._text)
        return _Played(self._message_id, full, full, finished.interrupted, finished.playback_position)

    async def interrupt(self) -> _Played:
        self._audio.clear_buffer()
        finished = await self._audio.wait_for_playout()
        if self._transcript is not None:
            await flush_text_output(self._transcript)
        full = "".join(self._text)
        share = min(1.0, finished.playback_position / self._queued) if self._queued else 0.0
        words = full.split()
        heard = " ".join(words[: int(len(words) * share)])
        return _Played(self._message_id, full, heard, True, finished.playback_position)


async def update_realtime(session: AgentSession[Any], driver: RealtimeDriver | None, agent: Agent) -> RealtimeDriver | None:
    """The driver for the session's (possibly new) model after ``agent`` became active:
    kept and re-synced for the same realtime model, replaced for another, closed when
    the agent uses a plain LLM."""
    model = session.llm
    if session._agent_option("turn_detection", session._turn_detection) == "realtime_llm" and not isinstance(
        model, RealtimeModel
    ):
        raise ValueError(f"turn_detection='realtime_llm' needs a RealtimeModel as llm, got {model!r}")
    if driver is not None and driver.model is not model:
        await driver.aclose()
        driver = None
    if not isinstance(model, RealtimeModel):
        return None
    if driver is None:
        driver = RealtimeDriver(session, model)  # the session's _start_recognition makes it listen
    await driver.sync(agent)
    return driver


async def sync_agent(agent: Agent) -> None:
    """After ``agent.update_instructions/chat_ctx/tools``: tell its realtime model."""
    session = agent._session
    driver = getattr(session, "_realtime", None)
    if session is not None and driver is not None and session._agent is agent:
        await driver.sync(agent)


__all__ = ["RealtimeDriver", "sync_agent", "update_realtime"]
