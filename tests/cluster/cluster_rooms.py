"""roomd daemons on cluster nodes, rooms on chosen nodes, and which worker serves each.

The server is asked, not the daemons: a room is served when the agent is a participant
of it, and the dispatch record names the worker (``JobState.worker_id``) that took it,
which a daemon's ``/status`` names for its link.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from livekit import api
from livekit.protocol import models as models_pb
from livekit_cluster import LiveKitCluster, Node

from daemon_process import AGENT, DaemonProcess

NO_WORKER = "no worker available to handle job"  # the server's log line for a dropped job
ASSIGN_FAILED = "failed to assign job to worker"  # an offer a worker answered "not available"
MAX_JOBS = 3  # per daemon, as in the measurement


class ClusterApi:
    """One server API client per node."""

    def __init__(self, cluster: LiveKitCluster) -> None:
        self.cluster = cluster
        self._clients = {node.name: api.LiveKitAPI(node.address.http_url, node.address.api_key,
                                                   node.address.api_secret)
                         for node in cluster.nodes}

    def on(self, node: Node) -> api.LiveKitAPI:
        return self._clients[node.name]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()

    async def create_room(self, node: Node, prefix: str) -> str:
        """A new room placed on ``node`` (its id in CreateRoom)."""
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        room = await self.on(node).room.create_room(api.CreateRoomRequest(
            name=name, node_id=node.node_id, empty_timeout=120))
        assert room.name == name
        return name

    async def dispatch(self, node: Node, room: str, action: str = "hold",
                       agent: str = AGENT) -> None:
        """Dispatch ``agent`` (the probe's by default) to ``room`` through ``node``'s API
        (``hold``: the probe stays until the room closes)."""
        await self.on(node).agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(
            agent_name=agent, room=room, metadata=json.dumps({"action": action})))

    async def serving_worker(self, room: str) -> str | None:
        """The worker id of the job whose agent is in ``room`` now, or None."""
        client = self.on(self.cluster.nodes[0])
        participants = await client.room.list_participants(api.ListParticipantsRequest(room=room))
        agents = {p.identity for p in participants.participants
                  if p.kind == models_pb.ParticipantInfo.Kind.AGENT}
        if not agents:
            return None
        for dispatch in await client.agent_dispatch.list_dispatch(room_name=room):
            for job in dispatch.state.jobs:
                if job.state.participant_identity in agents:
                    return job.state.worker_id
        return None

    async def wait_served(self, room: str, timeout: float = 30) -> str:
        try:
            async with asyncio.timeout(timeout):
                while (worker := await self.serving_worker(room)) is None:
                    await asyncio.sleep(0.1)  # the server API has no push for participants
        except TimeoutError:
            raise AssertionError(f"room {room}: no agent joined within {timeout}s") from None
        return worker

    async def delete_rooms(self, rooms: list[str]) -> None:
        client = self.on(self.cluster.nodes[0])
        await asyncio.gather(*(client.room.delete_room(api.DeleteRoomRequest(room=room))
                               for room in rooms), return_exceptions=True)

    def dropped(self, rooms: list[str]) -> set[str]:
        """Rooms whose job a node logged as dropped ("no worker available to handle job")."""
        wanted = set(rooms)
        return {str(event.get("room")) for node in self.cluster.nodes
                for event in node.log_lines(NO_WORKER) if event.get("room") in wanted}


@asynccontextmanager
async def cluster_api(cluster: LiveKitCluster) -> AsyncIterator[ClusterApi]:
    client = ClusterApi(cluster)
    try:
        yield client
    finally:
        await client.aclose()


async def worker_id(daemon: DaemonProcess) -> str:
    """The worker id the daemon's (only) link registered as."""
    links = (await daemon.status())["links"]
    assert len(links) == 1 and links[0]["worker_id"], links
    return str(links[0]["worker_id"])


class Daemons:
    """Starts roomd daemons on cluster nodes for one test; ``stop_all`` ends every one."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self.started: list[DaemonProcess] = []

    async def start(self, node: Node, *, max_jobs: int = MAX_JOBS,
                    config: dict[str, dict[str, Any]] | None = None,
                    env: dict[str, str] | None = None) -> DaemonProcess:
        directory = self._directory / f"daemon{len(self.started)}"
        directory.mkdir(parents=True)
        daemon = DaemonProcess(node.address, directory, env=env, config={
            # A shared 2-core machine's CPU must not refuse offers: slots decide here.
            "admission": {"max_jobs": max_jobs, "load_threshold": 1000.0},
            "pool": {"num_idle_processes": 2},
            **(config or {}),
        })
        self.started.append(daemon)
        return await daemon.start()

    async def stop_all(self) -> None:
        for daemon in self.started:
            await daemon.stop()
