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
    TextInputEvent,
)
from .room_io import RoomIO
from .transcription import RoomTextOutput, RoomUserTranscriptOutput

# The reference's module-level defaults (RoomIO itself builds fresh options when none are given).
DEFAULT_ROOM_INPUT_OPTIONS = RoomInputOptions()
DEFAULT_ROOM_OUTPUT_OPTIONS = RoomOutputOptions()

__all__ = [
    "ATTR_SEGMENT_ID",
    "ATTR_TRANSCRIBED_TRACK_ID",
    "ATTR_TRANSCRIPTION_FINAL",
    "DEFAULT_ROOM_INPUT_OPTIONS",
    "DEFAULT_ROOM_OUTPUT_OPTIONS",
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
    "TextInputEvent",
]
