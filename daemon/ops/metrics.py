"""The daemon's Prometheus metrics: one registry, owned by the supervisor, no globals.

Two kinds of source feed it:
- events, pushed as they happen through the server link's ``LinkObserver`` hooks (jobs,
  decisions, latencies, link up/down) and the supervisor (reloads): counters and
  histograms that only a moment can produce;
- state, read at scrape time by ``DaemonCollector`` from pool snapshots, links, plugins and
  the load monitor: gauges, plus counters the pools already keep (child restarts, IPC round
  trips), made monotonic across generations by ``PoolRoster``, and the state machines'
  transitions, counted by the supervisor's ``TransitionCounter``.

Children never touch Prometheus: what they measure reaches the supervisor over IPC
(``Metrics``, via the pool's sink into ``child_metrics``), so no multiprocess directory
exists. Labels are agent, status, reason, state, component: bounded sets. Never job id,
room or pid.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from roomd.daemon.admission import Decision
from roomd.daemon.jobs import JobOutcome, JobState
from roomd.daemon.plugin_runtime import PluginState
from roomd.daemon.pool import REQUEST_HOST_STATE, ChildState, PoolState
from roomd.ipc import MetricSample

from .view import DaemonView

log = structlog.get_logger("roomd.metrics")

# Calls last from seconds (a wrong number) to an hour or more (a long support call).
JOB_DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0,
                        1800.0, 2700.0, 3600.0, 7200.0)
# Offer to entrypoint running: a prewarmed child takes well under a millisecond of our
# own work, the server round trip adds milliseconds, a cold or starved pool seconds.
DISPATCH_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                            1.0, 2.5, 5.0, 10.0)
CHILD_STATES = (*(state.value for state in ChildState if state is not ChildState.EXITED),
                REQUEST_HOST_STATE)
# What a caller waits through in one voice turn: tens of milliseconds (a fast first token)
# to seconds (a cold model, a slow network); past 10 s the call is broken anyway.
AGENT_LATENCY_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
# The only child samples that become series (the SDK's voice/metrics_report.py sends them),
# each a histogram labelled by agent and component; the help text says what it measures.
AGENT_LATENCIES = {
    "llm_ttft_seconds": "Voice turns: LLM request to its first token.",
    "tts_ttfb_seconds": "Voice turns: text sent to TTS to its first audio.",
    "stt_duration_seconds": "Voice turns: a (non-streamed) STT request's processing time.",
    "end_of_utterance_delay_seconds": "Voice turns: end of user speech to the turn being "
                                      "committed (component \"session\").",
}
# What became of each offer: exactly one outcome per AvailabilityRequest.
_OFFER_OUTCOMES = {Decision.ACCEPTED: "accepted", Decision.WITHDRAWN: "withdrawn",
                   Decision.ASSIGNMENT_TIMEOUT: "timed_out"}
# Decisions that are not an offer's outcome (a launch failure happens to an accepted offer).
_NOT_OFFER_OUTCOMES = frozenset({Decision.LAUNCH_FAILED})
MAX_COMPONENT_LENGTH = 64
MAX_COMPONENTS_PER_AGENT = 16  # a plugin cannot grow the registry by inventing labels


class DaemonMetrics:
    """The registry plus the event-driven metrics; also the links' ``LinkObserver``."""

    def __init__(self, view: DaemonView, *, process_metrics: bool = True) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._jobs = Counter("roomd_jobs", "Jobs that ended, by agent and final status reported "
                            "to the server.", ["agent", "status"], registry=r)
        self._job_duration = Histogram(
            "roomd_job_duration_seconds", "Time from entrypoint running (or offer, if it never "
            "ran) to the job's end.", ["agent"], buckets=JOB_DURATION_BUCKETS, registry=r)
        self._decisions = Counter(
            "roomd_availability_decisions", "Answers to the server's job offers and what became "
            "of accepted ones, by reason.", ["agent", "reason"], registry=r)
        self._offers = Counter(
            "roomd_offers", "Job offers by what became of them: accepted, refused_<reason>, "
            "withdrawn (terminated before its assignment), timed_out (no assignment).",
            ["agent", "outcome"], registry=r)
        self._dispatch_latency = Histogram(
            "roomd_dispatch_latency_seconds", "AvailabilityRequest received to the job's "
            "entrypoint running in a child.", ["agent"], buckets=DISPATCH_LATENCY_BUCKETS,
            registry=r)
        self._assignment_timeouts = Counter(
            "roomd_assignment_timeouts", "Accepted offers that got no JobAssignment in time.",
            ["agent"], registry=r)
        self._link_up = Gauge("roomd_server_link_up", "1 while the agent is registered with the "
                             "LiveKit server.", ["agent"], registry=r)
        self._link_reconnects = Counter(
            "roomd_server_link_reconnects", "Registrations after a lost connection.", ["agent"],
            registry=r)
        self._link_rtt = Gauge("roomd_server_link_rtt_seconds", "Last WorkerPing round trip to "
                              "the server.", ["agent"], registry=r)
        self._reloads = Counter("roomd_reloads", "Reloads (SIGHUP or POST /reload) by result.",
                               ["result"], registry=r)
        for result in ("ok", "failed"):
            self._reloads.labels(result=result)
        self._agent_latency = {
            name: Histogram(f"roomd_agent_{name}", help_text, ["agent", "component"],
                            buckets=AGENT_LATENCY_BUCKETS, registry=r)
            for name, help_text in AGENT_LATENCIES.items()
        }
        self._child_rejected = Counter(
            "roomd_child_metrics_rejected", "Samples from children that were not recorded "
            "(unknown name or kind, bad value or labels, too many components).", ["agent"],
            registry=r)
        self._components: dict[str, set[str]] = {}
        self._rejection_logged: set[str] = set()  # agents; one debug line each is enough
        r.register(DaemonCollector(view))
        if process_metrics:
            # The supervisor's own CPU, memory and file descriptors (process_*).
            ProcessCollector(registry=r)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    # -- LinkObserver --------------------------------------------------------------------
    def decision(self, agent: str, decision: Decision) -> None:
        self._decisions.labels(agent=agent, reason=decision.value).inc()
        if decision not in _NOT_OFFER_OUTCOMES:
            self._offers.labels(agent=agent, outcome=offer_outcome(decision)).inc()
        if decision is Decision.ASSIGNMENT_TIMEOUT:
            self._assignment_timeouts.labels(agent=agent).inc()

    def job_running(self, agent: str, dispatch_latency: float) -> None:
        self._dispatch_latency.labels(agent=agent).observe(dispatch_latency)

    def job_ended(self, agent: str, outcome: JobOutcome, duration: float) -> None:
        self._jobs.labels(agent=agent, status=outcome.status.name.lower()).inc()
        self._job_duration.labels(agent=agent).observe(duration)

    def link_up(self, agent: str, up: bool) -> None:
        self._link_up.labels(agent=agent).set(1 if up else 0)

    def reconnected(self, agent: str) -> None:
        self._link_reconnects.labels(agent=agent).inc()

    def rtt(self, agent: str, seconds: float) -> None:
        self._link_rtt.labels(agent=agent).set(seconds)

    # -- the supervisor ------------------------------------------------------------------
    def reloaded(self, ok: bool) -> None:
        self._reloads.labels(result="ok" if ok else "failed").inc()

    # -- the pools' children (ChildMetricsSink) -------------------------------------------
    def child_metrics(self, agent: str, samples: Sequence[MetricSample]) -> None:
        """Record what a child of ``agent`` measured; count (never raise on) what is not ours."""
        for sample in samples:
            problem = self._child_sample_problem(agent, sample)
            if problem is None:
                component = sample.labels["component"]
                self._components.setdefault(agent, set()).add(component)
                self._agent_latency[sample.name].labels(agent=agent, component=component).observe(sample.value)
                continue
            self._child_rejected.labels(agent=agent).inc()
            if agent not in self._rejection_logged:
                self._rejection_logged.add(agent)
                log.debug("child metric sample rejected (further ones only counted)", agent=agent,
                          name=sample.name[:100], problem=problem)

    def _child_sample_problem(self, agent: str, sample: MetricSample) -> str | None:
        if sample.name not in AGENT_LATENCIES:
            return "unknown name"
        if sample.kind != "histogram":
            return f"kind {sample.kind}, expected histogram"
        if not (math.isfinite(sample.value) and sample.value >= 0):
            return f"value {sample.value} is not a finite non-negative number of seconds"
        component = sample.labels.get("component")
        if set(sample.labels) != {"component"} or not component or len(component) > MAX_COMPONENT_LENGTH:
            return "labels must be exactly a non-empty component of at most 64 characters"
        known = self._components.get(agent, set())
        if component not in known and len(known) >= MAX_COMPONENTS_PER_AGENT:
            return f"more than {MAX_COMPONENTS_PER_AGENT} components"
        return None


