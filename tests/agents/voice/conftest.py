"""``make``: an AgentSession on memory I/O with the testing components, closed after the test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from session_helpers import TIMEOUT, Harness

from roomd.agents.testing import EnergyVAD, FakeSTT, ToneTTS
from roomd.agents.voice import Agent, AgentSession


@pytest.fixture
async def make() -> AsyncIterator[Any]:
    sessions: list[AgentSession[Any]] = []

    async def build(agent: Agent, **kwargs: Any) -> Harness:
        kwargs.setdefault("vad", EnergyVAD())
        kwargs.setdefault("stt", FakeSTT("what time is it"))
        kwargs.setdefault("tts", ToneTTS())
        kwargs.setdefault("min_endpointing_delay", 0.05)
        session: AgentSession[Any] = AgentSession(**kwargs)
        harness = Harness(session)
        await session.start(agent)
        sessions.append(session)
        return harness

    yield build
    for session in sessions:
        await asyncio.wait_for(session.aclose(), TIMEOUT)
