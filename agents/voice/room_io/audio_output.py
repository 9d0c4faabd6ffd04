"""Agent audio into the room: an ``rtc.AudioSource`` behind a published microphone track."""

from __future__ import annotations

from livekit import rtc

from ..io import QueuedAudioOutput
from .options import RoomOutputOptions


class RoomAudioOutput(QueuedAudioOutput):
    """Publishes one local audio track; frames go to its ``AudioSource``, whose queue
    (``audio_queue_size_ms``) paces the writes at real time."""

    def __init__(self, room: rtc.Room, options: RoomOutputOptions) -> None:
        super().__init__(
            sample_rate=options.audio_sample_rate,
            num_channels=options.audio_num_channels,
            frame_duration=options.audio_frame_size_ms / 1000,
        )
        self._room = room
        self._options = options
        self._source: rtc.AudioSource | None = None
        self._publication: rtc.LocalTrackPublication | None = None

    @property
    def track_sid(self) -> str | None:
        return self._publication.sid if self._publication is not None else None

    async def start(self) -> None:
        self._source = rtc.AudioSource(
            self._options.audio_sample_rate,
            self._options.audio_num_channels,
            queue_size_ms=self._options.audio_queue_size_ms,
        )
        track = rtc.LocalAudioTrack.create_audio_track(self._options.track_name, self._source)
        self._publication = await self._room.local_participant.publish_track(
            track, self._options.audio_publish_options
        )

    def _need_source(self) -> rtc.AudioSource:
        if self._source is None:
            raise RuntimeError("RoomAudioOutput.start() was not called")
        return self._source

    async def _write(self, frame: rtc.AudioFrame) -> None:
        await self._need_source().capture_frame(frame)

    async def _wait_sink_drained(self) -> None:
        await self._need_source().wait_for_playout()

    def _clear_sink(self) -> None:
        if self._source is not None:
            self._source.clear_queue()

    def _sink_queued(self) -> float:
        return self._source.queued_duration if self._source is not None else 0.0

    async def aclose(self) -> None:
        await super().aclose()
        if self._publication is not None and self._room.isconnected():
            try:
                await self._room.local_participant.unpublish_track(self._publication.sid)
            except Exception:  # the room may be going away at the same time
                pass
        if self._source is not None:
            await self._source.aclose()
            self._source = None
