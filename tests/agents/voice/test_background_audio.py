"""BackgroundAudioPlayer in a real room: a subscriber hears the ambient loop on the
``background_audio`` track, a played file ends its handle, and the thinking sound plays
exactly while the session's agent thinks."""

from __future__ import annotations

import asyncio
import uuid
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from livekit import rtc
from room_helpers import connect

from roomd.agents import AudioConfig, BackgroundAudioPlayer, BuiltinAudioClip, PlayHandle
from roomd.agents.testing import ScriptedLLM, ScriptedReply, ToneTTS
from roomd.agents.utils.audio import frame_rms
from roomd.agents.voice import Agent, AgentSession, MemoryAudioOutput, MemoryTextOutput

pytestmark = pytest.mark.livekit_server

TIMEOUT = 20.0
LOUD = 0.003


class TrackListener:
    """Counts the audible frames of the agent's ``background_audio`` track."""

    def __init__(self, room: rtc.Room) -> None:
        self.loud = 0
        self.track_names: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        room.on("track_subscribed", self._on_track)

    def _on_track(self, track: rtc.Track, publication: rtc.RemoteTrackPublication, _: rtc.RemoteParticipant) -> None:
        self.track_names.append(publication.name)
        if publication.name == "background_audio":
            task = asyncio.get_running_loop().create_task(self._listen(track))
            self._tasks.add(task)

    async def _listen(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream.from_track(track=track, sample_rate=48000, num_channels=1)
        try:
            async for event in stream:
                if frame_rms(event.frame) > LOUD:
                    self.loud += 1
                    self._changed.set()
        finally:
            await stream.aclose()

    async def wait_for_loud(self, count: int) -> None:
        async with asyncio.timeout(TIMEOUT):
            while self.loud < count:
                self._changed.clear()
                await self._changed.wait()

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@pytest.fixture
async def rooms(livekit_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[rtc.Room, rtc.Room, TrackListener]]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    name = f"bg-{uuid.uuid4().hex[:8]}"
    user = await connect(livekit_server, name, "listener")
    listener = TrackListener(user)
    agent = await connect(livekit_server, name, "agent")
    yield agent, user, listener
    await listener.aclose()
    await agent.disconnect()
    await user.disconnect()


def write_tone(path: Path, seconds: float) -> None:
    t = np.arange(int(seconds * 16000)) / 16000
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((0.3 * np.sin(2 * np.pi * 660 * t) * 32767).astype(np.int16).tobytes())


async def test_ambient_clip_is_heard_and_a_played_file_finishes(rooms: Any, tmp_path: Path) -> None:
    agent, _user, listener = rooms
    player = BackgroundAudioPlayer(ambient_sound=AudioConfig(BuiltinAudioClip.OFFICE_AMBIENCE, volume=0.8))
    await player.start(room=agent)
    try:
        await listener.wait_for_loud(50)  # a second of ambience reached the subscriber
        assert listener.track_names == ["background_audio"]
        path = tmp_path / "chime.wav"
        write_tone(path, 0.4)
        handle = player.play(str(path))
        assert isinstance(handle, PlayHandle) and not handle.done()
        assert await asyncio.wait_for(handle, TIMEOUT) is handle  # awaiting ends after its playout
        with pytest.raises(ValueError, match="looped"):
            player.play(_frames_of(path), loop=True)
        nothing = player.play([AudioConfig(str(path), probability=0.0)])
        assert nothing.done()  # no choice had a chance: nothing plays
        ambient = player._ambient_handle
        assert ambient is not None and not ambient.done()  # the ambience loops on
    finally:
        await player.aclose()
    assert "background_audio" not in [p.name for p in agent.local_participant.track_publications.values()]


async def _frames_of(path: Path) -> AsyncIterator[rtc.AudioFrame]:
    from roomd.agents.utils.audio import audio_frames_from_file

    async for frame in audio_frames_from_file(str(path)):
        yield frame


async def test_thinking_sound_plays_while_the_agent_thinks(rooms: Any) -> None:
    agent_room, _user, listener = rooms
    session: AgentSession[Any] = AgentSession(llm=ScriptedLLM([ScriptedReply("Here it is.", ttft=2.5)]),
                                              tts=ToneTTS())
    session.output.audio = MemoryAudioOutput(sample_rate=48000)
    session.output.transcription = MemoryTextOutput()
    await session.start(Agent(instructions="Be brief."))
    player = BackgroundAudioPlayer(thinking_sound=[AudioConfig(BuiltinAudioClip.KEYBOARD_TYPING, volume=0.9),
                                                   AudioConfig(BuiltinAudioClip.KEYBOARD_TYPING2, volume=0.9)])
    states: list[str] = []
    session.on("agent_state_changed", lambda ev: states.append(str(ev.new_state.value)))
    await player.start(room=agent_room, agent_session=session)
    try:
        await asyncio.sleep(0.5)
        assert listener.loud == 0  # no ambience given: silence before the agent thinks
        speech = session.generate_reply(user_input="find it")
        await listener.wait_for_loud(10)  # typing is heard while the LLM has not answered
        assert session.agent_state.value == "thinking"
        await asyncio.wait_for(speech.wait_for_playout(), TIMEOUT)
        assert "speaking" in states
        assert player._thinking_handle is None  # stopped when thinking ended
        heard = listener.loud
        await asyncio.sleep(0.6)
        assert listener.loud - heard <= 10  # only what was queued (~100 ms) trails the stop
    finally:
        await player.aclose()
        await asyncio.wait_for(session.aclose(), TIMEOUT)
