"""The supervisor: owns every long-lived resource and runs one loop of verbs.

Like gunicorn's arbiter, signal handlers only queue what happened; the loop handles
each event in order: ``handle_term`` (drain, for SIGTERM and SIGINT alike), a second one
(``stop_now``), ``handle_hup`` (reload), and a link that gave up (exit 1). The signal
table is the operations manual:

  SIGTERM, SIGINT  drain: report FULL, refuse offers, wait for jobs (drain_timeout), stop
  the same again   stop now: jobs are terminated, statuses still sent
  SIGHUP           reload configuration and plugins; running jobs keep their old code

Serving plugins (a generation's pools, admissions and links) is ``PluginServing``
(serving.py), reloading is ``ReloadCoordinator`` (reload.py), previous generations on their
way out are ``Retirement`` (retirement.py), the state table is supervisor_state.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import faulthandler
import signal
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog
import uvloop

from roomd.ipc.exits import EXIT_FAILURE, EXIT_OK
from roomd.ipc.tasks import TaskOwner

from .admission import Admission
from .config import Config
from .jobs import JobOutcome
from .devserver import DevServerError, dev_server_for
from .link import LinkFailed, ServerLink
from .load import LoadMonitor
from .logging import configure_logging
from .reload import ReloadCoordinator, ReloadResult, installed_roomd_version
from .retirement import Retirement
from .serving import PluginServing, ServedPlugin
from .transitions import TransitionCounter, allowed
from .supervisor_state import SUPERVISOR_TRANSITIONS, SupervisorState
from .plugins.discovery import Discovery, discover_plugins
from .plugin_runtime import PluginRecord, PluginState
from .ops import DaemonMetrics, Playground, PoolRoster, ServiceOps
from .pool import Pool, PoolLauncher
from .pool.health import memory_limits_line
from .pool.memory_cgroup import MemoryCgroups
from .pool.reaper import end_leftovers, reap_orphans

__all__ = ["SUPERVISOR_TRANSITIONS", "ReloadResult", "Supervisor", "SupervisorState", "run_daemon"]

log = structlog.get_logger("roomd.supervisor")

# Stopping now (a second signal, a link that gave up): running jobs get this long to end.
STOP_NOW_TIMEOUT = 5.0
ORPHAN_REAP_INTERVAL = 1.0
SETTLE_POLL = 0.2  # how often the start checks whether every plugin has settled


@dataclasses.dataclass(frozen=True)
class _Signal:
    signum: int


@dataclasses.dataclass(frozen=True)
class _ReloadRequest:
    reply: asyncio.Future[ReloadResult]


@dataclasses.dataclass(frozen=True)
class _LinkGaveUp:
    plugin: str
    error: str


@dataclasses.dataclass(frozen=True)
class _DrainEnded:
    """The drain task finished (or failed): the loop must look at the state again."""


_Event = _Signal | _ReloadRequest | _LinkGaveUp | _DrainEnded


class Supervisor(PluginServing, ReloadCoordinator):
    def __init__(
        self,
        config: Config,
        *,
        config_path: str | None = None,
        flag_overrides: Mapping[str, Any] | None = None,
        discover: Callable[[], Discovery] = discover_plugins,
        version: str = "",
        child_env: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
        installed_version: Callable[[], str] = installed_roomd_version,
    ) -> None:
        """``environ``: where NOTIFY_SOCKET and WATCHDOG_* are read (default: os.environ).

        ``installed_version``: the version on disk, checked before each reload.
        """
        self.config = config
        self._config_path = config_path
        self._flag_overrides = dict(flag_overrides or {})
        self._discover = discover
        self._version = version
        self._installed_version = installed_version
        self._running_version = installed_version()  # what this process imported at start
        self._child_env = child_env
        self._state = SupervisorState.STARTING
        self._events: asyncio.Queue[_Event] = asyncio.Queue()
        self._tasks = TaskOwner("supervisor")
        self._retiring = Retirement(lambda: self.config)
        self.load = LoadMonitor()
        self.memory_cgroups = MemoryCgroups.detect()
        self.admission = Admission(max_jobs=config.admission.max_jobs,
                                   load_threshold=config.load_threshold,
                                   load=lambda: self.load.value)
        self.version = version
        self.roster = PoolRoster()  # every generation's pool, for /status and /metrics
        self.launcher = PoolLauncher(on_pool=self.roster.add)
        self.transitions = TransitionCounter()  # every state machine's changes, for /metrics
        self.metrics = DaemonMetrics(self)
        self._environ = environ
        self.plugins: dict[str, PluginRecord] = {}
        self._served: dict[str, ServedPlugin] = {}
        # Each plugin's own limits inside the daemon's budget; kept across generations and
        # links so the jobs of a retiring generation still count against them.
        self._plugin_admissions: dict[str, Admission] = {}
        self._generation = 0
        self._exit_code = EXIT_OK
        self._stop_requested = 0
        self.started_at = time.monotonic()
        self.ready = asyncio.Event()
        self._listeners: list[Callable[[SupervisorState], None]] = []
        self._starting_pools: dict[str, Pool] = {}  # each plugin's latest pool, ready or not
        self._reload_task: asyncio.Task[None] | None = None
        self._reload_replies: list[asyncio.Future[ReloadResult]] = []
        self._job_listeners: list[Callable[[str, JobOutcome], None]] = []

    # -- state ---------------------------------------------------------------------------
    @property
    def state(self) -> SupervisorState:
        return self._state

    @property
    def generation(self) -> int:
        return self._generation

    def add_state_listener(self, listener: Callable[[SupervisorState], None]) -> None:
        self._listeners.append(listener)

    def add_job_listener(self, listener: Callable[[str, JobOutcome], None]) -> None:
        """Call ``listener(agent_name, outcome)`` as each job ends (single-file console:
        a failed entrypoint ends the conversation with its error)."""
        self._job_listeners.append(listener)

    def _transition(self, new: SupervisorState, why: str = "") -> None:
        if not allowed(SUPERVISOR_TRANSITIONS, self._state, new, "supervisor"):
            return
        log.info("supervisor state", old=self._state.value, new=new.value, why=why or None)
        self.transitions.count("supervisor", self._state, new)
        self._state = new
        if new is SupervisorState.READY:
            self.ready.set()
        for listener in self._listeners:
            listener(new)

    def _transition_from(self, old: SupervisorState, new: SupervisorState, why: str = "") -> bool:
        """Move ``old`` -> ``new`` only if still in ``old`` (another path may have moved on)."""
        if self._state is not old:
            return False
        self._transition(new, why)
        return True

    @property
    def links(self) -> list[ServerLink]:
        """Every link with jobs to look after: current ones and retiring ones."""
        return [served.link for served in self._served.values()] + list(self._retiring.links)

    @property
    def pools(self) -> list[Pool]:
        """Every pool with children: current generations and retiring ones."""
        return list(self.launcher.pools.values()) + list(self._retiring.pools)

    # -- requests from outside the loop (signals, HTTP) ----------------------------------
    def request_signal(self, signum: int) -> None:
        self._events.put_nowait(_Signal(signum))

    async def request_reload(self) -> ReloadResult:
        reply: asyncio.Future[ReloadResult] = asyncio.get_running_loop().create_future()
        self._events.put_nowait(_ReloadRequest(reply))
        return await reply

    # -- the loop ------------------------------------------------------------------------
    async def run(self) -> int:
        daemon = self.config.daemon
        playground = (Playground(self, lambda: self.config.livekit)
                      if self.config.serves_playground else None)
        ops = ServiceOps(self, self.metrics, http_host=daemon.http_host, http_port=daemon.http_port,
                         stop_budget=daemon.drain_timeout + 2 * self.config.pool.shutdown_timeout,
                         environ=self._environ,
                         routes=[playground.add_routes] if playground is not None else [])
        try:
            await ops.start()  # first: /healthz answers and systemd hears from us while we start
        except OSError as exc:
            log.error("cannot serve the http endpoint", host=daemon.http_host,
                      port=daemon.http_port, error=str(exc))
            return EXIT_FAILURE
        if playground is not None and ops.http.addresses:
            log.info("playground: open this page to talk to an agent",
                     url=playground.url(*ops.http.addresses[0]))
        self.add_state_listener(ops.on_state)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(signum, self.request_signal, signum)
        self._tasks.spawn(self.load.run(), "load monitor", essential=True)
        log.info("memory limits", held_by=memory_limits_line(self.memory_cgroups, self.config.pool))
        self._tasks.spawn(self._reap_orphans(), "orphan reaper", essential=True)
        drain: asyncio.Task[None] | None = None
        try:
            self._transition(SupervisorState.REGISTERING)
            starting = self._tasks.spawn(self._start_all(), "start plugins")
            while self._state is not SupervisorState.STOPPED:
                event = await self._events.get()
                if isinstance(event, _Signal):
                    if event.signum == signal.SIGHUP:
                        self._start_reload(None)
                        continue
                    self._stop_requested += 1
                    if self._stop_requested == 1:
                        starting.cancel()
                        await self._interrupt_reload()
                        drain = self._tasks.spawn(self.handle_term(), "drain")
                        drain.add_done_callback(lambda _t: self._events.put_nowait(_DrainEnded()))
                    else:
                        log.warning("second stop signal: stopping now")
                        if drain is not None:
                            drain.cancel()
                        await self.stop_now("stopped by a second signal")
                elif isinstance(event, _ReloadRequest):
                    self._start_reload(event.reply)
                elif isinstance(event, _LinkGaveUp):
                    log.error("server link gave up; stopping", plugin=event.plugin, error=event.error)
                    self._exit_code = EXIT_FAILURE
                    self._stop_requested += 1
                    starting.cancel()
                    await self._interrupt_reload()
                    await self.stop_now(f"link of plugin {event.plugin!r} failed")
                # The state changes while this loop awaits; mypy narrows it as if it could not.
                elif isinstance(event, _DrainEnded) and self._state is not SupervisorState.STOPPED:  # type: ignore[comparison-overlap]
                    log.error("drain ended without stopping; stopping now")
                    self._exit_code = EXIT_FAILURE
                    await self.stop_now("drain failed")
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)
            await self._tasks.aclose()
            await self._retiring.aclose()
            await ops.aclose()
        return self._exit_code

    def dead_tasks(self) -> dict[str, str]:
        """Essential tasks that ended (task -> how): the daemon is not ready while any did."""
        return dict(self._tasks.dead)

    async def _reap_orphans(self) -> None:
        """As child subreaper we inherit every orphan below us (a helper whose job child ended
        first); reap the ones no pool watches, so none stays <defunct>."""
        while True:
            await asyncio.sleep(ORPHAN_REAP_INTERVAL)
            watched = set().union(*(pool.watched_pids() for pool in self.pools))
            try:
                for status in reap_orphans(watched):
                    log.info("reaped an orphaned process", pid=status.pid, exit=status.describe())
            except OSError as exc:  # EMFILE reading /proc: next round
                log.warning("orphan sweep failed", error=str(exc))

    # -- starting (what is served: serving.py) ------------------------------------------
    async def _start_all(self) -> None:
        # READY once every plugin has settled: serving, failed, or failing to start (its pool
        # backs off). A plugin whose prewarm hangs must not hold READY=1 back for
        # max_start_failures x initialize_timeout while the others serve.
        applying = asyncio.ensure_future(self._apply_discovery())
        try:
            while not applying.done() and not (self._served and self._settled()):
                await asyncio.wait({applying}, timeout=SETTLE_POLL)
            if self._state is SupervisorState.REGISTERING:
                starting = sorted(name for name, r in self.plugins.items() if r.state is PluginState.STARTING)
                why = f"{len(self._served)} plugin(s) serving"
                if starting:
                    why += f"; still starting: {', '.join(starting)}"
                self._transition(SupervisorState.READY, why)
            problems = await applying
            if problems:
                log.warning("plugins with problems", problems=problems)
        finally:
            applying.cancel()

    def _settled(self) -> bool:
        """No plugin is still starting without having failed a start at least once."""
        for name, record in self.plugins.items():
            if record.state is not PluginState.STARTING:
                continue
            pool = self._starting_pools.get(name)
            if pool is None or pool.stats().start_failures_total == 0:
                return False
        return True

    async def _run_link(self, plugin: str, link: ServerLink) -> None:
        try:
            await link.run()
        except LinkFailed as exc:
            self._events.put_nowait(_LinkGaveUp(plugin, str(exc)))
        except Exception as exc:  # a bug in the link: serving on without it would lose every offer
            log.exception("server link crashed", plugin=plugin)
            self._events.put_nowait(_LinkGaveUp(plugin, f"link crashed: {type(exc).__name__}: {exc}"))

    # -- stopping ------------------------------------------------------------------------
    async def handle_term(self) -> None:
        """Drain: refuse new work, let running jobs end (bounded), then stop."""
        self._transition(SupervisorState.DRAINING, "stop requested")
        self.admission.start_draining()
        for link in self.links:
            link.drain()
        timeout = self.config.daemon.drain_timeout
        jobs = sum(len(link.jobs) for link in self.links)
        log.info("draining", running_jobs=jobs, drain_timeout=timeout)
        idle = await asyncio.gather(*(link.wait_idle(timeout) for link in self.links))
        if not all(idle):
            log.warning("drain timeout: stopping the jobs still running")
            await asyncio.gather(*(link.terminate_jobs("drain timeout",
                                                       self.config.pool.shutdown_timeout)
                                   for link in self.links))
        await self._close_everything(self.config.pool.shutdown_timeout)

    async def stop_now(self, reason: str) -> None:
        if self._state is not SupervisorState.DRAINING:
            self._transition(SupervisorState.DRAINING, reason)
        self.admission.start_draining()
        await asyncio.gather(*(link.terminate_jobs(reason, STOP_NOW_TIMEOUT) for link in self.links))
        await self._close_everything(STOP_NOW_TIMEOUT)

    async def _close_everything(self, pool_timeout: float) -> None:
        # Taken before the retiring tasks are cancelled: they forget their pool and link.
        pools, links = self.pools, self.links
        await asyncio.gather(*(pool.aclose(timeout=pool_timeout) for pool in pools),
                             return_exceptions=True)
        await self._retiring.aclose(timeout=pool_timeout)
        await asyncio.gather(*(link.aclose() for link in links), return_exceptions=True)
        for served in self._served.values():
            served.record.transition(PluginState.STOPPED)
        self._transition(SupervisorState.STOPPED)


def run_daemon(
    config: Config,
    *,
    config_path: str | None = None,
    flag_overrides: Mapping[str, Any] | None = None,
    discover: Callable[[], Discovery] = discover_plugins,
) -> int:
    """Run until stopped; return the process exit code."""
    from importlib.metadata import version

    configure_logging(config.daemon.log_format, config.daemon.log_level)
    # systemd's watchdog kills a stuck daemon with SIGABRT: leave the stacks of every thread
    # on stderr (the journal) so the cause of the hang is on record.
    faulthandler.enable(all_threads=True)
    try:
        with dev_server_for(config) as config:
            supervisor = Supervisor(config, config_path=config_path, flag_overrides=flag_overrides,
                                    discover=discover, version=version("roomd"))
            return uvloop.run(supervisor.run())
    except DevServerError as exc:
        log.error("dev server failed", error=str(exc))
        return EXIT_FAILURE
    finally:
        if leftovers := end_leftovers():
            log.warning("ended processes that outlived their pools", pids=leftovers)
