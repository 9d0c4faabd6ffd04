"""Names the reference exports from ``voice`` and ``voice.room_io`` that agents import."""

from __future__ import annotations

from roomd.agents.voice import TranscriptSynchronizer, room_io
from roomd.agents.voice.transcription.synchronizer import TranscriptSynchronizer as Synchronizer


def test_room_io_exports_the_text_input_event_and_default_options() -> None:
    assert room_io.RoomInputOptions() == room_io.DEFAULT_ROOM_INPUT_OPTIONS
    assert room_io.RoomOutputOptions() == room_io.DEFAULT_ROOM_OUTPUT_OPTIONS
    assert room_io.DEFAULT_ROOM_INPUT_OPTIONS.close_on_disconnect is True
    assert room_io.TextInputEvent.__dataclass_fields__.keys() >= {"text", "info", "participant"}


def test_voice_exports_the_transcript_synchronizer() -> None:
    assert TranscriptSynchronizer is Synchronizer
