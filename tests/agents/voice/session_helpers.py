"""Shared by the session tests: an event recorder, a session wired to memory inputs and
outputs, and ``Clock`` (an agent with one tool, ``get_time``)."""

from __future__ import annotations

import asyncio
from typing import Any

from roomd.agents.llm import function_tool
from roomd.agents.voice import (
    Agent,
    AgentSession,
    MemoryAudioInput,
    MemoryAudioOutput,
    MemoryTextOutput,
    MemoryUserTranscriptOutput,
)

TIMEOUT = 10.0


class Clock(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="Tell the time.")

    @function_tool
    async def get_time(self) -> str:
        """The current time."""
        return "noon"


class Recorder:
    """Collects every session event by name."""

    NAMES = (
        "user_input_transcribed", "conversation_item_added", "agent_state_changed", "user_state_changed",
        "function_tools_executed", "metrics_collected", "speech_created", "agent_false_interruption",
        "error", "close",
    )

    def __init__(self, session: AgentSession[Any]) -> None:
        self.events: dict[str, list[Any]] = {name: [] for name in self.NAMES}
        self._waiters: list[tuple[str, Any, asyncio.Future[Any]]] = []
        for name in self.NAMES:
            session.on(name, lambda ev, name=name: self._record(name, ev))

    def _record(self, name: str, ev: Any) -> None:
        self.events[name].append(ev)
        for waiter in list(self._waiters):
            wanted, predicate, fut = waiter
            if wanted == name and not fut.done() and predicate(ev):
                fut.set_result(ev)
                self._waiters.remove(waiter)

    async def wait(self, name: str, predicate: Any = lambda ev: True, timeout: float = TIMEOUT) -> Any:
        for ev in self.events[name]:
            if predicate(ev):
                return ev
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append((name, predicate, fut))
        return await asyncio.wait_for(fut, timeout)


class Harness:
    def __init__(self, session: AgentSession[Any]) -> None:
        self.session = session
        self.audio_in = MemoryAudioInput()
        self.audio_out = MemoryAudioOutput(sample_rate=48000)
        self.text_out = MemoryTextOutput()
        self.user_out = MemoryUserTranscriptOutput()
        session.input.audio = self.audio_in
        session.output.audio = self.audio_out
        session.output.transcription = self.text_out
        session.output.user_transcription = self.user_out
        self.events = Recorder(session)


