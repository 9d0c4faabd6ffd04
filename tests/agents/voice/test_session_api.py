"""The session API agents written for livekit-agents 1.2 call: speeches awaited from
tools, hooks and handoffs; say(audio=); generate_reply(tool_choice=); interrupt, drain,
shutdown; SpeechHandle; RunContext; AgentTask (issue 11, items 3 and 5)."""

from __future__ import annotations

import asyncio
import gc
import warnings
from dataclasses import dataclass, field
from typing import Any

import pytest
from session_helpers import TIMEOUT
from voice_audio import tone

from roomd.agents import (
    Agent,
    AgentSession,
    AgentTask,
    CloseReason,
    RunContext,
    function_tool,
)
from roomd.agents.llm import ChatContext, FunctionCallOutput, ToolChoice
from roomd.agents.testing import ScriptedLLM, ScriptedReply, tool_call
from roomd.agents.voice import AgentState, SpeechHandle


class ChoiceRecordingLLM(ScriptedLLM):
    """A scripted LLM that also remembers each request's tool_choice."""

    def __init__(self, replies: list[Any]) -> None:
        super().__init__(replies)
        self.tool_choices: list[Any] = []

    def chat(self, *, tool_choice: ToolChoice | None = None, **kwargs: Any) -> Any:
        self.tool_choices.append(tool_choice)
        return super().chat(tool_choice=tool_choice, **kwargs)


def texts(ctx: ChatContext, role: str = "assistant") -> list[str]:
    return [m.text_content or "" for m in ctx.messages if m.role == role]


async def test_a_tool_can_interrupt_and_await_a_goodbye_without_deadlock(make: Any) -> None:
    awaited: list[SpeechHandle] = []

    class Story(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="Tell stories.")

        @function_tool
        async def story_finished(self, context: RunContext) -> None:
            """The story is over."""
            self.session.interrupt()
            handle = await self.session.generate_reply(instructions="say goodbye", allow_interruptions=False)
            awaited.append(handle)

    llm = ChoiceRecordingLLM([ScriptedReply("", tool_calls=[tool_call("story_finished")]), "Goodbye, Ana."])
    h = await make(Story(), llm=llm)
    first = h.session.generate_reply(user_input="that's all")
    await asyncio.wait_for(first.wait_for_playout(), TIMEOUT)
    assert awaited and awaited[0].done() and not awaited[0].interrupted
    assert not awaited[0].allow_interruptions
    # the tool's own speech was interrupted by the tool: its call stays out of the history
    assert first.interrupted
    assert [type(i).__name__ for i in first.chat_items] == ["FunctionCall", "FunctionCallOutput"]
    assert texts(h.session.history) == ["Goodbye, Ana."]
    assert [i.type for i in h.session.history.items] == ["message", "message"]
    # a reply made from inside a tool may not call tools again
    assert llm.tool_choices == [None, "none"]
    assert h.events.events["function_tools_executed"] == []


async def test_awaiting_its_own_speech_from_a_tool_is_a_clear_error(make: Any) -> None:
    errors: list[str] = []

    class Own(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="x")

        @function_tool
        async def check(self, context: RunContext) -> str:
            """Check."""
            try:
                await context.speech_handle
            except RuntimeError as exc:
                errors.append(str(exc))
            await context.wait_for_playout()  # what was said before the call: fine
            return "checked"

    h = await make(Own(), llm=ScriptedLLM([ScriptedReply("One moment.", tool_calls=[tool_call("check")]), "All good."]))
    handle = h.session.generate_reply(user_input="check it")
    await asyncio.wait_for(handle, TIMEOUT)
    assert len(errors) == 1 and "'check'" in errors[0] and "RunContext.wait_for_playout" in errors[0]
    assert handle.num_steps == 2
    assert texts(h.session.history) == ["One moment.", "All good."]
    assert [i.type for i in h.session.history.items] == [
        "message", "message", "function_call", "function_call_output", "message",
    ]


