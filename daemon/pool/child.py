"""The supervisor's side of one child process: handshake, health, jobs, logs, exit.

Every child has four owned tasks once it is prewarmed: the IPC reader, the pinger, the
memory sampler, and the exit watcher that reaps it. Whatever ends the child (its own exit,
a kill for a missed deadline, a protocol error), the exit watcher is where it is recorded:
a job still running gets a FAILED outcome naming the cause.

The pinger and memory sampler live in health.py (``ChildHealth``), stopping, killing and
the exit watcher in ending.py (``ChildEnding``); this module keeps the handshake, the
job hand-over and the messages the child sends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from roomd.daemon.jobs import Job, JobLaunch, JobOutcome, JobStatus, LaunchError
from roomd.daemon.plugins.limits import PoolLimits
from roomd.ipc import (
    PROTOCOL_VERSION,
    Channel,
    ChannelClosed,
    EvaluateRequest,
    Exiting,
    Hello,
    Initialize,
    Initialized,
    JobEnded,
    JobEnding,
    JobStarted,
    Limits,
    Log,
    Message,
    Metrics,
    MetricSample,
    ParticipantInfo,
    Pong,
    ProtocolError,
    RequestEvaluated,
    ShutdownAck,
    StartJob,
    StatusReported,
)
from roomd.ipc.ratelimit import TokenBucket
from roomd.ipc.tasks import TaskOwner

from roomd.daemon.transitions import TransitionCounter, allowed

from .ending import EXIT_WAIT_AFTER_KILL, ChildEnding, ChildGone
from .health import ChildHealth
from .memory_cgroup import ChildCgroup
from .reaper import ExitStatus
from .states import CHILD_TRANSITIONS, ChildState, ExitReason

log = structlog.get_logger("roomd.pool")
child_log = structlog.get_logger("roomd.child")
_debug_enabled = logging.getLogger("roomd.pool").isEnabledFor  # as in roomd.daemon.jobs

_RESERVED_LOG_KEYS = frozenset({"event", "pid", "job_id", "room", "plugin", "generation", "level",
                                "logger", "timestamp", "exc_info"})
class ChildStartError(Exception):
    """The child did not become ready: the message names why (prewarm raised, timed out, died)."""


@dataclasses.dataclass(frozen=True)
class ApiCredentials:
    api_key: str
    api_secret: str = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class ChildSnapshot:
    """One child as /status shows it."""

    pid: int
    plugin: str
    generation: int
    state: str
    rss_bytes: int | None
    memory_bytes: int | None  # PSS, else USS, else RSS
    job_id: str | None
    room: str | None
    jobs_done: int
    age_seconds: float
    ipc_rtt_seconds: float | None


class ChildProcess(ChildHealth, ChildEnding):
    def __init__(
        self,
        *,
        pid: int,
        sock: socket.socket,
        plugin: str,
        target: str,
        generation: int,
        limits: PoolLimits,
        on_idle: Callable[[ChildProcess], None],
        on_exit: Callable[[ChildProcess, ExitReason], None],
        rtt_sink: Callable[[float], None] = lambda _rtt: None,
        metrics_sink: Callable[[Sequence[MetricSample]], None] = lambda _samples: None,
        transitions: TransitionCounter | None = None,
        cgroup: ChildCgroup | None = None,
    ) -> None:
        self.pid = pid
        self._cgroup = cgroup  # its memory cgroup, where the kernel holds the limit
        self.plugin = plugin
        self.generation = generation
        self._target = target
        self._sock = sock
        self._limits = limits
        self._on_idle = on_idle
        self._on_exit = on_exit
        self._rtt_sink = rtt_sink
        self._metrics_sink = metrics_sink
        self._state = ChildState.SPAWNING
        self._transitions = transitions or TransitionCounter()
        self._owner = TaskOwner(f"child {pid}")
        self._channel: Channel | None = None
        self._exited: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
        self._kill_reason: str | None = None
        self._kill_category: ExitReason | None = None
        self._stop_requested = False
        self._exiting_reason = ""
        self._job: Job | None = None
        self._evaluations: dict[int, asyncio.Future[RequestEvaluated]] = {}
        self._log_bucket = TokenBucket(limits.log_rate * 2, limits.log_burst * 2)
        self._log = log.bind(pid=pid, plugin=plugin, generation=generation)
        self._child_log = child_log.bind(pid=pid, plugin=plugin, generation=generation)
        self.created_at = time.monotonic()
        self.jobs_done = 0
        self.rss_bytes: int | None = None
        self.memory_bytes: int | None = None
        self.last_rtt: float | None = None
        self.logs_dropped = 0
        self.exit_status: ExitStatus | None = None
        self.exit_reason: ExitReason | None = None
        self._last_pong = time.monotonic()
        self._reader: asyncio.Task[None] | None = None

    # -- state ----------------------------------------------------------------------------
    @property
    def state(self) -> ChildState:
        return self._state

    @property
    def job(self) -> Job | None:
        return self._job

    def _transition(self, new: ChildState, why: str = "") -> None:
        old = self._state
        if not allowed(CHILD_TRANSITIONS, old, new, f"child {self.pid}"):
            return
        self._state = new
        self._transitions.count("child", old, new)
        if _debug_enabled(logging.DEBUG):
            self._log.debug("child state", old=old.value, new=new.value, why=why or None)

    def snapshot(self) -> ChildSnapshot:
        job = self._job
        return ChildSnapshot(
            pid=self.pid, plugin=self.plugin, generation=self.generation, state=self._state.value,
            rss_bytes=self.rss_bytes, memory_bytes=self.memory_bytes,
            job_id=job.id if job else None, room=job.job.room.name if job else None,
            jobs_done=self.jobs_done, age_seconds=time.monotonic() - self.created_at,
            ipc_rtt_seconds=self.last_rtt,
        )

    # -- start ----------------------------------------------------------------------------
    async def start(self, *, run_prewarm: bool = True) -> None:
        """Handshake and prewarm, under ``initialize_timeout``; raise ``ChildStartError`` on failure."""
        self._owner.spawn(self._watch_exit(), "exit watcher")
        timeout = self._limits.initialize_timeout
        try:
            self._channel = await Channel.from_socket(self._sock)
            async with asyncio.timeout(timeout):
                initialized = await self._handshake(run_prewarm)
        except TimeoutError:
            await self.kill(f"did not initialize within {timeout}s", ExitReason.INIT_TIMEOUT, dump_stacks=True)
            raise ChildStartError(f"child did not initialize within {timeout}s (killed)") from None
        except ProtocolError as exc:
            await self.kill(f"protocol error: {exc}", ExitReason.PROTOCOL_ERROR)
            raise ChildStartError(f"protocol error during initialization: {exc}") from None
        except ChannelClosed:
            status = await self._wait_exited(EXIT_WAIT_AFTER_KILL)
            raise ChildStartError(f"child exited during initialization ({status})") from None
        if initialized.error:
            self._kill_category = ExitReason.INIT_FAILED
            await self._wait_exited(2.0)
            if self.exit_status is None:
                await self.kill(initialized.error, ExitReason.INIT_FAILED)
            raise ChildStartError(initialized.error)
        self._last_pong = time.monotonic()
        self._transition(ChildState.IDLE, "prewarmed")
        self._reader = self._owner.spawn(self._read_loop(), "ipc reader")
        self._owner.spawn(self._ping_loop(), "pinger")
        self._owner.spawn(self._memory_loop(), "memory sampler")

    async def _handshake(self, run_prewarm: bool) -> Initialized:
        channel = self._channel
        assert channel is not None
        hello = await channel.recv()
        if not isinstance(hello, Hello):
            raise ProtocolError(f"expected Hello first, got {type(hello).__name__}")
        if hello.protocol_version != PROTOCOL_VERSION:
            raise ProtocolError(f"child speaks protocol {hello.protocol_version}, the supervisor "
                                f"speaks {PROTOCOL_VERSION}: mixed roomd versions?")
        await channel.send(Hello(protocol_version=PROTOCOL_VERSION, pid=os.getpid()))
        lim = self._limits
        await channel.send(Initialize(
            target=self._target, plugin=self.plugin, generation=self.generation, run_prewarm=run_prewarm,
            limits=Limits(initialize_timeout=lim.initialize_timeout, shutdown_timeout=lim.shutdown_timeout,
                          max_jobs_per_process=lim.max_jobs_per_process,
                          log_level=lim.log_level,  # type: ignore[arg-type]
                          log_rate=lim.log_rate, log_burst=lim.log_burst),
        ))
        while True:
            message = await channel.recv()
            if isinstance(message, Initialized):
                return message
            if isinstance(message, Log):
                self._emit_child_log(message)
            elif isinstance(message, Exiting):
                self._exiting_reason = message.reason
            else:
                raise ProtocolError(f"unexpected {type(message).__name__} before Initialized")

    # -- jobs -----------------------------------------------------------------------------
    async def start_job(self, job: Job, launch: JobLaunch, credentials: ApiCredentials | None) -> None:
        """Hand ``job`` over in one StartJob message, and run it from then on. ``ChildGone`` if the
        child cannot take it."""
        if self._state is not ChildState.IDLE or self._channel is None or self._channel.closed:
            raise ChildGone(f"child {self.pid} is {self._state.value}")
        self._job = job
        self._transition(ChildState.ASSIGNED, launch.job.id)
        accept = launch.accept
        try:
            await self._channel.send(StartJob(
                job=launch.job.SerializeToString(), url=launch.url, token=launch.token,
                accept=ParticipantInfo(identity=accept.identity, name=accept.name, metadata=accept.metadata,
                                       attributes=dict(accept.attributes)),
                worker_id=launch.worker_id,
                api_key=credentials.api_key if credentials else "",
                api_secret=credentials.api_secret if credentials else "",
            ))
        except ChannelClosed as exc:
            self._job = None
            raise ChildGone(f"child {self.pid} closed its channel: {exc}") from None
        except ProtocolError as exc:  # e.g. job metadata beyond the frame limit
            self._job = None
            self._transition(ChildState.IDLE, "job could not be sent")
            raise LaunchError(f"job {launch.job.id} cannot be sent to a child: {exc}") from None
        job.runner = self
        # After the send (the child's lines are read by another task, which runs after this).
        self._child_log = child_log.bind(pid=self.pid, plugin=self.plugin, generation=self.generation,
                                         job_id=launch.job.id, room=launch.job.room.name)

    # -- plugin questions -----------------------------------------------------------------
    async def evaluate(self, request_id: int, job: bytes, timeout: float) -> RequestEvaluated:
        future: asyncio.Future[RequestEvaluated] = asyncio.get_running_loop().create_future()
        self._evaluations[request_id] = future
        try:
            await self._send_or_gone(EvaluateRequest(request_id=request_id, job=job))
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self._evaluations.pop(request_id, None)

    async def _send_or_gone(self, message: Message) -> None:
        if self._channel is None or self._exited.done():
            raise ChildGone(f"child {self.pid} has exited")
        try:
            await self._channel.send(message)
        except ChannelClosed as exc:
            raise ChildGone(str(exc)) from None

    # -- owned tasks ----------------------------------------------------------------------
    async def _read_loop(self) -> None:
        assert self._channel is not None
        try:
            while True:
                self._dispatch(await self._channel.recv())
        except ProtocolError as exc:
            self._log.error("protocol error from child; ending it", error=str(exc))
            await self.kill(f"protocol error: {exc}", ExitReason.PROTOCOL_ERROR)
        except ChannelClosed:
            pass  # the exit watcher records how it ended

    def _dispatch(self, message: Message) -> None:
        if isinstance(message, Pong):
            now = time.monotonic()
            self._last_pong = now
            self.last_rtt = now - message.supervisor_ts
            self._rtt_sink(self.last_rtt)
        elif isinstance(message, Log):
            self._emit_child_log(message)
        elif isinstance(message, JobStarted):
            job = self._job
            if job is None or job.id != message.job_id:
                raise ProtocolError(f"JobStarted for {message.job_id!r}, which this child was not given")
            if self._state is ChildState.ASSIGNED:  # (it may be STOPPING already: Shutdown crossed it)
                self._transition(ChildState.RUNNING, message.job_id)
            job.entrypoint_started()
        elif isinstance(message, JobEnding):
            self._job_ending(message)
        elif isinstance(message, JobEnded):
            self._job_ended(message)
        elif isinstance(message, Metrics):
            self._metrics_sink(message.samples)  # judged there: only known names become series
        elif isinstance(message, Exiting):
            self._exiting_reason = message.reason
            if self._state in (ChildState.IDLE, ChildState.ASSIGNED, ChildState.RUNNING):
                self._transition(ChildState.STOPPING, message.reason)
        elif isinstance(message, ShutdownAck):
            pass  # stop() waits for the exit itself, which follows the ack
        elif isinstance(message, RequestEvaluated):
            pending = self._evaluations.get(message.request_id)
            if pending is not None and not pending.done():
                pending.set_result(message)
        else:
            raise ProtocolError(f"unexpected {type(message).__name__} from a child")

    def _job_ending(self, message: JobEnding) -> None:
        """The final status, while the agent is still in its room: report it now (the link
        answers with ``status_reported``); the child stays busy until ``JobEnded``."""
        job = self._job
        if job is None or job.id != message.job_id:
            raise ProtocolError(f"JobEnding for {message.job_id!r}, which this child was not running")
        status = JobStatus.SUCCESS if message.status == "SUCCESS" else JobStatus.FAILED
        job.run_ended(JobOutcome(status, message.error))

    def status_reported(self, job_id: str) -> None:
        """The server has the job's final status: let the child leave the room."""
        if self._channel is not None and not self._channel.closed and not self._exited.done():
            self._channel.try_send(StatusReported(job_id=job_id))

    def _job_ended(self, message: JobEnded) -> None:
        job = self._job
        if job is None or job.id != message.job_id:
            raise ProtocolError(f"JobEnded for {message.job_id!r}, which this child was not running")
        status = JobStatus.SUCCESS if message.status == "SUCCESS" else JobStatus.FAILED
        self._child_log.info("job ended", status=status.name, error=message.error or None,
                             reason=message.reason)
        job.run_ended(JobOutcome(status, message.error))
        self._job = None
        self.jobs_done += 1
        self._child_log = child_log.bind(pid=self.pid, plugin=self.plugin, generation=self.generation)
        if self._state is ChildState.STOPPING:
            return
        if self.jobs_done >= self._limits.max_jobs_per_process:
            self._transition(ChildState.STOPPING, "retiring")  # it exits with EXIT_RETIRED
            self._owner.spawn(self._expect_exit(self._limits.shutdown_timeout), "retire deadline")
        else:
            self._transition(ChildState.IDLE, "job ended")
            self._on_idle(self)

    def _report_exit(self, reason: ExitReason) -> None:
        self._on_exit(self, reason)

    def _emit_child_log(self, message: Log) -> None:
        if not self._log_bucket.take():
            self.logs_dropped += 1
            return
        fields: dict[str, Any] = {
            (f"child_{key}" if key in _RESERVED_LOG_KEYS else key): value for key, value in message.fields.items()
        }
        if message.logger:
            fields["child_logger"] = message.logger
        emit = getattr(self._child_log, message.level, self._child_log.info)
        emit(message.event, **fields)

    async def aclose(self) -> None:
        """Stop (bounded) and make sure the process is reaped."""
        await self.stop("pool closing")
        if not self._exited.done():
            await self.kill("pool closing", ExitReason.SHUTDOWN)
