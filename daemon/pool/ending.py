"""How a child ends: Shutdown, then SIGTERM, then SIGKILL of its process group; the exit
watcher that reaps it, fails its job, names the exit reason and ends what it left behind.
``ChildEnding`` is mixed into ``ChildProcess``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from typing import TYPE_CHECKING

import structlog

from roomd.daemon.jobs import Job, JobOutcome, JobStatus
from roomd.daemon.plugins.limits import PoolLimits
from roomd.ipc import (
    Channel,
    ChannelClosed,
    DumpStacks,
    ProtocolError,
    RequestEvaluated,
    Shutdown,
)
from roomd.ipc.exits import EXIT_INIT_FAILED, EXIT_OK, EXIT_PROTOCOL_ERROR, EXIT_RETIRED
from roomd.ipc.procs import end_group
from roomd.ipc.tasks import TaskOwner

from .reaper import ExitStatus, wait_exit
from .states import ChildState, ExitReason

EXIT_WAIT_AFTER_KILL = 5.0


class ChildGone(Exception):
    """The child exited (or is exiting) before it could take the request."""


class ChildEnding:
    """Stopping, killing and reaping one child (mixed into ``ChildProcess``)."""

    pid: int
    exit_status: ExitStatus | None
    exit_reason: ExitReason | None
    _state: ChildState
    _sock: socket.socket
    _channel: Channel | None
    _limits: PoolLimits
    _exited: asyncio.Future[ExitStatus]
    _kill_reason: str | None
    _kill_category: ExitReason | None
    _stop_requested: bool
    _exiting_reason: str
    _job: Job | None
    _evaluations: dict[int, asyncio.Future[RequestEvaluated]]
    _reader: asyncio.Task[None] | None
    _owner: TaskOwner
    _log: structlog.typing.FilteringBoundLogger
    _child_log: structlog.typing.FilteringBoundLogger

    if TYPE_CHECKING:
        def _transition(self, new: ChildState, why: str = "") -> None: ...
        def _report_exit(self, reason: ExitReason) -> None: ...
        def _note_kernel_kill(self, status: ExitStatus) -> None: ...
        async def _release_cgroup(self) -> None: ...

    async def stop(self, reason: str, *, timeout: float | None = None) -> None:
        """Ask the child to end (Shutdown), wait for it to exit; escalate SIGTERM, then SIGKILL."""
        if self._exited.done():
            return
        if self._state is ChildState.SPAWNING or self._channel is None:
            await self.kill(reason, ExitReason.SHUTDOWN)
            return
        timeout = self._limits.shutdown_timeout if timeout is None else timeout
        self._stop_requested = True
        if self._state is not ChildState.STOPPING:
            self._transition(ChildState.STOPPING, reason)
        if not self._channel.closed:
            with contextlib.suppress(ChannelClosed, ProtocolError):
                async with asyncio.timeout(min(timeout, 1.0)):
                    await self._channel.send(Shutdown(reason=reason))
        if await self._wait_exited(timeout) is not None:
            return
        self._log.warning("child did not exit after Shutdown; sending SIGTERM", timeout=timeout, reason=reason)
        self._kill_reason = self._kill_reason or f"did not stop within {timeout}s of Shutdown ({reason})"
        self._kill_category = self._kill_category or ExitReason.STOP_TIMEOUT
        self._signal(signal.SIGTERM)
        if await self._wait_exited(self._limits.kill_grace) is not None:
            return
        await self.kill(self._kill_reason, self._kill_category)

    async def kill(self, reason: str, category: ExitReason, *, dump_stacks: bool = False) -> None:
        """SIGKILL now (after a stack dump if asked), recording why; wait (bounded) until reaped."""
        if self._exited.done():
            return
        if self._kill_reason is None:
            self._kill_reason, self._kill_category = reason, category
        if dump_stacks:
            self._log.error("dumping child stacks before killing it", reason=reason)
            if self._channel is not None:
                self._channel.try_send(DumpStacks(reason=reason))
            self._signal(signal.SIGUSR1)  # faulthandler: works even when its loop is blocked
            await self._wait_exited(0.5)
        if not self._exited.done():
            # The whole group at once: a helper past the memory limit must not go on growing.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        self._signal(signal.SIGKILL)
        await self._wait_exited(EXIT_WAIT_AFTER_KILL)

    def _signal(self, sig: signal.Signals) -> None:
        if not self._exited.done():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    async def _wait_exited(self, timeout: float) -> ExitStatus | None:
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(self._exited)
        except TimeoutError:
            return None

    async def wait_exited(self) -> ExitStatus:
        return await asyncio.shield(self._exited)

    async def _expect_exit(self, timeout: float) -> None:
        if await self._wait_exited(timeout) is None:
            await self.kill(f"did not exit within {timeout}s after its last job", ExitReason.STOP_TIMEOUT)

    async def _watch_exit(self) -> None:
        status = await wait_exit(self.pid)
        if self._reader is not None and not self._reader.done():
            # What the child sent before exiting (JobEnded, Exiting) is still in the socket: read it
            # before judging how the job ended. Bounded: a grandchild may hold the socket open.
            await asyncio.wait({self._reader}, timeout=1.0)
        self.exit_status = status
        self._note_kernel_kill(status)
        category = self._classify(status)
        self.exit_reason = category
        self._exited.set_result(status)
        job = self._job
        if job is not None and not job.run_outcome.done():
            error = self._kill_reason or f"child exited unexpectedly ({status.describe()})"
            job.run_ended(JobOutcome(JobStatus.FAILED, error))
            self._child_log.error("job failed: child ended", error=error, exit=status.describe())
        self._job = None
        for pending in list(self._evaluations.values()):
            if not pending.done():
                pending.set_exception(ChildGone(f"child {self.pid} exited ({status.describe()})"))
        previous = self._state
        self._transition(ChildState.EXITED, category)
        level = "info" if category in (ExitReason.RETIRED, ExitReason.SHUTDOWN) else "warning"
        getattr(self._log, level)("child exited", exit=status.describe(), reason=category,
                                  previous_state=previous.value, detail=self._kill_reason or self._exiting_reason
                                  or None)
        self._report_exit(category)
        # What the child started and left behind (it was killed mid-job, or a helper ignored
        # its SIGTERM) is in its process group: end it too, so no helper outlives its job.
        try:
            leftovers = await end_group(self.pid, self._limits.kill_grace)
        except OSError as exc:  # /proc unreadable (EMFILE): the orphan reaper still reaps them
            self._log.warning("could not end what the child left behind", error=str(exc))
        else:
            if leftovers:
                self._log.warning("ended processes the child left behind", pids=leftovers)
        await self._release_cgroup()
        if self._channel is not None:
            await self._channel.aclose(flush_timeout=0.1)
        else:
            self._sock.close()
        await self._owner.aclose(timeout=1.0)

    def _classify(self, status: ExitStatus) -> ExitReason:
        if self._kill_category is not None:
            return self._kill_category
        if status.exit_code == EXIT_RETIRED:
            return ExitReason.RETIRED
        if status.exit_code == EXIT_OK and self._stop_requested:
            return ExitReason.SHUTDOWN
        if status.exit_code == EXIT_INIT_FAILED:
            return ExitReason.INIT_FAILED
        if status.exit_code == EXIT_PROTOCOL_ERROR:
            return ExitReason.PROTOCOL_ERROR
        if status.signal is not None:
            return ExitReason.KILLED
        return ExitReason.CRASHED