async def test_on_enter_and_a_handoff_target_can_await_their_speeches(make: Any) -> None:
    order: list[str] = []

    class Second(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="second")

        async def on_enter(self) -> None:
            await self.session.generate_reply(instructions="greet")
            order.append("second greeted")

    class First(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="first")

        async def on_enter(self) -> None:
            await self.session.say("Hello from first.")
            order.append("first said hello")

        @function_tool
        async def transfer(self) -> tuple[Agent, str]:
            """Transfer."""
            return Second(), "Transferring."

    llm = ScriptedLLM([ScriptedReply("", tool_calls=[tool_call("transfer")]), "Hi, I am second."])
    h = await make(First(), llm=llm)
    await h.events.wait("conversation_item_added", lambda ev: getattr(ev.item, "text_content", "") == "Hello from first.")
    h.session.generate_reply(user_input="transfer me")
    await h.events.wait("conversation_item_added", lambda ev: getattr(ev.item, "text_content", "") == "Hi, I am second.")
    for _ in range(100):
        if len(order) == 2:
            break
        await asyncio.sleep(0.01)
    assert order == ["first said hello", "second greeted"]
    assert isinstance(h.session.current_agent, Second)
    outputs = [i for i in h.session.history.items if isinstance(i, FunctionCallOutput)]
    assert [o.output for o in outputs] == ["Transferring."]


async def test_say_with_audio_plays_the_given_frames_not_the_tts(make: Any) -> None:
    h = await make(Agent(instructions="x"), llm=ScriptedLLM([]))
    frames = tone(0.3, amplitude=0.1)

    async def source() -> Any:
        for frame in frames:
            yield frame

    handle = h.session.say("Transferring your call.", audio=source(), allow_interruptions=False)
    await asyncio.wait_for(handle, TIMEOUT)
    assert h.session.tts.requests == []  # type: ignore[union-attr]
    assert abs(h.audio_out.heard_duration - 0.3) < 0.05
    assert texts(h.session.history) == ["Transferring your call."]
    assert h.text_out.segments == ["Transferring your call."]


async def test_say_add_to_chat_ctx_false_keeps_it_out_of_history(make: Any) -> None:
    h = await make(Agent(instructions="x"), llm=ScriptedLLM([]))
    await asyncio.wait_for(h.session.say("Just a notice.", add_to_chat_ctx=False), TIMEOUT)
    assert texts(h.session.history) == []
    assert h.text_out.segments == ["Just a notice."]


async def test_generate_reply_passes_tool_choice_and_instructions(make: Any) -> None:
    llm = ChoiceRecordingLLM(["Sure."])
    h = await make(Agent(instructions="base"), llm=llm)
    await asyncio.wait_for(h.session.generate_reply(instructions="be short", tool_choice="none"), TIMEOUT)
    assert llm.tool_choices == ["none"]
    request = llm.requests[0]
    assert [m.text_content for m in request.messages] == ["base", "be short"]


async def test_speech_handle_surface(make: Any) -> None:
    h = await make(Agent(instructions="x"), llm=ScriptedLLM([]))
    done: list[str] = []
    handle = h.session.say("A fairly long sentence to be cut off somewhere in the middle of it.")
    handle.add_done_callback(lambda sh: done.append(sh.id))
    assert handle.id.startswith("speech_") and handle.allow_interruptions and not handle.done()
    await h.events.wait("agent_state_changed", lambda ev: ev.new_state == AgentState.SPEAKING)
    stopped = h.session.interrupt()
    await asyncio.wait_for(stopped, TIMEOUT)
    await asyncio.wait_for(handle, TIMEOUT)
    assert handle.interrupted and handle.done() and done == [handle.id]
    locked = h.session.say("Cannot stop me.", allow_interruptions=False)
    with pytest.raises(RuntimeError, match="does not allow interruptions"):
        locked.interrupt()
    await asyncio.wait_for(locked, TIMEOUT)
    assert not locked.interrupted


async def test_run_context_disallow_interruptions_protects_the_speech(make: Any) -> None:
    seen: list[bool] = []

    class Booker(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="x")

        @function_tool
        async def book(self, context: RunContext) -> str:
            """Book."""
            context.disallow_interruptions()
            seen.append(context.speech_handle.allow_interruptions)
            assert context.function_call.name == "book"
            assert context.session is self.session
            return "booked"

    h = await make(Booker(), llm=ScriptedLLM([ScriptedReply("", tool_calls=[tool_call("book")]), "Booked."]))
    handle = h.session.generate_reply(user_input="book it")
    await asyncio.wait_for(handle, TIMEOUT)
    assert seen == [False]
    h.session.interrupt()  # nothing to interrupt, and no error


@dataclass
class Profile:
    name: str | None = None
    visits: list[str] = field(default_factory=list)


