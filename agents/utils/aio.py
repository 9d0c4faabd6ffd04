"""Asyncio helpers: a closable channel and an owner for background tasks."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

from roomd.ipc.tasks import TaskOwner as _TaskOwner

_T = TypeVar("_T")


class ChanClosed(Exception):
    """Sending on a closed channel."""


class Chan(Generic[_T]):
    """An unbounded single-consumer channel that can be closed, optionally with an error.

    Iterating yields items until the channel is closed and drained; if it was closed with
    an exception, iteration raises it after the last item.
    """

    def __init__(self) -> None:
        self._items: deque[_T] = deque()
        self._waiter: asyncio.Event = asyncio.Event()
        self._closed = False
        self._error: BaseException | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def send_nowait(self, item: _T) -> None:
        if self._closed:
            raise ChanClosed("channel is closed")
        self._items.append(item)
        self._waiter.set()

    def close(self, error: BaseException | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        self._error = error
        self._waiter.set()

    async def recv(self) -> _T:
        while not self._items:
            if self._closed:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            self._waiter.clear()
            await self._waiter.wait()
        return self._items.popleft()

    def __aiter__(self) -> Chan[_T]:
        return self

    async def __anext__(self) -> _T:
        return await self.recv()


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel tasks and wait until they have finished (their errors are swallowed)."""
    pending = [t for t in tasks if t is not None and not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)


class TaskOwner(_TaskOwner):
    """Owns background tasks: each is cancelled and awaited in ``aclose``.

    roomd's one task owner (roomd.ipc.tasks) with the SDK's spelling: ``create_task`` with an
    optional name, and an ``aclose`` that waits as long as the tasks take. For long-lived
    components whose lifetime is not a single ``async with`` block (so a TaskGroup does not fit).
    """

    def __init__(self, name: str = "agents") -> None:
        super().__init__(name)

    def create_task(self, coro: Coroutine[Any, Any, _T], *, name: str | None = None) -> asyncio.Task[_T]:
        return self.spawn(coro, name or getattr(coro, "__qualname__", "task"))

    async def aclose(self, timeout: float | None = None) -> None:
        await super().aclose(timeout)
