"""Background sounds for a call: an ambient loop and a "thinking" sound while the agent
prepares a reply, mixed into one track of their own (``background_audio``) beside the
agent's voice.

Built-in clips are roomd's own, synthesized (see ``builtin_clips``); any file FFmpeg
decodes, or an async iterator of frames, can be played too.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
from collections.abc import AsyncIterator, Generator
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from livekit import rtc

from ..types import NOT_GIVEN, NotGivenOr, is_given
from ..utils.aio import TaskOwner, cancel_and_wait
from ..utils.audio_decode import audio_frames_from_file
from . import builtin_clips
from .events import AgentState, AgentStateChangedEvent

if TYPE_CHECKING:
    from .agent_session import AgentSession

logger = logging.getLogger("roomd.agents.background_audio")

_RATE = 48000
_BLOCK = _RATE // 50  # the mixer's 20 ms step
_TRACK_NAME = "background_audio"


class BuiltinAudioClip(enum.Enum):
    OFFICE_AMBIENCE = "office-ambience.ogg"
    KEYBOARD_TYPING = "keyboard-typing.ogg"
    KEYBOARD_TYPING2 = "keyboard-typing2.ogg"

    def path(self) -> str:
        """The clip's file (made on first use; see ``builtin_clips``)."""
        return str(builtin_clips.clip_path(self.value))


AudioSource = AsyncIterator[rtc.AudioFrame] | str | BuiltinAudioClip


class AudioConfig(NamedTuple):
    """A sound with its ``volume`` (0..1, a linear gain) and, in a list of choices, the
    ``probability`` of being the one played."""

    source: AudioSource
    volume: float = 1.0
    probability: float = 1.0


class PlayHandle:
    """One sound being played: ``stop()`` it, ``await`` it (or ``wait_for_playout()``)."""

    def __init__(self) -> None:
        self._done = asyncio.get_running_loop().create_future()
        self._stopped = False

    def done(self) -> bool:
        return self._done.done()

    def stop(self) -> None:
        if not self.done():
            self._stopped = True
            self._mark_playout_done()

    async def wait_for_playout(self) -> None:
        await asyncio.shield(self._done)

    def __await__(self) -> Generator[Any, None, PlayHandle]:
        async def wait() -> PlayHandle:
            await self.wait_for_playout()
            return self

        return wait().__await__()

    def _mark_playout_done(self) -> None:
        if not self._done.done():
            self._done.set_result(None)


class _Playing:
    """A sound in the mixer: 20 ms blocks of float samples, read ahead by a feeder task."""

    def __init__(self, handle: PlayHandle, volume: float) -> None:
        self.handle = handle
        self.volume = volume
        self.blocks: asyncio.Queue[np.ndarray | None] = asyncio.Queue(maxsize=25)  # 0.5 s ahead
        self.finished = False
        self.feeder: asyncio.Task[None] | None = None


