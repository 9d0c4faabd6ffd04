"""Test-side room helpers: dispatch an agent by name, join as a caller, watch the agent."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from livekit import api, rtc
from livekit.protocol import agent as agent_pb
from room_client import participant_token

from roomd.daemon.devserver import DevServerAddress
from roomd.daemon.pool import Pool


def room_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def dispatch(lkapi: api.LiveKitAPI, agent_name: str, room: str) -> None:
    await lkapi.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(agent_name=agent_name, room=room))


class Caller:
    """A participant in ``room``; it sees the agent's participant and its attributes."""

    def __init__(self, address: DevServerAddress, room: str) -> None:
        self.address = address
        self.room_name = room
        self.room = rtc.Room()
        self._changed = asyncio.Event()
        for event in ("participant_connected", "participant_disconnected",
                      "participant_attributes_changed"):
            self.room.on(event, lambda *_args: self._changed.set())

    async def join(self) -> Caller:
        token = participant_token(self.address, self.room_name, f"caller-{uuid.uuid4().hex[:4]}")
        await self.room.connect(self.address.url, token)
        return self

    def agents(self) -> list[rtc.RemoteParticipant]:
        return [p for p in self.room.remote_participants.values()
                if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT]

    async def wait_agent(self, timeout: float = 30) -> dict[str, str]:
        """The attributes of the agent in the room, once it has announced its plugin version."""
        async with asyncio.timeout(timeout):
            while True:
                self._changed.clear()
                for agent in self.agents():
                    if "plugin_version" in agent.attributes:
                        # Without the server's own (lk.agent_name and friends).
                        return {k: v for k, v in agent.attributes.items()
                                if not k.startswith("lk.")}
                await self._changed.wait()

    async def say_bye(self) -> None:
        """Ask the agent to end its job normally while we stay in the room."""
        await self.room.local_participant.publish_data(b"bye", topic="roomd-test-bye")

    async def leave(self) -> None:
        await self.room.disconnect()


async def wait_job_status(lkapi: api.LiveKitAPI, room: str, status: int,
                          timeout: float = 30) -> None:
    """Until the server's record of the room's dispatched job has ``status``.

    livekit-server 1.13 updates a room's dispatch record when the job starts, not when it
    ends: use it for JS_RUNNING only, and ``wait_jobs_ended`` for the end.
    """
    seen: list[int] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                dispatches = await lkapi.agent_dispatch.list_dispatch(room_name=room)
                seen = [job.state.status for d in dispatches for job in d.state.jobs]
                if status in seen:
                    return
                await asyncio.sleep(0.1)  # the server API has no push for dispatch state
    except TimeoutError:
        names = [agent_pb.JobStatus.Name(s) for s in seen]
        raise AssertionError(f"room {room}: job status {agent_pb.JobStatus.Name(status)} not "
                             f"reached; server says {names}") from None


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    # Pools announce no event per idle child or per close; a bounded poll is the probe.
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def wait_jobs_ended(pool: Pool | None, status: str, count: int = 1,
                          timeout: float = 30) -> None:
    """Until ``count`` jobs of ``pool`` have ended with ``status`` (what the link reports)."""
    assert pool is not None
    await wait_until(lambda: pool.stats().jobs_ended.get(status, 0) >= count,
                     f"{count} job(s) of {pool.plugin}#{pool.generation} to end {status}", timeout)
