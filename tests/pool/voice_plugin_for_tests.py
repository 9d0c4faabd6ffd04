"""A plugin whose job runs one voice turn through an AgentSession with in-memory audio.

The scripted components (FakeSTT, ScriptedLLM, ToneTTS, EnergyVAD) need no model and no
room, so the turn's metrics are real measurements of a real session in a real child. The
entrypoint fails (a FAILED job) if the turn does not produce its LLM, TTS and end-of-turn
metrics in time.
"""

from __future__ import annotations

import asyncio
from typing import Any

from roomd.agents import JobContext, WorkerOptions
from roomd.agents.testing import EnergyVAD, FakeSTT, ScriptedLLM, ToneTTS
from roomd.agents.utils.audio import silence, sine, split_frame
from roomd.agents.voice import Agent, AgentSession, MemoryAudioInput, MemoryAudioOutput

RATE = 48000
TURN_TIMEOUT = 10.0


async def _one_turn(ctx: JobContext) -> None:
    session: AgentSession[Any] = AgentSession(vad=EnergyVAD(), stt=FakeSTT("what time is it"), tts=ToneTTS(),
                                              llm=ScriptedLLM(["It is noon."]), min_endpointing_delay=0.05)
    audio_in = MemoryAudioInput()
    session.input.audio = audio_in
    session.output.audio = MemoryAudioOutput(sample_rate=RATE)
    kinds: set[str] = set()
    turn_measured = asyncio.Event()

    def on_metrics(ev: Any) -> None:
        kinds.add(type(ev.metrics).__name__)
        if {"EOUMetrics", "LLMMetrics", "TTSMetrics"} <= kinds:
            turn_measured.set()

    session.on("metrics_collected", on_metrics)
    await session.start(Agent(instructions="Be brief."))
    try:
        # A tone burst the energy VAD hears as speech, then enough silence to end the turn.
        speech = split_frame(sine(0.4, frequency=300.0, amplitude=0.3, sample_rate=RATE), 0.02)
        pause = split_frame(silence(0.6, sample_rate=RATE), 0.02)
        for frame in speech + pause:
            audio_in.push_frame(frame)
        async with asyncio.timeout(TURN_TIMEOUT):
            await turn_measured.wait()
    finally:
        await session.aclose()


voice = WorkerOptions(entrypoint_fnc=_one_turn, agent_name="voice-tests")
