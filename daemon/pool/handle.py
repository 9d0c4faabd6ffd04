"""``PoolJobHandle``: the link's view of one job running in a pool child (a ``JobHandle``)."""

from __future__ import annotations

import asyncio

from roomd.daemon.jobs import JobEndedEarly, JobOutcome

from .child import ChildProcess, JobRecord


class PoolJobHandle:
    def __init__(self, child: ChildProcess, record: JobRecord) -> None:
        self._child = child
        self._record = record

    @property
    def job_id(self) -> str:
        return self._record.job_id

    @property
    def pid(self) -> int:
        return self._child.pid

    @property
    def ended(self) -> bool:
        return self._record.outcome.done()

    async def wait_running(self) -> None:
        await self._record.started.wait()
        # A job that ran and ended at once (its JobStarted and JobEnding read together) did run.
        if self._record.outcome.done() and not self._record.ran:
            raise JobEndedEarly(self._record.outcome.result())

    async def wait_ended(self) -> JobOutcome:
        return await asyncio.shield(self._record.outcome)

    def status_reported(self) -> None:
        self._child.status_reported(self._record.job_id)

    async def terminate(self, reason: str) -> None:
        """Shutdown -> wait ``shutdown_timeout`` -> SIGTERM -> SIGKILL; returns once the job has ended."""
        if self._record.outcome.done():
            return
        await self._child.stop(reason)
        await asyncio.shield(self._record.outcome)
