"""Which session metrics reach the daemon, and that a session reports them only inside a job."""

from __future__ import annotations

import asyncio
import contextvars
import math
from typing import Any

from livekit.protocol import agent as agent_pb
from voice_audio import utterance

from roomd.agents.job import JobContext, JobProcess, RunningJobInfo, _set_current
from roomd.agents.job_request import AcceptArguments
from roomd.agents.llm import LLMMetrics
from roomd.agents.stt import STTMetrics
from roomd.agents.testing import EnergyVAD, FakeSTT, ScriptedLLM, ToneTTS
from roomd.agents.tts import TTSMetrics
from roomd.agents.voice import Agent, AgentSession, EOUMetrics, MemoryAudioInput, MemoryAudioOutput
from roomd.agents.voice.metrics_report import LATENCY_NAMES, LatencySample, latency_sample

TIMEOUT = 10.0


def _llm(ttft: float, label: str = "acme.LLM") -> LLMMetrics:
    return LLMMetrics(label=label, request_id="r", timestamp=0.0, ttft=ttft, duration=1.0, cancelled=False,
                      completion_tokens=3, prompt_tokens=5, total_tokens=8, tokens_per_second=3.0)


def _tts(ttfb: float, label: str = "acme.TTS") -> TTSMetrics:
    return TTSMetrics(label=label, request_id="r", timestamp=0.0, ttfb=ttfb, duration=1.0, audio_duration=1.0,
                      characters_count=10, cancelled=False, streamed=True)


def _stt(duration: float, *, streamed: bool, label: str = "acme.STT") -> STTMetrics:
    return STTMetrics(label=label, request_id="r", timestamp=0.0, duration=duration, audio_duration=2.0,
                      streamed=streamed)


def test_each_latency_maps_to_its_name_and_component() -> None:
    eou = EOUMetrics(timestamp=0.0, end_of_utterance_delay=0.4, transcription_delay=0.1,
                     on_user_turn_completed_delay=0.0)
    assert latency_sample(_llm(0.25)) == LatencySample("llm_ttft_seconds", 0.25, "acme.LLM")
    assert latency_sample(_tts(0.125)) == LatencySample("tts_ttfb_seconds", 0.125, "acme.TTS")
    assert latency_sample(_stt(0.5, streamed=False)) == LatencySample("stt_duration_seconds", 0.5, "acme.STT")
    assert latency_sample(eou) == LatencySample("end_of_utterance_delay_seconds", 0.4, "session")
    assert {s.name for s in map(latency_sample, (_llm(0.1), _tts(0.1), _stt(0.1, streamed=False), eou))
            if s is not None} == set(LATENCY_NAMES)


def test_what_is_no_latency_is_not_reported() -> None:
    assert latency_sample(_llm(-1.0)) is None  # no first token arrived
    assert latency_sample(_tts(-1.0)) is None  # no audio arrived
    assert latency_sample(_stt(0.0, streamed=True)) is None  # a stream has no request duration
    assert latency_sample(_llm(math.nan)) is None
    assert latency_sample(_tts(math.inf)) is None
    assert latency_sample("not a metric") is None


def test_a_long_component_label_is_cut_to_64_characters() -> None:
    sample = latency_sample(_llm(0.2, label="x" * 200))
    assert sample is not None and sample.component == "x" * 64


def _job_context(reporter: Any) -> JobContext:
    from livekit import rtc

    info = RunningJobInfo(job=agent_pb.Job(id="AJ_metrics"), url="ws://127.0.0.1:1", token="t",
                          accept=AcceptArguments(identity="agent"), worker_id="W")
    return JobContext(proc=JobProcess(pid=0), info=info, room=rtc.Room(), metrics_reporter=reporter)


async def _one_turn() -> list[Any]:
    """Run one spoken turn; return the metrics the session emitted."""
    session: AgentSession[Any] = AgentSession(vad=EnergyVAD(), stt=FakeSTT("hello there"), tts=ToneTTS(),
                                              llm=ScriptedLLM(["Hi."]), min_endpointing_delay=0.05)
    audio_in = MemoryAudioInput()
    session.input.audio = audio_in
    session.output.audio = MemoryAudioOutput(sample_rate=48000)
    emitted: list[Any] = []
    kinds_seen = asyncio.Event()

    def on_metrics(ev: Any) -> None:
        emitted.append(ev.metrics)
        if {"EOUMetrics", "LLMMetrics", "TTSMetrics"} <= {type(m).__name__ for m in emitted}:
            kinds_seen.set()

    session.on("metrics_collected", on_metrics)
    await session.start(Agent(instructions="Be brief."))
    try:
        for frame in utterance():
            audio_in.push_frame(frame)
        await asyncio.wait_for(kinds_seen.wait(), TIMEOUT)
    finally:
        await asyncio.wait_for(session.aclose(), TIMEOUT)
    return emitted


async def test_a_session_in_a_job_reports_its_latencies_to_the_job() -> None:
    reported: list[LatencySample] = []
    ctx = _job_context(reported.append)

    async def in_job() -> list[Any]:
        _set_current(ctx)
        return await _one_turn()

    emitted = await asyncio.create_task(in_job(), context=contextvars.copy_context())
    expected = [s for s in map(latency_sample, emitted) if s is not None]
    assert reported == expected
    names = {s.name for s in reported}
    assert {"llm_ttft_seconds", "tts_ttfb_seconds", "end_of_utterance_delay_seconds"} <= names
    assert all(s.seconds >= 0 and s.component for s in reported)


async def test_a_session_outside_a_job_reports_nothing_and_still_emits() -> None:
    reported: list[LatencySample] = []
    _job_context(reported.append)  # a job exists, but this task is not running in it
    emitted = await _one_turn()
    assert {"EOUMetrics", "LLMMetrics", "TTSMetrics"} <= {type(m).__name__ for m in emitted}
    assert reported == []
