"""A voice session's turn latencies travel from a real child to the pool's metrics sink."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from roomd.daemon.jobs import JobStatus
from roomd.daemon.pool import PoolState
from roomd.ipc import MetricSample

from pool_helpers import launched, make_launch

WAIT = 20.0


async def test_a_sessions_latencies_reach_the_sink_labelled_by_agent(make_pool) -> None:
    received: list[tuple[str, MetricSample]] = []

    def sink(agent: str, samples: Sequence[MetricSample]) -> None:
        received.extend((agent, sample) for sample in samples)

    pool = await make_pool("voice_plugin_for_tests:voice", metrics_sink=sink)
    assert await pool.wait_ready(WAIT) is PoolState.READY
    handle = await launched(pool, make_launch("turn"))
    outcome = await asyncio.wait_for(handle.wait_run_ended(), WAIT)
    assert outcome.status is JobStatus.SUCCESS, outcome.error
    # Metrics precede JobEnded on the one channel, so everything the job sent is here.
    assert {agent for agent, _ in received} == {"voice-tests"}
    names = {sample.name for _, sample in received}
    assert {"llm_ttft_seconds", "tts_ttfb_seconds", "end_of_utterance_delay_seconds"} <= names
    assert names <= {"llm_ttft_seconds", "tts_ttfb_seconds", "stt_duration_seconds",
                     "end_of_utterance_delay_seconds"}  # no job_duration_seconds any more
    for _, sample in received:
        assert sample.kind == "histogram"
        assert 0 <= sample.value < WAIT
        assert set(sample.labels) == {"component"} and sample.labels["component"]
    eou = [s for _, s in received if s.name == "end_of_utterance_delay_seconds"]
    assert [s.labels["component"] for s in eou] == ["session"]


async def test_a_job_without_a_session_sends_no_metrics(make_pool) -> None:
    received: list[MetricSample] = []
    pool = await make_pool(metrics_sink=lambda _agent, samples: received.extend(samples))
    handle = await launched(pool, make_launch("ok"))
    outcome = await asyncio.wait_for(handle.wait_run_ended(), WAIT)
    assert outcome.status is JobStatus.SUCCESS
    assert received == []
