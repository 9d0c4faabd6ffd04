"""The session's edges: where user audio comes from and where agent audio and text go.

The pipeline only sees these small interfaces, so it runs the same against a LiveKit
room (``room_io``) and against memory (tests, benchmarks): ``AudioInput`` (an async
iterator of frames), ``AudioOutput`` (queued, paced playout with flush/clear/pause),
``TextOutput`` (the agent's transcript) and ``UserTranscriptOutput`` (the user's).
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from livekit import rtc

from ..utils.aio import Chan, cancel_and_wait
from ..utils.audio import frame_duration, split_frame
from ..utils.events import EventEmitter
from .timed_string import TimedString  # noqa: F401 - voice.io.TimedString, as in the reference


# -- input -------------------------------------------------------------------------------


class AudioInput(ABC):
    """User audio as an async iterator of 16-bit PCM frames; ends when the source does."""

    @abstractmethod
    def __aiter__(self) -> AsyncIterator[rtc.AudioFrame]: ...

    async def aclose(self) -> None:
        """Stop producing frames."""


class MemoryAudioInput(AudioInput):
    """Frames pushed by the caller (a test, a benchmark)."""

    def __init__(self) -> None:
        self._chan: Chan[rtc.AudioFrame] = Chan()

    def push_frame(self, frame: rtc.AudioFrame) -> None:
        self._chan.send_nowait(frame)

    async def push_realtime(self, frames: list[rtc.AudioFrame], *, speed: float = 1.0) -> None:
        """Push ``frames`` paced like a microphone (one frame per frame duration)."""
        start = time.perf_counter()
        elapsed_audio = 0.0
        for frame in frames:
            self._chan.send_nowait(frame)
            elapsed_audio += frame_duration(frame) / speed
            delay = start + elapsed_audio - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)

    def end(self) -> None:
        self._chan.close()

    def __aiter__(self) -> AsyncIterator[rtc.AudioFrame]:
        return self._chan

    async def aclose(self) -> None:
        self._chan.close()


# -- audio output ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    playback_position: float  # seconds of the segment that were heard
    interrupted: bool


class _Flush:
    """End of a segment in the playout queue."""


AudioOutputEvents = Literal["playback_started", "playback_finished"]


class AudioOutput(ABC, EventEmitter[AudioOutputEvents]):
    """Plays segments of agent audio in order.

    ``capture_frame`` queues audio (resampled to ``sample_rate`` and cut into
    ``frame_duration`` pieces), ``flush`` ends the segment, ``wait_for_playout``
    returns when the segment has been heard or cleared. ``clear_buffer`` drops what is
    not yet heard (an interruption); ``pause``/``resume`` hold the playout without
    losing audio (a possible false interruption). Emits ``playback_started`` (with the
    ``time.perf_counter()`` of the segment's first frame handed to the sink) and
    ``playback_finished`` (``PlaybackFinished``).

    Subclasses implement the sink: ``_write`` (may block to pace), ``_wait_sink_drained``,
    ``_clear_sink`` and ``_sink_queued`` (seconds written but not heard yet).
    """

    def __init__(self, *, sample_rate: int | None, num_channels: int = 1, frame_duration: float = 0.02) -> None:
        super().__init__()
        self._sample_rate = sample_rate
        self._num_channels = num_channels
        self._frame_duration = frame_duration
        self._queue: deque[rtc.AudioFrame | _Flush] = deque()
        self._wakeup = asyncio.Event()
        self._running = asyncio.Event()
        self._running.set()
        self._resampler: rtc.AudioResampler | None = None
        self._resampler_rate = 0
        self._segment: asyncio.Future[PlaybackFinished] | None = None
        self._segment_started = False
        self._played = 0.0
        self._recent: deque[rtc.AudioFrame] = deque(maxlen=100)  # written to the sink, maybe not heard
        self._player: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def sample_rate(self) -> int | None:
        return self._sample_rate

    @property
    def can_pause(self) -> bool:
        return True

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    # -- the sink ------------------------------------------------------------------------

    @abstractmethod
    async def _write(self, frame: rtc.AudioFrame) -> None: ...

    @abstractmethod
    async def _wait_sink_drained(self) -> None: ...

    @abstractmethod
    def _clear_sink(self) -> None: ...

    @abstractmethod
    def _sink_queued(self) -> float: ...

    # -- API -----------------------------------------------------------------------------

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        if self._closed:
            return
        for piece in self._convert(frame):
            self._enqueue(piece)

    def flush(self) -> None:
        """The current segment is complete (nothing to do if none was started)."""
        if self._resampler is not None:
            for out in self._resampler.flush():
                self._enqueue(out)
            self._resampler = None
        if self._segment is None or self._segment.done():
            self._segment = None  # nothing was captured since the last segment ended
            return
        if not self._queue or not isinstance(self._queue[-1], _Flush):
            self._queue.append(_Flush())
            self._wakeup.set()

    async def wait_for_playout(self) -> PlaybackFinished:
        if self._segment is None:
            return PlaybackFinished(playback_position=0.0, interrupted=False)
        return await asyncio.shield(self._segment)

    def clear_buffer(self) -> None:
        """Drop the unheard audio of the current segment and finish it as interrupted."""
        self._queue.clear()
        self._resampler = None
        self._restart_player()
        unheard = self._sink_queued()
        self._clear_sink()
        self._recent.clear()
        self._finish(interrupted=True, position=max(0.0, self._played - unheard))

    def pause(self) -> None:
        if self.paused:
            return
        self._running.clear()
        # Take back what the sink holds but has not played, so resume loses nothing.
        unheard = self._sink_queued()
        self._restart_player()
        self._clear_sink()
        taken: list[rtc.AudioFrame] = []
        while self._recent and unheard > 1e-4:
            frame = self._recent.pop()
            taken.append(frame)
            unheard -= frame_duration(frame)
            self._played -= frame_duration(frame)
        self._queue.extendleft(taken)  # extendleft reverses: taken is newest first
        self._wakeup.set()

    def resume(self) -> None:
        self._running.set()

    async def aclose(self) -> None:
        self._closed = True
        self._queue.clear()
        await cancel_and_wait(self._player)
        self._finish(interrupted=True, position=self._played)

    # -- internals -----------------------------------------------------------------------

    def _convert(self, frame: rtc.AudioFrame) -> list[rtc.AudioFrame]:
        frames = [frame]
        if self._sample_rate is not None and frame.sample_rate != self._sample_rate:
            if self._resampler is None or self._resampler_rate != frame.sample_rate:
                # QUICK: the better qualities hold back the first 20 ms of input, which
                # would delay the first audio the user hears.
                self._resampler = rtc.AudioResampler(
                    frame.sample_rate,
                    self._sample_rate,
                    num_channels=frame.num_channels,
                    quality=rtc.AudioResamplerQuality.QUICK,
                )
                self._resampler_rate = frame.sample_rate
            frames = self._resampler.push(frame)
        out: list[rtc.AudioFrame] = []
        for f in frames:
            if frame_duration(f) > self._frame_duration * 1.5:
                out.extend(split_frame(f, self._frame_duration))
            elif f.samples_per_channel:
                out.append(f)
        return out

    def _enqueue(self, frame: rtc.AudioFrame) -> None:
        if self._segment is None or self._segment.done():
            self._segment = asyncio.get_running_loop().create_future()
            self._segment_started = False
            self._played = 0.0
        self._queue.append(frame)
        self._wakeup.set()
        if self._player is None or self._player.done():
            self._restart_player()

    def _restart_player(self) -> None:
        if self._player is not None and not self._player.done():
            self._player.cancel()
        if not self._closed:
            self._player = asyncio.get_running_loop().create_task(self._play(), name="audio_output.play")

    def _finish(self, *, interrupted: bool, position: float) -> None:
        if self._segment is not None and not self._segment.done():
            event = PlaybackFinished(playback_position=position, interrupted=interrupted)
            self._segment.set_result(event)
            self.emit("playback_finished", event)
        self._running.set()

    async def _play(self) -> None:
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            await self._running.wait()
            item = self._queue[0]
            if isinstance(item, _Flush):
                await self._wait_sink_drained()
                self._queue.popleft()
                self._recent.clear()
                self._finish(interrupted=False, position=self._played)
                continue
            if not self._segment_started:
                self._segment_started = True
                self.emit("playback_started", time.perf_counter())
            # A sink has the frame once its write has started (both sinks hand it over
            # before their first await), so account for it before awaiting: a pause or
            # clear that cancels the write then sees it as written, not pending.
            self._queue.popleft()
            self._recent.append(item)
            self._played += frame_duration(item)
            await self._write(item)


class MemoryAudioOutput(AudioOutput):
    """Plays into a list at the speed of a real device (``speed`` times real time).

    ``frames`` holds every frame heard (cleared frames are removed), ``segments`` the
    audio of each finished segment.
    """

    def __init__(self, *, sample_rate: int | None = 48000, speed: float = 1.0, frame_duration: float = 0.02) -> None:
        super().__init__(sample_rate=sample_rate, frame_duration=frame_duration)
        self.speed = speed
        self.frames: list[rtc.AudioFrame] = []
        self.first_frame_times: list[float] = []
        self._clock_end = 0.0  # perf_counter at which the sink will have played everything
        self._pending: deque[tuple[float, rtc.AudioFrame]] = deque()
        self.on("playback_started", self.first_frame_times.append)

    async def _write(self, frame: rtc.AudioFrame) -> None:
        now = time.perf_counter()
        # Like a device with a 40 ms buffer: writing blocks while it is full.
        self._clock_end = max(self._clock_end, now) + frame_duration(frame) / self.speed
        self._pending.append((self._clock_end, frame))
        self.frames.append(frame)
        self._drop_heard(now)
        ahead = self._clock_end - now - 0.04
        if ahead > 0:
            await asyncio.sleep(ahead)

    def _drop_heard(self, now: float) -> None:
        while self._pending and self._pending[0][0] <= now:
            self._pending.popleft()

    async def _wait_sink_drained(self) -> None:
        delay = self._clock_end - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        self._pending.clear()

    def _clear_sink(self) -> None:
        self._drop_heard(time.perf_counter())
        unheard = {id(f) for _, f in self._pending}
        self.frames = [f for f in self.frames if id(f) not in unheard]
        self._pending.clear()
        self._clock_end = time.perf_counter()

    def _sink_queued(self) -> float:
        return max(0.0, self._clock_end - time.perf_counter()) * self.speed

    @property
    def heard_duration(self) -> float:
        return sum(frame_duration(f) for f in self.frames)


# -- text outputs ------------------------------------------------------------------------


class TextOutput(ABC):
    """The agent's transcript: text of one segment arrives in pieces, then ``flush``."""

    @abstractmethod
    async def capture_text(self, text: str) -> None: ...

    @abstractmethod
    async def flush(self) -> None: ...


class UserTranscriptOutput(ABC):
    """The user's transcript: interim versions of a segment, then the final one."""

    @abstractmethod
    async def publish(self, text: str, *, is_final: bool) -> None: ...


class MemoryTextOutput(TextOutput):
    def __init__(self) -> None:
        self.segments: list[str] = []  # finished segments
        self.current: list[str] = []

    async def capture_text(self, text: str) -> None:
        self.current.append(text)

    async def flush(self) -> None:
        if self.current:
            self.segments.append("".join(self.current))
            self.current = []


class MemoryUserTranscriptOutput(UserTranscriptOutput):
    def __init__(self) -> None:
        self.published: list[tuple[str, bool]] = []

    async def publish(self, text: str, *, is_final: bool) -> None:
        self.published.append((text, is_final))


__all__ = [
    "AudioInput",
    "AudioOutput",
    "MemoryAudioInput",
    "MemoryAudioOutput",
    "MemoryTextOutput",
    "MemoryUserTranscriptOutput",
    "PlaybackFinished",
    "TextOutput",
    "UserTranscriptOutput",
]
