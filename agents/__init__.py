"""The agent SDK: what plugin authors import (the LiveKit Agents API, on roomd).

Moving an agent from livekit-agents is a change of imports:
``from livekit.agents import Agent, AgentSession, ...`` becomes
``from roomd.agents import Agent, AgentSession, ...``.

Names resolve lazily (PEP 562): the supervisor imports small modules such as
``roomd.agents.errors`` without paying for livekit.rtc, numpy and the voice pipeline.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> module (relative to this package) that defines it
_EXPORTS: dict[str, str] = {
    # errors
    "APIError": ".errors",
    "APIConnectionError": ".errors",
    "APITimeoutError": ".errors",
    "APIStatusError": ".errors",
    "AssignmentTimeoutError": ".errors",
    "ToolError": ".errors",
    "StopResponse": ".errors",
    # worker and jobs
    "WorkerOptions": ".worker_options",
    "WorkerType": ".worker_options",
    "WorkerPermissions": ".worker_options",
    "JobRequest": ".job_request",
    "JobContext": ".job",
    "JobProcess": ".job",
    "AutoSubscribe": ".job",
    "JobExecutorType": ".job",
    "get_job_context": ".job",
    "Worker": ".worker",
    "Plugin": ".plugin",
    # tools and chat
    "function_tool": ".llm",
    "FunctionTool": ".llm",
    "RawFunctionTool": ".llm",
    "ChatContext": ".llm",
    "ChatMessage": ".llm",
    "ChatItem": ".llm",
    "ChatRole": ".llm",
    "ChatContent": ".llm",
    "FunctionCall": ".llm",
    "FunctionCallOutput": ".llm",
    "RunContext": ".llm",
    # shared types
    "APIConnectOptions": ".types",
    "DEFAULT_API_CONNECT_OPTIONS": ".types",
    "NOT_GIVEN": ".types",
    "NotGivenOr": ".types",
    "EventEmitter": ".utils",
    # the voice session
    "Agent": ".voice",
    "AgentTask": ".voice",
    "ModelSettings": ".voice",
    "AgentFalseInterruptionEvent": ".voice",
    "CloseReason": ".voice",
    "AgentSession": ".voice",
    "SpeechHandle": ".voice",
    "RoomInputOptions": ".voice",
    "RoomOutputOptions": ".voice",
    "RoomIO": ".voice",
    "TurnDetectionMode": ".voice",
    "AgentState": ".voice",
    "UserState": ".voice",
    "AgentStateChangedEvent": ".voice",
    "UserStateChangedEvent": ".voice",
    "UserInputTranscribedEvent": ".voice",
    "ConversationItemAddedEvent": ".voice",
    "FunctionToolsExecutedEvent": ".voice",
    "MetricsCollectedEvent": ".voice",
    "SpeechCreatedEvent": ".voice",
    "ErrorEvent": ".voice",
    "CloseEvent": ".voice",
    "RunResult": ".voice",
    "mock_tools": ".voice",
    # background audio
    "AudioConfig": ".voice.background_audio",
    "BackgroundAudioPlayer": ".voice.background_audio",
    "BuiltinAudioClip": ".voice.background_audio",
    "PlayHandle": ".voice.background_audio",
}
_SUBMODULES = ("cli", "llm", "stt", "tts", "vad", "tokenize", "utils", "voice", "testing", "metrics")

__all__ = sorted([*_EXPORTS, *_SUBMODULES])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'roomd.agents' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from .errors import (
        APIConnectionError,
        APIError,
        APIStatusError,
        APITimeoutError,
        AssignmentTimeoutError,
        StopResponse,
        ToolError,
    )
    from .job_request import JobRequest
    from .worker_options import WorkerOptions, WorkerPermissions, WorkerType
