"""A handle on one agent utterance (from ``say``, ``generate_reply`` or a user turn)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Generator
from typing import Any

from ..llm.chat_context import ChatItem, FunctionCall
from ..utils.ids import shortuuid

logger = logging.getLogger("roomd.agents")

# Set while a tool runs: (the speech whose LLM step made the call, the call). Tasks the
# tool starts inherit it, so a wait on the tool's own speech is caught wherever it happens.
running_tool: contextvars.ContextVar[tuple[SpeechHandle, FunctionCall] | None] = contextvars.ContextVar(
    "roomd_running_tool", default=None
)


class SpeechHandle:
    """Follows a speech from creation to the end of its playout.

    A speech is played in steps: the first LLM reply (or the ``say`` text), then one more
    step per round of tool outputs fed back to the LLM. The session's scheduler lets one
    step play at a time; while a step's tools run, other speeches may play, so a tool can
    ``await session.generate_reply(...)`` or ``session.say(...)``.

    ``await handle`` (or ``await handle.wait_for_playout()``) returns once every step is
    done: played out, interrupted, or failed. Awaiting the speech that owns the running
    tool, from inside that tool, would wait for itself: it raises ``RuntimeError`` (use
    ``RunContext.wait_for_playout()`` to wait for what was said before the call).
    """

    SPEECH_PRIORITY_LOW = 0
    SPEECH_PRIORITY_NORMAL = 5
    SPEECH_PRIORITY_HIGH = 10

    def __init__(self, *, allow_interruptions: bool = True, speech_id: str | None = None) -> None:
        self._id = speech_id or shortuuid("speech_")
        self._allow_interruptions = allow_interruptions
        loop = asyncio.get_running_loop()
        self._done_fut: asyncio.Future[None] = loop.create_future()
        self._interrupt_event = asyncio.Event()
        self._scheduled = asyncio.Event()  # its first step was given the floor
        self._authorized = asyncio.Event()  # the current step may play
        self._generation_done = asyncio.Event()  # the current step finished playing
        self._generation_done.set()
        self._chat_items: list[ChatItem] = []
        self._done_callbacks: list[Callable[[SpeechHandle], Any]] = []
        self._num_steps = 1

    @staticmethod
    def create(allow_interruptions: bool = True) -> SpeechHandle:
        return SpeechHandle(allow_interruptions=allow_interruptions)

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
    def scheduled(self) -> bool:
        return self._scheduled.is_set()

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
        owner = running_tool.get()
        if owner is not None and owner[0] is self and not self.done():
            raise RuntimeError(
                f"the tool {owner[1].name!r} awaited its own speech ({self._id}), which cannot end "
                "before the tool returns; await RunContext.wait_for_playout() to wait for what was "
                "said before the call"
            )
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
            pending = {asyncio.ensure_future(a) for a in aw}
            while pending and not interrupted.done():
                _, pending = await asyncio.wait([*pending, interrupted], return_when=asyncio.FIRST_COMPLETED)
                pending.discard(interrupted)
        finally:
            interrupted.cancel()

    def __repr__(self) -> str:
        state = "done" if self.done() else "interrupted" if self.interrupted else "pending"
        return f"<SpeechHandle {self._id} {state}>"

    # -- for the session's scheduler ---------------------------------------------------------

    def _authorize_generation(self) -> None:
        self._generation_done.clear()
        self._scheduled.set()
        self._authorized.set()

    async def _wait_for_authorization(self) -> bool:
        """Wait for the floor; False when interrupted first."""
        authorized = asyncio.ensure_future(self._authorized.wait())
        try:
            await self.wait_if_not_interrupted([authorized])
        finally:
            authorized.cancel()
        return self._authorized.is_set() and not self.interrupted

    def _mark_generation_done(self) -> None:
        self._authorized.clear()
        self._generation_done.set()

    async def _wait_for_generation(self) -> None:
        await self._generation_done.wait()

    async def _wait_for_generation_or_done(self) -> None:
        gen = asyncio.ensure_future(self._generation_done.wait())
        waiters: list[asyncio.Future[Any]] = [gen, self._done_fut]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gen.cancel()

    async def _wait_for_step(self) -> None:
        """RunContext.wait_for_playout: the step that made the call has been heard."""
        await self._generation_done.wait()

    def _add_item(self, item: ChatItem) -> None:
        self._chat_items.append(item)

    def _mark_done(self) -> None:
        self._mark_generation_done()
        if self._done_fut.done():
            return
        self._done_fut.set_result(None)
        for callback in self._done_callbacks:
            try:
                callback(self)
            except Exception:  # a caller's callback must not break the session
                logger.exception("speech done callback failed")
        self._done_callbacks.clear()
