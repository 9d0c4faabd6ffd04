"""The linked participant's microphone as an ``AudioInput``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from livekit import rtc

from ...utils.aio import Chan, TaskOwner, cancel_and_wait
from ..io import AudioInput

logger = logging.getLogger("roomd.agents")


class RoomAudioInput(AudioInput):
    """Frames of one participant's microphone track, at ``sample_rate`` (resampled by the
    SDK). Follows the track: a republished microphone is picked up again; the frames
    iterator runs until ``aclose``."""

    def __init__(self, room: rtc.Room, *, sample_rate: int = 48000, num_channels: int = 1, frame_size_ms: int = 20) -> None:
        self._room = room
        self._sample_rate = sample_rate
        self._num_channels = num_channels
        self._frame_size_ms = frame_size_ms
        self._chan: Chan[rtc.AudioFrame] = Chan()
        self._identity: str | None = None
        self._track_sid: str | None = None
        self._pump: asyncio.Task[None] | None = None
        self._stream: rtc.AudioStream | None = None
        self._subscribed = asyncio.Event()
        self._closing = TaskOwner("room audio input: closing streams")  # of replaced tracks
        self._held: list[rtc.AudioFrame] | None = None  # live frames kept while pre-connect audio may come
        room.on("track_subscribed", self._on_track_subscribed)
        room.on("track_unsubscribed", self._on_track_unsubscribed)
        room.on("track_published", self._on_track_published)

    @property
    def participant_identity(self) -> str | None:
        return self._identity

    @property
    def track_sid(self) -> str | None:
        """The sid of the microphone track being read (transcripts are attributed to it)."""
        return self._track_sid

    async def wait_for_track(self) -> None:
        await self._subscribed.wait()

    def set_participant(self, identity: str | None) -> None:
        if identity == self._identity:
            return
        self._identity = identity
        self._stop_pump()
        if identity is None:
            return
        participant = self._room.remote_participants.get(identity)
        if participant is None:
            return
        for publication in participant.track_publications.values():
            if publication.source != rtc.TrackSource.SOURCE_MICROPHONE:
                continue
            if publication.track is not None and publication.subscribed:
                self._start_pump(publication.track, publication.sid)
                return
            publication.set_subscribed(True)

    def _on_track_published(self, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        if participant.identity == self._identity and publication.source == rtc.TrackSource.SOURCE_MICROPHONE:
            publication.set_subscribed(True)

    def _on_track_subscribed(
        self, track: rtc.Track, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if participant.identity != self._identity or publication.source != rtc.TrackSource.SOURCE_MICROPHONE:
            return
        self._start_pump(track, publication.sid)

    def _on_track_unsubscribed(
        self, track: rtc.Track, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if publication.sid == self._track_sid:
            self._stop_pump()

    def _start_pump(self, track: rtc.Track, sid: str) -> None:
        self._stop_pump()
        self._track_sid = sid
        self._stream = rtc.AudioStream.from_track(
            track=track,
            sample_rate=self._sample_rate,
            num_channels=self._num_channels,
            frame_size_ms=self._frame_size_ms,
        )
        self._pump = asyncio.get_running_loop().create_task(self._forward(self._stream), name="room_audio_input")
        self._subscribed.set()

    def _stop_pump(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            self._pump = None
        if self._stream is not None:
            stream, self._stream = self._stream, None
            self._closing.create_task(stream.aclose(), name="close replaced stream")
        self._track_sid = None
        self._subscribed.clear()

    async def _forward(self, stream: rtc.AudioStream) -> None:
        async for event in stream:
            if self._chan.closed:
                return
            if self._held is not None:
                self._held.append(event.frame)
            else:
                self._chan.send_nowait(event.frame)

    def hold(self) -> None:
        """Keep live frames back until ``release`` (pre-connect audio goes first)."""
        if self._held is None:
            self._held = []

    def release(self, first: list[rtc.AudioFrame]) -> None:
        """Send ``first`` (audio recorded before the agent joined), then the held frames."""
        held, self._held = self._held or [], None
        if self._chan.closed:
            return
        for frame in [*first, *held]:
            self._chan.send_nowait(frame)

    def __aiter__(self) -> AsyncIterator[rtc.AudioFrame]:
        return self._chan

    async def aclose(self) -> None:
        self._room.off("track_subscribed", self._on_track_subscribed)
        self._room.off("track_unsubscribed", self._on_track_unsubscribed)
        self._room.off("track_published", self._on_track_published)
        pump, stream = self._pump, self._stream
        self._pump = self._stream = None
        await cancel_and_wait(pump)
        # Replaced streams are let finish closing (not cancelled mid-close), then the owner shuts.
        if self._closing.tasks:
            await asyncio.gather(*self._closing.tasks, return_exceptions=True)
        await self._closing.aclose()
        if stream is not None:
            await stream.aclose()
        self._chan.close()
