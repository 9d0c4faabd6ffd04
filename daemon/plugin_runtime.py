"""One plugin inside the daemon: its current pool (one code generation) and its server link.

Starting a plugin is: start a pool (its zygote imports the plugin), ask it to describe
the plugin (agent name, worker type, permissions: the supervisor never imports plugin
code), wait until a child is prewarmed, then register a link under that agent name.
Any step failing marks the plugin FAILED with the cause; the other plugins go on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import structlog

from roomd.daemon.config import Config
from roomd.daemon.jobs import LaunchError
from roomd.daemon.link import AgentRegistration
from roomd.daemon.pool import ApiCredentials, Pool, PoolState
from roomd.daemon.pool.memory_cgroup import MemoryCgroups
from roomd.daemon.pool.pool import ChildMetricsSink
from roomd.daemon.transitions import TransitionCounter, allowed
from roomd.ipc import PluginDescription
from roomd.ipc.worker import WorkerPermissions, WorkerType

from .plugins.discovery import PluginSpec
from .plugins.limits import operator_overrides

log = structlog.get_logger("roomd.plugins")

# How long describing and warming a plugin may take on top of its initialize timeout.
START_MARGIN = 5.0


class PluginState(enum.Enum):
    STARTING = "starting"
    SERVING = "serving"
    FAILED = "failed"
    DISABLED = "disabled"
    STOPPED = "stopped"


# A plugin's record outlives its generations: any state but SERVING may start again on a
# reload; SERVING ends only by being retired (FAILED when its link gave up) or by the shutdown.
PLUGIN_TRANSITIONS: dict[PluginState, frozenset[PluginState]] = {
    PluginState.STARTING: frozenset({PluginState.SERVING, PluginState.FAILED, PluginState.DISABLED,
                                     PluginState.STOPPED}),
    PluginState.SERVING: frozenset({PluginState.FAILED, PluginState.DISABLED, PluginState.STOPPED}),
    PluginState.FAILED: frozenset({PluginState.STARTING, PluginState.DISABLED, PluginState.STOPPED}),
    PluginState.DISABLED: frozenset({PluginState.STARTING, PluginState.FAILED, PluginState.STOPPED}),
    PluginState.STOPPED: frozenset({PluginState.STARTING, PluginState.FAILED, PluginState.DISABLED}),
}


class PluginStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One plugin as ``/status`` and ``roomd plugins list --json`` show it."""

    name: str
    distribution: str
    version: str
    target: str
    state: str
    agent_name: str | None = None
    generation: int = 0
    last_error: str = ""
    ready: bool = False  # serving, its agent registered with the server, its pool not FATAL


@dataclasses.dataclass
class PluginRecord:
    """What the daemon knows of one plugin, for /status and ``roomd plugins list``."""

    spec: PluginSpec
    state: PluginState = PluginState.STARTING
    last_error: str = ""
    agent_name: str | None = None
    generation: int = 0  # the generation serving (or last tried, when none serves)
    transitions: TransitionCounter = dataclasses.field(default_factory=TransitionCounter,
                                                       repr=False, compare=False)

    def status(self) -> PluginStatus:
        return PluginStatus(name=self.spec.name, distribution=self.spec.distribution,
                            version=self.spec.version, target=self.spec.target,
                            state=self.state.value, agent_name=self.agent_name,
                            generation=self.generation, last_error=self.last_error)

    def transition(self, new: PluginState, error: str = "") -> None:
        if allowed(PLUGIN_TRANSITIONS, self.state, new, f"plugin {self.spec.name!r}"):
            self.transitions.count("plugin", self.state, new)
            (log.error if new is PluginState.FAILED else log.info)(
                "plugin state", plugin=self.spec.name, old=self.state.value, new=new.value,
                generation=self.generation, error=error or None)
        self.state = new
        if error or new is PluginState.SERVING:
            self.last_error = error


class PluginStartError(RuntimeError):
    """A generation of a plugin could not be made ready; the message is the cause."""


def registration_for(spec: PluginSpec, description: PluginDescription, version: str) -> AgentRegistration:
    permissions = WorkerPermissions(**description.permissions) if description.permissions \
        else WorkerPermissions()
    worker_type = WorkerType.PUBLISHER if description.worker_type == "publisher" else WorkerType.ROOM
    return AgentRegistration(plugin=spec.name, agent_name=description.agent_name,
                             worker_type=worker_type, permissions=permissions, version=version)


async def start_pool(spec: PluginSpec, config: Config, generation: int,
                     env: Mapping[str, str] | None = None, *,
                     overrides: Mapping[str, Any] | None = None,
                     metrics_sink: ChildMetricsSink | None = None,
                     deadline: float | None = None,
                     on_pool: Callable[[Pool], None] | None = None,
                     transitions: TransitionCounter | None = None,
                     memory_cgroups: MemoryCgroups | None = None) -> tuple[Pool, PluginDescription]:
    """A ready pool for ``spec`` and the plugin's description, or ``PluginStartError``.

    ``overrides`` win over the operator's per-plugin options (``roomd plugins check`` uses
    them to prewarm exactly one child). ``metrics_sink`` receives what the children measure
    (the daemon's registry); without one, it is dropped. ``deadline`` (event loop time) caps
    the wait: a start or reload never outlasts ``ops.deadlines.PREWARM_DEADLINE``. ``on_pool``
    sees the pool as soon as it exists, so its start failures count (and show) even if it
    never becomes ready. ``memory_cgroups``: the daemon's, used unless the config says
    ``memory_cgroups = "off"``.
    """
    pool = Pool(
        plugin=spec.name, target=spec.target, config=config.pool, generation=generation,
        operator_overrides={**operator_overrides(config, spec.name), **(overrides or {})},
        credentials=ApiCredentials(config.livekit.api_key, config.livekit.api_secret),
        log_level=config.daemon.log_level, env=env, metrics_sink=metrics_sink,
        transitions=transitions, memory_cgroups=memory_cgroups if config.pool.memory_cgroups == "auto" else None,
    )
    if on_pool is not None:
        on_pool(pool)
    await pool.start()
    try:
        # Every start attempt may fail and back off before the pool gives up (FATAL): the
        # budget covers them all, so the cause we report is the pool's, not our timeout.
        loop = asyncio.get_running_loop()
        own = (pool.limits.initialize_timeout + pool.limits.start_backoff_max) \
            * pool.limits.max_start_failures + START_MARGIN
        end = loop.time() + own if deadline is None else min(loop.time() + own, deadline)
        budget = max(0.0, end - loop.time())
        try:
            description = await pool.describe(budget)
        except LaunchError as exc:
            raise PluginStartError(pool.last_error or str(exc)) from None
        if description.error:
            raise PluginStartError(description.error)
        if pool.limits.num_idle_processes == 0:
            # Nothing is kept prewarmed: children start per job, and a failing prewarm shows
            # as failed launches (and, repeated, a FATAL pool) rather than here.
            log.info("plugin keeps no idle process; prewarm runs with the first job",
                     plugin=spec.name, generation=generation)
            return pool, description
        # Wait for one prewarmed child: a plugin whose prewarm always fails ends FATAL here.
        try:
            state = await pool.wait_ready(max(0.0, end - loop.time()))
        except TimeoutError:
            raise PluginStartError(
                f"no child became ready within {budget:.0f}s: {pool.last_error}") from None
        if state is not PoolState.READY:
            raise PluginStartError(pool.last_error or f"pool ended {state.value}")
    except BaseException:
        await asyncio.shield(pool.aclose(timeout=2.0))
        raise
    return pool, description
