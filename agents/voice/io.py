"""The session's edges: where user audio comes from and where agent audio and text go.

The pipeline only sees these small interfaces, so it runs the same against a LiveKit
room (``room_io``) and against memory (tests, benchmarks): ``AudioInput`` (an async
iterator of frames), ``AudioOutput`` (segments of agent audio, reporting when each has
been heard), ``TextOutput`` (the agent's transcript) and ``UserTranscriptOutput`` (the
user's).

``AudioInput``, ``AudioOutput`` and ``TextOutput`` have livekit-agents' shape: a custom
output subclasses ``AudioOutput(label=, capabilities=, next_in_chain=, sample_rate=)``,
calls ``super().capture_frame`` / ``super().flush()`` and reports
``on_playback_finished(playback_position=, interrupted=)``. ``QueuedAudioOutput`` is
roomd's paced implementation of it (room and memory sinks build on it).
"""

from __future__ import annotations

import asyncio
import logging
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

logger = logging.getLogger("roomd.agents")


# -- input -------------------------------------------------------------------------------


class AudioInput:
    """User audio as an async iterator of 16-bit PCM frames; ends when the source does.

    Subclass and implement ``__anext__`` (livekit-agents style) or ``__aiter__``; or
    wrap another input as ``source`` to pass its frames through.
    """

    def __init__(self, *, label: str = "", source: AudioInput | None = None) -> None:
        self.__label = label or type(self).__name__
        self.__source = source

    @property
    def label(self) -> str:
        return getattr(self, "_AudioInput__label", type(self).__name__)

    @property
    def source(self) -> AudioInput | None:
        return getattr(self, "_AudioInput__source", None)

    def __aiter__(self) -> AsyncIterator[rtc.AudioFrame]:
        return self  # type: ignore[return-value]

    async def __anext__(self) -> rtc.AudioFrame:
        source = self.source
        if source is None:
            raise NotImplementedError(f"{type(self).__name__} must implement __anext__ or __aiter__")
        return await source.__anext__()

    def on_attached(self) -> None:
        if self.source is not None:
            self.source.on_attached()

    def on_detached(self) -> None:
        if self.source is not None:
            self.source.on_detached()

    async def aclose(self) -> None:
        """Stop producing frames."""


class MemoryAudioInput(AudioInput):
    """Frames pushed by the caller (a test, a benchmark)."""

    def __init__(self) -> None:
        super().__init__(label="memory")
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


@dataclass(slots=True)
class PlaybackFinishedEvent:
    playback_position: float  # seconds of the segment that were heard
    interrupted: bool
    synchronized_transcript: str | None = None  # the text heard, when a synchronizer knows it


PlaybackFinished = PlaybackFinishedEvent  # roomd's earlier name


@dataclass(frozen=True, slots=True)
class AudioOutputCapabilities:
    pause: bool  # pause()/resume() hold the playout without losing audio


AudioOutputEvents = Literal["playback_started", "playback_finished"]


