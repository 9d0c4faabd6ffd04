"""The voice session: ``Agent``, ``AgentSession``, ``SpeechHandle``, events and room I/O."""

from .agent import Agent, TurnDetectionMode
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
    "AudioInput",
    "AudioOutput",
    "CloseEvent",
    "CloseReason",
    "ConversationItemAddedEvent",
    "EOUMetrics",
    "EndOfTurnInfo",
    "ErrorEvent",
    "EventTypes",
    "FunctionToolsExecutedEvent",
    "MemoryAudioInput",
    "MemoryAudioOutput",
    "MemoryTextOutput",
    "MemoryUserTranscriptOutput",
    "MetricsCollectedEvent",
    "PlaybackFinished",
    "RoomIO",
    "RoomInputOptions",
    "RoomOutputOptions",
    "SessionConnectOptions",
    "SessionInput",
    "SessionOutput",
    "SpeechCreatedEvent",
    "SpeechHandle",
    "TextOutput",
    "TurnDetectionMode",
    "UserInputTranscribedEvent",
    "UserState",
    "UserStateChangedEvent",
    "UserTranscriptOutput",
]
