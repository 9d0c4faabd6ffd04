"""Asyncio helpers: a closable channel, owned tasks, cancellation, intervals.

Names and behaviour follow ``livekit.agents.utils.aio`` so plugin code ports unchanged:
``Chan`` (``send``/``send_nowait``/``recv``/``recv_nowait``/``close``, async iteration),
``ChanClosed``/``ChanEmpty``/``ChanFull``, ``interval``, ``sleep``, ``cancel_and_wait``,
``gracefully_cancel`` and ``TaskSet``. ``TaskOwner`` is roomd's own.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Generic, ParamSpec, TypeVar

_T = TypeVar("_T")
_P = ParamSpec("_P")

logger = logging.getLogger("roomd.agents")


class ChanClosed(Exception):
    """The channel is closed (sending on it, or receiving once it is drained)."""


class ChanEmpty(Exception):
    """``recv_nowait`` on an open channel with nothing in it."""


class ChanFull(Exception):
    """``send_nowait`` on a bounded channel at its ``maxsize``."""


class Chan(Generic[_T]):
    """A channel that can be closed, optionally with an error.

    ``maxsize`` 0 means unbounded; otherwise ``send`` waits for room and ``send_nowait``
    raises ``ChanFull``. Iterating yields items until the channel is closed and drained;
    if it was closed with an exception, receiving raises it after the last item instead of
    ending (``recv`` raises ``ChanClosed``, iteration stops).
    """

    def __init__(self, maxsize: int = 0, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if maxsize < 0:
            raise ValueError(f"maxsize must be >= 0, got {maxsize}")
        self._maxsize = maxsize
        self._items: deque[_T] = deque()
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = False
        self._error: BaseException | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return self._maxsize > 0 and len(self._items) >= self._maxsize

    def send_nowait(self, value: _T) -> None:
        if self._closed:
            raise ChanClosed("channel is closed")
        if self.full():
            raise ChanFull(f"channel holds its maxsize ({self._maxsize})")
        self._items.append(value)
        self._readable.set()
        if self.full():
            self._writable.clear()

    async def send(self, value: _T) -> None:
        while self.full() and not self._closed:
            await self._writable.wait()
        self.send_nowait(value)

    def recv_nowait(self) -> _T:
        if not self._items:
            if self._closed:
                if self._error is not None:
                    raise self._error
                raise ChanClosed("channel is closed")
            raise ChanEmpty("channel is empty")
        item = self._items.popleft()
        if not self.full():
            self._writable.set()
        if not self._items and not self._closed:
            self._readable.clear()
        return item

    async def recv(self) -> _T:
        while True:
            try:
                return self.recv_nowait()
            except ChanEmpty:
                await self._readable.wait()

    def close(self, error: BaseException | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        self._error = error
        self._readable.set()
        self._writable.set()

    def __aiter__(self) -> Chan[_T]:
        return self

    async def __anext__(self) -> _T:
        try:
            return await self.recv()
        except ChanClosed:
            raise StopAsyncIteration from None


async def cancel_and_wait(*tasks: asyncio.Future[Any] | None) -> None:
    """Cancel tasks and wait until they have finished (their errors are swallowed).

    If the caller itself is cancelled meanwhile, the tasks are still cancelled and the
    caller's cancellation propagates."""
    pending = [t for t in tasks if t is not None and not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)


async def gracefully_cancel(*futures: asyncio.Future[Any]) -> None:
    """Cancel ``futures`` and wait for them to finish, without raising their errors.

    Same contract as ``cancel_and_wait``; kept under the reference's name."""
    await cancel_and_wait(*futures)


async def sleep(delay: float) -> None:
    """``asyncio.sleep`` (the reference wraps it to use a timer handle; same effect)."""
    await asyncio.sleep(delay)


class Interval:
    """Ticks every ``interval`` seconds: ``await tick()`` or ``async for count in ...``.

    The first tick is immediate, as in the reference; later ticks keep to the schedule
    (a slow consumer gets the next tick at once rather than drifting)."""

    def __init__(self, interval: float) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0, got {interval}")
        self._interval = interval
        self._count = 0
        self._next: float | None = None

    def reset(self) -> None:
        self._next = None

    async def tick(self) -> int:
        loop = asyncio.get_running_loop()
        if self._next is None:
            self._next = loop.time()
        delay = self._next - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        self._next = max(self._next + self._interval, loop.time())
        self._count += 1
        return self._count

    def __aiter__(self) -> Interval:
        return self

    async def __anext__(self) -> int:
        return await self.tick()


def interval(interval: float) -> Interval:
    return Interval(interval)


class TaskSet:
    """Keeps strong references to fire-and-track tasks until they finish
    (the event loop itself holds only weak ones)."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        self._set: set[asyncio.Task[Any]] = set()
        self._closed = False

    def create_task(self, coro: Coroutine[Any, Any, _T], name: str | None = None) -> asyncio.Task[_T]:
        if self._closed:
            raise RuntimeError("TaskSet is closed")
        loop = self._loop or asyncio.get_running_loop()
        task = loop.create_task(coro, name=name)
        self._set.add(task)
        task.add_done_callback(self._set.discard)
        return task

    @property
    def tasks(self) -> set[asyncio.Task[Any]]:
        return set(self._set)

    async def aclose(self) -> None:
        self._closed = True
        await cancel_and_wait(*self._set)


def log_exceptions(
    msg: str = "", logger: logging.Logger = logger
) -> Callable[[Callable[_P, Any]], Callable[_P, Any]]:
    """Decorator: an exception escaping the (sync or async) function is logged with
    ``msg`` and re-raised, so a background task's failure is never silent."""

    def decorator(fn: Callable[_P, Any]) -> Callable[_P, Any]:
        if asyncio.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Any:
                try:
                    return await fn(*args, **kwargs)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception(msg or f"error in {fn.__qualname__}")
                    raise

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception:
                logger.exception(msg or f"error in {fn.__qualname__}")
                raise

        return wrapper

    return decorator


class TaskOwner:
    """Owns background tasks: each is cancelled and awaited in ``aclose``.

    For long-lived components whose lifetime is not a single ``async with`` block
    (so a TaskGroup does not fit).
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def create_task(self, coro: Coroutine[Any, Any, _T], *, name: str | None = None) -> asyncio.Task[_T]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def tasks(self) -> frozenset[asyncio.Task[Any]]:
        return frozenset(self._tasks)

    async def aclose(self) -> None:
        await cancel_and_wait(*self._tasks)




__all__ = [
    "Chan",
    "ChanClosed",
    "ChanEmpty",
    "ChanFull",
    "Interval",
    "TaskOwner",
    "TaskSet",
    "cancel_and_wait",
    "gracefully_cancel",
    "interval",
    "log_exceptions",
    "sleep",
]
