"""Typed, versioned messages between the supervisor and its child processes.

See docs/ipc.md for the protocol: frames, the message set, and who sends what when.
"""

from .channel import Channel
from .codec import MAX_FRAME_SIZE, FrameDecoder, encode_frame
from .errors import ChannelClosed, ProtocolError
from .messages import (
    ALL_MESSAGE_TYPES,
    EXIT_INIT_FAILED,
    EXIT_INTERNAL_ERROR,
    EXIT_OK,
    EXIT_PROTOCOL_ERROR,
    EXIT_RETIRED,
    PROTOCOL_VERSION,
    DumpStacks,
    EvaluateRequest,
    Exiting,
    Hello,
    Initialize,
    Initialized,
    JobEnded,
    JobEnding,
    JobStarted,
    Limits,
    Log,
    Message,
    Metrics,
    MetricSample,
    ParticipantInfo,
    Ping,
    PluginDescription,
    Pong,
    RequestEvaluated,
    Shutdown,
    ShutdownAck,
    StartJob,
    StatusReported,
)

__all__ = [
    "ALL_MESSAGE_TYPES", "EXIT_INIT_FAILED", "EXIT_INTERNAL_ERROR", "EXIT_OK", "EXIT_PROTOCOL_ERROR", "EXIT_RETIRED",
    "MAX_FRAME_SIZE", "PROTOCOL_VERSION", "Channel", "ChannelClosed",
    "DumpStacks", "EvaluateRequest", "Exiting", "FrameDecoder", "Hello", "Initialize",
    "Initialized", "JobEnded", "JobEnding", "JobStarted", "Limits", "Log", "Message", "MetricSample", "Metrics",
    "ParticipantInfo", "Ping", "PluginDescription", "Pong", "ProtocolError", "RequestEvaluated",
    "Shutdown", "ShutdownAck", "StartJob", "StatusReported", "encode_frame",
]
