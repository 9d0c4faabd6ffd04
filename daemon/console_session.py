"""The console's participant: joins a room, sends text and audio, collects what comes back.

Shared by ``roomd console`` (``console.py``), the tests and the voice benchmark.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click
import numpy as np

from roomd.ipc.tasks import TaskOwner
from roomd.ipc.urls import http_url

RATE = 48000
FRAME = RATE // 100  # 10 ms
CHAT_TOPIC = "lk.chat"
TRANSCRIPTION_TOPIC = "lk.transcription"


@dataclass(frozen=True, slots=True)
class Line:
    """A text that arrived in the room."""

    topic: str
    identity: str
    text: str
    final: bool
    opened_at: float = 0.0  # loop.time() when its stream began: what it answers came before


class AgentLeft(RuntimeError):
    """The agent left the room (its job ended) while the console waited for it."""


@dataclass(slots=True)
class ConsoleOptions:
    url: str
    api_key: str
    api_secret: str
    room: str
    identity: str = "console-user"
    agent_name: str | None = None
    input_wav: Path | None = None
    output_wav: Path | None = None
    record: Path | None = None  # both sides of the conversation, as a stereo WAV (you left, agent right)
    mic: bool = False
    trailing_silence: float = 2.0
    keep_audio: bool = False  # keep the agent's frames in memory (tests, benchmarks)


def read_wav_48k(path: Path) -> np.ndarray:
    """A 16-bit mono WAV as 48 kHz int16 samples (resampled if needed)."""
    from livekit import rtc

    with wave.open(str(path)) as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise click.BadParameter(f"{path}: need 16-bit mono WAV, got {wav.getsampwidth() * 8}-bit, "
                                     f"{wav.getnchannels()} channels")
        rate, pcm = wav.getframerate(), wav.readframes(wav.getnframes())
    frame = rtc.AudioFrame(pcm, rate, 1, len(pcm) // 2)
    if rate != RATE:
        resampler = rtc.AudioResampler(rate, RATE, num_channels=1)
        frame = rtc.combine_audio_frames(resampler.push(frame) + resampler.flush())
    return np.frombuffer(frame.data, dtype=np.int16).copy()


class Conversation:
    """Both sides of a console conversation on one timeline: channel 0 is the user, 1 the agent.

    Each block is placed at the time it was heard (loop time), so the two sides line up
    as they did in the room; kept in memory and written once, as a 48 kHz stereo WAV.
    """

    def __init__(self) -> None:
        self._blocks: list[tuple[int, float, np.ndarray]] = []

    def add(self, channel: int, at: float, samples: np.ndarray) -> None:
        self._blocks.append((channel, at, samples.copy()))

    def write(self, path: Path) -> None:
        start = min((at for _, at, _ in self._blocks), default=0.0)
        placed = [(channel, round((at - start) * RATE), samples) for channel, at, samples in self._blocks]
        length = max((offset + samples.size for _, offset, samples in placed), default=0)
        mix = np.zeros((length, 2), dtype=np.int32)
        for channel, offset, samples in placed:
            mix[offset:offset + samples.size, channel] += samples
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(2)
            wav.setsampwidth(2)
            wav.setframerate(RATE)
            wav.writeframes(np.clip(mix, -32768, 32767).astype(np.int16).tobytes())


@dataclass
class ConsoleSession:
    """A console participant in a room: sends text and audio, collects what comes back.

    Used by the ``console`` command, the tests and the voice benchmark.
    """

    options: ConsoleOptions
    on_line: Callable[[Line], None] = lambda line: None
    lines: list[Line] = field(default_factory=list)
    _room: object | None = None
    _source: object | None = None
    _tasks: TaskOwner = field(default_factory=lambda: TaskOwner("console"))
    _recorder: wave.Wave_write | None = None
    _line_event: asyncio.Event = field(default_factory=asyncio.Event)
    _speech: asyncio.Queue[tuple[np.ndarray, asyncio.Future[float]]] = field(default_factory=asyncio.Queue)
    _agents_changed: asyncio.Event = field(default_factory=asyncio.Event)
    agent_seen: bool = False  # an agent participant has been in the room
    asked_at: float | None = None  # loop time of the user's last question, spoken or typed
    first_agent_audio_at: float | None = None  # loop.time() of the first agent frame with sound
    agent_audio_frames: list[tuple[float, float]] = field(default_factory=list)  # (loop time, rms)
    agent_audio: list[tuple[float, object]] = field(default_factory=list)  # (loop time, rtc.AudioFrame) if keep_audio
    _conversation: Conversation | None = None

    @property
    def room(self):  # type: ignore[no-untyped-def]
        assert self._room is not None, "not connected"
        return self._room

    def token(self) -> str:
        from livekit import api

        grants = api.VideoGrants(room_join=True, room=self.options.room)
        return (
            api.AccessToken(self.options.api_key, self.options.api_secret)
            .with_identity(self.options.identity)
            .with_name(self.options.identity)
            .with_grants(grants)
            .to_jwt()
        )

    async def connect(self) -> None:
        from livekit import rtc

        room = rtc.Room()
        self._room = room
        room.register_text_stream_handler(TRANSCRIPTION_TOPIC, self._on_text)
        room.register_text_stream_handler(CHAT_TOPIC, self._on_text)
        room.on("track_subscribed", self._on_track)
        for event in ("participant_connected", "participant_disconnected", "participant_attributes_changed"):
            room.on(event, self._on_participants)
        if self.options.output_wav is not None:
            self._recorder = wave.open(str(self.options.output_wav), "wb")  # noqa: SIM115 -- closed by aclose()
            self._recorder.setnchannels(1)
            self._recorder.setsampwidth(2)
            self._recorder.setframerate(RATE)
        if self.options.record is not None:
            self._conversation = Conversation()
        await room.connect(self.options.url, self.token(), rtc.RoomOptions(auto_subscribe=True))
        self._on_participants()  # an agent already in the room raised no event
        # A short queue: speech waits behind at most 100 ms of queued silence.
        self._source = rtc.AudioSource(RATE, 1, queue_size_ms=100)
        track = rtc.LocalAudioTrack.create_audio_track("console-mic", self._source)
        await room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        self._spawn(self._pump())
        if self.options.agent_name:
            await self.dispatch(self.options.agent_name)

    async def dispatch(self, agent_name: str) -> None:
        from livekit import api

        async with api.LiveKitAPI(http_url(self.options.url), self.options.api_key, self.options.api_secret) as lkapi:
            await lkapi.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name=agent_name, room=self.options.room)
            )

    def _spawn(self, coro) -> None:  # type: ignore[no-untyped-def]
        self._tasks.spawn(coro, coro.__qualname__)

    def _on_participants(self, *_args: object) -> None:
        self.agent_seen = self.agent_seen or bool(self.agents())
        self._agents_changed.set()

    def agents(self) -> list:  # type: ignore[type-arg]
        """The agent participants in the room now."""
        from livekit import rtc

        if self._room is None:
            return []
        return [p for p in self._room.remote_participants.values()  # type: ignore[attr-defined]
                if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT]

    def _on_text(self, reader, participant_identity: str) -> None:  # type: ignore[no-untyped-def]
        opened_at = asyncio.get_running_loop().time()

        async def read() -> None:
            text = await reader.read_all()
            attrs = reader.info.attributes or {}
            line = Line(
                topic=reader.info.topic,
                identity=participant_identity,
                text=text,
                final=attrs.get("lk.transcription_final", "true") != "false",
                opened_at=opened_at,
            )
            self.lines.append(line)
            self._line_event.set()
            self.on_line(line)

        self._spawn(read())

    def _on_track(self, track, publication, participant) -> None:  # type: ignore[no-untyped-def]
        from livekit import rtc

        if track.kind == rtc.TrackKind.KIND_AUDIO:
            self._spawn(self._receive(track))

    async def _receive(self, track) -> None:  # type: ignore[no-untyped-def]
        from livekit import rtc

        loop = asyncio.get_running_loop()
        async for event in rtc.AudioStream(track, sample_rate=RATE, num_channels=1):
            samples = np.frombuffer(event.frame.data, dtype=np.int16)
            rms = float(np.sqrt(np.mean((samples.astype(np.float32) / 32768.0) ** 2))) if samples.size else 0.0
            now = loop.time()
            self.agent_audio_frames.append((now, rms))
            if rms > 0.003 and self.first_agent_audio_at is None:
                self.first_agent_audio_at = now
            if self.options.keep_audio:
                self.agent_audio.append((now, event.frame))
            if self._recorder is not None:
                self._recorder.writeframes(bytes(event.frame.data))
            if self._conversation is not None:
                self._conversation.add(1, now, samples)

    def first_sound_after(self, t: float, *, level: float = 0.003) -> float | None:
        """loop.time() of the first agent frame louder than ``level`` after ``t``."""
        return next((at for at, rms in self.agent_audio_frames if at > t and rms > level), None)

    async def send_text(self, text: str) -> None:
        await self.room.local_participant.send_text(text, topic=CHAT_TOPIC)

    async def _pump(self) -> None:
        """The microphone track: queued speech when there is some, silence otherwise.

        One task owns the source (a continuous stream, as a real microphone is), so the
        agent's VAD hears the silence after a turn and nothing races on the source.
        """
        from livekit import rtc

        assert self._source is not None
        loop = asyncio.get_running_loop()
        quiet = rtc.AudioFrame.create(RATE, 1, FRAME)
        while True:
            try:
                samples, done = self._speech.get_nowait()
            except asyncio.QueueEmpty:
                await self._capture(quiet)
                continue
            pad = (-samples.size) % FRAME
            samples = np.concatenate([samples, np.zeros(pad, dtype=np.int16)])
            for start in range(0, samples.size, FRAME):
                chunk = samples[start : start + FRAME]
                await self._capture(rtc.AudioFrame(chunk.tobytes(), RATE, 1, FRAME))
            # What is still queued in the source plays out before the speech has ended.
            ended = loop.time() + self._source.queued_duration  # type: ignore[attr-defined]
            if not done.done():
                done.set_result(ended)

    async def _capture(self, frame) -> None:  # type: ignore[no-untyped-def]
        assert self._source is not None
        await self._source.capture_frame(frame)  # type: ignore[attr-defined]
        if self._conversation is not None:
            # It is heard once what is queued ahead of it has played out.
            heard = asyncio.get_running_loop().time() + self._source.queued_duration  # type: ignore[attr-defined]
            self._conversation.add(0, heard, np.frombuffer(frame.data, dtype=np.int16))

    async def play(self, samples: np.ndarray, *, trailing_silence: float | None = None) -> float:
        """Publish samples as speech; returns loop.time() when their last sample plays out.

        Waits ``trailing_silence`` more seconds (the pump sends silence meanwhile).
        """
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._speech.put_nowait((samples, done))
        ended = await done
        wait = self.options.trailing_silence if trailing_silence is None else trailing_silence
        await asyncio.sleep(max(0.0, ended - asyncio.get_running_loop().time()) + wait)
        return ended

    async def play_silence(self, seconds: float) -> None:
        """Let ``seconds`` of silence go out (the pump sends it)."""
        await asyncio.sleep(seconds)

    async def wait_for_line(self, predicate: Callable[[Line], bool], *, start: int = 0) -> Line:
        """The first line (from index ``start``) matching; waits for more as they come."""
        index = start
        while True:
            while index < len(self.lines):
                if predicate(self.lines[index]):
                    return self.lines[index]
                index += 1
            self._line_event.clear()
            await self._line_event.wait()

    def is_agent_line(self, line: Line) -> bool:
        """A finished text from the agent (its transcript or a chat message), not the user's
        transcript the agent publishes on the user's behalf."""
        return line.identity != self.options.identity and line.final and bool(line.text.strip())

    async def _until(self, ready: Callable[[], bool]) -> None:
        """Wait until ``ready()``; ``AgentLeft`` if every agent leaves meanwhile."""
        while not ready():
            if self.agent_seen and not self.agents():
                raise AgentLeft("the agent left the room (its job ended: see the agent's log)")
            self._agents_changed.clear()
            self._line_event.clear()
            waiters = [asyncio.ensure_future(self._agents_changed.wait()),
                       asyncio.ensure_future(self._line_event.wait())]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()

    async def wait_until_agent_listens(self, *, grace: float = 8.0) -> None:
        """Wait for an agent to join and finish its greeting, so what is said next is heard
        as the user's turn (not lost before the agent listens, nor mistaken for the greeting's
        cause). Ready at the agent's first finished line, or ``grace`` seconds after it
        joined for an agent that does not greet, unless it is then thinking or speaking (a
        slow greeting). "listening" alone is not enough: an agent says it listens as its
        session starts, before its greeting has begun, and a question asked then would take
        the greeting for its answer."""
        await self._until(lambda: bool(self.agents()))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace

        def ready() -> bool:
            if any(self.is_agent_line(line) for line in self.lines):
                return True
            busy = any(p.attributes.get("lk.agent.state") in ("thinking", "speaking") for p in self.agents())
            return loop.time() >= deadline and not busy

        async def tick() -> None:  # wakes _until when the grace ends
            await asyncio.sleep(grace)
            self._agents_changed.set()

        ticker = asyncio.ensure_future(tick())
        try:
            await self._until(ready)
        finally:
            ticker.cancel()

    def answered(self) -> bool:
        """A question was asked and the agent has answered it."""
        asked = self.asked_at
        return asked is not None and any(self.is_agent_line(line) and line.opened_at >= asked for line in self.lines)

    async def wait_for_reply(self, after: float) -> Line:
        """The agent's first finished line begun after ``after`` (loop time): its answer to
        what the user said or typed then. ``AgentLeft`` if the agent leaves first."""
        found: list[Line] = []

        def ready() -> bool:
            found[:] = [line for line in self.lines if self.is_agent_line(line) and line.opened_at >= after][:1]
            return bool(found)

        await self._until(ready)
        return found[0]

    async def aclose(self) -> None:
        await self._tasks.aclose(timeout=None)
        if self._room is not None:
            await self._room.disconnect()  # type: ignore[attr-defined]
        if self._recorder is not None:
            self._recorder.close()
            self._recorder = None
        if self._conversation is not None and self.options.record is not None:
            self._conversation.write(self.options.record)
            self._conversation = None
