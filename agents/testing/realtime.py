"""A realtime model that answers from a script, for testing the realtime session path
without a provider: it hears speech by energy (server-side turn detection), "transcribes"
each turn from a list, and answers with scripted text, a tone voicing it, and tool calls."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from livekit import rtc

from ..llm.chat_context import ChatContext, ChatMessage, FunctionCall
from ..llm.llm import ToolChoice
from ..llm.realtime import (
    GenerationCreatedEvent,
    InputSpeechStartedEvent,
    InputSpeechStoppedEvent,
    InputTranscriptionCompleted,
    MessageGeneration,
    Modality,
    RealtimeCapabilities,
    RealtimeError,
    RealtimeModel,
    RealtimeSession,
)
from ..llm.tools import Tool, ToolContext
from ..types import NOT_GIVEN, NotGivenOr, is_given
from ..utils.aio import Chan
from ..utils.audio import frame_duration, frame_rms, sine
from ..utils.ids import shortuuid
from .scripted_llm import Script, ScriptedReply

ScriptEntry = ScriptedReply | str | Callable[[ChatContext], ScriptedReply | str]


@dataclass(slots=True)
class Truncation:
    message_id: str
    audio_end_ms: int


@dataclass(slots=True)
class GenerationRequest:
    """What the model knew when it started a generation."""

    instructions: str
    extra_instructions: str | None
    chat_ctx: ChatContext
    tool_names: list[str]
    user_initiated: bool


class ScriptedRealtimeModel(RealtimeModel):
    """Each generation consumes the next script entry (as ``ScriptedLLM`` does; a
    callable entry sees the model's conversation). User turns: speech louder than
    ``speech_rms`` starts one, ``silence_duration`` of quiet ends it; its transcript is
    the next of ``transcripts`` (the last one repeats). ``modalities=["text"]`` makes a
    model that only writes (a separate TTS speaks). ``turn_detection=False``: turns end
    only with ``commit_audio()``. Sessions are kept in ``sessions`` for assertions.
    """

    def __init__(
        self,
        replies: Iterable[ScriptEntry] = (),
        *,
        default: ScriptEntry | None = None,
        transcripts: Sequence[str] = ("hello",),
        modalities: Sequence[Modality] = ("text", "audio"),
        turn_detection: bool = True,
        auto_tool_reply_generation: bool = False,
        speech_rms: float = 0.02,
        silence_duration: float = 0.3,
        sample_rate: int = 24000,
        seconds_per_char: float = 0.02,
        word_delay: float = 0.0,
    ) -> None:
        if not transcripts:
            raise ValueError("transcripts must not be empty")
        if not set(modalities) <= {"text", "audio"} or "text" not in modalities:
            raise ValueError(f"modalities must be ['text'] or ['text', 'audio'], got {list(modalities)}")
        super().__init__(capabilities=RealtimeCapabilities(
            message_truncation=True,
            turn_detection=turn_detection,
            user_transcription=True,
            auto_tool_reply_generation=auto_tool_reply_generation,
            audio_output="audio" in modalities,
            manual_function_calls=True,
        ))
        self._script = Script(replies, default)
        self._transcripts = list(transcripts)
        self.modalities: list[Modality] = list(modalities)
        self.speech_rms = speech_rms
        self.silence_duration = silence_duration
        self.sample_rate = sample_rate
        self.seconds_per_char = seconds_per_char
        self.word_delay = word_delay
        self.sessions: list[ScriptedRealtimeSession] = []

    @property
    def model(self) -> str:
        return "scripted-realtime"

    @property
    def provider(self) -> str:
        return "testing"

    def add_reply(self, reply: ScriptEntry) -> None:
        self._script.add(reply)

    def _next_reply(self, chat_ctx: ChatContext) -> ScriptedReply:
        reply = self._script.next(chat_ctx)
        if reply is None:
            raise RealtimeError("ScriptedRealtimeModel: the script is exhausted")
        return reply

    def _next_transcript(self) -> str:
        return self._transcripts.pop(0) if len(self._transcripts) > 1 else self._transcripts[0]

    def session(self) -> ScriptedRealtimeSession:
        session = ScriptedRealtimeSession(self)
        self.sessions.append(session)
        return session

    async def aclose(self) -> None:
        for session in self.sessions:
            await session.aclose()


@dataclass(slots=True)
class _Generation:
    messages: Chan[MessageGeneration] = field(default_factory=Chan)
    functions: Chan[FunctionCall] = field(default_factory=Chan)
    text: Chan[str] = field(default_factory=Chan)
    audio: Chan[rtc.AudioFrame] = field(default_factory=Chan)
    task: asyncio.Task[None] | None = None

    def close(self) -> None:
        for chan in (self.messages, self.functions, self.text, self.audio):
            chan.close()


class ScriptedRealtimeSession(RealtimeSession):
    """Records what the agent session told it: ``instructions``, ``requests`` (one per
    generation), ``truncations``, ``interruptions``, ``audio_seconds`` heard."""

    _realtime_model: ScriptedRealtimeModel

    def __init__(self, model: ScriptedRealtimeModel) -> None:
        super().__init__(model)
        self.instructions = ""
        self._chat_ctx = ChatContext.empty()
        self._tools = ToolContext.empty()
        self.tool_choice: ToolChoice | None = None
        self.requests: list[GenerationRequest] = []
        self.truncations: list[Truncation] = []
        self.interruptions = 0
        self.audio_seconds = 0.0
        self._speaking = False
        self._quiet_for = 0.0
        self._current: _Generation | None = None
        self._closed = False

    @property
    def chat_ctx(self) -> ChatContext:
        return self._chat_ctx.copy()

    @property
    def tools(self) -> ToolContext:
        return ToolContext(self._tools.flatten())

    async def update_instructions(self, instructions: str) -> None:
        self.instructions = instructions

    async def update_chat_ctx(self, chat_ctx: ChatContext) -> None:
        self._chat_ctx = chat_ctx.copy()

    async def update_tools(self, tools: list[Tool | Any]) -> None:
        self._tools = ToolContext(tools)

    def update_options(self, *, tool_choice: NotGivenOr[ToolChoice | None] = NOT_GIVEN) -> None:
        if is_given(tool_choice):
            self.tool_choice = tool_choice

    # -- the user's side ------------------------------------------------------------------

    def push_audio(self, frame: rtc.AudioFrame) -> None:
        if self._closed:
            return
        model = self._realtime_model
        duration = frame_duration(frame)
        self.audio_seconds += duration
        if frame_rms(frame) >= model.speech_rms:
            self._quiet_for = 0.0
            if not self._speaking:
                self._speaking = True
                self.emit("input_speech_started", InputSpeechStartedEvent())
            return
        if not self._speaking:
            return
        self._quiet_for += duration
        if self._quiet_for >= model.silence_duration:
            self._speaking = False
            self.emit("input_speech_stopped", InputSpeechStoppedEvent(user_transcription_enabled=True))
            if model.capabilities.turn_detection:
                self._end_turn()

    def commit_audio(self) -> None:
        self._speaking = False
        self._end_turn()

    def clear_audio(self) -> None:
        self._speaking = False
        self._quiet_for = 0.0

    def push_video(self, frame: rtc.VideoFrame) -> None:
        pass  # the script does not look

    def _end_turn(self) -> None:
        transcript = self._realtime_model._next_transcript()
        item_id = shortuuid("item_")
        self._chat_ctx.items.append(ChatMessage(role="user", content=[transcript], id=item_id))
        self.emit("input_audio_transcription_completed",
                  InputTranscriptionCompleted(item_id=item_id, transcript=transcript, is_final=True))
        if self._realtime_model.capabilities.turn_detection:
            self.emit("generation_created", self._start_generation(None, user_initiated=False))

    # -- the model's side -----------------------------------------------------------------

    def generate_reply(self, *, instructions: NotGivenOr[str] = NOT_GIVEN) -> asyncio.Future[GenerationCreatedEvent]:
        future: asyncio.Future[GenerationCreatedEvent] = asyncio.get_running_loop().create_future()
        if self._closed:
            future.set_exception(RealtimeError("the realtime session is closed"))
            return future
        event = self._start_generation(instructions if is_given(instructions) else None, user_initiated=True)
        self.emit("generation_created", event)
        future.set_result(event)
        return future

    def _start_generation(self, instructions: str | None, *, user_initiated: bool) -> GenerationCreatedEvent:
        if self._current is not None:
            self._stop_current()
        gen = self._current = _Generation()
        self.requests.append(GenerationRequest(
            instructions=self.instructions, extra_instructions=instructions, chat_ctx=self._chat_ctx.copy(),
            tool_names=sorted(self._tools.function_tools), user_initiated=user_initiated,
        ))
        gen.task = asyncio.get_running_loop().create_task(self._generate(gen), name="scripted-realtime.generation")
        return GenerationCreatedEvent(
            message_stream=gen.messages, function_stream=gen.functions,
            user_initiated=user_initiated, response_id=shortuuid("resp_"),
        )

    async def _generate(self, gen: _Generation) -> None:
        model = self._realtime_model
        try:
            try:
                reply = model._next_reply(self._chat_ctx)
            except RealtimeError as exc:
                self._emit_error(exc, recoverable=False)
                return
            if reply.ttft:
                await asyncio.sleep(reply.ttft)
            if reply.error is not None:
                self._emit_error(reply.error, recoverable=reply.error.retryable)
                return
            if reply.text:
                await self._say(gen, reply.text)
            for call in reply.tool_calls:
                item = FunctionCall(call_id=call.call_id, name=call.name, arguments=call.arguments)
                self._chat_ctx.items.append(item)
                gen.functions.send_nowait(item)
        finally:
            gen.close()
            if self._current is gen:
                self._current = None

    async def _say(self, gen: _Generation, text: str) -> None:
        model = self._realtime_model
        message_id = shortuuid("item_")
        modalities: asyncio.Future[list[Modality]] = asyncio.get_running_loop().create_future()
        modalities.set_result(list(model.modalities))
        gen.messages.send_nowait(MessageGeneration(
            message_id=message_id, text_stream=gen.text, audio_stream=gen.audio, modalities=modalities))
        self._chat_ctx.items.append(ChatMessage(role="assistant", content=[text], id=message_id))
        words = text.split(" ")
        phase = 0
        for i, word in enumerate(words):
            if i and model.word_delay:
                await asyncio.sleep(model.word_delay)
            piece = word if i == len(words) - 1 else f"{word} "
            gen.text.send_nowait(piece)
            if "audio" in model.modalities:
                for frame in _tone(piece, model, phase):
                    phase += frame.samples_per_channel
                    gen.audio.send_nowait(frame)
            await asyncio.sleep(0)  # let the agent session consume as it is produced
        gen.text.close()
        gen.audio.close()

    def _stop_current(self) -> None:
        gen, self._current = self._current, None
        if gen is not None:
            if gen.task is not None:
                gen.task.cancel()
            gen.close()

    def interrupt(self) -> None:
        self.interruptions += 1
        self._stop_current()

    def truncate(
        self,
        *,
        message_id: str,
        modalities: list[Modality],
        audio_end_ms: int,
        audio_transcript: NotGivenOr[str] = NOT_GIVEN,
    ) -> None:
        self.truncations.append(Truncation(message_id=message_id, audio_end_ms=audio_end_ms))
        for item in self._chat_ctx.items:
            if item.id == message_id and isinstance(item, ChatMessage) and is_given(audio_transcript):
                item.content = [audio_transcript]

    async def aclose(self) -> None:
        self._closed = True
        gen = self._current
        self._stop_current()
        if gen is not None and gen.task is not None:
            await asyncio.gather(gen.task, return_exceptions=True)


def _tone(text: str, model: ScriptedRealtimeModel, phase: int) -> list[rtc.AudioFrame]:
    """20 ms frames of tone, ``seconds_per_char`` per character."""
    frame_s = 0.02
    count = max(1, round(len(text) * model.seconds_per_char / frame_s))
    samples = round(frame_s * model.sample_rate)
    return [
        sine(frame_s, frequency=330.0, sample_rate=model.sample_rate, phase_samples=phase + i * samples)
        for i in range(count)
    ]


__all__ = ["GenerationRequest", "ScriptedRealtimeModel", "ScriptedRealtimeSession", "Truncation"]
