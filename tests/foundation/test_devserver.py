from __future__ import annotations

import uuid

from livekit import api

from roomd.daemon.devserver import DevServerAddress


async def test_real_server_creates_and_lists_a_room(livekit_server: DevServerAddress) -> None:
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    lkapi = api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret)
    try:
        created = await lkapi.room.create_room(api.CreateRoomRequest(name=name))
        listed = await lkapi.room.list_rooms(api.ListRoomsRequest())
    finally:
        await lkapi.aclose()
    assert created.name == name
    assert name in {room.name for room in listed.rooms}


def test_server_binds_only_to_loopback(livekit_server: DevServerAddress) -> None:
    assert livekit_server.url.startswith("ws://127.0.0.1:")
