"""Waiting for someone, or for a track, to show up in a room."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal, TypeVar

from livekit import rtc

_T = TypeVar("_T")


def _matches(kind: list[int] | int | None, value: int) -> bool:
    if kind is None:
        return True
    return value in kind if isinstance(kind, list) else value == kind


async def _first(room: rtc.Room, event: Literal["participant_connected", "track_published"], present: list[_T], test: Callable[..., _T | None]) -> _T:
    """The first of ``present``, else the first ``event`` for which ``test`` gives a value."""
    if not room.isconnected():
        raise RuntimeError("the room is not connected: call ctx.connect() (or room.connect()) first")
    if present:
        return present[0]
    found: asyncio.Future[_T] = asyncio.get_running_loop().create_future()

    def on_event(*args: object) -> None:
        value = test(*args)
        if value is not None and not found.done():
            found.set_result(value)

    room.on(event, on_event)
    try:
        return await found
    finally:
        room.off(event, on_event)


async def wait_for_participant(
    room: rtc.Room, *, identity: str | None = None, kind: list[int] | int | None = None
) -> rtc.RemoteParticipant:
    """The first remote participant with ``identity`` (any, if None) and one of the kinds
    (any, if None); returns at once when one is already in the room. Waits as long as it
    takes: bound it with ``asyncio.wait_for``."""

    def test(p: rtc.RemoteParticipant) -> rtc.RemoteParticipant | None:
        return p if (identity is None or p.identity == identity) and _matches(kind, p.kind) else None

    present = [p for p in room.remote_participants.values() if test(p)]
    return await _first(room, "participant_connected", present, test)


async def wait_for_track_publication(
    room: rtc.Room, *, identity: str | None = None, kind: list[int] | int | None = None
) -> rtc.RemoteTrackPublication:
    """The first remote track published by ``identity`` (anyone, if None) of one of the
    track kinds (any, if None); returns at once when one is already published."""

    def test(publication: rtc.RemoteTrackPublication,
             participant: rtc.RemoteParticipant) -> rtc.RemoteTrackPublication | None:
        wanted = (identity is None or participant.identity == identity) and _matches(kind, publication.kind)
        return publication if wanted else None

    present = [pub for p in room.remote_participants.values() for pub in p.track_publications.values()
               if test(pub, p)]
    return await _first(room, "track_published", present, test)
