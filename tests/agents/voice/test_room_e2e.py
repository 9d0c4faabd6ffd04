"""AgentSession against the real livekit-server: a participant talks to the agent over
WebRTC (tone bursts the EnergyVAD and FakeSTT hear as "what time is it")."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from room_helpers import Participant, connect
from voice_audio import quiet, tone, utterance

from roomd.agents.llm import ChatContext, function_tool
from roomd.agents.testing import EnergyVAD, FakeSTT, ScriptedLLM, ScriptedReply, ToneTTS, tool_call
from roomd.agents.voice import Agent, AgentSession, AgentState, RoomInputOptions, RoomOutputOptions

pytestmark = pytest.mark.livekit_server

TIMEOUT = 20.0


def echo_last_user(ctx: ChatContext) -> str:
    users = [m.text_content for m in ctx.messages if m.role == "user"]
    return f"You said {users[-1]}." if users else "Hello."


class Clock(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="Tell the time.")
        self.calls = 0

    @function_tool
    async def get_time(self) -> str:
        """The current time."""
        self.calls += 1
        return "noon"


@dataclass
class Call:
    agent_room: Any
    user: Participant
    session: AgentSession[Any]
    agent: Clock
    llm: ScriptedLLM


@pytest.fixture
async def call(livekit_server: Any) -> AsyncIterator[Call]:
    name = f"voice-{uuid.uuid4().hex[:8]}"
    user = Participant(await connect(livekit_server, name, "user"))
    await user.publish_microphone()
    agent_room = await connect(livekit_server, name, "agent")
    llm = ScriptedLLM([ScriptedReply(tool_calls=[tool_call("get_time")]), "It is noon."], default=echo_last_user)
    session: AgentSession[Any] = AgentSession(
        vad=EnergyVAD(), stt=FakeSTT("what time is it"), llm=llm,
        tts=ToneTTS(seconds_per_char=0.02), min_endpointing_delay=0.1, min_interruption_duration=0.3,
    )
    agent = Clock()
    await session.start(agent, room=agent_room, room_input_options=RoomInputOptions(),
                        room_output_options=RoomOutputOptions())
    try:
        # the agent's track reaches the user before the test talks
        await user.wait_for(lambda: len(user.heard) > 0, TIMEOUT)
        yield Call(agent_room, user, session, agent, llm)
    finally:
        await asyncio.wait_for(session.aclose(), TIMEOUT)
        await user.aclose()
        await agent_room.disconnect()


async def test_spoken_turn_calls_a_tool_and_is_heard_and_transcribed(call: Call) -> None:
    user = call.user
    await user.speak(utterance(0.5, 0.2))
    await user.wait_for(lambda: any(t.text == "It is noon." for t in user.transcripts), TIMEOUT)
    assert call.agent.calls == 1
    await user.wait_for(lambda: user.loud_frames() > 5, TIMEOUT)

    # both sides' transcripts come from the agent's connection; the track id says whose
    agent_track = call.session.room_io.audio_output.track_sid  # type: ignore[union-attr]
    agent_texts = [t for t in user.transcripts if t.track_id == agent_track]
    assert [t.text for t in agent_texts] == ["It is noon."]
    assert agent_texts[0].segment_id and agent_texts[0].sender == "agent"

    user_texts = [t for t in user.transcripts if t.track_id == user.mic_sid]
    assert user_texts and user_texts[-1].text == "what time is it"
    assert user_texts[-1].attributes["lk.transcription_final"] == "true"
    assert [(m.role, m.text_content) for m in call.session.history.messages] == [
        ("user", "what time is it"), ("assistant", "It is noon."),
    ]


async def test_participant_speech_interrupts_the_agent(call: Call) -> None:
    user = call.user
    text = "This answer is long on purpose, " * 8  # ~5 s of tone
    handle = call.session.say(text)
    started = asyncio.Event()
    user.on_loud_frame = lambda at: started.set()
    await asyncio.wait_for(started.wait(), TIMEOUT)
    await user.speak(tone(0.7))
    await asyncio.wait_for(handle.wait_for_playout(), TIMEOUT)
    assert handle.interrupted
    cut_at = time.perf_counter()
    # the agent's track goes quiet (20 frames: 400 ms of silence) long before the text would end
    await user.wait_for(lambda: user.silent_run_since(cut_at) >= 20, TIMEOUT)
    assert call.session.history.messages[0].interrupted
    await user.speak(quiet(0.3))


async def test_chat_text_drives_a_reply(call: Call) -> None:
    user = call.user
    # spend the scripted tool turn first so the echo answers the chat
    call.llm._script.clear()
    await user.room.local_participant.send_text("are you there", topic="lk.chat")
    await user.wait_for(lambda: any(t.text == "You said are you there." for t in user.transcripts), TIMEOUT)
    assert call.session.history.messages[0].text_content == "are you there"
    await user.wait_for(lambda: call.session.agent_state == AgentState.LISTENING, TIMEOUT)
