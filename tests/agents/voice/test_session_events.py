"""Session events with the reference's names and payloads (issue 11, item 4), and the
components' metrics forwarded as ``metrics_collected``."""

from __future__ import annotations

import asyncio
from typing import Any

from session_helpers import TIMEOUT
from voice_audio import utterance

from roomd.agents import (
    Agent,
    CloseReason,
    ConversationItemAddedEvent,
    FunctionToolsExecutedEvent,
    MetricsCollectedEvent,
    SpeechCreatedEvent,
    function_tool,
)
from roomd.agents.errors import APIError
from roomd.agents.llm import LLMMetrics
from roomd.agents.testing import FakeSTT, ScriptedLLM, ScriptedReply, ToneTTS, tool_call
from roomd.agents.tts import TTSMetrics
from roomd.agents.types import APIConnectOptions
from roomd.agents.voice import SessionConnectOptions
from roomd.agents.voice.events import ErrorEvent, SessionError


class Weather(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="x")

    @function_tool
    async def lookup_weather(self, location: str) -> str:
        """Look up the weather."""
        return f"sunny in {location}"

    @function_tool
    async def log_visit(self) -> None:
        """Record the visit (says nothing)."""


async def test_a_turn_emits_the_reference_events_in_order(make: Any) -> None:
    llm = ScriptedLLM([ScriptedReply("", tool_calls=[tool_call("lookup_weather", location="Oslo")]), "Sunny in Oslo."])
    h = await make(Weather(), llm=llm)
    for frame in utterance():
        h.audio_in.push_frame(frame)
    await h.events.wait("conversation_item_added", lambda ev: getattr(ev.item, "text_content", "") == "Sunny in Oslo.")
    ev = h.events.events
    assert [e.transcript for e in ev["user_input_transcribed"] if e.is_final] == ["what time is it"]
    created: SpeechCreatedEvent = ev["speech_created"][0]
    assert (created.source, created.user_initiated, created.type) == ("generate_reply", False, "speech_created")
    executed: FunctionToolsExecutedEvent = ev["function_tools_executed"][0]
    assert executed.type == "function_tools_executed"
    assert [(c.name, o.output if o else None) for c, o in executed.zipped()] == [("lookup_weather", "sunny in Oslo")]
    assert executed.has_tool_reply and not executed.has_agent_handoff
    items: list[ConversationItemAddedEvent] = ev["conversation_item_added"]
    assert [i.item.type for i in items] == ["message", "function_call", "function_call_output", "message"]
    states = [(e.old_state, e.new_state) for e in ev["agent_state_changed"]]
    assert states[:2] == [("initializing", "listening"), ("listening", "thinking")]
    assert ("thinking", "speaking") in states or ("listening", "speaking") in states
    assert [(e.old_state, e.new_state) for e in ev["user_state_changed"]][:2] == [
        ("listening", "speaking"), ("speaking", "listening")]


async def test_a_silent_tool_gets_no_spoken_follow_up(make: Any) -> None:
    llm = ScriptedLLM([ScriptedReply("Noted.", tool_calls=[tool_call("log_visit")]), "never said"])
    h = await make(Weather(), llm=llm)
    handle = h.session.generate_reply(user_input="log it")
    await asyncio.wait_for(handle, TIMEOUT)
    executed = h.events.events["function_tools_executed"][0]
    assert not executed.has_tool_reply
    assert llm.remaining == 1 and len(llm.requests) == 1
    assert [m.text_content for m in h.session.history.messages if m.role == "assistant"] == ["Noted."]


async def test_cancel_tool_reply_from_a_listener_stops_the_follow_up(make: Any) -> None:
    llm = ScriptedLLM([ScriptedReply("", tool_calls=[tool_call("lookup_weather", location="Rome")]), "never said"])
    h = await make(Weather(), llm=llm)
    h.session.on("function_tools_executed", lambda ev: ev.cancel_tool_reply())
    await asyncio.wait_for(h.session.generate_reply(user_input="weather"), TIMEOUT)
    assert llm.remaining == 1
    assert [i.type for i in h.session.history.items][-2:] == ["function_call", "function_call_output"]


