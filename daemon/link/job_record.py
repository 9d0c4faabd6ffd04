"""One job as the server link follows it, from offer to the status the server last heard."""

from __future__ import annotations

import enum
import time

import structlog
from livekit.protocol import agent as agent_pb

from roomd.daemon.admission import Slot
from roomd.daemon.jobs import JobHandle, JobOutcome, JobStatus
from roomd.daemon.pool.states import allowed
from roomd.daemon.transitions import TransitionCounter

log = structlog.get_logger("roomd.link.job")


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


class LinkJob:
    def __init__(self, job: agent_pb.Job, slot: Slot, offered_at: float,
                 transitions: TransitionCounter | None = None) -> None:
        self.job = job
        self.slot = slot
        self.offered_at = offered_at
        self.state = JobState.OFFERED
        self._transitions = transitions or TransitionCounter()
        self.handle: JobHandle | None = None
        self.outcome: JobOutcome | None = None
        self.running_at: float | None = None

    @property
    def id(self) -> str:
        return self.job.id

    def transition(self, new: JobState, why: str = "") -> None:
        if not allowed(JOB_TRANSITIONS, self.state, new, f"job {self.id}"):
            return
        log.debug("job state", job_id=self.id, room=self.job.room.name,
                  old=self.state.value, new=new.value, why=why)
        self._transitions.count("job", self.state, new)
        self.state = new
        if new is JobState.RUNNING:
            self.running_at = time.monotonic()

    def end(self, outcome: JobOutcome) -> None:
        """Record the final outcome once and give the admission slot back."""
        if self.state is JobState.ENDED:
            return
        self.outcome = outcome
        self.transition(JobState.ENDED, outcome.error or outcome.status.name)
        self.slot.release()
        level = log.info if outcome.status is JobStatus.SUCCESS else log.warning
        level("job ended", job_id=self.id, room=self.job.room.name,
              status=outcome.status.name, error=outcome.error)
