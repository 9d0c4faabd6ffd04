"""How the session uses the room: which participant it listens to, what it publishes."""

from __future__ import annotations

from dataclasses import dataclass, field

from livekit import rtc

#: topics and attributes LiveKit front ends read (components-js, the agents playground)
TOPIC_TRANSCRIPTION = "lk.transcription"
TOPIC_CHAT = "lk.chat"
ATTR_TRANSCRIBED_TRACK_ID = "lk.transcribed_track_id"
ATTR_SEGMENT_ID = "lk.segment_id"
ATTR_TRANSCRIPTION_FINAL = "lk.transcription_final"
ATTR_AGENT_STATE = "lk.agent.state"
#: roomd's own: each user turn's latencies as JSON data messages (the playground shows them)
TOPIC_TURN_METRICS = "roomd.turn_metrics"

DEFAULT_PARTICIPANT_KINDS: tuple[int, ...] = (
    rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD,
    rtc.ParticipantKind.PARTICIPANT_KIND_SIP,
)


def _microphone_options() -> rtc.TrackPublishOptions:
    return rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)


@dataclass(slots=True)
class RoomInputOptions:
    """``participant_identity``: the user to listen to (default: the first participant of
    one of ``participant_kinds`` to join). ``close_on_disconnect``: end the session
    when that participant leaves. Video input is not supported yet (ignored)."""

    text_enabled: bool = True
    audio_enabled: bool = True
    video_enabled: bool = False
    audio_sample_rate: int = 48000
    audio_num_channels: int = 1
    audio_frame_size_ms: int = 20
    participant_identity: str | None = None
    participant_kinds: tuple[int, ...] = DEFAULT_PARTICIPANT_KINDS
    close_on_disconnect: bool = True

    def __post_init__(self) -> None:
        if self.audio_sample_rate <= 0 or self.audio_num_channels <= 0:
            raise ValueError("audio_sample_rate and audio_num_channels must be positive")
        if self.audio_frame_size_ms not in (10, 20, 40):
            raise ValueError(f"audio_frame_size_ms must be 10, 20 or 40, got {self.audio_frame_size_ms}")


@dataclass(slots=True)
class RoomOutputOptions:
    """``sync_transcription``: the agent's transcript follows its audio (text is
    published when the audio carrying it is played) instead of the LLM's pace."""

    transcription_enabled: bool = True
    audio_enabled: bool = True
    audio_sample_rate: int = 48000
    audio_num_channels: int = 1
    audio_frame_size_ms: int = 20
    audio_track_name: str = "roomd_agent_audio"
    audio_publish_options: rtc.TrackPublishOptions = field(default_factory=_microphone_options)
    audio_queue_size_ms: int = 200
    sync_transcription: bool = True

    def __post_init__(self) -> None:
        if self.audio_sample_rate <= 0 or self.audio_num_channels <= 0:
            raise ValueError("audio_sample_rate and audio_num_channels must be positive")
        if self.audio_frame_size_ms not in (10, 20):
            raise ValueError(f"audio_frame_size_ms must be 10 or 20, got {self.audio_frame_size_ms}")
