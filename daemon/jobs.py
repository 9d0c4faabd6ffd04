"""The seam between the server link and the process pool.

The link decides *whether* to take a job; a ``JobLauncher`` decides *where* it runs
(a pool child in production, an in-process runner in tests) and hands back a
``JobHandle`` through which the link follows the job and reports its true status.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from livekit.protocol import agent as agent_pb

from roomd.ipc.worker import AcceptArguments
from roomd.ipc.worker import JobStatus as JobStatus  # re-exported: the link and the pool speak of it


@dataclasses.dataclass(frozen=True)
class JobLaunch:
    """Everything a child needs to run one job."""

    job: agent_pb.Job
    url: str
    token: str
    accept: AcceptArguments
    worker_id: str
    plugin: str  # which plugin's code runs it (its entry-point name)


@dataclasses.dataclass(frozen=True)
class JobOutcome:
    """How a job ended. ``error`` is empty for SUCCESS and names the cause for FAILED."""

    status: JobStatus
    error: str = ""


class JobHandle(Protocol):
    @property
    def job_id(self) -> str: ...

    async def wait_running(self) -> None:
        """Return once the entrypoint is running (or ran: a job may end as soon as it starts);
        raise ``JobEndedEarly`` if it ended without its entrypoint running."""

    async def wait_ended(self) -> JobOutcome:
        """Return the outcome once the job has ended, for whatever reason."""

    def status_reported(self) -> None:
        """The server has processed the final status: the agent may now leave its room."""

    async def terminate(self, reason: str) -> None:
        """Ask the job to end (server ``JobTermination``, drain timeout); bounded, escalates."""


class JobLauncher(Protocol):
    async def launch(self, launch: JobLaunch) -> JobHandle:
        """Start the job; raise ``LaunchError`` naming the cause when it cannot start."""


class LaunchError(RuntimeError):
    """The job could not be handed to a process (pool FATAL, no child in time, ...)."""


class JobEndedEarly(RuntimeError):
    """The job ended before its entrypoint was running."""

    def __init__(self, outcome: JobOutcome) -> None:
        super().__init__(outcome.error or outcome.status.name)
        self.outcome = outcome