class AudioOutput(ABC, EventEmitter[AudioOutputEvents]):
    """Plays segments of agent audio in order and says when each one has been heard.

    A segment is the frames captured up to a ``flush``; for each one the output calls
    ``on_playback_finished`` once (when heard, or cleared by ``clear_buffer`` with
    ``interrupted=True``), which emits ``playback_finished`` and wakes
    ``wait_for_playout``. ``playback_started`` carries the ``time.perf_counter()`` of a
    segment's first frame. ``next_in_chain`` lets an output wrap another (a
    synchronizer in front of the room's track): its finishes become this one's.
    """

    #: subclasses that know when the sink really starts playing emit playback_started themselves
    _reports_playback_started: bool = False

    def __init__(
        self,
        *,
        label: str = "",
        capabilities: AudioOutputCapabilities | None = None,
        next_in_chain: AudioOutput | None = None,
        sample_rate: int | None = None,
    ) -> None:
        super().__init__()
        self.__label = label or type(self).__name__
        self.__capabilities = capabilities or AudioOutputCapabilities(pause=False)
        self.__next_in_chain = next_in_chain
        self._sample_rate = sample_rate
        self.__capturing = False
        self.__segments = 0
        self.__finished = 0
        self.__finished_changed = asyncio.Event()
        self.__last_event = PlaybackFinishedEvent(playback_position=0.0, interrupted=False)
        if next_in_chain is not None:
            next_in_chain.on("playback_finished", self.__on_next_finished)

    @property
    def label(self) -> str:
        return self.__label

    @property
    def next_in_chain(self) -> AudioOutput | None:
        return self.__next_in_chain

    @property
    def sample_rate(self) -> int | None:
        return self._sample_rate

    @property
    def capabilities(self) -> AudioOutputCapabilities:
        return self.__capabilities

    @property
    def can_pause(self) -> bool:
        nxt = self.__next_in_chain
        return self.__capabilities.pause and (nxt is None or nxt.can_pause)

    def __on_next_finished(self, ev: PlaybackFinishedEvent) -> None:
        self.on_playback_finished(
            playback_position=ev.playback_position,
            interrupted=ev.interrupted,
            synchronized_transcript=ev.synchronized_transcript,
        )

    @abstractmethod
    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        """Queue ``frame``; subclasses call ``await super().capture_frame(frame)`` first."""
        if not self.__capturing:
            self.__capturing = True
            self.__segments += 1
            if not self._reports_playback_started:
                self.emit("playback_started", time.perf_counter())

    @abstractmethod
    def flush(self) -> None:
        """The current segment is complete; subclasses call ``super().flush()``."""
        if not self.__capturing and self.__finished >= self.__segments:
            # An empty segment: waiting for it reports nothing heard and no interruption,
            # not the previous segment's outcome.
            self.__last_event = PlaybackFinishedEvent(playback_position=0.0, interrupted=False)
        self.__capturing = False

    @abstractmethod
    def clear_buffer(self) -> None:
        """Drop the audio not yet heard; the segment then finishes as interrupted."""

    def on_playback_finished(
        self, *, playback_position: float, interrupted: bool, synchronized_transcript: str | None = None
    ) -> None:
        """Report that the oldest unfinished segment has been heard (or cut off)."""
        if self.__finished >= self.__segments:
            logger.warning("%s: playback_finished with no segment playing", self.__label)
            return
        self.__finished += 1
        event = PlaybackFinishedEvent(
            playback_position=playback_position,
            interrupted=interrupted,
            synchronized_transcript=synchronized_transcript,
        )
        self.__last_event = event
        self.__finished_changed.set()
        self.emit("playback_finished", event)

    async def wait_for_playout(self) -> PlaybackFinishedEvent:
        """Until every segment captured so far has finished; returns the last one's event."""
        target = self.__segments
        while self.__finished < target:
            self.__finished_changed.clear()
            await self.__finished_changed.wait()
        return self.__last_event

    def _end_segment_capture(self) -> None:
        """The segment being captured is over even without a flush (it was cleared)."""
        self.__capturing = False

    def pause(self) -> None:
        if self.__next_in_chain is not None:
            self.__next_in_chain.pause()

    def resume(self) -> None:
        if self.__next_in_chain is not None:
            self.__next_in_chain.resume()

    def on_attached(self) -> None:
        if self.__next_in_chain is not None:
            self.__next_in_chain.on_attached()

    def on_detached(self) -> None:
        if self.__next_in_chain is not None:
            self.__next_in_chain.on_detached()

    async def aclose(self) -> None:
        """Release the sink (optional)."""


class _Flush:
    """End of a segment in the playout queue."""


