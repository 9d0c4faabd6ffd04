"""What a pool reports to /status and to metrics."""

from __future__ import annotations

import collections
import dataclasses

from .child import ChildSnapshot


@dataclasses.dataclass(frozen=True)
class PoolStats:
    plugin: str
    generation: int
    state: str
    last_error: str
    children: int
    idle: int
    spawning: int
    running: int  # ASSIGNED or RUNNING
    waiting_launches: int
    start_failures_total: int
    consecutive_start_failures: int
    restarts: dict[str, int]  # child exits by reason: retired, shutdown, crashed, killed, unresponsive, ...
    jobs_started: int
    jobs_ended: dict[str, int]  # by status name
    ipc_rtt_count: int
    ipc_rtt_sum_seconds: float
    ipc_rtt_recent_seconds: tuple[float, ...]
    logs_dropped: int


@dataclasses.dataclass(frozen=True)
class PoolSnapshot:
    stats: PoolStats
    children: tuple[ChildSnapshot, ...]


class RttWindow:
    def __init__(self, size: int = 256) -> None:
        self.recent: collections.deque[float] = collections.deque(maxlen=size)
        self.count = 0
        self.total = 0.0

    def add(self, rtt: float) -> None:
        self.recent.append(rtt)
        self.count += 1
        self.total += rtt
