"""The link to one LiveKit server for one agent: registration, offers, statuses, reconnects.

The protocol (livekit.protocol.agent): after a websocket handshake at ``/agent`` we send
``RegisterWorkerRequest`` and the server's first message must be
``RegisterWorkerResponse``. Then the server offers jobs (``AvailabilityRequest``); we
answer (``AvailabilityResponse``), it assigns (``JobAssignment`` with the room token),
and we report the job's life (``UpdateJobStatus``) and our own (``UpdateWorkerStatus``).

Jobs do not belong to the socket: they run in pool children and outlive a reconnect.
Their statuses go through a durable outbox that is flushed, in order, once we are
registered again, so the server hears every job's true end.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import random
import time
from typing import Protocol, cast

import aiohttp
import structlog
from livekit import api
from livekit.protocol import agent as agent_pb
from livekit.protocol import models as models_pb

from roomd.daemon.admission import Admission, Decision, Refusal
from roomd.daemon.config import LinkConfig, LiveKitConfig
from roomd.daemon.jobs import (
    JobEndedEarly,
    JobHandle,
    JobLaunch,
    JobLauncher,
    JobOutcome,
    JobStatus,
    LaunchError,
)
from roomd.daemon.load import reported_load
from roomd.daemon.pool.states import allowed
from roomd.ipc.errors import AssignmentTimeoutError, ProtocolError
from roomd.ipc.tasks import TaskOwner
from roomd.ipc.worker import RequestDecision, WorkerPermissions, WorkerType

from .evaluators import RequestEvaluator
from .job_record import JobState, LinkJob
from .states import LINK_TRANSITIONS, LinkState
from .url import agent_websocket_url

log = structlog.get_logger("roomd.link")

REGISTER_TIMEOUT = 10.0
CLOSE_FLUSH_TIMEOUT = 2.0
FULL_WARNING_INTERVAL = 60.0  # seconds between warnings that we report FULL
RECENT_REFUSALS = 20  # refused offers kept for /status
# How long a job that ended waits in its room for the server to confirm its final status.
STATUS_CONFIRM_TIMEOUT = 10.0


class LinkFailed(RuntimeError):
    """The server could not be reached: the first attempt and ``max_retry`` retries failed."""


class OfferWithdrawn(Exception):
    """An accepted offer ended before its JobAssignment arrived (terminated, or we stop)."""


@dataclasses.dataclass(frozen=True)
class AgentRegistration:
    """What we register as: one plugin's identity on the server."""

    plugin: str
    agent_name: str
    worker_type: WorkerType = WorkerType.ROOM
    permissions: WorkerPermissions = dataclasses.field(default_factory=WorkerPermissions)
    version: str = ""


@dataclasses.dataclass(frozen=True)
class RefusedOffer:
    """One offer answered "not available", for /status (wall-clock ``at`` to match server logs)."""

    at: float
    job_id: str
    room: str
    reason: str
    detail: str


@dataclasses.dataclass(frozen=True)
class LinkSnapshot:
    plugin: str
    agent_name: str
    state: str
    worker_id: str
    connected: bool
    draining: bool
    rtt_seconds: float | None
    reconnects: int
    jobs: int
    load: float  # as last reported to the server
    recent_refusals: tuple[RefusedOffer, ...]


class LinkObserver(Protocol):
    """Hooks for metrics; every method is called on the event loop and must not block."""

    def decision(self, agent: str, decision: Decision) -> None: ...
    def job_running(self, agent: str, dispatch_latency: float) -> None: ...
    def job_ended(self, agent: str, outcome: JobOutcome, duration: float) -> None: ...
    def link_up(self, agent: str, up: bool) -> None: ...
    def reconnected(self, agent: str) -> None: ...
    def rtt(self, agent: str, seconds: float) -> None: ...


class NullObserver:
    def decision(self, agent: str, decision: Decision) -> None: ...
    def job_running(self, agent: str, dispatch_latency: float) -> None: ...
    def job_ended(self, agent: str, outcome: JobOutcome, duration: float) -> None: ...
    def link_up(self, agent: str, up: bool) -> None: ...
    def reconnected(self, agent: str) -> None: ...
    def rtt(self, agent: str, seconds: float) -> None: ...