class QueuedAudioOutput(AudioOutput):
    """roomd's paced ``AudioOutput``: a queue played out by a task into a sink.

    ``capture_frame`` queues audio (resampled to ``sample_rate`` and cut into
    ``frame_duration`` pieces), ``flush`` ends the segment. ``clear_buffer`` drops what
    is not yet heard (an interruption); ``pause``/``resume`` hold the playout without
    losing audio (a possible false interruption). ``playback_started`` is emitted when
    the sink receives a segment's first frame.

    Subclasses implement the sink: ``_write`` (may block to pace), ``_wait_sink_drained``,
    ``_clear_sink`` and ``_sink_queued`` (seconds written but not heard yet).
    """

    _reports_playback_started = True

    def __init__(
        self,
        *,
        sample_rate: int | None,
        num_channels: int = 1,
        frame_duration: float = 0.02,
        label: str = "",
        next_in_chain: AudioOutput | None = None,
    ) -> None:
        super().__init__(
            label=label,
            capabilities=AudioOutputCapabilities(pause=True),
            next_in_chain=next_in_chain,
            sample_rate=sample_rate,
        )
        self.__num_channels = num_channels
        self.__frame_duration = frame_duration
        self.__queue: deque[rtc.AudioFrame | _Flush] = deque()
        self.__wakeup = asyncio.Event()
        self.__running = asyncio.Event()
        self.__running.set()
        self.__resampler: rtc.AudioResampler | None = None
        self.__resampler_rate = 0
        self.__open = False  # a segment is being captured (no flush yet)
        self.__pending = 0  # segments captured and not finished yet (the oldest is playing)
        self.__segment_started = False
        self.__played = 0.0
        self.__recent: deque[rtc.AudioFrame] = deque(maxlen=100)  # written to the sink, maybe not heard
        self.__player: asyncio.Task[None] | None = None
        self.__closed = False

    @property
    def paused(self) -> bool:
        return not self.__running.is_set()

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
        if self.__closed:
            return
        await super().capture_frame(frame)
        if not self.__open:
            self.__open = True
            self.__pending += 1
        for piece in self.__convert(frame):
            self.__enqueue(piece)

    def flush(self) -> None:
        """The current segment is complete (nothing to do if none was started)."""
        super().flush()
        if self.__resampler is not None:
            for out in self.__resampler.flush():
                self.__enqueue(out)
            self.__resampler = None
        if not self.__open:
            return
        self.__open = False
        self.__queue.append(_Flush())
        self.__wakeup.set()
        if self.__player is None or self.__player.done():
            self.__restart_player()

    def clear_buffer(self) -> None:
        """Drop the unheard audio of the current segment and finish it as interrupted."""
        self.__queue.clear()
        self.__resampler = None
        self.__restart_player()
        unheard = self._sink_queued()
        self._clear_sink()
        self.__recent.clear()
        self.__open = False
        self._end_segment_capture()
        self.__finish_all(position=max(0.0, self.__played - unheard))

    def pause(self) -> None:
        if self.paused:
            return
        self.__running.clear()
        # Take back what the sink holds but has not played, so resume loses nothing.
        unheard = self._sink_queued()
        self.__restart_player()
        self._clear_sink()
        taken: list[rtc.AudioFrame] = []
        while self.__recent and unheard > 1e-4:
            frame = self.__recent.pop()
            taken.append(frame)
            unheard -= frame_duration(frame)
            self.__played -= frame_duration(frame)
        self.__queue.extendleft(taken)  # extendleft reverses: taken is newest first
        self.__wakeup.set()

    def resume(self) -> None:
        self.__running.set()

    async def aclose(self) -> None:
        self.__closed = True
        self.__queue.clear()
        await cancel_and_wait(self.__player)
        self.__open = False
        self._end_segment_capture()
        self.__finish_all(position=self.__played)

    # -- internals -----------------------------------------------------------------------

    def __convert(self, frame: rtc.AudioFrame) -> list[rtc.AudioFrame]:
        frames = [frame]
        rate = self.sample_rate
        if rate is not None and frame.sample_rate != rate:
            if self.__resampler is None or self.__resampler_rate != frame.sample_rate:
                # QUICK: the better qualities hold back the first 20 ms of input, which
                # would delay the first audio the user hears.
                self.__resampler = rtc.AudioResampler(
                    frame.sample_rate,
                    rate,
                    num_channels=frame.num_channels,
                    quality=rtc.AudioResamplerQuality.QUICK,
                )
                self.__resampler_rate = frame.sample_rate
            frames = self.__resampler.push(frame)
        out: list[rtc.AudioFrame] = []
        for f in frames:
            if frame_duration(f) > self.__frame_duration * 1.5:
                out.extend(split_frame(f, self.__frame_duration))
            elif f.samples_per_channel:
                out.append(f)
        return out

    def __enqueue(self, frame: rtc.AudioFrame) -> None:
        self.__queue.append(frame)
        self.__wakeup.set()
        if self.__player is None or self.__player.done():
            self.__restart_player()

    def __restart_player(self) -> None:
        if self.__player is not None and not self.__player.done():
            self.__player.cancel()
        if not self.__closed:
            self.__player = asyncio.get_running_loop().create_task(self.__play(), name="audio_output.play")

    def __finish(self, *, interrupted: bool, position: float) -> None:
        self.__segment_started = False
        self.__played = 0.0
        if self.__pending > 0:
            self.__pending -= 1
            self.on_playback_finished(playback_position=position, interrupted=interrupted)
        self.__running.set()

    def __finish_all(self, *, position: float) -> None:
        """Every captured segment ends as interrupted; only the oldest was heard at all."""
        while self.__pending > 0:
            self.__finish(interrupted=True, position=position)
            position = 0.0
        self.__running.set()

    async def __play(self) -> None:
        while True:
            while not self.__queue:
                self.__wakeup.clear()
                await self.__wakeup.wait()
            await self.__running.wait()
            item = self.__queue[0]
            if isinstance(item, _Flush):
                await self._wait_sink_drained()
                self.__queue.popleft()
                self.__recent.clear()
                self.__finish(interrupted=False, position=self.__played)
                continue
            if not self.__segment_started:
                self.__segment_started = True
                self.emit("playback_started", time.perf_counter())
            # A sink has the frame once its write has started (both sinks hand it over
            # before their first await), so account for it before awaiting: a pause or
            # clear that cancels the write then sees it as written, not pending.
            self.__queue.popleft()
            self.__recent.append(item)
            self.__played += frame_duration(item)
            await self._write(item)


