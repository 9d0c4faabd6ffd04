"""The link to one LiveKit server for one agent: registration, offers, statuses, reconnects.

The protocol (livekit.protocol.agent): after a websocket handshake at ``/agent`` we send
``RegisterWorkerRequest`` and the server's first message must be
``RegisterWorkerResponse``. Then the server offers jobs (``AvailabilityRequest``); we
answer (``AvailabilityResponse``), it assigns (``JobAssignment`` with the room token),
and we report the job's life (``UpdateJobStatus``) and our own (``UpdateWorkerStatus``).

Jobs do not belong to the socket: they run in pool children and outlive a reconnect.
Their statuses go through a durable outbox that is flushed, in order, once we are
registered again, so the server hears every job's true end.

This module keeps the connection (register, serve, reconnect, drain, close); the job path is
``OfferHandling`` in offers.py and what the link sends is outbox.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from typing import Protocol

import aiohttp
import structlog
from livekit import api
from livekit.protocol import agent as agent_pb
from livekit.protocol import models as models_pb

from roomd.daemon.admission import Admission, Decision
from roomd.daemon.config import LinkConfig, LiveKitConfig
from roomd.daemon.jobs import (
    Job,
    JobLauncher,
    JobOutcome,
    JobState,
)
from roomd.daemon.transitions import TransitionCounter, allowed
from roomd.ipc.errors import ProtocolError
from roomd.ipc.tasks import TaskOwner
from roomd.ipc.worker import WorkerPermissions, WorkerType

from .evaluators import RequestEvaluator
from .offers import OfferHandling, RefusedOffer, describe_error
from .outbox import Outbox, StatusReporter
from .states import LINK_TRANSITIONS, LinkState
from .url import agent_websocket_url

log = structlog.get_logger("roomd.link")

REGISTER_TIMEOUT = 10.0
CLOSE_FLUSH_TIMEOUT = 2.0


class LinkFailed(RuntimeError):
    """The server could not be reached: the first attempt and ``max_retry`` retries failed."""


@dataclasses.dataclass(frozen=True)
class AgentRegistration:
    """What we register as: one plugin's identity on the server."""

    plugin: str
    agent_name: str
    worker_type: WorkerType = WorkerType.ROOM
    permissions: WorkerPermissions = dataclasses.field(default_factory=WorkerPermissions)
    version: str = ""


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


class ServerLink(OfferHandling):
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
        transitions: TransitionCounter | None = None,
    ) -> None:
        self._livekit = livekit
        self._config = config
        self.registration = registration
        self._admission = admission
        self._evaluator = evaluator
        self._launcher = launcher
        self._observer: LinkObserver = observer or NullObserver()
        self._state = LinkState.CONNECTING
        self._transitions = transitions or TransitionCounter()
        self._tasks = TaskOwner(f"link {registration.agent_name or registration.plugin}")
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._draining = False
        self._closing = False
        self._outbox = Outbox()
        self._status = StatusReporter(
            agent_name=registration.agent_name, admission=admission, outbox=self._outbox,
            interval=config.status_interval, active_jobs=self._active_jobs,
            draining=lambda: self._draining)
        self._registered = asyncio.Event()
        self._state_changed = asyncio.Event()
        self._init_jobs()
        self.worker_id = ""
        self.rtt: float | None = None
        self.reconnects = 0
        admission.add_listener(self._status.changed.set)

    @property
    def reported_load(self) -> float:
        """The load last reported to the server."""
        return self._status.reported_load

    # -- state ---------------------------------------------------------------------------
    @property
    def state(self) -> LinkState:
        return self._state

    @property
    def jobs(self) -> dict[str, Job]:
        return dict(self._jobs)

    def _transition(self, new: LinkState, why: str = "") -> None:
        if self._closing and new is not LinkState.CLOSED:
            return  # a connect attempt that ends after aclose() began is not news
        if not allowed(LINK_TRANSITIONS, self._state, new, f"link {self.registration.agent_name!r}"):
            return
        log.info("link state", agent=self.registration.agent_name, old=self._state.value,
                 new=new.value, why=why)
        self._transitions.count("link", self._state, new)
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
                    reason = describe_error(exc)
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
        self._outbox.drop("availability")
        running = [job.id for job in self._jobs.values() if job.state is not JobState.OFFERED]
        if running:
            # After a reconnect the server must learn that these jobs still run here.
            self._outbox.send_first(agent_pb.WorkerMessage(
                migrate_job=agent_pb.MigrateJobRequest(job_ids=running)))
            log.info("announced running jobs after reconnect", job_ids=running)
        connection = TaskOwner(f"connection {self.worker_id}")
        connection.spawn(self._outbox.run(ws), "sender")
        connection.spawn(self._status.run(), "worker status")
        connection.spawn(self._ping_loop(), "ping")
        self._status.changed.set()
        self._outbox.wake()
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
            self._outbox.pong(message.pong.last_timestamp)
        elif kind == "register":
            raise ProtocolError("a second RegisterWorkerResponse on a registered connection")
        else:
            log.info("ignoring server message", kind=kind)

    async def _ping_loop(self) -> None:
        while True:
            self._outbox.ping()
            await asyncio.sleep(self._config.ping_interval)

    # -- drain and stop ------------------------------------------------------------------
    def drain(self) -> None:
        """Refuse new offers and report FULL; running jobs go on."""
        self._draining = True
        self._status.changed.set()

    async def aclose(self) -> None:
        """Flush pending statuses briefly if connected, then stop every task."""
        if self._ws is not None and self._outbox and not await self._outbox.flushed(
                CLOSE_FLUSH_TIMEOUT):
            log.warning("closing with unsent messages", count=len(self._outbox))
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        await self._tasks.aclose()
        self._transition(LinkState.CLOSED)