class ServerLink:
    def __init__(
        self,
        *,
        livekit: LiveKitConfig,
        config: LinkConfig,
        registration: AgentRegistration,
        admission: Admission,
        evaluator: RequestEvaluator,
        launcher: JobLauncher,
        observer: LinkObserver | None = None,
    ) -> None:
        self._livekit = livekit
        self._config = config
        self.registration = registration
        self._admission = admission
        self._evaluator = evaluator
        self._launcher = launcher
        self._observer: LinkObserver = observer or NullObserver()
        self._state = LinkState.CONNECTING
        self._tasks = TaskOwner(f"link {registration.agent_name or registration.plugin}")
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._outbox: collections.deque[agent_pb.WorkerMessage] = collections.deque()
        self._outbox_ready = asyncio.Event()
        self._outbox_empty = asyncio.Event()
        self._outbox_empty.set()
        self._status_changed = asyncio.Event()
        self._registered = asyncio.Event()
        self._state_changed = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._jobs: dict[str, LinkJob] = {}
        self._assignments: dict[str, asyncio.Future[agent_pb.JobAssignment]] = {}
        # Jobs roomd itself ends (drain timeout, a second stop signal): reported FAILED.
        self._ended_by_roomd: dict[str, str] = {}
        # WorkerPings whose pong proves the server has handled everything sent before them.
        self._barriers: list[tuple[int, asyncio.Future[None]]] = []
        self._last_ping_stamp = 0
        self._draining = False
        self._closing = False
        self._full_warned_at = -FULL_WARNING_INTERVAL
        self.worker_id = ""
        self.rtt: float | None = None
        self.reconnects = 0
        self.assignment_timeouts = 0
        self.reported_load = 0.0
        self._refusals: collections.deque[RefusedOffer] = collections.deque(maxlen=RECENT_REFUSALS)
        admission.add_listener(self._status_changed.set)

    # -- state ---------------------------------------------------------------------------
    @property
    def state(self) -> LinkState:
        return self._state

    @property
    def jobs(self) -> dict[str, LinkJob]:
        return dict(self._jobs)

    def _transition(self, new: LinkState, why: str = "") -> None:
        if self._closing and new is not LinkState.CLOSED:
            return  # a connect attempt that ends after aclose() began is not news
        if not allowed(LINK_TRANSITIONS, self._state, new, f"link {self.registration.agent_name!r}"):
            return
        log.info("link state", agent=self.registration.agent_name, old=self._state.value,
                 new=new.value, why=why)
        self._state = new
        self._state_changed.set()
        self._state_changed = asyncio.Event()
        if new is LinkState.REGISTERED:
            self._registered.set()
        else:
            self._registered.clear()
        self._observer.link_up(self.registration.agent_name, new is LinkState.REGISTERED)

    async def wait_for_state(self, *states: LinkState, timeout: float) -> LinkState:
        async with asyncio.timeout(timeout):
            while self._state not in states:
                await self._state_changed.wait()
        return self._state

    async def wait_registered(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            await self._registered.wait()

    def snapshot(self) -> LinkSnapshot:
        return LinkSnapshot(
            plugin=self.registration.plugin, agent_name=self.registration.agent_name,
            state=self._state.value, worker_id=self.worker_id,
            connected=self._state is LinkState.REGISTERED, draining=self._draining,
            rtt_seconds=self.rtt, reconnects=self.reconnects, jobs=len(self._jobs),
            load=self.reported_load, recent_refusals=tuple(self._refusals),
        )

    def set_route(self, *, evaluator: RequestEvaluator, launcher: JobLauncher) -> None:
        """Send new offers to other code (a reload); jobs already running are unaffected."""
        self._evaluator, self._launcher = evaluator, launcher

    # -- the connection loop ---------------------------------------------------------------
    async def run(self) -> None:
        """Stay registered until closed; raise ``LinkFailed`` after too many failures."""
        failures = 0
        registered_before = False
        async with aiohttp.ClientSession() as http:
            while not self._closing:
                self._transition(LinkState.RECONNECTING if registered_before or failures
                                 else LinkState.CONNECTING)
                try:
                    ws = await self._connect(http)
                except (aiohttp.ClientError, OSError, TimeoutError, ProtocolError) as exc:
                    if isinstance(exc, aiohttp.WSServerHandshakeError) and exc.status in (401, 403):
                        # Credentials do not get better by retrying: say so at once.
                        self._transition(LinkState.FAILED, f"HTTP {exc.status}")
                        raise LinkFailed(
                            f"{self._livekit.url} refused the agent registration (HTTP {exc.status} "
                            f"{exc.message}): check LIVEKIT_API_KEY / LIVEKIT_API_SECRET "
                            "(livekit.api_key / livekit.api_secret)") from None
                    failures += 1
                    reason = _describe(exc)
                    if failures > self._config.max_retry:
                        self._transition(LinkState.FAILED, reason)
                        raise LinkFailed(
                            f"could not register agent {self.registration.agent_name!r} with "
                            f"{self._livekit.url} after {failures} attempts in a row (the first "
                            f"and link.max_retry = {self._config.max_retry} retries): {reason}"
                        ) from None
                    delay = self._backoff(failures)
                    log.warning("connection failed, retrying", agent=self.registration.agent_name,
                                error=reason, attempt=failures, retry_in=round(delay, 2))
                    await asyncio.sleep(delay)
                    continue
                if registered_before:
                    self.reconnects += 1
                    self._observer.reconnected(self.registration.agent_name)
                registered_before, failures = True, 0
                try:
                    await self._serve(ws)
                except ProtocolError as exc:
                    log.error("protocol error from server, reconnecting",
                              agent=self.registration.agent_name, error=str(exc))
                finally:
                    self._ws = None
                    await ws.close()
                if not self._closing:
                    await asyncio.sleep(self._backoff(1))  # a short pause before reconnecting
        self._transition(LinkState.CLOSED)

    def _backoff(self, attempt: int) -> float:
        # Full jitter on an exponential curve: reconnect storms of many daemons spread out.
        ceiling = min(self._config.reconnect_backoff_max, 0.5 * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    async def _connect(self, http: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
        token = (
            api.AccessToken(self._livekit.api_key, self._livekit.api_secret)
            .with_grants(api.VideoGrants(agent=True))
            .to_jwt()
        )  # fresh per attempt: a long outage must not leave us with an expired token
        url = agent_websocket_url(self._livekit.url)
        ws = await http.ws_connect(url, headers={"Authorization": f"Bearer {token}"},
                                   timeout=aiohttp.ClientWSTimeout(ws_close=5.0), autoping=True)
        try:
            self._transition(LinkState.REGISTERING)
            await ws.send_bytes(self._register_message().SerializeToString())
            async with asyncio.timeout(REGISTER_TIMEOUT):
                first = await self._receive(ws)
            if first is None:
                raise ProtocolError("server closed the connection before answering registration")
            if first.WhichOneof("message") != "register":
                raise ProtocolError(
                    f"expected RegisterWorkerResponse first, got {first.WhichOneof('message')}")
        except BaseException:
            await ws.close()
            raise
        self.worker_id = first.register.worker_id
        self._ws = ws
        self._transition(LinkState.REGISTERED, f"worker_id={self.worker_id}")
        return ws

    def _register_message(self) -> agent_pb.WorkerMessage:
        reg = self.registration
        perms = reg.permissions
        return agent_pb.WorkerMessage(register=agent_pb.RegisterWorkerRequest(
            type=reg.worker_type.value,
            agent_name=reg.agent_name,
            version=reg.version,
            namespace=self._config.namespace,
            ping_interval=int(self._config.ping_interval),
            allowed_permissions=models_pb.ParticipantPermission(
                can_publish=perms.can_publish, can_subscribe=perms.can_subscribe,
                can_publish_data=perms.can_publish_data,
                can_update_metadata=perms.can_update_metadata, hidden=perms.hidden, agent=True,
            ),
        ))

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse) -> agent_pb.ServerMessage | None:
        """The next server message; None when the socket closed."""
        while True:
            frame = await ws.receive()
            if frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                              aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return None
            if frame.type is not aiohttp.WSMsgType.BINARY:
                raise ProtocolError(f"expected a binary protobuf frame, got {frame.type.name}")
            message = agent_pb.ServerMessage()
            try:
                message.ParseFromString(frame.data)
            except Exception as exc:  # protobuf raises DecodeError and friends
                raise ProtocolError(f"undecodable ServerMessage ({len(frame.data)} bytes): {exc}") from None
            if message.WhichOneof("message") is None:
                raise ProtocolError(f"ServerMessage with no known content ({len(frame.data)} bytes)")
            return message

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        # Answers to offers made on the old socket mean nothing to the new one.
        self._outbox = collections.deque(
            m for m in self._outbox if m.WhichOneof("message") != "availability")
        running = [job.id for job in self._jobs.values() if job.state is not JobState.OFFERED]
        if running:
            # After a reconnect the server must learn that these jobs still run here.
            self._outbox.appendleft(agent_pb.WorkerMessage(
                migrate_job=agent_pb.MigrateJobRequest(job_ids=running)))
            log.info("announced running jobs after reconnect", job_ids=running)
        connection = TaskOwner(f"connection {self.worker_id}")
        connection.spawn(self._send_loop(ws), "sender")
        connection.spawn(self._status_loop(), "worker status")
        connection.spawn(self._ping_loop(), "ping")
        self._status_changed.set()
        self._outbox_ready.set()
        try:
            while True:
                message = await self._receive(ws)
                if message is None:
                    if not self._closing:  # our own aclose() is not news
                        log.warning("server closed the connection",
                                    agent=self.registration.agent_name, code=ws.close_code)
                    return
                self._dispatch(message)
        finally:
            await connection.aclose()

    def _dispatch(self, message: agent_pb.ServerMessage) -> None:
        kind = message.WhichOneof("message")
        if kind == "availability":
            self._tasks.spawn(self._on_offer(message.availability), f"offer {message.availability.job.id}")
        elif kind == "assignment":
            self._on_assignment(message.assignment)
        elif kind == "termination":
            self._on_termination(message.termination.job_id)
        elif kind == "pong":
            self.rtt = max(0.0, (time.time() * 1000 - message.pong.last_timestamp) / 1000)
            self._observer.rtt(self.registration.agent_name, self.rtt)
            # The server handles one worker's messages in order: a pong for a ping sent
            # after a status means that status has been applied.
            for stamp, waiter in self._barriers:
                if stamp <= message.pong.last_timestamp and not waiter.done():
                    waiter.set_result(None)
        elif kind == "register":
            raise ProtocolError("a second RegisterWorkerResponse on a registered connection")
        else:
            log.info("ignoring server message", kind=kind)

    # -- sending -------------------------------------------------------------------------
    def _send(self, message: agent_pb.WorkerMessage) -> None:
        """Queue a message; it goes out, in order, on this or the next connection."""
        self._outbox.append(message)
        self._outbox_empty.clear()
        self._outbox_ready.set()

    async def _send_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while self._outbox:
                message = self._outbox[0]
                try:
                    await ws.send_bytes(message.SerializeToString())
                except (ConnectionError, aiohttp.ClientError):
                    return  # the reader sees the close; the message waits for the next socket
                self._outbox.popleft()  # only once it is on the wire
            self._outbox_empty.set()

    async def _status_loop(self) -> None:
        # Woken by every admission change (a slot reserved or released, here or in another
        # plugin's link), so the server hears a new slot use at once, not at the next period.
        last: tuple[int, int, float] | None = None
        next_periodic = 0.0
        while True:
            refusal = None if self._draining else self._admission.refusal()
            status = agent_pb.WS_FULL if (self._draining or refusal is not None) \
                else agent_pb.WS_AVAILABLE
            active = sum(1 for job in self._jobs.values() if job.state is not JobState.ENDED)
            load = round(reported_load(self._admission.load(), self._admission.slot_use()), 3)
            now = time.monotonic()
            if status != (last[0] if last else agent_pb.WS_AVAILABLE) and not self._draining:
                self._log_availability(refusal, now)
            if (status, active, load) != last or now >= next_periodic:
                self._send_worker_status(status, active, load)
                last, next_periodic = (status, active, load), now + self._config.status_interval
            self._status_changed.clear()
            try:
                async with asyncio.timeout(max(0.0, next_periodic - time.monotonic())):
                    await self._status_changed.wait()
            except TimeoutError:
                pass

    def _log_availability(self, refusal: Refusal | None, now: float) -> None:
        """The server stops offering to a FULL worker without telling anyone: say why here,
        loudly at most once a minute (a load hovering at the threshold flips it often)."""
        if refusal is None:
            log.info("reporting available again", agent=self.registration.agent_name)
            return
        loud = now - self._full_warned_at >= FULL_WARNING_INTERVAL
        if loud:
            self._full_warned_at = now
        (log.warning if loud else log.debug)(
            "reporting full: no offers until this changes", agent=self.registration.agent_name,
            reason=refusal.decision.value, detail=refusal.detail)

    def _send_worker_status(self, status: int, active: int, load: float) -> None:
        # Per-connection news: stale ones are dropped rather than replayed on the next socket.
        self._outbox = collections.deque(
            m for m in self._outbox if m.WhichOneof("message") != "update_worker")
        self.reported_load = load
        self._send(agent_pb.WorkerMessage(update_worker=agent_pb.UpdateWorkerStatus(
            status=cast("agent_pb.WorkerStatus", status), load=load, job_count=active)))

    async def _ping_loop(self) -> None:
        while True:
            self._send_ping()
            await asyncio.sleep(self._config.ping_interval)

    def _send_ping(self) -> int:
        # Strictly increasing stamps, so a pong names exactly which pings it follows.
        stamp = self._last_ping_stamp = max(int(time.time() * 1000), self._last_ping_stamp + 1)
        self._send(agent_pb.WorkerMessage(ping=agent_pb.WorkerPing(timestamp=stamp)))
        return stamp

    async def _server_caught_up(self, timeout: float) -> bool:
        """True once the server has handled every message queued before this call."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self._send_ping(), waiter)
        self._barriers.append(entry)
        try:
            async with asyncio.timeout(timeout):
                await waiter
            return True
        except TimeoutError:
            return False
        finally:
            self._barriers.remove(entry)

    async def _release_after_report(self, record: LinkJob, handle: JobHandle) -> None:
        try:
            if not await self._server_caught_up(STATUS_CONFIRM_TIMEOUT):
                log.warning("server did not confirm the final job status in time", job_id=record.id,
                            timeout=STATUS_CONFIRM_TIMEOUT)
        finally:
            handle.status_reported()

    def _send_job_status(self, job_id: str, status: JobStatus, error: str = "") -> None:
        self._send(agent_pb.WorkerMessage(update_job=agent_pb.UpdateJobStatus(
            job_id=job_id, status=status.value, error=error)))

    def _answer(self, job_id: str, decision: RequestDecision | None) -> None:
        accept = decision.accept if decision is not None else None
        response = agent_pb.AvailabilityResponse(job_id=job_id, available=accept is not None)
        if accept is not None:
            response.participant_identity = accept.identity
            response.participant_name = accept.name
            response.participant_metadata = accept.metadata
            response.participant_attributes.update(accept.attributes)
        self._send(agent_pb.WorkerMessage(availability=response))

    # -- the job path --------------------------------------------------------------------
    async def _on_offer(self, request: agent_pb.AvailabilityRequest) -> None:
        job = request.job
        offered_at = time.monotonic()
        refusal = self._pre_check(job)
        reservation = refusal or self._admission.try_reserve()
        if isinstance(reservation, Refusal):
            self._refuse(job, reservation)
            return
        record = LinkJob(job, reservation, offered_at)
        try:
            await self._take_offer(record)
        except asyncio.CancelledError:
            # The link is closing under this job: whatever its state, its slot is given back.
            if record.state is JobState.OFFERED:
                self._count(Decision.WITHDRAWN)
            record.end(JobOutcome(JobStatus.FAILED, "the worker stopped following this job"))
            self._remove_job(record)
            raise

    async def _take_offer(self, record: LinkJob) -> None:
        """Ask the plugin, answer, wait for the assignment, run the job: the offer's whole life."""
        job, reservation = record.job, record.slot
        try:
            decision = await asyncio.wait_for(self._evaluator.evaluate(job),
                                              self._config.assignment_timeout)
        except Exception as exc:  # plugin code failed: refuse, the daemon goes on
            reservation.release()
            self._refuse(job, Refusal(Decision.PLUGIN_ERROR, f"request_fnc failed: {_describe(exc)}"))
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
            assignment = await asyncio.wait_for(waiter, self._config.assignment_timeout)
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
        self._count(Decision.ACCEPTED)
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
        if record.handle is not None:
            self._tasks.spawn(record.handle.terminate("terminated by the server"), f"terminate {job_id}")
        else:
            waiter = self._assignments.get(job_id)
            if waiter is not None and not waiter.done():
                waiter.set_exception(OfferWithdrawn("terminated by the server before its assignment"))

    async def _run_job(self, record: LinkJob, assignment: agent_pb.JobAssignment,
                       decision: RequestDecision) -> None:
        assert decision.accept is not None
        record.transition(JobState.LAUNCHING)
        launch = JobLaunch(
            job=assignment.job if assignment.HasField("job") else record.job,
            url=assignment.url or self._livekit.url,
            token=assignment.token,
            accept=decision.accept,
            worker_id=self.worker_id,
            plugin=self.registration.plugin,
        )
        try:
            handle = await self._launcher.launch(launch)
        except LaunchError as exc:
            self._admission.count(Decision.LAUNCH_FAILED)
            self._finish(record, JobOutcome(JobStatus.FAILED, f"could not start the job: {exc}"))
            return
        record.handle = handle
        try:
            await handle.wait_running()
        except JobEndedEarly:
            pass  # the outcome below says why
        else:
            record.transition(JobState.RUNNING)
            self._send_job_status(record.id, JobStatus.RUNNING)
            self._observer.job_running(self.registration.agent_name,
                                       time.monotonic() - record.offered_at)
        self._finish(record, await handle.wait_ended())

    def _finish(self, record: LinkJob, outcome: JobOutcome) -> None:
        ended_by = self._ended_by_roomd.pop(record.id, None)
        if ended_by is not None and outcome.status is JobStatus.SUCCESS:
            # The job did not end on its own: roomd cut it short, and the server must know.
            outcome = JobOutcome(JobStatus.FAILED, f"ended by roomd: {ended_by}")
        record.end(outcome)
        self._send_job_status(record.id, outcome.status, outcome.error)
        if record.handle is not None:
            if self._closing:
                record.handle.status_reported()
            else:
                self._tasks.spawn(self._release_after_report(record, record.handle),
                                  f"report {record.id}")
        duration = time.monotonic() - (record.running_at or record.offered_at)
        self._observer.job_ended(self.registration.agent_name, outcome, duration)
        self._remove_job(record)

    def _add_job(self, record: LinkJob) -> None:
        self._jobs[record.id] = record
        self._idle.clear()
        self._status_changed.set()

    def _remove_job(self, record: LinkJob) -> None:
        self._jobs.pop(record.id, None)
        if not self._jobs:
            self._idle.set()
        self._status_changed.set()

    # -- drain and stop ------------------------------------------------------------------
    def drain(self) -> None:
        """Refuse new offers and report FULL; running jobs go on."""
        self._draining = True
        self._status_changed.set()

    async def wait_idle(self, timeout: float) -> bool:
        """True once no job is left; False if ``timeout`` passed first."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def terminate_jobs(self, reason: str, timeout: float) -> bool:
        """Ask every running job to end (each handle escalates on its own); bounded."""
        handles = [job.handle for job in self._jobs.values() if job.handle is not None]
        for job in self._jobs.values():
            self._ended_by_roomd.setdefault(job.id, reason)
        for waiter in self._assignments.values():
            if not waiter.done():
                waiter.set_exception(OfferWithdrawn(f"not started: {reason}"))
        if handles:
            log.info("terminating jobs", count=len(handles), reason=reason)
            await asyncio.wait([asyncio.ensure_future(h.terminate(reason)) for h in handles],
                               timeout=timeout)
        return await self.wait_idle(timeout)

    async def aclose(self) -> None:
        """Flush pending statuses briefly if connected, then stop every task."""
        if self._ws is not None and self._outbox:
            try:
                async with asyncio.timeout(CLOSE_FLUSH_TIMEOUT):
                    await self._outbox_empty.wait()
            except TimeoutError:
                log.warning("closing with unsent messages", count=len(self._outbox))
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        await self._tasks.aclose()
        self._transition(LinkState.CLOSED)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
