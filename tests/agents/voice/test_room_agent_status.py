"""What a front end reads besides transcripts: the agent's state as the participant
attribute ``lk.agent.state`` and each turn's latencies on ``roomd.turn_metrics``, over a
real livekit-server (tone bursts the EnergyVAD and FakeSTT hear as a question)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from livekit import api, rtc
from room_helpers import Participant, connect
from session_helpers import Clock
from voice_audio import utterance

from roomd.agents.testing import EnergyVAD, FakeSTT, ScriptedLLM, ScriptedReply, ToneTTS, tool_call
from roomd.agents.voice import AgentSession
from roomd.agents.voice.room_io.options import ATTR_AGENT_STATE, TOPIC_TURN_METRICS

pytestmark = pytest.mark.livekit_server

TIMEOUT = 20.0


async def test_state_attribute_and_turn_latencies_reach_the_room(livekit_server: Any) -> None:
    name = f"status-{uuid.uuid4().hex[:8]}"
    user = Participant(await connect(livekit_server, name, "user"))
    await user.publish_microphone()
    states: list[str] = []
    turns: dict[int, dict[str, Any]] = {}

    def on_attributes(changed: dict[str, str], participant: rtc.Participant) -> None:
        if ATTR_AGENT_STATE in changed:
            states.append(changed[ATTR_AGENT_STATE])
            user._changed.set()

    def on_data(packet: rtc.DataPacket) -> None:
        if packet.topic == TOPIC_TURN_METRICS:
            turn = json.loads(packet.data)
            turns[turn["turn"]] = turn
            user._changed.set()

    user.room.on("participant_attributes_changed", on_attributes)
    user.room.on("data_received", on_data)
    # As a job's token does, the agent's may set its own attributes.
    agent_room = rtc.Room()
    await agent_room.connect(livekit_server.url, api.AccessToken(
        livekit_server.api_key, livekit_server.api_secret).with_identity("agent").with_grants(
        api.VideoGrants(room_join=True, room=name, can_update_own_metadata=True)).to_jwt())
    llm = ScriptedLLM([ScriptedReply(tool_calls=[tool_call("get_time")]), "It is noon.", "Noon again."])
    session: AgentSession[Any] = AgentSession(
        vad=EnergyVAD(), stt=FakeSTT("what time is it"), llm=llm,
        tts=ToneTTS(seconds_per_char=0.02), min_endpointing_delay=0.1)
    await session.start(Clock(), room=agent_room)
    try:
        # The first value comes with the agent's participant info (no change event here).
        async with asyncio.timeout(TIMEOUT):
            while not any(p.attributes.get(ATTR_AGENT_STATE) == "listening"
                          for p in user.room.remote_participants.values()):
                await asyncio.sleep(0.02)
        await user.speak(utterance(0.5, 0.2))

        def spoken_turn_complete() -> bool:
            turn = turns.get(1)
            return bool(turn and turn["first_audio"] and len(turn["llm_ttft"]) == 2 and turn["tts_ttfb"])

        await user.wait_for(spoken_turn_complete, TIMEOUT)
        spoken = turns[1]
        assert spoken["input"] == "voice"
        assert 0 <= spoken["transcription_delay"] <= spoken["end_of_turn_delay"] < spoken["first_audio"]
        await user.wait_for(lambda: states[-1:] == ["listening"], TIMEOUT)
        # The first "listening" shows up as a change or only in the join info, by timing.
        turn_states = states[1:] if states[:1] == ["listening"] else states
        assert turn_states[:3] == ["thinking", "speaking", "listening"], states

        await user.room.local_participant.send_text("and now", topic="lk.chat")
        await user.wait_for(lambda: bool(turns.get(2, {}).get("first_audio")), TIMEOUT)
        typed = turns[2]
        assert typed["input"] == "text" and typed["transcription_delay"] is None
        assert typed["llm_ttft"] and typed["first_audio"] > 0
    finally:
        await session.aclose()
        await user.aclose()
        await agent_room.disconnect()
