"""How the session uses the room: which participant it listens to, what it publishes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from livekit import rtc

from ...types import NOT_GIVEN, NotGivenOr, is_given

#: topics and attributes LiveKit front ends read (components-js, the agents playground)
TOPIC_TRANSCRIPTION = "lk.transcription"
TOPIC_CHAT = "lk.chat"
TOPIC_PRE_CONNECT_AUDIO = "lk.agent.pre-connect-audio-buffer"
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


@dataclass(frozen=True, slots=True)
class TextInputEvent:
    """A text message the linked participant sent on ``lk.chat``."""

    text: str
    info: Any  # rtc.TextStreamInfo
    participant: rtc.RemoteParticipant | str


TextInputCallback = Callable[[Any, TextInputEvent], "Awaitable[None] | None"]


def _default_text_input_cb(session: Any, ev: TextInputEvent) -> Awaitable[None]:
    # Cut what the agent is saying, then answer the text as a user turn (roomd also runs
    # the agent's on_user_turn_completed for it, as for a spoken turn).
    session.interrupt()
    return session._user_turn_from_text(ev.text)


@dataclass(slots=True)
class RoomInputOptions:
    """How the session listens. ``text_enabled``/``audio_enabled`` default to on and
    ``video_enabled`` to off (video input is not supported: warned and ignored).
    ``participant_identity``: the user to listen to (default: the first participant of
    one of ``participant_kinds``, standard and SIP, to join). ``text_input_cb`` handles
    ``lk.chat`` messages. ``pre_connect_audio``: audio the client recorded before the
    agent joined (topic ``lk.agent.pre-connect-audio-buffer``) is heard first, if it comes
    within ``pre_connect_audio_timeout`` seconds. ``close_on_disconnect``: end the session
    when the linked participant leaves; ``delete_room_on_close`` then deletes the room.
    ``noise_cancellation`` is accepted and has no effect in roomd (no filter is
    available to self-hosted servers)."""

    text_enabled: NotGivenOr[bool] = NOT_GIVEN
    audio_enabled: NotGivenOr[bool] = NOT_GIVEN
    video_enabled: NotGivenOr[bool] = NOT_GIVEN
    audio_sample_rate: int = 24000
    audio_num_channels: int = 1
    noise_cancellation: Any | None = None
    text_input_cb: TextInputCallback = _default_text_input_cb
    participant_kinds: NotGivenOr[list[int]] = NOT_GIVEN
    participant_identity: NotGivenOr[str] = NOT_GIVEN
    pre_connect_audio: bool = True
    pre_connect_audio_timeout: float = 3.0
    close_on_disconnect: bool = True
    delete_room_on_close: bool = False
    audio_frame_size_ms: int = 20

    def __post_init__(self) -> None:
        if self.audio_sample_rate <= 0 or self.audio_num_channels <= 0:
            raise ValueError("audio_sample_rate and audio_num_channels must be positive")
        if self.audio_frame_size_ms not in (10, 20, 40):
            raise ValueError(f"audio_frame_size_ms must be 10, 20 or 40, got {self.audio_frame_size_ms}")
        if self.pre_connect_audio_timeout < 0:
            raise ValueError("pre_connect_audio_timeout must be >= 0")

    @property
    def kinds(self) -> tuple[int, ...]:
        return tuple(self.participant_kinds) if is_given(self.participant_kinds) else DEFAULT_PARTICIPANT_KINDS


@dataclass(slots=True)
class RoomOutputOptions:
    """How the session speaks. ``transcription_enabled``/``audio_enabled`` default to on.
    ``sync_transcription`` (default on): the agent's transcript is released as its audio
    plays (at the TTS's timing when it gives one, else at an estimated speaking rate
    scaled by ``transcription_speed_factor``); off: as soon as the text exists."""

    transcription_enabled: NotGivenOr[bool] = NOT_GIVEN
    audio_enabled: NotGivenOr[bool] = NOT_GIVEN
    audio_sample_rate: int = 24000
    audio_num_channels: int = 1
    audio_publish_options: rtc.TrackPublishOptions = field(default_factory=_microphone_options)
    audio_track_name: NotGivenOr[str] = NOT_GIVEN
    sync_transcription: NotGivenOr[bool] = NOT_GIVEN
    transcription_speed_factor: float = 1.0
    audio_frame_size_ms: int = 20
    audio_queue_size_ms: int = 200

    def __post_init__(self) -> None:
        if self.audio_sample_rate <= 0 or self.audio_num_channels <= 0:
            raise ValueError("audio_sample_rate and audio_num_channels must be positive")
        if self.audio_frame_size_ms not in (10, 20):
            raise ValueError(f"audio_frame_size_ms must be 10 or 20, got {self.audio_frame_size_ms}")
        if self.transcription_speed_factor <= 0:
            raise ValueError("transcription_speed_factor must be > 0")

    @property
    def track_name(self) -> str:
        return self.audio_track_name if is_given(self.audio_track_name) else "roomd_agent_audio"
