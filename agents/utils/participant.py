"""Waiting for someone, or for a track, to show up in a room."""

from __future__ import annotations

import asyncio
from typing import Any

from livekit import rtc


def _matches(value: Any, wanted: Any) -> bool:
    if wanted is None:
        return True
    if isinstance(wanted, list):
        return value in wanted
    return bool(value == wanted)


async def wait_for_participant(
    room: rtc.Room,
    *,
    identity: str | None = None,
    kind: list[rtc.ParticipantKind.ValueType] | rtc.ParticipantKind.ValueType | None = None,
) -> rtc.RemoteParticipant:
    """The first remote participant with ``identity`` (any, if None) and ``kind``;
    returns at once if one is already in the room."""
    if not room.isconnected():
        raise RuntimeError("wait_for_participant: the room is not connected")
    found: asyncio.Future[rtc.RemoteParticipant] = asyncio.get_running_loop().create_future()

    def check(participant: rtc.RemoteParticipant) -> None:
        if found.done():
            return
        if (identity is None or participant.identity == identity) and _matches(participant.kind, kind):
            found.set_result(participant)

    room.on("participant_connected", check)
    try:
        for participant in list(room.remote_participants.values()):
            check(participant)
        return await found
    finally:
        room.off("participant_connected", check)


async def wait_for_track_publication(
    room: rtc.Room,
    *,
    identity: str | None = None,
    kind: list[rtc.TrackKind.ValueType] | rtc.TrackKind.ValueType | None = None,
) -> rtc.RemoteTrackPublication:
    """The first track published by ``identity`` (anyone, if None) of ``kind``;
    returns at once if one is already published."""
    if not room.isconnected():
        raise RuntimeError("wait_for_track_publication: the room is not connected")
    found: asyncio.Future[rtc.RemoteTrackPublication] = asyncio.get_running_loop().create_future()

    def check(publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        if found.done():
            return
        if (identity is None or participant.identity == identity) and _matches(publication.kind, kind):
            found.set_result(publication)

    room.on("track_published", check)
    try:
        for participant in list(room.remote_participants.values()):
            for publication in list(participant.track_publications.values()):
                check(publication, participant)
        return await found
    finally:
        room.off("track_published", check)
