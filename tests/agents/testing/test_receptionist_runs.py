"""The example receptionist tested the way livekit-agents users test their agents:
session.run(user_input=...) and RunResult.expect, no room. The scripted LLM stands in for
the model; the last test runs the real local SmolLM2."""

from __future__ import annotations

import pytest

from roomd.agents.testing import ScriptedLLM, ScriptedReply, mock_tools, tool_call
from roomd.agents.voice import AgentSession

from roomd_example_receptionist.agent import build_agent
from roomd_example_receptionist.desk import GREETING


async def test_greets_on_entering() -> None:
    async with AgentSession(llm=ScriptedLLM([])) as session:
        result = await session.start(build_agent(), capture_run=True)
        assert result is not None
        await result
        greeting = result.expect.next_event().is_message(role="assistant")
        assert greeting.event().item.text_content == GREETING
        result.expect.no_more_events()


async def test_looks_up_opening_hours_and_answers_from_them() -> None:
    llm = ScriptedLLM([
        ScriptedReply(tool_calls=[tool_call("lookup_opening_hours", place="the museum")]),
        "The museum is open from 10 AM to 5 PM, Tuesday to Sunday.",
    ])
    async with AgentSession(llm=llm) as session:
        await session.start(build_agent())
        result = await session.run(user_input="When does the museum open?")

    result.expect.next_event().is_function_call(name="lookup_opening_hours", arguments={"place": "the museum"})
    result.expect.next_event().is_function_call_output(
        output="The museum is open from 10 AM to 5 PM, Tuesday to Sunday.", is_error=False)
    result.expect.next_event().is_message(role="assistant")
    result.expect.no_more_events()
    # the second LLM request saw the tool's answer
    assert llm.requests[-1].items[-1].output.startswith("The museum is open")  # type: ignore[union-attr]


async def test_an_unknown_place_comes_back_as_a_tool_error() -> None:
    llm = ScriptedLLM([
        ScriptedReply(tool_calls=[tool_call("lookup_opening_hours", place="zoo")]),
        "Sorry, I do not know the zoo's hours.",
    ])
    async with AgentSession(llm=llm) as session:
        await session.start(build_agent())
        result = await session.run(user_input="When does the zoo open?")

    output = result.expect[1].is_function_call_output(is_error=True).event().item.output
    assert "no opening hours for 'zoo'" in output and "museum" in output
    result.expect[-1].is_message(role="assistant")


async def test_tells_the_time_with_a_mocked_clock_tool() -> None:
    llm = ScriptedLLM([ScriptedReply(tool_calls=[tool_call("get_current_time")]), "It is 14:05."])
    async with AgentSession(llm=llm) as session:
        agent = build_agent()
        await session.start(agent)
        with mock_tools(type(agent), {"get_current_time": lambda: "The current time is 14:05."}):
            result = await session.run(user_input="What's the time?")

    result.expect.contains_function_call(name="get_current_time")
    result.expect[:].contains_function_call_output(output="The current time is 14:05.")
    result.expect.skip_next(2).next_event().is_message(role="assistant")


async def test_small_talk_needs_no_tool() -> None:
    async with AgentSession(llm=ScriptedLLM(["Hello! How can I help you?"])) as session:
        await session.start(build_agent())
        result = await session.run(user_input="Hi there")
    assert result.expect.skip_next_event_if(type="function_call") is None
    result.expect.next_event().is_message(role="assistant")
    result.expect.no_more_events()


@pytest.mark.slow_models
async def test_smollm2_looks_up_the_museum() -> None:
    """The real local model: picks the tool for an opening-hours question and answers."""
    pytest.importorskip("llama_cpp")
    from roomd.plugins.local.llm import LocalLLM

    from roomd_example_receptionist.desk import TOOL_EXAMPLES

    smollm2 = LocalLLM.load(tool_examples=TOOL_EXAMPLES)
    async with AgentSession(llm=smollm2) as session:
        await session.start(build_agent())
        result = await session.run(user_input="When does the museum close?")

    result.expect.next_event().is_function_call(name="lookup_opening_hours")
    result.expect.next_event().is_function_call_output(
        output="The museum is open from 10 AM to 5 PM, Tuesday to Sunday.", is_error=False)
    answer = result.expect.next_event().is_message(role="assistant").event().item.text_content or ""
    assert "5 PM" in answer  # answered from the tool's output (greedy decoding: stable)
    result.expect.no_more_events()