class BackgroundAudioPlayer:
    """Plays ``ambient_sound`` in a loop from ``start()`` and ``thinking_sound`` whenever the
    session's agent is thinking. Each may be a clip, a file path, an async iterator of
    frames, an ``AudioConfig`` or a list of them (one is picked by probability).
    ``stream_timeout_ms`` is how long the mixer waits for a sound that is late (a slow
    decoder) before playing the others without it."""

    def __init__(
        self,
        *,
        ambient_sound: NotGivenOr[AudioSource | AudioConfig | list[AudioConfig] | None] = NOT_GIVEN,
        thinking_sound: NotGivenOr[AudioSource | AudioConfig | list[AudioConfig] | None] = NOT_GIVEN,
        stream_timeout_ms: int = 200,
    ) -> None:
        self._ambient_sound = ambient_sound if is_given(ambient_sound) else None
        self._thinking_sound = thinking_sound if is_given(thinking_sound) else None
        self._stream_timeout = stream_timeout_ms / 1000
        self._room: rtc.Room | None = None
        self._session: AgentSession[Any] | None = None
        self._source: rtc.AudioSource | None = None
        self._publication: rtc.LocalTrackPublication | None = None
        self._publish_options: rtc.TrackPublishOptions | None = None
        self._playing: list[_Playing] = []
        self._wake = asyncio.Event()
        self._tasks = TaskOwner()
        self._mixer: asyncio.Task[None] | None = None
        self._ambient_handle: PlayHandle | None = None
        self._thinking_handle: PlayHandle | None = None
        self._lock = asyncio.Lock()

    async def start(
        self,
        *,
        room: rtc.Room,
        agent_session: NotGivenOr[AgentSession[Any]] = NOT_GIVEN,
        track_publish_options: NotGivenOr[rtc.TrackPublishOptions] = NOT_GIVEN,
    ) -> None:
        """Publish the background track into ``room`` (connected) and start the ambient sound."""
        async with self._lock:
            if self._mixer is not None:
                raise RuntimeError("BackgroundAudioPlayer is already started")
            if not room.isconnected():
                raise RuntimeError("BackgroundAudioPlayer.start() needs a connected room")
            self._room = room
            self._session = agent_session if is_given(agent_session) else None
            self._publish_options = track_publish_options if is_given(track_publish_options) else None
            # A short queue: stopping a sound is heard within ~100 ms.
            self._source = rtc.AudioSource(_RATE, 1, queue_size_ms=100)
            await self._publish()
            self._mixer = asyncio.get_running_loop().create_task(self._mix(), name="background audio mixer")
            room.on("reconnected", self._on_reconnected)
            if self._session is not None:
                self._session.on("agent_state_changed", self._on_agent_state)
            if self._ambient_sound is not None:
                chosen = self._choose(self._ambient_sound)
                if chosen is not None:
                    source, volume = chosen
                    loop = not isinstance(source, AsyncIterator)  # files loop; iterators run out
                    self._ambient_handle = self.play(AudioConfig(source, volume), loop=loop)

    def play(self, audio: AudioSource | AudioConfig | list[AudioConfig], *, loop: bool = False) -> PlayHandle:
        """Mix ``audio`` into the track now; ``loop`` repeats a file or clip until stopped."""
        if self._mixer is None:
            raise RuntimeError("BackgroundAudioPlayer is not started")
        handle = PlayHandle()
        chosen = self._choose(audio)
        if chosen is None:  # a list whose probabilities picked nothing this time
            handle._mark_playout_done()
            return handle
        source, volume = chosen
        if loop and isinstance(source, AsyncIterator):
            raise ValueError("an async iterator of frames cannot be looped: pass a file path or clip, "
                             "or make the iterator endless yourself")
        playing = _Playing(handle, volume)
        self._playing.append(playing)
        playing.feeder = self._tasks.create_task(self._feed(playing, source, loop), name="background audio feeder")
        self._wake.set()
        return handle

    async def aclose(self) -> None:
        """Stop every sound and unpublish the track."""
        async with self._lock:
            if self._mixer is None:
                return
            if self._session is not None:
                self._session.off("agent_state_changed", self._on_agent_state)
            if self._room is not None:
                self._room.off("reconnected", self._on_reconnected)
            for playing in self._playing:
                playing.handle.stop()
            await self._tasks.aclose()
            await cancel_and_wait(self._mixer)
            self._mixer = None
            if self._source is not None:
                await self._source.aclose()
            if self._publication is not None and self._room is not None and self._room.isconnected():
                with contextlib.suppress(Exception):
                    await self._room.local_participant.unpublish_track(self._publication.sid)
            self._publication = None

    # -- choosing and reading sounds ------------------------------------------------------
    def _choose(self, audio: AudioSource | AudioConfig | list[AudioConfig]) -> tuple[AudioSource, float] | None:
        if isinstance(audio, list):
            picked = _pick(audio)
            return None if picked is None else (picked.source, picked.volume)
        if isinstance(audio, AudioConfig):
            return audio.source, audio.volume
        if isinstance(audio, (str, BuiltinAudioClip, AsyncIterator)):
            return audio, 1.0
        raise TypeError(f"cannot play {type(audio).__name__}: give a file path, a BuiltinAudioClip, "
                        "an async iterator of rtc.AudioFrame, an AudioConfig or a list of them")

    async def _feed(self, playing: _Playing, source: AudioSource, loop: bool) -> None:
        """Read the sound into 20 ms float blocks (48 kHz mono) for the mixer."""
        pending = np.zeros(0, dtype=np.float32)
        try:
            while True:
                frames = await self._frames(source)
                async for frame in _as_mono_48k(frames):
                    if playing.handle.done():
                        return
                    pending = np.concatenate([pending, frame])
                    while pending.size >= _BLOCK:
                        await playing.blocks.put(pending[:_BLOCK] * playing.volume)
                        pending = pending[_BLOCK:]
                if not loop:
                    break
            if pending.size:
                await playing.blocks.put(np.pad(pending, (0, _BLOCK - pending.size)) * playing.volume)
        except Exception:
            logger.exception("background sound %r failed", source)
        finally:
            playing.finished = True
            with contextlib.suppress(asyncio.QueueFull):
                playing.blocks.put_nowait(None)  # wakes a mixer waiting on an empty queue
            if playing.blocks.empty():
                playing.handle._mark_playout_done()

    @staticmethod
    async def _frames(source: AudioSource) -> AsyncIterator[rtc.AudioFrame]:
        if isinstance(source, BuiltinAudioClip):
            return audio_frames_from_file(await asyncio.to_thread(source.path))
        if isinstance(source, str):
            return audio_frames_from_file(source)
        return source

    # -- the mixer -------------------------------------------------------------------------
    async def _mix(self) -> None:
        assert self._source is not None
        while True:
            for stopped in [p for p in self._playing if p.handle.done()]:
                if stopped.feeder is not None:
                    stopped.feeder.cancel()  # it may be blocked on a full queue nobody reads now
            self._playing = [p for p in self._playing if not p.handle.done()]
            if not self._playing:
                self._wake.clear()
                await self._wake.wait()
                continue
            block = np.zeros(_BLOCK, dtype=np.float32)
            for playing in list(self._playing):
                samples = await self._next_block(playing)
                if samples is not None:
                    block += samples
            pcm = (np.clip(block, -1.0, 1.0) * 32767).astype(np.int16)
            await self._source.capture_frame(rtc.AudioFrame(pcm.tobytes(), _RATE, 1, _BLOCK))

    async def _next_block(self, playing: _Playing) -> np.ndarray | None:
        try:
            if playing.blocks.empty() and not playing.finished:
                # late: wait a little for it, then play the others without it this time
                async with asyncio.timeout(self._stream_timeout):
                    samples = await playing.blocks.get()
            else:
                samples = playing.blocks.get_nowait()
        except (TimeoutError, asyncio.QueueEmpty):
            samples = None
        if samples is None and playing.finished and playing.blocks.empty():
            playing.handle._mark_playout_done()
        return samples

    async def _publish(self) -> None:
        assert self._room is not None and self._source is not None
        track = rtc.LocalAudioTrack.create_audio_track(_TRACK_NAME, self._source)
        self._publication = await self._room.local_participant.publish_track(
            track, self._publish_options or rtc.TrackPublishOptions())

    def _on_reconnected(self) -> None:
        # a full reconnection loses the publication; publish again
        if self._room is not None and self._publication is not None \
                and self._publication.sid not in self._room.local_participant.track_publications:
            self._publication = None
            self._tasks.create_task(self._publish(), name="background audio republish")

    def _on_agent_state(self, event: AgentStateChangedEvent) -> None:
        if self._thinking_sound is None:
            return
        if event.new_state == AgentState.THINKING:
            if self._thinking_handle is None or self._thinking_handle.done():
                self._thinking_handle = self.play(self._thinking_sound)
        elif self._thinking_handle is not None:
            self._thinking_handle.stop()
            self._thinking_handle = None


