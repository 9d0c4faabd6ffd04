"""``PoolJobHandle``: one job in a pool child, the pool side's only job type.

The child process records on it what it learns (the entrypoint started, the outcome) and the
link follows the job through it (it is a ``JobHandle``).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from roomd.daemon.jobs import JobEndedEarly, JobLaunch, JobOutcome

if TYPE_CHECKING:
    from .child import ChildProcess


class PoolJobHandle:
    def __init__(self, child: ChildProcess, launch: JobLaunch) -> None:
        self._child = child
        self.launch = launch
        self.started = asyncio.Event()
        self.ran = False  # JobStarted arrived: the entrypoint ran, however soon it ended
        self.outcome: asyncio.Future[JobOutcome] = asyncio.get_running_loop().create_future()
        self.assigned_at = time.monotonic()

    @property
    def job_id(self) -> str:
        return self.launch.job.id

    @property
    def pid(self) -> int:
        return self._child.pid

    @property
    def ended(self) -> bool:
        return self.outcome.done()

    def end(self, outcome: JobOutcome) -> None:
        if not self.outcome.done():
            self.outcome.set_result(outcome)

    async def wait_running(self) -> None:
        await self.started.wait()
        # A job that ran and ended at once (its JobStarted and JobEnding read together) did run.
        if self.outcome.done() and not self.ran:
            raise JobEndedEarly(self.outcome.result())

    async def wait_ended(self) -> JobOutcome:
        return await asyncio.shield(self.outcome)

    def status_reported(self) -> None:
        self._child.status_reported(self.job_id)

    async def terminate(self, reason: str) -> None:
        """Shutdown -> wait ``shutdown_timeout`` -> SIGTERM -> SIGKILL; returns once the job has ended."""
        if self.outcome.done():
            return
        await self._child.stop(reason)
        await asyncio.shield(self.outcome)