async def test_cancel_agent_handoff_keeps_the_current_agent(make: Any) -> None:
    class Other(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="other")

    class Front(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="front")

        @function_tool
        async def transfer(self) -> Agent:
            """Transfer."""
            return Other()

    def veto(ev: FunctionToolsExecutedEvent) -> None:
        assert ev.has_agent_handoff
        ev.cancel_agent_handoff()

    h = await make(Front(), llm=ScriptedLLM([ScriptedReply("", tool_calls=[tool_call("transfer")])]))
    h.session.on("function_tools_executed", veto)
    await asyncio.wait_for(h.session.generate_reply(user_input="transfer"), TIMEOUT)
    assert isinstance(h.session.current_agent, Front)


async def test_component_metrics_are_forwarded(make: Any) -> None:
    h = await make(Agent(instructions="x"), llm=ScriptedLLM(["Hello there."]), tts=ToneTTS())
    await asyncio.wait_for(h.session.generate_reply(), TIMEOUT)
    got: list[MetricsCollectedEvent] = h.events.events["metrics_collected"]
    kinds = {type(e.metrics) for e in got}
    assert LLMMetrics in kinds and TTSMetrics in kinds
    assert all(e.type == "metrics_collected" for e in got)


async def test_unrecoverable_llm_errors_close_the_session_after_the_limit(make: Any) -> None:
    failing = ScriptedLLM([ScriptedReply(error=APIError("boom", retryable=False))] * 5)
    h = await make(Agent(instructions="x"), llm=failing)
    for _ in range(4):
        await asyncio.wait_for(h.session.generate_reply(), TIMEOUT)
        if h.events.events["close"]:
            break
    errors: list[ErrorEvent] = h.events.events["error"]
    assert len(errors) == 4
    first = errors[0].error
    assert isinstance(first, SessionError) and first.type == "llm_error" and not first.recoverable
    assert errors[0].source is failing and "boom" in str(first.error)
    close = await h.events.wait("close")
    assert close.reason == CloseReason.ERROR and close.error is errors[-1].error


async def test_a_listener_can_mark_an_error_recoverable(make: Any) -> None:
    def forgive(ev: ErrorEvent) -> None:
        ev.error.recoverable = True

    failing = ScriptedLLM([ScriptedReply(error=APIError("boom", retryable=False))] * 5 + ["Back again."])
    h = await make(Agent(instructions="x"), llm=failing)
    h.session.on("error", forgive)
    for _ in range(5):
        await asyncio.wait_for(h.session.generate_reply(), TIMEOUT)
    await asyncio.wait_for(h.session.generate_reply(), TIMEOUT)
    assert h.events.events["close"] == []
    assert [m.text_content for m in h.session.history.messages] == ["Back again."]


async def test_an_stt_failure_is_an_error_event(make: Any) -> None:
    h = await make(Agent(instructions="x"), llm=ScriptedLLM([]), stt=FakeSTT(["hi"], failures=99))
    for frame in utterance():
        h.audio_in.push_frame(frame)
    ev = await h.events.wait("error")
    assert ev.error.type == "stt_error"


async def test_the_agent_listens_again_after_a_silent_tool(make: Any) -> None:
    h = await make(Weather(), llm=ScriptedLLM([ScriptedReply("", tool_calls=[tool_call("log_visit")])]))
    await asyncio.wait_for(h.session.generate_reply(user_input="log it"), TIMEOUT)
    await h.events.wait("agent_state_changed", lambda ev: ev.old_state == "thinking" and ev.new_state == "listening")
    assert h.session.agent_state == "listening"


async def test_a_tts_failure_is_a_tts_error(make: Any) -> None:
    no_retry = SessionConnectOptions(tts_conn_options=APIConnectOptions(max_retry=0))
    h = await make(Agent(instructions="x"), llm=ScriptedLLM(["Hello there."]), tts=ToneTTS(failures=99),
                   conn_options=no_retry)
    await asyncio.wait_for(h.session.generate_reply(), TIMEOUT)
    ev = await h.events.wait("error")
    assert ev.error.type == "tts_error" and not ev.error.recoverable