def offer_outcome(decision: Decision) -> str:
    """The ``outcome`` label of ``roomd_offers_total`` for an offer that ended in ``decision``."""
    return _OFFER_OUTCOMES.get(decision) or f"refused_{decision.value}"


class DaemonCollector(Collector):
    """State read at scrape time: nothing here is stored between scrapes but pool totals."""

    def __init__(self, view: DaemonView) -> None:
        self._view = view

    def describe(self) -> Iterable[Metric]:
        return []  # names are only known by collecting; nothing to clash with in our registry

    def collect(self) -> Iterator[Metric]:
        view = self._view
        yield from self._daemon(view)
        yield from self._links(view)
        yield from self._plugins(view)
        yield from self._pools(view)
        yield self._transitions(view)

    def _daemon(self, view: DaemonView) -> Iterator[Metric]:
        state = GaugeMetricFamily("roomd_daemon_state", "1 for the supervisor's current state.",
                                  labels=["state"])
        current = view.state.value
        for member in type(view.state):
            state.add_metric([str(member.value)], 1.0 if member.value == current else 0.0)
        yield state
        yield GaugeMetricFamily("roomd_generation", "Plugin code generation (1 at start, +1 "
                                "per reload).", value=view.generation)
        yield GaugeMetricFamily("roomd_load_ratio", "Service CPU load in 0..1 as reported to the "
                                "server (its cgroup, or its own process tree).",
                                value=view.load.value)
        yield GaugeMetricFamily("roomd_job_slots_in_use", "Admission slots reserved or running, "
                                "across agents.", value=view.admission.in_use)

    def _transitions(self, view: DaemonView) -> Metric:
        # Bounded labels: the machines and their tables' states, not which pool or child.
        counter = CounterMetricFamily("roomd_state_transitions", "State changes of the daemon's "
                                      "state machines (supervisor, plugin, link, job, pool, "
                                      "child), by machine and the states left and entered.",
                                      labels=["machine", "from", "to"])
        for (machine, old, new), count in sorted(view.transitions.counts().items()):
            counter.add_metric([machine, old, new], count)
        return counter

    def _links(self, view: DaemonView) -> Iterator[Metric]:
        active = GaugeMetricFamily("roomd_jobs_active", "Jobs accepted and not yet ended, by "
                                   "agent.", labels=["agent"])
        by_agent: dict[str, int] = {}
        for link in view.links:  # a retiring link may serve the same agent as the new one
            agent = link.registration.agent_name
            by_agent[agent] = by_agent.get(agent, 0) + sum(
                1 for job in link.jobs.values() if job.state is not JobState.ENDED)
        for agent, count in sorted(by_agent.items()):
            active.add_metric([agent], count)
        yield active
        load = GaugeMetricFamily("roomd_server_link_load", "Load last reported to the server "
                                 "(max of CPU share and slot use), by agent.", labels=["agent"])
        reported: dict[str, float] = {}
        for link in view.links:  # the serving link's value wins over a retiring one's
            agent = link.registration.agent_name
            if agent not in reported or not link.snapshot().draining:
                reported[agent] = link.reported_load
        for agent, value in sorted(reported.items()):
            load.add_metric([agent], value)
        yield load

    def _plugins(self, view: DaemonView) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("roomd_plugin_state", "1 for each plugin's current state.",
                                  labels=["plugin", "state"])
        for name, record in sorted(view.plugins.items()):
            for member in PluginState:
                gauge.add_metric([name, member.value], 1.0 if record.state is member else 0.0)
        yield gauge

    def _pools(self, view: DaemonView) -> Iterator[Metric]:
        live = view.roster.live()
        pool_state = GaugeMetricFamily("roomd_pool_state", "1 for the state of each plugin's "
                                       "current pool.", labels=["plugin", "state"])
        for plugin, pool in sorted(view.launcher.pools.items()):
            for member in PoolState:
                pool_state.add_metric([plugin, member.value], 1.0 if pool.state is member else 0.0)
        yield pool_state

        children = GaugeMetricFamily("roomd_children", "Child processes by state, every live "
                                     "generation.", labels=["agent", "state"])
        rss = GaugeMetricFamily("roomd_children_rss_bytes", "Sum of the children's resident "
                                "memory (shared pages counted once per child).", labels=["agent"])
        memory = GaugeMetricFamily("roomd_children_memory_bytes", "Sum of the children's "
                                   "proportional memory (PSS, else USS, else RSS).",
                                   labels=["agent"])
        rss_max = GaugeMetricFamily("roomd_child_rss_max_bytes", "Largest resident memory of "
                                    "one child.", labels=["agent"])
        agents = sorted({e.agent for e in live})
        for agent in agents:
            snaps = [c for e in live if e.agent == agent for c in e.snapshot.children]
            for state in CHILD_STATES:
                children.add_metric([agent, state], sum(1 for c in snaps if c.state == state))
            rss_values = [c.rss_bytes for c in snaps if c.rss_bytes is not None]
            rss.add_metric([agent], float(sum(rss_values)))
            memory.add_metric([agent], float(sum(c.memory_bytes for c in snaps
                                                 if c.memory_bytes is not None)))
            rss_max.add_metric([agent], float(max(rss_values, default=0)))
        yield children
        yield rss
        yield memory
        yield rss_max

        totals = view.roster.totals(live)
        restarts = CounterMetricFamily("roomd_child_restarts", "Child exits by reason (retired, "
                                       "shutdown, crashed, killed, unresponsive, ...).",
                                       labels=["agent", "reason"])
        failures = CounterMetricFamily("roomd_child_start_failures", "Children that failed to "
                                       "start (import, prewarm, timeout).", labels=["agent"])
        ipc = SummaryMetricFamily("roomd_child_ipc_rtt_seconds", "Supervisor-child Ping/Pong "
                                  "round trip.", labels=["agent"])
        dropped = CounterMetricFamily("roomd_child_logs_dropped", "Child log events dropped by "
                                      "the rate limit.", labels=["agent"])
        for agent, total in sorted(totals.items()):
            for reason, count in sorted(total.restarts.items()):
                restarts.add_metric([agent, reason], count)
            failures.add_metric([agent], total.start_failures)
            ipc.add_metric([agent], count_value=total.ipc_rtt_count,
                           sum_value=total.ipc_rtt_sum_seconds)
            dropped.add_metric([agent], total.logs_dropped)
        yield restarts
        yield failures
        yield ipc
        yield dropped
