"""Waiting for someone, or for a track, to show up in a room."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

from livekit import rtc

_T = TypeVar("_T")


def _matches(value: Any, wanted: Any) -> bool:
    if wanted is None:
        return True
    if isinstance(wanted, list):
        return value in wanted
    return bool(value == wanted)


async def _first(
    room: rtc.Room,
    event: Literal["participant_connected", "track_published"],
    present: Iterable[tuple[Any, ...]], pick: Callable[..., _T | None], what: str
) -> _T:
    """The first ``pick(*args)`` that is not None, among ``present`` then ``event``s."""
    if not room.isconnected():
        raise RuntimeError(f"{what}: the room is not connected")
    found: asyncio.Future[_T] = asyncio.get_running_loop().create_future()

    def check(*args: Any) -> None:
        if not found.done() and (result := pick(*args)) is not None:
            found.set_result(result)

    room.on(event, check)
    try:
        for args in present:
            check(*args)
        return await found
    finally:
        room.off(event, check)


async def wait_for_participant(
    room: rtc.Room,
    *,
    identity: str | None = None,
    kind: list[rtc.ParticipantKind.ValueType] | rtc.ParticipantKind.ValueType | None = None,
) -> rtc.RemoteParticipant:
    """The first remote participant with ``identity`` (any, if None) and ``kind``;
    returns at once if one is already in the room."""

    def pick(participant: rtc.RemoteParticipant) -> rtc.RemoteParticipant | None:
        if (identity is None or participant.identity == identity) and _matches(participant.kind, kind):
            return participant
        return None

    present = [(p,) for p in list(room.remote_participants.values())]
    return await _first(room, "participant_connected", present, pick, "wait_for_participant")


async def wait_for_track_publication(
    room: rtc.Room,
    *,
    identity: str | None = None,
    kind: list[rtc.TrackKind.ValueType] | rtc.TrackKind.ValueType | None = None,
) -> rtc.RemoteTrackPublication:
    """The first track published by ``identity`` (anyone, if None) of ``kind``;
    returns at once if one is already published."""

    def pick(publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> rtc.RemoteTrackPublication | None:
        if (identity is None or participant.identity == identity) and _matches(publication.kind, kind):
            return publication
        return None

    present = [
        (publication, participant)
        for participant in list(room.remote_participants.values())
        for publication in list(participant.track_publications.values())
    ]
    return await _first(room, "track_published", present, pick, "wait_for_track_publication")
