"""An owner for a component's tasks: every task it starts is cancelled and awaited on close.

A task spawned ``essential`` is one the component cannot do without (the load monitor, a
watchdog): if it ends before the owner is closed, whether it raised or returned, the owner
remembers it in ``dead``, so readiness and the watchdog can say so instead of the component
carrying on with a frozen value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

log = structlog.get_logger("roomd.pool")


class TaskOwner:
    def __init__(self, name: str) -> None:
        self._name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._essential: set[asyncio.Task[Any]] = set()
        self.dead: dict[str, str] = {}  # essential task name -> how it ended

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str, *, essential: bool = False) -> asyncio.Task[Any]:
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self._name} is closed; cannot start {name}")
        task = asyncio.get_running_loop().create_task(coro, name=f"{self._name}: {name}")
        self._tasks.add(task)
        if essential:
            self._essential.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        essential = task in self._essential
        self._essential.discard(task)
        failed = not task.cancelled() and task.exception() is not None
        if failed:
            log.error("task failed", owner=self._name, task=task.get_name(), exc_info=task.exception())
        if essential and not self._closed:
            exc = None if task.cancelled() else task.exception()
            how = f"{type(exc).__name__}: {exc}" if exc is not None else \
                "cancelled" if task.cancelled() else "returned"
            self.dead[task.get_name()] = how
            log.critical("essential task ended; the daemon is not ready", owner=self._name,
                         task=task.get_name(), how=how)

    async def aclose(self, timeout: float = 5.0) -> None:
        self._closed = True
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=timeout)
            if pending:
                log.error("tasks did not stop after cancel", owner=self._name,
                          tasks=[t.get_name() for t in pending])
