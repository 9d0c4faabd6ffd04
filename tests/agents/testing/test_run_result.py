"""The testing API: session.run(user_input=...), RunResult.expect, mock_tools,
start(capture_run=True); no room, no audio."""

from __future__ import annotations

import pytest

from roomd.agents.llm import function_tool
from roomd.agents.testing import ScriptedLLM, ScriptedReply, tool_call
from roomd.agents.voice import Agent, AgentSession
from roomd.agents.voice.run_result import (
    AgentHandoffEvent,
    ChatMessageEvent,
    FunctionCallEvent,
    FunctionCallOutputEvent,
    mock_tools,
)


class Weather(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You tell the weather.")

    @function_tool
    async def get_weather(self, city: str) -> str:
        """The weather in a city.

        Args:
            city: the city
        """
        return f"sunny in {city}"


class Billing(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You handle bills.")

    async def on_enter(self) -> None:
        self.session.generate_reply(instructions="Introduce yourself.")


class Front(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You route callers.")

    @function_tool
    async def to_billing(self) -> Agent:
        """Transfer the caller to billing."""
        return Billing()


async def test_run_records_calls_outputs_and_answer() -> None:
    llm = ScriptedLLM([ScriptedReply(tool_calls=[tool_call("get_weather", city="Paris")]), "It is sunny in Paris."])
    async with AgentSession(llm=llm) as session:
        await session.start(Weather())
        result = await session.run(user_input="What's the weather in Paris?")

        assert [type(e) for e in result.events] == [FunctionCallEvent, FunctionCallOutputEvent, ChatMessageEvent]
        result.expect.next_event().is_function_call(name="get_weather", arguments={"city": "Paris"})
        result.expect.next_event().is_function_call_output(output="sunny in Paris", is_error=False)
        msg = result.expect.next_event().is_message(role="assistant")
        assert msg.event().item.text_content == "It is sunny in Paris."
        result.expect.no_more_events()
        # the user's message is in the history, not among the run's events
        assert [m.role for m in session.history.messages][:1] == ["user"]


async def test_expect_failures_name_the_cause() -> None:
    llm = ScriptedLLM([ScriptedReply(tool_calls=[tool_call("get_weather", city="Paris")]), "Sunny."])
    async with AgentSession(llm=llm) as session:
        await session.start(Weather())
        result = await session.run(user_input="weather?")

    with pytest.raises(AssertionError, match="expected role 'user', got 'assistant'"):
        result.expect[2].is_message(role="user")
    with pytest.raises(AssertionError, match=r"expected arguments including \{'city': 'Rome'\}"):
        result.expect[0].is_function_call(arguments={"city": "Rome"})
    with pytest.raises(AssertionError, match="expected a message event, got function_call"):
        result.expect[0].is_message()
    with pytest.raises(AssertionError, match="no event at index 5"):
        result.expect[5]
    with pytest.raises(AssertionError, match=r"no function_call event matching .*'lookup'"):
        result.expect.contains_function_call(name="lookup")
    result.expect.next_event()
    with pytest.raises(AssertionError, match="2 remain") as info:
        result.expect.no_more_events()
    assert "-> [1] function_call_output get_weather" in str(info.value)  # the listing marks the cursor


async def test_cursor_ranges_and_skipping() -> None:
    llm = ScriptedLLM([ScriptedReply(tool_calls=[tool_call("get_weather", city="Oslo")]), "Snow in Oslo."])
    async with AgentSession(llm=llm) as session:
        await session.start(Weather())
        result = await session.run(user_input="Oslo?")

    expect = result.expect
    # contains_* and indexing look without moving the cursor
    expect.contains_function_call(name="get_weather", arguments={"city": "Oslo"})
    expect[-1].is_message(role="assistant")
    expect[:2].contains_function_call_output(output="sunny in Oslo")
    with pytest.raises(AssertionError, match=r"in events 0\.\.1"):
        expect[0:2].contains_message(role="assistant")
    assert expect.skip_next_event_if(type="message", role="assistant") is None  # next is the call: stays
    assert expect.skip_next_event_if(type="function_call", name="get_weather") is not None
    expect.next_event(type="message").is_message(role="assistant")  # skips the output
    expect.no_more_events()
    assert expect is result.expect  # one cursor per run


async def test_runs_follow_each_other_and_do_not_nest() -> None:
    llm = ScriptedLLM(["One.", "Two."])
    async with AgentSession(llm=llm) as session:
        await session.start(Weather())
        first = session.run(user_input="1")
        with pytest.raises(RuntimeError, match="already in progress"):
            session.run(user_input="2")
        await first
        second = await session.run(user_input="2")
        first.expect.next_event().is_message(role="assistant")
        assert second.events[0].item.text_content == "Two."  # type: ignore[union-attr]
        assert len(first.events) == 1


async def test_handoff_is_recorded_with_the_new_agents_reply() -> None:
    llm = ScriptedLLM([ScriptedReply(tool_calls=[tool_call("to_billing")]), "Billing here, hello."])
    async with AgentSession(llm=llm) as session:
        await session.start(Front())
        result = await session.run(user_input="I have a question about my bill")

        result.expect.next_event().is_function_call(name="to_billing")
        result.expect.next_event().is_function_call_output()
        handoff = result.expect.next_event().is_agent_handoff(new_agent_type=Billing)
        assert isinstance(handoff.event(), AgentHandoffEvent) and isinstance(handoff.event().old_agent, Front)
        result.expect.next_event().is_message(role="assistant")
        result.expect.no_more_events()
        assert isinstance(session.current_agent, Billing)
        with pytest.raises(AssertionError, match="expected a handoff to Front, got Billing"):
            result.expect[2].is_agent_handoff(new_agent_type=Front)


async def test_mock_tools_replace_implementations_inside_the_block() -> None:
    async def down(city: str) -> str:
        raise RuntimeError("weather service down")

    llm = ScriptedLLM([
        ScriptedReply(tool_calls=[tool_call("get_weather", city="Rome")]), "Rainy.",
        ScriptedReply(tool_calls=[tool_call("get_weather", city="Rome")]), "Sorry.",
        ScriptedReply(tool_calls=[tool_call("get_weather", city="Rome")]), "Sunny.",
    ])
    async with AgentSession(llm=llm) as session:
        await session.start(Weather())
        with mock_tools(Weather, {"get_weather": lambda city: f"rain in {city}"}):
            mocked = await session.run(user_input="Rome?")
        with mock_tools(Weather, {"get_weather": down}):
            failing = await session.run(user_input="Rome?")
        real = await session.run(user_input="Rome?")

    mocked.expect[1].is_function_call_output(output="rain in Rome")
    failing.expect[1].is_function_call_output(is_error=True)
    real.expect[1].is_function_call_output(output="sunny in Rome")
    with pytest.raises(TypeError, match="not callable"), mock_tools(Weather, {"get_weather": "nope"}):  # type: ignore[dict-item]
        pass


async def test_capture_run_records_the_greeting() -> None:
    class Greeter(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="Greet.")

        async def on_enter(self) -> None:
            self.session.generate_reply(instructions="Greet the user.")

    async with AgentSession(llm=ScriptedLLM(["Hello there!"])) as session:
        result = await session.start(Greeter(), capture_run=True)
        assert result is not None
        await result
        result.expect.next_event().is_message(role="assistant")
        result.expect.no_more_events()

    async with AgentSession(llm=ScriptedLLM(["Hi"])) as other:
        assert await other.start(Weather()) is None


async def test_a_failed_llm_step_fails_the_run() -> None:
    async with AgentSession(llm=ScriptedLLM([])) as session:  # an exhausted script
        await session.start(Weather())
        with pytest.raises(RuntimeError, match=r"the run failed: .*exhausted"):
            await session.run(user_input="hello?")


async def test_run_needs_a_started_session() -> None:
    session: AgentSession[None] = AgentSession(llm=ScriptedLLM(["x"]))
    with pytest.raises(RuntimeError, match="call start"):
        session.run(user_input="hi")


async def test_judge_passes_and_fails_on_the_llms_verdict() -> None:
    async with AgentSession(llm=ScriptedLLM(["The museum opens at nine."])) as session:
        await session.start(Weather())
        result = await session.run(user_input="When does the museum open?")
    message = result.expect.next_event().is_message(role="assistant")

    judge = ScriptedLLM([
        ScriptedReply(tool_calls=[tool_call("check_intent", success=True, reason="gives the time")]),
        ScriptedReply(tool_calls=[tool_call("check_intent", success=False, reason="no price is given")]),
        "I think it is fine",  # no verdict call
    ])
    assert await message.judge(judge, intent="tells when the museum opens") is message
    assert "Intent: tells when the museum opens" in (judge.requests[0].messages[-1].text_content or "")
    assert judge.tool_names[0] == ["check_intent"]
    with pytest.raises(AssertionError, match="does not fulfil the intent 'gives the price': no price is given"):
        await message.judge(judge, intent="gives the price")
    with pytest.raises(AssertionError, match="did not call check_intent"):
        await message.judge(judge, intent="anything")
