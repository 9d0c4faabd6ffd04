"""Realtime (speech-to-speech) models: the contract a provider implements.

A ``RealtimeModel`` opens ``RealtimeSession``s. The agent session pushes user audio into
one (``push_audio``); the model detects the user's turns itself (``InputSpeechStartedEvent``
/ ``InputSpeechStoppedEvent``, transcripts as ``InputTranscriptionCompleted``) and answers
with generations: a ``GenerationCreatedEvent`` carries a stream of ``MessageGeneration``s
(text and audio streams) and a stream of ``FunctionCall``s. ``generate_reply`` asks for a
generation now and resolves to its event. Instructions, the conversation and the tools
live on the model's side and are replaced with ``update_*``.

Events a session emits (``session.on(name, cb)``): ``input_speech_started``,
``input_speech_stopped``, ``input_audio_transcription_completed``, ``generation_created``,
``session_reconnected``, ``metrics_collected``, ``error`` (a ``RealtimeModelError``).
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, Awaitable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from livekit import rtc

from ..types import NOT_GIVEN, ComponentIdentity, NotGivenOr
from ..utils.events import EventEmitter
from .chat_context import ChatContext, FunctionCall
from .llm import ToolChoice
from .tools import Tool, ToolContext

Modality: TypeAlias = Literal["text", "audio"]

EventTypes: TypeAlias = Literal[
    "input_speech_started",
    "input_speech_stopped",
    "input_audio_transcription_completed",
    "generation_created",
    "session_reconnected",
    "metrics_collected",
    "error",
]


@dataclass(frozen=True, slots=True)
class RealtimeCapabilities:
    """What a model does itself, so the agent session does not have to.

    ``turn_detection``: it finds the end of the user's turn and answers on its own;
    ``user_transcription``: it transcribes the user; ``audio_output``: it speaks (else it
    writes text, which a separate TTS voices); ``message_truncation``: it can be told how
    much of an interrupted answer was heard; ``auto_tool_reply_generation``: it answers
    tool results without being asked; ``manual_function_calls``: tool results can be
    given to it as conversation items.
    """

    message_truncation: bool
    turn_detection: bool
    user_transcription: bool
    auto_tool_reply_generation: bool
    audio_output: bool
    manual_function_calls: bool


class RealtimeError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class RealtimeModelError:
    """The payload of a session's ``error`` event."""

    timestamp: float
    label: str
    error: Exception
    recoverable: bool
    type: Literal["realtime_model_error"] = "realtime_model_error"


@dataclass(slots=True)
class InputSpeechStartedEvent:
    pass


@dataclass(slots=True)
class InputSpeechStoppedEvent:
    user_transcription_enabled: bool


@dataclass(slots=True)
class InputTranscriptionCompleted:
    item_id: str
    transcript: str
    is_final: bool


@dataclass(slots=True)
class MessageGeneration:
    """One answer message: its text and audio as they are generated. ``modalities``
    resolves to what the message really carries (``["text"]`` when the model only writes)."""

    message_id: str
    text_stream: AsyncIterable[str]
    audio_stream: AsyncIterable[rtc.AudioFrame]
    modalities: Awaitable[list[Modality]]


@dataclass(slots=True)
class GenerationCreatedEvent:
    """A generation began. ``user_initiated``: it answers ``generate_reply`` (whose
    future resolves to this event) rather than a turn the model detected itself."""

    message_stream: AsyncIterable[MessageGeneration]
    function_stream: AsyncIterable[FunctionCall]
    user_initiated: bool
    response_id: str | None = None


@dataclass(slots=True)
class RealtimeSessionReconnectedEvent:
    pass


class RealtimeModel(ComponentIdentity, EventEmitter[Literal["metrics_collected"]]):
    """A speech-to-speech model; ``session()`` opens a conversation with it. The agent
    session re-emits its sessions' ``metrics_collected`` events on the model, where it
    listens for every component's metrics."""

    def __init__(self, *, capabilities: RealtimeCapabilities) -> None:
        super().__init__()
        self._capabilities = capabilities

    @property
    def capabilities(self) -> RealtimeCapabilities:
        return self._capabilities

    def session(self) -> RealtimeSession:
        raise NotImplementedError(f"{type(self).__name__} must implement session()")

    async def aclose(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement aclose()")


class RealtimeSession(ABC, EventEmitter[EventTypes]):
    """One conversation with a realtime model (see the module docstring)."""

    def __init__(self, realtime_model: RealtimeModel) -> None:
        super().__init__()
        self._realtime_model = realtime_model

    @property
    def realtime_model(self) -> RealtimeModel:
        return self._realtime_model

    @property
    @abstractmethod
    def chat_ctx(self) -> ChatContext: ...

    @property
    @abstractmethod
    def tools(self) -> ToolContext: ...

    @abstractmethod
    async def update_instructions(self, instructions: str) -> None: ...

    @abstractmethod
    async def update_chat_ctx(self, chat_ctx: ChatContext) -> None: ...

    @abstractmethod
    async def update_tools(self, tools: list[Tool | Any]) -> None: ...

    @abstractmethod
    def update_options(self, *, tool_choice: NotGivenOr[ToolChoice | None] = NOT_GIVEN) -> None: ...

    @abstractmethod
    def push_audio(self, frame: rtc.AudioFrame) -> None: ...

    @abstractmethod
    def push_video(self, frame: rtc.VideoFrame) -> None: ...

    @abstractmethod
    def generate_reply(self, *, instructions: NotGivenOr[str] = NOT_GIVEN) -> asyncio.Future[GenerationCreatedEvent]:
        """Ask for an answer now; resolves when the generation is created."""

    @abstractmethod
    def commit_audio(self) -> None:
        """End the user's turn with the audio pushed so far (without server turn detection)."""

    @abstractmethod
    def clear_audio(self) -> None: ...

    @abstractmethod
    def interrupt(self) -> None:
        """Stop the generation in progress."""

    @abstractmethod
    def truncate(
        self,
        *,
        message_id: str,
        modalities: list[Modality],
        audio_end_ms: int,
        audio_transcript: NotGivenOr[str] = NOT_GIVEN,
    ) -> None:
        """Tell the model only the first ``audio_end_ms`` of a message were heard."""

    @abstractmethod
    async def aclose(self) -> None: ...

    def start_user_activity(self) -> None:
        """The user started doing something (models that care override this)."""

    def _emit_error(self, error: Exception, *, recoverable: bool) -> None:
        self.emit("error", RealtimeModelError(
            timestamp=time.time(), label=self._realtime_model.label, error=error, recoverable=recoverable))


__all__ = [
    "EventTypes",
    "GenerationCreatedEvent",
    "InputSpeechStartedEvent",
    "InputSpeechStoppedEvent",
    "InputTranscriptionCompleted",
    "MessageGeneration",
    "Modality",
    "RealtimeCapabilities",
    "RealtimeError",
    "RealtimeModel",
    "RealtimeModelError",
    "RealtimeSession",
    "RealtimeSessionReconnectedEvent",
]
