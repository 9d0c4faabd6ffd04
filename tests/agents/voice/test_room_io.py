"""Sessions join their room as in livekit-agents 1.2 (issue 11, item 1), against the real
livekit-server: start(room=) connects the job's room, RoomIO built by hand, switching the
linked participant, input/output toggles and the room options."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from livekit import api, rtc
from room_helpers import Participant, connect, job_info
from voice_audio import RATE, utterance

from roomd.agents import Agent, AgentSession, RoomInputOptions, RoomIO, RoomOutputOptions
from roomd.agents.job import JobContext, JobProcess, _set_current
from roomd.agents.llm import ChatContext
from roomd.agents.testing import EnergyVAD, FakeSTT, ScriptedLLM, ToneTTS
from roomd.agents.voice.room_io import TOPIC_CHAT

pytestmark = pytest.mark.livekit_server

TIMEOUT = 20.0


def echo(ctx: ChatContext) -> str:
    users = [m.text_content for m in ctx.messages if m.role == "user"]
    return f"You said {users[-1]}." if users else "Hello."


def new_session(**kwargs: Any) -> AgentSession[Any]:
    kwargs.setdefault("vad", EnergyVAD())
    kwargs.setdefault("stt", FakeSTT("what time is it"))
    kwargs.setdefault("llm", ScriptedLLM([], default=echo))
    kwargs.setdefault("tts", ToneTTS(seconds_per_char=0.02))
    kwargs.setdefault("min_endpointing_delay", 0.1)
    return AgentSession(**kwargs)


@dataclass
class Job:
    ctx: JobContext
    name: str
    server: Any

    async def user(self, identity: str, *, microphone: bool = True) -> Participant:
        user = Participant(await connect(self.server, self.name, identity))
        if microphone:
            await user.publish_microphone()
        self.users.append(user)
        return user

    users: list[Participant]


@pytest.fixture
async def job(livekit_server: Any) -> AsyncIterator[Job]:
    """A job context for a fresh room, current like in a job's entrypoint; not connected."""
    name = f"roomio-{uuid.uuid4().hex[:8]}"
    info = job_info(livekit_server, name, "agent")
    ctx = JobContext(proc=JobProcess(pid=os.getpid()), info=info, room=rtc.Room())
    current = _set_current(ctx)
    job = Job(ctx, name, livekit_server, [])
    try:
        yield job
    finally:
        for user in job.users:
            await user.aclose()
        await ctx.room.disconnect()
        await ctx._close_api()
        current.var.reset(current)


async def said(user: Participant, text: str) -> None:
    await user.wait_for(lambda: any(t.text == text and t.sender == "agent" for t in user.transcripts), TIMEOUT)


async def test_start_connects_the_jobs_room_when_the_entrypoint_did_not(job: Job) -> None:
    user = await job.user("caller")
    session = new_session()
    assert not job.ctx.room.isconnected()
    await session.start(Agent(instructions="x"), room=job.ctx.room)
    try:
        assert job.ctx.room.isconnected()
        await job.ctx.connect()  # an entrypoint that connects afterwards: nothing happens
        assert session.room_io is not None
        await asyncio.wait_for(session.room_io.wait_for_participant(), TIMEOUT)
        assert session.room_io.linked_participant.identity == "caller"  # type: ignore[union-attr]
        await user.speak(utterance(0.5, 0.2))
        await said(user, "You said what time is it.")
    finally:
        await asyncio.wait_for(session.aclose(), TIMEOUT)


async def test_start_after_ctx_connect_works_too(job: Job) -> None:
    await job.ctx.connect()
    user = await job.user("caller")
    session = new_session()
    await session.start(Agent(instructions="x"), room=job.ctx.room)
    try:
        await user.speak(utterance(0.5, 0.2))
        await said(user, "You said what time is it.")
    finally:
        await asyncio.wait_for(session.aclose(), TIMEOUT)


async def test_a_room_that_is_not_the_jobs_must_be_connected_first(job: Job) -> None:
    session = new_session()
    with pytest.raises(RuntimeError, match="not connected"):
        await session.start(Agent(instructions="x"), room=rtc.Room())


