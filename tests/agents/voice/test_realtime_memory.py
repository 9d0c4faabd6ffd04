"""AgentSession driving a realtime model (the scripted one) over in-memory audio:
server-side turns, its own audio or text through a TTS, tools, interruption, updates."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from session_helpers import Clock
from voice_audio import quiet, tone, utterance

from roomd.agents.llm import ChatContext, FunctionCall, FunctionCallOutput, function_tool
from roomd.agents.testing import ScriptedRealtimeModel, ScriptedReply, ToneTTS, tool_call
from roomd.agents.voice import Agent, AgentSession, AgentState, ModelSettings, UserState

TIMEOUT = 10.0


def is_assistant(ev: Any) -> bool:
    return getattr(ev.item, "role", "") == "assistant"


async def test_the_models_turn_detection_and_audio_answer_the_user(make: Any) -> None:
    model = ScriptedRealtimeModel(["It is noon."], transcripts=["what time is it"])
    h = await make(Clock(), llm=model)
    rt = model.sessions[0]
    assert rt.instructions == "Tell the time." and sorted(rt.tools.function_tools) == ["get_time"]

    for frame in utterance(0.4, 0.5):
        h.audio_in.push_frame(frame)
    await h.events.wait("conversation_item_added", is_assistant)
    assert [(m.role, m.text_content) for m in h.session.history.messages] == [
        ("user", "what time is it"), ("assistant", "It is noon."),
    ]
    await h.events.wait("agent_state_changed", lambda ev: ev.old_state == AgentState.SPEAKING)
    assert h.audio_out.heard_duration > 0.1  # the model's own audio
    assert h.text_out.segments == ["It is noon."]
    assert [ev.new_state for ev in h.events.events["user_state_changed"]][:2] == [UserState.SPEAKING, UserState.LISTENING]
    assert [ev.transcript for ev in h.events.events["user_input_transcribed"]] == ["what time is it"]
    assert rt.requests[0].user_initiated is False
    assert rt.audio_seconds >= 0.9  # every pushed frame reached the model


async def test_tool_calls_run_and_their_outputs_go_back_to_the_model(make: Any) -> None:
    model = ScriptedRealtimeModel([ScriptedReply(tool_calls=[tool_call("get_time")]), "It is noon."])
    h = await make(Clock(), llm=model)
    for frame in utterance(0.4, 0.5):
        h.audio_in.push_frame(frame)
    await h.events.wait("conversation_item_added", is_assistant)
    items = h.session.history.items
    assert [type(i).__name__ for i in items] == ["ChatMessage", "FunctionCall", "FunctionCallOutput", "ChatMessage"]
    follow_up = model.sessions[0].requests[1]
    assert follow_up.user_initiated  # the session asked the model to answer the output
    outputs = [i for i in follow_up.chat_ctx.items if isinstance(i, FunctionCallOutput)]
    assert [o.output for o in outputs] == ["noon"]
    assert any(isinstance(i, FunctionCall) for i in follow_up.chat_ctx.items)


async def test_user_speech_interrupts_and_truncates_the_answer(make: Any) -> None:
    model = ScriptedRealtimeModel(default="This answer is long on purpose and goes on and on for a good while.",
                                  seconds_per_char=0.05)
    h = await make(Clock(), llm=model)
    handle = h.session.generate_reply()
    await h.events.wait("agent_state_changed", lambda ev: ev.new_state == AgentState.SPEAKING)
    await h.audio_in.push_realtime(quiet(0.8))  # some of the answer is heard first
    await h.audio_in.push_realtime(tone(0.3))
    await asyncio.wait_for(handle.wait_for_playout(), TIMEOUT)
    assert handle.interrupted
    rt = model.sessions[0]
    assert rt.interruptions >= 1
    (cut,) = rt.truncations
    assert 500 <= cut.audio_end_ms < 2500  # the full answer is over 3 s
    message = h.session.history.messages[0]
    assert message.interrupted and message.role == "assistant"
    assert message.text_content and message.text_content.startswith("This answer")
    assert len(message.text_content) < 50  # only what was heard
    assert h.audio_out.heard_duration < 2.0
    await h.audio_in.push_realtime(quiet(0.4))  # the user's turn ends; the model answers it
    await h.events.wait("conversation_item_added", lambda ev: is_assistant(ev) and not ev.item.interrupted)


async def test_agent_updates_reach_the_model(make: Any) -> None:
    model = ScriptedRealtimeModel(["ok"])
    agent = Clock()
    await make(agent, llm=model)
    rt = model.sessions[0]

    @function_tool
    async def get_date() -> str:
        """Today's date."""
        return "monday"

    await agent.update_instructions("Tell the date.")
    await agent.update_tools([get_date])
    ctx = ChatContext.empty()
    ctx.add_message(role="user", content="earlier question")
    await agent.update_chat_ctx(ctx)
    assert rt.instructions == "Tell the date."
    assert list(rt.tools.function_tools) == ["get_date"]
    assert [m.text_content for m in rt.chat_ctx.messages] == ["earlier question"]


