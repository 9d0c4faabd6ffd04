"""How busy this service is: its CPU share (0..1), and the load each link reports.

The CPU share feeds admission (``load_threshold``). What a link reports to the LiveKit
server is ``reported_load``: the larger of the CPU share and the link's slot use. The CPU
share must measure this service, not its neighbours:
- under systemd (or in a container of its own) our cgroup v2 holds only this service;
  its ``cpu.stat`` counts every descendant, and ``cpu.max`` is the CPUQuota= we may use;
- when the cgroup also holds other programs (a developer's shell, a CI runner, a test
  suite), we sum the CPU time of our own process tree instead, so a busy build next to
  the daemon does not make it refuse calls.
Sampled in the background so an offer never waits on a measurement.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

import psutil
import structlog

from .pool.memory_cgroup import service_cgroup

log = structlog.get_logger("roomd.load")


def cpu_capacity(cgroup_dir: Path | None) -> float:
    """CPUs' worth of time per second we may use: our CPU affinity, capped by cpu.max."""
    cpus = float(len(os.sched_getaffinity(0)))
    if cgroup_dir is not None:
        with contextlib.suppress(OSError, ValueError):
            quota, period = (cgroup_dir / "cpu.max").read_text().split()
            if quota != "max":
                return min(cpus, int(quota) / int(period))
    return cpus


def own_cgroup(root: Path = Path("/sys/fs/cgroup")) -> Path | None:
    """Our cgroup v2 directory, or None on cgroup v1 or without cpu accounting."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    unified = next((line[3:] for line in lines if line.startswith("0::")), None)
    if unified is None:
        return None
    # Where the daemon moved itself into a leaf so its children get memory cgroups, the
    # service is the leaf's parent, which counts the children too.
    path = service_cgroup(root / unified.lstrip("/"))
    return path if (path / "cpu.stat").exists() else None


def reported_load(cpu: float, slot_use: float) -> float:
    """The load a link sends in ``UpdateWorkerStatus``: the larger of the CPU share and the
    share of job slots reserved (offers not yet running included), 0..1.

    livekit-server picks a node by its workers' headroom under its target load and a worker
    by ``1 - load`` (docs/operations.md, "How the server places jobs"). CPU alone reads
    ~0 while calls wait on the network, so a worker with one free slot would look as
    empty as one with ten; slot use says how many more jobs fit.
    """
    return max(0.0, min(1.0, max(cpu, slot_use)))


class CgroupCpu:
    """CPU use of our cgroup v2 relative to its quota."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._last: tuple[float, int] | None = None

    def holds_only(self, pids: set[int]) -> bool:
        """True when every process of the cgroup is one of ``pids``."""
        try:
            members = {int(p) for p in (self._dir / "cgroup.procs").read_text().split()}
        except (OSError, ValueError):
            return False
        return members <= pids

    def sample(self) -> float | None:
        usage_usec = 0
        for line in (self._dir / "cpu.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                usage_usec = int(value)
        now = time.monotonic()
        last, self._last = self._last, (now, usage_usec)
        if last is None or now <= last[0]:
            return None
        used = (usage_usec - last[1]) / 1e6 / (now - last[0])
        return max(0.0, min(1.0, used / cpu_capacity(self._dir)))


class ProcessTreeCpu:
    """CPU use of this process and its descendants (children, zygotes, job processes)."""

    def __init__(self, capacity: float) -> None:
        self._root = psutil.Process()
        self._capacity = capacity
        self._times: dict[int, float] = {}
        self._last_at: float | None = None

    def pids(self) -> set[int]:
        with contextlib.suppress(psutil.Error):
            return {self._root.pid, *(c.pid for c in self._root.children(recursive=True))}
        return {self._root.pid}

    def sample(self) -> float | None:
        now = time.monotonic()
        used = 0.0
        seen: dict[int, float] = {}
        try:
            processes = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            processes = [self._root]
        for process in processes:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total = times.user + times.system
                seen[process.pid] = total
                # A process first seen now counts from now: its earlier time is not this interval's.
                used += total - self._times.get(process.pid, total)
        self._times = seen
        last, self._last_at = self._last_at, now
        if last is None or now <= last:
            return None
        return max(0.0, min(1.0, used / (now - last) / self._capacity))


class LoadMonitor:
    """Keeps ``value`` fresh; ``run()`` is owned by the supervisor's task group."""

    def __init__(self, interval: float = 2.5, *, cgroup_dir: Path | None = None) -> None:
        self._interval = interval
        directory = cgroup_dir if cgroup_dir is not None else own_cgroup()
        self._cgroup = CgroupCpu(directory) if directory is not None else None
        self._tree = ProcessTreeCpu(cpu_capacity(directory))
        self.value = 0.0
        self.source = "process tree"

    def sample(self) -> float:
        # Decided at each sample: children come and go, and so may neighbours.
        if self._cgroup is not None and self._cgroup.holds_only(self._tree.pids()):
            self.source = "cgroup"
            measured = self._cgroup.sample()
            self._tree.sample()  # keep its baseline current for when we switch
        else:
            self.source = "process tree"
            measured = self._tree.sample()
            if self._cgroup is not None:
                self._cgroup.sample()
        if measured is not None:
            self.value = measured
        return self.value

    async def run(self) -> None:
        failures = 0
        while True:  # the first sample primes both samplers: it has no interval
            try:
                self.sample()
                failures = 0
            except (OSError, psutil.Error) as exc:
                # Transient (EMFILE, ENOMEM, /proc races): keep the last value and try again;
                # this task must not die, or the server would see a frozen load forever.
                failures += 1
                if failures == 1 or failures % 100 == 0:
                    log.warning("load sample failed; keeping the last value", error=str(exc),
                                failures=failures)
            await asyncio.sleep(self._interval)
