"""What ``/status`` and ``/readyz`` say, as typed structs built from the daemon's state.

``/status`` is for people and scripts asking "what is this daemon doing": ids, states,
memory, which job runs where. It carries no secrets: no API key or secret, no job tokens,
no job or participant metadata (plugins put anything in there), no environment.
"""

from __future__ import annotations

import time

import msgspec

from roomd.daemon.link import LinkState
from roomd.daemon.plugin_runtime import PluginState, PluginStatus
from roomd.daemon.pool import PoolState

from .view import DaemonView

# Daemon states in which registered links may take jobs; a reload keeps the old
# generation serving until the new one is ready, so it does not make us unready.
_SERVING_STATES = frozenset({"ready", "reloading"})


class Readiness(msgspec.Struct, frozen=True):
    ready: bool
    reasons: tuple[str, ...]

    def text(self) -> str:
        if self.ready:
            return "ready\n"
        return "not ready: " + "; ".join(self.reasons) + "\n"


class LinkStatus(msgspec.Struct, frozen=True):
    plugin: str
    agent: str
    state: str
    worker_id: str
    draining: bool
    rtt_seconds: float | None
    reconnects: int
    jobs: int
    load: float  # as last reported to the server: max(CPU share, slot use)


class RefusalStatus(msgspec.Struct, frozen=True):
    at: float  # Unix time, to find the same job id in the server's log
    agent: str
    job_id: str
    room: str
    reason: str
    detail: str


class PoolStatus(msgspec.Struct, frozen=True):
    plugin: str
    agent: str
    generation: int
    state: str
    current: bool  # False: an older generation finishing its jobs
    idle: int
    running: int
    spawning: int
    last_error: str
    restarts: dict[str, int]


class ChildStatus(msgspec.Struct, frozen=True):
    pid: int
    agent: str
    generation: int
    state: str
    rss_bytes: int | None
    memory_bytes: int | None
    job_id: str | None
    room: str | None
    jobs_done: int
    age_seconds: float
    ipc_rtt_seconds: float | None


class JobInfo(msgspec.Struct, frozen=True):
    id: str
    agent: str
    room: str
    state: str
    seconds: float  # since running, or since the offer if not running yet


class DaemonStatus(msgspec.Struct, frozen=True):
    version: str
    state: str
    generation: int
    uptime_seconds: float
    load: float
    ready: Readiness
    links: list[LinkStatus]
    plugins: list[PluginStatus]  # what ``roomd plugins list`` reads
    pools: list[PoolStatus]
    children: list[ChildStatus]
    jobs: list[JobInfo]
    recent_refusals: list[RefusalStatus]  # newest last, at most RECENT_REFUSALS per link


def readiness(view: DaemonView) -> Readiness:
    reasons: list[str] = []
    state = str(view.state.value)
    if state not in _SERVING_STATES:
        reasons.append(f"daemon is {state}")
    if view.admission.draining and state != "draining":
        reasons.append("admission is draining")
    for link in view.links:
        if link.snapshot().draining:
            continue  # a retiring link (old agent options) or the daemon's drain, said above
        if link.state is not LinkState.REGISTERED:
            reasons.append(f"agent {link.registration.agent_name!r} is not registered "
                           f"({link.state.value})")
    for task, how in sorted(view.dead_tasks().items()):
        reasons.append(f"internal task {task!r} ended ({how})")
    broken: list[str] = []
    for pool in view.launcher.pools.values():
        if pool.state is PoolState.FATAL:
            broken.append(f"pool of plugin {pool.plugin!r} is fatal: {pool.last_error}")
    for name, record in sorted(view.plugins.items()):
        if record.state is PluginState.FAILED:
            broken.append(f"plugin {name!r} failed: {record.last_error}")
    # A broken plugin does not hold the others hostage unless the operator says so.
    if broken and (view.config.daemon.require_all_plugins or not any(plugin_ready(view).values())):
        reasons.extend(broken)
    return Readiness(ready=not reasons, reasons=tuple(reasons))


def plugin_ready(view: DaemonView) -> dict[str, bool]:
    """Per plugin: serving, its agent registered, its current pool not FATAL."""
    registered = {link.registration.plugin for link in view.links
                  if link.state is LinkState.REGISTERED and not link.snapshot().draining}
    fatal = {pool.plugin for pool in view.launcher.pools.values() if pool.state is PoolState.FATAL}
    return {name: record.state is PluginState.SERVING and name in registered and name not in fatal
            for name, record in view.plugins.items()}


def collect_status(view: DaemonView) -> DaemonStatus:
    now = time.monotonic()
    current = {id(pool) for pool in view.launcher.pools.values()}
    live = view.roster.live()
    links = [link.snapshot() for link in view.links]
    ready = plugin_ready(view)
    jobs = []
    for link in view.links:
        for job in link.jobs.values():
            since = job.running_at if job.running_at is not None else job.offered_at
            jobs.append(JobInfo(id=job.id, agent=link.registration.agent_name,
                                room=job.job.room.name, state=job.state.value,
                                seconds=round(now - since, 3)))
    return DaemonStatus(
        version=view.version,
        state=str(view.state.value),
        generation=view.generation,
        uptime_seconds=round(now - view.started_at, 3),
        load=round(view.load.value, 4),
        ready=readiness(view),
        links=[LinkStatus(plugin=s.plugin, agent=s.agent_name, state=s.state, worker_id=s.worker_id,
                          draining=s.draining, rtt_seconds=s.rtt_seconds, reconnects=s.reconnects,
                          jobs=s.jobs, load=s.load) for s in links],
        plugins=[msgspec.structs.replace(record.status(), ready=ready.get(name, False))
                 for name, record in sorted(view.plugins.items())],
        pools=[PoolStatus(plugin=e.pool.plugin, agent=e.agent, generation=e.pool.generation,
                          state=e.snapshot.stats.state, current=id(e.pool) in current,
                          idle=e.snapshot.stats.idle, running=e.snapshot.stats.running,
                          spawning=e.snapshot.stats.spawning, last_error=e.snapshot.stats.last_error,
                          restarts=dict(e.snapshot.stats.restarts)) for e in live],
        children=[ChildStatus(pid=c.pid, agent=e.agent, generation=c.generation, state=c.state,
                              rss_bytes=c.rss_bytes, memory_bytes=c.memory_bytes, job_id=c.job_id,
                              room=c.room, jobs_done=c.jobs_done,
                              age_seconds=round(c.age_seconds, 3), ipc_rtt_seconds=c.ipc_rtt_seconds)
                  for e in live for c in e.snapshot.children],
        jobs=jobs,
        recent_refusals=sorted(
            (RefusalStatus(at=r.at, agent=s.agent_name, job_id=r.job_id, room=r.room,
                           reason=r.reason, detail=r.detail)
             for s in links for r in s.recent_refusals), key=lambda r: r.at),
    )


def status_line(view: DaemonView) -> str:
    """One short line for systemd's STATUS= (``systemctl status`` shows it)."""
    live = view.roster.live()
    idle = sum(e.snapshot.stats.idle for e in live)
    running = sum(len(link.jobs) for link in view.links)
    return (f"{view.state.value}: {running} job{'s' if running != 1 else ''}, "
            f"{idle} idle child{'ren' if idle != 1 else ''}, generation {view.generation}")
