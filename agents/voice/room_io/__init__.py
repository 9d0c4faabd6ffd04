"""The session's room I/O: microphone in, agent track and transcripts out, chat in."""

from .audio_input import RoomAudioInput
from .audio_output import RoomAudioOutput
from .chat_input import RoomChatInput
from .options import (
    ATTR_SEGMENT_ID,
    ATTR_TRANSCRIBED_TRACK_ID,
    ATTR_TRANSCRIPTION_FINAL,
    TOPIC_CHAT,
    TOPIC_TRANSCRIPTION,
    RoomInputOptions,
    RoomOutputOptions,
)
from .room_io import RoomIO
from .transcription import RoomTextOutput, RoomUserTranscriptOutput

__all__ = [
    "ATTR_SEGMENT_ID",
    "ATTR_TRANSCRIBED_TRACK_ID",
    "ATTR_TRANSCRIPTION_FINAL",
    "TOPIC_CHAT",
    "TOPIC_TRANSCRIPTION",
    "RoomAudioInput",
    "RoomAudioOutput",
    "RoomChatInput",
    "RoomIO",
    "RoomInputOptions",
    "RoomOutputOptions",
    "RoomTextOutput",
    "RoomUserTranscriptOutput",
]