async def test_room_io_built_by_hand_switches_participants(job: Job) -> None:
    first = await job.user("first")
    second = await job.user("second")
    session = new_session(stt=FakeSTT(["from first", "from second", "ignored"]))
    room_io = RoomIO(session, room=job.ctx.room, input_options=RoomInputOptions(participant_identity="first"))
    await room_io.start()
    await session.start(Agent(instructions="x"))
    try:
        await asyncio.wait_for(room_io.subscribed_fut, TIMEOUT)
        assert room_io.linked_participant.identity == "first"  # type: ignore[union-attr]
        await first.speak(utterance(0.5, 0.2))
        await said(first, "You said from first.")

        room_io.set_participant("second")
        assert room_io.linked_participant.identity == "second"  # type: ignore[union-attr]
        await second.speak(utterance(0.5, 0.2))
        await said(second, "You said from second.")

        room_io.unset_participant()
        assert room_io.linked_participant is None
        await first.speak(utterance(0.5, 0.2))
        await asyncio.sleep(0.5)
        assert [m.text_content for m in session.history.messages if m.role == "user"] == ["from first", "from second"]
    finally:
        await asyncio.wait_for(session.aclose(), TIMEOUT)


async def test_input_and_output_toggles(job: Job) -> None:
    user = await job.user("caller")
    session = new_session(stt=FakeSTT(["one", "two"]))
    await session.start(Agent(instructions="x"), room=job.ctx.room)
    try:
        await asyncio.wait_for(session.room_io.subscribed_fut, TIMEOUT)  # type: ignore[union-attr]
        session.input.set_audio_enabled(False)
        await user.speak(utterance(0.5, 0.2))
        await asyncio.sleep(0.5)
        assert session.history.items == []  # not heard at all

        session.input.set_audio_enabled(True)
        session.output.set_audio_enabled(False)
        loud_before = user.loud_frames()
        await user.speak(utterance(0.5, 0.2))
        await said(user, "You said one.")
        await asyncio.sleep(0.3)
        assert user.loud_frames() == loud_before  # text only

        session.output.set_audio_enabled(True)
        session.output.set_transcription_enabled(False)
        await session.say("Can you hear me?")
        await user.wait_for(lambda: user.loud_frames() > loud_before + 5, TIMEOUT)
        await asyncio.sleep(0.3)
        assert not any(t.text == "Can you hear me?" for t in user.transcripts)
    finally:
        await asyncio.wait_for(session.aclose(), TIMEOUT)


async def test_text_input_callback_and_text_enabled(job: Job) -> None:
    user = await job.user("caller", microphone=False)
    typed: list[str] = []

    def on_text(sess: AgentSession[Any], ev: Any) -> None:
        typed.append(ev.text)
        assert ev.participant.identity == "caller"
        sess.say(f"Got {ev.text}")

    session = new_session()
    await session.start(Agent(instructions="x"), room=job.ctx.room,
                        room_input_options=RoomInputOptions(text_input_cb=on_text))
    try:
        await asyncio.wait_for(session.room_io.wait_for_participant(), TIMEOUT)  # type: ignore[union-attr]
        await user.room.local_participant.send_text("hello", topic=TOPIC_CHAT)
        await said(user, "Got hello")
        assert typed == ["hello"]
    finally:
        await asyncio.wait_for(session.aclose(), TIMEOUT)

    # text_enabled=False: chat is not read
    quiet = new_session()
    await quiet.start(Agent(instructions="x"), room=job.ctx.room,
                      room_input_options=RoomInputOptions(text_enabled=False))
    try:
        await user.room.local_participant.send_text("anyone?", topic=TOPIC_CHAT)
        await asyncio.sleep(0.5)
        assert quiet.history.items == []
    finally:
        await asyncio.wait_for(quiet.aclose(), TIMEOUT)


async def test_default_text_input_answers_typed_turns(job: Job) -> None:
    user = await job.user("caller", microphone=False)
    session = new_session()
    await session.start(Agent(instructions="x"), room=job.ctx.room)
    try:
        await asyncio.wait_for(session.room_io.wait_for_participant(), TIMEOUT)  # type: ignore[union-attr]
        await user.room.local_participant.send_text("good morning", topic=TOPIC_CHAT)
        await said(user, "You said good morning.")
    finally:
        await asyncio.wait_for(session.aclose(), TIMEOUT)


