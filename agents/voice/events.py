"""The session's events: one typed dataclass per event name, and the state enums.

``AgentSession`` emits each event under its ``type`` string (``session.on("user_state_changed",
cb)``); the callback receives the dataclass.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from ..llm.chat_context import ChatItem, ChatMessage, FunctionCall, FunctionCallOutput

if TYPE_CHECKING:
    from .speech_handle import SpeechHandle


class AgentState(str, enum.Enum):
    INITIALIZING = "initializing"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"


class UserState(str, enum.Enum):
    SPEAKING = "speaking"
    LISTENING = "listening"
    AWAY = "away"


EventTypes: TypeAlias = Literal[
    "user_input_transcribed",
    "conversation_item_added",
    "agent_state_changed",
    "user_state_changed",
    "function_tools_executed",
    "metrics_collected",
    "speech_created",
    "agent_false_interruption",
    "error",
    "close",
]


def _now() -> float:
    return time.time()


@dataclass(frozen=True, slots=True)
class UserInputTranscribedEvent:
    transcript: str
    is_final: bool
    speaker_id: str | None = None
    language: str | None = None
    created_at: float = field(default_factory=_now)
    type: Literal["user_input_transcribed"] = "user_input_transcribed"


@dataclass(frozen=True, slots=True)
class ConversationItemAddedEvent:
    item: ChatItem
    created_at: float = field(default_factory=_now)
    type: Literal["conversation_item_added"] = "conversation_item_added"


@dataclass(frozen=True, slots=True)
class AgentStateChangedEvent:
    old_state: AgentState
    new_state: AgentState
    created_at: float = field(default_factory=_now)
    type: Literal["agent_state_changed"] = "agent_state_changed"


@dataclass(frozen=True, slots=True)
class UserStateChangedEvent:
    old_state: UserState
    new_state: UserState
    created_at: float = field(default_factory=_now)
    type: Literal["user_state_changed"] = "user_state_changed"


@dataclass(slots=True)
class FunctionToolsExecutedEvent:
    """Tools ran. A listener may ``cancel_tool_reply()`` (the LLM is not asked again with
    the outputs) or ``cancel_agent_handoff()`` (a returned agent does not take over)."""

    function_calls: list[FunctionCall]
    function_call_outputs: list[FunctionCallOutput | None]  # None: the tool raised StopResponse
    created_at: float = field(default_factory=_now)
    type: Literal["function_tools_executed"] = "function_tools_executed"
    _reply_required: bool = field(default=False, repr=False)
    _handoff_required: bool = field(default=False, repr=False)

    def zipped(self) -> list[tuple[FunctionCall, FunctionCallOutput | None]]:
        return list(zip(self.function_calls, self.function_call_outputs, strict=True))

    def cancel_tool_reply(self) -> None:
        self._reply_required = False

    def cancel_agent_handoff(self) -> None:
        self._handoff_required = False

    @property
    def has_tool_reply(self) -> bool:
        return self._reply_required

    @property
    def has_agent_handoff(self) -> bool:
        return self._handoff_required


@dataclass(frozen=True, slots=True)
class MetricsCollectedEvent:
    metrics: Any  # LLMMetrics | STTMetrics | TTSMetrics | VADMetrics | EOUMetrics
    created_at: float = field(default_factory=_now)
    type: Literal["metrics_collected"] = "metrics_collected"


SpeechSource: TypeAlias = Literal["say", "generate_reply", "tool_response"]


@dataclass(frozen=True, slots=True)
class SpeechCreatedEvent:
    user_initiated: bool  # made by say()/generate_reply(), not by a user turn
    source: SpeechSource
    speech_handle: SpeechHandle
    created_at: float = field(default_factory=_now)
    type: Literal["speech_created"] = "speech_created"


@dataclass(frozen=True, slots=True)
class AgentFalseInterruptionEvent:
    """The user made a sound during agent speech but said nothing: the speech resumed
    (``resumed``) or, when it could not be paused, was already cut."""

    resumed: bool
    created_at: float = field(default_factory=_now)
    type: Literal["agent_false_interruption"] = "agent_false_interruption"
    message: ChatMessage | None = None  # the reference's fields; roomd resumes the paused audio
    extra_instructions: str | None = None


@dataclass(slots=True)
class SessionError:
    """What failed, as the reference's ``LLMError``/``STTError``/``TTSError`` describe it:
    ``type`` ("llm_error", "stt_error", "tts_error", or "session_error" for an agent's
    hook or tool plumbing), the component's ``label``, the exception and whether the
    session can go on. An ``error`` listener may set ``recoverable = True`` to keep the
    session open after an unrecoverable error."""

    type: Literal["llm_error", "stt_error", "tts_error", "session_error"]
    label: str
    error: BaseException
    recoverable: bool
    timestamp: float = field(default_factory=_now)

    def __str__(self) -> str:
        return f"{self.type} from {self.label}: {self.error}"


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    error: SessionError
    source: Any  # the component (LLM, STT, TTS) or the agent/session
    created_at: float = field(default_factory=_now)
    type: Literal["error"] = "error"


class CloseReason(str, enum.Enum):
    ERROR = "error"
    JOB_SHUTDOWN = "job_shutdown"
    PARTICIPANT_DISCONNECTED = "participant_disconnected"
    USER_INITIATED = "user_initiated"
    TASK_COMPLETED = "task_completed"


@dataclass(frozen=True, slots=True)
class CloseEvent:
    reason: CloseReason
    error: SessionError | None = None
    created_at: float = field(default_factory=_now)
    type: Literal["close"] = "close"


__all__ = [
    "AgentFalseInterruptionEvent",
    "AgentState",
    "AgentStateChangedEvent",
    "CloseEvent",
    "CloseReason",
    "ConversationItemAddedEvent",
    "ErrorEvent",
    "EventTypes",
    "FunctionToolsExecutedEvent",
    "MetricsCollectedEvent",
    "SpeechCreatedEvent",
    "SessionError",
    "SpeechSource",
    "UserInputTranscribedEvent",
    "UserState",
    "UserStateChangedEvent",
]
