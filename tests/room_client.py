"""A test participant's view of a real LiveKit room, and explicit agent dispatch."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from livekit import api, rtc


def participant_token(server: Any, room: str, identity: str) -> str:
    return (api.AccessToken(server.api_key, server.api_secret).with_identity(identity)
            .with_grants(api.VideoGrants(room_join=True, room=room)).to_jwt())


async def join(server: Any, room: str, identity: str) -> rtc.Room:
    participant = rtc.Room()
    await participant.connect(server.url, participant_token(server, room, identity))
    return participant


async def wait_for_agent(room: rtc.Room, timeout: float = 30) -> rtc.RemoteParticipant:
    """The first agent participant in ``room`` (already there or still to join)."""
    def agent() -> rtc.RemoteParticipant | None:
        return next((p for p in room.remote_participants.values()
                     if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT), None)

    arrived = asyncio.Event()
    room.on("participant_connected", lambda _p: arrived.set())
    async with asyncio.timeout(timeout):
        while (found := agent()) is None:
            arrived.clear()
            await arrived.wait()
    return found


async def wait_for_attribute(room: rtc.Room, participant: rtc.RemoteParticipant, key: str,
                             timeout: float = 30) -> str:
    changed = asyncio.Event()
    room.on("participant_attributes_changed", lambda *_: changed.set())
    async with asyncio.timeout(timeout):
        while key not in participant.attributes:
            changed.clear()
            await changed.wait()
    return participant.attributes[key]


async def dispatch(server: Any, agent_name: str, room: str, metadata: dict[str, str] | None = None) -> None:
    async with api.LiveKitAPI(server.http_url, server.api_key, server.api_secret) as lk:
        await lk.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(
            agent_name=agent_name, room=room, metadata=json.dumps(metadata or {})))


async def delete_room(server: Any, room: str) -> None:
    async with api.LiveKitAPI(server.http_url, server.api_key, server.api_secret) as lk:
        await lk.room.delete_room(api.DeleteRoomRequest(room=room))
