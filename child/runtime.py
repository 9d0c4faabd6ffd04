"""The child's main loop after the fork: handshake, prewarm, then serve the supervisor.

A child answers Pings, runs at most one job at a time, evaluates job requests for its
plugin, and exits when told (Shutdown), when retired (max_jobs_per_process), when the
supervisor goes away (end of stream) or on a protocol error (with ``EXIT_PROTOCOL_ERROR``).
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import inspect
import os
import signal
import socket
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, NoReturn

import structlog
from livekit.protocol import agent as agent_pb

from roomd.agents.job import JobContext, JobProcess, RunningJobInfo
from roomd.agents.job_request import AcceptArguments, JobRequest
from roomd.agents.worker_options import WorkerOptions
from roomd.ipc import (
    EXIT_INIT_FAILED,
    EXIT_INTERNAL_ERROR,
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
from roomd.ipc.exits import exit_now
from roomd.ipc.procs import end_group, reap_children, zombie_children
from roomd.ipc.tasks import TaskOwner

from . import logs
from .job_runner import JobResult, StartedJob, run_job, start_entrypoint

if TYPE_CHECKING:  # the voice package imports livekit.rtc (numpy): not for every zygote to pay
    from livekit import rtc

    from roomd.agents.voice.metrics_report import LatencySample

log = structlog.get_logger("roomd.child")

REQUEST_TIMEOUT = 10.0  # request_fnc must answer well inside the server's availability window


class ChildRuntime:
    def __init__(self, sock: socket.socket, options: WorkerOptions, proc: JobProcess, target: str) -> None:
        self._sock = sock
        self._options = options
        self._proc = proc
        self._target = target
        self._tasks = TaskOwner("child", on_error=self._task_failed)
        self._exit: asyncio.Future[tuple[int, str]] | None = None
        self._job_task: asyncio.Task[None] | None = None
        self._ctx: JobContext | None = None
        self._limits: Limits | None = None
        self._jobs_done = 0
        self._shutting_down = False
        self._status_reported: asyncio.Future[None] | None = None
        # The next job's room, made while idle: a new rtc.Room costs ~0.1 ms in a child just
        # woken by its StartJob, on the way to the entrypoint.
        self._next_room: rtc.Room | None = None

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        return self._tasks.spawn(coro, name)

    def _task_failed(self, name: str, exc: BaseException) -> None:
        if isinstance(exc, ProtocolError):
            self._finish(EXIT_PROTOCOL_ERROR, f"protocol error: {exc}")
        elif isinstance(exc, ChannelClosed):
            self._finish(EXIT_OK, "supervisor closed the channel")
        else:
            self._finish(EXIT_INTERNAL_ERROR, f"internal error in {name}: {type(exc).__name__}: {exc}")

    def _finish(self, code: int, reason: str) -> None:
        if self._exit is not None and not self._exit.done():
            self._exit.set_result((code, reason))

    async def run(self) -> int:
        self._exit = asyncio.get_running_loop().create_future()
        channel = self._channel = await Channel.from_socket(self._sock)
        try:
            code = await self._start()
            if code is not None:
                return code
            self._spawn(self._read_loop(), "ipc reader")
            code, reason = await self._exit
            if code != EXIT_OK or reason != "shutdown":
                with contextlib.suppress(ChannelClosed, ProtocolError):
                    await channel.send(Exiting(reason=reason, exit_code=code))
            return code
        except ProtocolError as exc:
            print(f"roomd child {os.getpid()}: protocol error: {exc}", file=sys.stderr)
            with contextlib.suppress(Exception):
                await channel.send(Exiting(reason=f"protocol error: {exc}", exit_code=EXIT_PROTOCOL_ERROR))
            return EXIT_PROTOCOL_ERROR
        except ChannelClosed:
            return EXIT_OK
        finally:
            await self._tasks.aclose(timeout=None)
            await channel.aclose(flush_timeout=1.0)

    async def _start(self) -> int | None:
        channel = self._channel
        await channel.send(Hello(protocol_version=PROTOCOL_VERSION, pid=os.getpid()))
        hello = await channel.recv()
        if not isinstance(hello, Hello):
            raise ProtocolError(f"expected Hello first, got {type(hello).__name__}")
        if hello.protocol_version != PROTOCOL_VERSION:
            raise ProtocolError(f"supervisor speaks protocol {hello.protocol_version}, "
                                f"this child speaks {PROTOCOL_VERSION}")
        init = await channel.recv()
        if not isinstance(init, Initialize):
            raise ProtocolError(f"expected Initialize, got {type(init).__name__}")
        if init.target != self._target:
            raise ProtocolError(f"Initialize names plugin {init.target!r}, this zygote loaded {self._target!r}")
        self._limits = init.limits
        forwarder = logs.LogForwarder(channel, rate=init.limits.log_rate, burst=init.limits.log_burst,
                                      context=self._log_context)
        logs.install(forwarder, init.limits.log_level)
        self._forwarder = forwarder
        self._spawn(forwarder.report_drops(), "log drop reporter")
        error = await self._prewarm(init.limits.initialize_timeout, init.run_prewarm)
        if not error:
            self._rehearse()
        await channel.send(Initialized(error=error))
        if error:
            await channel.flush()
            return EXIT_INIT_FAILED
        return None

    def _log_context(self) -> dict[str, Any]:
        return dict(self._ctx.log_context_fields) if self._ctx is not None else {}

    async def _prewarm(self, timeout: float, run_prewarm: bool) -> str:
        for name in ("initialize_process_fnc", "prewarm_fnc") if run_prewarm else ("initialize_process_fnc",):
            fnc = getattr(self._options, name)
            if fnc is None:
                continue
            try:
                # Sync functions run to completion here; the supervisor's deadline covers them.
                result = fnc(self._proc)
                if inspect.isawaitable(result):
                    async with asyncio.timeout(timeout):
                        await result
            except TimeoutError:
                return f"{name} did not finish within {timeout}s"
            except Exception as exc:
                log.error(f"{name} raised", exc_info=exc)
                return f"{name} raised {type(exc).__name__}: {exc}"
        return ""

    async def _read_loop(self) -> None:
        channel = self._channel
        while True:
            message = await channel.recv()
            if isinstance(message, Ping):
                await channel.send(Pong(seq=message.seq, supervisor_ts=message.supervisor_ts,
                                        child_ts=time.monotonic()))
            elif isinstance(message, StartJob):
                if self._job_task is not None:
                    raise ProtocolError("StartJob while a job is running")
                # Here, not in a task of its own: the entrypoint starts one turn of the loop sooner.
                started = await self._start_job(message)
                self._job_task = self._spawn(self._job(started), "job")
            elif isinstance(message, StatusReported):
                waiter = self._status_reported
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
            elif isinstance(message, Shutdown):
                self._spawn(self._shutdown(message.reason), "shutdown")
            elif isinstance(message, DumpStacks):
                await channel.send(Log(level="warning", event="stack dump", logger="roomd.child",
                                       fields={"reason": message.reason, "stacks": _stacks()}))
            elif isinstance(message, EvaluateRequest):
                self._spawn(self._evaluate(message), f"evaluate request {message.request_id}")
            else:
                raise ProtocolError(f"unexpected {type(message).__name__} from the supervisor")

    async def _shutdown(self, reason: str) -> None:
        self._shutting_down = True
        if self._job_task is not None and self._ctx is not None:
            self._ctx.shutdown(reason)
            await asyncio.wait({self._job_task})
        await self._channel.send(ShutdownAck())
        self._finish(EXIT_OK, "shutdown")

    async def _start_job(self, start: StartJob) -> StartedJob:
        """Announce the job, then start its entrypoint. Does not suspend unless the channel's
        queue is backed up."""
        room, self._next_room = self._next_room, None
        if room is None:  # the zygote did not import livekit.rtc: the first job does
            from livekit import rtc  # only ever after the fork: the SDK starts native threads

            room = rtc.Room()
        ctx = self._ctx = self._context(start, room)
        entrypoint = self._options.entrypoint_fnc
        assert entrypoint is not None
        # Announced first, and flushed: an entrypoint that blocks the loop at once must not
        # also swallow the JobStarted that tells the supervisor whose job it is.
        await self._channel.send(JobStarted(job_id=ctx.job.id))
        await self._channel.flush()
        return start_entrypoint(ctx, entrypoint)

    async def _job(self, started: StartedJob) -> None:
        assert self._limits is not None
        job = started.ctx.job

        status_wait = max(0.1, min(10.0, self._limits.shutdown_timeout / 3))

        async def on_result(result: JobResult) -> None:
            # Still in the room: the final status must reach the server before we leave it.
            self._status_reported = asyncio.get_running_loop().create_future()
            await self._channel.send(JobEnding(job_id=job.id, status=result.status,  # type: ignore[arg-type]
                                               error=result.error, reason=result.reason))
            try:
                async with asyncio.timeout(status_wait):
                    await self._status_reported
            except TimeoutError:
                log.warning("final job status not confirmed by the server; leaving the room anyway",
                            waited_seconds=status_wait)
            finally:
                self._status_reported = None

        try:
            result = await run_job(started, shutdown_timeout=self._limits.shutdown_timeout, on_result=on_result)
        except Exception as exc:  # the runner itself failed: still a true, FAILED job
            log.error("job runner failed", exc_info=exc)
            result_status, result_error, result_reason = "FAILED", f"{type(exc).__name__}: {exc}", "runner error"
        else:
            result_status, result_error, result_reason = result.status, result.error, result.reason
        try:
            ended = await end_group(os.getpid(), status_wait, exclude={os.getpid()})
            if ended:  # a job's helpers end with it (grace, then SIGKILL), so none outlives it
                log.info("ended the job's helper processes", pids=ended)
            reap_children(zombie_children(os.getpid()))  # helpers that exited, never waited for
        except OSError as exc:  # /proc unreadable (EMFILE): the supervisor ends them with the child
            log.warning("could not end the job's helper processes", error=str(exc))
        await self._forwarder.report_now()  # while the supervisor still binds this job to our events
        await self._channel.send(JobEnded(job_id=job.id, status=result_status,  # type: ignore[arg-type]
                                          error=result_error, reason=result_reason))
        self._jobs_done += 1
        if self._jobs_done >= self._limits.max_jobs_per_process and not self._shutting_down:
            self._finish(EXIT_RETIRED, f"retired after {self._jobs_done} job(s)")
        self._ctx = None
        self._job_task = None
        self._make_next_room()

    def _context(self, start: StartJob, room: rtc.Room) -> JobContext:
        job = agent_pb.Job()
        try:
            job.ParseFromString(start.job)
        except Exception as exc:
            raise ProtocolError(f"StartJob carries an unreadable Job: {exc}") from None
        info = RunningJobInfo(
            job=job, url=start.url, token=start.token, worker_id=start.worker_id,
            accept=AcceptArguments(name=start.accept.name, identity=start.accept.identity,
                                   metadata=start.accept.metadata, attributes=dict(start.accept.attributes)),
            api_key=start.api_key, api_secret=start.api_secret,
        )
        return JobContext(proc=self._proc, info=info, room=room, metrics_reporter=self._report_latency)

    def _rehearse(self) -> None:
        """Go once through a job's start while idle, for a blank job, and drop the result.

        The first time through costs a forked child ~1.5 ms that the next time does not:
        every page it first writes is copied (reference counts write to every object
        touched), and msgspec, protobuf and livekit build some state on first use. Paid
        here, before the child reports itself ready, it is not paid after an assignment.
        """
        blank = StartJob(job=agent_pb.Job().SerializeToString(), url="", token="",
                         accept=ParticipantInfo(identity=""), worker_id="")
        self._channel.rehearse(blank)
        self._channel.rehearse(JobStarted(job_id=""))
        rtc = sys.modules.get("livekit.rtc")
        if rtc is not None:  # imported by the zygote; importing it here would cost idle memory
            self._context(blank, rtc.Room())
        self._make_next_room()

    def _make_next_room(self) -> None:
        rtc = sys.modules.get("livekit.rtc")  # not imported here for the same reason
        if rtc is not None and self._exit is not None and not self._exit.done():
            self._next_room = rtc.Room()

    def _report_latency(self, sample: LatencySample) -> None:
        # try_send: a latency is not worth blocking a call for; a full queue drops it.
        self._channel.try_send(Metrics(samples=[MetricSample(
            name=sample.name, kind="histogram", value=sample.seconds, labels={"component": sample.component},
        )]))

    async def _evaluate(self, message: EvaluateRequest) -> None:
        accept: ParticipantInfo | None = None
        error = ""
        try:
            job = agent_pb.Job()
            job.ParseFromString(message.job)
            request = JobRequest(job)
            async with asyncio.timeout(REQUEST_TIMEOUT):
                await self._options.request_fnc(request)
            decision = request.decision
            if decision is None:
                error = "request_fnc returned without accepting or rejecting the job"
            elif decision.accept is not None:
                a = decision.accept
                accept = ParticipantInfo(identity=a.identity, name=a.name, metadata=a.metadata,
                                         attributes=dict(a.attributes))
        except TimeoutError:
            error = f"request_fnc did not answer within {REQUEST_TIMEOUT}s"
        except Exception as exc:
            error = f"request_fnc raised {type(exc).__name__}: {exc}"
        await self._channel.send(RequestEvaluated(request_id=message.request_id, accept=accept, error=error))


def _stacks() -> list[str]:
    """Every thread's stack, then every asyncio task's, as text."""
    names = {t.ident: t.name for t in threading.enumerate()}
    out = []
    for ident, frame in sys._current_frames().items():
        out.append(f"thread {names.get(ident, ident)}:\n" + "".join(traceback.format_stack(frame)))
    with contextlib.suppress(RuntimeError):
        for task in asyncio.all_tasks():
            frames = task.get_stack(limit=20)
            text = "".join(traceback.format_list(traceback.extract_stack(frames[-1]) if frames else []))
            out.append(f"task {task.get_name()}:\n{text}")
    return out


def child_main(sock: socket.socket, options: WorkerOptions, *, target: str, plugin: str,
               generation: int) -> NoReturn:
    """Entry point of a forked child; never returns."""
    import uvloop

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's: it drains us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # works even when the loop is stuck
    faulthandler.enable(all_threads=True)  # SIGABRT/SIGSEGV leave a stack on stderr (the journal)
    proc = JobProcess(pid=os.getpid(), plugin=plugin, generation=generation)
    proc._ipc_fileno = sock.fileno()
    code = EXIT_INTERNAL_ERROR
    try:
        code = uvloop.run(ChildRuntime(sock, options, proc, target).run())
    except BaseException:
        traceback.print_exc()
    finally:
        exit_now(code)  # everything we owe the supervisor has been sent
