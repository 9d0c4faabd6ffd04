"""The supervisor's side of one child process: handshake, health, jobs, logs, exit.

Every child has four owned tasks once it is prewarmed: the IPC reader, the pinger, the
memory sampler, and the exit watcher that reaps it. Whatever ends the child (its own exit,
a kill for a missed deadline, a protocol error), the exit watcher is where it is recorded:
a job still running gets a FAILED outcome naming the cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

import psutil
import structlog

from roomd.daemon.jobs import JobLaunch, JobOutcome, JobStatus, LaunchError
from roomd.daemon.plugins.limits import PoolLimits
from roomd.ipc import (
    EXIT_INIT_FAILED,
    EXIT_OK,
    EXIT_PROTOCOL_ERROR,
    EXIT_RETIRED,
    PROTOCOL_VERSION,
    Channel,
    ChannelClosed,
    DumpStacks,
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
    Ping,
    Pong,
    ProtocolError,
    RequestEvaluated,
    Shutdown,
    ShutdownAck,
    StartJob,
    StatusReported,
)
from roomd.ipc.procs import end_group, group_members
from roomd.ipc.ratelimit import TokenBucket
from roomd.ipc.tasks import TaskOwner

from .reaper import ExitStatus, wait_exit
from .handle import PoolJobHandle
from .states import CHILD_TRANSITIONS, ChildState, ExitReason, allowed

log = structlog.get_logger("roomd.pool")
child_log = structlog.get_logger("roomd.child")

_RESERVED_LOG_KEYS = frozenset({"event", "pid", "job_id", "room", "plugin", "generation", "level",
                                "logger", "timestamp", "exc_info"})
EXIT_WAIT_AFTER_KILL = 5.0
# With job_memory_limit_mb set, a child's memory (its whole process group) is sampled at
# least every LIMIT_SAMPLE_INTERVAL seconds, and every NEAR_LIMIT_SAMPLE_INTERVAL once above
# NEAR_LIMIT of the limit: the overshoot is what the job allocates between two samples.
LIMIT_SAMPLE_INTERVAL = 0.5
NEAR_LIMIT = 0.5
NEAR_LIMIT_SAMPLE_INTERVAL = 0.1


def _tree_memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS else USS else RSS) of a child and every process of its group (the helpers a
    job started count against the job's limit). ``psutil.NoSuchProcess`` if the child is gone."""
    rss = used = 0
    for index, member in enumerate([pid, *group_members(pid, exclude={pid})]):
        try:
            info = psutil.Process(member).memory_full_info()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            if index == 0:
                raise
            continue  # a helper that just ended
        rss += info.rss
        used += getattr(info, "pss", None) or getattr(info, "uss", None) or info.rss
    return rss, used


class ChildStartError(Exception):
    """The child did not become ready: the message names why (prewarm raised, timed out, died)."""


class ChildGone(Exception):
    """The child exited (or is exiting) before it could take the request."""


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


