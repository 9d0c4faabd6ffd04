"""Tools as livekit-agents 1.2 agents write them, run by a session (issue 11, item 5):
methods and plain functions, raw schemas, typed arguments, RunContext[UserData],
handoffs, and changing an agent's tools, instructions and chat context."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, Field
from session_helpers import TIMEOUT

import roomd.agents as agents
import roomd.agents.voice as voice
from roomd.agents import Agent, ChatContext, RunContext, function_tool
from roomd.agents.testing import ScriptedLLM, ScriptedReply, tool_call


def test_run_context_is_importable_where_the_reference_has_it() -> None:
    assert agents.RunContext is voice.RunContext
    assert agents.ChatItem and agents.ChatRole and agents.ChatContent
    assert agents.FunctionCall and agents.FunctionCallOutput


class Room(str, Enum):
    KITCHEN = "kitchen"
    LIVING_ROOM = "living room"


@dataclass
class Address:
    street: str
    number: int


class Order(BaseModel):
    item: Literal["pizza", "salad"]
    quantity: int = Field(description="how many")


@dataclass
class Visit:
    calls: list[tuple[str, Any]]


class Home(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="home")

    @function_tool
    async def toggle_light(self, room: Room, switch_to: Literal["on", "off"]) -> str:
        """Turn a light on or off.

        Args:
            room: the room
            switch_to: the new state
        """
        self.session.userdata.calls.append(("light", (room, switch_to)))
        return f"{room.value} {switch_to}"

    @function_tool
    async def get_number(self, value: Annotated[Optional[int], Field(description="The number")]) -> str:  # noqa: UP045
        """A number, or a random one when None."""
        self.session.userdata.calls.append(("number", value))
        return str(value if value is not None else 7)

    @function_tool
    async def deliver(self, context: RunContext[Visit], address: Address, order: Order) -> str:
        """Deliver an order."""
        context.userdata.calls.append(("deliver", (address, order)))
        return "on its way"


@function_tool()
async def update_name(name: Annotated[str, Field(description="The customer's name")], context: RunContext[Visit]) -> str:
    """Called when the user gives their name."""
    context.userdata.calls.append(("name", name))
    return f"name is {name}"


@function_tool(raw_schema={
    "name": "lookup",
    "description": "Look something up",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
})
async def lookup(raw_arguments: dict[str, Any], context: RunContext[Visit]) -> str:
    context.userdata.calls.append(("lookup", raw_arguments))
    return "found"


async def test_typed_arguments_reach_the_tools_as_python_values(make: Any) -> None:
    visit = Visit(calls=[])
    llm = ScriptedLLM([
        ScriptedReply("", tool_calls=[
            tool_call("toggle_light", room="living room", switch_to="off"),
            tool_call("get_number", value=None),
            tool_call("deliver", address={"street": "Main", "number": 3}, order={"item": "pizza", "quantity": 2}),
            tool_call("update_name", name="Ana"),
            tool_call("lookup", q="hours"),
        ]),
        "Done.",
    ])
    agent = Home()
    await agent.update_tools([*agent.tools, update_name, lookup])
    h = await make(agent, llm=llm, userdata=visit)
    await asyncio.wait_for(h.session.generate_reply(user_input="do it all"), TIMEOUT)
    calls = dict(visit.calls)
    assert calls["light"] == (Room.LIVING_ROOM, "off")
    assert calls["number"] is None
    address, order = calls["deliver"]
    assert address == Address("Main", 3) and isinstance(order, Order) and order.quantity == 2
    assert calls["name"] == "Ana" and calls["lookup"] == {"q": "hours"}
    outputs = [o.output for o in h.events.events["function_tools_executed"][0].function_call_outputs if o]
    assert outputs == ["living room off", "7", "on its way", "name is Ana", "found"]
    # the schema the LLM saw
    schemas = {t.name: t.openai_schema()["function"] for t in llm.requests[0].tools}
    number = schemas["get_number"]["parameters"]["properties"]["value"]
    assert number == {"type": ["integer", "null"], "description": "The number"}
    order_schema = schemas["deliver"]["parameters"]["properties"]["order"]
    assert order_schema["properties"]["quantity"]["description"] == "how many"
    assert schemas["toggle_light"]["parameters"]["properties"]["room"]["enum"] == ["kitchen", "living room"]
    assert "context" not in json.dumps(schemas["update_name"]["parameters"])


async def test_bad_arguments_are_told_to_the_llm_not_raised(make: Any) -> None:
    llm = ScriptedLLM([ScriptedReply("", tool_calls=[tool_call("toggle_light", room="attic", switch_to="on")]), "Sorry."])
    h = await make(Home(), llm=llm, userdata=Visit(calls=[]))
    await asyncio.wait_for(h.session.generate_reply(user_input="attic light"), TIMEOUT)
    output = h.events.events["function_tools_executed"][0].function_call_outputs[0]
    assert output.is_error and "attic" in output.output
    assert "attic" in (llm.requests[1].items[-1].output)  # type: ignore[union-attr]


async def test_update_instructions_tools_and_chat_ctx_apply_to_the_next_reply(make: Any) -> None:
    @function_tool
    async def ping() -> str:
        """Ping."""
        return "pong"

    llm = ScriptedLLM(["first", "second"])
    agent = Agent(instructions="old instructions")
    h = await make(agent, llm=llm)
    await asyncio.wait_for(h.session.generate_reply(), TIMEOUT)
    await agent.update_instructions("new instructions")
    await agent.update_tools([ping])
    ctx = agent.chat_ctx.copy()
    ctx.add_message(role="system", content="the caller is a member")
    await agent.update_chat_ctx(ctx)
    await asyncio.wait_for(h.session.generate_reply(), TIMEOUT)
    second = llm.requests[1]
    texts = [m.text_content for m in second.messages]
    assert texts[0] == "new instructions" and "old instructions" not in texts
    assert "the caller is a member" in texts and "first" in texts
    assert [t.name for t in second.tools] == ["ping"]


async def test_handoff_with_a_message_and_shared_userdata(make: Any) -> None:
    class Checkout(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="checkout")

        async def on_enter(self) -> None:
            self.session.generate_reply(tool_choice="none")

    class Greeter(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="greeter")

        @function_tool()
        async def to_checkout(self, context: RunContext[Visit]) -> tuple[Agent, str]:
            """Go to checkout."""
            context.userdata.calls.append(("from", type(context.session.current_agent).__name__))
            return Checkout(), "Transferring to checkout."

    visit = Visit(calls=[])
    llm = ScriptedLLM([ScriptedReply("", tool_calls=[tool_call("to_checkout")]), "Checkout here."])
    h = await make(Greeter(), llm=llm, userdata=visit)
    h.session.generate_reply(user_input="pay")
    await h.events.wait("conversation_item_added", lambda ev: getattr(ev.item, "text_content", "") == "Checkout here.")
    assert visit.calls == [("from", "Greeter")]
    assert isinstance(h.session.current_agent, Checkout)
    executed = h.events.events["function_tools_executed"][0]
    assert executed.has_agent_handoff and not executed.has_tool_reply
    assert executed.function_call_outputs[0].output == "Transferring to checkout."
    # the new agent starts from its own chat context
    assert [m.text_content for m in llm.requests[1].messages] == ["checkout"]


def test_chat_ctx_copy_filters_used_by_handoffs() -> None:
    ctx = ChatContext.empty()
    ctx.add_message(role="system", content="rules")
    ctx.add_message(role="user", content="hi")
    copied = ctx.copy(exclude_instructions=True, exclude_function_call=False).truncate(max_items=6)
    assert [m.role for m in copied.messages] == ["user"]
