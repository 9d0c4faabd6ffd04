"""Who answers "do you want this job?" after admission said there is room.

In the daemon the plugin's ``request_fnc`` runs in a child (the pool's plugin host);
single-file mode and tests may run it in-process.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from livekit.protocol import agent as agent_pb

from roomd.agents.job_request import AcceptArguments, JobRequest, RequestDecision


class RequestEvaluator(Protocol):
    async def evaluate(self, job: agent_pb.Job) -> RequestDecision:
        """The decision; raise to report a plugin error (the offer is then refused)."""


class AcceptEveryJob:
    async def evaluate(self, job: agent_pb.Job) -> RequestDecision:
        return RequestDecision(AcceptArguments(identity=f"agent-{job.id}"))


class InProcessEvaluator:
    """Runs a ``request_fnc`` in this process through the reference ``JobRequest`` API."""

    def __init__(self, request_fnc: Callable[[JobRequest], Awaitable[None]]) -> None:
        self._request_fnc = request_fnc

    async def evaluate(self, job: agent_pb.Job) -> RequestDecision:
        request = JobRequest(job)
        await self._request_fnc(request)
        if request.decision is None:
            raise RuntimeError("request_fnc returned without calling accept() or reject()")
        return request.decision


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