class ChildProcess:
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
    ) -> None:
        self.pid = pid
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
        self._owner = TaskOwner(f"child {pid}")
        self._channel: Channel | None = None
        self._exited: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
        self._kill_reason: str | None = None
        self._kill_category: ExitReason | None = None
        self._stop_requested = False
        self._exiting_reason = ""
        self._job: PoolJobHandle | None = None
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
    def job(self) -> PoolJobHandle | None:
        return self._job

    def _transition(self, new: ChildState, why: str = "") -> None:
        old = self._state
        if not allowed(CHILD_TRANSITIONS, old, new, f"child {self.pid}"):
            return
        self._state = new
        self._log.debug("child state", old=old.value, new=new.value, why=why or None)

    def snapshot(self) -> ChildSnapshot:
        job = self._job
        return ChildSnapshot(
            pid=self.pid, plugin=self.plugin, generation=self.generation, state=self._state.value,
            rss_bytes=self.rss_bytes, memory_bytes=self.memory_bytes,
            job_id=job.job_id if job else None, room=job.launch.job.room.name if job else None,
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
    async def start_job(self, launch: JobLaunch, credentials: ApiCredentials | None) -> PoolJobHandle:
        """Hand the job over in one StartJob message. ``ChildGone`` if the child cannot take it."""
        if self._state is not ChildState.IDLE or self._channel is None or self._channel.closed:
            raise ChildGone(f"child {self.pid} is {self._state.value}")
        record = PoolJobHandle(self, launch)
        self._job = record
        self._transition(ChildState.ASSIGNED, launch.job.id)
        self._child_log = child_log.bind(pid=self.pid, plugin=self.plugin, generation=self.generation,
                                         job_id=launch.job.id, room=launch.job.room.name)
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
        return record

    async def stop(self, reason: str, *, timeout: float | None = None) -> None:
        """Ask the child to end (Shutdown), wait for it to exit; escalate SIGTERM, then SIGKILL."""
        if self._exited.done():
            return
        if self._state is ChildState.SPAWNING or self._channel is None:
            await self.kill(reason, ExitReason.SHUTDOWN)
            return
        timeout = self._limits.shutdown_timeout if timeout is None else timeout
        self._stop_requested = True
        if self._state is not ChildState.STOPPING:
            self._transition(ChildState.STOPPING, reason)
        if not self._channel.closed:
            with contextlib.suppress(ChannelClosed, ProtocolError):
                async with asyncio.timeout(min(timeout, 1.0)):
                    await self._channel.send(Shutdown(reason=reason))
        if await self._wait_exited(timeout) is not None:
            return
        self._log.warning("child did not exit after Shutdown; sending SIGTERM", timeout=timeout, reason=reason)
        self._kill_reason = self._kill_reason or f"did not stop within {timeout}s of Shutdown ({reason})"
        self._kill_category = self._kill_category or ExitReason.STOP_TIMEOUT
        self._signal(signal.SIGTERM)
        if await self._wait_exited(self._limits.kill_grace) is not None:
            return
        await self.kill(self._kill_reason, self._kill_category)

    async def kill(self, reason: str, category: ExitReason, *, dump_stacks: bool = False) -> None:
        """SIGKILL now (after a stack dump if asked), recording why; wait (bounded) until reaped."""
        if self._exited.done():
            return
        if self._kill_reason is None:
            self._kill_reason, self._kill_category = reason, category
        if dump_stacks:
            self._log.error("dumping child stacks before killing it", reason=reason)
            if self._channel is not None:
                self._channel.try_send(DumpStacks(reason=reason))
            self._signal(signal.SIGUSR1)  # faulthandler: works even when its loop is blocked
            await self._wait_exited(0.5)
        if not self._exited.done():
            # The whole group at once: a helper past the memory limit must not go on growing.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        self._signal(signal.SIGKILL)
        await self._wait_exited(EXIT_WAIT_AFTER_KILL)

    def _signal(self, sig: signal.Signals) -> None:
        if not self._exited.done():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    async def _wait_exited(self, timeout: float) -> ExitStatus | None:
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(self._exited)
        except TimeoutError:
            return None

    async def wait_exited(self) -> ExitStatus:
        return await asyncio.shield(self._exited)

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
            if job is None or job.job_id != message.job_id:
                raise ProtocolError(f"JobStarted for {message.job_id!r}, which this child was not given")
            if self._state is ChildState.ASSIGNED:  # (it may be STOPPING already: Shutdown crossed it)
                self._transition(ChildState.RUNNING, message.job_id)
            job.ran = True
            job.started.set()
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
        if job is None or job.job_id != message.job_id:
            raise ProtocolError(f"JobEnding for {message.job_id!r}, which this child was not running")
        status = JobStatus.SUCCESS if message.status == "SUCCESS" else JobStatus.FAILED
        job.end(JobOutcome(status, message.error))
        job.started.set()

    def status_reported(self, job_id: str) -> None:
        """The server has the job's final status: let the child leave the room."""
        if self._channel is not None and not self._channel.closed and not self._exited.done():
            self._channel.try_send(StatusReported(job_id=job_id))

    def _job_ended(self, message: JobEnded) -> None:
        job = self._job
        if job is None or job.job_id != message.job_id:
            raise ProtocolError(f"JobEnded for {message.job_id!r}, which this child was not running")
        status = JobStatus.SUCCESS if message.status == "SUCCESS" else JobStatus.FAILED
        self._child_log.info("job ended", status=status.name, error=message.error or None,
                             reason=message.reason)
        job.end(JobOutcome(status, message.error))
        job.started.set()  # a job that ended is no longer waited on as "starting"
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

    async def _expect_exit(self, timeout: float) -> None:
        if await self._wait_exited(timeout) is None:
            await self.kill(f"did not exit within {timeout}s after its last job", ExitReason.STOP_TIMEOUT)

    async def _ping_loop(self) -> None:
        assert self._channel is not None
        seq = 0
        interval, deadline = self._limits.ping_interval, self._limits.ping_timeout
        while True:
            await asyncio.sleep(interval)
            silent = time.monotonic() - self._last_pong
            if silent > deadline:
                self._log.error("child unresponsive", silent_seconds=round(silent, 2), ping_timeout=deadline,
                                job_id=self._job.job_id if self._job else None)
                self._owner.spawn(self.kill(f"unresponsive (no pong for {silent:.1f}s)", ExitReason.UNRESPONSIVE,
                                            dump_stacks=True), "kill unresponsive")
                return
            seq += 1
            # try_send: a child that does not read must not block the pinger; its silence is the signal.
            self._channel.try_send(Ping(seq=seq, supervisor_ts=time.monotonic()))

    async def _memory_loop(self) -> None:
        lim = self._limits
        last_warned_at: float | None = None
        last_warned_mb = 0.0
        failures = 0
        while True:
            try:
                rss, used = _tree_memory(self.pid)
                failures = 0
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                return  # the exit watcher takes it from here
            except (OSError, psutil.Error) as exc:
                # Transient (EMFILE, ENOMEM): this task must not die, or no limit would hold.
                failures += 1
                if failures == 1 or failures % 100 == 0:
                    self._log.warning("memory sample failed; retrying", error=str(exc), failures=failures)
                await asyncio.sleep(lim.memory_sample_interval)
                continue
            self.rss_bytes, self.memory_bytes = rss, used
            mb = used / (1024 * 1024)
            if lim.job_memory_limit_mb and mb > lim.job_memory_limit_mb:
                reason = f"memory limit exceeded ({mb:.0f} MB > {lim.job_memory_limit_mb:.0f} MB)"
                self._log.error("child over memory limit; killing it", memory_mb=round(mb, 1),
                                limit_mb=lim.job_memory_limit_mb,
                                job_id=self._job.job_id if self._job else None)
                self._owner.spawn(self.kill(reason, ExitReason.MEMORY_LIMIT), "kill over memory")
                return
            now = time.monotonic()
            if (lim.job_memory_warn_mb and mb > lim.job_memory_warn_mb
                    and (last_warned_at is None or now - last_warned_at >= lim.memory_warn_interval)):
                self._log.warning("child memory above warning level", memory_mb=round(mb, 1),
                                  warn_mb=lim.job_memory_warn_mb,
                                  growth_mb=round(mb - last_warned_mb, 1) if last_warned_at else None,
                                  job_id=self._job.job_id if self._job else None)
                last_warned_at, last_warned_mb = now, mb
            interval = lim.memory_sample_interval
            if lim.job_memory_limit_mb:
                # Growth between two samples is the overshoot: with a limit set, look often,
                # and very often near it.
                interval = min(interval, NEAR_LIMIT_SAMPLE_INTERVAL if mb > lim.job_memory_limit_mb * NEAR_LIMIT
                               else LIMIT_SAMPLE_INTERVAL)
            await asyncio.sleep(interval)

    async def _watch_exit(self) -> None:
        status = await wait_exit(self.pid)
        if self._reader is not None and not self._reader.done():
            # What the child sent before exiting (JobEnded, Exiting) is still in the socket: read it
            # before judging how the job ended. Bounded: a grandchild may hold the socket open.
            await asyncio.wait({self._reader}, timeout=1.0)
        self.exit_status = status
        category = self._classify(status)
        self.exit_reason = category
        self._exited.set_result(status)
        job = self._job
        if job is not None and not job.outcome.done():
            error = self._kill_reason or f"child exited unexpectedly ({status.describe()})"
            if self._kill_category == ExitReason.MEMORY_LIMIT or self._kill_category == ExitReason.UNRESPONSIVE:
                error = self._kill_reason or error
            job.end(JobOutcome(JobStatus.FAILED, error))
            job.started.set()
            self._child_log.error("job failed: child ended", error=error, exit=status.describe())
        self._job = None
        for pending in list(self._evaluations.values()):
            if not pending.done():
                pending.set_exception(ChildGone(f"child {self.pid} exited ({status.describe()})"))
        previous = self._state
        self._transition(ChildState.EXITED, category)
        level = "info" if category in (ExitReason.RETIRED, ExitReason.SHUTDOWN) else "warning"
        getattr(self._log, level)("child exited", exit=status.describe(), reason=category,
                                  previous_state=previous.value, detail=self._kill_reason or self._exiting_reason
                                  or None)
        self._on_exit(self, category)
        # What the child started and left behind (it was killed mid-job, or a helper ignored
        # its SIGTERM) is in its process group: end it too, so no helper outlives its job.
        try:
            leftovers = await end_group(self.pid, self._limits.kill_grace)
        except OSError as exc:  # /proc unreadable (EMFILE): the orphan reaper still reaps them
            self._log.warning("could not end what the child left behind", error=str(exc))
        else:
            if leftovers:
                self._log.warning("ended processes the child left behind", pids=leftovers)
        if self._channel is not None:
            await self._channel.aclose(flush_timeout=0.1)
        else:
            self._sock.close()
        await self._owner.aclose(timeout=1.0)

    def _classify(self, status: ExitStatus) -> ExitReason:
        if self._kill_category is not None:
            return self._kill_category
        if status.exit_code == EXIT_RETIRED:
            return ExitReason.RETIRED
        if status.exit_code == EXIT_OK and self._stop_requested:
            return ExitReason.SHUTDOWN
        if status.exit_code == EXIT_INIT_FAILED:
            return ExitReason.INIT_FAILED
        if status.exit_code == EXIT_PROTOCOL_ERROR:
            return ExitReason.PROTOCOL_ERROR
        if status.signal is not None:
            return ExitReason.KILLED
        return ExitReason.CRASHED

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