class TimedText:
    """Wraps the session's transcript output, noting when each piece is released."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.times: list[float] = []

    async def capture_text(self, text: str) -> None:
        self.times.append(time.perf_counter())
        await self.inner.capture_text(text)

    async def flush(self) -> None:
        await self.inner.flush()


async def words(text: str) -> AsyncIterator[str]:
    for word in text.split(" "):
        yield word + " "


SENTENCE = "A sentence long enough to take a few seconds to speak out loud."


@pytest.mark.parametrize("sync", [True, False])
async def test_output_options_and_transcript_sync(job: Job, sync: bool) -> None:
    user = await job.user("caller")
    session = new_session(tts=ToneTTS(seconds_per_char=0.05))
    await session.start(
        Agent(instructions="x"), room=job.ctx.room,
        room_output_options=RoomOutputOptions(audio_track_name="assistant-voice", sync_transcription=sync,
                                              audio_sample_rate=48000),
    )
    try:
        publications = list(job.ctx.room.local_participant.track_publications.values())
        assert [p.name for p in publications] == ["assistant-voice"]
        timed = session.output.transcription = TimedText(session.output.transcription)
        started = time.perf_counter()
        handle = session.say(words(SENTENCE))
        await asyncio.wait_for(handle, TIMEOUT)
        await said(user, SENTENCE + " ")
        spread = timed.times[-1] - timed.times[0]
        if sync:  # released with the audio (~3 s of tone), not all at once
            assert spread > 1.0
        else:
            assert spread < 0.5 and timed.times[-1] - started < 1.0
    finally:
        await asyncio.wait_for(session.aclose(), TIMEOUT)


async def test_close_on_disconnect_and_delete_room_on_close(job: Job, lkapi: api.LiveKitAPI) -> None:
    user = await job.user("caller")
    session = new_session()
    closed = asyncio.Event()
    session.on("close", lambda ev: closed.set())
    await session.start(Agent(instructions="x"), room=job.ctx.room,
                        room_input_options=RoomInputOptions(delete_room_on_close=True))
    await asyncio.wait_for(session.room_io.wait_for_participant(), TIMEOUT)  # type: ignore[union-attr]
    await user.room.disconnect()
    await asyncio.wait_for(closed.wait(), TIMEOUT)
    for _ in range(50):
        rooms = await lkapi.room.list_rooms(api.ListRoomsRequest(names=[job.name]))
        if not rooms.rooms:
            break
        await asyncio.sleep(0.1)
    assert not rooms.rooms


async def test_pre_connect_audio_is_heard_first(job: Job) -> None:
    await job.ctx.connect()
    user = Participant(await connect(job.server, job.name, "caller"))
    job.users.append(user)
    session = new_session(stt=FakeSTT(["before the agent came"]))
    await session.start(Agent(instructions="x"), room=job.ctx.room)
    try:
        # the client's buffered audio (raw PCM), then its microphone with the pre-connect feature
        pcm = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in utterance(0.5, 0.6)])
        writer = await user.room.local_participant.stream_bytes(
            "preconnect", topic="lk.agent.pre-connect-audio-buffer",
            attributes={"sampleRate": str(RATE), "channels": "1", "trackId": "TR_x"},
            destination_identities=["agent"],
        )
        await writer.write(pcm.tobytes())
        await writer.aclose()
        track = rtc.LocalAudioTrack.create_audio_track("mic", user.source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE, preconnect_buffer=True)
        await user.room.local_participant.publish_track(track, options)
        await said(user, "You said before the agent came.")
    finally:
        await asyncio.wait_for(session.aclose(), TIMEOUT)


async def test_options_turn_audio_off_and_filter_participant_kinds(job: Job) -> None:
    user = await job.user("caller")
    session = new_session()
    await session.start(
        Agent(instructions="x"), room=job.ctx.room,
        room_input_options=RoomInputOptions(audio_enabled=False,
                                            participant_kinds=[rtc.ParticipantKind.PARTICIPANT_KIND_SIP]),
        room_output_options=RoomOutputOptions(audio_enabled=False),
    )
    try:
        assert session.room_io is not None
        assert session.room_io.audio_input is None and session.room_io.audio_output is None
        assert list(job.ctx.room.local_participant.track_publications.values()) == []
        await asyncio.sleep(0.3)
        assert session.room_io.linked_participant is None  # a standard participant, not SIP
        # no one linked: chat from anyone is answered, as text only
        await user.room.local_participant.send_text("typed", topic=TOPIC_CHAT)
        await said(user, "You said typed.")
        assert user.loud_frames() == 0
    finally:
        await asyncio.wait_for(session.aclose(), TIMEOUT)


async def test_transcription_speed_factor_scales_the_estimated_pace(job: Job) -> None:
    spreads = []
    for factor in (1.0, 4.0):
        session = new_session(tts=ToneTTS(seconds_per_char=0.05))
        await session.start(Agent(instructions="x"), room=job.ctx.room,
                            room_output_options=RoomOutputOptions(transcription_speed_factor=factor))
        try:
            timed = session.output.transcription = TimedText(session.output.transcription)
            await asyncio.wait_for(session.say(words(SENTENCE)), TIMEOUT)
            spreads.append(timed.times[-1] - timed.times[0])
        finally:
            await asyncio.wait_for(session.aclose(), TIMEOUT)
    assert spreads[1] < spreads[0] / 2
