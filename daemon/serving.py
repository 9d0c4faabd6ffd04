"""Serving plugins, the half of ``Supervisor`` that turns what is installed and enabled into a
generation: for each plugin its pool, its admission inside the daemon's, and its link (a new
one, or the running one re-routed to the new pool); plugins no longer wanted are retired.
``PluginServing`` is mixed into ``Supervisor``; it runs at the start and at each reload.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

import structlog

from roomd.ipc import PluginDescription
from roomd.ipc.tasks import TaskOwner

from .admission import Admission
from .config import Config
from .jobs import JobOutcome
from .link import PoolEvaluator, ServerLink
from .ops import DaemonMetrics, PoolRoster
from .ops.deadlines import PREWARM_DEADLINE
from .plugin_runtime import (
    PluginRecord,
    PluginStartError,
    PluginState,
    PluginStatus,
    registration_for,
    start_pool,
)
from .plugins.discovery import Discovery, PluginSpec
from .plugins.limits import plugin_limits
from .pool import Pool, PoolLauncher
from .pool.memory_cgroup import MemoryCgroups
from .retirement import Retirement
from .transitions import TransitionCounter

log = structlog.get_logger("roomd.supervisor")


@dataclasses.dataclass
class ServedPlugin:
    """A plugin being served: its current pool and its link."""

    record: PluginRecord
    pool: Pool
    link: ServerLink


class PluginServing:
    """The serving half of ``Supervisor``."""

    config: Config
    admission: Admission
    metrics: DaemonMetrics
    transitions: TransitionCounter
    memory_cgroups: MemoryCgroups
    launcher: PoolLauncher
    roster: PoolRoster
    plugins: dict[str, PluginRecord]
    _served: dict[str, ServedPlugin]
    _plugin_admissions: dict[str, Admission]
    _starting_pools: dict[str, Pool]
    _generation: int
    _discover: Callable[[], Discovery]
    _version: str
    _child_env: Mapping[str, str] | None
    _retiring: Retirement
    _tasks: TaskOwner
    _job_listeners: list[Callable[[str, JobOutcome], None]]

    if TYPE_CHECKING:
        def _run_link(self, plugin: str, link: ServerLink) -> Coroutine[Any, Any, None]: ...

    def _pool_created(self, name: str, pool: Pool) -> None:
        self._starting_pools[name] = pool
        self.roster.add(pool)  # its start failures count even if it never serves

    async def _apply_discovery(self) -> list[str]:
        """Make what is installed and enabled now the served set, as a new generation.

        Returns one line per wanted plugin that has a problem (its cause), for the reload reply.
        """
        self._generation += 1
        generation = self._generation
        deadline = asyncio.get_running_loop().time() + PREWARM_DEADLINE
        discovery = self._discover()
        broken = self._note_problems(discovery)
        specs = self._enabled(discovery)
        if not specs and not self._served and not broken:
            log.warning("no agent plugins to serve; install one (pip install ...) and reload")
        await asyncio.gather(*(self._serve(spec, generation, deadline) for spec in specs))
        wanted = {spec.name for spec in specs} | broken
        for name in list(self._served):
            if name in broken:
                continue  # _note_problems kept its previous generation serving
            if name not in wanted:
                installed = discovery.get(name) is not None
                self._retire(name, PluginState.DISABLED if installed else PluginState.STOPPED)
        return [f"{name}: {self.plugins[name].last_error}" for name in sorted(wanted)
                if self.plugins[name].last_error]

    def _enabled(self, discovery: Discovery) -> list[PluginSpec]:
        specs = []
        for spec in discovery.plugins:
            if self.config.plugins.is_enabled(spec.name):
                specs.append(spec)
            elif spec.name not in self._served:  # a served one is retired, then marked
                record = self.plugins.setdefault(spec.name, PluginRecord(spec, transitions=self.transitions))
                record.spec = spec
                record.transition(PluginState.DISABLED)
        return specs

    def _note_problems(self, discovery: Discovery) -> set[str]:
        """Record entry points that cannot be served; return the enabled names among them."""
        broken: set[str] = set()
        for problem in discovery.problems:
            log.error("plugin cannot be served", plugin=problem.name,
                      distribution=problem.distribution, version=problem.version,
                      error=problem.error)
            if problem.shadowed or not self.config.plugins.is_enabled(problem.name):
                continue
            broken.add(problem.name)
            error = f"{problem.distribution} {problem.version}: {problem.error}"
            record = self.plugins.get(problem.name)
            if record is not None and problem.name in self._served:
                # A broken upgrade must not take down the generation that works.
                record.last_error = f"reload kept the previous generation: {error}"
                continue
            spec = PluginSpec(problem.name, problem.target, problem.distribution, problem.version)
            record = self.plugins.setdefault(problem.name, PluginRecord(spec, transitions=self.transitions))
            record.spec, record.agent_name, record.generation = spec, None, self._generation
            record.transition(PluginState.FAILED, error)
        return broken

    async def _serve(self, spec: PluginSpec, generation: int, deadline: float) -> None:
        """Make ``spec`` at ``generation`` the one serving its plugin name."""
        record = self.plugins.get(spec.name)
        if record is None:
            record = self.plugins[spec.name] = PluginRecord(spec, transitions=self.transitions)
        if spec.name not in self._served:
            record.spec, record.generation, record.agent_name = spec, generation, None
            record.transition(PluginState.STARTING)
        try:
            pool, description = await start_pool(
                spec, self.config, generation, self._child_env, metrics_sink=self.metrics.child_metrics,
                deadline=deadline, on_pool=lambda pool: self._pool_created(spec.name, pool),
                transitions=self.transitions, memory_cgroups=self.memory_cgroups)
        except PluginStartError as exc:
            error = f"{spec.distribution} {spec.version}: {exc}"
            if spec.name in self._served:
                # A broken upgrade must not take down the generation that works.
                record.last_error = f"reload kept the previous generation: {error}"
                log.error("new generation failed; previous one keeps serving",
                          plugin=spec.name, generation=generation, error=str(exc))
            else:
                record.transition(PluginState.FAILED, error)
            return
        registration = registration_for(spec, description, self._version)
        admission = self._plugin_admission(spec.name, description)
        previous = self.launcher.set_pool(pool)
        served = self._served.get(spec.name)
        evaluator = PoolEvaluator(functools.partial(self.launcher.get, spec.name),
                                  timeout=self.config.link.assignment_timeout)
        if served is not None and served.link.registration == registration:
            served.link.set_route(evaluator=evaluator, launcher=self.launcher)
            served.pool = pool
        else:
            link = ServerLink(livekit=self.config.livekit, config=self.config.link,
                              registration=registration, admission=admission,
                              evaluator=evaluator, launcher=self.launcher,
                              observer=_JobEndTap(self.metrics, self._job_listeners),
                              transitions=self.transitions)
            if served is not None:
                # Options changed (agent name, type, permissions): register anew; the old
                # link reports FULL and keeps its running jobs until they end.
                self._retiring.link_later(spec.name, served.link)
            self._served[spec.name] = ServedPlugin(record, pool, link)
            self._tasks.spawn(self._run_link(spec.name, link), f"link {spec.name}")
            try:
                await link.wait_registered(self.config.link.assignment_timeout + 10)
            except TimeoutError:
                log.warning("link not registered yet; it keeps trying", plugin=spec.name)
        if previous is not None and previous is not pool:
            self._retiring.pool_later(previous)
        record.spec, record.generation = spec, generation
        record.agent_name = description.agent_name
        record.transition(PluginState.SERVING)

    def _plugin_admission(self, name: str, description: PluginDescription) -> Admission:
        max_jobs, load_threshold = plugin_limits(self.config, name, description)
        admission = self._plugin_admissions.get(name)
        if admission is None:
            admission = self._plugin_admissions[name] = Admission(
                max_jobs=max_jobs, load_threshold=load_threshold, load=self.admission.load,
                parent=self.admission)
        else:
            admission.reconfigure(max_jobs=max_jobs, load_threshold=load_threshold)
        return admission

    def _retire(self, name: str, state: PluginState) -> None:
        """Stop serving ``name``: no new jobs; its running jobs end in their own time."""
        served = self._served.pop(name)
        self.launcher.remove_pool(name)
        self._retiring.link_later(name, served.link)
        self._retiring.pool_later(served.pool)
        served.record.transition(state)

    def plugin_statuses(self) -> list[PluginStatus]:
        """Every plugin the daemon knows of, for ``/status`` and ``roomd plugins list``."""
        return [record.status() for _name, record in sorted(self.plugins.items())]


class _JobEndTap:
    """The links' observer: the metrics, plus the job listeners told of each job's end."""

    def __init__(self, metrics: DaemonMetrics, listeners: list[Callable[[str, JobOutcome], None]]) -> None:
        self._metrics = metrics
        self._listeners = listeners

    def __getattr__(self, name: str) -> Any:
        return getattr(self._metrics, name)

    def job_ended(self, agent: str, outcome: JobOutcome, duration: float) -> None:
        self._metrics.job_ended(agent, outcome, duration)
        for listener in self._listeners:
            listener(agent, outcome)
