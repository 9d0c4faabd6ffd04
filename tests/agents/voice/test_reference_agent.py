"""An agent file written for the reference API runs on roomd with only its imports changed."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from livekit import rtc
from room_helpers import Participant, connect, job_info
from voice_audio import utterance

from roomd.agents.job import JobContext, JobProcess
from roomd.agents.voice import AgentSession

pytestmark = pytest.mark.livekit_server

TIMEOUT = 20.0
AGENT_FILE = Path(__file__).parent / "data" / "reference_agent.py"


def load_agent_module() -> Any:
    spec = importlib.util.spec_from_file_location("reference_agent", AGENT_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_reference_agent_greets_and_answers_with_a_tool(livekit_server: Any, monkeypatch: Any) -> None:
    module = load_agent_module()
    sessions: list[AgentSession[Any]] = []

    class Recorded(AgentSession):  # type: ignore[type-arg]
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            sessions.append(self)

    monkeypatch.setattr(module, "AgentSession", Recorded)  # only to reach the session for cleanup

    name = f"ref-{uuid.uuid4().hex[:8]}"
    user = Participant(await connect(livekit_server, name, "visitor"))
    await user.publish_microphone()
    info = job_info(livekit_server, name, "assistant")
    ctx = JobContext(proc=JobProcess(pid=os.getpid()), info=info, room=rtc.Room())
    try:
        await asyncio.wait_for(module.entrypoint(ctx), TIMEOUT)
        await user.wait_for(lambda: any(t.text == "Hello! How can I help you today?" for t in user.transcripts), TIMEOUT)
        await user.speak(utterance(0.5, 0.2))
        await user.wait_for(
            lambda: any(t.text == "It is sunny and 21 degrees in Paris." for t in user.transcripts), TIMEOUT
        )
        await user.wait_for(lambda: user.loud_frames() > 5, TIMEOUT)
        (session,) = sessions
        assert session.userdata["lookups"] == ["Paris"]
        assert [m.text_content for m in session.history.messages if m.role == "user"] == ["what is the weather in Paris"]
    finally:
        for session in sessions:
            await asyncio.wait_for(session.aclose(), TIMEOUT)
        await user.aclose()
        await ctx.room.disconnect()
