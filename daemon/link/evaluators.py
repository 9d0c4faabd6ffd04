"""Who answers "do you want this job?" after admission said there is room.

The plugin's ``request_fnc`` runs in a child (the pool's plugin host), never in the daemon;
tests of the link alone accept every job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from livekit.protocol import agent as agent_pb

from roomd.ipc.worker import RequestDecision, accept_by_default


class RequestEvaluator(Protocol):
    async def evaluate(self, job: agent_pb.Job) -> RequestDecision:
        """The decision; raise to report a plugin error (the offer is then refused)."""


class AcceptEveryJob:
    async def evaluate(self, job: agent_pb.Job) -> RequestDecision:
        return accept_by_default(job.id)


class PoolEvaluator:
    """Asks the plugin's current pool, whose plugin-host child runs ``request_fnc``."""

    def __init__(self, pool_for: Callable[[], _AsksPlugin | None], timeout: float) -> None:
        self._pool_for = pool_for
        self._timeout = timeout

    async def evaluate(self, job: agent_pb.Job) -> RequestDecision:
        pool = self._pool_for()
        if pool is None:
            raise RuntimeError("the plugin has no running pool")
        return await pool.evaluate_request(job, timeout=self._timeout)


class _AsksPlugin(Protocol):
    async def evaluate_request(self, job: agent_pb.Job, timeout: float = ...) -> RequestDecision: ...
