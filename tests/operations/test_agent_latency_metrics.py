"""Samples children send (IPC ``Metrics``): known latencies become per-agent histograms, the rest is counted."""

from __future__ import annotations

import math

import structlog
from prometheus_client.parser import text_string_to_metric_families

from roomd.daemon.config import Config, DaemonConfig
from roomd.daemon.ops.metrics import AGENT_LATENCIES, MAX_COMPONENTS_PER_AGENT, DaemonMetrics
from roomd.daemon.supervisor import Supervisor
from roomd.ipc import MetricSample
from roomd.daemon.plugins.discovery import Discovery


def _metrics() -> DaemonMetrics:
    config = Config(daemon=DaemonConfig(http_port=0))
    return Supervisor(config, discover=lambda: Discovery(plugins=(), problems=())).metrics


def _samples(metrics: DaemonMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(metrics.exposition().decode())
            for s in family.samples}


def _latency(name: str, value: float, component: str = "acme.LLM", **labels: str) -> MetricSample:
    return MetricSample(name=name, kind="histogram", value=value, labels={"component": component, **labels})


def _key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def test_each_known_latency_becomes_a_histogram_by_agent_and_component() -> None:
    metrics = _metrics()
    metrics.child_metrics("desk", [_latency("llm_ttft_seconds", 0.3, "acme.LLM"),
                                   _latency("llm_ttft_seconds", 4.0, "acme.LLM")])
    metrics.child_metrics("desk", [_latency("tts_ttfb_seconds", 0.12, "acme.TTS")])
    metrics.child_metrics("desk", [_latency("stt_duration_seconds", 0.05, "acme.STT")])
    metrics.child_metrics("front", [_latency("end_of_utterance_delay_seconds", 0.7, "session")])
    s = _samples(metrics)
    llm = {"agent": "desk", "component": "acme.LLM"}
    assert s[_key("roomd_agent_llm_ttft_seconds_count", **llm)] == 2
    assert s[_key("roomd_agent_llm_ttft_seconds_sum", **llm)] == 4.3
    assert s[_key("roomd_agent_llm_ttft_seconds_bucket", le="0.3", **llm)] == 1
    assert s[_key("roomd_agent_llm_ttft_seconds_bucket", le="3.0", **llm)] == 1
    assert s[_key("roomd_agent_llm_ttft_seconds_bucket", le="5.0", **llm)] == 2
    assert s[_key("roomd_agent_tts_ttfb_seconds_bucket", le="0.15", agent="desk", component="acme.TTS")] == 1
    assert s[_key("roomd_agent_tts_ttfb_seconds_bucket", le="0.1", agent="desk", component="acme.TTS")] == 0
    assert s[_key("roomd_agent_stt_duration_seconds_bucket", le="0.05", agent="desk", component="acme.STT")] == 1
    assert s[_key("roomd_agent_end_of_utterance_delay_seconds_count", agent="front", component="session")] == 1
    # Nothing was rejected, and no series leaked under another agent.
    assert _key("roomd_child_metrics_rejected_total", agent="desk") not in s
    assert _key("roomd_agent_end_of_utterance_delay_seconds_count", agent="desk", component="session") not in s


def test_unknown_or_malformed_samples_are_counted_not_recorded() -> None:
    metrics = _metrics()
    bad = [
        MetricSample(name="job_duration_seconds", kind="histogram", value=3.0),  # the old, removed sample
        _latency("my_private_metric_seconds", 0.2),
        MetricSample(name="llm_ttft_seconds", kind="counter", value=1.0, labels={"component": "acme.LLM"}),
        _latency("llm_ttft_seconds", -0.1),
        _latency("llm_ttft_seconds", math.nan),
        _latency("llm_ttft_seconds", math.inf),
        _latency("llm_ttft_seconds", 0.2, component=""),
        _latency("llm_ttft_seconds", 0.2, component="x" * 65),
        _latency("llm_ttft_seconds", 0.2, room="a-room"),  # labels beyond component: unbounded sets
        MetricSample(name="llm_ttft_seconds", kind="histogram", value=0.2),  # no component
    ]
    metrics.child_metrics("desk", bad)
    metrics.child_metrics("desk", [_latency("tts_ttfb_seconds", 0.2, "acme.TTS")])  # still accepted after
    s = _samples(metrics)
    assert s[_key("roomd_child_metrics_rejected_total", agent="desk")] == len(bad)
    assert not any(name.startswith("roomd_agent_llm_ttft_seconds") and dict(labels)
                   for name, labels in s)
    assert s[_key("roomd_agent_tts_ttfb_seconds_count", agent="desk", component="acme.TTS")] == 1
    names = {name for name, _labels in s}
    assert not any("job_duration_seconds" in n and n.startswith("roomd_agent") for n in names)
    assert not any("my_private_metric" in n for n in names)


def test_components_per_agent_are_bounded() -> None:
    metrics = _metrics()
    for i in range(MAX_COMPONENTS_PER_AGENT + 3):
        metrics.child_metrics("desk", [_latency("llm_ttft_seconds", 0.2, f"llm-{i}")])
    metrics.child_metrics("desk", [_latency("llm_ttft_seconds", 0.2, "llm-0")])  # a known one still counts
    metrics.child_metrics("other", [_latency("llm_ttft_seconds", 0.2, "llm-99")])  # another agent has room
    s = _samples(metrics)
    components = {dict(labels)["component"] for name, labels in s
                  if name == "roomd_agent_llm_ttft_seconds_count" and dict(labels)["agent"] == "desk"}
    assert components == {f"llm-{i}" for i in range(MAX_COMPONENTS_PER_AGENT)}
    assert s[_key("roomd_agent_llm_ttft_seconds_count", agent="desk", component="llm-0")] == 2
    assert s[_key("roomd_child_metrics_rejected_total", agent="desk")] == 3
    assert s[_key("roomd_agent_llm_ttft_seconds_count", agent="other", component="llm-99")] == 1


def test_a_rejection_is_logged_once_per_agent() -> None:
    metrics = _metrics()
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            metrics.child_metrics("desk", [_latency("nope_seconds", 1.0)])
        metrics.child_metrics("front", [_latency("nope_seconds", 1.0)])
    rejected = [entry for entry in logs if entry["event"].startswith("child metric sample rejected")]
    assert [(e["agent"], e["log_level"], e["problem"]) for e in rejected] == [
        ("desk", "debug", "unknown name"), ("front", "debug", "unknown name"),
    ]


def test_every_latency_name_is_documented() -> None:
    from pathlib import Path

    from roomd.agents.voice.metrics_report import LATENCY_NAMES

    assert set(AGENT_LATENCIES) == set(LATENCY_NAMES)  # the SDK sends exactly what we accept
    operations = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    for name in (*AGENT_LATENCIES, "child_metrics_rejected"):
        assert f"roomd_{'agent_' if name in AGENT_LATENCIES else ''}{name}" in operations
