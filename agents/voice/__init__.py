"""The voice session: ``Agent``, ``AgentSession``, ``SpeechHandle``, events and room I/O."""

from ..llm.run_context import RunContext
from .agent import Agent, AgentTask, ModelSettings, TurnDetectionMode
from .agent_session import AgentSession, SessionConnectOptions, SessionInput, SessionOutput
from .audio_recognition import EndOfTurnInfo
from .events import (
    AgentFalseInterruptionEvent,
    AgentState,
    AgentStateChangedEvent,
    CloseEvent,
    CloseReason,
    ConversationItemAddedEvent,
    ErrorEvent,
    SessionError,
    EventTypes,
    FunctionToolsExecutedEvent,
    MetricsCollectedEvent,
    SpeechCreatedEvent,
    UserInputTranscribedEvent,
    UserState,
    UserStateChangedEvent,
)
from .io import (
    AudioInput,
    AudioOutput,
    MemoryAudioInput,
    MemoryAudioOutput,
    MemoryTextOutput,
    MemoryUserTranscriptOutput,
    PlaybackFinished,
    TextOutput,
    UserTranscriptOutput,
)
from .metrics import EOUMetrics
from .room_io import RoomInputOptions, RoomIO, RoomOutputOptions
from . import run_result
from .run_result import (
    AgentHandoffEvent,
    ChatMessageEvent,
    FunctionCallEvent,
    FunctionCallOutputEvent,
    RunEvent,
    RunResult,
    mock_tools,
)
from .timed_string import TimedString
from .transcription import TranscriptSynchronizer
from .speech_handle import SpeechHandle

__all__ = [
    "Agent",
    "AgentHandoffEvent",
    "ChatMessageEvent",
    "FunctionCallEvent",
    "FunctionCallOutputEvent",
    "RunEvent",
    "RunResult",
    "mock_tools",
    "run_result",
    "AgentFalseInterruptionEvent",
    "AgentSession",
    "AgentState",
    "AgentStateChangedEvent",
    "AgentTask",
    "AudioInput",
    "AudioOutput",
    "CloseEvent",
    "CloseReason",
    "ConversationItemAddedEvent",
    "EOUMetrics",
    "EndOfTurnInfo",
    "ErrorEvent",
    "SessionError",
    "EventTypes",
    "FunctionToolsExecutedEvent",
    "MemoryAudioInput",
    "MemoryAudioOutput",
    "MemoryTextOutput",
    "MemoryUserTranscriptOutput",
    "MetricsCollectedEvent",
    "ModelSettings",
    "PlaybackFinished",
    "RoomIO",
    "RoomInputOptions",
    "RoomOutputOptions",
    "RunContext",
    "SessionConnectOptions",
    "SessionInput",
    "SessionOutput",
    "SpeechCreatedEvent",
    "SpeechHandle",
    "TextOutput",
    "TimedString",
    "TranscriptSynchronizer",
    "TurnDetectionMode",
    "UserInputTranscribedEvent",
    "UserState",
    "UserStateChangedEvent",
    "UserTranscriptOutput",
]
