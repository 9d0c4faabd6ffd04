"""A child's health, watched from the supervisor: IPC pings (a child that stops answering is
killed, after a stack dump) and memory samples of its whole process group against the
plugin's limits. Where the child has a memory cgroup (memory_cgroup.py) the kernel holds the
limit; the sampler then ends the rest of the job when the kernel killed part of it, and
guards what the cgroup cannot see. ``ChildHealth`` is mixed into ``ChildProcess``.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Collection, Coroutine
from typing import TYPE_CHECKING, Any

import psutil
import structlog

from roomd.daemon.config import PoolConfig
from roomd.daemon.jobs import Job
from roomd.daemon.plugins.limits import PoolLimits
from roomd.ipc import Channel, Ping
from roomd.ipc.procs import group_members
from roomd.ipc.tasks import TaskOwner

from .memory_cgroup import MB, CgroupError, ChildCgroup, MemoryCgroups
from .reaper import ExitStatus
from .states import ExitReason

# With job_memory_limit_mb set, a child's memory (its whole process group) is sampled at
# least every LIMIT_SAMPLE_INTERVAL seconds, and every NEAR_LIMIT_SAMPLE_INTERVAL once above
# NEAR_LIMIT of the limit: the overshoot is what the job allocates between two samples.
LIMIT_SAMPLE_INTERVAL = 0.5
NEAR_LIMIT = 0.5
NEAR_LIMIT_SAMPLE_INTERVAL = 0.1


def memory_limits_line(cgroups: MemoryCgroups, config: PoolConfig) -> str:
    """What holds a job to its memory limit here, for the startup log."""
    every = min(config.memory_sample_interval, LIMIT_SAMPLE_INTERVAL)
    return cgroups.describe(use=config.memory_cgroups == "auto",
                            sampling=f"every {every:g} s ({NEAR_LIMIT_SAMPLE_INTERVAL:g} s near the limit)")


def tree_memory(pid: int, inside: Collection[int] = ()) -> tuple[int, int, int]:
    """(RSS, PSS else USS else RSS, the part of that from processes not in ``inside``) of a
    child and every process of its group (the helpers a job started count against the job's
    limit). ``psutil.NoSuchProcess`` if the child is gone."""
    rss = used = outside = 0
    for index, member in enumerate([pid, *group_members(pid, exclude={pid})]):
        try:
            info = psutil.Process(member).memory_full_info()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            if index == 0:
                raise
            continue  # a helper that just ended
        rss += info.rss
        share = getattr(info, "pss", None) or getattr(info, "uss", None) or info.rss
        used += share
        if member not in inside:
            outside += share
    return rss, used, outside


class ChildHealth:
    """The ping and memory loops of one child (mixed into ``ChildProcess``)."""

    pid: int
    rss_bytes: int | None
    memory_bytes: int | None
    _limits: PoolLimits
    _channel: Channel | None
    _job: Job | None
    _log: structlog.typing.FilteringBoundLogger
    _owner: TaskOwner
    _last_pong: float
    _cgroup: ChildCgroup | None
    _kill_reason: str | None
    _kill_category: ExitReason | None

    @property
    def _job_id(self) -> str | None:
        return self._job.id if self._job else None

    if TYPE_CHECKING:
        def kill(self, reason: str, category: ExitReason, *,
                 dump_stacks: bool = False) -> Coroutine[Any, Any, None]: ...

    async def _ping_loop(self) -> None:
        assert self._channel is not None
        seq = 0
        interval, deadline = self._limits.ping_interval, self._limits.ping_timeout
        while True:
            await asyncio.sleep(interval)
            silent = time.monotonic() - self._last_pong
            if silent > deadline:
                self._log.error("child unresponsive", silent_seconds=round(silent, 2), ping_timeout=deadline,
                                job_id=self._job_id)
                self._owner.spawn(self.kill(f"unresponsive (no pong for {silent:.1f}s)", ExitReason.UNRESPONSIVE,
                                            dump_stacks=True), "kill unresponsive")
                return
            seq += 1
            # try_send: a child that does not read must not block the pinger; its silence is the signal.
            self._channel.try_send(Ping(seq=seq, supervisor_ts=time.monotonic()))

    async def _memory_loop(self) -> None:
        lim = self._limits
        last_warned_at: float | None = None
        last_warned_mb = 0.0
        failures = 0
        while True:
            cgroup = self._cgroup
            try:
                if cgroup is not None and cgroup.oom_kills():
                    # v1 kills one process (often a helper) and leaves the job running without it.
                    reason = cgroup.describe_kill()
                    self._log.error("the kernel killed a process of the child at its memory limit; ending "
                                    "the child", limit_mb=lim.job_memory_limit_mb,
                                    job_id=self._job_id)
                    self._owner.spawn(self.kill(reason, ExitReason.MEMORY_LIMIT), "kill over memory")
                    return
                rss, used, outside = tree_memory(self.pid, cgroup.members() if cgroup is not None else ())
                failures = 0
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                return  # the exit watcher takes it from here
            except (OSError, psutil.Error) as exc:
                # Transient (EMFILE, ENOMEM): this task must not die, or no limit would hold.
                failures += 1
                if failures == 1 or failures % 100 == 0:
                    self._log.warning("memory sample failed; retrying", error=str(exc), failures=failures)
                await asyncio.sleep(lim.memory_sample_interval)
                continue
            self.rss_bytes, self.memory_bytes = rss, used
            mb = used / MB
            # With a cgroup the kernel counts what is inside it; the sampler adds what is not.
            judged = mb if cgroup is None else ((cgroup.usage() or 0) + outside) / MB
            if lim.job_memory_limit_mb and judged > lim.job_memory_limit_mb:
                reason = f"memory limit exceeded ({judged:.0f} MB > {lim.job_memory_limit_mb:.0f} MB)"
                self._log.error("child over memory limit; killing it", memory_mb=round(judged, 1),
                                limit_mb=lim.job_memory_limit_mb,
                                job_id=self._job_id)
                self._owner.spawn(self.kill(reason, ExitReason.MEMORY_LIMIT), "kill over memory")
                return
            now = time.monotonic()
            if (lim.job_memory_warn_mb and mb > lim.job_memory_warn_mb
                    and (last_warned_at is None or now - last_warned_at >= lim.memory_warn_interval)):
                self._log.warning("child memory above warning level", memory_mb=round(mb, 1),
                                  warn_mb=lim.job_memory_warn_mb,
                                  growth_mb=round(mb - last_warned_mb, 1) if last_warned_at else None,
                                  job_id=self._job_id)
                last_warned_at, last_warned_mb = now, mb
            interval = lim.memory_sample_interval
            if lim.job_memory_limit_mb:
                # Growth between two samples is the overshoot: with a limit set, look often,
                # and very often near it.
                interval = min(interval, NEAR_LIMIT_SAMPLE_INTERVAL if mb > lim.job_memory_limit_mb * NEAR_LIMIT
                               else LIMIT_SAMPLE_INTERVAL)
            await asyncio.sleep(interval)

    def _note_kernel_kill(self, status: ExitStatus) -> None:
        """A child SIGKILLed by the kernel at its cgroup's limit ended for its memory limit."""
        cgroup = self._cgroup
        if (cgroup is not None and self._kill_category is None and status.signal == signal.SIGKILL
                and cgroup.oom_kills()):
            self._kill_reason, self._kill_category = cgroup.describe_kill(), ExitReason.MEMORY_LIMIT

    async def _release_cgroup(self) -> None:
        """End what is left in the child's cgroup (a helper that left its process group) and
        remove the cgroup."""
        cgroup = self._cgroup
        if cgroup is None:
            return
        peak, kills = cgroup.peak(), cgroup.oom_kills()
        try:
            await cgroup.remove()
        except CgroupError as exc:
            self._log.warning("could not remove the child's memory cgroup", error=str(exc))
            return
        facts = {"cgroup": str(cgroup.path), "limit_mb": round(cgroup.limit_bytes / MB, 1),
                 "peak_mb": round(peak / MB, 1) if peak is not None else None, "oom_kills": kills}
        if kills:
            self._log.warning("memory cgroup removed after the kernel held its limit", **facts)
        else:
            self._log.debug("memory cgroup removed", **facts)
