"""A test participant for the end-to-end tests and the benchmark: joins a room on the
real dev server, publishes a microphone, listens to the agent's track and collects
``lk.transcription`` streams."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from livekit import api, rtc

from roomd.agents.utils.audio import frame_rms
from roomd.agents.voice.room_io import ATTR_SEGMENT_ID, ATTR_TRANSCRIBED_TRACK_ID, TOPIC_TRANSCRIPTION

SILENCE_RMS = 0.001


def token(address: object, room: str, identity: str) -> str:
    return (
        api.AccessToken(address.api_key, address.api_secret)  # type: ignore[attr-defined]
        .with_identity(identity)
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .to_jwt()
    )


async def connect(address: object, room_name: str, identity: str) -> rtc.Room:
    room = rtc.Room()
    await room.connect(address.url, token(address, room_name, identity))  # type: ignore[attr-defined]
    return room


@dataclass(slots=True)
class Transcript:
    sender: str
    text: str
    attributes: dict[str, str]

    @property
    def track_id(self) -> str | None:
        return self.attributes.get(ATTR_TRANSCRIBED_TRACK_ID)

    @property
    def segment_id(self) -> str | None:
        return self.attributes.get(ATTR_SEGMENT_ID)


@dataclass(slots=True)
class Heard:
    """One received agent frame: when, and whether it had sound."""

    at: float
    loud: bool


class Participant:
    """The user's side of a call."""

    def __init__(self, room: rtc.Room) -> None:
        self.room = room
        self.source = rtc.AudioSource(48000, 1, queue_size_ms=200)
        self.mic_sid: str | None = None
        self.transcripts: list[Transcript] = []
        self.heard: list[Heard] = []
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_loud_frame: Callable[[float], None] | None = None
        room.on("track_subscribed", self._on_track)
        room.register_text_stream_handler(TOPIC_TRANSCRIPTION, self._on_text)

    async def publish_microphone(self) -> None:
        track = rtc.LocalAudioTrack.create_audio_track("mic", self.source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        publication = await self.room.local_participant.publish_track(track, options)
        self.mic_sid = publication.sid

    async def speak(self, frames: list[rtc.AudioFrame]) -> None:
        for frame in frames:
            await self.source.capture_frame(frame)
        await self.source.wait_for_playout()

    def _spawn(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_track(self, track: rtc.Track, publication: rtc.RemoteTrackPublication,
                  participant: rtc.RemoteParticipant) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            self._spawn(self._listen(track))

    async def _listen(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream.from_track(track=track, sample_rate=48000, num_channels=1)
        try:
            async for event in stream:
                now = time.perf_counter()
                loud = frame_rms(event.frame) > SILENCE_RMS
                self.heard.append(Heard(now, loud))
                if loud and self.on_loud_frame is not None:
                    self.on_loud_frame(now)
                self._changed.set()
        finally:
            await stream.aclose()

    def _on_text(self, reader: rtc.TextStreamReader, identity: str) -> None:
        async def read() -> None:
            text = await reader.read_all()
            self.transcripts.append(Transcript(identity, text, dict(reader.info.attributes)))
            self._changed.set()

        self._spawn(read())

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    def loud_frames(self, since: float = 0.0) -> int:
        return sum(1 for h in self.heard if h.loud and h.at >= since)

    def silent_run_since(self, since: float) -> int:
        """Consecutive silent frames at the end of what was heard after ``since``."""
        run = 0
        for h in reversed(self.heard):
            if h.at < since or h.loud:
                break
            run += 1
        return run

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.room.disconnect()
        await self.source.aclose()


def job_info(address: object, room_name: str, identity: str) -> Any:
    """What the supervisor would give a job for ``room_name`` (credentials included)."""
    import uuid

    from livekit.protocol import agent as agent_pb
    from livekit.protocol import models as models_pb

    from roomd.agents.job import RunningJobInfo
    from roomd.agents.job_request import AcceptArguments

    return RunningJobInfo(
        job=agent_pb.Job(id=f"AJ_{uuid.uuid4().hex[:8]}", room=models_pb.Room(name=room_name)),
        url=address.url,  # type: ignore[attr-defined]
        token=token(address, room_name, identity),
        accept=AcceptArguments(identity=identity),
        worker_id="test-worker",
        api_key=address.api_key,  # type: ignore[attr-defined]
        api_secret=address.api_secret,  # type: ignore[attr-defined]
    )