def _pick(choices: list[AudioConfig]) -> AudioConfig | None:
    """One of ``choices`` by probability; when the probabilities add up to less than 1,
    possibly none (the rest is the chance of silence)."""
    total = sum(max(c.probability, 0.0) for c in choices)
    if total <= 0:
        return None
    draw = random.random() * max(total, 1.0)
    for choice in choices:
        draw -= max(choice.probability, 0.0)
        if draw < 0:
            return choice
    return None


async def _as_mono_48k(frames: AsyncIterator[rtc.AudioFrame]) -> AsyncIterator[np.ndarray]:
    """Float samples of any frames, downmixed and resampled to the mixer's format."""
    resampler: rtc.AudioResampler | None = None
    rate = 0
    async for frame in frames:
        data = np.frombuffer(frame.data, dtype=np.int16).astype(np.float32) / 32768.0
        if frame.num_channels > 1:
            data = data.reshape(-1, frame.num_channels).mean(axis=1)
        if frame.sample_rate == _RATE:
            yield data
            continue
        if resampler is None or frame.sample_rate != rate:
            rate = frame.sample_rate
            resampler = rtc.AudioResampler(rate, _RATE, num_channels=1)
        mono = rtc.AudioFrame((data * 32767).astype(np.int16).tobytes(), rate, 1, data.size)
        for out in resampler.push(mono):
            yield np.frombuffer(out.data, dtype=np.int16).astype(np.float32) / 32768.0


__all__ = ["AudioConfig", "AudioSource", "BackgroundAudioPlayer", "BuiltinAudioClip", "PlayHandle"]
