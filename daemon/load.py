"""How busy this service is, as a share of the CPU it may use (0..1).

Under a cgroup v2 limit (systemd's CPUQuota=, a container's cpu.max) the share is of
the quota, read from the cgroup's own cpu.stat; elsewhere it is the machine's CPU use
from psutil. Sampled in the background so an offer never waits on a measurement.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

import psutil


class CgroupCpu:
    """CPU use of our cgroup v2 relative to its quota (or to the CPUs we may run on)."""

    def __init__(self, root: Path = Path("/sys/fs/cgroup")) -> None:
        self._dir = self._own_cgroup(root)
        self._last: tuple[float, int] | None = None

    @staticmethod
    def _own_cgroup(root: Path) -> Path | None:
        try:
            line = Path("/proc/self/cgroup").read_text().strip().splitlines()[0]
        except (OSError, IndexError):
            return None
        if not line.startswith("0::"):
            return None  # cgroup v1: fall back to psutil
        path = root / line[3:].lstrip("/")
        return path if (path / "cpu.stat").exists() else None

    @property
    def available(self) -> bool:
        return self._dir is not None

    def capacity(self) -> float:
        """CPUs' worth of time per second we may use."""
        assert self._dir is not None
        cpus = float(len(os.sched_getaffinity(0)))
        with contextlib.suppress(OSError, ValueError):
            quota, period = (self._dir / "cpu.max").read_text().split()
            if quota != "max":
                return min(cpus, int(quota) / int(period))
        return cpus

    def sample(self) -> float | None:
        assert self._dir is not None
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
        return max(0.0, min(1.0, used / self.capacity()))


class LoadMonitor:
    """Keeps ``value`` fresh; ``run()`` is owned by the supervisor's task group."""

    def __init__(self, interval: float = 2.5, *, cgroup: CgroupCpu | None = None) -> None:
        self._interval = interval
        self._cgroup = cgroup if cgroup is not None else CgroupCpu()
        self.value = 0.0
        self.source = "cgroup" if self._cgroup.available else "machine"

    def sample(self) -> float:
        if self._cgroup.available:
            measured = self._cgroup.sample()
            if measured is not None:
                self.value = measured
        else:
            self.value = psutil.cpu_percent(interval=None) / 100.0
        return self.value

    async def run(self) -> None:
        self.sample()  # primes both samplers: their first reading has no interval
        while True:
            await asyncio.sleep(self._interval)
            self.sample()
