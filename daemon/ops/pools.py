"""Every pool the daemon has started and not yet closed, and the totals of the closed ones.

A reload replaces a plugin's pool with a new generation while the old one finishes its
jobs, so the launcher's "current pool per plugin" view misses children that still run
calls. ``/status`` and ``/metrics`` need all of them, and counters such as child restarts
must not fall back when a generation closes: its final counts are folded into per-agent
totals here, so every counter derived from pools only ever grows.
"""

from __future__ import annotations

import collections
import dataclasses

from roomd.daemon.pool import Pool, PoolSnapshot, PoolState, PoolStats


@dataclasses.dataclass
class PoolTotals:
    """Counts that only grow, per agent, summed over every generation."""

    restarts: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    start_failures: int = 0
    ipc_rtt_count: int = 0
    ipc_rtt_sum_seconds: float = 0.0
    logs_dropped: int = 0

    def add(self, stats: PoolStats) -> None:
        self.restarts.update(stats.restarts)
        self.start_failures += stats.start_failures_total
        self.ipc_rtt_count += stats.ipc_rtt_count
        self.ipc_rtt_sum_seconds += stats.ipc_rtt_sum_seconds
        self.logs_dropped += stats.logs_dropped

    def merge(self, other: PoolTotals) -> None:
        self.restarts.update(other.restarts)
        self.start_failures += other.start_failures
        self.ipc_rtt_count += other.ipc_rtt_count
        self.ipc_rtt_sum_seconds += other.ipc_rtt_sum_seconds
        self.logs_dropped += other.logs_dropped


@dataclasses.dataclass(frozen=True)
class LivePool:
    agent: str
    pool: Pool
    snapshot: PoolSnapshot


class PoolRoster:
    def __init__(self) -> None:
        self._live: list[Pool] = []
        self._closed: dict[str, PoolTotals] = collections.defaultdict(PoolTotals)

    def add(self, pool: Pool) -> None:
        """Called for every pool the launcher makes current (the launcher's hook)."""
        if pool not in self._live:
            self._live.append(pool)

    def live(self) -> list[LivePool]:
        """Snapshots of the pools not yet closed; closed ones are folded into the totals."""
        result = []
        for pool in list(self._live):
            snapshot = pool.snapshot()
            if pool.state is PoolState.CLOSED:
                self._closed[pool.agent].add(snapshot.stats)
                self._live.remove(pool)
                continue
            result.append(LivePool(pool.agent, pool, snapshot))
        return result

    def totals(self, live: list[LivePool]) -> dict[str, PoolTotals]:
        """Per-agent totals: closed generations plus the ``live`` ones just read."""
        totals: dict[str, PoolTotals] = collections.defaultdict(PoolTotals)
        for agent, closed in self._closed.items():
            totals[agent].merge(closed)
        for entry in live:
            totals[entry.agent].add(entry.snapshot.stats)
        return dict(totals)
