"""A realtime model (the scripted one) answering a participant in a real room on the real
livekit-server: the model detects the user's turn from the WebRTC audio, answers with
its own audio (or with text a TTS voices), runs a tool, and is interrupted by speech."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from room_helpers import Participant, connect
from session_helpers import Clock
from voice_audio import quiet, tone, utterance

from roomd.agents.testing import ScriptedRealtimeModel, ScriptedReply, ToneTTS, tool_call
from roomd.agents.voice import AgentSession, AgentState, RoomInputOptions, RoomOutputOptions

pytestmark = pytest.mark.livekit_server

TIMEOUT = 20.0


@pytest.fixture
async def room_call(livekit_server: Any) -> AsyncIterator[Callable[..., Any]]:
    cleanups: list[Callable[[], Any]] = []

    async def open_call(model: ScriptedRealtimeModel, **session_kwargs: Any) -> tuple[Participant, AgentSession[Any]]:
        name = f"realtime-{uuid.uuid4().hex[:8]}"
        user = Participant(await connect(livekit_server, name, "user"))
        await user.publish_microphone()
        agent_room = await connect(livekit_server, name, "agent")
        session: AgentSession[Any] = AgentSession(llm=model, **session_kwargs)

        async def close() -> None:
            await asyncio.wait_for(session.aclose(), TIMEOUT)
            await user.aclose()
            await agent_room.disconnect()

        cleanups.append(close)
        await session.start(Clock(), room=agent_room, room_input_options=RoomInputOptions(),
                            room_output_options=RoomOutputOptions())
        await user.wait_for(lambda: len(user.heard) > 0, TIMEOUT)  # the agent's track reached the user
        return user, session

    yield open_call
    for close in reversed(cleanups):
        await close()


async def test_spoken_question_gets_the_models_audio_and_a_tool_answer(room_call: Any) -> None:
    model = ScriptedRealtimeModel([ScriptedReply(tool_calls=[tool_call("get_time")]), "It is noon."],
                                  transcripts=["what time is it"])
    user, session = await room_call(model)
    answered = asyncio.Event()  # the answer joins the history once its playout ended
    session.on("conversation_item_added",
               lambda ev: getattr(ev.item, "text_content", None) == "It is noon." and answered.set())
    before = time.perf_counter()
    await user.speak(utterance(0.5, 0.5))
    await user.wait_for(lambda: any(t.text == "It is noon." for t in user.transcripts), TIMEOUT)
    await user.wait_for(lambda: user.loud_frames(before) > 10, TIMEOUT)  # the model's voice, over WebRTC
    await asyncio.wait_for(answered.wait(), TIMEOUT)

    agent_track = session.room_io.audio_output.track_sid  # type: ignore[union-attr]
    assert [t.text for t in user.transcripts if t.track_id == agent_track] == ["It is noon."]
    user_texts = [t for t in user.transcripts if t.track_id == user.mic_sid]
    assert user_texts and user_texts[-1].text == "what time is it"
    assert [type(i).__name__ for i in session.history.items] == [
        "ChatMessage", "FunctionCall", "FunctionCallOutput", "ChatMessage"]
    rt = model.sessions[0]
    assert rt.audio_seconds > 0.5  # the room's audio reached the model


async def test_participant_speech_interrupts_the_model(room_call: Any) -> None:
    model = ScriptedRealtimeModel(default="This answer is long on purpose, " * 6, seconds_per_char=0.03)
    user, session = await room_call(model)
    handle = session.generate_reply()
    started = asyncio.Event()
    user.on_loud_frame = lambda at: started.set()
    await asyncio.wait_for(started.wait(), TIMEOUT)
    await user.speak(tone(0.5))
    await asyncio.wait_for(handle.wait_for_playout(), TIMEOUT)
    assert handle.interrupted
    cut_at = time.perf_counter()
    await user.wait_for(lambda: user.silent_run_since(cut_at) >= 20, TIMEOUT)  # the agent's track went quiet
    rt = model.sessions[0]
    assert rt.interruptions >= 1 and rt.truncations
    await user.speak(quiet(0.5))


async def test_text_model_with_a_separate_tts_in_a_room(room_call: Any) -> None:
    tts = ToneTTS(seconds_per_char=0.02)
    model = ScriptedRealtimeModel(["Hello from the text model."], modalities=["text"], transcripts=["hi"])
    user, session = await room_call(model, tts=tts)
    before = time.perf_counter()
    await user.speak(utterance(0.5, 0.5))
    await user.wait_for(lambda: any(t.text == "Hello from the text model." for t in user.transcripts), TIMEOUT)
    await user.wait_for(lambda: user.loud_frames(before) > 10, TIMEOUT)
    assert "".join(tts.requests).strip() == "Hello from the text model."
    await user.wait_for(lambda: session.agent_state == AgentState.LISTENING, TIMEOUT)
