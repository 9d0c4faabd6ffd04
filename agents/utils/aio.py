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
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Generic, ParamSpec, TypeVar

from roomd.ipc.tasks import TaskOwner as _TaskOwner

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


class SleepFinished(Exception):
    """``Sleep.reset`` after the sleep has already ended."""


class Sleep:
    """An awaitable sleep whose deadline can be moved while someone waits on it
    (an inactivity timeout that restarts on activity): ``reset(new_delay)`` restarts the
    countdown from now; ``cancel()`` makes the waiter raise ``CancelledError``."""

    def __init__(self, delay: float) -> None:
        self._delay = delay
        self._deadline: float | None = None
        self._changed = asyncio.Event()
        self._finished = False
        self._cancelled = False

    def reset(self, new_delay: float | None = None) -> None:
        if new_delay is not None:
            self._delay = new_delay
        if self._deadline is None:
            return  # not awaited yet: the new delay counts from the await
        if self._finished:
            raise SleepFinished("the sleep has already ended")
        self._deadline = asyncio.get_running_loop().time() + self._delay
        self._changed.set()

    def cancel(self) -> None:
        self._cancelled = True
        self._changed.set()

    async def _wait(self) -> None:
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + self._delay
        while not self._cancelled:
            remaining = self._deadline - loop.time()
            if remaining <= 0:
                self._finished = True
                return
            self._changed.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._changed.wait()
            except TimeoutError:
                pass
        raise asyncio.CancelledError()

    def __await__(self) -> Generator[Any, None, None]:
        return self._wait().__await__()


def sleep(delay: float) -> Sleep:
    """An awaitable like ``asyncio.sleep(delay)`` that can also be ``reset``."""
    return Sleep(delay)


class Interval:
    """Ticks every ``interval`` seconds: ``await tick()`` or ``async for i in ...``.

    The first tick returns 0 at once; each later one comes ``interval`` after the
    previous tick (not after the consumer got round to asking) and returns 1, 2, ...
    ``reset()`` restarts the count of the current wait from now."""

    def __init__(self, interval: float) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0, got {interval}")
        self._interval = interval
        self._count = -1
        self._last: float | None = None
        self._sleep: Sleep | None = None

    def reset(self) -> None:
        if self._sleep is not None:
            try:
                self._sleep.reset(self._interval)
                return
            except SleepFinished:
                pass
        self._last = None

    async def tick(self) -> int:
        loop = asyncio.get_running_loop()
        if self._last is not None:
            self._sleep = Sleep(self._last + self._interval - loop.time())
            try:
                await self._sleep
            finally:
                self._sleep = None
        self._last = loop.time()
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


class TaskOwner(_TaskOwner):
    """Owns background tasks: each is cancelled and awaited in ``aclose``.

    roomd's one task owner (roomd.ipc.tasks) with the SDK's spelling: ``create_task`` with an
    optional name, and an ``aclose`` that waits as long as the tasks take. For long-lived
    components whose lifetime is not a single ``async with`` block (so a TaskGroup does not fit).
    """

    def __init__(self, name: str = "agents", *,
                 on_error: Callable[[str, BaseException], None] | None = None) -> None:
        super().__init__(name, on_error=on_error)

    def create_task(self, coro: Coroutine[Any, Any, _T], *, name: str | None = None) -> asyncio.Task[_T]:
        return self.spawn(coro, name or getattr(coro, "__qualname__", "task"))

    async def aclose(self, timeout: float | None = None) -> None:
        await super().aclose(timeout)




__all__ = [
    "Chan",
    "ChanClosed",
    "ChanEmpty",
    "ChanFull",
    "Interval",
    "Sleep",
    "SleepFinished",
    "TaskOwner",
    "TaskSet",
    "cancel_and_wait",
    "gracefully_cancel",
    "interval",
    "log_exceptions",
    "sleep",
]