async def test_generate_reply_passes_instructions(make: Any) -> None:
    model = ScriptedRealtimeModel(["Hello!"])
    h = await make(Clock(), llm=model)
    await h.session.generate_reply(instructions="Greet the user.")
    request = model.sessions[0].requests[0]
    assert request.user_initiated and request.extra_instructions == "Greet the user."
    assert [m.text_content for m in h.session.history.messages] == ["Hello!"]


async def test_the_models_audio_and_text_go_through_the_agents_nodes(make: Any) -> None:
    class Quieter(Clock):
        frames = 0

        async def realtime_audio_output_node(self, audio: Any, model_settings: ModelSettings) -> Any:
            async for frame in Agent.default.realtime_audio_output_node(self, audio, model_settings):
                self.frames += 1
                yield frame

        async def transcription_node(self, text: Any, model_settings: ModelSettings) -> Any:
            async for piece in text:
                yield piece.upper()

    agent = Quieter()
    model = ScriptedRealtimeModel(["It is noon."])
    h = await make(agent, llm=model)
    await asyncio.wait_for(h.session.generate_reply(), TIMEOUT)
    assert agent.frames > 0 and h.audio_out.heard_duration > 0.1
    assert h.text_out.segments == ["IT IS NOON."]
    assert [m.text_content for m in h.session.history.messages] == ["IT IS NOON."]


async def test_a_text_only_model_speaks_through_the_tts(make: Any) -> None:
    tts = ToneTTS()
    model = ScriptedRealtimeModel(["Spoken by the TTS."], modalities=["text"])
    assert not model.capabilities.audio_output
    h = await make(Clock(), llm=model, tts=tts)
    for frame in utterance(0.4, 0.5):
        h.audio_in.push_frame(frame)
    await h.events.wait("conversation_item_added", is_assistant)
    await h.events.wait("agent_state_changed", lambda ev: ev.old_state == AgentState.SPEAKING)
    assert "".join(tts.requests).strip() == "Spoken by the TTS."
    assert h.audio_out.heard_duration > 0.1
    assert h.session.history.messages[-1].text_content == "Spoken by the TTS."


async def test_session_run_works_with_a_realtime_model() -> None:
    model = ScriptedRealtimeModel([ScriptedReply(tool_calls=[tool_call("get_time")]), "Noon."])
    async with AgentSession(llm=model) as session:
        await session.start(Clock())
        result = await session.run(user_input="what time is it?")
    result.expect.next_event().is_function_call(name="get_time")
    result.expect.next_event().is_function_call_output(output="noon")
    result.expect.next_event().is_message(role="assistant")
    result.expect.no_more_events()
    # the model saw the typed user input
    assert model.sessions[0].requests[0].chat_ctx.messages[-1].text_content == "what time is it?"


async def test_a_model_error_is_reported() -> None:
    model = ScriptedRealtimeModel([])  # exhausted at once
    async with AgentSession(llm=model) as session:
        errors: list[Any] = []
        session.on("error", errors.append)
        await session.start(Clock())
        await asyncio.wait_for(session.generate_reply(), TIMEOUT)
    assert errors and "exhausted" in str(errors[0].error) and errors[0].source is model


async def test_realtime_llm_turn_detection_needs_a_realtime_model() -> None:
    from roomd.agents.testing import ScriptedLLM

    async with AgentSession(llm=ScriptedLLM([]), turn_detection="realtime_llm") as session:
        with pytest.raises(ValueError, match="needs a RealtimeModel"):
            await session.start(Clock())
    async with AgentSession(llm=ScriptedRealtimeModel(["hi"]), turn_detection="realtime_llm") as session:
        await session.start(Clock())


class GreetingClock(Clock):
    async def on_enter(self) -> None:
        self.session.generate_reply()


class Desk(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="Route the caller.")

    @function_tool
    async def to_clock(self) -> Agent:
        """Hand over to the clock."""
        return GreetingClock()


async def test_handoff_resyncs_the_model_with_the_new_agent() -> None:
    model = ScriptedRealtimeModel([ScriptedReply(tool_calls=[tool_call("to_clock")]), "Clock here."])
    async with AgentSession(llm=model) as session:
        await session.start(Desk())
        rt = model.sessions[0]
        assert sorted(rt.tools.function_tools) == ["to_clock"]
        result = await session.run(user_input="what time is it?")
    result.expect.next_event().is_function_call(name="to_clock")
    result.expect.next_event().is_function_call_output()
    result.expect.next_event().is_agent_handoff(new_agent_type=GreetingClock)
    result.expect.next_event().is_message(role="assistant")
    result.expect.no_more_events()
    assert len(model.sessions) == 1  # the same model keeps its session
    assert rt.requests[-1].instructions == "Tell the time."
    assert rt.requests[-1].tool_names == ["get_time"]
