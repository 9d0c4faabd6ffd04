"""The metrics registry and the HTTP endpoint in process, without a LiveKit server."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import socket
from unittest import mock

from aiohttp.test_utils import make_mocked_request
from prometheus_client.parser import text_string_to_metric_families

from roomd.daemon.admission import Decision
from roomd.daemon.config import Config, DaemonConfig
from roomd.daemon.jobs import JobOutcome, JobStatus
from roomd.daemon.ops.http import OpsHttpServer, is_loopback
from roomd.daemon.ops.pools import PoolRoster
from roomd.daemon.plugin_runtime import PluginRecord, PluginState
from roomd.daemon.pool import PoolState
from roomd.daemon.supervisor import Supervisor
from roomd.daemon.plugins.discovery import Discovery, PluginSpec

from daemon_process import parse_metrics, value
from notify_listener import NotifyListener


def _supervisor(**daemon: object) -> Supervisor:
    config = Config(daemon=DaemonConfig(**{"http_port": 0, **daemon}))  # type: ignore[arg-type]
    return Supervisor(config, discover=lambda: Discovery(plugins=(), problems=()))


def test_link_events_become_labelled_samples() -> None:
    metrics = _supervisor().metrics
    metrics.link_up("desk", True)
    metrics.rtt("desk", 0.012)
    metrics.reconnected("desk")
    metrics.decision("desk", Decision.ACCEPTED)
    metrics.decision("desk", Decision.OVERLOADED)
    metrics.decision("desk", Decision.ASSIGNMENT_TIMEOUT)
    metrics.decision("desk", Decision.WITHDRAWN)
    metrics.decision("desk", Decision.LAUNCH_FAILED)  # an accepted offer's job: no new outcome
    metrics.job_running("desk", 0.0007)
    metrics.job_ended("desk", JobOutcome(JobStatus.SUCCESS), 95.0)
    metrics.job_ended("desk", JobOutcome(JobStatus.FAILED, "boom"), 2.0)
    metrics.reloaded(False)
    text = metrics.exposition().decode()
    samples = parse_metrics(text)
    assert value(samples, "roomd_server_link_up", agent="desk") == 1
    assert value(samples, "roomd_server_link_rtt_seconds", agent="desk") == 0.012
    assert value(samples, "roomd_server_link_reconnects_total", agent="desk") == 1
    assert value(samples, "roomd_availability_decisions_total", agent="desk", reason="accepted") == 1
    assert value(samples, "roomd_availability_decisions_total", agent="desk",
                 reason="overloaded") == 1
    assert value(samples, "roomd_assignment_timeouts_total", agent="desk") == 1
    assert value(samples, "roomd_offers_total", agent="desk", outcome="accepted") == 1
    assert value(samples, "roomd_offers_total", agent="desk", outcome="refused_overloaded") == 1
    assert value(samples, "roomd_offers_total", agent="desk", outcome="timed_out") == 1
    # Sub-millisecond dispatch lands in the first bucket, a 95 s call between 60 and 120.
    assert value(samples, "roomd_dispatch_latency_seconds_bucket", agent="desk", le="0.001") == 1
    assert value(samples, "roomd_dispatch_latency_seconds_bucket", agent="desk", le="0.0005") == 0
    assert value(samples, "roomd_job_duration_seconds_bucket", agent="desk", le="120.0") == 2
    assert value(samples, "roomd_job_duration_seconds_bucket", agent="desk", le="60.0") == 1
    assert value(samples, "roomd_jobs_total", agent="desk", status="success") == 1
    assert value(samples, "roomd_jobs_total", agent="desk", status="failed") == 1
    assert value(samples, "roomd_offers_total", agent="desk", outcome="withdrawn") == 1
    assert sum(v for (name, labels), v in samples.items() if name == "roomd_offers_total"
               and ("agent", "desk") in labels) == 4
    assert value(samples, "roomd_reloads_total", result="failed") == 1
    assert value(samples, "roomd_daemon_state", state="starting") == 1
    labels = {name for family in text_string_to_metric_families(text)
              for sample in family.samples for name in sample.labels}
    assert not labels & {"pid", "job", "job_id", "room"}


def test_state_transitions_are_counted_by_machine_and_states() -> None:
    supervisor = _supervisor()
    record = PluginRecord(PluginSpec("p", "m:a", "d", "1"), transitions=supervisor.transitions)
    record.transition(PluginState.SERVING)
    record.transition(PluginState.DISABLED)
    record.transition(PluginState.STARTING)
    record.transition(PluginState.SERVING)
    samples = parse_metrics(supervisor.metrics.exposition().decode())
    def transitions(machine: str, old: str, new: str) -> float:
        return value(samples, "roomd_state_transitions_total", machine=machine,
                     **{"from": old, "to": new})
    assert transitions("plugin", "starting", "serving") == 2
    assert transitions("plugin", "serving", "disabled") == 1
    assert transitions("plugin", "disabled", "starting") == 1


def test_two_daemons_do_not_share_metrics() -> None:
    first, second = _supervisor().metrics, _supervisor().metrics
    first.reloaded(True)
    assert value(parse_metrics(second.exposition().decode()), "roomd_reloads_total",
                 result="ok") == 0


@dataclasses.dataclass
class _Stats:
    restarts: dict[str, int]
    start_failures_total: int = 0
    ipc_rtt_count: int = 0
    ipc_rtt_sum_seconds: float = 0.0
    logs_dropped: int = 0


@dataclasses.dataclass
class _Snapshot:
    stats: _Stats
    children: tuple[object, ...] = ()


class _Pool:
    """The little of a Pool the roster reads: its state, agent label and snapshot."""

    def __init__(self, generation: int) -> None:
        self.plugin = "desk-plugin"
        self.generation = generation
        self.agent = "desk"  # Pool.agent: the label the roster folds a closed pool's counts under
        self.state = PoolState.READY
        self.restarts: collections.Counter[str] = collections.Counter()

    def snapshot(self) -> _Snapshot:
        return _Snapshot(_Stats(dict(self.restarts), ipc_rtt_count=sum(self.restarts.values())))


def test_counters_keep_a_retired_generations_counts() -> None:
    roster = PoolRoster()
    old, new = _Pool(1), _Pool(2)
    roster.add(old)  # type: ignore[arg-type]
    old.restarts["retired"] = 3
    assert roster.totals(roster.live())["desk"].restarts["retired"] == 3
    roster.add(new)  # type: ignore[arg-type]
    old.restarts["crashed"] = 1  # one more exit while it finishes its jobs
    old.state = PoolState.CLOSED
    new.restarts["retired"] = 1
    live = roster.live()
    assert [entry.pool for entry in live] == [new]
    totals = roster.totals(live)["desk"]
    assert totals.restarts == {"retired": 4, "crashed": 1}
    assert totals.ipc_rtt_count == 5
    new.restarts["retired"] = 2
    assert roster.totals(roster.live())["desk"].restarts["retired"] == 5


def test_only_loopback_peers_count_as_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.3.2.1") and is_loopback("::1")
    assert not is_loopback("10.0.0.7") and not is_loopback("::ffff:10.0.0.7")
    assert not is_loopback(None) and not is_loopback("") and not is_loopback("not-an-ip")


async def test_reload_is_refused_to_a_peer_off_the_loopback() -> None:
    supervisor = _supervisor()
    server = OpsHttpServer(supervisor, supervisor.metrics, host="127.0.0.1", port=0)
    transport = mock.Mock()
    transport.get_extra_info.side_effect = \
        lambda name, default=None: ("192.0.2.7", 4242) if name == "peername" else default
    request = make_mocked_request("POST", "/reload", transport=transport)
    response = await server._reload(request)
    assert response.status == 403
    assert b"loopback" in response.body  # type: ignore[operator]


async def test_a_taken_http_port_fails_the_daemon_with_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        supervisor = _supervisor(http_port=taken.getsockname()[1])
        assert await asyncio.wait_for(supervisor.run(), 10) == 1


async def test_drain_asks_systemd_for_time_only_within_its_budget() -> None:
    from roomd.daemon.ops.service import ServiceOps
    from roomd.daemon.supervisor import SupervisorState

    with NotifyListener() as listener:
        supervisor = _supervisor()
        ops = ServiceOps(supervisor, supervisor.metrics, http_host="127.0.0.1", http_port=0,
                         stop_budget=0.5, environ={"NOTIFY_SOCKET": listener.address},
                         status_interval=0.05)
        await ops.start()
        loop = asyncio.get_running_loop()
        extends: list[float] = []
        try:
            draining_at = loop.time()
            ops.on_state(SupervisorState.DRAINING)
            assert "STOPPING" in await listener.next(5)
            while True:  # until the daemon has been quiet for ten status intervals
                try:
                    message = await listener.next(0.5)
                except TimeoutError:
                    break
                if "EXTEND_TIMEOUT_USEC" in message:
                    # Three status intervals: a missed tick or two is no timeout.
                    assert int(message["EXTEND_TIMEOUT_USEC"]) == 150_000
                    extends.append(loop.time() - draining_at)
        finally:
            await ops.aclose()
        assert len(extends) >= 2
        assert max(extends) < 0.5 + 0.05 + 0.2  # none once the 0.5 s budget is spent
