"""Text from the room (topic ``lk.chat``) as user turns."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from livekit import rtc

from ...utils.aio import TaskOwner
from .options import TOPIC_CHAT

logger = logging.getLogger("roomd.agents")

ChatCallback = Callable[[str, str, Any], Awaitable[None]]  # (text, participant identity, stream info)


class RoomChatInput:
    """Reads each ``lk.chat`` stream whole and hands it to ``on_text``; only streams
    from ``accept_from()`` (the linked participant; any when it returns None) count."""

    def __init__(self, room: rtc.Room, *, on_text: ChatCallback, accept_from: Callable[[], str | None]) -> None:
        self._room = room
        self._on_text = on_text
        self._accept_from = accept_from
        self._tasks = TaskOwner()
        room.register_text_stream_handler(TOPIC_CHAT, self._on_stream)

    def _on_stream(self, reader: rtc.TextStreamReader, participant_identity: str) -> None:
        self._tasks.create_task(self._read(reader, participant_identity), name="chat_input.read")

    async def _read(self, reader: rtc.TextStreamReader, participant_identity: str) -> None:
        try:
            text = await reader.read_all()
        except Exception as exc:
            logger.warning("could not read a chat message from %s: %s", participant_identity, exc)
            return
        wanted = self._accept_from()
        if wanted is not None and participant_identity != wanted:
            return
        if text.strip():
            try:
                await self._on_text(text, participant_identity, reader.info)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("chat message handler failed")

    async def aclose(self) -> None:
        try:
            self._room.unregister_text_stream_handler(TOPIC_CHAT)
        except Exception:
            pass
        await self._tasks.aclose()