class MemoryAudioOutput(QueuedAudioOutput):
    """Plays into a list at the speed of a real device (``speed`` times real time).

    ``frames`` holds every frame heard (cleared frames are removed), ``segments`` the
    audio of each finished segment.
    """

    def __init__(self, *, sample_rate: int | None = 48000, speed: float = 1.0, frame_duration: float = 0.02) -> None:
        super().__init__(sample_rate=sample_rate, frame_duration=frame_duration, label="memory")
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
    """The agent's transcript: text of one segment arrives in pieces, then ``flush``.

    ``flush`` may be plain (livekit-agents) or a coroutine (roomd's outputs); callers
    use ``flush_text_output``.
    """

    def __init__(self, *, label: str = "", next_in_chain: TextOutput | None = None) -> None:
        self.__label = label or type(self).__name__
        self.__next_in_chain = next_in_chain

    @property
    def label(self) -> str:
        return getattr(self, "_TextOutput__label", type(self).__name__)

    @property
    def next_in_chain(self) -> TextOutput | None:
        return getattr(self, "_TextOutput__next_in_chain", None)

    @abstractmethod
    async def capture_text(self, text: str) -> None: ...

    @abstractmethod
    def flush(self) -> object: ...

    def on_attached(self) -> None:
        if self.next_in_chain is not None:
            self.next_in_chain.on_attached()

    def on_detached(self) -> None:
        if self.next_in_chain is not None:
            self.next_in_chain.on_detached()


async def flush_text_output(output: TextOutput) -> None:
    """``output.flush()``, awaited when it is a coroutine."""
    result = output.flush()
    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
        await result


class UserTranscriptOutput(ABC):
    """The user's transcript: interim versions of a segment, then the final one."""

    @abstractmethod
    async def publish(self, text: str, *, is_final: bool) -> None: ...


class MemoryTextOutput(TextOutput):
    def __init__(self) -> None:
        super().__init__(label="memory")
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
    "AudioOutputCapabilities",
    "MemoryAudioInput",
    "MemoryAudioOutput",
    "MemoryTextOutput",
    "MemoryUserTranscriptOutput",
    "PlaybackFinished",
    "PlaybackFinishedEvent",
    "QueuedAudioOutput",
    "TextOutput",
    "TimedString",
    "UserTranscriptOutput",
    "flush_text_output",
]
