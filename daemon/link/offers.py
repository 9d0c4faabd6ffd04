"""The link's job path: an offer's whole life, from admission through the plugin's
``request_fnc``, the assignment and the launch to the final status the server hears.

``OfferHandling`` is the half of ``ServerLink`` that follows jobs; the other half keeps the
connection. Jobs do not belong to the socket: they outlive a reconnect.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
from typing import TYPE_CHECKING

import structlog
from livekit.protocol import agent as agent_pb

from roomd.daemon.admission import Admission, Decision, Refusal, Reservation
from roomd.daemon.config import LinkConfig, LiveKitConfig
from roomd.daemon.transitions import TransitionCounter
from roomd.daemon.jobs import (
    Job,
    JobEndedEarly,
    JobLaunch,
    JobLauncher,
    JobOutcome,
    JobState,
    JobStatus,
    LaunchError,
)
from roomd.ipc.errors import AssignmentTimeoutError
from roomd.ipc.tasks import TaskOwner
from roomd.ipc.worker import RequestDecision

from .evaluators import RequestEvaluator
from .outbox import Outbox, StatusReporter

if TYPE_CHECKING:
    from .server_link import AgentRegistration, LinkObserver

log = structlog.get_logger("roomd.link")

RECENT_REFUSALS = 20  # refused offers kept for /status
# How long a job that ended waits in its room for the server to confirm its final status.
STATUS_CONFIRM_TIMEOUT = 10.0


class OfferWithdrawn(Exception):
    """An accepted offer ended before its JobAssignment arrived (terminated, or we stop)."""


@dataclasses.dataclass(frozen=True)
class RefusedOffer:
    """One offer answered "not available", for /status (wall-clock ``at`` to match server logs)."""

    at: float
    job_id: str
    room: str
    reason: str
    detail: str


class OfferHandling:
    """Offers, assignments and running jobs of one link (mixed into ``ServerLink``)."""

    registration: AgentRegistration
    worker_id: str
    _livekit: LiveKitConfig
    _config: LinkConfig
    _admission: Admission
    _evaluator: RequestEvaluator
    _launcher: JobLauncher
    _observer: LinkObserver
    _tasks: TaskOwner
    _transitions: TransitionCounter
    _outbox: Outbox
    _status: StatusReporter
    _draining: bool
    _closing: bool

    def _init_jobs(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._assignments: dict[str, asyncio.Future[agent_pb.JobAssignment]] = {}
        # Jobs roomd itself ends (drain timeout, a second stop signal): reported FAILED.
        self._ended_by_roomd: dict[str, str] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self.assignment_timeouts = 0
        self._refusals: collections.deque[RefusedOffer] = collections.deque(maxlen=RECENT_REFUSALS)

    def _active_jobs(self) -> int:
        return sum(1 for job in self._jobs.values() if job.state is not JobState.ENDED)

    async def wait_idle(self, timeout: float) -> bool:
        """True once no job is left; False if ``timeout`` passed first."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def _release_after_report(self, record: Job) -> None:
        try:
            if not await self._outbox.caught_up(STATUS_CONFIRM_TIMEOUT):
                log.warning("server did not confirm the final job status in time", job_id=record.id,
                            timeout=STATUS_CONFIRM_TIMEOUT)
        finally:
            record.status_reported()

    def _send_job_status(self, job_id: str, status: JobStatus, error: str = "") -> None:
        self._outbox.send(agent_pb.WorkerMessage(update_job=agent_pb.UpdateJobStatus(
            job_id=job_id, status=status.value, error=error)))

    def _answer(self, job_id: str, decision: RequestDecision | None) -> None:
        accept = decision.accept if decision is not None else None
        response = agent_pb.AvailabilityResponse(job_id=job_id, available=accept is not None)
        if accept is not None:
            response.participant_identity = accept.identity
            response.participant_name = accept.name
            response.participant_metadata = accept.metadata
            response.participant_attributes.update(accept.attributes)
        self._outbox.send(agent_pb.WorkerMessage(availability=response))

    async def _on_offer(self, request: agent_pb.AvailabilityRequest) -> None:
        job = request.job
        offered_at = time.monotonic()
        refusal = self._pre_check(job)
        reservation = refusal or self._admission.try_reserve()
        if isinstance(reservation, Refusal):
            self._refuse(job, reservation)
            return
        record = Job(job, reservation, offered_at, self._transitions)
        try:
            await self._take_offer(record, reservation)
        except asyncio.CancelledError:
            # The link is closing under this job: whatever its state, its reservation is released.
            if record.state is JobState.OFFERED:
                self._count(Decision.WITHDRAWN)
            record.end(JobOutcome(JobStatus.FAILED, "the worker stopped following this job"))
            self._remove_job(record)
            raise

    async def _take_offer(self, record: Job, reservation: Reservation) -> None:
        """Ask the plugin, answer, wait for the assignment, run the job: the offer's whole life."""
        job = record.job
        try:
            # In this task (asyncio.wait_for would start another): the default request_fnc
            # answers without suspending, and the answer is queued before anything else runs.
            async with asyncio.timeout(self._config.assignment_timeout):
                decision = await self._evaluator.evaluate(job)
        except Exception as exc:  # plugin code failed: refuse, the daemon goes on
            reservation.release()
            self._refuse(job, Refusal(Decision.PLUGIN_ERROR, f"request_fnc failed: {describe_error(exc)}"))
            return
        if not decision.accepted:
            reservation.release()
            self._refuse(job, Refusal(Decision.REJECTED_BY_PLUGIN, "request_fnc rejected the job"))
            return
        assert decision.accept is not None
        waiter: asyncio.Future[agent_pb.JobAssignment] = asyncio.get_running_loop().create_future()
        self._assignments[job.id] = waiter
        self._add_job(record)
        self._answer(job.id, decision)
        try:
            async with asyncio.timeout(self._config.assignment_timeout):
                assignment = await waiter
        except OfferWithdrawn as exc:
            log.info("offer withdrawn before assignment", job_id=job.id, room=job.room.name,
                     reason=str(exc))
            self._count(Decision.WITHDRAWN)
            self._finish(record, JobOutcome(JobStatus.FAILED, str(exc)))
            return
        except TimeoutError:
            self.assignment_timeouts += 1
            self._count(Decision.ASSIGNMENT_TIMEOUT)
            error = AssignmentTimeoutError(
                f"no JobAssignment for job {job.id} within {self._config.assignment_timeout}s")
            log.warning("assignment timeout", job_id=job.id, room=job.room.name, error=str(error))
            record.end(JobOutcome(JobStatus.FAILED, str(error)))
            # If the assignment was lost in transit the server thinks the job runs here.
            self._send_job_status(job.id, JobStatus.FAILED, str(error))
            self._remove_job(record)
            return
        finally:
            self._assignments.pop(job.id, None)
        await self._run_job(record, assignment, decision)

    def _pre_check(self, job: agent_pb.Job) -> Refusal | None:
        if job.agent_name != self.registration.agent_name:
            return Refusal(Decision.WRONG_AGENT,
                           f"job is for agent {job.agent_name!r}, this link serves "
                           f"{self.registration.agent_name!r}")
        if self._draining:
            return Refusal(Decision.DRAINING, "this link is draining")
        return None

    def _refuse(self, job: agent_pb.Job, refusal: Refusal) -> None:
        self._count(refusal.decision)
        self._refusals.append(RefusedOffer(at=time.time(), job_id=job.id, room=job.room.name,
                                           reason=refusal.decision.value, detail=refusal.detail))
        log.info("job refused", job_id=job.id, room=job.room.name,
                 reason=refusal.decision.value, detail=refusal.detail)
        self._answer(job.id, None)

    def _count(self, decision: Decision) -> None:
        self._admission.count(decision)
        self._observer.decision(self.registration.agent_name, decision)

    def _on_assignment(self, assignment: agent_pb.JobAssignment) -> None:
        waiter = self._assignments.get(assignment.job.id)
        if waiter is not None and not waiter.done():
            waiter.set_result(assignment)
            return
        # Too late (or never offered): the server believes the job runs here; tell it otherwise.
        log.warning("assignment for a job we are not waiting for", job_id=assignment.job.id)
        self._send_job_status(assignment.job.id, JobStatus.FAILED,
                              "assignment arrived after the worker stopped waiting for it")

    def _on_termination(self, job_id: str) -> None:
        record = self._jobs.get(job_id)
        if record is None:
            log.info("termination for an unknown job", job_id=job_id)
            return
        log.info("server terminated job", job_id=job_id, room=record.job.room.name)
        if record.runner is not None:
            self._tasks.spawn(record.terminate("terminated by the server"), f"terminate {job_id}")
        else:
            waiter = self._assignments.get(job_id)
            if waiter is not None and not waiter.done():
                waiter.set_exception(OfferWithdrawn("terminated by the server before its assignment"))

    async def _run_job(self, record: Job, assignment: agent_pb.JobAssignment,
                       decision: RequestDecision) -> None:
        assert decision.accept is not None
        record.transition(JobState.LAUNCHING)
        record.launch = JobLaunch(
            job=assignment.job if assignment.HasField("job") else record.job,
            url=assignment.url or self._livekit.url,
            token=assignment.token,
            accept=decision.accept,
            worker_id=self.worker_id,
            plugin=self.registration.plugin,
        )
        try:
            await self._launcher.launch(record)
        except LaunchError as exc:
            self._admission.count(Decision.LAUNCH_FAILED)
            self._finish(record, JobOutcome(JobStatus.FAILED, f"could not start the job: {exc}"))
            return
        finally:
            self._count(Decision.ACCEPTED)  # once the StartJob is on its way: counting can wait
        try:
            await record.wait_running()
        except JobEndedEarly:
            pass  # the outcome below says why
        else:
            self._send_job_status(record.id, JobStatus.RUNNING)  # first: the server is waiting
            record.transition(JobState.RUNNING)
            self._observer.job_running(self.registration.agent_name,
                                       time.monotonic() - record.offered_at)
        self._finish(record, await record.wait_run_ended())

    def _finish(self, record: Job, outcome: JobOutcome) -> None:
        ended_by = self._ended_by_roomd.pop(record.id, None)
        if ended_by is not None and outcome.status is JobStatus.SUCCESS:
            # The job did not end on its own: roomd cut it short, and the server must know.
            outcome = JobOutcome(JobStatus.FAILED, f"ended by roomd: {ended_by}")
        record.end(outcome)
        self._send_job_status(record.id, outcome.status, outcome.error)
        if record.runner is not None:
            if self._closing:
                record.status_reported()
            else:
                self._tasks.spawn(self._release_after_report(record), f"report {record.id}")
        duration = time.monotonic() - (record.running_at or record.offered_at)
        self._observer.job_ended(self.registration.agent_name, outcome, duration)
        self._remove_job(record)

    def _add_job(self, record: Job) -> None:
        self._jobs[record.id] = record
        self._idle.clear()
        self._status.changed.set()

    def _remove_job(self, record: Job) -> None:
        self._jobs.pop(record.id, None)
        if not self._jobs:
            self._idle.set()
        self._status.changed.set()

    async def terminate_jobs(self, reason: str, timeout: float) -> bool:
        """Ask every running job to end (each runner escalates on its own); bounded."""
        launched = [job for job in self._jobs.values() if job.runner is not None]
        for job in self._jobs.values():
            self._ended_by_roomd.setdefault(job.id, reason)
        for waiter in self._assignments.values():
            if not waiter.done():
                waiter.set_exception(OfferWithdrawn(f"not started: {reason}"))
        if launched:
            log.info("terminating jobs", count=len(launched), reason=reason)
            await asyncio.wait([asyncio.ensure_future(job.terminate(reason)) for job in launched],
                               timeout=timeout)
        return await self.wait_idle(timeout)


def describe_error(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
