"""The link against the real livekit-server: explicit dispatch to our agent name."""

from __future__ import annotations

import asyncio
import uuid

from launchers import RoomLauncher
from room_client import join
from livekit import api, rtc
from livekit.protocol import agent as agent_pb

from roomd.daemon.devserver import DevServerAddress
from roomd.daemon.link import LinkState

from link_runner import LinkRunner


async def wait_for_participant(room: rtc.Room, identity: str, timeout: float = 15) -> None:
    arrived = asyncio.Event()
    room.on("participant_connected", lambda p: arrived.set() if p.identity == identity else None)
    if identity in {p.identity for p in room.remote_participants.values()}:
        return
    async with asyncio.timeout(timeout):
        await arrived.wait()


async def test_dispatch_runs_the_job_in_the_room_and_status_flows(
        livekit_server: DevServerAddress, links: LinkRunner) -> None:
    agent_name = f"agent-{uuid.uuid4().hex[:6]}"
    launcher = RoomLauncher()
    link = links.start(livekit_server.url, launcher=launcher, agent_name=agent_name,
                       api_key=livekit_server.api_key, api_secret=livekit_server.api_secret)
    await link.wait_registered(10)
    lkapi = api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret)
    rooms = [f"room-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    participants: list[rtc.Room] = []
    try:
        for room in rooms:
            participants.append(await join(livekit_server, room, "caller"))
            await lkapi.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name=agent_name, room=room))
        handles = [await asyncio.wait_for(launcher.handles.get(), 15) for _ in rooms]
        assert {h.launch.job.room.name for h in handles} == set(rooms)
        for handle, participant in zip(sorted(handles, key=lambda h: rooms.index(h.launch.job.room.name)),
                                       participants, strict=True):
            identity = handle.launch.accept.identity
            assert identity == f"agent-{handle.job.id}"
            await wait_for_participant(participant, identity)
            agent = next(p for p in participant.remote_participants.values() if p.identity == identity)
            assert agent.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        assert len(link.jobs) == 2
        # The server's own record of the job says what we reported.
        async with asyncio.timeout(10):
            while True:
                dispatches = await lkapi.agent_dispatch.list_dispatch(room_name=rooms[0])
                statuses = [job.state.status for d in dispatches for job in d.state.jobs]
                if statuses == [agent_pb.JS_RUNNING]:
                    break
                await asyncio.sleep(0.1)  # the server API has no push for dispatch state
        await lkapi.room.delete_room(api.DeleteRoomRequest(room=rooms[0]))
        await lkapi.room.delete_room(api.DeleteRoomRequest(room=rooms[1]))
        assert await link.wait_idle(20)
        assert link.state is LinkState.REGISTERED
    finally:
        for participant in participants:
            await participant.disconnect()
        await lkapi.aclose()
