"""AgentSession over in-memory audio: turns, replies, tools, handoffs, interruptions."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from session_helpers import TIMEOUT
from voice_audio import quiet, tone, utterance

from roomd.agents.errors import StopResponse
from roomd.agents.llm import ChatContext, ChatMessage, FunctionCallOutput, RunContext, function_tool
from roomd.agents.testing import EnergyVAD, FakeSTT, ScriptedLLM, ScriptedReply, ToneTTS, tool_call
from roomd.agents.voice import (
    Agent,
    AgentSession,
    AgentState,
    UserState,
)

def assistant_texts(ctx: ChatContext) -> list[str]:
    return [m.text_content or "" for m in ctx.messages if m.role == "assistant"]


async def test_user_turn_gets_a_spoken_reply(make: Any) -> None:
    h = await make(Agent(instructions="Be brief."), llm=ScriptedLLM(["It is noon."]))
    for frame in utterance():
        h.audio_in.push_frame(frame)
    await h.events.wait("conversation_item_added", lambda ev: getattr(ev.item, "role", "") == "assistant")
    history = h.session.history
    assert [(m.role, m.text_content) for m in history.messages] == [
        ("user", "what time is it"),
        ("assistant", "It is noon."),
    ]
    assert h.text_out.segments == ["It is noon."]
    assert h.audio_out.heard_duration > 0.05
    states = [ev.new_state for ev in h.events.events["agent_state_changed"]]
    assert states[:3] == [AgentState.LISTENING, AgentState.THINKING, AgentState.SPEAKING]
    await h.events.wait("agent_state_changed", lambda ev: ev.new_state == AgentState.LISTENING and ev.old_state == AgentState.SPEAKING)
    users = [ev.new_state for ev in h.events.events["user_state_changed"]]
    assert users[:2] == [UserState.SPEAKING, UserState.LISTENING]
    finals = [ev.transcript for ev in h.events.events["user_input_transcribed"] if ev.is_final]
    assert finals == ["what time is it"]
    assert ("what time is it", True) in h.user_out.published
    # the LLM saw the instructions first, then the user's words
    request = h.session.llm.requests[0]
    assert [(m.role, m.text_content) for m in request.messages] == [
        ("system", "Be brief."), ("user", "what time is it"),
    ]
    kinds = {type(ev.metrics).__name__ for ev in h.events.events["metrics_collected"]}
    assert {"EOUMetrics", "LLMMetrics", "TTSMetrics"} <= kinds


async def test_tool_call_result_is_fed_back_to_the_llm(make: Any) -> None:
    calls: list[str] = []

    class Clock(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="Tell the time.")

        @function_tool
        async def get_time(self, context: RunContext, city: str) -> str:
            """Current time in a city."""
            calls.append(city)
            assert context.session is self.session
            return "12:00"

    llm = ScriptedLLM([ScriptedReply(tool_calls=[tool_call("get_time", city="Paris")]), "It is 12:00 in Paris."])
    h = await make(Clock(), llm=llm)
    for frame in utterance():
        h.audio_in.push_frame(frame)
    executed = await h.events.wait("function_tools_executed")
    assert calls == ["Paris"]
    assert [o.output for o in executed.function_call_outputs] == ["12:00"]
    await h.events.wait("conversation_item_added", lambda ev: getattr(ev.item, "role", "") == "assistant")
    assert assistant_texts(h.session.history) == ["It is 12:00 in Paris."]
    second = llm.requests[1]
    assert any(isinstance(i, FunctionCallOutput) and i.output == "12:00" for i in second.items)
    assert llm.tool_names[0] == ["get_time"]


async def test_max_tool_steps_bounds_the_llm_calls(make: Any) -> None:
    @function_tool
    async def again() -> str:
        """Loop."""
        return "more"

    llm = ScriptedLLM(default=ScriptedReply(tool_calls=[tool_call("again")]))
    h = await make(Agent(instructions="", tools=[again]), llm=llm, max_tool_steps=2)
    handle = h.session.generate_reply()
    await asyncio.wait_for(handle.wait_for_playout(), TIMEOUT)
    assert len(llm.requests) == 3  # the first call plus two tool steps fed back
    assert len(h.events.events["function_tools_executed"]) == 3
    assert handle.num_steps == 3


async def test_handoff_switches_agent_tools_and_instructions(make: Any) -> None:
    order: list[str] = []

    class Billing(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="You handle billing.")

        async def on_enter(self) -> None:
            order.append("billing.enter")
            self.session.generate_reply()

        @function_tool
        async def refund(self) -> str:
            """Refund."""
            return "done"

    class Front(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="You route calls.")

        async def on_exit(self) -> None:
            order.append("front.exit")

        @function_tool
        async def to_billing(self) -> tuple[Agent, str]:
            """Transfer to billing."""
            return Billing(), "transferring"

    llm = ScriptedLLM([ScriptedReply(tool_calls=[tool_call("to_billing")]), "Billing here."])
    h = await make(Front(), llm=llm)
    h.session.generate_reply(user_input="I want a refund")
    await h.events.wait("conversation_item_added", lambda ev: getattr(ev.item, "role", "") == "assistant")
    assert order == ["front.exit", "billing.enter"]
    assert isinstance(h.session.current_agent, Billing)
    assert llm.tool_names == [["to_billing"], ["refund"]]
    assert llm.requests[1].messages[0].text_content == "You handle billing."
    outputs = [i for i in h.session.history.items if isinstance(i, FunctionCallOutput)]
    assert [o.output for o in outputs] == ["transferring"]


async def test_on_user_turn_completed_stop_response_skips_the_reply(make: Any) -> None:
    seen: list[str] = []

    class Quiet(Agent):
        async def on_user_turn_completed(self, turn_ctx: ChatContext, new_message: ChatMessage) -> None:
            seen.append(new_message.text_content or "")
            raise StopResponse()

    llm = ScriptedLLM(["never"])
    h = await make(Quiet(instructions="x"), llm=llm)
    for frame in utterance():
        h.audio_in.push_frame(frame)
    await h.events.wait("conversation_item_added", lambda ev: getattr(ev.item, "role", "") == "user")
    await asyncio.sleep(0.1)  # give a (wrong) reply the chance to start
    assert seen == ["what time is it"]
    assert llm.requests == []
    assert h.events.events["speech_created"] == []


async def test_say_is_spoken_and_recorded(make: Any) -> None:
    h = await make(Agent(instructions="x"), llm=ScriptedLLM())
    handle = h.session.say("Hello there.", allow_interruptions=False)
    assert not handle.allow_interruptions
    with pytest.raises(RuntimeError):
        handle.interrupt()
    await asyncio.wait_for(handle, TIMEOUT)
    assert handle.done() and not handle.interrupted
    assert h.text_out.segments == ["Hello there."]
    assert assistant_texts(h.session.history) == ["Hello there."]
    created = h.events.events["speech_created"]
    assert created[0].source == "say" and created[0].speech_handle is handle


async def test_user_speech_interrupts_agent_speech(make: Any) -> None:
    tts = ToneTTS(seconds_per_char=0.05)  # a long reply: several seconds of audio
    h = await make(Agent(instructions="x"), llm=ScriptedLLM(), tts=tts, min_interruption_duration=0.3)
    handle = h.session.say("This is a long answer that goes on and on and on for a while.")
    await h.events.wait("agent_state_changed", lambda ev: ev.new_state == AgentState.SPEAKING)
    await h.audio_in.push_realtime(tone(0.6))
    await asyncio.wait_for(handle.wait_for_playout(), TIMEOUT)
    assert handle.interrupted
    heard = h.audio_out.heard_duration
    assert heard < 2.0  # the full speech is over 3 s
    message = h.session.history.messages[-1]
    assert message.interrupted and message.role == "assistant"
    await h.audio_in.push_realtime(quiet(0.5))
    # and the user's words got a reply afterwards (the LLM script is empty: an error, not a hang)
    await h.events.wait("error")


async def test_false_interruption_resumes_the_speech(make: Any) -> None:
    tts = ToneTTS(seconds_per_char=0.03)
    # the STT hears nothing (threshold above the noise), the VAD hears a cough
    stt = FakeSTT("unused", threshold=2.0)
    h = await make(Agent(instructions="x"), llm=ScriptedLLM(), tts=tts, stt=stt,
                   min_interruption_duration=0.1, false_interruption_timeout=0.2)
    handle = h.session.say("A sentence long enough to be coughed over by the user.")
    await h.events.wait("agent_state_changed", lambda ev: ev.new_state == AgentState.SPEAKING)
    await h.audio_in.push_realtime(tone(0.2) + quiet(0.4))
    resumed = await h.events.wait("agent_false_interruption")
    assert resumed.resumed
    await asyncio.wait_for(handle.wait_for_playout(), TIMEOUT)
    assert not handle.interrupted
    assert h.audio_out.heard_duration == pytest.approx(len("A sentence long enough to be coughed over by the user.") * 0.03, abs=0.05)


async def test_uninterruptible_speech_is_not_cut(make: Any) -> None:
    h = await make(Agent(instructions="x"), llm=ScriptedLLM(default="ok"), tts=ToneTTS(seconds_per_char=0.03),
                   min_interruption_duration=0.1)
    handle = h.session.say("Please listen to this whole message now.", allow_interruptions=False)
    await h.events.wait("agent_state_changed", lambda ev: ev.new_state == AgentState.SPEAKING)
    await h.audio_in.push_realtime(tone(0.3))
    await asyncio.wait_for(handle.wait_for_playout(), TIMEOUT)
    assert not handle.interrupted


async def test_user_away_after_timeout(make: Any) -> None:
    h = await make(Agent(instructions="x"), llm=ScriptedLLM(), user_away_timeout=0.1)
    ev = await h.events.wait("user_state_changed", lambda ev: ev.new_state == UserState.AWAY)
    assert ev.old_state == UserState.LISTENING


async def test_manual_turn_detection_waits_for_commit(make: Any) -> None:
    llm = ScriptedLLM(["Yes?"])
    h = await make(Agent(instructions="x"), llm=llm, turn_detection="manual")
    for frame in utterance():
        h.audio_in.push_frame(frame)
    await h.events.wait("user_input_transcribed", lambda ev: ev.is_final)
    await asyncio.sleep(0.1)
    assert llm.requests == []
    await h.session.commit_user_turn()
    await h.events.wait("conversation_item_added", lambda ev: getattr(ev.item, "role", "") == "assistant")
    assert assistant_texts(h.session.history) == ["Yes?"]


async def test_turn_detector_extends_the_endpointing_delay(make: Any) -> None:
    class Unsure:
        unlikely_threshold = 0.5

        def __init__(self) -> None:
            self.contexts: list[ChatContext] = []

        async def predict_end_of_turn(self, chat_ctx: ChatContext) -> float:
            self.contexts.append(chat_ctx)
            return 0.1

    detector = Unsure()
    h = await make(Agent(instructions="x"), llm=ScriptedLLM(["ok"]), turn_detection=detector,
                   min_endpointing_delay=0.0, max_endpointing_delay=0.4)
    for frame in utterance():
        h.audio_in.push_frame(frame)
    eou = await h.events.wait("metrics_collected", lambda ev: type(ev.metrics).__name__ == "EOUMetrics")
    assert eou.metrics.end_of_utterance_delay >= 0.4
    assert detector.contexts[0].messages[-1].text_content == "what time is it"


async def test_agent_overrides_session_components(make: Any) -> None:
    session_llm = ScriptedLLM(["from session"])
    agent_llm = ScriptedLLM(["from agent"])
    h = await make(Agent(instructions="x", llm=agent_llm), llm=session_llm)
    await asyncio.wait_for(h.session.generate_reply(), TIMEOUT)
    assert assistant_texts(h.session.history) == ["from agent"]
    assert session_llm.requests == []


def test_constructor_defaults_match_the_reference() -> None:
    import inspect

    params = inspect.signature(AgentSession.__init__).parameters
    expected = {
        "allow_interruptions": True, "discard_audio_if_uninterruptible": True,
        "min_interruption_duration": 0.5, "min_interruption_words": 0, "min_endpointing_delay": 0.5,
        "max_endpointing_delay": 6.0, "max_tool_steps": 3, "user_away_timeout": 15.0,
        "false_interruption_timeout": 2.0, "resume_false_interruption": True,
        "min_consecutive_speech_delay": 0.0, "preemptive_generation": False, "loop": None,
    }
    assert {k: params[k].default for k in expected} == expected
    agent_params = set(inspect.signature(Agent.__init__).parameters) - {"self"}
    assert agent_params == {
        "instructions", "chat_ctx", "tools", "turn_detection", "stt", "vad", "llm", "tts", "mcp_servers",
        "allow_interruptions", "min_consecutive_speech_delay", "use_tts_aligned_transcript",
        "min_endpointing_delay", "max_endpointing_delay",
    }


def test_bad_settings_are_refused_with_the_cause() -> None:
    with pytest.raises(ValueError, match="max_endpointing_delay"):
        AgentSession(min_endpointing_delay=2.0, max_endpointing_delay=1.0)
    with pytest.raises(ValueError, match="turn_detection"):
        AgentSession(turn_detection="sometimes")
    with pytest.raises(LookupError, match="nosuch"):
        Agent(instructions="x", llm="nosuch/model")


async def test_string_components_resolve_through_the_registry() -> None:
    agent = Agent(instructions="x", llm="testing/scripted", tts="testing/tone", stt="testing/fake", vad="testing/energy")
    assert isinstance(agent.llm, ScriptedLLM) and isinstance(agent.tts, ToneTTS)
    session: AgentSession[Any] = AgentSession(llm="testing", vad="testing/energy")
    assert isinstance(session.llm, ScriptedLLM) and isinstance(session.vad, EnergyVAD)