async def test_userdata_current_agent_update_options_and_drain(make: Any) -> None:
    profile = Profile()

    class Remember(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="x")

        @function_tool
        async def remember(self, context: RunContext[Profile], name: str) -> None:
            """Remember the name."""
            context.userdata.name = name

    llm = ScriptedLLM([ScriptedReply("", tool_calls=[tool_call("remember", name="Ana")]), "unused"])
    h = await make(Remember(), llm=llm, userdata=profile)
    assert h.session.userdata is profile and isinstance(h.session.current_agent, Remember)
    handle = h.session.generate_reply(user_input="I'm Ana")
    h.session.update_options(min_endpointing_delay=0.1, max_endpointing_delay=2.0)
    assert (h.session.min_endpointing_delay, h.session.max_endpointing_delay) == (0.1, 2.0)
    with pytest.raises(ValueError, match="min_endpointing_delay"):
        h.session.update_options(min_endpointing_delay=3.0)
    await asyncio.wait_for(h.session.drain(), TIMEOUT)
    assert handle.done() and profile.name == "Ana"
    # a silent tool (returns None): no second LLM request
    assert llm.remaining == 1
    assert h.events.events["close"][0].reason == CloseReason.USER_INITIATED


async def test_shutdown_without_drain_cuts_the_speech(make: Any) -> None:
    h = await make(Agent(instructions="x"), llm=ScriptedLLM([]))
    handle = h.session.say("A long sentence that will not be finished because we shut down now.")
    await h.events.wait("agent_state_changed", lambda ev: ev.new_state == AgentState.SPEAKING)
    h.session.shutdown(drain=False)
    close = await h.events.wait("close")
    assert close.reason == CloseReason.USER_INITIATED and handle.done() and handle.interrupted


class AskName(AgentTask[str]):
    def __init__(self) -> None:
        super().__init__(instructions="Ask the caller's name.")

    async def on_enter(self) -> None:
        self.session.generate_reply(instructions="ask for the name")

    @function_tool
    async def name_given(self, name: str) -> None:
        """The caller said their name."""
        self.complete(name)


async def test_agent_task_awaited_from_a_tool_returns_its_result(make: Any) -> None:
    results: list[str] = []

    class Front(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="front desk")

        @function_tool
        async def identify(self) -> str:
            """Identify the caller."""
            name = await AskName()
            results.append(name)
            return f"the caller is {name}"

    llm = ScriptedLLM([
        ScriptedReply("", tool_calls=[tool_call("identify")]),
        "What is your name?",
        ScriptedReply("", tool_calls=[tool_call("name_given", name="Ana")]),
        "Welcome, Ana.",
    ])
    h = await make(Front(), llm=llm)
    outer = h.session.generate_reply(user_input="hello")
    await h.events.wait("conversation_item_added", lambda ev: getattr(ev.item, "text_content", "") == "What is your name?")
    assert isinstance(h.session.current_agent, AskName)
    h.session.generate_reply(user_input="I am Ana")
    await asyncio.wait_for(outer, TIMEOUT)
    assert results == ["Ana"]
    assert isinstance(h.session.current_agent, Front)
    assert "Welcome, Ana." in texts(h.session.history)
    # what was said during the task is now part of the front desk's conversation
    assert "What is your name?" in texts(h.session.current_agent.chat_ctx)


async def test_agent_task_outside_a_session_is_refused() -> None:
    with pytest.raises(RuntimeError, match="on_enter or a function tool"):
        await AskName()


async def test_closing_right_after_start_leaves_no_unawaited_coroutine() -> None:
    class Greeter(Agent):
        async def on_enter(self) -> None:
            self.session.say("hello")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            session: AgentSession[Any] = AgentSession(llm=ScriptedLLM([]))
            await session.start(Greeter(instructions="x"))
            await session.aclose()
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]


async def test_context_manager_closes_the_session() -> None:
    async with AgentSession(llm=ScriptedLLM(["hi"])) as session:
        await session.start(Agent(instructions="x"))
        await asyncio.wait_for(session.generate_reply(), TIMEOUT)
        assert texts(session.history) == ["hi"]
    with pytest.raises(RuntimeError, match="not running"):
        session.say("late")


async def test_a_tool_can_say_something_then_hand_off(make: Any) -> None:
    class Billing(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="billing")

        async def on_enter(self) -> None:
            await self.session.say("Billing here.")

    class Desk(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="desk")

        @function_tool
        async def to_billing(self) -> Agent:
            """Transfer to billing."""
            await self.session.say("One moment, transferring you.")
            return Billing()

    h = await make(Desk(), llm=ScriptedLLM([ScriptedReply("", tool_calls=[tool_call("to_billing")])]))
    h.session.generate_reply(user_input="billing please")
    await h.events.wait("conversation_item_added", lambda ev: getattr(ev.item, "text_content", "") == "Billing here.")
    assert texts(h.session.history) == ["One moment, transferring you.", "Billing here."]
    assert isinstance(h.session.current_agent, Billing)
