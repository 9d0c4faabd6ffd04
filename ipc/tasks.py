"""The one owner for long-lived tasks, in the daemon, its children and the SDK.

Every task it starts is cancelled and awaited on close, and a task that fails is logged with its
owner's name rather than lost. Where a lifetime is one block, use ``asyncio.TaskGroup`` instead.

A task spawned ``essential`` is one the component cannot do without (the load monitor, a
watchdog): if it ends before the owner is closed, whether it raised or returned, the owner
remembers it in ``dead``, so readiness and the watchdog can say so instead of the component
carrying on with a frozen value.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import structlog

log = structlog.get_logger("roomd.pool")

_T = TypeVar("_T")


class TaskOwner:
    """``on_error(name, exc)``, if given, takes a failed task's error instead of the log."""

    def __init__(self, name: str, *, on_error: Callable[[str, BaseException], None] | None = None) -> None:
        self._name = name
        self._on_error = on_error
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._essential: set[asyncio.Task[Any]] = set()
        self.dead: dict[str, str] = {}  # essential task name -> how it ended

    @property
    def tasks(self) -> frozenset[asyncio.Task[Any]]:
        """The tasks still running."""
        return frozenset(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, _T], name: str, *, essential: bool = False) -> asyncio.Task[_T]:
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self._name} is closed; cannot start {name}")
        task = asyncio.get_running_loop().create_task(coro, name=f"{self._name}: {name}")
        self._tasks.add(task)
        if essential:
            self._essential.add(task)
        task.add_done_callback(functools.partial(self._done, name))
        return task

    def _done(self, name: str, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        error = None if task.cancelled() else task.exception()
        if task in self._essential:
            self._essential.discard(task)
            if not self._closed:
                how = f"{type(error).__name__}: {error}" if error is not None else \
                    "cancelled" if task.cancelled() else "returned"
                self.dead[task.get_name()] = how
                log.critical("essential task ended; the daemon is not ready", owner=self._name,
                             task=task.get_name(), how=how)
        if error is None:
            return
        if self._on_error is not None:
            self._on_error(name, error)
        else:
            log.error("task failed", owner=self._name, task=task.get_name(), exc_info=error)

    async def aclose(self, timeout: float | None = 5.0) -> None:
        """Cancel every task and wait for them (``timeout`` None: as long as they take)."""
        self._closed = True
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            if pending:
                log.error("tasks did not stop after cancel", owner=self._name,
                          tasks=[t.get_name() for t in pending])
