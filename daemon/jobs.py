"""A job in the daemon: one ``Job`` from the server's offer to the final status it heard.

The link makes the ``Job`` for an offer it takes (holding the admission's reservation), moves it
through ``JobState`` and reports its end. At the assignment it gives the job its ``JobLaunch``
and a ``JobLauncher`` decides *where* it runs (a pool child in production, this process in
tests). What takes it becomes its ``JobRunner`` and records on the job what it learns (the
entrypoint started, how the run ended); the link waits on that, and reaches the runner only
through the job (``terminate``, ``status_reported``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import time
from typing import Protocol

import structlog
from livekit.protocol import agent as agent_pb

from roomd.daemon.admission import Reservation
from roomd.daemon.transitions import TransitionCounter, allowed
from roomd.ipc.worker import AcceptArguments
from roomd.ipc.worker import JobStatus as JobStatus  # re-exported: the link and the pool speak of it

log = structlog.get_logger("roomd.link.job")
# Asked before each transition's debug line: a dropped structlog call still binds and runs
# its processors (~40 us in a process just woken), on the way from assignment to entrypoint.
_debug_enabled = logging.getLogger("roomd.link.job").isEnabledFor


@dataclasses.dataclass(frozen=True)
class JobLaunch:
    """Everything a child needs to run one job (what ``StartJob`` carries)."""

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


class JobState(enum.Enum):
    OFFERED = "offered"  # we answered available, waiting for JobAssignment
    LAUNCHING = "launching"  # assigned; a child is taking it
    RUNNING = "running"  # the entrypoint runs
    ENDED = "ended"  # final status known (and queued for the server)


JOB_TRANSITIONS: dict[JobState, set[JobState]] = {
    JobState.OFFERED: {JobState.LAUNCHING, JobState.ENDED},
    JobState.LAUNCHING: {JobState.RUNNING, JobState.ENDED},
    JobState.RUNNING: {JobState.ENDED},
    JobState.ENDED: set(),
}


class JobRunner(Protocol):
    """Where a launched job runs: a pool child (``ChildProcess``), or this process in tests."""

    async def stop(self, reason: str) -> None:
        """End the run (server ``JobTermination``, drain timeout); bounded, escalates."""

    def status_reported(self, job_id: str) -> None:
        """The server has processed the final status: the agent may now leave its room."""


class Job:
    """One job, as the daemon follows it from the offer to the status the server last heard.

    Two ends: ``run_outcome`` is how the run ended, as its runner tells (set once, first wins);
    ``outcome`` is the final status the link reported, which is FAILED where roomd cut a
    successful run short. ``reservation`` is None for a job handed straight to a pool (a tool,
    a test): no admission holds a slot for it.
    """

    def __init__(self, job: agent_pb.Job, reservation: Reservation | None, offered_at: float,
                 transitions: TransitionCounter | None = None) -> None:
        self.job = job
        self.reservation = reservation
        self.offered_at = offered_at
        self.state = JobState.OFFERED
        self._transitions = transitions or TransitionCounter()
        self.launch: JobLaunch | None = None  # set by the link at the assignment
        self.runner: JobRunner | None = None  # set by what took it (the child), once launched
        self._started = asyncio.Event()  # the entrypoint runs, or the run ended
        self._ran = False  # the entrypoint ran, however soon it ended
        self.run_outcome: asyncio.Future[JobOutcome] = asyncio.get_running_loop().create_future()
        self.outcome: JobOutcome | None = None
        self.running_at: float | None = None

    @classmethod
    def direct(cls, launch: JobLaunch) -> Job:
        """A job handed straight to a pool, without an offer or admission (a tool, a test)."""
        job = cls(launch.job, None, time.monotonic())
        job.launch = launch
        return job

    @property
    def id(self) -> str:
        return self.job.id

    def launch_for(self, plugin: str) -> JobLaunch:
        """What to start, if this job runs ``plugin``'s code; ``LaunchError`` naming why not."""
        if self.launch is None:
            raise LaunchError(f"job {self.id} has no assignment to launch")
        if self.launch.plugin != plugin:
            raise LaunchError(f"job {self.id} is for plugin {self.launch.plugin!r}, this pool runs {plugin!r}")
        return self.launch

    def transition(self, new: JobState, why: str = "") -> None:
        if not allowed(JOB_TRANSITIONS, self.state, new, f"job {self.id}"):
            return
        if _debug_enabled(logging.DEBUG):
            log.debug("job state", job_id=self.id, room=self.job.room.name,
                      old=self.state.value, new=new.value, why=why)
        self._transitions.count("job", self.state, new)
        self.state = new
        if new is JobState.RUNNING:
            self.running_at = time.monotonic()

    # -- what the runner learns -----------------------------------------------------------
    def entrypoint_started(self) -> None:
        self._ran = True
        self._started.set()

    def run_ended(self, outcome: JobOutcome) -> None:
        """The run is over (or its final status is decided); the first outcome stands."""
        if not self.run_outcome.done():
            self.run_outcome.set_result(outcome)
        self._started.set()  # a run that ended is no longer waited on as "starting"

    # -- what the link asks ---------------------------------------------------------------
    async def wait_running(self) -> None:
        """Return once the entrypoint is running (or ran: a job may end as soon as it starts);
        raise ``JobEndedEarly`` if it ended without its entrypoint running."""
        await self._started.wait()
        # A job that ran and ended at once (its JobStarted and JobEnding read together) did run.
        if self.run_outcome.done() and not self._ran:
            raise JobEndedEarly(self.run_outcome.result())

    async def wait_run_ended(self) -> JobOutcome:
        return await asyncio.shield(self.run_outcome)

    def status_reported(self) -> None:
        if self.runner is not None:
            self.runner.status_reported(self.id)

    async def terminate(self, reason: str) -> None:
        """Stop the run (Shutdown -> ``shutdown_timeout`` -> SIGTERM -> SIGKILL in a child);
        returns once it has ended."""
        if self.runner is None or self.run_outcome.done():
            return
        await self.runner.stop(reason)
        await asyncio.shield(self.run_outcome)

    def end(self, outcome: JobOutcome) -> None:
        """Record the final outcome once and give the admission's reservation back."""
        if self.state is JobState.ENDED:
            return
        self.outcome = outcome
        self.transition(JobState.ENDED, outcome.error or outcome.status.name)
        if self.reservation is not None:
            self.reservation.release()
        level = log.info if outcome.status is JobStatus.SUCCESS else log.warning
        level("job ended", job_id=self.id, room=self.job.room.name,
              status=outcome.status.name, error=outcome.error)


class JobLauncher(Protocol):
    async def launch(self, job: Job) -> None:
        """Start the job's ``launch`` and set its ``runner``; raise ``LaunchError`` naming the
        cause when it cannot start."""


class LaunchError(RuntimeError):
    """The job could not be handed to a process (pool FATAL, no child in time, ...)."""


class JobEndedEarly(RuntimeError):
    """The job ended before its entrypoint was running."""

    def __init__(self, outcome: JobOutcome) -> None:
        super().__init__(outcome.error or outcome.status.name)
        self.outcome = outcome
