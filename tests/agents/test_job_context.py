"""JobContext and JobProcess as the reference API defines them, against the real server:
joining, subscriptions, waiting for participants, per-participant entrypoints, room deletion,
token claims, and the shutdown path (reason, callbacks) as the child runs it."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from livekit import api, rtc
from livekit.protocol import agent as agent_pb
from livekit.protocol import models as models_pb
from room_client import join, participant_token

from roomd.agents import JobExecutorType
from roomd.agents.job import AutoSubscribe, JobContext, JobProcess, RunningJobInfo
from roomd.agents.job_request import AcceptArguments
from roomd.agents.utils import wait_for_track_publication
from roomd.agents.utils.audio import sine
from roomd.child.job_runner import run_job, start_entrypoint

pytestmark = pytest.mark.livekit_server

TIMEOUT = 15.0


def make_context(server: Any, room: str, identity: str = "agent-under-test") -> JobContext:
    info = RunningJobInfo(
        job=agent_pb.Job(id=f"AJ_{uuid.uuid4().hex[:8]}", room=models_pb.Room(name=room)),
        url=server.url,
        token=participant_token(server, room, identity),
        accept=AcceptArguments(identity=identity),
        worker_id="test-worker",
        api_key=server.api_key,
        api_secret=server.api_secret,
    )
    return JobContext(proc=JobProcess(pid=os.getpid()), info=info, room=rtc.Room())


@pytest.fixture
async def room_name(livekit_server: Any) -> AsyncIterator[str]:
    name = f"job-{uuid.uuid4().hex[:8]}"
    yield name
    async with api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret) as lk:
        try:
            await lk.room.delete_room(api.DeleteRoomRequest(room=name))
        except api.TwirpError:
            pass  # already deleted by the test


async def until(condition: Any, timeout: float = TIMEOUT) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def publish_audio_and_video(room: rtc.Room) -> tuple[str, str]:
    audio = rtc.AudioSource(48000, 1)
    video = rtc.VideoSource(64, 64)
    a = await room.local_participant.publish_track(
        rtc.LocalAudioTrack.create_audio_track("mic", audio),
        rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))
    v = await room.local_participant.publish_track(
        rtc.LocalVideoTrack.create_video_track("cam", video),
        rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA))
    await audio.capture_frame(sine(0.05))
    return a.sid, v.sid


async def test_connect_twice_joins_once_and_audio_only_subscribes_to_audio(livekit_server: Any,
                                                                           room_name: str) -> None:
    user = await join(livekit_server, room_name, "user")
    ctx = make_context(livekit_server, room_name)
    try:
        audio_sid, video_sid = await publish_audio_and_video(user)
        await ctx.connect(auto_subscribe=AutoSubscribe.AUDIO_ONLY)
        await ctx.connect()  # a second call (as AgentSession.start makes) changes nothing
        assert ctx.room.isconnected() and ctx.agent.identity == "agent-under-test"
        remote = await asyncio.wait_for(ctx.wait_for_participant(identity="user"), TIMEOUT)
        await until(lambda: audio_sid in remote.track_publications
                    and remote.track_publications[audio_sid].subscribed)
        await asyncio.sleep(0.5)  # give a wrong subscription time to happen
        assert not remote.track_publications[video_sid].subscribed
        video = await asyncio.wait_for(
            wait_for_track_publication(ctx.room, identity="user", kind=rtc.TrackKind.KIND_VIDEO), TIMEOUT)
        assert video.sid == video_sid
    finally:
        await ctx.room.disconnect()
        await user.disconnect()


async def test_wait_for_participant_filters_identity_and_kind(livekit_server: Any, room_name: str) -> None:
    ctx = make_context(livekit_server, room_name)
    with pytest.raises(RuntimeError, match="not connected"):
        await ctx.wait_for_participant()
    await ctx.connect()
    first = await join(livekit_server, room_name, "first")
    try:
        waiting = asyncio.ensure_future(ctx.wait_for_participant(identity="second"))
        assert (await asyncio.wait_for(ctx.wait_for_participant(), TIMEOUT)).identity == "first"
        await asyncio.sleep(0.2)
        assert not waiting.done()
        second = await join(livekit_server, room_name, "second")
        assert (await asyncio.wait_for(waiting, TIMEOUT)).identity == "second"
        only_sip = asyncio.ensure_future(ctx.wait_for_participant(kind=rtc.ParticipantKind.PARTICIPANT_KIND_SIP))
        await asyncio.sleep(0.3)
        assert not only_sip.done()  # standard participants are not SIP callers
        only_sip.cancel()
        await second.disconnect()
    finally:
        await ctx.room.disconnect()
        await first.disconnect()


async def test_participant_entrypoints_run_for_present_and_new_participants(livekit_server: Any,
                                                                             room_name: str) -> None:
    early = await join(livekit_server, room_name, "early")
    ctx = make_context(livekit_server, room_name)
    greeted: list[tuple[str, str]] = []
    finished = asyncio.Event()

    async def greet(job: JobContext, participant: rtc.RemoteParticipant) -> None:
        assert job is ctx
        greeted.append(("greet", participant.identity))

    async def stays(job: JobContext, participant: rtc.RemoteParticipant) -> None:
        greeted.append(("stays", participant.identity))
        try:
            await asyncio.Event().wait()  # runs until the job ends
        finally:
            finished.set()

    async def breaks(job: JobContext, participant: rtc.RemoteParticipant) -> None:
        raise RuntimeError("one participant's trouble")

    ctx.add_participant_entrypoint(greet)
    ctx.add_participant_entrypoint(stays)
    ctx.add_participant_entrypoint(breaks)
    with pytest.raises(ValueError, match="already added"):
        ctx.add_participant_entrypoint(greet)
    late = None
    try:
        await ctx.connect()
        await until(lambda: ("greet", "early") in greeted)
        late = await join(livekit_server, room_name, "late")
        await until(lambda: ("greet", "late") in greeted and ("stays", "late") in greeted)
        assert sorted(greeted) == [("greet", "early"), ("greet", "late"), ("stays", "early"), ("stays", "late")]
        assert ctx.shutdown_reason is None and ctx.room.isconnected()  # a failing one ends nothing
        await ctx._run_shutdown_callbacks(1.0)  # the job's end cancels what still runs
        assert finished.is_set()
    finally:
        await ctx.room.disconnect()
        await early.disconnect()
        if late is not None:
            await late.disconnect()


async def test_connect_adopts_a_room_joined_directly(livekit_server: Any, room_name: str) -> None:
    user = await join(livekit_server, room_name, "user")
    ctx = make_context(livekit_server, room_name)
    seen: list[str] = []

    async def note(job: JobContext, participant: rtc.RemoteParticipant) -> None:
        seen.append(participant.identity)

    ctx.add_participant_entrypoint(note)
    try:
        await ctx.room.connect(ctx.info.url, ctx.info.token)  # as code that bypasses ctx.connect() does
        await ctx.connect()  # no second join (which would fail); entrypoints start
        await until(lambda: seen == ["user"])
        assert ctx.room.isconnected()
    finally:
        await ctx.room.disconnect()
        await user.disconnect()


async def test_token_claims_describe_the_job_token(livekit_server: Any, room_name: str) -> None:
    ctx = make_context(livekit_server, room_name, identity="claims-agent")
    claims = ctx.token_claims()
    assert claims.identity == "claims-agent"
    assert claims.video is not None and claims.video.room == room_name and claims.video.room_join


async def test_delete_room_disconnects_everyone(livekit_server: Any, room_name: str) -> None:
    user = await join(livekit_server, room_name, "user")
    gone = asyncio.Event()
    user.on("disconnected", lambda *_: gone.set())
    ctx = make_context(livekit_server, room_name)
    try:
        await ctx.connect()
        await asyncio.wait_for(ctx.delete_room(), TIMEOUT)
        await asyncio.wait_for(gone.wait(), TIMEOUT)
        async with api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret) as lk:
            rooms = await lk.room.list_rooms(api.ListRoomsRequest(names=[room_name]))
        assert list(rooms.rooms) == []
    finally:
        await ctx.room.disconnect()
        await user.disconnect()
        await ctx._close_api()


async def test_sip_requests_reach_the_server_and_report_its_answer(livekit_server: Any, room_name: str) -> None:
    user = await join(livekit_server, room_name, "caller")
    ctx = make_context(livekit_server, room_name)
    try:
        await ctx.connect()
        remote = await asyncio.wait_for(ctx.wait_for_participant(identity="caller"), TIMEOUT)
        with pytest.raises(ValueError, match="not a SIP participant"):
            ctx.transfer_sip_participant(remote, "tel:+15550100")
        # The dev server has no SIP service: the request travels and fails with its answer.
        with pytest.raises(api.TwirpError):
            await asyncio.wait_for(
                ctx.add_sip_participant(call_to="+15550100", trunk_id="ST_missing", participant_identity="callee"),
                TIMEOUT)
    finally:
        await ctx.room.disconnect()
        await user.disconnect()
        await ctx._close_api()


async def test_shutdown_reason_reaches_callbacks_with_and_without_argument(livekit_server: Any,
                                                                            room_name: str) -> None:
    ctx = make_context(livekit_server, room_name)
    calls: list[str] = []

    class Recorder:
        async def on_shutdown(self, reason: str) -> None:  # a bound method taking the reason
            calls.append(f"method:{reason}")

    async def with_reason(reason: str) -> None:
        calls.append(f"reason:{reason}")

    async def without_reason() -> None:
        calls.append("no-argument")

    async def entrypoint(job: JobContext) -> None:
        await job.connect()
        job.add_shutdown_callback(with_reason)
        job.add_shutdown_callback(without_reason)
        job.add_shutdown_callback(Recorder().on_shutdown)
        job.shutdown("caller hung up")

    result = await asyncio.wait_for(run_job(start_entrypoint(ctx, entrypoint), shutdown_timeout=6.0), TIMEOUT)
    assert (result.status, result.reason) == ("SUCCESS", "caller hung up")
    assert calls == ["reason:caller hung up", "no-argument", "method:caller hung up"]
    assert not ctx.room.isconnected()


def test_job_process_has_the_reference_properties() -> None:
    proc = JobProcess(pid=1234, user_arguments={"tenant": "a"}, http_proxy="http://proxy:3128")
    assert proc.pid == 1234 and proc.executor_type is JobExecutorType.PROCESS
    assert proc.user_arguments == {"tenant": "a"} and proc.http_proxy == "http://proxy:3128"
    proc.userdata["model"] = "loaded"
    assert proc.userdata == {"model": "loaded"}


async def test_the_job_module_has_the_reference_names() -> None:
    from roomd.agents import job

    assert job.get_current_job_context is job.get_job_context
    assert job.JobAcceptArguments is job.AcceptArguments and job.JobRequest.__module__ == "roomd.agents.job_request"
    assert job.DEFAULT_PARTICIPANT_KINDS == [rtc.ParticipantKind.PARTICIPANT_KIND_SIP,
                                             rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD]
    info = make_context(type("S", (), {"url": "ws://x", "api_key": "k", "api_secret": "s" * 32})(), "r").info
    assert info.accept_arguments is info.accept and info.accept.identity == "agent-under-test"
    with pytest.raises(RuntimeError, match="no job is running"):
        job.get_job_context()
