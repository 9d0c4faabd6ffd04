"""A handle on one agent utterance (from ``say``, ``generate_reply`` or a user turn)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Generator
from typing import Any

from ..llm.chat_context import ChatItem
from ..utils.ids import shortuuid

logger = logging.getLogger("roomd.agents")


class SpeechHandle:
    """Follows a speech from creation to the end of its playout.

    ``await handle`` (or ``await handle.wait_for_playout()``) returns once the speech is
    done: played out, interrupted, or failed. ``interrupt()`` cuts it (raises
    ``RuntimeError`` when the speech does not allow interruptions).
    """

    def __init__(self, *, allow_interruptions: bool = True, speech_id: str | None = None) -> None:
        self._id = speech_id or shortuuid("speech_")
        self._allow_interruptions = allow_interruptions
        loop = asyncio.get_running_loop()
        self._done_fut: asyncio.Future[None] = loop.create_future()
        self._interrupt_event = asyncio.Event()
        self._scheduled = asyncio.Event()  # its turn to play has come
        self._chat_items: list[ChatItem] = []
        self._done_callbacks: list[Callable[[SpeechHandle], Any]] = []
        self._num_steps = 1

    @property
    def id(self) -> str:
        return self._id

    @property
    def allow_interruptions(self) -> bool:
        return self._allow_interruptions

    @allow_interruptions.setter
    def allow_interruptions(self, value: bool) -> None:
        if not value and self._interrupt_event.is_set():
            raise RuntimeError("the speech was already interrupted")
        self._allow_interruptions = value

    @property
    def interrupted(self) -> bool:
        return self._interrupt_event.is_set()

    @property
    def num_steps(self) -> int:
        """LLM steps so far (1 + the tool rounds that were fed back)."""
        return self._num_steps

    @property
    def chat_items(self) -> list[ChatItem]:
        """What this speech added to the conversation (messages, calls, outputs)."""
        return list(self._chat_items)

    def done(self) -> bool:
        return self._done_fut.done()

    def interrupt(self, *, force: bool = False) -> SpeechHandle:
        """Cut this speech (its queued audio is dropped); ``force`` ignores
        ``allow_interruptions`` (what the session does when it closes)."""
        if not force and not self._allow_interruptions:
            raise RuntimeError(f"speech {self._id} does not allow interruptions")
        self._interrupt_event.set()
        return self

    async def wait_for_playout(self) -> None:
        await asyncio.shield(self._done_fut)

    def __await__(self) -> Generator[Any, None, SpeechHandle]:
        async def wait() -> SpeechHandle:
            await self.wait_for_playout()
            return self

        return wait().__await__()

    def add_done_callback(self, callback: Callable[[SpeechHandle], Any]) -> None:
        if self.done():
            callback(self)
        else:
            self._done_callbacks.append(callback)

    def remove_done_callback(self, callback: Callable[[SpeechHandle], Any]) -> None:
        if callback in self._done_callbacks:
            self._done_callbacks.remove(callback)

    async def wait_if_not_interrupted(self, aw: list[asyncio.Future[Any]]) -> None:
        """Wait for all of ``aw`` unless the speech is interrupted first."""
        interrupted = asyncio.ensure_future(self._interrupt_event.wait())
        try:
            await asyncio.wait([*aw, interrupted], return_when=asyncio.FIRST_COMPLETED)
        finally:
            interrupted.cancel()

    def __repr__(self) -> str:
        state = "done" if self.done() else "interrupted" if self.interrupted else "pending"
        return f"<SpeechHandle {self._id} {state}>"

    # -- for the session -------------------------------------------------------------------

    def _add_item(self, item: ChatItem) -> None:
        self._chat_items.append(item)

    def _mark_done(self) -> None:
        if self._done_fut.done():
            return
        self._done_fut.set_result(None)
        for callback in self._done_callbacks:
            try:
                callback(self)
            except Exception:  # a caller's callback must not break the session
                logger.exception("speech done callback failed")
        self._done_callbacks.clear()
