"""One plugin's pool of prewarmed children, for one generation of its code.

The manager task reconciles toward a target, like gunicorn's arbiter: keep
``num_idle_processes`` children prewarmed plus one for each launch waiting, at most
``max_concurrent_spawns`` starting at once; start failures back off exponentially and,
after ``max_start_failures`` in a row, the pool is FATAL until ``reset()``.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog

from roomd.daemon.config import PoolConfig
from roomd.daemon.jobs import Job, JobEndedEarly, LaunchError
from roomd.daemon.plugins.limits import PoolLimits
from roomd.daemon.transitions import TransitionCounter, allowed
from roomd.ipc import MetricSample, PluginDescription
from roomd.ipc.tasks import TaskOwner

from .child import ApiCredentials, ChildProcess, ChildSnapshot, ChildStartError
from .ending import ChildGone
from .memory_cgroup import MB, CgroupError, ChildCgroup, MemoryCgroups
from .questions import PluginQuestions
from .reaper import enable_subreaper
from .states import POOL_TRANSITIONS, REQUEST_HOST_STATE, ChildState, ExitReason, PoolState
from .stats import PoolSnapshot, PoolStats, RttWindow
from .zygote import Zygote, ZygoteError

log = structlog.get_logger("roomd.pool")

LAUNCH_ATTEMPTS = 3

# Where samples a child measured go, with the agent they are labelled by (DaemonMetrics).
ChildMetricsSink = Callable[[str, Sequence[MetricSample]], None]


def _no_metrics(_agent: str, _samples: Sequence[MetricSample]) -> None:
    pass


class Pool(PluginQuestions):
    def __init__(
        self,
        *,
        plugin: str,
        target: str,
        config: PoolConfig,
        generation: int = 0,
        operator_overrides: Mapping[str, Any] | None = None,
        credentials: ApiCredentials | None = None,
        log_level: str = "info",
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
        metrics_sink: ChildMetricsSink | None = None,
        transitions: TransitionCounter | None = None,
        memory_cgroups: MemoryCgroups | None = None,
    ) -> None:
        """``memory_cgroups``: where the kernel holds children to their memory limit (None:
        sampling only)."""
        self.plugin = plugin
        self._memory_cgroups = memory_cgroups
        self.target = target
        self.generation = generation
        self._config = config
        self._operator_overrides = dict(operator_overrides or {})
        self._credentials = credentials
        self._log_level = log_level
        self._python = python
        self._env = env
        self._metrics_sink = metrics_sink or _no_metrics
        self._limits = PoolLimits.resolve(config, None, self._operator_overrides, log_level=log_level)
        self._state = PoolState.STARTING
        self._transitions = transitions or TransitionCounter()
        self._owner = TaskOwner(f"pool {plugin}#{generation}")
        # Spawns have their own owner: closing waits for them before it cancels the rest.
        self._spawns = TaskOwner(f"pool {plugin}#{generation} spawns")
        self._wake = asyncio.Event()
        self._described = asyncio.Event()
        self._state_changed = asyncio.Event()
        self._zygote: Zygote | None = None
        self._description: PluginDescription | None = None
        self._children: dict[int, ChildProcess] = {}
        self._idle: collections.deque[ChildProcess] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[ChildProcess]] = collections.deque()
        self._spawning = 0
        self._starting = 0  # jobs handed to a child whose start is not reported yet
        self._draining = False
        self._consecutive_failures = 0
        self._start_failures_total = 0
        self._next_attempt = 0.0
        self._last_error = ""
        self._restarts: collections.Counter[str] = collections.Counter()
        self._jobs_started = 0
        self._jobs_ended: collections.Counter[str] = collections.Counter()
        self._rtt = RttWindow()
        self._logs_dropped_exited = 0
        self._host: ChildProcess | None = None
        self._host_lock = asyncio.Lock()
        self._request_ids = itertools.count(1)
        self._log = log.bind(plugin=plugin, generation=generation)

    # -- state ----------------------------------------------------------------------------
    @property
    def state(self) -> PoolState:
        return self._state

    @property
    def last_error(self) -> str:
        return self._last_error

    @property
    def limits(self) -> PoolLimits:
        return self._limits

    @property
    def description(self) -> PluginDescription | None:
        return self._description

    @property
    def agent(self) -> str:
        """The agent name this pool serves, every per-agent metric's label; the plugin name until
        the plugin is described."""
        description = self._description
        return description.agent_name if description is not None and description.agent_name else self.plugin

    def _transition(self, new: PoolState, why: str = "") -> None:
        old = self._state
        if not allowed(POOL_TRANSITIONS, old, new, f"pool {self.plugin}"):
            return
        self._state = new
        self._transitions.count("pool", old, new)
        level = "error" if new is PoolState.FATAL else "info"
        getattr(self._log, level)("pool state", old=old.value, new=new.value, why=why or None)
        self._state_changed.set()
        self._state_changed = asyncio.Event()
        if new is PoolState.FATAL:
            self._fail_waiters(LaunchError(self._fatal_message()))

    def _fatal_message(self) -> str:
        return (f"plugin {self.plugin!r} is FATAL after {self._consecutive_failures} consecutive start "
                f"failures; last: {self._last_error}")

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the manager (returns at once; ``wait_ready`` to wait for the first child)."""
        try:
            enable_subreaper()
        except OSError as exc:
            self._log.warning("cannot become child subreaper; children are watched by pidfd only",
                              error=str(exc))
        self._owner.spawn(self._manage(), "manager")

    async def wait_ready(self, timeout: float) -> PoolState:
        """Wait until READY (a child is prewarmed) or FATAL; return the state reached."""
        async with asyncio.timeout(timeout):
            while self._state not in (PoolState.READY, PoolState.FATAL, PoolState.CLOSED):
                await self._state_changed.wait()
        return self._state

    def reset(self) -> None:
        """Leave FATAL (operator action or reload): start again from a fresh zygote."""
        if self._state is not PoolState.FATAL:
            return
        self._consecutive_failures = 0
        self._next_attempt = 0.0
        self._transition(PoolState.STARTING, "reset")
        self._wake.set()

    async def drain(self, timeout: float) -> bool:
        """Stop keeping idle children and wait (bounded) for running jobs to end. True if they did."""
        self._draining = True
        self._wake.set()
        for child in list(self._idle):
            self._owner.spawn(child.stop("pool draining"), f"drain {child.pid}")
        self._idle.clear()
        busy = [c for c in self._children.values() if c.job is not None]
        if not busy:
            return True
        _done, pending = await asyncio.wait([asyncio.ensure_future(c.job.run_outcome) for c in busy if c.job],
                                           timeout=timeout)
        return not pending

    async def aclose(self, timeout: float | None = None) -> None:
        """Stop everything: children (Shutdown, bounded, escalating), the zygote, the manager."""
        if self._state in (PoolState.CLOSING, PoolState.CLOSED):
            return
        self._transition(PoolState.CLOSING, "closing")
        self._fail_waiters(LaunchError(f"plugin {self.plugin!r} pool is closing"))
        self._wake.set()
        stop_timeout = self._limits.shutdown_timeout if timeout is None else timeout
        children = list(self._children.values())
        if children:
            await asyncio.gather(*(c.stop("pool closing", timeout=stop_timeout) for c in children),
                                 return_exceptions=True)
            await asyncio.gather(*(c.aclose() for c in children), return_exceptions=True)
        # Spawns in flight end quickly now (their children were killed, or they stop what they
        # started): let them finish rather than abandon a just-forked child.
        if self._spawns.tasks:
            await asyncio.wait(self._spawns.tasks, timeout=self._limits.initialize_timeout + 2.0)
        leftovers = list(self._children.values())
        await asyncio.gather(*(c.aclose() for c in leftovers), return_exceptions=True)
        await self._spawns.aclose(timeout=5.0)
        await self._owner.aclose(timeout=5.0)
        if self._zygote is not None:
            await self._zygote.aclose(timeout=2.0)
        self._transition(PoolState.CLOSED, "closed")

    # -- the manager ----------------------------------------------------------------------
    async def _manage(self) -> None:
        while self._state is not PoolState.CLOSING:
            self._wake.clear()
            if self._state is PoolState.FATAL:
                await self._wake.wait()
                continue
            delay = self._next_attempt - time.monotonic()
            if delay > 0:
                try:
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                continue
            if self._state is PoolState.BACKOFF:
                self._transition(PoolState.STARTING, "backoff over")
            if self._zygote is None or not self._zygote.alive:
                await self._start_zygote()
                continue
            self._spawn_toward_target()
            await self._wake.wait()

    def _target_idle(self) -> int:
        return 0 if self._draining else self._limits.num_idle_processes

    def _spawn_toward_target(self) -> None:
        waiting = sum(1 for w in self._waiters if not w.done())
        refill = max(0, self._target_idle() - self._starting)
        want = refill + waiting - len(self._idle) - self._spawning
        room = self._limits.max_concurrent_spawns - self._spawning
        for _ in range(max(0, min(want, room))):
            self._spawning += 1
            self._spawns.spawn(self._spawn_child(), "spawn")

    async def _start_zygote(self) -> None:
        if self._zygote is not None:
            await self._zygote.aclose(timeout=2.0)
        self._zygote = Zygote(target=self.target, plugin=self.plugin, generation=self.generation,
                              ready_timeout=self._limits.initialize_timeout, python=self._python, env=self._env)
        try:
            description = await self._zygote.start()
        except ZygoteError as exc:
            self._zygote = None
            self._start_failed(str(exc))
            return
        self._description = description
        self._limits = PoolLimits.resolve(self._config, description.overrides, self._operator_overrides,
                                          log_level=self._log_level)
        self._described.set()

    async def _spawn_child(self, *, run_prewarm: bool = True) -> None:
        child: ChildProcess | None = None
        try:
            assert self._zygote is not None
            pid, sock = await self._zygote.fork()
            child = self._new_child(pid, sock, on_idle=self._child_ready)
            await child.start(run_prewarm=run_prewarm)
        except (ZygoteError, ChildStartError) as exc:
            self._start_failed(str(exc))
        else:
            self._consecutive_failures = 0
            if self._state in (PoolState.STARTING, PoolState.BACKOFF):
                self._transition(PoolState.READY, f"child {child.pid} prewarmed")
            if self._state in (PoolState.CLOSING, PoolState.CLOSED):
                await child.aclose()
            else:
                self._child_ready(child)
        finally:
            self._spawning -= 1
            self._wake.set()

    def _new_child(self, pid: int, sock: socket.socket, *,
                   on_idle: Callable[[ChildProcess], None]) -> ChildProcess:
        """A just-forked child of this pool's zygote, watched from now on."""
        child = ChildProcess(pid=pid, sock=sock, plugin=self.plugin, target=self.target,
                             generation=self.generation, limits=self._limits, on_idle=on_idle,
                             on_exit=self._child_exited, rtt_sink=self._rtt.add,
                             metrics_sink=self._child_metrics, transitions=self._transitions,
                             cgroup=self._memory_cgroup(pid))
        self._children[pid] = child
        return child

    def _memory_cgroup(self, pid: int) -> ChildCgroup | None:
        """A cgroup of its own for a just-forked child, before it runs plugin code (prewarm
        waits for our Initialize), so everything it starts is inside; None: sampling only."""
        limit = self._limits.job_memory_limit_mb
        if self._memory_cgroups is None or not self._memory_cgroups.enforced or not limit:
            return None
        try:
            return self._memory_cgroups.attach(pid, int(limit * MB))
        except CgroupError as exc:
            self._log.warning("child held to its memory limit by sampling only", pid=pid, error=str(exc))
            return None

    def _start_failed(self, error: str) -> None:
        if self._state in (PoolState.CLOSING, PoolState.CLOSED):
            return
        self._consecutive_failures += 1
        self._start_failures_total += 1
        self._last_error = error
        n = self._consecutive_failures
        if n >= self._limits.max_start_failures:
            self._transition(PoolState.FATAL, error)
            return
        delay = min(self._limits.start_backoff_max, self._limits.start_backoff_base * 2 ** (n - 1))
        self._next_attempt = time.monotonic() + delay
        self._log.warning("child start failed; backing off", error=error, consecutive_failures=n,
                          backoff_seconds=round(delay, 3))
        if self._state is not PoolState.FATAL:
            self._transition(PoolState.BACKOFF, error)

    def _child_ready(self, child: ChildProcess) -> None:
        """A prewarmed (or reusable) child: to the first waiting launch, else to the idle set."""
        if self._state in (PoolState.CLOSING, PoolState.CLOSED) or self._draining:
            self._owner.spawn(child.stop("not needed"), f"stop {child.pid}")
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(child)
                return
        self._idle.append(child)

    def _child_exited(self, child: ChildProcess, reason: ExitReason) -> None:
        self._children.pop(child.pid, None)
        if child in self._idle:
            self._idle.remove(child)
        if child is self._host:
            self._host = None
        self._restarts[reason] += 1
        self._logs_dropped_exited += child.logs_dropped
        self._wake.set()

    def watched_pids(self) -> set[int]:
        """Processes whose exit this pool watches (and reaps) itself: its zygote and children."""
        pids = set(self._children)
        if self._zygote is not None and self._zygote.pid is not None:
            pids.add(self._zygote.pid)
        return pids

    def _fail_waiters(self, error: Exception) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    # -- the job path ---------------------------------------------------------------------
    async def launch(self, job: Job) -> None:
        """Hand the job to a prewarmed child (one StartJob message); ``LaunchError`` names why not."""
        launch = job.launch_for(self.plugin)
        last = ""
        for _ in range(LAUNCH_ATTEMPTS):
            child = await self._acquire()
            try:
                await child.start_job(job, launch, self._credentials)
            except ChildGone as exc:
                last = str(exc)
                continue
            except LaunchError:
                self._idle.appendleft(child)  # the job was the problem; the child is still fresh
                raise
            self._jobs_started += 1
            job.run_outcome.add_done_callback(
                lambda f: self._jobs_ended.update([f.result().status.name]) if not f.cancelled() else None)
            # Refill toward the idle target once this job has started (or ended), not now:
            # forking and prewarming the next child would take the CPU the job's own start
            # needs. Launches waiting for a child are served at once all the same (_acquire).
            self._starting += 1
            self._owner.spawn(self._refill_after_start(job), f"refill after {launch.job.id}")
            return
        raise LaunchError(f"no child of plugin {self.plugin!r} took job {launch.job.id}: {last}")

    async def _refill_after_start(self, job: Job) -> None:
        try:
            await job.wait_running()
        except JobEndedEarly:
            pass  # ended before it ran: the refill is due all the same
        finally:
            self._starting -= 1
            self._wake.set()

    async def _acquire(self) -> ChildProcess:
        self._check_launchable()
        while self._idle:
            child = self._idle.popleft()
            if child.state is ChildState.IDLE:
                return child
        waiter: asyncio.Future[ChildProcess] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._wake.set()
        timeout = self._limits.initialize_timeout + 5.0
        try:
            async with asyncio.timeout(timeout):
                return await waiter
        except TimeoutError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                return waiter.result()
            raise LaunchError(
                f"no prewarmed child of plugin {self.plugin!r} within {timeout}s (pool {self._state.value}"
                + (f", last start error: {self._last_error}" if self._last_error else "") + ")"
            ) from None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _check_launchable(self) -> None:
        if self._state is PoolState.FATAL:
            raise LaunchError(self._fatal_message())
        if self._state in (PoolState.CLOSING, PoolState.CLOSED):
            raise LaunchError(f"plugin {self.plugin!r} pool is {self._state.value}")
        if self._draining:
            raise LaunchError(f"plugin {self.plugin!r} pool is draining")

    # -- reporting ------------------------------------------------------------------------
    def _child_metrics(self, samples: Sequence[MetricSample]) -> None:
        self._metrics_sink(self.agent, samples)

    def stats(self) -> PoolStats:
        children = list(self._children.values())
        return PoolStats(
            plugin=self.plugin, generation=self.generation, state=self._state.value,
            last_error=self._last_error, children=len(children), idle=len(self._idle),
            spawning=self._spawning,
            running=sum(1 for c in children if c.state in (ChildState.ASSIGNED, ChildState.RUNNING)),
            waiting_launches=sum(1 for w in self._waiters if not w.done()),
            start_failures_total=self._start_failures_total,
            consecutive_start_failures=self._consecutive_failures,
            restarts=dict(self._restarts), jobs_started=self._jobs_started,
            jobs_ended=dict(self._jobs_ended), ipc_rtt_count=self._rtt.count,
            ipc_rtt_sum_seconds=self._rtt.total, ipc_rtt_recent_seconds=tuple(self._rtt.recent),
            logs_dropped=self._logs_dropped_exited + sum(c.logs_dropped for c in children),
        )

    def snapshot(self) -> PoolSnapshot:
        return PoolSnapshot(self.stats(), tuple(self._child_snapshot(c) for c in self._children.values()))

    def _child_snapshot(self, child: ChildProcess) -> ChildSnapshot:
        snapshot = child.snapshot()
        if child is self._host:
            # Idle between questions but never given a job: not one of the
            # num_idle_processes prewarmed children, so it must not be counted as one.
            return dataclasses.replace(snapshot, state=REQUEST_HOST_STATE)
        return snapshot
