"""With the real livekit-server: a prewarmed child joins a room, and a participant sees it."""

from __future__ import annotations

import asyncio

import pytest
from livekit import api, rtc
from pool_helpers import launched, make_launch

from roomd.daemon.jobs import JobStatus
from roomd.daemon.pool import ApiCredentials, PoolState

pytestmark = pytest.mark.livekit_server
WAIT = 30.0


def _token(server, identity: str, room: str, *, kind: str | None = None) -> str:
    token = (api.AccessToken(server.api_key, server.api_secret).with_identity(identity)
             .with_grants(api.VideoGrants(room_join=True, room=room)))
    if kind:
        token = token.with_kind(kind)
    return token.to_jwt()


async def test_prewarmed_child_joins_the_room_and_leaves_on_terminate(make_pool, livekit_server) -> None:
    room_name = "pool-join-room"
    agent_identity = "agent-pool-join"
    pool = await make_pool(credentials=ApiCredentials(livekit_server.api_key, livekit_server.api_secret))
    assert await pool.wait_ready(WAIT) is PoolState.READY
    prewarmed_pid = pool.snapshot().children[0].pid

    watcher = rtc.Room()
    joined: asyncio.Future[rtc.RemoteParticipant] = asyncio.get_running_loop().create_future()
    left = asyncio.Event()

    @watcher.on("participant_connected")
    def _on_join(participant: rtc.RemoteParticipant) -> None:
        if participant.identity == agent_identity and not joined.done():
            joined.set_result(participant)

    @watcher.on("participant_disconnected")
    def _on_leave(participant: rtc.RemoteParticipant) -> None:
        if participant.identity == agent_identity:
            left.set()

    await watcher.connect(livekit_server.url, _token(livekit_server, "watcher", room_name))
    try:
        launch = make_launch("join", room=room_name, url=livekit_server.url, identity=agent_identity,
                             token=_token(livekit_server, agent_identity, room_name, kind="agent"))
        handle = await launched(pool, launch)
        assert handle.runner.pid == prewarmed_pid  # the job went to the child prewarmed before it came
        await asyncio.wait_for(handle.wait_running(), WAIT)
        participant = await asyncio.wait_for(joined, WAIT)
        assert participant.identity == agent_identity

        await asyncio.wait_for(handle.terminate("test is done"), WAIT)
        outcome = await handle.wait_run_ended()
        assert outcome.status is JobStatus.SUCCESS, outcome.error
        await asyncio.wait_for(left.wait(), WAIT)
    finally:
        await watcher.disconnect()


async def test_job_api_client_reaches_the_server(make_pool, livekit_server) -> None:
    """JobContext.api is built from the daemon's credentials passed in StartJob."""
    pool = await make_pool(credentials=ApiCredentials(livekit_server.api_key, livekit_server.api_secret))
    room_name = "pool-api-room"
    lkapi = api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret)
    try:
        await lkapi.room.create_room(api.CreateRoomRequest(name=room_name))
        launch = make_launch("api", room=room_name, url=livekit_server.url)
        handle = await launched(pool, launch)
        outcome = await asyncio.wait_for(handle.wait_run_ended(), WAIT)
        assert outcome.status is JobStatus.SUCCESS, outcome.error
    finally:
        await lkapi.aclose()
